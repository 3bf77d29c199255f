"""Inbound HL7 throughput: the adapter's listener against hl7apy's MLLPServer.

Starts `hospital-adapter db upgrade` and `hospital-adapter listener` as subprocesses on a
temporary SQLite database (or --database-url), sends N ORU^R01 messages (about 2 KB, unique
MSH-10 each) over 1 and over 8 connections with MllpClient, and prints messages/s and ACK
latency p50/p99. Then does the same against hl7apy.mllp.MLLPServer (in its own process) with a
handler that parses each message with hl7apy and answers an ACK built with hl7apy. hl7apy's server
closes the connection after one message, so that half opens a connection per message.

    .venv/bin/python bench/mllp_ingest.py -n 2000 --connections 1,8

Results mode (``--results``, on PostgreSQL: ``--database-url postgresql+psycopg://...``, a
database the bench may empty): patients are seeded with their HIS ids and verified links, so
every ORU^R01 is matched, released and announced (outbox on). The listener takes ``-n`` messages
over each connection count with no worker running (a HIS outage's backlog, 10,000 by default),
then ``--workers`` inbound-runner processes drain it; it prints the ACK rate and p99, the rate
at which results became readable, checks some patients' results through GET /api/v1/results,
and ends with the line ``results_ingest: ack_per_s=<n> processed_per_s=<n> ack_p99_ms=<n>``.

    .venv/bin/python bench/mllp_ingest.py --results -n 5000 --connections 1,8 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adapter.his.header import parse_ack  # noqa: E402
from adapter.his.mllp import FrameDecoder, frame  # noqa: E402
from adapter.his.mllp_client import MllpClient  # noqa: E402

ANALYTES = [
    ("WBC", "White blood cells", "6.8", "10*9/L", "3.5-9.5", "N"),
    ("RBC", "Red blood cells", "4.52", "10*12/L", "3.8-5.1", "N"),
    ("HGB", "Hemoglobin", "136", "g/L", "115-150", "N"),
    ("HCT", "Hematocrit", "0.41", "L/L", "0.35-0.45", "N"),
    ("MCV", "Mean corpuscular volume", "90.7", "fL", "82-100", "N"),
    ("MCH", "Mean corpuscular hemoglobin", "30.1", "pg", "27-34", "N"),
    ("MCHC", "MCH concentration", "332", "g/L", "316-354", "N"),
    ("PLT", "Platelets", "412", "10*9/L", "125-350", "H"),
    ("NEUT%", "Neutrophils", "0.62", "1", "0.40-0.75", "N"),
    ("LYMPH%", "Lymphocytes", "0.29", "1", "0.20-0.50", "N"),
    ("MONO%", "Monocytes", "0.06", "1", "0.03-0.10", "N"),
    ("EOS%", "Eosinophils", "0.02", "1", "0.004-0.08", "N"),
    ("BASO%", "Basophils", "0.01", "1", "0-0.01", "N"),
    ("CRP", "C-reactive protein", "3.2", "mg/L", "0-10", "N"),
    ("GLU", "Glucose", "5.4", "mmol/L", "3.9-6.1", "N"),
]


def oru(control_id: str, n: int) -> bytes:
    """A realistic, fake ORU^R01 (complete blood count) of about 2 KB."""
    ts = "20240301083000"
    segments = [
        f"MSH|^~\\&|LIS|BJ-HOSP|FHA|WALLET|{ts}+0800||ORU^R01^ORU_R01|{control_id}|P|2.5"
        "|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{100000 + n}^^^HIS^PI~11010519491231002X^^^CHN^RESIDENT||张^三^^^^^L"
        "||19491231|M|||朝阳区建国路88号^^北京^^100022^CHN||^PRN^PH^^^^13800138000",
        f"PV1|1|O|NEI^201^1^BJ-HOSP||||1234^李^医生|||MED||||||||V{n}",
        f"ORC|RE|PL{n}|FL{n}||CM||||{ts}",
        f"OBR|1|PL{n}|FL{n}|CBC^Complete blood count^LN|||{ts}|||||||{ts}|BLD|1234^李^医生"
        f"||||||{ts}||HM|F",
    ]
    for i, (code, name, value, unit, ref, flag) in enumerate(ANALYTES, 1):
        segments.append(
            f"OBX|{i}|NM|{code}^{name}^LOCAL||{value}|{unit}|{ref}|{flag}|||F|||{ts}|LAB^检验科"
        )
    segments.append("NTE|1|L|Specimen received in good condition; results reviewed by the lab.")
    return ("\r".join(segments) + "\r").encode("utf-8")


def resident_id(n: int) -> str:
    """A made-up resident ID number (GB 11643 check digit) for bench patient ``n``."""
    from stdnum.cn import ric

    body = f"1101011980{(n // 1000) % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def result_oru(control_id: str, n: int, patients: int) -> bytes:
    """An ORU^R01 (a blood count) for bench patient ``n % patients``; for every tenth patient,
    each second message is the correction of the order before it."""
    patient = n % patients
    visit = n // patients
    corrected = patient % 10 == 9 and visit % 2 == 1
    order = visit - 1 if corrected else visit
    status = "C" if corrected else "F"
    ts = "20240301083000"
    segments = [
        f"MSH|^~\\&|LIS|BJ-HOSP|FHA|WALLET|{ts}+0800||ORU^R01^ORU_R01|{control_id}|P|2.5"
        "|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||B{patient:07d}^^^HIS^PI~{resident_id(patient)}^^^CHN^NNCHN||测试{patient}"
        "^^^^^^L||19800101|M",
        f"ORC|RE|PL{patient}-{order}|FL{patient}-{order}||CM",
        f"OBR|1|PL{patient}-{order}|FL{patient}-{order}|CBC^Complete blood count^LN|||{ts}"
        f"|||||||{ts}|BLD|1234^李^医生||||||{ts}||HM|{status}",
    ]
    for i, (code, name, value, unit, ref, flag) in enumerate(ANALYTES, 1):
        value = f"{value}1" if corrected and i == 1 else value
        segments.append(f"OBX|{i}|NM|{code}^{name}^LOCAL||{value}|{unit}|{ref}|{flag}|||"
                        f"{status}|||{ts}|LAB^检验科")
    return ("\r".join(segments) + "\r").encode("utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(send, messages: list[tuple[str, bytes]], connections: int) -> dict:
    """Spread messages over `connections` threads; `send(worker, control_id, payload)` -> code."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    chunks = [messages[i::connections] for i in range(connections)]

    def worker(index: int) -> None:
        state: dict = {}
        local_lat, local_codes, local_errors = [], Counter(), Counter()
        for control_id, payload in chunks[index]:
            started = time.perf_counter()
            try:
                local_codes[send(state, control_id, payload)] += 1
            except Exception as exc:  # counted and shown, the run goes on
                local_errors[type(exc).__name__] += 1
                continue
            local_lat.append(time.perf_counter() - started)
        if "client" in state:
            state["client"].close()
        with lock:
            latencies.extend(local_lat)
            codes.update(local_codes)
            errors.update(local_errors)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50": percentile(latencies, 0.50) * 1000 if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) * 1000 if latencies else float("nan"),
        "mean": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "codes": dict(codes),
        "errors": dict(errors),
    }


