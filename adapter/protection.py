"""Personal data at rest: encrypted columns, blind indexes for lookup, masks for display.

ID numbers and phone numbers are stored as AES-256-GCM ciphertexts (DESIGN.md invariant 6) and
found again through a blind index, an HMAC-SHA256 of the normalized value under a second key,
so an equality lookup needs no decryption and the index alone reveals nothing without the key.
Whatever is shown (pages, the admin, logs) goes through the ``mask_*`` functions.

The key file (path in ``ADAPTER_DATA_KEY_FILE``, mode 0600, never in the repository)::

    {"version": 1, "active": "k2",
     "keys": {"k1": "<base64 of 32 bytes>", "k2": "<base64 of 32 bytes>"},
     "index_key": "<base64 of 32 bytes>",
     "previous_index_key": "<base64 of 32 bytes>"}   (only while an index key rotation runs)

Ciphertext layout (a ``bytes``/``BYTEA`` column)::

    1 byte  format version (1)
    1 byte  length n of the key id, then n bytes of key id (ASCII)
    12 bytes random nonce (NIST SP 800-38D, 8.2.2: random 96-bit nonces, under 2**32 per key)
    AES-GCM ciphertext and 16-byte tag

The associated data is the header above followed by the column's ``context`` (for example
``patient.document_number``), so a ciphertext copied into another column, or its key id
edited, fails to decrypt.

Rotating the data key without losing data:

1. ``add_key`` (``hospital-adapter`` wires a command) writes a new key and makes it active;
   the old keys stay in the file. Restart or reload every process.
2. New writes use the active key; every row still decrypts with the key named in its blob.
3. A re-encryption job walks the encrypted columns in batches, and for each blob where
   ``needs_rotation`` is true writes ``encrypt(decrypt(blob, ctx), ctx)`` in its own
   transaction. It can stop and restart at any time.
4. Only when no row anywhere (backups included, for as long as they are kept) uses an old key
   id may that key be removed from the file. Never delete a key before that: the rows it
   encrypted would be lost.

Rotating the index key (rarer: when the key may have leaked) is a migration, because every
blind index has to be recomputed from the decrypted value:

1. Move ``index_key`` to ``previous_index_key`` and put a new ``index_key`` in the file.
2. While both are present, lookups query the blind index column with every value of
   ``lookup_indexes`` (the new index and the previous one), and writes store the new one.
3. A job decrypts each row and rewrites its blind index with ``blind_index``.
4. When no row has an index under the previous key, remove ``previous_index_key``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapter.identity.documents import normalize_document_number
from adapter.identity.names import normalize_name

logger = logging.getLogger(__name__)

KEY_FILE_VERSION = 1
BLOB_VERSION = 1
KEY_BYTES = 32  # AES-256; also the HMAC-SHA256 key size
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KNOWN_FIELDS = {"version", "active", "keys", "index_key", "previous_index_key"}


class KeyFileError(ValueError):
    """The data key file cannot be used; the message never contains key material."""


class DecryptionError(ValueError):
    """A blob cannot be decrypted: malformed, unknown key, tampered or wrong context."""


@dataclass(frozen=True, repr=False)
class Keyring:
    """The data keys by id, the active one's id, and the blind index key(s)."""

    active: str
    keys: dict[str, bytes]
    index_key: bytes
    previous_index_key: bytes | None = None
    version: int = KEY_FILE_VERSION

    def __repr__(self) -> str:  # never the keys themselves
        return f"Keyring(active={self.active!r}, key_ids={sorted(self.keys)!r})"


# --- the key file ---------------------------------------------------------------------------

def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def generate_key_file(path: Path) -> None:
    """Write a new key file with one data key and an index key; refuse to overwrite one."""
    if path.exists():
        raise KeyFileError(f"{path} already exists; it is not overwritten "
                           "(to rotate the data key, add a key instead)")
    data = {"version": KEY_FILE_VERSION, "active": "k1", "keys": {"k1": _b64(_new_key())},
            "index_key": _b64(_new_key())}
    _write_new(path, data, replace=False)
    logger.info("data key file created with key id k1")


