"""The morning slot release: many patients (and some scalper-like double clicks) at once.

Starts the real system on 127.0.0.1 free ports, on a PostgreSQL database recreated for the run:
`hospital-adapter db upgrade`, the HIS simulator, the wallet sandbox (notify time scale 1), the
worker and the web role under gunicorn (`hospital-adapter web --workers K`). Then it creates N
sandbox users (POST /_sandbox/users), signs each in through the real path (sandbox auth_code ->
POST /api/v1/session, one cookie jar per patient), and at a department's release moment fires:

  A "many": everyone books a random open slot of one department's day (many doctors), trying
     another slot on 409 slot.full (bounded);
  B "one":  everyone races for one doctor's session (the simulator's 10 numbered slots per
     session; --one-sessions 2 takes the doctor's whole day, 20), trying until they get one or
     none remain; 10% of the patients double-click: every request sent twice at once with the
     same Idempotency-Key.

Then the winners pay (POST /api/v1/payments, then the sandbox pays as the buyer), the bench waits
(bounded) for their bookings to become "confirmed" (the worker's SRM^S01 to the simulator), and
checks the database directly: overbooked slots and lost payments must both be 0. GET /healthz is
measured with the same client, concurrency and server, for comparison.

Release moments: release_time in mappings/departments.csv is HH:MM (hospital time), so the bench
copies mappings/ into a temporary directory, sets the chosen departments' release_time to a coming
minute (and release_days_ahead so that the visit date is inside the simulator's week), and points
ADAPTER_MAPPINGS_DIR and the simulator there. If setting up took longer than planned, it moves the
moment and restarts the web role.

The client is a thread pool with one requests.Session per patient (no aiohttp/httpx in the
project): it shares the machine's cores with the server, the worker, the simulators and
PostgreSQL, and the CPU each used during every phase is printed next to the figures.

    .venv/bin/python bench/rush.py --patients 200 --clients 64 --scene both
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

HOSPITAL_TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
SELLER_ID = "2088000000000001"
USER_PREFIX = "2088100"
PROTECTED_DATABASES = {"postgres", "template0", "template1", "test"}
ACTIVE = ("pending_payment", "confirming", "confirmed")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A patient who paid watches the booking page, which asks for the booking's status every 2 s
# (adapter/static/h5/booking.js POLL_MS); the bench's patients do the same.
POLL_SECONDS = 2.0


# -- measuring ------------------------------------------------------------------------------


class Stats:
    """Every request of one kind: (start, end, outcome), thread-safe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float, str]] = []

    def add(self, started: float, ended: float, outcome: str) -> None:
        with self.lock:
            self.samples.append((started, ended, outcome))

    def select(self, keep: Callable[[str], bool] | None = None) -> list[tuple[float, float, str]]:
        with self.lock:
            return [s for s in self.samples if keep is None or keep(s[2])]

    def outcomes(self) -> Counter[str]:
        with self.lock:
            return Counter(s[2] for s in self.samples)

    def summary(self, keep: Callable[[str], bool] | None = None) -> dict[str, float]:
        """Count, requests/s over first send .. last answer, latency p50/p99/max in ms."""
        samples = self.select(keep)
        if not samples:
            return {"n": 0, "rps": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0, "wall": 0.0}
        latencies = sorted(end - start for start, end, _ in samples)
        wall = max(e for _, e, _ in samples) - min(s for s, _, _ in samples)
        return {
            "n": len(samples),
            "rps": len(samples) / wall if wall > 0 else float("inf"),
            "p50": percentile(latencies, 50) * 1000,
            "p99": percentile(latencies, 99) * 1000,
            "max": latencies[-1] * 1000,
            "wall": wall,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def call(stats: Stats | None, session: requests.Session, method: str, url: str,
         timeout: float, **kwargs: Any) -> tuple[int, dict]:
    """One HTTP request, timed; status 0 when the connection failed or timed out."""
    started = time.perf_counter()
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
        status = response.status_code
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"error": "not-json"}
    except requests.RequestException as exc:
        status, body = 0, {"error": type(exc).__name__}
    ended = time.perf_counter()
    if not isinstance(body, dict):
        body = {"value": body}
    if stats is not None:
        error = body.get("error") if status >= 400 or status == 0 else ""
        stats.add(started, ended, f"{status} {error}".strip() if error else str(status))
    return status, body


def not_released(outcome_or_error: str) -> bool:
    """A refusal because the slots are not released yet (the code names the release)."""
    return "release" in outcome_or_error


