"""Alembic environment: the adapter passes its own connection in (see adapter/migrate.py)."""

from alembic import context

from adapter import models  # noqa: F401  (registers the tables on Base.metadata)
from adapter.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
