"""The shape of a real getInvoices.php answer (the verbatim response published in
kerrybros/fullbay-api-ingestion, with every name, phone, email, address and id
replaced) loads with nothing quarantined, no field issue and no unknown field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from fullbay_dagster.fullbay.fields import KNOWN
from fullbay_dagster.fullbay.observe import fold
from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse.loader import build_work_orders_day, load_raw_day
from fullbay_dagster.warehouse.schema import field_issues, quarantine, schema_fields, work_order_lines, work_orders

FIXTURE = Path(__file__).parent.parent / "fixtures" / "real_shape_response.json"
NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)


def real_shape() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def paths_of(value: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found |= {path} | paths_of(item, path)
    elif isinstance(value, list):
        for item in value:
            found |= {f"{prefix}[]"} | paths_of(item, f"{prefix}[]")
    return found


def test_the_real_shape_loads_with_no_quarantine_and_no_field_issue(pg_engine: Engine) -> None:
    [invoice] = real_shape()["resultSet"]
    day = date.fromisoformat(invoice["invoiceDate"])
    raw = load_raw_day(pg_engine, day, [invoice], now=NOW)
    built = build_work_orders_day(pg_engine, day, zone=ZoneInfo("America/Detroit"), source="fixture", now=NOW)
    assert (raw.quarantined, built.quarantined, built.inserted, built.field_issues) == (0, 0, 1, 0)
    with pg_engine.connect() as connection:
        assert connection.execute(select(quarantine)).all() == []
        assert connection.execute(select(field_issues)).all() == []
        row = connection.execute(select(work_orders)).one()
        lines = connection.execute(select(work_order_lines).order_by(work_order_lines.c.source_key)).all()
        observed = {r.field_path: r for r in connection.execute(select(schema_fields))}
    assert (row.total_amount, row.tax_amount, row.misc_amount) == (Decimal("162.68"), Decimal("0.45"), Decimal("4.73"))
    assert [(line.line_type, line.rate_name, line.amount) for line in lines] == [
        ("misc", None, Decimal("4.73")),
        ("labor", "Standard", Decimal("150")),
        ("labor", "Standard", Decimal("0")),
    ]
    assert set(observed) == paths_of(invoice)
    assert set(observed) <= KNOWN  # every field of the real answer is one the project knows
    assert observed["ServiceOrder.Complaints[].laborRate"].json_types == {"string": 2}
    assert observed["ServiceOrder.Complaints[].laborRate"].mapped_column is None
    assert observed["total"].mapped_column == "fullbay_work_orders.total_amount"


def test_the_simulator_sends_the_real_shape() -> None:
    """Every field the real answer has, the simulator's invoices have, with the same JSON types."""
    [invoice] = real_shape()["resultSet"]
    generated = invoices_for_day(3, date(2025, 6, 3), 60, date(2025, 6, 10))
    real_paths = paths_of(invoice)
    simulated = set().union(*(paths_of(record) for record in generated))
    assert real_paths <= simulated
    assert {fold(p) for p in simulated} <= KNOWN

    def types(record: dict[str, Any]) -> dict[str, set[str]]:
        kinds: dict[str, set[str]] = {}

        def walk(value: Any, path: str) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(item, f"{path}.{key}" if path else key)
            elif isinstance(value, list):
                for item in value:
                    walk(item, f"{path}[]")
            else:
                kinds.setdefault(path, set()).add(type(value).__name__)

        walk(record, "")
        return kinds

    real_types = types(invoice)
    simulated_types: dict[str, set[str]] = {}
    for record in generated:
        for path, kinds in types(record).items():
            simulated_types.setdefault(path, set()).update(kinds)
    number = {"int", "float"}
    for path in ("ServiceOrder.Complaints[].laborRate", "ServiceOrder.Complaints[].mileageRate",
                 "ServiceOrder.Complaints[].Corrections[].laborRate", "ServiceOrder.MiscCharges[].amount",
                 "ServiceOrder.Complaints[].Corrections[].correctionPerformed"):  # fmt: skip
        assert simulated_types[path] == real_types[path] == {"str"}, path
    for path, kinds in real_types.items():
        if kinds <= number:
            assert simulated_types[path] & number and not simulated_types[path] - number - {"NoneType"}, path
    assert any(
        len(str(t["actualHours"]).split(".")[-1]) > 4
        for record in generated
        for c in record["ServiceOrder"]["Complaints"]
        for t in c["AssignedTechnicians"]
    )