def load_keyring(path: Path) -> Keyring:
    """Read and check the key file; raise KeyFileError with a message safe to log."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"data key file {path} does not exist "
                           "(create one with generate_key_file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise KeyFileError(f"cannot read data key file {path}: {reason}") from None
    _warn_if_readable_by_others(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg and the position only: the exception's doc attribute holds the keys.
        raise KeyFileError(f"data key file {path} is not valid JSON: {exc.msg} "
                           f"(line {exc.lineno}, column {exc.colno})") from None
    return _keyring_from(path, data)


def _keyring_from(path: Path, data: Any) -> Keyring:
    where = f"data key file {path}"
    if not isinstance(data, dict):
        raise KeyFileError(f"{where} must hold a JSON object")
    unknown = sorted(set(data) - _KNOWN_FIELDS)
    if unknown:
        raise KeyFileError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if data.get("version") != KEY_FILE_VERSION:
        raise KeyFileError(f"{where}: version must be {KEY_FILE_VERSION}")
    raw_keys = data.get("keys")
    if not isinstance(raw_keys, dict) or not raw_keys:
        raise KeyFileError(f"{where}: keys must be an object with at least one key")
    keys: dict[str, bytes] = {}
    for key_id, value in raw_keys.items():
        if not _KEY_ID_RE.fullmatch(key_id):
            raise KeyFileError(f"{where}: key id {key_id!r} must be 1 to 64 of "
                               "A-Z a-z 0-9 _ . -")
        keys[key_id] = _decode_key(where, f"key {key_id!r}", value)
    active = data.get("active")
    if not isinstance(active, str) or active not in keys:
        raise KeyFileError(f"{where}: the active key id is not among the keys "
                           f"({', '.join(sorted(keys))})")
    if "index_key" not in data:
        raise KeyFileError(f"{where}: index_key is missing")
    index_key = _decode_key(where, "index_key", data["index_key"])
    previous = None
    if data.get("previous_index_key") is not None:
        previous = _decode_key(where, "previous_index_key", data["previous_index_key"])
    if any(hmac.compare_digest(index_key, key) for key in keys.values()):
        raise KeyFileError(f"{where}: index_key must differ from every data key")
    return Keyring(active=active, keys=keys, index_key=index_key,
                   previous_index_key=previous)


def _decode_key(where: str, what: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise KeyFileError(f"{where}: {what} must be a base64 string")
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{where}: {what} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{where}: {what} must be {KEY_BYTES} bytes, found {len(key)}")
    return key


def add_key(path: Path) -> str:
    """Add a new data key to the file and make it active; return its id (rotation step 1).

    One administrator at a time: two concurrent runs would each write the file whole.
    """
    keyring = load_keyring(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    number = len(keyring.keys) + 1
    while f"k{number}" in keyring.keys:
        number += 1
    key_id = f"k{number}"
    data["keys"][key_id] = _b64(_new_key())
    data["active"] = key_id
    _write_new(path, data, replace=True)
    logger.info("data key %s added and made active (previous %s)", key_id, keyring.active)
    return key_id


def _write_new(path: Path, data: dict[str, Any], *, replace: bool) -> None:
    """Write the file whole or not at all, mode 0600 from the first byte."""
    payload = (json.dumps(data, indent=2) + "\n").encode("ascii")
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)  # mkstemp creates 0600 already; be explicit about it
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            # link() fails if the name exists: no race can make us overwrite a key file.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyFileError(f"{path} already exists; it is not overwritten") from None
            except OSError:
                # A filesystem without hard links: O_EXCL still never overwrites.
                _write_exclusive(path, payload)
            tmp.unlink()
        fsync_directory(directory)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_exclusive(path: Path, payload: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; it is not overwritten") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # never leave half a key file behind
        raise


def fsync_directory(directory: Path) -> None:
    """Make a file created or renamed in ``directory`` survive a power cut (where allowed)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every filesystem allows it; the data itself was synced
    finally:
        os.close(fd)


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("data key file is accessible to group or others (mode %o); "
                       "chmod 600 it", stat.S_IMODE(mode))


# --- encryption and blind indexes -----------------------------------------------------------

