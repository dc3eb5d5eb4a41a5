"""Alembic environment: runs on the connection that ``migrate.upgrade`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from fullbay_dagster.warehouse.engine import normalise_url
from fullbay_dagster.warehouse.migrate import VERSION_TABLE
from fullbay_dagster.warehouse.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # `alembic` CLI (autogenerate): build a connection from the URL
    engine = create_engine(normalise_url(config.get_main_option("sqlalchemy.url") or ""))
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    compare_type=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
