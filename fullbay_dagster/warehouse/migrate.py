"""Bring a warehouse database to the current schema version (Alembic ``upgrade head``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from fullbay_dagster.warehouse.engine import WarehouseConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
# Not Alembic's default `alembic_version`: Dagster's own PostgreSQL storage keeps its
# schema version there, and the warehouse may share that database.
VERSION_TABLE = "fullbay_alembic_version"
# Any constant shared by every process: serialises concurrent first starts.
_MIGRATION_LOCK_ID = 0x46554C4C  # "FULL"
_INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE


class WarehousePrivilegeError(WarehouseConfigError):
    """The database user may not create or change the warehouse tables."""


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
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        raise _privilege_error(engine, exc) from None


def _privilege_error(engine: Engine, exc: DBAPIError) -> WarehousePrivilegeError:
    """Names the user, the database and what it may not do, instead of the raw SQL."""
    reason = str(exc.orig).strip().splitlines()[0]  # e.g. "permission denied for schema public"
    with engine.connect() as connection:
        user, database, schema = connection.execute(
            text("SELECT current_user, current_database(), current_schema()")
        ).one()
    schema = schema or "public"
    if "schema" not in reason:  # e.g. "must be owner of table ...": an ALTER by a later migration
        return WarehousePrivilegeError(
            f"The database user {user!r} may not migrate the warehouse tables in database "
            f"{database!r}: {reason}. Run the migration (any run does it) as the tables' owner."
        )
    return WarehousePrivilegeError(
        f"The database user {user!r} may not create the warehouse tables in database {database!r} "
        f"({reason}): it lacks the CREATE privilege on schema {schema!r}. Grant it once as the "
        f'schema owner (GRANT CREATE ON SCHEMA "{schema}" TO "{user}";), or run the first load '
        "(which creates and migrates the tables) as a user that owns the schema."
    )
