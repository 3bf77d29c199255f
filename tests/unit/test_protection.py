"""Personal data at rest: the key file, AES-GCM columns, blind indexes, masks."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from adapter.protection import (
    DataProtector,
    DecryptionError,
    KeyFileError,
    add_key,
    generate_key_file,
    load_keyring,
    mask_document,
    mask_name,
    mask_phone,
)

CONTEXT = "patient.document_number"
NUMBER = "11010119900307123X"  # made up; its check character is not even right


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "data-keys.json"
    generate_key_file(path)
    return path


@pytest.fixture
def protector(key_file):
    return DataProtector(load_keyring(key_file))


def b64(n: int, fill: int = 1) -> str:
    return base64.b64encode(bytes([fill]) * n).decode()


def write_keys(path, data) -> None:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")


# --- encryption -----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["阿卜杜拉·买买提", NUMBER, "13800138000", "", "🏥 ok"])
def test_round_trip(protector, text):
    assert protector.decrypt(protector.encrypt(text, CONTEXT), CONTEXT) == text


def test_blob_layout_and_random_nonce(protector):
    blob = protector.encrypt(NUMBER, CONTEXT)
    assert blob[0] == 1 and blob[1] == 2 and blob[2:4] == b"k1"
    assert len(blob) == 4 + 12 + len(NUMBER) + 16
    assert protector.encrypt(NUMBER, CONTEXT) != blob
    assert NUMBER.encode() not in blob


def test_every_tampered_byte_fails(protector):
    blob = protector.encrypt("张三", CONTEXT)
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            protector.decrypt(bytes(tampered), CONTEXT)


def test_truncated_and_foreign_blobs_fail(protector):
    blob = protector.encrypt("张三", CONTEXT)
    for bad in (b"", b"\x01", blob[:10], blob[:-1], b"\x02" + blob[1:], b"\x01\x00" + blob[2:]):
        with pytest.raises(DecryptionError):
            protector.decrypt(bad, CONTEXT)


def test_wrong_context_fails(protector):
    blob = protector.encrypt(NUMBER, CONTEXT)
    with pytest.raises(DecryptionError) as info:
        protector.decrypt(blob, "patient.phone")
    assert NUMBER not in str(info.value)
    with pytest.raises(ValueError):
        protector.encrypt(NUMBER, "")


def test_another_key_file_cannot_decrypt(protector, tmp_path):
    other_path = tmp_path / "other.json"
    generate_key_file(other_path)
    other = DataProtector(load_keyring(other_path))
    with pytest.raises(DecryptionError):
        other.decrypt(protector.encrypt(NUMBER, CONTEXT), CONTEXT)


# --- rotation -------------------------------------------------------------------------------

def test_rotation_keeps_old_rows_readable(key_file, protector):
    old_blob = protector.encrypt(NUMBER, CONTEXT)
    assert not protector.needs_rotation(old_blob)

    assert add_key(key_file) == "k2"
    rotated = DataProtector(load_keyring(key_file))
    assert rotated.active_key_id == "k2"
    assert rotated.decrypt(old_blob, CONTEXT) == NUMBER
    assert rotated.needs_rotation(old_blob)

    new_blob = rotated.encrypt(rotated.decrypt(old_blob, CONTEXT), CONTEXT)  # the re-encryption job
    assert new_blob[2:4] == b"k2" and not rotated.needs_rotation(new_blob)
    with pytest.raises(DecryptionError, match="k2"):  # a process still on the old file
        protector.decrypt(new_blob, CONTEXT)

    assert add_key(key_file) == "k3"
    assert DataProtector(load_keyring(key_file)).decrypt(old_blob, CONTEXT) == NUMBER


def test_add_key_keeps_index_key_and_mode(key_file, protector):
    before = protector.blind_index(NUMBER, "document")
    add_key(key_file)
    assert DataProtector(load_keyring(key_file)).blind_index(NUMBER, "document") == before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in key_file.parent.iterdir()) == [key_file.name]


# --- blind index ----------------------------------------------------------------------------

def test_blind_index_stable_normalized_and_kind_bound(key_file, protector):
    index = protector.blind_index(NUMBER, "document")
    assert len(index) == 64 and int(index, 16) >= 0
    again = DataProtector(load_keyring(key_file))
    assert again.blind_index(NUMBER, "document") == index
    assert protector.blind_index(" 110101 19900307123x ", "document") == index
    assert protector.blind_index(NUMBER, "phone") != index
    assert protector.blind_index(NUMBER[:-1] + "0", "document") != index
    with pytest.raises(ValueError):
        protector.blind_index(NUMBER, "")


def test_blind_index_depends_on_the_key(protector, tmp_path):
    other_path = tmp_path / "other.json"
    generate_key_file(other_path)
    other = DataProtector(load_keyring(other_path))
    assert other.blind_index(NUMBER, "document") != protector.blind_index(NUMBER, "document")


def test_index_key_rotation_looks_up_both(key_file, protector):
    old_index = protector.blind_index(NUMBER, "document")
    data = json.loads(key_file.read_text())
    data["previous_index_key"] = data["index_key"]
    data["index_key"] = b64(32, 7)
    write_keys(key_file, data)
    migrating = DataProtector(load_keyring(key_file))
    new_index = migrating.blind_index(NUMBER, "document")
    assert new_index != old_index
    assert migrating.lookup_indexes(NUMBER, "document") == [new_index, old_index]
    assert protector.lookup_indexes(NUMBER, "document") == [old_index]


# --- the key file ---------------------------------------------------------------------------

def test_generated_file_is_private_and_well_formed(key_file):
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    data = json.loads(key_file.read_text())
    assert data["version"] == 1 and data["active"] == "k1"
    assert len(base64.b64decode(data["keys"]["k1"])) == 32
    assert len(base64.b64decode(data["index_key"])) == 32
    assert data["keys"]["k1"] != data["index_key"]


def test_generate_refuses_to_overwrite(key_file):
    before = key_file.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(key_file)
    assert key_file.read_bytes() == before
    assert sorted(p.name for p in key_file.parent.iterdir()) == [key_file.name]


def test_generate_with_a_permissive_umask_still_0600(tmp_path):
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "k.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.json").stat().st_mode) == 0o600


def test_keyring_repr_hides_keys(key_file):
    keyring = load_keyring(key_file)
    data = json.loads(key_file.read_text())
    assert data["keys"]["k1"] not in repr(keyring)
    assert repr(keyring) == "Keyring(active='k1', key_ids=['k1'])"


SECRET = b64(32, 9)


@pytest.mark.parametrize("content, words", [
    ('{"version": 1, "active": "k1", "keys": {"k1": "' + SECRET + '"', "not valid JSON"),
    ({"version": 1, "active": "k1", "keys": {"k1": b64(16)}, "index_key": SECRET},
     "must be 32 bytes, found 16"),
    ({"version": 1, "active": "k2", "keys": {"k1": SECRET}, "index_key": b64(32)},
     "active key id"),
    ({"version": 1, "active": "k1", "keys": {"k1": SECRET + "!"}, "index_key": b64(32)},
     "not valid base64"),
    ({"version": 1, "active": "k1", "keys": {"k1": SECRET}}, "index_key is missing"),
    ({"version": 1, "active": "k1", "keys": {"k1": SECRET}, "index_key": SECRET},
     "must differ"),
    ({"version": 2, "active": "k1", "keys": {"k1": SECRET}, "index_key": b64(32)}, "version"),
    ({"version": 1, "active": "k1", "keys": {}, "index_key": b64(32)}, "at least one key"),
    ({"version": 1, "active": "k 1", "keys": {"k 1": SECRET}, "index_key": b64(32)},
     "key id"),
    ({"version": 1, "active": "k1", "keys": {"k1": SECRET}, "index_key": b64(32),
      "comment": SECRET}, "unknown field"),
    ([SECRET], "JSON object"),
])
def test_load_errors_are_clear_and_never_show_keys(tmp_path, content, words):
    path = tmp_path / "keys.json"
    write_keys(path, content)
    with pytest.raises(KeyFileError) as info:
        load_keyring(path)
    message = str(info.value)
    assert words in message
    assert SECRET not in message and SECRET[:16] not in message
    # No chained exception (a JSONDecodeError holds the whole file) reaches a traceback.
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_missing_key_file(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        load_keyring(tmp_path / "nope.json")


def test_group_readable_key_file_is_warned_about(key_file, caplog):
    key_file.chmod(0o640)
    load_keyring(key_file)
    assert "chmod 600" in caplog.text


# --- masks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("number, masked", [
    ("11010119900307123X", "110***********123X"),
    ("11010119900307123x", "110***********123X"),
    ("USA110090123456", "USA********3456"),
    ("H12345678", "H*****678"),
    ("12345678", "1****678"),
    ("E1234567", "E****567"),
    ("12345", "1***5"),
    ("AB", "**"),
    ("", ""),
])
def test_mask_document(number, masked):
    assert mask_document(number) == masked
    assert len(mask_document(number)) == len(number)


@pytest.mark.parametrize("phone, masked", [
    ("13800138000", "138****8000"),
    ("138 0013 8000", "138****8000"),
    ("138-0013-8000", "138****8000"),
    ("+8613800138000", "+86*******8000"),
    ("12345", "1***5"),
])
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("name, masked", [
    ("张三", "张*"),
    ("欧阳娜娜", "欧***"),
    ("张", "*"),
    ("阿卜杜拉・买买提", "阿***·***"),
    ("John Smith", "J*** *****"),
    ("", ""),
])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_generate_without_hard_links(tmp_path, monkeypatch):
    def no_link(*args, **kwargs):
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "k.json"
    generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keyring(path).active == "k1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(path)
