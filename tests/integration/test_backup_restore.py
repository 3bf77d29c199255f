"""deploy/backup.sh and deploy/restore.sh against a real PostgreSQL database of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapter import migrate
from adapter.db import make_engine

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch_database_url():
    base = os.environ.get("ADAPTER_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("ADAPTER_TEST_POSTGRES_URL is not set")
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        pytest.skip("pg_dump and pg_restore are not installed")
    name = f"adapter_backup_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _run(script: str, url: str, backup_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADAPTER_DATABASE_URL": url, "ADAPTER_BACKUP_DIR": str(backup_dir)}
    return subprocess.run(
        ["sh", str(REPO / "deploy" / script), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_backup_restores_what_was_there_and_only_complete_dumps_are_kept(
    scratch_database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(scratch_database_url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO link_state (name, up, checked_at, detail) "
                                "VALUES ('his', true, now(), 'before the backup')"))
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()

    backup = _run("backup.sh", scratch_database_url, tmp_path)
    assert backup.returncode == 0, backup.stderr
    dumps = sorted(tmp_path.glob("adapter-*.dump"))
    assert len(dumps) == 1 and backup.stdout.strip() == f"backup: {dumps[0]}"
    assert oct(dumps[0].stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".*partial"))

    # What happened after the backup is lost on restore; what was there before comes back.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM link_state"))
        connection.execute(text("INSERT INTO link_state (name, up, checked_at, detail) "
                                "VALUES ('wallet:alipay', false, now(), 'after')"))
    engine.dispose()

    restore = _run("restore.sh", scratch_database_url, tmp_path, str(dumps[0]))
    assert restore.returncode == 0, restore.stderr
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, detail FROM link_state")).all()
        assert [tuple(r) for r in rows] == [("his", "before the backup")]
        restored = connection.execute(text("SELECT version_num FROM alembic_version"))
        assert restored.scalar_one() == version
    engine.dispose()


def test_the_scripts_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    sqlite = _run("backup.sh", f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    assert sqlite.returncode == 2 and "not PostgreSQL" in sqlite.stderr
    keep = subprocess.run(
        ["sh", str(REPO / "deploy" / "backup.sh")],
        env={**os.environ, "ADAPTER_DATABASE_URL": "postgresql://x@127.0.0.1/x",
             "ADAPTER_BACKUP_DIR": str(tmp_path), "ADAPTER_BACKUP_KEEP_DAYS": "a week"},
        capture_output=True, text=True, timeout=30,
    )
    assert keep.returncode == 2 and "whole number" in keep.stderr
    none = str(tmp_path / "none.dump")
    missing = _run("restore.sh", "postgresql://x@127.0.0.1/x", tmp_path, none)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert not list(tmp_path.glob("adapter-*.dump"))