def adapter_sender(port: int):
    def send(state: dict, control_id: str, payload: bytes) -> str:
        client = state.get("client")
        if client is None:
            client = state["client"] = MllpClient("127.0.0.1", port, ack_timeout=30, retries=2)
        return client.send_checked(payload, control_id).code

    return send


def hl7apy_sender(port: int):
    # hl7apy's MLLPServer answers one message and closes: one connection per message.
    def send(state: dict, control_id: str, payload: bytes) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(frame(payload))
            decoder = FrameDecoder()
            while True:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed without ACK")
                for event in decoder.feed(data):
                    if isinstance(event, bytes):
                        ack = parse_ack(event)
                        if ack.control_id != control_id:
                            raise ValueError("ACK for another message")
                        return ack.code

    return send


def serve_hl7apy(port: int) -> None:
    """Child-process mode: hl7apy's own MLLP server with a parse-and-ACK handler."""
    from hl7apy.core import Message
    from hl7apy.mllp import AbstractHandler, MLLPServer
    from hl7apy.parser import parse_message

    class OruHandler(AbstractHandler):
        def reply(self) -> str:
            incoming = parse_message(self.incoming_message)
            ack = Message("ACK", version="2.5")
            ack.msh.msh_3 = "FHA"
            ack.msh.msh_4 = "WALLET"
            ack.msh.msh_5 = incoming.msh.msh_3.value
            ack.msh.msh_6 = incoming.msh.msh_4.value
            ack.msh.msh_9 = "ACK^R01^ACK"
            ack.msh.msh_10 = "A" + incoming.msh.msh_10.value
            ack.msh.msh_11 = "P"
            ack.msa.msa_1 = "AA"
            ack.msa.msa_2 = incoming.msh.msh_10.value
            return ack.to_mllp()

    server = MLLPServer("127.0.0.1", port, {"ORU^R01^ORU_R01": (OruHandler,)})
    server.daemon_threads = True
    server.serve_forever()


