"""The hospital-adapter command, as hospital IT runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from click.testing import CliRunner

from adapter.cli import main
from tests.conftest import MAPPINGS


def test_check_mappings_passes_on_the_shipped_tables():
    result = CliRunner().invoke(main, ["check-mappings", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_check_mappings_names_file_line_and_problem(tmp_path):
    bad = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, bad)
    with (bad / "fee_items.csv").open("a", encoding="utf-8") as f:
        f.write("BAD_FEE,坏的,Bad,registration,12.345\n")
    result = CliRunner().invoke(main, ["check-mappings", str(bad)])
    assert result.exit_code == 1
    assert "fee_items.csv:" in result.output
    assert "1 problem(s)" in result.output


def test_bad_configuration_stops_with_the_variable_named(tmp_path):
    env = {**os.environ, "ADAPTER_MLLP_LISTEN": "nonsense"}
    result = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "listener"], env=env, capture_output=True,
        text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "ADAPTER_MLLP_LISTEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_his_refuses_an_unknown_time_zone():
    result = CliRunner().invoke(main, ["simulate-his", "--listen", "127.0.0.1:0"],
                                env={"ADAPTER_TIMEZONE": "Nowhere/Atlantis"})
    assert result.exit_code == 2
    assert "--timezone" in result.output and "Nowhere/Atlantis" in result.output


def test_db_upgrade_then_roles_refuse_an_old_schema(tmp_path):
    env = {**os.environ, "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "ADAPTER_MAPPINGS_DIR": str(MAPPINGS)}
    stale = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "worker"], env=env, capture_output=True,
        text=True, timeout=60,
    )
    assert stale.returncode != 0 and "db upgrade" in stale.stderr
    done = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "db", "upgrade"], env=env, capture_output=True,
        text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.db").exists()


def test_demo_books_pays_confirms_cancels_and_refunds():
    result = subprocess.run([sys.executable, "-m", "adapter.cli", "demo"], capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo passed" in result.stdout


def test_check_mappings_covers_the_registration_rules(tmp_path):
    bad = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, bad)
    (bad / "registration.toml").write_text("hold_minutes = 0\n", encoding="utf-8")
    (bad / "booking_rules.toml").write_text("per_doctor_per_dya = 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check-mappings", str(bad)])
    assert result.exit_code == 1
    assert "registration.toml" in result.output and "booking_rules.toml" in result.output


def _role(tmp_path, role: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Start a role on an up-to-date database with extra variables; it must stop by itself."""
    base = {**os.environ, "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
            "ADAPTER_DATA_DIR": str(tmp_path / "var"), "ADAPTER_MAPPINGS_DIR": str(MAPPINGS)}
    subprocess.run([sys.executable, "-m", "adapter.cli", "db", "upgrade"], env=base,
                   capture_output=True, timeout=60, check=True)
    return subprocess.run([sys.executable, "-m", "adapter.cli", role], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_a_role_stops_at_once_on_a_named_data_key_file_that_is_missing(tmp_path):
    missing = tmp_path / "keys" / "data.key"
    result = _role(tmp_path, "worker", ADAPTER_DATA_KEY_FILE=str(missing))
    assert result.returncode != 0
    assert "ADAPTER_DATA_KEY_FILE" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists()  # a named file is never generated in its place


def test_a_role_stops_at_once_on_a_malformed_wallet_key(tmp_path):
    bad = tmp_path / "alipay_public_key.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    result = _role(tmp_path, "listener", ADAPTER_ALIPAY_PUBLIC_KEY_FILE=str(bad),
                   ADAPTER_MLLP_LISTEN="127.0.0.1:0")
    assert result.returncode != 0
    assert "ADAPTER_ALIPAY_PUBLIC_KEY_FILE" in result.stderr
    assert "not a readable RSA public key" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_role_stops_at_once_on_a_mappings_directory_that_is_missing(tmp_path):
    result = _role(tmp_path, "worker", ADAPTER_MAPPINGS_DIR=str(tmp_path / "nowhere"))
    assert result.returncode != 0
    assert "ADAPTER_MAPPINGS_DIR" in result.stderr and "not a directory" in result.stderr


def test_run_never_overwrites_a_named_wallet_key_with_the_sandboxs(tmp_path):
    named = tmp_path / "alipay_public_key.pem"
    named.write_text("the hospital's file\n")
    result = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "run"], capture_output=True, text=True,
        timeout=60, env={**os.environ, "ADAPTER_DATA_DIR": str(tmp_path / "var"),
                         "ADAPTER_ALIPAY_PUBLIC_KEY_FILE": str(named)})
    assert result.returncode != 0 and "ADAPTER_ALIPAY_PUBLIC_KEY_FILE" in result.stderr
    assert named.read_text() == "the hospital's file\n"


def test_data_key_init_writes_an_owner_only_key_and_never_overwrites_one(tmp_path):
    from adapter.protection import load_keyring

    target = tmp_path / "data.key"
    env = {"ADAPTER_DATA_KEY_FILE": str(target)}
    result = CliRunner().invoke(main, ["data-key", "init"], env=env)
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o777 == 0o600
    first = target.read_bytes()
    assert load_keyring(target).active in result.output

    again = CliRunner().invoke(main, ["data-key", "init"], env=env)
    assert again.exit_code != 0
    assert "never overwritten" in again.output
    assert target.read_bytes() == first


def test_check_his_asks_the_his_and_prints_counts_only(tmp_path):
    import zoneinfo

    from adapter.his.mllp import MllpServer
    from adapter.his.simulator import HisSimulator
    from adapter.mappings import load_mappings

    simulator = HisSimulator(load_mappings(MAPPINGS), tz=zoneinfo.ZoneInfo("Asia/Shanghai"),
                             seed=3)
    server = MllpServer("127.0.0.1", 0, simulator.handle, on_connect=simulator.on_connect)
    server.start()
    host, port = server.server_address
    env = {"ADAPTER_HIS_MLLP": f"{host}:{port}", "ADAPTER_MAPPINGS_DIR": str(MAPPINGS),
           "ADAPTER_DATA_DIR": str(tmp_path / "var"),
           "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    try:
        result = CliRunner().invoke(main, ["check-his", "--days", "3"], env=env)
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert "patient query (QBP^Q22)" in result.output
    assert "slots from" in result.output and "departments" in result.output

    down = CliRunner().invoke(main, ["check-his"], env={**env, "ADAPTER_HIS_MLLP": f"{host}:{port}",
                                                         "ADAPTER_HIS_CONNECT_TIMEOUT": "0.5"})
    assert down.exit_code != 0
    assert "did not answer" in down.output
    assert "Traceback" not in down.output
