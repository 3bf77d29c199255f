"""Database engine and sessions: SQLite embedded by default, PostgreSQL in production."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    """Declarative base of every model."""


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored as UTC.

    SQLite has no time zone type and SQLAlchemy returns naive values from it; storing UTC and
    re-attaching it on the way out keeps DESIGN invariant 8 (times are timezone-aware) on both
    databases. Naive values are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:  # noqa: ANN401
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:  # noqa: ANN401
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:  # noqa: ANN401
    # pysqlite defers BEGIN until the first write, which breaks SAVEPOINT and makes a read
    # followed by a write two transactions; SQLAlchemy's documented fix is to turn its
    # transaction handling off and emit BEGIN ourselves (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the web, listener and worker threads read while one writes; synchronous=FULL
    # fsyncs every commit so an ACKed HL7 message survives a power cut, not only a crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:  # noqa: ANN401
    # Every transaction takes SQLite's write lock up front (BEGIN IMMEDIATE): SQLite cannot
    # upgrade a deferred reader to a writer once another writer has committed and fails it at
    # once ("database is locked") instead of waiting, which a read-then-write transaction (a
    # booking, a payment notification, a claim) would hit under load. Waiting on busy_timeout
    # is right for the embedded setup; PostgreSQL, the production database, is unaffected.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:  # noqa: ANN401
    """Create the engine for ``url`` with the settings each database needs."""
    # A failed statement's error never quotes its parameters (names, phones, encrypted
    # documents): its text reaches logs and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker:
    """One session per request or job; objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def write_transaction(session: Any) -> None:  # noqa: ANN401 - a Session
    """Start the session's transaction now, as a writer.

    Marks the transactions that read then write under contention (bookings, claims); on SQLite
    every transaction begins IMMEDIATE (see _sqlite_begin), PostgreSQL relies on row locks.
    """
    session.connection()


def try_exclusive(session: Any, key: int) -> bool:  # noqa: ANN401 - a Session
    """Take the PostgreSQL advisory lock ``key`` for the session's transaction, unless another
    transaction holds it (then False, at once). Work that every worker would do alike (a whole
    pool's sync) is then done by one at a time; on SQLite (one process, transactions already
    serialised) always True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    from sqlalchemy import text

    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def aggregate_utc(value: dt.datetime | str) -> dt.datetime:
    """A UtcDateTime read through an aggregate (``min``...), which bypasses the column type:
    SQLite hands back a naive UTC time or a string; aware in UTC either way."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
