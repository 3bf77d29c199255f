"""Shared fixtures: a migrated database on SQLite and, where configured, PostgreSQL.

PostgreSQL runs when ADAPTER_TEST_POSTGRES_URL names a database the tests may wipe
(.ci/run sets it); otherwise those parametrisations are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapter import migrate
from adapter.db import Base, make_engine, make_session_factory

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("ADAPTER_HL7_SAMPLES", REPO.parent / "shared" / "hl7-samples"))
MAPPINGS = REPO / "mappings"


def _postgres_url() -> str | None:
    return os.environ.get("ADAPTER_TEST_POSTGRES_URL") or None


@pytest.fixture(scope="session")
def _sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    migrate.upgrade(engine)
    return engine


@pytest.fixture(scope="session")
def _postgresql_engine() -> Engine:
    url = _postgres_url()
    if not url:
        if os.environ.get("ADAPTER_TEST_REQUIRE_POSTGRES"):
            pytest.fail("ADAPTER_TEST_REQUIRE_POSTGRES is set but ADAPTER_TEST_POSTGRES_URL is not")
        pytest.skip("ADAPTER_TEST_POSTGRES_URL is not set")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated database, emptied after each test (threads and sockets share it)."""
    engine = request.getfixturevalue(f"_{request.param}_engine")
    yield engine
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def session_factory(engine: Engine):
    return make_session_factory(engine)