class DataProtector:
    """Encrypts, decrypts and indexes personal data with one keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def active_key_id(self) -> str:
        """The id of the key new ciphertexts are made with."""
        return self._keyring.active

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """Encrypt under the active key; ``context`` names the column (associated data)."""
        _check_context(context)
        key_id = self._keyring.active
        header = _header(key_id)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, plaintext.encode("utf-8"),
                                               header + context.encode("utf-8"))
        return header + nonce + sealed

    def decrypt(self, blob: bytes, context: str) -> str:
        """Decrypt with the key the blob names; raise DecryptionError on any mismatch."""
        _check_context(context)
        key_id, header_length = _parse_header(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"key id {key_id!r} is not in the key file")
        body = blob[header_length:]
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("ciphertext is truncated")
        try:
            plain = cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:],
                                   blob[:header_length] + context.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError("authentication failed: tampered ciphertext, "
                                  "wrong context or wrong key") from None
        return plain.decode("utf-8")

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the blob was made with a key other than the active one."""
        key_id, _ = _parse_header(blob)
        return key_id != self._keyring.active

    def blind_index(self, value: str, kind: str) -> str:
        """Hex HMAC-SHA256 of ``kind`` NUL normalized value under the index key."""
        return _blind_index(self._keyring.index_key, value, kind)

    def lookup_indexes(self, value: str, kind: str) -> list[str]:
        """Every index a stored row may have for the value (two during index key rotation)."""
        indexes = [self.blind_index(value, kind)]
        if self._keyring.previous_index_key is not None:
            indexes.append(_blind_index(self._keyring.previous_index_key, value, kind))
        return indexes


def _check_context(context: str) -> None:
    if not context:
        raise ValueError("context must name the column, e.g. patient.document_number")


def _header(key_id: str) -> bytes:
    raw = key_id.encode("ascii")
    return bytes([BLOB_VERSION, len(raw)]) + raw


def _parse_header(blob: bytes) -> tuple[str, int]:
    if len(blob) < 2 or blob[0] != BLOB_VERSION:
        raise DecryptionError("not a version 1 ciphertext")
    length = blob[1]
    if length == 0 or len(blob) < 2 + length:
        raise DecryptionError("ciphertext header is truncated")
    try:
        key_id = blob[2:2 + length].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("ciphertext key id is not ASCII") from None
    return key_id, 2 + length


def _blind_index(key: bytes, value: str, kind: str) -> str:
    if not kind or "\x00" in kind:
        raise ValueError("kind must be a non-empty name without NUL")
    # The same normalization as identity.check_document's number, so that what was checked
    # and what is looked up index alike ("11010119900307123x" finds "...123X").
    message = kind.encode("utf-8") + b"\x00" + normalize_document_number(value).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# --- masks ----------------------------------------------------------------------------------

def _mask(text: str, keep_start: int, keep_end: int) -> str:
    hidden = len(text) - keep_start - keep_end
    return text[:keep_start] + "*" * hidden + text[len(text) - keep_end:]


def mask_document(number: str) -> str:
    """Mask a document number, keeping its length.

    18- and 15-character numbers keep the first 3 and last 4 (110***********123X); 8 to 13
    characters (permits, passports) keep the first 1 and last 3 (H*****678), so that at most
    half shows; 3 to 7 keep the first and last; 1 or 2 are hidden whole.
    """
    text = normalize_document_number(number)
    n = len(text)
    if n >= 14:
        return _mask(text, 3, 4)
    if n >= 8:
        return _mask(text, 1, 3)
    if n >= 3:
        return _mask(text, 1, 1)
    return "*" * n


def mask_phone(phone: str) -> str:
    """Mask a phone number keeping the first 3 and last 4 digits: 138****8000."""
    text = "".join(ch for ch in normalize_document_number(phone) if ch != "-")
    if len(text) >= 9:
        return _mask(text, 3, 4)
    return mask_document(text)


def mask_name(name: str) -> str:
    """Keep the first character, hide the rest, keep the separators: 张*, 阿***·***."""
    text = normalize_name(name)
    out = []
    for index, ch in enumerate(text):
        out.append(ch if index == 0 or ch in " \u00b7" else "*")
    if len(text) == 1:
        return "*"
    return "".join(out)
