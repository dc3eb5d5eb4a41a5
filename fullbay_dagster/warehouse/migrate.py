"""Bring a warehouse database to the current schema version (Alembic ``upgrade head``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
# Not Alembic's default `alembic_version`: Dagster's own PostgreSQL storage keeps its
# schema version there, and the warehouse may share that database.
VERSION_TABLE = "fullbay_alembic_version"
# Any constant shared by every process: serialises concurrent first starts.
_MIGRATION_LOCK_ID = 0x46554C4C  # "FULL"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        return (
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision() == head
        )


def upgrade(engine: Engine) -> None:
    """Idempotent; cheap when already current. Two runs starting together on a new
    PostgreSQL database take turns through an advisory lock."""
    if is_current(engine):
        return
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