def hospital_adapter() -> str:
    local = Path(sys.executable).parent / "hospital-adapter"
    if local.exists():
        return str(local)
    return shutil.which("hospital-adapter") or "hospital-adapter"


def start_adapter(database_url: str, port: int, log) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        ADAPTER_DATABASE_URL=database_url,
        ADAPTER_MLLP_LISTEN=f"127.0.0.1:{port}",
        ADAPTER_THROTTLE="off",  # the listener has none; the same switch as every bench
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    subprocess.run([hospital_adapter(), "db", "upgrade"], env=env, check=True, cwd=REPO,
                   stdout=log, stderr=log)
    proc = subprocess.Popen([hospital_adapter(), "listener"], env=env, cwd=REPO,
                            stdout=log, stderr=log)
    wait_for_port(port, proc)
    return proc


def start_hl7apy(port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-hl7apy", str(port)],
                            stdout=log, stderr=log)
    wait_for_port(port, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _bench_env(database_url: str, key_file: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ADAPTER_DATABASE_URL=database_url, ADAPTER_MLLP_LISTEN=f"127.0.0.1:{port}",
        ADAPTER_DATA_KEY_FILE=str(key_file), ADAPTER_THROTTLE="off",
        ADAPTER_SECRET_KEY="bench-only-secret",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    return env


def seed_patients(runtime, patients: int) -> None:
    """Empty the database, then one certified wallet user per bench patient, whose self link
    the HIS knows as B<n>: every result is matched, released and announced."""
    from sqlalchemy import insert

    from adapter.db import Base
    from adapter.models import Patient, Verification, WalletAccount

    protector = runtime.protector
    with runtime.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
        connection.execute(insert(WalletAccount), [
            {"id": n + 1, "platform": "alipay", "user_id": f"2088{n:012d}", "is_certified": True}
            for n in range(patients)])
        connection.execute(insert(Patient), [
            {"wallet_account_id": n + 1, "relation": "self", "name": f"测试{n}",
             "document_type": "RESIDENT_ID",
             "document_number_enc": protector.encrypt(resident_id(n), "document"),
             "document_index": protector.blind_index(resident_id(n), "RESIDENT_ID"),
             "document_masked": "1*****************", "birth_date": dt.date(1980, 1, 1),
             "sex": "M", "his_patient_id": f"B{n:07d}", "verification": Verification.SELF}
            for n in range(patients)])
        if runtime.engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('wallet_account', 'id'), "
                f"{patients + 1})")


def drain_child() -> None:
    """Child-process mode: one inbound runner (as the worker runs it) until nothing waits."""
    from sqlalchemy import func, select

    from adapter.config import load_config
    from adapter.models import InboundMessage, InboundStatus
    from adapter.runtime import Runtime
    from adapter.worker.inbound import drain_inbound

    runtime = Runtime.from_config(load_config())
    idle = 0
    while idle < 3:
        if drain_inbound(runtime):
            idle = 0
            continue
        with runtime.session_factory() as session:
            waiting = session.scalar(select(func.count()).select_from(InboundMessage).where(
                InboundMessage.status == InboundStatus.RECEIVED))
        idle = idle + 1 if not waiting else 0
        time.sleep(0.05)


def read_through_api(runtime, patients: int, sample: int = 20) -> tuple[int, int]:
    """GET /api/v1/results as some bench patients: (results listed, results expected)."""
    from sqlalchemy import func, select

    from adapter import create_app
    from adapter.identity.sessions import start_session
    from adapter.models import Patient, Result
    from adapter.web.api.errors import SESSION_FIELD

    app = create_app(runtime=runtime)
    listed = expected = 0
    with app.app_context():
        from adapter.web.api.errors import session_key_id

        key = session_key_id()
    for n in range(0, patients, max(1, patients // sample)):
        with runtime.session_factory.begin() as session:
            patient = session.scalar(select(Patient).where(Patient.his_patient_id == f"B{n:07d}"))
            token = start_session(session, patient.wallet_account_id, key=key,
                                  now=dt.datetime.now(dt.UTC))
            expected += session.scalar(select(func.count()).select_from(Result).where(
                Result.document_index == patient.document_index, Result.state == "released"))
        client = app.test_client()
        with client.session_transaction() as cookie:
            cookie[SESSION_FIELD] = token
        answer = client.get("/api/v1/results")
        listed += len(answer.get_json()["results"]) if answer.status_code == 200 else 0
    return listed, expected


def results_mode(args: argparse.Namespace, counts: list[int]) -> int:
    """ORU^R01 with matching and outbox on: ACK rate, then the backlog drained by workers."""
    from sqlalchemy import func, select

    from adapter.config import load_config
    from adapter.models import InboundMessage, InboundStatus, OutboxMessage, Result
    from adapter.protection import generate_key_file
    from adapter.runtime import Runtime

    if not args.database_url or not args.database_url.startswith("postgresql"):
        print("--results measures PostgreSQL: give --database-url postgresql+psycopg://...",
              file=sys.stderr)
        return 2
    run_id = time.strftime("%H%M%S")
    total = args.n * len(counts)
    with tempfile.TemporaryDirectory(prefix="results-bench-") as tmp:
        key_file = Path(tmp) / "data.key"
        generate_key_file(key_file)
        port = free_port()
        env = _bench_env(args.database_url, key_file, port)
        os.environ.update(env)  # this process reads the same database and key
        log_path = Path(tmp) / "servers.log"
        with log_path.open("w") as log:
            subprocess.run([hospital_adapter(), "db", "upgrade"], env=env, check=True,
                           cwd=REPO, stdout=log, stderr=log)
            runtime = Runtime.from_config(load_config())
            seed_patients(runtime, args.patients)
            listener = subprocess.Popen([hospital_adapter(), "listener"], env=env, cwd=REPO,
                                        stdout=log, stderr=log)
            acks: dict[int, dict] = {}
            try:
                wait_for_port(port, listener)
                print(f"{args.patients} patients; {args.n} ORU^R01 of about "
                      f"{len(result_oru('SIZE', 0, args.patients))} bytes per connection count "
                      f"{counts}; backlog {total}; {args.workers} inbound runners", flush=True)
                offset = 0
                for c in counts:
                    messages = [(f"R{run_id}-{i}", result_oru(f"R{run_id}-{i}", i,
                                                              args.patients))
                                for i in range(offset, offset + args.n)]
                    offset += args.n
                    acks[c] = run_load(adapter_sender(port), messages, c)
                    report("ack", c, acks[c], "  (stored before the ACK; no worker running)")
            finally:
                stop(listener)
            started = time.perf_counter()
            workers = [subprocess.Popen([sys.executable, __file__, "--drain-inbound"], env=env,
                                        cwd=REPO, stdout=log, stderr=log)
                       for _ in range(args.workers)]
            try:
                while True:
                    with runtime.session_factory() as session:
                        waiting = session.scalar(
                            select(func.count()).select_from(InboundMessage)
                            .where(InboundMessage.status == InboundStatus.RECEIVED))
                    if not waiting or all(w.poll() is not None for w in workers):
                        break
                    time.sleep(0.1)
                elapsed = time.perf_counter() - started
            finally:
                for worker in workers:
                    stop(worker)
        with runtime.session_factory() as session:
            statuses = dict(session.execute(
                select(InboundMessage.status, func.count())
                .group_by(InboundMessage.status)).all())
            results = session.scalar(select(func.count()).select_from(Result).where(
                Result.state == "released"))
            pushes = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.kind == "result_push"))
        processed = statuses.get(InboundStatus.PROCESSED, 0)
        listed, expected = read_through_api(runtime, args.patients)
    rate = processed / elapsed if elapsed else 0.0
    print(f"drained  workers={args.workers:<3} {rate:9.1f} msg/s  {processed} of {total} "
          f"processed in {elapsed:.1f} s; statuses {statuses}; {results} results released, "
          f"{pushes} result pushes queued", flush=True)
    print(f"api      GET /api/v1/results as {args.patients // max(1, args.patients // 20)} "
          f"patients: {listed} of {expected} released results listed", flush=True)
    best = max(acks.values(), key=lambda r: r["rate"])
    worst_p99 = max(r["p99"] for r in acks.values())
    print(f"results_ingest: ack_per_s={best['rate']:.0f} processed_per_s={rate:.0f} "
          f"ack_p99_ms={worst_p99:.1f}")
    return 0


def report(name: str, connections: int, result: dict, note: str = "") -> None:
    extra = f"  codes={result['codes']}"
    if result["errors"]:
        extra += f"  errors={result['errors']}"
    print(f"{name:<8} conns={connections:<3} {result['rate']:9.1f} msg/s  "
          f"p50={result['p50']:7.2f} ms  p99={result['p99']:7.2f} ms{extra}{note}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="messages per run (default 1000)")
    parser.add_argument("--connections", default="1,8", help="connection counts (default 1,8)")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--targets", default="adapter,hl7apy",
                        help="which servers to measure (default adapter,hl7apy)")
    parser.add_argument("--results", action="store_true",
                        help="results mode: matching and outbox on, backlog drained by workers")
    parser.add_argument("--patients", type=int, default=1000,
                        help="results mode: patients the messages are about (default 1000)")
    parser.add_argument("--workers", type=int, default=4,
                        help="results mode: inbound runner processes (default 4)")
    parser.add_argument("--serve-hl7apy", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--drain-inbound", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hl7apy:
        serve_hl7apy(args.serve_hl7apy)
        return 0
    if args.drain_inbound:
        drain_child()
        return 0

    counts = [int(c) for c in args.connections.split(",") if c.strip()]
    if args.results:
        return results_mode(args, counts)
    targets = {t.strip() for t in args.targets.split(",")}
    sample = oru("SIZE", 0)
    print(f"{args.n} ORU^R01 messages of about {len(sample)} bytes per run; "
          f"connections {counts}", flush=True)
    results: dict[tuple[str, int], dict] = {}
    run_id = time.strftime("%H%M%S")

    with tempfile.TemporaryDirectory(prefix="mllp-bench-") as tmp:
        log_path = Path(tmp) / "servers.log"
        with log_path.open("w") as log:
            if "adapter" in targets:
                database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
                port = free_port()
                try:
                    proc = start_adapter(database_url, port, log)
                except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                    log.flush()
                    tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
                    print(f"adapter listener unavailable: {exc}", file=sys.stderr)
                    print("\n".join(tail), file=sys.stderr)
                else:
                    try:
                        for c in counts:
                            messages = [(f"B{run_id}-{c}-{i}", oru(f"B{run_id}-{c}-{i}", i))
                                        for i in range(args.n)]
                            results["adapter", c] = run_load(adapter_sender(port), messages, c)
                            report("adapter", c, results["adapter", c])
                    finally:
                        stop(proc)
            if "hl7apy" in targets:
                port = free_port()
                proc = start_hl7apy(port, log)
                try:
                    for c in counts:
                        messages = [(f"H{run_id}-{c}-{i}", oru(f"H{run_id}-{c}-{i}", i))
                                    for i in range(args.n)]
                        results["hl7apy", c] = run_load(hl7apy_sender(port), messages, c)
                        report("hl7apy", c, results["hl7apy", c],
                               "  (one connection per message: hl7apy closes after each)")
                finally:
                    stop(proc)

    for c in counts:
        ours, theirs = results.get(("adapter", c)), results.get(("hl7apy", c))
        if ours and theirs and theirs["rate"]:
            print(f"ratio    conns={c:<3} adapter/hl7apy = {ours['rate'] / theirs['rate']:.1f}x "
                  f"throughput, p50 {theirs['p50'] / ours['p50']:.1f}x lower latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
