"""Fixtures of the warehouse tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import make_engine


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The migrated warehouse on PostgreSQL or on a SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_engine")
        return
    sqlite_engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    migrate.upgrade(sqlite_engine)
    yield sqlite_engine
    sqlite_engine.dispose()
