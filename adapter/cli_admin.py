"""The operators' commands of ``hospital-adapter``: reconciliation, the data key, patients'
wallet accounts, the HIS dry run and staff accounts (registered on the group by adapter.cli)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from adapter.cli_support import _config, _require_schema, _role_runtime, _runtime
from adapter.config import load_config
from adapter.runtime import Runtime


@click.command("reconcile")
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="the day to reconcile (YYYY-MM-DD, hospital's zone)")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, writable=True,
                                                    path_type=Path),
              help="write the discrepancies to this CSV file")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
def reconcile_command(day: dt.datetime, csv_file: Path | None, lang: str) -> None:
    """Reconcile a day: each wallet's trade bill, our trades and refunds, the HIS's list."""
    from adapter.reconciliation.export import summary_lines, write_csv
    from adapter.reconciliation.service import ReconciliationFailed, reconcile_day

    runtime = _role_runtime()
    # Progress only where someone watches (a terminal); never personal data, only counts.
    tty = sys.stderr.isatty()

    def progress(stage: str, count: int) -> None:
        if tty:
            click.echo(f"\rreconcile: {stage} {count} ...", nl=False, err=True)

    found = []
    for wallet in runtime.wallets.values():
        try:
            result = reconcile_day(runtime, wallet, runtime.his, day.date(),
                                   now=runtime.clock.now(), progress=progress)
        except ReconciliationFailed as exc:
            raise click.ClickException(f"reconciliation of {day:%Y-%m-%d} failed: {exc}"
                                       ) from None
        if tty:
            click.echo("\r" + " " * 40 + "\r", nl=False, err=True)
        for line in summary_lines(result.summary, lang):
            click.echo(line)
        found += result.discrepancies
    if csv_file is not None:
        # With a BOM, spreadsheet programs read the Chinese texts as UTF-8.
        with csv_file.open("w", encoding="utf-8-sig", newline="") as stream:
            rows = write_csv(found, stream, lang)
        click.echo(f"{rows} discrepancies written to {csv_file}")


@click.command("prune")
@click.option("--dry-run", is_flag=True, help="count what would be pruned; change nothing")
@click.option("--days", type=click.IntRange(min=7), default=None,
              help="prune what is older than this (default: ADAPTER_RETENTION_DAYS)")
def prune_command(dry_run: bool, days: int | None) -> None:
    """Prune finished messages older than the retention period, archived first when
    ADAPTER_ARCHIVE_DIR is set; failures not yet acknowledged and live work are kept."""
    from adapter.retention.pruning import document_types_of, prune_old_rows

    runtime = _runtime()
    _require_schema(runtime)
    days = days or runtime.config.retention_days
    if days is None:
        raise click.ClickException("ADAPTER_RETENTION_DAYS is off: give --days")
    report = prune_old_rows(runtime.session_factory, days=days, now=runtime.clock.now(),
                            tz=runtime.config.tz, archive_dir=runtime.config.archive_dir,
                            document_types=document_types_of(runtime), actor="cli",
                            dry_run=dry_run)
    verb = "would prune" if dry_run else "pruned"
    click.echo(f"{verb} rows older than {report.cutoff:%Y-%m-%d %H:%M} UTC ({days} days):")
    for table, count in report.counts.items():
        click.echo(f"  {table:22} {count:>9}")
    if report.files:
        click.echo(f"{len(report.files)} archive files written under "
                   f"{runtime.config.archive_dir}")


@click.group("data-key")
def data_key_group() -> None:
    """The key that encrypts ID and phone numbers (ADAPTER_DATA_KEY_FILE)."""


@data_key_group.command("init")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the key (default: ADAPTER_DATA_KEY_FILE).")
def data_key_init(path: Path | None) -> None:
    """Create the data key file, readable by its owner only; never overwrite one."""
    from adapter.protection import generate_key_file, load_keyring

    target = path or load_config().effective_data_key_file
    if target.exists():
        raise click.ClickException(
            f"{target} exists; it holds the key of the data already stored and is never "
            "overwritten (a new key goes in with `hospital-adapter data-key add`)")
    if not target.parent.is_dir():
        raise click.ClickException(f"{target.parent} is not a directory")
    try:
        generate_key_file(target)
    except FileExistsError:
        raise click.ClickException(f"{target} was created meanwhile; left as it is") from None
    keyring = load_keyring(target)
    click.echo(f"data key {keyring.active} written to {target} (mode 0600); keep a copy "
               "apart from the database backups: without it the stored ID numbers are lost")


@data_key_group.command("add")
def data_key_add() -> None:
    """Add a new data key and make it active (then restart, then `data-key rotate`)."""
    from adapter.protection import add_key

    key_id = add_key(_config().effective_data_key_file)
    click.echo(f"key {key_id} added and active; restart every process, then run "
               "`hospital-adapter data-key rotate`")


@data_key_group.command("rotate")
def data_key_rotate() -> None:
    """Re-encrypt rows still under an older key and refresh blind indexes."""
    from adapter.rotation import rotate_personal_data

    runtime = _runtime()
    _require_schema(runtime)
    report = rotate_personal_data(runtime.session_factory, runtime.protector)
    click.echo(f"examined {report.examined} patients: re-encrypted {report.reencrypted}, "
               f"re-indexed {report.reindexed}")


@click.group("account")
def account_group() -> None:
    """Patients' wallet accounts: end their sessions, disable or enable one."""


