"""The outbox runner: lease due items, deliver each by its kind's declared delivery function
(several at once, ADAPTER_OUTBOX_CONCURRENCY), and retry, park or give up by its kind's
declared policy. No business decision lives here; the flows declare them (adapter/flows.py).

Items about the same subject (a booking, a refund, a patient) are never in flight together in
one worker: they are delivered in the order they were written, as with a single thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.orm import Session

from adapter.failures import safe_code, stack
from adapter.flows import OutboxJob, OutboxKind, Services
from adapter.links import record_link
from adapter.models import OutboxMessage, OutboxStatus
from adapter.ports import HisUnavailable, WalletUnavailable

logger = logging.getLogger(__name__)


def backoff(attempts: int, cap_seconds: int = 600) -> dt.timedelta:
    """2 s, 4 s, 8 s... capped (10 minutes by default)."""
    return dt.timedelta(seconds=min(2 ** min(attempts, 30), cap_seconds))


Subject = tuple[str, str]


def claim_outbox(session: Session, now: dt.datetime, limit: int,
                 waiting_kinds: Collection[str] = (),
                 busy_subjects: Collection[Subject] = ()) -> list[OutboxMessage]:
    """Lock due outbox messages no other worker holds (none of ``waiting_kinds``, none about
    one of ``busy_subjects``)."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if waiting_kinds:
        query = query.where(OutboxMessage.kind.not_in(sorted(waiting_kinds)))
    if busy_subjects:
        query = query.where(tuple_(OutboxMessage.subject_type, OutboxMessage.subject_id)
                            .not_in(sorted(busy_subjects)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


# How long a leased message is left alone without news from its worker. The worker renews it
# every third of that while the exchange runs (however long the HIS takes to answer), so an item
# whose worker died is taken over within this bound, independent of the HIS timeouts.
LEASE_SECONDS = 15.0


def lease_outbox(services: Services, now: dt.datetime,
                 waiting_kinds: Collection[str] = (),
                 busy_subjects: Collection[Subject] = ()) -> OutboxJob | None:
    """Take the oldest due message for this worker and commit that at once.

    The HIS or wallet exchange then runs outside any transaction (no row lock, and on SQLite
    no write lock, held across the network). A worker that dies mid-exchange stops renewing
    its lease, and the message is sent again once it runs out: every delivery is idempotent at
    the far end (the placer id at the HIS, out_request_no and out_trade_no at the wallet).
    """
    jobs = lease_outbox_batch(services, now, 1, waiting_kinds, busy_subjects)
    return jobs[0] if jobs else None


def lease_outbox_batch(services: Services, now: dt.datetime, limit: int,
                       waiting_kinds: Collection[str] = (),
                       busy_subjects: Collection[Subject] = (),
                       one_per_link: Mapping[str, str] | None = None) -> list[OutboxJob]:
    """Lease up to ``limit`` due messages in one transaction (as lease_outbox does one): the
    oldest of each subject only, and of the kinds ``one_per_link`` maps to a link, one per
    link. Under a rush, a commit per lease was what the delivery threads queued on."""
    with services.session_factory.begin() as session:
        _lease_commits_lazily(session)
        claimed = claim_outbox(session, now, limit * 4, waiting_kinds, busy_subjects)
        jobs: list[OutboxJob] = []
        subjects: set[Subject] = set()
        links: set[str] = set()
        for message in claimed:
            subject = (message.subject_type, message.subject_id)
            link = (one_per_link or {}).get(message.kind)
            if subject in subjects or (link is not None and link in links):
                continue  # after its elder sibling, or its suspect link's one item
            subjects.add(subject)
            if link is not None:
                links.add(link)
            message.attempts += 1  # also the lease's token: a takeover changes it
            message.next_attempt_at = now + dt.timedelta(seconds=LEASE_SECONDS)
            jobs.append(OutboxJob(message.id, message.kind, message.subject_type,
                                  message.subject_id, json.loads(message.payload),
                                  message.attempts))
            if len(jobs) == limit:
                break
        return jobs


def _lease_commits_lazily(session: Session) -> None:
    """A lease need not wait for the disk: lost in a crash, it only leaves its item due again,
    and every delivery is idempotent at the far end. PostgreSQL's asynchronous commit (still
    atomic and consistent) takes the WAL flush out of each lease; under the rush, the leases
    queued behind everyone else's flushes and held the delivery threads back."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def renew_lease(services: Services, job: OutboxJob) -> bool:
    """Push the lease of a message still in this worker's hands; False when it was lost."""
    until = services.clock.now() + dt.timedelta(seconds=LEASE_SECONDS)
    with services.session_factory.begin() as session:
        _lease_commits_lazily(session)
        renewed = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == job.id, OutboxMessage.attempts == job.attempts,
                   OutboxMessage.status == OutboxStatus.PENDING)
            .values(next_attempt_at=until).execution_options(synchronize_session=False)
        ).rowcount
    return renewed == 1


