"""Database URLs, engines and the Alembic migrations on real PostgreSQL and on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, make_url, text
from sqlalchemy.dialects.postgresql import JSONB

from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import (
    PG_DRIVER,
    WarehouseConfigError,
    describe,
    make_engine,
    normalise_url,
    url_from_parts,
)

TABLES = {"fullbay_raw_work_orders", "fullbay_work_orders", "fullbay_work_order_lines", "ingestion_metadata"}

# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@db.example:5432/warehouse",
        "postgres://user:pw@db.example:5432/warehouse",
        "postgresql+psycopg2://user:pw@db.example:5432/warehouse",
    ],
)
def test_normalise_url_routes_postgresql_to_psycopg2(url: str) -> None:
    parsed = normalise_url(url)
    assert parsed.drivername == PG_DRIVER == "postgresql+psycopg2"
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "user",
        "pw",
        "db.example",
        5432,
        "warehouse",
    )


def test_normalise_url_accepts_url_objects() -> None:
    assert normalise_url(make_url("postgresql://u@h/db")).drivername == PG_DRIVER


@pytest.mark.parametrize("url", ["sqlite:///tmp/w.db", "sqlite://", "sqlite:///:memory:"])
def test_normalise_url_keeps_sqlite(url: str) -> None:
    parsed = normalise_url(url)
    assert parsed.drivername == "sqlite"
    assert parsed.database == make_url(url).database


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user:pw@db.example:3306/warehouse",
        "mysql+pymysql://user:pw@db.example/warehouse",
        "mssql+pyodbc://user:pw@dsn",
        "not a url",
        "db.example:5432/warehouse",
        "",
    ],
)
def test_normalise_url_rejects_other_databases_and_garbage(url: str) -> None:
    with pytest.raises(WarehouseConfigError):
        normalise_url(url)


def test_describe_never_contains_the_password() -> None:
    url = normalise_url("postgresql://fullbay:s3cr3t-pw@db.example:6543/warehouse")
    described = describe(url)
    assert "s3cr3t-pw" not in described
    assert "db.example" in described and "6543" in described and "warehouse" in described
    built = url_from_parts("db.example", 5432, "warehouse", "fullbay", "s3cr3t-pw")
    assert built.password == "s3cr3t-pw"
    assert "s3cr3t-pw" not in describe(built)
    assert describe(normalise_url("sqlite:///tmp/w.db")).startswith("sqlite")


def test_unknown_sslmode_is_rejected() -> None:
    with pytest.raises(WarehouseConfigError, match=r"(?i)sslmode"):
        make_engine("postgresql://u:s3cr3t-pw@db.example/warehouse", sslmode="required")


@pytest.mark.parametrize("sslmode", [None, "disable", "require", "verify-full"])
def test_known_sslmodes_make_an_engine(sslmode: str | None) -> None:
    engine = make_engine("postgresql://u:s3cr3t-pw@db.example/warehouse", sslmode=sslmode)
    try:
        assert engine.url.drivername == PG_DRIVER
    finally:
        engine.dispose()


def test_make_engine_rejects_unsupported_database() -> None:
    with pytest.raises(WarehouseConfigError):
        make_engine("mysql://u:p@h/db")


# --------------------------------------------------------------------------- migrations


@pytest.fixture()
def fresh_pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    yield engine
    engine.dispose()


@pytest.mark.parametrize("backend", ["fresh_pg", "fresh_sqlite"])
def test_upgrade_creates_the_tables_and_is_idempotent(request: pytest.FixtureRequest, backend: str) -> None:
    engine: Engine = request.getfixturevalue(backend)
    assert not TABLES & set(inspect(engine).get_table_names())
    assert migrate.is_current(engine) is False

    migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert migrate.is_current(engine) is True
    with engine.connect() as connection:
        versions = connection.execute(text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalars().all()

    migrate.upgrade(engine)  # a no-op
    assert migrate.is_current(engine) is True
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalars().all() == versions
    assert len(versions) == 1


def test_two_concurrent_upgrades_of_a_fresh_database_both_succeed(pg_url: str) -> None:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            barrier.wait(timeout=30)
            migrate.upgrade(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert all(migrate.is_current(engine) for engine in engines)
        assert set(inspect(engines[0]).get_table_names()) >= TABLES
        with engines[0].connect() as connection:
            assert connection.execute(text(f"SELECT count(*) FROM {migrate.VERSION_TABLE}")).scalar_one() == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_upgrade_leaves_a_foreign_alembic_version_table_alone(fresh_pg: Engine) -> None:
    """The warehouse may share a database with Dagster's storage, which has its own ``alembic_version``."""
    with fresh_pg.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('dagster_rev_1')"))
    assert migrate.is_current(fresh_pg) is False
    migrate.upgrade(fresh_pg)
    assert migrate.is_current(fresh_pg) is True
    assert set(inspect(fresh_pg).get_table_names()) >= TABLES
    with fresh_pg.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["dagster_rev_1"]


