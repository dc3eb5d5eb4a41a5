"""The warehouse's sessions compress large values (an invoice's raw JSON) with lz4."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, text

from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse.loader import load_raw_day

DAY = date(2025, 3, 12)


def test_raw_json_is_stored_lz4_compressed(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        if int(connection.execute(text("SHOW server_version_num")).scalar_one()) < 140000:
            pytest.skip("lz4 TOAST compression came with PostgreSQL 14")
        assert connection.execute(text("SHOW default_toast_compression")).scalar_one() == "lz4"
    records = invoices_for_day(5, DAY, 20, as_of=DAY)
    load_raw_day(pg_engine, DAY, records, now=datetime.now(UTC))
    with pg_engine.connect() as connection:
        methods = (
            connection.execute(text("SELECT DISTINCT pg_column_compression(raw_data) FROM fullbay_raw_work_orders"))
            .scalars()
            .all()
        )
    assert methods == ["lz4"]
