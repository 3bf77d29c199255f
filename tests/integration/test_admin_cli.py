"""Staff accounts from the command line: the password from stdin (never argv), the first-admin
hint `run` prints until an admin exists."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from adapter.cli import _first_admin_hint, _runtime, main
from adapter.config import load_config
from adapter.models import StaffAccount
from adapter.staff.passwords import verify_password
from tests.conftest import MAPPINGS

PASSWORD = "a staff password long enough"


def _env(tmp_path):
    return {"ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
            "ADAPTER_DATA_DIR": str(tmp_path), "ADAPTER_MAPPINGS_DIR": str(MAPPINGS)}


def test_create_admin_reads_the_password_from_stdin_and_run_stops_hinting(tmp_path):
    env = _env(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    runtime = _runtime(load_config(env))
    assert "hospital-adapter create-admin --username admin" in _first_admin_hint(runtime)
    result = runner.invoke(main, ["create-admin", "--username", "admin"], env=env,
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "/admin/" in result.output and PASSWORD not in result.output
    with runtime.session_factory() as db:
        account = db.scalar(select(StaffAccount))
    assert (account.username, account.role) == ("admin", "admin")
    assert verify_password(account.password_hash, PASSWORD)
    assert _first_admin_hint(runtime) == ""


def test_staff_add_links_a_doctor_and_refusals_are_said_without_a_traceback(tmp_path):
    env = _env(tmp_path)
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade"], env=env)
    ok = runner.invoke(main, ["staff", "add", "--username", "dr.chen", "--role", "doctor",
                              "--doctor-code", "D1001"], env=env, input=PASSWORD + "\n")
    assert ok.exit_code == 0, ok.output
    unknown = runner.invoke(main, ["staff", "add", "--username", "dr.x", "--role", "doctor",
                                   "--doctor-code", "NOPE"], env=env, input=PASSWORD + "\n")
    short = runner.invoke(main, ["create-admin", "--username", "a"], env=env, input="short\n")
    for result in (unknown, short):
        assert result.exit_code == 1 and "Traceback" not in result.output
    assert "doctor code" in unknown.output.lower() or "doctors" in unknown.output.lower()
    assert "12" in short.output
    disabled = runner.invoke(main, ["staff", "disable", "--username", "dr.chen"], env=env)
    assert disabled.exit_code == 0 and "disabled" in disabled.output
