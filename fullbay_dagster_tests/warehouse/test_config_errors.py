"""Database settings that cannot work are refused with a message that says what to fix."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from fullbay_dagster.defs.resources import WarehouseResource
from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import WarehouseConfigError, make_engine, normalise_url
from fullbay_dagster.warehouse.migrate import WarehousePrivilegeError

# Each password holds a raw character that makes the URL parse other than meant.
RAW_PASSWORDS = {
    "@": "s3cr@tPIECE",
    "/": "s3cr/tPIECE",
    "#": "s3cr#tPIECE",
    "%": "s3cr%tPIECE",
    "@@": "a@b@cPIECE",
}


@pytest.mark.parametrize("password", RAW_PASSWORDS.values(), ids=RAW_PASSWORDS.keys())
def test_a_raw_special_character_in_the_password_is_refused_without_echoing_the_url(password: str) -> None:
    url = f"postgresql://fullbay:{password}@db.internal.example:5432/warehouse"
    with pytest.raises(WarehouseConfigError) as raised:
        normalise_url(url)
    message = str(raised.value)
    assert "Percent-encode" in message and "%40" in message
    for piece in ("PIECE", "db.internal", "warehouse", "fullbay:"):
        assert piece not in message  # nothing after the scheme, not even the host
    with pytest.raises(WarehouseConfigError):
        WarehouseResource(database_url=url).get_engine()


@pytest.mark.parametrize("password", RAW_PASSWORDS.values(), ids=RAW_PASSWORDS.keys())
def test_the_percent_encoded_password_is_read_exactly(password: str) -> None:
    url = normalise_url(f"postgresql://fullbay:{quote(password, safe='')}@db.internal.example:5432/warehouse")
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "fullbay",
        password,
        "db.internal.example",
        5432,
        "warehouse",
    )


def test_a_url_that_does_not_parse_is_refused_without_echoing_it() -> None:
    with pytest.raises(WarehouseConfigError) as raised:
        normalise_url("postgresql://fullbay:pw@db.internal.example:notaport/warehouse")
    assert "db.internal" not in str(raised.value) and "Percent-encode" in str(raised.value)


def test_sqlite_paths_are_not_second_guessed() -> None:
    assert normalise_url("sqlite:///data@2025/w#1.db").database == "data@2025/w#1.db"


def test_a_user_without_create_privilege_is_told_which_privilege_it_lacks(pg_url: str) -> None:
    role = f"fullbay_reader_{uuid.uuid4().hex[:8]}"
    owner = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with owner.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))  # PostgreSQL 15's default
    restricted_url = make_url(pg_url).set(username=role, password=None).render_as_string(hide_password=False)
    engine = make_engine(restricted_url)
    try:
        with pytest.raises(WarehousePrivilegeError) as raised:
            migrate.upgrade(engine)
        message = str(raised.value)
        assert f"The database user '{role}'" in message
        assert "lacks the CREATE privilege on schema 'public'" in message
        assert f'GRANT CREATE ON SCHEMA "public" TO "{role}";' in message
        assert "CREATE TABLE" not in message and "[SQL:" not in message
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        # The same through the resource a run uses; and nothing half-created.
        with pytest.raises(WarehousePrivilegeError, match=role):
            WarehouseResource(database_url=restricted_url).get_engine()
        assert not set(inspect(owner).get_table_names()) & {"ingestion_metadata", "fullbay_alembic_version"}
        # Granted as the message says, the same user migrates.
        with owner.connect() as connection:
            connection.execute(text(f'GRANT CREATE ON SCHEMA "public" TO "{role}"'))
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
    finally:
        engine.dispose()
        with owner.connect() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        owner.dispose()