@contextmanager
def _heartbeat(services: Services, job: OutboxJob) -> Iterator[None]:
    """Renew the job's lease every third of LEASE_SECONDS until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(LEASE_SECONDS / 3):
            try:
                if not renew_lease(services, job):
                    logger.warning("outbox %s (%s): lease lost to another worker", job.id,
                                   job.kind)
                    return
            except Exception as exc:  # noqa: BLE001 - the lease then runs out: a takeover
                logger.warning("outbox %s: lease not renewed (%s)", job.id, type(exc).__name__)

    thread = threading.Thread(target=beat, name=f"lease-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _release(services: Services, kinds: Collection[str], now: dt.datetime) -> int:
    """A link came back: every pending item that waited on it is due now."""
    with services.session_factory.begin() as session:
        return session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING,
                   OutboxMessage.kind.in_(sorted(kinds)), OutboxMessage.next_attempt_at > now)
            .values(next_attempt_at=now).execution_options(synchronize_session=False)
        ).rowcount


def deliver_outbox(services: Services, kinds: Mapping[str, OutboxKind] | None = None,
                   limit: int = 500, budget_seconds: float = 10.0,
                   concurrency: int | None = None) -> int:
    """Deliver due outbox messages until none is due (or ``limit`` were taken, or this run's
    time budget is spent; the next run goes on), ``concurrency`` at a time
    (ADAPTER_OUTBOX_CONCURRENCY by default). ``kinds`` defaults to the merged flows' kinds."""
    kinds = services.flows.outbox if kinds is None else kinds
    if concurrency is None:
        concurrency = services.config.outbox_concurrency
    run = _Run(services, kinds, limit, time.monotonic() + budget_seconds,
               max(1, concurrency))
    first = run.lease()
    if first is None:
        return 0  # the common case, every second: one query, no thread started
    with _runs_lock:
        _runs.add(run)
    try:
        if concurrency <= 1:
            return run.loop(first)
        with ThreadPoolExecutor(concurrency, thread_name_prefix="outbox") as pool:
            others = [pool.submit(run.loop) for _ in range(concurrency - 1)]
            done = run.loop(first)
        return done + sum(future.result() for future in others)
    finally:
        with _runs_lock:
            _runs.discard(run)


# The runs of this process now delivering: new work wakes their waiting threads.
_runs: set[_Run] = set()
_runs_lock = threading.Lock()


def wake_runs() -> bool:
    """New outbox work has committed (adapter/worker/wakeup.py): the waiting threads of the
    runs under way look at once. False when no run is under way (the scheduler's to start)."""
    with _runs_lock:
        runs = list(_runs)
    for run in runs:
        run.poke()
    return bool(runs)


