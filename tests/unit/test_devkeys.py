"""Development keys made on first use: several roles starting at once on a fresh data
directory all get one consistent set."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives import serialization

from adapter.config import load_config
from adapter.devkeys import _write_secret, app_public_key_file, ensure_development_keys


def test_a_secret_is_written_whole_once_and_never_replaced(tmp_path):
    path = tmp_path / "secret"
    assert _write_secret(path, "first")
    assert not _write_secret(path, "second")
    assert path.read_text() == "first" and (path.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary left


def test_roles_starting_together_share_one_set_of_keys(tmp_path):
    config = load_config({"ADAPTER_DATA_DIR": str(tmp_path),
                          "ADAPTER_WECHATPAY_API_URL": "http://127.0.0.1:8911"})
    barrier, errors, results = threading.Barrier(8), [], []

    def role():
        barrier.wait()
        try:
            results.append(ensure_development_keys(config))
        except Exception as exc:  # noqa: BLE001 - what the test is about
            errors.append(exc)

    threads = [threading.Thread(target=role) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 8
    assert len({r.secret_key for r in results}) == 1
    private = serialization.load_pem_private_key(
        results[0].effective_app_private_key_file.read_bytes(), None)
    public = serialization.load_pem_public_key(app_public_key_file(config).read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()
