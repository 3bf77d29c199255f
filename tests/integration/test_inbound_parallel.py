"""Results are applied by several inbound runners at once (a backlog after a HIS outage):
every message exactly once, and each order's messages in the order they arrived, on
PostgreSQL (row locks, SKIP LOCKED) and on SQLite (keys claimed in the process)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from adapter.config import load_config
from adapter.his.header import decode_message
from adapter.his.inbound import ordering_key
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import InboundMessage, InboundStatus, Result, ResultObservation
from adapter.ports import ResultsReported
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.runtime import Runtime
from adapter.worker.inbound import process_inbound
from tests.conftest import MAPPINGS
from tests.fakes import FakeWallet

PATIENTS, ORDERS, VERSIONS = 12, 3, 3
MSH = "MSH|^~\\&|LIS|DEMO_HOSPITAL|FHA|WALLET|20300307093100+0800||ORU^R01^ORU_R01|{cid}|P|2.5"


def oru(patient: int, order: int, version: int) -> bytes:
    status = "F" if version == 1 else "C"
    return "\r".join([
        MSH.format(cid=f"C{patient}-{order}-{version}"),
        f"PID|1||P{patient:06d}^^^HIS^PI||病人{patient}^^^^^^L||19800101|M",
        f"OBR|1|ORD{patient}-{order}|LAB{patient}-{order}|CBC^血常规^L|||20300307083000+0800"
        f"||||||||||||||||||{status}",
        f"OBX|1|NM|WBC^WBC^L||{version}.{order}|10*9/L|3.5-9.5|N|||{status}",
    ]).encode()


def store(session_factory, profile: Hl7Profile) -> int:
    """The backlog: every order's versions in order, the orders interleaved at random (one
    order's versions often close together, so two runners would take them at once)."""
    rng = random.Random(3)
    pending = {(p, o): list(range(1, VERSIONS + 1)) for p in range(PATIENTS) for o in range(ORDERS)}
    rows = []
    while pending:
        patient, order = rng.choice(sorted(pending))
        version = pending[patient, order].pop(0)
        if not pending[patient, order]:
            del pending[patient, order]
        raw = oru(patient, order, version)
        text, header = decode_message(raw)
        rows.append(InboundMessage(
            sender=header.sender, control_id=header.control_id, digest=str(len(rows)),
            message_type="ORU^R01", status=InboundStatus.RECEIVED, ack_code="AA",
            raw=raw, ack=b"", ordering_key=ordering_key(text, header, profile)))
    with session_factory.begin() as session:
        session.add_all(rows)
    return len(rows)


@pytest.fixture
def runtime(engine, session_factory):
    config = replace(load_config({}), inbound_batch_size=7)
    runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile())
    runtime.wallet = FakeWallet()
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    return runtime


def test_two_runners_apply_every_result_once_and_each_orders_messages_in_order(runtime):
    total = store(runtime.session_factory, runtime.profile)
    applied: list[tuple[str, str]] = []  # (control id, runner) in the order applied
    lock = threading.Lock()
    apply_batch = runtime.flows.batches[ResultsReported]

    def recording(name: str):
        def handler(services, session, event, now):
            time.sleep(0.002)  # as long as a real message's work: the runners overlap
            apply_batch(services, session, [event], now)
            with lock:
                applied.append((event.control_id, name))
        return {ResultsReported: [handler]}

    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def runner(name: str) -> None:
        try:
            start.wait(30)  # both runners begin together
            idle = 0
            while idle < 3:
                idle = 0 if process_inbound(runtime, recording(name)) else idle + 1
                time.sleep(0.01 if idle else 0)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=runner, args=(f"r{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures

    # Savepoints rolled back count in `applied` only when they commit: compare with the rows.
    with runtime.session_factory() as session:
        statuses = dict(session.execute(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)).all())
        attempts = set(session.scalars(select(InboundMessage.attempts)))
        finals = dict(session.execute(
            select(Result.filler_order, ResultObservation.number)
            .join(ResultObservation, ResultObservation.result_id == Result.id)).all())
        versions = set(session.scalars(select(Result.version)))
    assert statuses == {InboundStatus.PROCESSED: total}
    assert attempts == {1}  # none applied twice, none retried
    assert len(applied) == total == len({cid for cid, _ in applied})
    if runtime.engine.dialect.name == "postgresql":
        # Row locks let both runners work at once. On SQLite every transaction takes the one
        # write lock (BEGIN IMMEDIATE), so one runner may well apply everything.
        assert {name for _, name in applied} == {"r0", "r1"}  # both runners did the work
    for patient in range(PATIENTS):
        for order in range(ORDERS):
            seen = [int(cid.rsplit("-", 1)[1]) for cid, _ in applied
                    if cid.startswith(f"C{patient}-{order}-")]
            assert seen == list(range(1, VERSIONS + 1)), (patient, order, seen)
            assert finals[f"LAB{patient}-{order}"] == f"{VERSIONS}.{order}"  # the last word
    assert versions == {VERSIONS}


def test_a_message_that_keeps_failing_holds_back_only_its_own_patients_later_ones(runtime):
    store(runtime.session_factory, runtime.profile)
    apply_batch = runtime.flows.batches[ResultsReported]

    def failing_for_patient_zero(services, session, event, now):
        if event.control_id == "C0-0-1":
            raise RuntimeError("the database hiccupped")
        apply_batch(services, session, [event], now)

    handlers = {ResultsReported: [failing_for_patient_zero]}
    runtime.config = replace(runtime.config, inbound_batch_size=500)
    assert process_inbound(runtime, handlers) == (PATIENTS - 1) * ORDERS * VERSIONS
    with runtime.session_factory() as session:
        waiting = set(session.scalars(select(InboundMessage.control_id).where(
            InboundMessage.status == InboundStatus.RECEIVED)))
    # Patient 0's first message waits for its retry, and every later one of patient 0 behind it.
    assert "C0-0-1" in waiting
    assert all(cid.startswith("C0-") for cid in waiting)
    assert len(waiting) == ORDERS * VERSIONS