def _account_command(account_id: int, action: str) -> None:
    from adapter.identity import sessions

    runtime = _runtime()
    _require_schema(runtime)
    now = runtime.clock.now()
    try:
        with runtime.session_factory.begin() as db:
            if action == "disable":
                ended = sessions.disable_account(db, account_id, now=now)
                click.echo(f"wallet account {account_id} disabled; {ended} session(s) ended")
            elif action == "enable":
                sessions.enable_account(db, account_id)
                click.echo(f"wallet account {account_id} may sign in again")
            else:
                ended = sessions.end_account_sessions(db, account_id, now=now)
                click.echo(f"{ended} session(s) of wallet account {account_id} ended")
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


@account_group.command("disable")
@click.argument("account_id", type=int)
def account_disable(account_id: int) -> None:
    """Refuse the account's sign-ins and end its sessions now."""
    _account_command(account_id, "disable")


@account_group.command("enable")
@click.argument("account_id", type=int)
def account_enable(account_id: int) -> None:
    """Let a disabled account sign in again."""
    _account_command(account_id, "enable")


@account_group.command("end-sessions")
@click.argument("account_id", type=int)
def account_end_sessions(account_id: int) -> None:
    """Sign the account out everywhere (a lost phone), without disabling it."""
    _account_command(account_id, "end-sessions")


@click.command("check-his")
@click.option("--days", default=None, type=click.IntRange(1, 60),
              help="Days of the slot pool to ask for (default: the profile's slot_sync_days).")
def check_his_command(days: int | None) -> None:
    """A dry run against the HIS: the link probe and a slot pool query, printing counts only."""
    from adapter.failures import safe_code
    from adapter.ports import HisRefused, HisUnavailable
    from adapter.worker.links import PROBE_DOCUMENT_NUMBER

    runtime = _runtime()
    profile = runtime.profile
    click.echo(f"HIS at {runtime.config.his_mllp} (MSH-5 {profile.his_application}, MSH-11 "
               f"{profile.processing_id}, slot sync by {profile.slot_sync})")
    document_type = next(iter(runtime.mappings.document_types))
    failed = False
    for what, ask in (
        ("patient query (QBP^Q22) for a number no patient has",
         lambda: runtime.his.find_patient(document_type, PROBE_DOCUMENT_NUMBER)),
        ("slot pool query (SQM^S25)", lambda: _slot_pool_counts(runtime, days)),
    ):
        started = time.monotonic()
        try:
            answer = ask()
        except HisRefused as exc:
            answer = f"refused: {safe_code(exc)}"
        except HisUnavailable as exc:
            answer, failed = f"no answer: {safe_code(exc)}", True
        millis = round((time.monotonic() - started) * 1000)
        click.echo(f"- {what}: {answer if isinstance(answer, str) else 'answered'} "
                   f"({millis} ms)")
        if failed:
            break  # the next question would wait through the same retries
    if failed:
        raise click.ClickException("the HIS did not answer; check ADAPTER_HIS_MLLP, its firewall "
                                   "and hl7_profile.toml")