def _columns(engine: Engine, table: str) -> dict[str, dict]:
    return {column["name"]: column for column in inspect(engine).get_columns(table)}


def _unique_columns(engine: Engine, table: str) -> set[tuple[str, ...]]:
    inspector = inspect(engine)
    unique = {tuple(c["column_names"]) for c in inspector.get_unique_constraints(table)}
    unique |= {tuple(i["column_names"]) for i in inspector.get_indexes(table) if i["unique"]}
    unique.add(tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
    return unique


ARCHITECTURE_COLUMNS = [
    "fullbay_id",
    "work_order_number",
    "customer_id",
    "customer_name",
    "vehicle_info",
    "status",
    "created_at",
    "updated_at",
    "total_amount",
    "labor_amount",
    "parts_amount",
    "tax_amount",
    "raw_data",
    "ingestion_timestamp",
    "ingestion_source",
]


def test_work_orders_columns_on_postgresql(pg_engine: Engine) -> None:
    columns = _columns(pg_engine, "fullbay_work_orders")
    missing = [name for name in ARCHITECTURE_COLUMNS if name not in columns]
    assert missing == []
    assert ("fullbay_id",) in _unique_columns(pg_engine, "fullbay_work_orders")
    for name in ("vehicle_info", "raw_data"):
        assert isinstance(columns[name]["type"], JSONB), name
    for name in ("total_amount", "labor_amount", "parts_amount", "tax_amount"):
        assert columns[name]["type"].python_type.__name__ == "Decimal", name
    for name in ("created_at", "updated_at", "ingestion_timestamp"):
        assert getattr(columns[name]["type"], "timezone", False) is True, name
    for name in ("fullbay_id", "status", "updated_at", "raw_data", "ingestion_timestamp", "ingestion_source"):
        assert columns[name]["nullable"] is False, name
    assert isinstance(_columns(pg_engine, "fullbay_raw_work_orders")["raw_data"]["type"], JSONB)
    assert isinstance(_columns(pg_engine, "fullbay_work_order_lines")["technicians"]["type"], JSONB)


def test_ingestion_metadata_columns_on_postgresql(pg_engine: Engine) -> None:
    columns = _columns(pg_engine, "ingestion_metadata")
    expected = [
        "execution_id",
        "start_time",
        "end_time",
        "status",
        "records_processed",
        "records_inserted",
        "error_message",
        "api_endpoint",
        "partition_key",
        "dagster_run_id",
    ]
    assert [name for name in expected if name not in columns] == []
    assert ("execution_id",) in _unique_columns(pg_engine, "ingestion_metadata")
    for name in ("execution_id", "start_time", "status", "records_processed", "records_inserted"):
        assert columns[name]["nullable"] is False, name
    # Uniqueness is enforced by the database, not only declared.
    insert = text(
        "INSERT INTO ingestion_metadata (execution_id, partition_key, start_time, status, records_processed,"
        " records_inserted, records_updated, records_unchanged, records_deleted)"
        " VALUES ('r:2025-03-12', '2025-03-12', now(), 'running', 0, 0, 0, 0, 0)"
    )
    with pg_engine.begin() as connection:
        connection.execute(insert)
    with pytest.raises(Exception, match=r"unique|duplicate"), pg_engine.begin() as connection:
        connection.execute(insert)
