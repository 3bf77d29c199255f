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