# -- CPU accounting -------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, ppid, utime+stime seconds) of a process, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_snapshot(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: each started role with its children, PostgreSQL, this client, all."""
    table: dict[int, tuple[str, int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, (_comm, ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        total, stack, seen = 0.0, [pid], 0
        while stack and seen < 10_000:
            current = stack.pop()
            seen += 1
            if current in table:
                total += table[current][2]
            stack.extend(children.get(current, []))
        return total

    snapshot = {name: tree(pid) for name, pid in roots.items()}
    snapshot["postgres"] = sum(c for comm, _p, c in table.values() if comm == "postgres")
    times = os.times()
    snapshot["client"] = times.user + times.system
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    snapshot["machine"] = (sum(values[:8]) - idle) / CLK_TCK
    return snapshot


def cpu_used(before: dict[str, float], after: dict[str, float], wall: float,
             requests_served: int = 0) -> str:
    """Cores each part kept busy over ``wall``; with a request count, CPU ms per request."""
    if wall <= 0:
        return ""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    ours = sum(v for name, v in used.items() if name != "machine")
    parts = [f"{name} {v / wall:.2f}" for name, v in used.items() if name != "machine"]
    parts.append(f"everything else on the machine {max(0.0, used['machine'] - ours) / wall:.2f}")
    text_ = "cores busy: " + ", ".join(parts) + f" (of {os.cpu_count()})"
    if requests_served:
        per = {name: used[name] * 1000 / requests_served
               for name in ("web", "postgres", "client", "sandbox") if name in used}
        text_ += (f"\n  CPU per web request ({requests_served} in the window): "
                  + ", ".join(f"{name} {ms:.1f} ms" for name, ms in per.items()))
    return text_


def web_requests(bench: Bench, since: float, until: float) -> int:
    """Requests to the web role (not the sandbox) started in [since, until] (perf_counter)."""
    return sum(1 for name, stats in list(bench.stats.items()) if not name.startswith("sandbox")
               for started, _e, _o in stats.select() if since <= started <= until)


# -- the system under test -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_database(url: str) -> None:
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.host not in ("127.0.0.1", "localhost"):
        raise SystemExit("--database-url must name a PostgreSQL on 127.0.0.1")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name) or name in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to recreate database {name!r}: name a bench database")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def next_minute(earliest: dt.datetime) -> dt.datetime:
    """The first whole minute at or after ``earliest`` (hospital time)."""
    moment = earliest.astimezone(HOSPITAL_TZ)
    rounded = moment.replace(second=0, microsecond=0)
    return rounded if rounded >= moment else rounded + dt.timedelta(minutes=1)


def write_mappings(source: Path, target: Path, releases: dict[str, dt.datetime],
                   days_ahead: int, extra_doctors: dict[str, int]) -> None:
    """Copy mappings/ to ``target`` with the given departments released at the given minutes
    (visit date = release day + days_ahead) and some doctors added to departments."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    path = target / "departments.csv"
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for row in rows:
        moment = releases.get(row["code"])
        if moment is not None:
            row["release_time"] = moment.strftime("%H:%M")
            row["release_days_ahead"] = str(days_ahead)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    path = target / "doctors.csv"
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for department, count in extra_doctors.items():
        template = next((r for r in rows if r["department_code"] == department
                         and not r["code"].startswith("G")), None)
        if template is None:
            raise SystemExit(f"no doctor of department {department} in {source}/doctors.csv")
        for n in range(1, count + 1):
            rows.append({**template, "code": f"B{department}{n:02d}",
                         "name_zh": f"压测医生{n}", "name_en": f"Bench Doctor {n}"})
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


class System:
    """The started processes (each logging to a file in the work directory)."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "adapter.cli", *args]

    def run_once(self, name: str, *args: str, timeout: float = 120) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            result = subprocess.run(self.command(*args), env=self.env, cwd=self.workdir,
                                    stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        if result.returncode:
            raise SystemExit(f"`hospital-adapter {' '.join(args)}` failed:\n{tail(log)}")

    def start(self, name: str, *args: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            process = subprocess.Popen(self.command(*args), env={**self.env, **(env or {})},
                                       cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def wait_port(self, name: str, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check(name)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{name} did not listen on {port} in {timeout:.0f}s:\n{self.tail(name)}")

    def wait_http(self, name: str, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check(name)
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{url} did not answer 200 in {timeout:.0f}s:\n{self.tail(name)}")

    def check(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with code {process.returncode}:\n{self.tail(name)}")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop_all(self) -> None:
        for name in ("web", "notify", "worker", "sandbox", "his"):
            self.stop(name)
        for name in list(self.processes):  # extra workers
            self.stop(name)

    def tail(self, name: str) -> str:
        return tail(self.logs.get(name, self.workdir / f"{name}.log"))

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.poll() is None}


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- patients -------------------------------------------------------------------------------


@dataclass
class Patient:
    index: int
    user_id: str
    session: requests.Session
    patient_id: int | None = None
    double: bool = False
    twin: requests.Session | None = None
    bookings: dict[str, dict] = field(default_factory=dict)  # scene -> booking JSON
    refusals: dict[str, str] = field(default_factory=dict)  # scene -> why they stopped


@dataclass
class Bench:
    args: argparse.Namespace
    web: str
    sandbox: str
    deadline: float
    rng: random.Random
    stats: dict[str, Stats] = field(default_factory=dict)
    pairs: Counter[str] = field(default_factory=Counter)
    local: threading.local = field(default_factory=threading.local)

    def stat(self, name: str) -> Stats:
        if name not in self.stats:
            self.stats[name] = Stats(name)
        return self.stats[name]

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def sandbox_session(self) -> requests.Session:
        session = getattr(self.local, "sandbox", None)
        if session is None:
            session = self.local.sandbox = requests.Session()
        return session


def sign_in(bench: Bench, patient: Patient) -> None:
    timeout = bench.args.timeout
    status, body = call(bench.stat("sandbox auth_code"), bench.sandbox_session(), "POST",
                        f"{bench.sandbox}/_sandbox/auth_code", timeout,
                        json={"user_id": patient.user_id})
    if status != 200:
        patient.refusals["sign-in"] = f"auth_code {status} {body.get('error', '')}"
        return
    auth_code = body["auth_code"]
    status, body = call(bench.stat("GET /api/v1/session/login-url"), patient.session, "GET",
                        f"{bench.web}/api/v1/session/login-url", timeout,
                        params={"redirect_uri": f"{bench.web}/h5/"})
    if status != 200:
        patient.refusals["sign-in"] = f"login-url {status} {body.get('error', '')}"
        return
    status, body = call(bench.stat("POST /api/v1/session"), patient.session, "POST",
                        f"{bench.web}/api/v1/session", timeout,
                        json={"auth_code": auth_code, "state": body["state"]})
    if status != 201:
        patient.refusals["sign-in"] = f"session {status} {body.get('error', '')}"
        return
    me = next((p for p in body.get("patients", []) if p.get("relation") == "self"), None)
    if me is None:
        patient.refusals["sign-in"] = "no self patient"
        return
    patient.patient_id = me["id"]
    if patient.double:
        patient.twin = requests.Session()
        patient.twin.cookies.update(patient.session.cookies)


def list_slots(bench: Bench, session: requests.Session, query: dict[str, str]) -> list[dict]:
    status, body = call(bench.stat("GET /api/v1/slots"), session, "GET",
                        f"{bench.web}/api/v1/slots", bench.args.timeout, params=query)
    if status != 200:
        return []
    return [s for s in body.get("slots", []) if isinstance(s, dict)]


def post_booking(bench: Bench, patient: Patient, slot_id: int, twins: ThreadPoolExecutor,
                 stats: Stats) -> tuple[int, dict]:
    """POST /api/v1/bookings with a new Idempotency-Key; double-clickers send it twice at once.
    A connection error or 5xx is retried with the same key (twice at most)."""
    key = str(uuid.uuid4())
    url = f"{bench.web}/api/v1/bookings"
    payload = {"slot_id": slot_id, "patient_id": patient.patient_id}
    headers = {"Idempotency-Key": key}
    status, body = 0, {}
    for _attempt in range(3):
        twin = None
        if patient.twin is not None:
            twin = twins.submit(call, stats, patient.twin, "POST", url, bench.args.timeout,
                                json=payload, headers=headers)
        status, body = call(stats, patient.session, "POST", url, bench.args.timeout,
                            json=payload, headers=headers)
        if twin is not None:
            status2, body2 = twin.result()
            same = (status == status2 and body.get("id") == body2.get("id")
                    and body.get("error") == body2.get("error"))
            first = f"{status} {body.get('error', '')}".strip()
            second = f"{status2} {body2.get('error', '')}".strip()
            bench.pairs["same answer" if same else f"different: {first} / {second}"] += 1
            if status != 201 and status2 == 201:
                status, body = status2, body2  # the click that won
        if status != 0 and status < 500:
            break
    return status, body


def wait_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def scene_many(bench: Bench, patient: Patient, start: float, release: float, query: dict,
               pool: list[int], twins: ThreadPoolExecutor, stats: Stats) -> None:
    """Book a random open slot of the pool; another one on 409 (the list refreshed now and
    then, as the app does); stop at the first other refusal."""
    wait_until(start)
    rng = random.Random(bench.args.seed * 1_000_003 + patient.index)
    open_ids, full, tries, refreshed = list(pool), set(), 0, False
    while tries < bench.args.max_tries and bench.left() > 0:
        candidates = [s for s in open_ids if s not in full]
        if not candidates:
            if refreshed:
                patient.refusals["many"] = "none left"
                return
            open_ids = [s["id"] for s in list_slots(bench, patient.session, query)
                        if s.get("status") == "open" and s.get("remaining", 1) > 0]
            refreshed = True
            continue
        slot_id = rng.choice(candidates)
        status, body = post_booking(bench, patient, slot_id, twins, stats)
        error = str(body.get("error", ""))
        if status == 201:
            patient.bookings["many"] = body
            return
        if not_released(error) and time.monotonic() < release + 5:
            time.sleep(0.05)
            continue
        tries += 1
        if status == 409 and error == "slot.full":
            full.add(slot_id)
            refreshed = False
            if tries % 3 == 0:
                open_ids = [s["id"] for s in list_slots(bench, patient.session, query)
                            if s.get("status") == "open" and s.get("remaining", 1) > 0]
                refreshed = True
            continue
        if status == 0 or status >= 500:
            continue
        patient.refusals["many"] = f"{status} {error}"
        return
    patient.refusals.setdefault("many", "gave up")


def scene_one(bench: Bench, patient: Patient, start: float, release: float, query: dict,
              pool: list[int], twins: ThreadPoolExecutor, stats: Stats) -> None:
    """Everyone wants one of this doctor's numbers: keep trying until one is theirs or none
    remain (checked with a fresh list)."""
    wait_until(start)
    rng = random.Random(bench.args.seed * 7_000_003 + patient.index)
    full: set[int] = set()
    for _ in range(3 * len(pool) + 10):
        if bench.left() <= 0:
            break
        candidates = [s for s in pool if s not in full]
        if not candidates:
            fresh = {s["id"]: s for s in list_slots(bench, patient.session, query)}
            candidates = [s for s in pool if fresh.get(s, {}).get("status") == "open"
                          and fresh.get(s, {}).get("remaining", 1) > 0]
            if not candidates:
                patient.refusals["one"] = "none left"
                return
            full.difference_update(candidates)
        slot_id = rng.choice(candidates)
        status, body = post_booking(bench, patient, slot_id, twins, stats)
        error = str(body.get("error", ""))
        if status == 201:
            patient.bookings["one"] = body
            return
        if not_released(error) and time.monotonic() < release + 5:
            time.sleep(0.05)
            continue
        if status == 409 and error == "slot.full":
            full.add(slot_id)
            continue
        if status == 0 or status >= 500:
            continue
        patient.refusals["one"] = f"{status} {error}"
        return
    patient.refusals.setdefault("one", "gave up")


Paid = dict[str, tuple["Patient", str, float, float]]  # booking -> (who, trade, monotonic, wall)


def pay(bench: Bench, patient: Patient, scene: str, paid: Paid, lock: threading.Lock) -> None:
    booking = patient.bookings[scene]
    status, body = call(bench.stat("POST /api/v1/payments"), patient.session, "POST",
                        f"{bench.web}/api/v1/payments", bench.args.timeout,
                        json={"booking_id": booking["id"]},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
    if status != 201 or not body.get("out_trade_no"):
        patient.refusals[f"{scene} payment"] = f"{status} {body.get('error', '')}"
        return
    status, answer = call(bench.stat("sandbox pay"), bench.sandbox_session(), "POST",
                          f"{bench.sandbox}/_sandbox/pay/{body['out_trade_no']}",
                          bench.args.timeout)
    if status != 200:
        patient.refusals[f"{scene} payment"] = f"sandbox pay {status} {answer.get('error', '')}"
        return
    with lock:
        paid[str(booking["id"])] = (patient, body["out_trade_no"], time.monotonic(),
                                      time.time())


def healthz(bench: Bench, patient: Patient, count: int, start: float, stop: float) -> None:
    wait_until(start)
    for _ in range(count):
        if time.monotonic() > stop:
            return
        call(bench.stat("GET /healthz"), patient.session, "GET", f"{bench.web}/healthz",
             bench.args.timeout)


def run_healthz(bench: Bench, pool: ThreadPoolExecutor, patients: list[Patient],
                budget: float, cpu: Callable[[], dict[str, float]]) -> str:
    """GET /healthz by every patient's session, C at a time, bounded by count and time."""
    total = bench.args.healthz_requests
    per = max(1, math.ceil(total / len(patients)))
    before, t0, p0 = cpu(), time.monotonic(), time.perf_counter()
    start = t0 + 0.2
    futures = [pool.submit(healthz, bench, p, per, start, start + budget) for p in patients]
    for f in futures:
        f.result()
    return cpu_used(before, cpu(), time.monotonic() - t0,
                    web_requests(bench, p0, time.perf_counter()))


def first_posts(sandbox: str) -> dict[str, float]:
    """out_trade_no -> when the sandbox first posted its payment's notification (epoch s)."""
    answer = requests.get(f"{sandbox}/_sandbox/notifications", timeout=30)
    firsts: dict[str, float] = {}
    for delivery in answer.json() if answer.status_code == 200 else ():
        if delivery.get("refund") or not delivery.get("attempts"):
            continue
        at = dt.datetime.fromisoformat(delivery["attempts"][0]["at"]).timestamp()
        key = delivery.get("out_trade_no", "")
        firsts[key] = min(at, firsts.get(key, at))
    return firsts


def paid_stages(url: str, paid_at: dict[str, float],
                posted: dict[str, float]) -> list[tuple[float, float, float, float]]:
    """Per confirmed booking, sorted by the last: seconds from the buyer's payment to the
    sandbox's first post of the notification (``posted``, by out_trade_no), to it reaching the
    adapter (its row), to the SRM^S01 queued (the booking paid, in the same transaction), and
    to the HIS's answer to it."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("""
                SELECT b.public_id, b.out_trade_no,
                       (SELECT extract(epoch FROM min(n.received_at)) FROM wallet_notification n
                        WHERE n.out_trade_no = b.out_trade_no),
                       extract(epoch FROM o.created_at), extract(epoch FROM o.done_at)
                FROM booking b
                JOIN outbox_message o ON o.kind = 'his_book' AND o.subject_type = 'booking'
                                     AND o.subject_id = CAST(b.id AS TEXT)
                WHERE o.done_at IS NOT NULL AND b.status = 'confirmed'""")).all()
        stages = []
        for public_id, out_trade_no, noticed, queued, done in rows:
            if public_id in paid_at:
                start = paid_at[public_id]
                stages.append((posted.get(out_trade_no, start) - start,
                               float(noticed or queued) - start, float(queued) - start,
                               float(done) - start))
        return sorted(stages, key=lambda stage: stage[-1])
    finally:
        engine.dispose()


def db_checks(url: str) -> dict[str, Any]:
    """What the database says, whatever the API answered."""
    queries = {
        "slots with booked > capacity": "SELECT count(*) FROM slot WHERE booked > capacity",
        "slots with more active bookings than capacity": f"""
            SELECT count(*) FROM (
              SELECT b.slot_id FROM booking b JOIN slot s ON s.id = b.slot_id
              WHERE b.status IN {ACTIVE} GROUP BY b.slot_id, s.capacity
              HAVING count(*) > s.capacity) x""",
        "slots whose booked counter differs from held bookings": """
            SELECT count(*) FROM slot s WHERE s.booked <> (
              SELECT count(*) FROM booking b WHERE b.slot_id = s.id AND b.slot_held)""",
        "patients with 2+ active bookings, same doctor and day": f"""
            SELECT count(*) FROM (
              SELECT patient_document_index FROM booking WHERE status IN {ACTIVE}
              GROUP BY patient_document_index, doctor_code, visit_date
              HAVING count(*) > 1) x""",
        "active bookings": f"SELECT count(*) FROM booking WHERE status IN {ACTIVE}",
        "bookings by status": "SELECT status, count(*) FROM booking GROUP BY status",
        "trades by status": "SELECT status, count(*) FROM trade GROUP BY status",
        "paid trades": "SELECT count(*) FROM trade WHERE paid_at IS NOT NULL",
        "paid, booking confirmed with a HIS appointment id": """
            SELECT count(*) FROM trade t JOIN booking b
              ON b.out_trade_no = t.out_trade_no OR b.public_id = t.reference
            WHERE t.paid_at IS NOT NULL AND b.status = 'confirmed'
              AND b.filler_appointment_id IS NOT NULL""",
        "paid, still confirming (not finished)": """
            SELECT count(*) FROM trade t JOIN booking b
              ON b.out_trade_no = t.out_trade_no OR b.public_id = t.reference
            WHERE t.paid_at IS NOT NULL AND b.status = 'confirming'""",
        "lost: paid, neither confirmed nor confirming nor refunded": """
            SELECT count(*) FROM trade t LEFT JOIN booking b
              ON b.out_trade_no = t.out_trade_no OR b.public_id = t.reference
            WHERE t.paid_at IS NOT NULL AND t.refunded_fen < t.total_fen
              AND (b.id IS NULL OR b.status NOT IN ('confirmed', 'confirming'))""",
        "outbox by status": "SELECT kind || ' ' || status, count(*) FROM outbox_message "
                            "GROUP BY kind, status",
    }
    engine = create_engine(url)
    found: dict[str, Any] = {}
    with engine.connect() as connection:
        for name, sql in queries.items():
            try:
                rows = connection.execute(text(sql)).all()
                found[name] = (rows[0][0] if len(rows) == 1 and len(rows[0]) == 1
                               else {str(r[0]): r[1] for r in rows})
            except Exception as exc:  # noqa: BLE001 - the schema may be mid-change
                connection.rollback()
                found[name] = f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    engine.dispose()
    return found


def start_profiles(args: argparse.Namespace, system: System, scene: str,
                   roles: tuple[str, ...] = ("web",)) -> list[subprocess.Popen[bytes]]:
    """py-spy on the processes of ``roles`` (a gunicorn role's workers) for
    --profile-seconds: from 1 s before the moment of a booking scene, or over the payments."""
    if args.profile is None or "web" not in system.processes:
        return []
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("--profile: py-spy is not installed in this environment", file=sys.stderr)
        return []
    args.profile.mkdir(parents=True, exist_ok=True)
    targets: list[tuple[str, int]] = []
    for role in roles:
        if role not in system.processes:
            continue
        parent = system.processes[role].pid
        children = [int(e) for e in os.listdir("/proc") if e.isdigit()
                    and (_proc_stat(int(e)) or ("", 0, 0.0))[1] == parent]
        targets += [(role, pid) for pid in (children if role in ("web", "notify")
                                            else [parent])]
    return [subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration",
                              str(args.profile_seconds), "--rate", "250", "--format", "raw",
                              "--nonblocking", "--output",
                              str(args.profile / f"{role}-{scene}-{n}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n, (role, pid) in enumerate(targets)]


# -- the run --------------------------------------------------------------------------------


def line(label: str, summary: dict[str, float], rate: bool = True) -> str:
    if not summary["n"]:
        return f"  {label:<34} (none)"
    rps = f"{summary['rps']:>8.1f} req/s" if rate else f"{'(spread)':>14}"
    return (f"  {label:<34} {summary['n']:>6} req  {rps}  "
            f"p50 {summary['p50']:>7.1f} ms  p99 {summary['p99']:>7.1f} ms  "
            f"max {summary['max']:>7.1f} ms")


def main() -> int:  # noqa: C901 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--clients", type=int, default=64, help="client concurrency")
    parser.add_argument("--scene", choices=("many", "one", "both"), default="both")
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/rush",
                        help="recreated for every run")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--notify-workers", type=int, default=1,
                        help="gunicorn workers of the web instance the wallet's notifications "
                             "go to (as deploy/ routes /notify/); 0: the patients' instance")
    parser.add_argument("--outbox-concurrency", type=int, default=0,
                        help="ADAPTER_OUTBOX_CONCURRENCY of each worker (0: the default)")
    parser.add_argument("--his-connections", type=int, default=0,
                        help="ADAPTER_HIS_CONNECTIONS of each worker (0: the default)")
    parser.add_argument("--worker-processes", type=int, default=1,
                        help="worker role processes (outbox, inbound, jobs) on the one database")
    parser.add_argument("--duration", type=float, default=900,
                        help="cap on the whole run in seconds (everything stops by then)")
    parser.add_argument("--many-department", default="PED")
    parser.add_argument("--extra-doctors", type=int, default=0,
                        help="bench-only doctors added to the many-department (more slots)")
    parser.add_argument("--one-department", default="CARD")
    parser.add_argument("--one-doctor", default="", help="default: the department's first "
                        "doctor with slots that day")
    parser.add_argument("--one-sessions", type=int, choices=(1, 2), default=1,
                        help="1: the morning's numbers; 2: the doctor's whole day")
    parser.add_argument("--slots-per-session", type=int, default=30,
                        help="numbered slots per doctor per half day in the HIS simulator")
    parser.add_argument("--double-click-share", type=float, default=0.1)
    parser.add_argument("--days-ahead", type=int, default=3,
                        help="visit date = release day + this (inside the simulator's week)")
    parser.add_argument("--scene-gap", type=int, default=1,
                        help="minutes between scene A's and scene B's release")
    parser.add_argument("--early", type=float, default=0.2,
                        help="clients start this many seconds before the release moment")
    parser.add_argument("--max-tries", type=int, default=12)
    parser.add_argument("--healthz-requests", type=int, default=3000)
    parser.add_argument("--confirm-timeout", type=float, default=120)
    parser.add_argument("--timeout", type=float, default=30, help="per HTTP request")
    parser.add_argument("--log-level", default="INFO", help="ADAPTER_LOG_LEVEL of the roles")
    parser.add_argument("--throttle", action="store_true",
                        help="keep the web role's throttles on (ADAPTER_THROTTLE); off by default")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record with py-spy each gunicorn worker during the bursts, and "
                             "every role during the payments (collapsed stacks, one file per "
                             "process and phase, into DIR)")
    parser.add_argument("--profile-seconds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args()
    if not 1 <= args.patients <= 10_000 or not 1 <= args.clients <= 512:
        parser.error("--patients 1..10000, --clients 1..512")

    scenes = ["many", "one"] if args.scene == "both" else [args.scene]
    deadline = time.monotonic() + args.duration
    workdir = Path(tempfile.mkdtemp(prefix="rush-"))
    ports = {name: free_port() for name in ("web", "notify", "mllp", "his", "sandbox")}
    web, sandbox = f"http://127.0.0.1:{ports['web']}", f"http://127.0.0.1:{ports['sandbox']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
    env.update({
        "ADAPTER_ENV": "development",
        "ADAPTER_DATA_DIR": str(workdir / "data"),
        "ADAPTER_DATABASE_URL": args.database_url,
        "ADAPTER_WEB_LISTEN": f"127.0.0.1:{ports['web']}",
        "ADAPTER_MLLP_LISTEN": f"127.0.0.1:{ports['mllp']}",
        "ADAPTER_HIS_MLLP": f"127.0.0.1:{ports['his']}",
        "ADAPTER_MAPPINGS_DIR": str(workdir / "mappings"),
        "ADAPTER_ALIPAY_GATEWAY": f"{sandbox}/gateway.do",
        "ADAPTER_ALIPAY_SELLER_ID": SELLER_ID,
        "ADAPTER_LOG_LEVEL": args.log_level,
        # As deploy/nginx-hospital-adapter.conf routes them: the wallet's notifications to a
        # web instance of their own (--notify-workers 0: to the patients' instance).
        **({"ADAPTER_NOTIFY_BASE_URL": f"http://127.0.0.1:{ports['notify']}"}
           if args.notify_workers else {}),
        **({"ADAPTER_OUTBOX_CONCURRENCY": str(args.outbox_concurrency)}
           if args.outbox_concurrency else {}),
        **({"ADAPTER_HIS_CONNECTIONS": str(args.his_connections)}
           if args.his_connections else {}),
        # Hundreds of patients from one address, each as fast as it can: throttles off unless
        # the run is about them.
        "ADAPTER_THROTTLE": "on" if args.throttle else "off",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    })
    system = System(workdir, env)
    bench = Bench(args, web, sandbox, deadline, random.Random(args.seed))
    departments = {"many": args.many_department, "one": args.one_department}
    extra = {args.many_department: args.extra_doctors} if "many" in scenes else {}
    lines: list[str] = []
    failed = False

    def plan(earliest: dt.datetime) -> dict[str, dt.datetime]:
        first = next_minute(earliest)
        return {scene: first + dt.timedelta(minutes=args.scene_gap * n)
                for n, scene in enumerate(scenes)}

    def cpu() -> dict[str, float]:
        return cpu_snapshot(system.pids())

    database = make_url(args.database_url).database
    print(f"work directory {workdir.name} (temporary); database {database} recreated",
          flush=True)
    recreate_database(args.database_url)
    # Setting up costs about 15 s plus the sign-ins; a late finish moves the moment (restart).
    releases = plan(dt.datetime.now(HOSPITAL_TZ)
                    + dt.timedelta(seconds=20 + 0.06 * args.patients))
    write_mappings(REPO / "mappings", workdir / "mappings",
                   {departments[s]: m for s, m in releases.items()}, args.days_ahead, extra)

    from adapter.config import load_config
    from adapter.devkeys import (
        app_public_key_file,
        ensure_development_keys,
        sandbox_private_key_file,
    )

    config = ensure_development_keys(load_config(env))
    pool = ThreadPoolExecutor(max_workers=args.clients)
    twins = ThreadPoolExecutor(max_workers=max(4, args.clients // 4))
    try:
        system.run_once("db-upgrade", "db", "upgrade")
        system.start("his", "simulate-his", "--listen", env["ADAPTER_HIS_MLLP"],
                     "--mappings", str(workdir / "mappings"),
                     "--slots-per-session", str(args.slots_per_session))
        system.start("sandbox", "wallet-sandbox", "--listen", f"127.0.0.1:{ports['sandbox']}",
                     "--app-id", config.alipay_app_id, "--seller-id", SELLER_ID,
                     "--app-public-key-file", str(app_public_key_file(config)),
                     "--platform-private-key-file", str(sandbox_private_key_file(config)),
                     "--platform-public-key-out", str(config.effective_alipay_public_key_file),
                     "--notify-time-scale", "1")
        system.wait_port("his", ports["his"])
        system.wait_port("sandbox", ports["sandbox"])
        for n in range(args.worker_processes):
            system.start("worker" if n == 0 else f"worker{n + 1}", "worker")
        system.start("web", "web", "--workers", str(args.web_workers))
        if args.notify_workers:
            system.start("notify", "web", "--workers", str(args.notify_workers),
                         env={"ADAPTER_WEB_LISTEN": f"127.0.0.1:{ports['notify']}"})
            system.wait_http("notify", f"http://127.0.0.1:{ports['notify']}/healthz")
        system.wait_http("web", f"{web}/healthz")

        # -- people ------------------------------------------------------------------------
        made = requests.post(f"{sandbox}/_sandbox/users", timeout=60,
                             json={"count": args.patients, "prefix": USER_PREFIX})
        if made.status_code != 201:
            raise SystemExit(f"POST /_sandbox/users answered {made.status_code}: {made.text}")
        doubles = set(bench.rng.sample(range(args.patients),
                                       round(args.patients * args.double_click_share)))
        patients = [Patient(i, user_id, requests.Session(), double=i in doubles)
                    for i, user_id in enumerate(made.json()["user_ids"])]
        t0 = time.monotonic()
        list(pool.map(lambda p: sign_in(bench, p), patients))
        signed = [p for p in patients if p.patient_id is not None]
        lines.append(f"sign-in: {len(signed)}/{len(patients)} patients in "
                     f"{time.monotonic() - t0:.1f}s")
        if not signed:
            why = Counter(p.refusals.get("sign-in", "") for p in patients).most_common(3)
            raise SystemExit(f"no patient could sign in: {why}")

        # -- the slots exist (the worker's first sync) and the moment is still ahead ---------
        def query(scene: str, release: dt.datetime) -> dict[str, str]:
            day = (release.date() + dt.timedelta(days=args.days_ahead)).isoformat()
            return {"department": departments[scene], "date": day}

        probe = signed[0].session
        sync_deadline = time.monotonic() + min(90, bench.left())
        while time.monotonic() < sync_deadline:
            if all(list_slots(bench, probe, query(s, releases[s])) for s in scenes):
                break
            time.sleep(0.5)
        else:
            raise SystemExit("no slots listed for the chosen days: is GET /api/v1/slots there?"
                             f"\nweb log:\n{system.tail('web')}\nworker log:\n"
                             f"{system.tail('worker')}")
        first_release = min(releases.values())
        if dt.datetime.now(HOSPITAL_TZ) > first_release - dt.timedelta(seconds=3):
            releases = plan(dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(seconds=12))
            print(f"setting up overran the release moment; moving it to "
                  f"{min(releases.values()):%H:%M} and restarting the web role", flush=True)
            write_mappings(REPO / "mappings", workdir / "mappings",
                           {departments[s]: m for s, m in releases.items()},
                           args.days_ahead, extra)
            system.stop("web")
            system.start("web", "web", "--workers", str(args.web_workers))
            system.wait_http("web", f"{web}/healthz")

        def seconds_to(moment: dt.datetime) -> float:
            return (moment - dt.datetime.now(HOSPITAL_TZ)).total_seconds()

        # -- GET /healthz while waiting, if there is time (else after the scenes) -------------
        healthz_cpu = ""
        if seconds_to(min(releases.values())) > 12:
            budget = min(20.0, seconds_to(min(releases.values())) - 6)
            healthz_cpu = run_healthz(bench, pool, signed, budget, cpu)

        # -- the scenes ----------------------------------------------------------------------
        for scene in scenes:
            release = releases[scene]
            q = query(scene, release)
            listed = list_slots(bench, probe, q)
            before_status = Counter(s.get("status") for s in listed)
            if scene == "one":
                doctors = Counter(s.get("doctor_code") for s in listed)
                doctor = args.one_doctor or (doctors.most_common(1)[0][0] if doctors else "")
                mine = sorted((s for s in listed if s.get("doctor_code") == doctor),
                              key=lambda s: (str(s.get("start_at", "")), s["id"]))
                take = args.slots_per_session * args.one_sessions
                listed = mine[:take]
                q = {"doctor": doctor, "date": q["date"]}
                what = (f"doctor {doctor} ({departments[scene]}), {len(listed)} numbered "
                        f"slots of {len(mine)} that day")
            else:
                what = (f"department {departments[scene]}, {len(listed)} slots over "
                        f"{len({s.get('doctor_code') for s in listed})} doctors "
                        f"({args.extra_doctors} bench-only doctors added)")
            slot_ids = [s["id"] for s in listed
                        if s.get("status") in ("open", "not_released")]
            capacity = sum(int(s.get("remaining", 1) or 0) for s in listed
                           if s.get("status") == "open") or len(slot_ids)
            lines.append(f"\nscene {scene}: {what}, visit date {q['date']}, released "
                         f"{release:%H:%M} hospital time; listed beforehand: "
                         f"{dict(before_status)}")
            if not slot_ids:
                lines.append("  no slot to book: scene skipped")
                failed = True
                continue
            wait = seconds_to(release) - args.early
            if wait > bench.left():
                lines.append("  --duration ends before the release: scene skipped")
                failed = True
                continue
            start = time.monotonic() + max(0.0, wait)
            release_mono = start + args.early
            stats = bench.stat(f"POST /api/v1/bookings ({scene})")
            worker_fn = scene_many if scene == "many" else scene_one
            if wait > 1:
                time.sleep(wait - 1)
            before, t0, p0 = cpu(), time.monotonic(), time.perf_counter()
            spies = start_profiles(args, system, scene)
            futures = [pool.submit(worker_fn, bench, p, start, release_mono, q, slot_ids,
                                   twins, stats) for p in signed]
            for f in futures:
                f.result()
            after, wall = cpu(), time.monotonic() - max(t0, start)
            for spy in spies:
                try:
                    spy.wait(timeout=args.profile_seconds + 30)
                except subprocess.TimeoutExpired:
                    spy.kill()
            cpu_wall = time.monotonic() - t0
            held = sum(1 for p in signed if scene in p.bookings)
            early = stats.summary(lambda o: not_released(o))
            real = stats.summary(lambda o: not not_released(o))
            lines.append(line("POST /api/v1/bookings", real))
            lines.append(f"  status counts: {dict(stats.outcomes().most_common())}")
            if early["n"]:
                lines.append(f"  of which {early['n']} were refused as not released yet "
                             f"(clients start {args.early}s early) and are left out of "
                             f"the rate and latencies")
            losers = Counter(p.refusals.get(scene, "?") for p in signed
                             if scene not in p.bookings)
            lines.append(f"  held {held} of {capacity} slots; patients without one: "
                         f"{dict(losers)}")
            served = web_requests(bench, p0, time.perf_counter())
            lines.append(f"  burst wall {wall:.2f}s; over {cpu_wall:.2f}s from 1 s before the "
                         f"moment: {cpu_used(before, after, cpu_wall, served)}")

        if bench.pairs:
            lines.append(f"\ndouble clicks (same Idempotency-Key twice at once): "
                         f"{dict(bench.pairs)}")
        if not bench.stat("GET /healthz").samples and bench.left() > 10:
            healthz_cpu = run_healthz(bench, pool, signed, min(20.0, bench.left() - 5), cpu)

        # -- payments ------------------------------------------------------------------------
        paid: dict[str, tuple[Patient, str, float, float]] = {}
        paid_lock = threading.Lock()
        winners = [(p, s) for p in signed for s in scenes if s in p.bookings]
        before, t0, p0 = cpu(), time.monotonic(), time.perf_counter()
        spies = start_profiles(args, system, "payments",
                               ("web", "notify", "worker", "worker2", "sandbox", "his"))
        list(pool.map(lambda ps: pay(bench, ps[0], ps[1], paid, paid_lock), winners))
        pay_cpu = cpu_used(before, cpu(), time.monotonic() - t0,
                           web_requests(bench, p0, time.perf_counter()))
        confirmed: dict[str, float] = {}
        final: dict[str, str] = {}
        wait_end = time.monotonic() + min(args.confirm_timeout, max(0.0, bench.left()))
        rounds = 0
        while time.monotonic() < wait_end and rounds < 10_000:
            rounds += 1
            pending = [(bid, v) for bid, v in paid.items()
                       if final.get(bid) not in ("confirmed", "rejected", "cancelled",
                                                 "expired")]
            if not pending:
                break

            def look(item: tuple[str, tuple[Patient, str, float, float]]) -> None:
                bid, (patient, _out, _paid_at, _wall) = item
                status, body = call(bench.stat("GET /api/v1/bookings/<id>"), patient.session,
                                    "GET", f"{web}/api/v1/bookings/{bid}", args.timeout)
                if status == 200:
                    final[bid] = str(body.get("status"))
                    if final[bid] == "confirmed" and bid not in confirmed:
                        confirmed[bid] = time.monotonic()

            list(pool.map(look, pending))
            time.sleep(POLL_SECONDS)
        for spy in spies:
            spy.wait(timeout=args.profile_seconds + 30)
        to_confirm = sorted(confirmed[b] - paid[b][2] for b in confirmed)
        stages = paid_stages(args.database_url, {b: v[3] for b, v in paid.items()},
                             first_posts(sandbox))
        recorded = [stage[-1] for stage in stages]

        # -- the report ---------------------------------------------------------------------
        checks = db_checks(args.database_url)
        lines.append("\npayments (two steps after the hold):")
        lines.append(line("POST /api/v1/payments", bench.stat("POST /api/v1/payments")
                          .summary()))
        lines.append(f"  status counts: "
                     f"{dict(bench.stat('POST /api/v1/payments').outcomes().most_common())}")
        lines.append(line("sandbox pay (buyer)", bench.stat("sandbox pay").summary()))
        lines.append(f"  {pay_cpu}")
        lines.append(f"bookings: held {len(winners)}, paid {len(paid)}, confirmed in the HIS "
                     f"{len(confirmed)} (GET /api/v1/bookings/<id>), final statuses "
                     f"{dict(Counter(final.values()))}")
        if to_confirm:
            span = max(confirmed.values()) - min(v[2] for v in paid.values())
            lines.append(f"  paid -> seen confirmed: p50 {percentile(to_confirm, 50):.1f}s, "
                         f"max {to_confirm[-1]:.1f}s (polled every ~{POLL_SECONDS:.0f} s); "
                         f"{len(confirmed) / max(span, 1e-6):.1f} confirmations/s over "
                         f"{span:.1f}s")
        if recorded:
            lines.append(f"  paid -> confirmed (the buyer's payment -> the HIS's answer to the "
                         f"SRM^S01, as recorded): p50 {percentile(recorded, 50):.2f}s, "
                         f"p99 {percentile(recorded, 99):.2f}s, max {recorded[-1]:.2f}s over "
                         f"{len(recorded)} bookings ({args.worker_processes} worker "
                         f"process(es))")
            for index, name in ((0, "the wallet's first post of its notification"),
                                (1, "the wallet's notification received"),
                                (2, "the SRM^S01 queued (booking paid)")):
                part = sorted(stage[index] for stage in stages)
                lines.append(f"    of which paid -> {name}: p50 {percentile(part, 50):.2f}s, "
                             f"p99 {percentile(part, 99):.2f}s")
            waits = sorted(stage[3] - stage[2] for stage in stages)
            lines.append(f"    of which queued -> the HIS's answer: p50 "
                         f"{percentile(waits, 50):.2f}s, p99 {percentile(waits, 99):.2f}s")
        overbooked = [checks.get("slots with booked > capacity"),
                      checks.get("slots with more active bookings than capacity")]
        lost = checks.get("lost: paid, neither confirmed nor confirming nor refunded")
        lines.append(f"OVERBOOKED slots: {overbooked[0]} (counter) / {overbooked[1]} "
                     f"(active bookings)   LOST payments: {lost}")
        lines.append("database:")
        for name, value in checks.items():
            lines.append(f"  {name}: {value}")
        lines.append("\ncomparison on the same server, same client, same concurrency:")
        hz = bench.stat("GET /healthz").summary()
        lines.append(line("GET /healthz", hz))
        if healthz_cpu:
            lines.append(f"  {healthz_cpu}")
        for scene in scenes:
            s = bench.stat(f"POST /api/v1/bookings ({scene})").summary(
                lambda o: not not_released(o))
            if s["n"] and hz["n"]:
                lines.append(f"  bookings ({scene}) / healthz: {s['rps'] / hz['rps']:.2f} of "
                             f"the req/s, p50 x{s['p50'] / max(hz['p50'], 1e-6):.1f}")
        lines.append(line("POST /api/v1/session (sign-in)",
                          bench.stat("POST /api/v1/session").summary()))
        lines.append(line("GET /api/v1/bookings/<id> (polls)",
                          bench.stat("GET /api/v1/bookings/<id>").summary(), rate=False))
        lines.append(line("GET /api/v1/slots", bench.stat("GET /api/v1/slots").summary(),
                          rate=False))
        lines.append(f"\nclient: {args.clients} threads, one requests.Session per patient, "
                     f"in this process; it shares the {os.cpu_count()} cores with gunicorn "
                     f"({args.web_workers} workers x 8 threads), the worker, the simulators and "
                     "PostgreSQL (shared with anything else running on the machine).")
        failed = failed or bool(overbooked[0]) or bool(overbooked[1]) or bool(
            lost if isinstance(lost, int) else False)
    except SystemExit as exc:
        print(f"\nbench stopped: {exc}", file=sys.stderr)
        failed = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        twins.shutdown(wait=False, cancel_futures=True)
        system.stop_all()
        print("\n".join(lines))
        if args.keep or failed:
            print(f"\nlogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