class _Run:
    """One run of the outbox: what its delivery threads share."""

    def __init__(self, services: Services, kinds: Mapping[str, OutboxKind], limit: int,
                 deadline: float, threads: int = 1) -> None:
        self.services, self.kinds, self.deadline = services, kinds, deadline
        self.by_link: dict[str, set[str]] = {}
        for name, declared in kinds.items():
            if declared.link:
                self.by_link.setdefault(declared.link, set()).add(name)
        self.left = limit
        self.busy: set[Subject] = set()
        # A link gets one item at a time until one succeeds in this run, and again after a
        # failure: a HIS that went down costs as many attempts as with one thread (then its
        # breaker opens), and is not hit by every thread at once.
        self.suspect: set[str] = set(self.by_link)
        self.in_flight: dict[str, int] = {}
        # Guards the run's bookkeeping (busy, in_flight, suspect, left); notified when an item
        # is settled (what it held back may be due now). Never held across a database call.
        self.settled = threading.Condition()
        self.settles = 0  # items settled so far: a waiting lease knows whether it missed one
        # Held while leasing (the claim is a database round trip): leases go one at a time, so
        # a subject is marked busy before any other thread's claim, while items settle freely.
        # (Holding one lock for both made every settling thread wait for each lease's commit.)
        self.leasing = threading.Lock()
        self.threads = threads
        self.ready: deque[OutboxJob] = deque()  # leased for threads about to take them

    def lease(self, wait: bool = False) -> OutboxJob | None:
        """The next due item no thread of this run holds a sibling of, or None when none is
        due. With ``wait``, an item held back (its subject or its suspect link busy in another
        thread) is waited for while any item of this run is in flight. One lease takes as many
        items as threads are free (one transaction); the others wait in ``ready``."""
        breakers = self.services.links
        while True:
            with self.settled:
                if self.ready:
                    return self.ready.popleft()
            with self.leasing:
                with self.settled:
                    if self.ready:  # leased by another thread meanwhile
                        return self.ready.popleft()
                    if self.left <= 0 or time.monotonic() > self.deadline:
                        return None
                    now = self.services.clock.now()
                    held = breakers.blocked(now) | {link for link in self.suspect
                                                    if self.in_flight.get(link)}
                    single = {kind: link for link in self.suspect - held
                              for kind in self.by_link.get(link, ())}
                    busy = set(self.busy)
                    free = max(1, self.threads - sum(self.in_flight.values()))
                    seen = self.settles
                waiting = {k for link in held for k in self.by_link.get(link, ())}
                jobs = lease_outbox_batch(self.services, now, min(free, self.left), waiting,
                                          busy, single)
                if jobs:
                    with self.settled:
                        for job in jobs:
                            self.left -= 1
                            self.busy.add((job.subject_type, job.subject_id))
                            link = self._link(job)
                            self.in_flight[link] = self.in_flight.get(link, 0) + 1
                        self.ready.extend(jobs[1:])
                        self.settled.notify_all()
                    return jobs[0]
            with self.settled:
                if self.ready:
                    continue
                if not wait or not any(self.in_flight.values()):
                    return None
                if self.settles == seen:  # nothing settled since the claim looked
                    self.settled.wait(timeout=1.0)

    def poke(self) -> None:
        """Work came in: one waiting thread looks now (it leases for the others; waking them
        all at every commit had them queue on the lease)."""
        with self.settled:
            self.settled.notify()

    def _link(self, job: OutboxJob) -> str:
        kind = self.kinds.get(job.kind)
        return kind.link if kind is not None else ""

    def _settle(self, job: OutboxJob, link_failed: bool | None) -> None:
        """The item is out of this worker's hands; what its attempt said of its link."""
        link = self._link(job)
        with self.settled:
            self.busy.discard((job.subject_type, job.subject_id))
            self.in_flight[link] -= 1
            if link_failed:
                self.suspect.add(link)
            elif link_failed is False:
                self.suspect.discard(link)
            self.settles += 1
            self.settled.notify_all()

    def loop(self, job: OutboxJob | None = None) -> int:
        """Deliver items until none is due; the number delivered."""
        done = 0
        while True:
            if job is None:
                job = self.lease(wait=True)
                if job is None:
                    return done
            outcome: bool | None = None
            try:
                outcome = self.deliver(job)
                done += outcome is True
            finally:
                self._settle(job, None if outcome is None else outcome is False)
            job = None

    def deliver(self, job: OutboxJob) -> bool | None:
        """One attempt at one item: True when delivered, False when its link was unavailable,
        None when it failed otherwise (the link said nothing)."""
        services, breakers = self.services, self.services.links
        now = services.clock.now()
        kind = self.kinds.get(job.kind)
        link = kind.link if kind is not None else ""
        try:
            if kind is None:
                raise LookupError(f"no flow declares outbox kind {job.kind}")
            with _heartbeat(services, job):
                kind.deliver(services, job, now)
        except (HisUnavailable, WalletUnavailable) as exc:
            # The backoff runs from the failure: an attempt that timed out may have taken
            # longer than its backoff, and would otherwise be retried at once.
            failed_at = services.clock.now()
            # A probe of a link already down costs the item nothing: it only asked the link.
            probe = bool(link) and breakers.is_open(link)
            _failed(services, kind, job, failed_at, safe_code(exc), probe=probe)
            if link and breakers.failed(link, failed_at):
                logger.warning("link %s down: its outbox items wait for it", link)
                record_link(services, link, False, safe_code(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - recorded, retried, then parked
            # Never str(exc) nor logger.exception: the text of a builder's or a database's
            # error can carry the patient's name or phone (adapter/failures.py).
            logger.error("outbox %s (%s) failed: %s\n%s", job.id, job.kind, safe_code(exc),
                         stack(exc))
            _failed(services, kind, job, services.clock.now(), safe_code(exc))
            return None
        if link and breakers.succeeded(link):
            released = _release(services, self.by_link[link], services.clock.now())
            logger.info("link %s back: %d waiting outbox item(s) due now", link, released)
            record_link(services, link, True, "outbox delivered")
        return True


def _failed(services: Services, kind: OutboxKind | None, job: OutboxJob, now: dt.datetime,
            error: str, *, probe: bool = False) -> None:
    with services.session_factory.begin() as session:
        message = session.get(OutboxMessage, job.id)
        if message.attempts != job.attempts:
            return  # taken over by another worker meanwhile: its attempt decides
        if probe:
            message.attempts -= 1
        retry_later(services, session, kind, job, message, now, error)


def retry_later(services: Services, session: Session, kind: OutboxKind | None, job: OutboxJob,
                message: OutboxMessage, now: dt.datetime, error: str) -> None:
    """After a failed attempt: give up (by the kind's rule), park, or try again later.

    ``error`` is stored and logged: a safe code (adapter.failures.safe_code), never an
    exception's text."""
    message.last_error = error[:200]
    max_attempts = services.policy.outbox_max_attempts
    if kind is not None and kind.never_parked:
        if kind.give_up is not None and kind.give_up(services, session, job, now):
            message.status = OutboxStatus.FAILED
            return
        # Money on its way back, or an answer a patient's money waits for: keep trying (at
        # most every ten minutes); /metrics shows the pending outbox to admins meanwhile.
        message.next_attempt_at = now + backoff(min(message.attempts, 9),
                                                kind.max_backoff_seconds)
        log = logger.error if message.attempts >= max_attempts else logger.warning
        log("outbox %s (%s) attempt %d failed (%s); retrying", message.id, message.kind,
            message.attempts, error)
        return
    if message.attempts >= max_attempts:
        message.status = OutboxStatus.FAILED
        logger.error("outbox %s (%s) parked after %d attempts: %s", message.id, message.kind,
                     message.attempts, error)
    else:
        cap = kind.max_backoff_seconds if kind is not None else 600
        message.next_attempt_at = now + backoff(message.attempts, cap)
        logger.warning("outbox %s (%s) attempt %d failed (%s); retrying", message.id,
                       message.kind, message.attempts, error)
