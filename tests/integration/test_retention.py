"""Retention on SQLite and PostgreSQL: finished rows older than the period are archived (masked,
fsynced, whole) then deleted in batches; failures stay until acknowledged, waiting work and
whatever a trade not settled still needs stay whatever their age; two workers pruning at once
archive and delete each row once; the prune is audited with counts only; the job is declared
by its flow; the command counts in a dry run."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from adapter.cli import main
from adapter.config import load_config
from adapter.db import make_session_factory
from adapter.flows import merge
from adapter.models import (
    IdempotencyRecord,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    QueueEventRecord,
    StaffAudit,
    Trade,
    TradeStatus,
    WalletAccount,
    WalletNotification,
)
from adapter.retention import pruning
from adapter.retention.pruning import RULES, prune_old_rows
from adapter.runtime import FLOWS
from tests.conftest import MAPPINGS

TZ = load_config({}).tz
NOW = dt.datetime(2030, 6, 1, 2, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=100)
RECENT = NOW - dt.timedelta(days=10)
RESIDENT_ID = "11010519491231002X"
MOBILE = "13800138000"
PID = f"PID|1||{RESIDENT_ID}^^^^RESIDENT_ID~P77^^^HIS^PI||张三||19491231|M|||||{MOBILE}"


def _inbound(control_id: str, status: str, at: dt.datetime, acknowledged: bool = False):
    raw = f"MSH|^~\\&|HIS|H|AD|A|20300101||ADT^A08|{control_id}|P|2.5\r{PID}\r".encode()
    return InboundMessage(received_at=at, sender="HIS^H", control_id=control_id,
                          digest=control_id.ljust(64, "0"), message_type="ADT^A08",
                          version="2.5", charset="", status=status, ack_code="AA", raw=raw,
                          ack=b"MSH|\rMSA|AA|" + control_id.encode(),
                          acknowledged_at=NOW if acknowledged else None,
                          acknowledged_by="op" if acknowledged else None)


def _outbox(subject: str, status: str, at: dt.datetime, acknowledged: bool = False,
            subject_type: str = "booking"):
    return OutboxMessage(kind="his_book", subject_type=subject_type, subject_id=subject,
                         status=status, next_attempt_at=at, created_at=at,
                         acknowledged_at=NOW if acknowledged else None)


def _notice(n: int, outcome: str, at: dt.datetime, out_trade_no: str | None = None):
    return WalletNotification(received_at=at, platform="alipay", raw=f"n={n}".encode(),
                              notify_id=f"N{n}", out_trade_no=out_trade_no, outcome=outcome)


@pytest.fixture
def seeded(session_factory):
    """Rows of every kind; ``gone`` names what a prune at NOW (90 days) must delete."""
    with session_factory.begin() as db:
        account = WalletAccount(platform="alipay", user_id="2088000000000001")
        db.add(account)
        db.flush()
        db.add(Trade(out_trade_no="OPEN1", platform="alipay", purpose="registration",
                     reference="B1", subject="s", total_fen=2500, buyer_id="b",
                     status=TradeStatus.CREATED, created_at=OLD, expire_at=OLD))
        gone = {
            "inbound": [_inbound("OLD-DONE", InboundStatus.PROCESSED, OLD),
                        _inbound("OLD-ACKED", InboundStatus.ERROR, OLD, acknowledged=True)],
            "outbox": [_outbox("1", OutboxStatus.DONE, OLD),
                       _outbox("2", OutboxStatus.FAILED, OLD, acknowledged=True)],
            "notice": [_notice(1, "applied", OLD, "PAID1"), _notice(2, "refused", OLD)],
        }
        # An ack was set on the refused notice: acknowledged failures go.
        gone["notice"][1].acknowledged_at = NOW
        kept = [
            _inbound("OLD-FAILED", InboundStatus.FAILED, OLD),  # not acknowledged
            _inbound("OLD-WAITING", InboundStatus.RECEIVED, OLD),
            _inbound("RECENT", InboundStatus.PROCESSED, RECENT),
            _outbox("3", OutboxStatus.FAILED, OLD),  # parked, not acknowledged
            _outbox("4", OutboxStatus.PENDING, OLD),
            _outbox("5", OutboxStatus.DONE, OLD),  # its subject still has work pending:
            _outbox("5", OutboxStatus.PENDING, RECENT),
            _outbox("OPEN1", OutboxStatus.DONE, OLD, subject_type="trade"),  # not settled
            _notice(3, "applied", OLD, "OPEN1"),  # a trade not settled
            _notice(4, "error", OLD, "PAID2"),
            _notice(5, "applied", RECENT, "PAID3"),
        ]
        db.add_all([*gone["inbound"], *gone["outbox"], *gone["notice"], *kept])
        visit = (NOW - dt.timedelta(days=95)).date()
        for n, day in enumerate((visit, NOW.date())):
            db.add(QueueEventRecord(event_id=f"Q{n}", doctor_code="D1", visit_date=day,
                                    session="am", visit_number="1", kind="called",
                                    occurred_at=NOW, received_at=NOW))
        for n, at in enumerate((OLD, RECENT)):
            db.add(IdempotencyRecord(wallet_account_id=account.id, key=f"k{n}",
                                     request_digest="d", status_code=201, response="{}",
                                     created_at=at))
        db.flush()
        ids = {kind: {row.id for row in rows} for kind, rows in gone.items()}
    return ids


def _ids(session_factory, model):
    with session_factory() as db:
        return set(db.scalars(select(model.id)))


def _archived(report):
    lines = []
    for path in report.files:
        assert path.stat().st_mode & 0o077 == 0, path  # the owner's only
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines += [(path.parent.parent.name, json.loads(line)) for line in f]
    return lines


def _prune(session_factory, tmp_path, **kwargs):
    kwargs.setdefault("archive_dir", tmp_path / "archive")
    return prune_old_rows(session_factory, days=90, now=NOW, tz=TZ,
                          document_types=frozenset({"RESIDENT_ID"}), **kwargs)


def test_finished_rows_go_after_their_archive_and_the_rest_stays(session_factory, seeded,
                                                                 tmp_path):
    before = {m: _ids(session_factory, m) for m in (InboundMessage, OutboxMessage,
                                                    WalletNotification)}
    report = _prune(session_factory, tmp_path)
    assert report.counts == {"inbound_message": 2, "outbox_message": 2,
                             "wallet_notification": 2, "queue_event": 1,
                             "idempotency_record": 1}
    assert _ids(session_factory, InboundMessage) == before[InboundMessage] - seeded["inbound"]
    assert _ids(session_factory, OutboxMessage) == before[OutboxMessage] - seeded["outbox"]
    assert _ids(session_factory, WalletNotification) == (before[WalletNotification]
                                                         - seeded["notice"])
    archived = _archived(report)
    tables = [table for table, _ in archived]
    assert sorted(tables) == sorted(["inbound_message"] * 2 + ["outbox_message"] * 2
                                    + ["wallet_notification"] * 2 + ["queue_event"])
    text = json.dumps([line for _, line in archived], ensure_ascii=False)
    assert RESIDENT_ID not in text and MOBILE not in text and "138****8000" in text
    assert "ADT^A08" in text and "OLD-DONE" in text  # the rest of the message is kept
    # the archive's day is the row's day in the hospital's zone
    assert {p.parent.name for p in report.files} == {
        OLD.astimezone(TZ).date().isoformat(),
        (NOW - dt.timedelta(days=95)).date().isoformat()}
    with session_factory() as db:
        audit = db.scalars(select(StaffAudit)).one()
    assert (audit.actor, audit.action) == ("worker", "messages_pruned")
    assert audit.target == ("inbound_message=2,outbox_message=2,wallet_notification=2,"
                            "queue_event=1,idempotency_record=1")
    assert _prune(session_factory, tmp_path).total == 0  # nothing left to prune


def test_a_dry_run_counts_and_changes_nothing(session_factory, seeded, tmp_path):
    before = _ids(session_factory, InboundMessage)
    report = _prune(session_factory, tmp_path, dry_run=True)
    assert report.total == 8 and report.files == []
    assert _ids(session_factory, InboundMessage) == before
    assert not (tmp_path / "archive").exists()
    with session_factory() as db:
        assert db.scalar(select(func.count()).select_from(StaffAudit)) == 0


def test_without_an_archive_directory_rows_are_pruned_unarchived(session_factory, seeded,
                                                                  tmp_path):
    report = _prune(session_factory, tmp_path, archive_dir=None)
    assert report.total == 8 and report.files == []


def test_an_archive_that_cannot_be_written_deletes_nothing(session_factory, seeded, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    before = _ids(session_factory, InboundMessage)
    with pytest.raises(OSError):
        _prune(session_factory, tmp_path, archive_dir=blocked)
    assert _ids(session_factory, InboundMessage) == before


def _many(session_factory, n: int) -> set[int]:
    with session_factory.begin() as db:
        rows = [_outbox(str(100 + i), OutboxStatus.DONE, OLD) for i in range(n)]
        db.add_all(rows)
        db.flush()
        return {row.id for row in rows}


def test_rows_go_in_batches_one_archive_file_each(session_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(pruning, "BATCH", 4)
    ids = _many(session_factory, 10)
    report = _prune(session_factory, tmp_path)
    assert report.counts["outbox_message"] == 10 and len(report.files) == 3
    assert {line["id"] for _, line in _archived(report)} == ids


def test_two_workers_pruning_at_once_archive_and_delete_each_row_once(engine, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setattr(pruning, "BATCH", 5)
    session_factory = make_session_factory(engine)
    ids = _many(session_factory, 60)
    reports, errors = [], []
    start = threading.Barrier(2)

    def worker(n: int) -> None:
        try:
            start.wait()
            reports.append(_prune(session_factory, tmp_path / f"w{n}", archive_dir=tmp_path))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    archived = [line["id"] for report in reports for _, line in _archived(report)]
    assert sorted(archived) == sorted(ids)  # every row once, none twice
    assert sum(r.counts["outbox_message"] for r in reports) == 60
    assert _ids(session_factory, OutboxMessage) == set()


def test_the_job_is_declared_by_its_flow_and_off_disables_it():
    [job] = [job for job in merge(FLOWS).jobs if job.name == "prune_old_messages"]

    class Services:
        config = load_config({})

    assert job.enabled(Services) and job.every(Services) == 3600
    Services.config = replace(load_config({}), retention_days=None)
    assert not job.enabled(Services)
    assert load_config({"ADAPTER_RETENTION_DAYS": "off"}).retention_days is None
    assert {rule.table for rule in RULES} >= {"inbound_message", "outbox_message",
                                              "wallet_notification"}


def test_the_command_counts_in_a_dry_run(tmp_path):
    env = {"ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "ADAPTER_DATA_DIR": str(tmp_path), "ADAPTER_MAPPINGS_DIR": str(MAPPINGS)}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(main, ["prune", "--dry-run", "--days", "30"], env=env)
    assert result.exit_code == 0, result.output
    assert "would prune" in result.output and "inbound_message" in result.output
    result = runner.invoke(main, ["prune"], env=env)
    assert result.exit_code == 0 and "pruned" in result.output
    assert runner.invoke(main, ["prune", "--days", "3"], env=env).exit_code == 2