def _slot_pool_counts(runtime: Runtime, days: int | None) -> str:
    import datetime

    today = runtime.clock.now().astimezone(runtime.config.tz).date()
    end = today + datetime.timedelta(days=(days or runtime.profile.slot_sync_days) - 1)
    slots = runtime.his.query_slot_pool(today, end)
    known = runtime.mappings.departments
    unmapped = {s.department_code for s in slots if s.department_code not in known}
    text = (f"{len(slots)} slots from {today} to {end} in "
            f"{len({s.department_code for s in slots})} departments")
    if unmapped:
        text += (f"; department codes missing from departments.csv: "
                 f"{', '.join(sorted(unmapped)[:10])}")
    return text


def _read_password() -> str:
    """A new password from the terminal (asked twice, not echoed) or one line of stdin; never
    from the command line, where ps and the shell history would show it."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def _create_staff(username: str, role: str, doctor_code: str | None) -> None:
    from adapter.refusals import Refusal
    from adapter.staff.accounts import create_account

    runtime = _runtime()
    _require_schema(runtime)
    password = _read_password()
    try:
        with runtime.session_factory.begin() as db:
            user = create_account(db, username, password, role, now=runtime.clock.now(),
                                  doctor_code=doctor_code,
                                  doctor_codes=runtime.mappings.doctors.keys(), remote="cli")
    except Refusal as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"staff account {user.username} ({user.role}) created; sign in at "
               f"{runtime.config.effective_public_url}/admin/")


@click.command("create-admin")
@click.option("--username", required=True, help="the admin's user name (letters, digits, . _ -)")
def create_admin_command(username: str) -> None:
    """Create an admin of /admin/; the password is asked for (or read from stdin)."""
    _create_staff(username, "admin", None)


@click.group("staff")
def staff_group() -> None:
    """Staff accounts of /admin/."""


@staff_group.command("add")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "operator", "viewer", "doctor"]))
@click.option("--doctor-code", default=None, help="a doctor's HIS code (mappings/doctors.csv)")
def staff_add_command(username: str, role: str, doctor_code: str | None) -> None:
    """Create a staff account; the password is asked for (or read from stdin)."""
    _create_staff(username, role, doctor_code)


@staff_group.command("disable")
@click.option("--username", required=True)
def staff_disable_command(username: str) -> None:
    """Refuse a staff account's sign-ins and end its sessions now."""
    from sqlalchemy import select

    from adapter.models import StaffAccount
    from adapter.staff.sessions import disable_staff_account

    runtime = _runtime()
    _require_schema(runtime)
    with runtime.session_factory.begin() as db:
        account_id = db.scalar(select(StaffAccount.id).where(StaffAccount.username == username))
        if account_id is None:
            raise click.ClickException(f"no staff account {username}")
        ended = disable_staff_account(db, account_id, now=runtime.clock.now())
    click.echo(f"staff account {username} disabled; {ended} session(s) ended")


@click.command("check-in-code")
def check_in_code_command() -> None:
    """Print a fresh check-in QR code's URL (for the kiosk screen at the hospital's entrance,
    which shows a new one before ADAPTER_CHECK_IN_TOKEN_MINUTES run out)."""
    from urllib.parse import urlencode

    from adapter.queueing.check_in import CheckInTokens

    config = _config()
    token = CheckInTokens(config.secret_key).issue(dt.datetime.now(dt.UTC))
    click.echo(f"{config.effective_public_url}/h5/check-in?{urlencode({'token': token})}")


COMMANDS = (reconcile_command, prune_command, check_in_code_command, data_key_group, account_group,
            check_his_command, create_admin_command, staff_group)
