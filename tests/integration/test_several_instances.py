"""Two web, two listener and two worker processes against one PostgreSQL.

Patients sign in, book and pay through either web instance; the wallet sandbox notifies the
instance that created the trade; two workers deliver the outbox (each with several delivery
threads) and process what the HIS sends to either listener, every message sent twice. Then:
every outbox item was delivered exactly once (one SRM^S01 per booking at the HIS, one message
per push in the wallet), and every inbound message was applied once (one result each).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from adapter.config import load_config
from adapter.his.header import decode_message
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient
from adapter.his.simulator import HisSimulator
from adapter.models import Booking, InboundMessage, OutboxMessage, Patient, Result
from adapter.protection import generate_key_file
from adapter.wallet.alipay import signing
from adapter.wallet.sandbox.state import SandboxState
from tests.integration.test_crash_recovery import MAP, pool_simulator_slots
from tests.integration.test_wallet_sandbox import APP_ID, SELLER_ID, Sandbox

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PATIENTS = 12
PREFIX = "2088300"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CountingHis:
    """The HIS simulator on a real MLLP socket, counting every message it receives by type."""

    def __init__(self) -> None:
        self.simulator = HisSimulator(MAP, tz=load_config({}).tz, seed=3)
        self.received: Counter[tuple[str, str]] = Counter()  # (type, MSH-10)
        self._lock = threading.Lock()
        self.server = MllpServer("127.0.0.1", 0, self.handle)
        self.server.start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def handle(self, payload: bytes) -> bytes:
        _text, header = decode_message(payload)
        with self._lock:
            kind = f"{header.message_code}^{header.trigger_event}"
            self.received[(kind, header.control_id)] += 1
        return self.simulator.handle(payload)

    def of_type(self, prefix: str) -> Counter[str]:
        with self._lock:
            return Counter({cid: n for (kind, cid), n in self.received.items()
                            if kind.startswith(prefix)})


@pytest.fixture
def system(engine, tmp_path: Path):
    if engine.dialect.name != "postgresql":
        pytest.skip("several instances share PostgreSQL")
    his = CountingHis()
    app_private, app_public = signing.generate_key_pair()
    state = SandboxState(app_public_key=app_public, app_id=APP_ID, seller_id=SELLER_ID, seed=5)
    sandbox = Sandbox(state)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "app_private.pem").write_text(app_private)
    (keys / "platform_public.pem").write_text(state.platform_public_pem)
    generate_key_file(keys / "data.key")
    base = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
    base.update({
        "ADAPTER_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "ADAPTER_DATA_DIR": str(tmp_path), "ADAPTER_DATA_KEY_FILE": str(keys / "data.key"),
        "ADAPTER_SECRET_KEY": "several-instances", "ADAPTER_HIS_MLLP": his.address,
        "ADAPTER_ALIPAY_GATEWAY": sandbox.gateway, "ADAPTER_ALIPAY_APP_ID": APP_ID,
        "ADAPTER_ALIPAY_SELLER_ID": SELLER_ID,
        "ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE": str(keys / "app_private.pem"),
        "ADAPTER_ALIPAY_PUBLIC_KEY_FILE": str(keys / "platform_public.pem"),
        "ADAPTER_ALIPAY_MESSAGE_TEMPLATE_ID": "TPL", "ADAPTER_THROTTLE": "off",
        "ADAPTER_MLLP_LISTEN": f"127.0.0.1:{_free_port()}",
    })
    processes: list[tuple[str, subprocess.Popen, Path]] = []

    def start(name: str, *args: str, **env: str) -> None:
        log = tmp_path / f"{name}.log"
        process = subprocess.Popen([sys.executable, "-m", "adapter.cli", *args],
                                   env={**base, **env}, stdout=log.open("w"),
                                   stderr=subprocess.STDOUT)
        processes.append((name, process, log))

    webs, listeners = [], []
    for n in (1, 2):
        port = _free_port()
        webs.append(f"http://127.0.0.1:{port}")
        start(f"web{n}", "web", "--workers", "1", ADAPTER_WEB_LISTEN=f"127.0.0.1:{port}",
              ADAPTER_PUBLIC_URL=webs[-1])
        port = _free_port()
        listeners.append(port)
        start(f"listener{n}", "listener", ADAPTER_MLLP_LISTEN=f"127.0.0.1:{port}")
        start(f"worker{n}", "worker", ADAPTER_OUTBOX_CONCURRENCY="4",
              ADAPTER_HIS_CONNECTIONS="3")
    try:
        deadline = time.monotonic() + 60
        for url in webs:
            while True:
                try:
                    if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, _logs(processes)
                time.sleep(0.2)
        for port in listeners:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, _logs(processes)
                    time.sleep(0.2)
        yield his, sandbox, webs, listeners, processes
    finally:
        for _name, process, _log in processes:
            process.terminate()
        for _name, process, _log in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()
        his.server.shutdown()


def _logs(processes) -> str:
    return "\n".join(f"--- {name} (exit {p.poll()})\n{log.read_text()[-3000:]}"
                     for name, p, log in processes)


def _wait(what: str, done, processes, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}\n{_logs(processes)}"
        time.sleep(0.3)


def _sign_in(web: str, sandbox: Sandbox, user_id: str) -> tuple[requests.Session, int]:
    session = requests.Session()
    code = requests.post(f"{sandbox.url}/_sandbox/auth_code", json={"user_id": user_id},
                         timeout=10).json()["auth_code"]
    state = session.get(f"{web}/api/v1/session/login-url",
                        params={"redirect_uri": f"{web}/h5/"}, timeout=10).json()["state"]
    signed = session.post(f"{web}/api/v1/session", json={"auth_code": code, "state": state},
                          timeout=10)
    assert signed.status_code == 201, signed.text
    me = next(p for p in signed.json()["patients"] if p["relation"] == "self")
    return session, me["id"]


def _oru(control_id: str, his_patient_id: str, name: str, birth: dt.date, order: str) -> bytes:
    lines = [
        f"MSH|^~\\&|LIS|DEMO_HOSPITAL|FHA|WALLET|20261203093100+0800||ORU^R01^ORU_R01|"
        f"{control_id}|P|2.5|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{his_patient_id}^^^HIS^PI||{name}^^^^^^L||{birth:%Y%m%d}|M",
        f"OBR|1|{order}|{order}L|CBC^血常规^L|||20261203083000+0800|||||||||D001^王医生||||||"
        "20261203093000+0800|||F",
        "OBX|1|NM|WBC^白细胞计数^L||6.2|10*9/L|3.5-9.5|N|||F|||20261203090000+0800",
    ]
    return "\r".join(lines).encode("utf-8")


def test_two_of_each_role_deliver_every_item_once_and_apply_every_message_once(
        system, session_factory):
    his, sandbox, webs, listeners, processes = system
    users = requests.post(f"{sandbox.url}/_sandbox/users", json={"count": PATIENTS,
                          "prefix": PREFIX}, timeout=30).json()["user_ids"]
    slot_ids = pool_simulator_slots(session_factory, his.simulator, PATIENTS)

    # Through both web instances at once: sign in, hold, pay (the sandbox notifies the web
    # instance whose public URL the trade carries).
    def patient(n: int) -> str:
        web = webs[n % 2]
        session, patient_id = _sign_in(web, sandbox, users[n])
        held = session.post(f"{web}/api/v1/bookings",
                            json={"slot_id": slot_ids[n], "patient_id": patient_id},
                            headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=10)
        assert held.status_code == 201, held.text
        payment = session.post(f"{web}/api/v1/payments", json={"booking_id": held.json()["id"]},
                               headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=10)
        assert payment.status_code == 201, payment.text
        paid = requests.post(f"{sandbox.url}/_sandbox/pay/{payment.json()['out_trade_no']}",
                             timeout=10)
        assert paid.status_code == 200, paid.text
        return held.json()["id"]

    threads = [threading.Thread(target=lambda n=n: booked.append(patient(n)))
               for n in range(PATIENTS)]
    booked: list[str] = []
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(booked) == PATIENTS

    def confirmed() -> int:
        with session_factory() as session:
            return session.scalar(select(func.count()).select_from(Booking)
                                  .where(Booking.status == "confirmed"))

    _wait("every booking confirmed", lambda: confirmed() == PATIENTS, processes)

    # Results for each patient, sent twice: once to each listener (a HIS failing over).
    with session_factory() as session:
        people = [(p.his_patient_id, p.name, p.birth_date) for p in session.scalars(
            select(Patient).where(Patient.his_patient_id.is_not(None)).order_by(Patient.id))]
    assert len(people) == PATIENTS
    messages = [_oru(f"R{n:04d}", his_id, name, birth, f"ORD{n:04d}")
                for n, (his_id, name, birth) in enumerate(people)]

    def send(port: int) -> None:
        with MllpClient("127.0.0.1", port) as client:
            for message in messages:
                client.send(message)

    senders = [threading.Thread(target=send, args=(port,)) for port in listeners]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()

    def results() -> int:
        with session_factory() as session:
            return session.scalar(select(func.count()).select_from(Result))

    def settled() -> bool:
        with session_factory() as session:
            pending = session.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status != "done"))
            unprocessed = session.scalar(select(func.count()).select_from(InboundMessage)
                                         .where(InboundMessage.status == "received"))
        return results() == PATIENTS and pending == 0 and unprocessed == 0

    _wait("every result applied and every push sent", settled, processes)

    # Exactly once at the HIS: one SRM^S01 per booking, none sent twice (no fault was injected,
    # so a second copy could only come from two workers holding one item).
    bookings = his.of_type("SRM^S01")
    assert sum(bookings.values()) == PATIENTS and set(bookings.values()) == {1}, bookings
    appointments = Counter(a.placer_appointment_id for a in his.simulator.appointments.values())
    assert sorted(appointments) == sorted(booked) and set(appointments.values()) == {1}
    with session_factory() as session:
        outbox = session.execute(select(OutboxMessage.kind, OutboxMessage.attempts)).all()
        inbound = Counter(session.scalars(select(InboundMessage.status)))
    assert outbox and all(attempts == 1 for _kind, attempts in outbox), outbox
    # Every message stored once (the copy to the other listener is a duplicate) and applied.
    with session_factory() as session:
        stored = session.scalar(select(func.count()).select_from(InboundMessage)
                                .where(InboundMessage.message_type.like("ORU%")))
    assert stored == PATIENTS, inbound
    # In the wallet: per patient, the pushes its outbox items made, each once.
    kinds = Counter(kind for kind, _attempts in outbox)
    inboxes = sandbox.state.inboxes
    pushes = sum(len(inboxes.get(user, [])) for user in users)
    assert pushes == kinds["push"] + kinds["result_push"], (pushes, kinds)
    assert kinds["result_push"] == PATIENTS and kinds["his_book"] == PATIENTS, kinds
    print(f"\nseveral instances: {PATIENTS} bookings, {len(outbox)} outbox items "
          f"({dict(kinds)}) each attempted once; {stored} results of {2 * PATIENTS} "
          f"messages sent; {pushes} wallet messages")
