"""Bad input: records that cannot be loaded as they are, and bad configuration.

Property (hypothesis, on PostgreSQL): every record fed to ``load_raw_day`` +
``build_work_orders_day`` either loads (a work order holding exactly that JSON, its
amounts equal to the input's parsed with Decimal, NULL where they do not parse) or
is in ``fullbay_quarantine`` with a reason, never both, never neither, and no
record-level problem raises out of the loader. Only identity (key, date) or JSON
that PostgreSQL cannot store quarantines. Records are valid synthetic invoices with
hypothesis-chosen mutations.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.schema import quarantine, work_orders
from fullbay_dagster_tests.reliability import harness
from fullbay_dagster_tests.reliability.harness import DAY

ZONE = ZoneInfo("America/Chicago")  # west of UTC: local times map to later UTC instants
NOW = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)
POOL = invoices_for_day(harness.SEED, DAY, 40, harness.AS_OF)
AMOUNTS = {
    "total": "total_amount",
    "balance": "balance",
    "partsTotal": "parts_amount",
    "laborTotal": "labor_amount",
    "subTotal": "subtotal_amount",
    "suppliesTotal": "supplies_amount",
}


@pytest.fixture(scope="module")
def prop_engine() -> Iterator[Engine]:
    """One database for all examples; tables are emptied before each."""
    with harness.temp_database("prop") as url:
        engine = harness.migrated_engine(url)
        yield engine
        engine.dispose()


def empty(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE fullbay_work_order_lines, fullbay_work_orders, fullbay_raw_work_orders, fullbay_quarantine")
        )


# --------------------------------------------------------------------------- comparing JSON values


def norm(value: Any) -> Any:
    """A JSON value compared by meaning: numbers by value (NaN equal to NaN), so
    a JSONB round trip (1e308 back as an integer) or NaN does not upset equality."""
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = Decimal(repr(value) if isinstance(value, float) else value)
        return ("number", "0" if number == 0 else str(number.normalize()))  # JSONB has no -0
    return value


def expected_amount(value: Any) -> Decimal | None:
    """An amount as the contract says it comes: a number, a numeric string, or blank;
    anything else (or beyond NUMERIC(16, 4)) is stored NULL."""
    if value is None or isinstance(value, (bool, list, dict)) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except ArithmeticError:
        return None
    if not number.is_finite() or abs(number) >= 10**12 or number.as_tuple().exponent < -4:  # type: ignore[operator]
        return None
    return number


def changes(record: Any) -> str:
    """How ``record`` differs from the pool invoice it was made from (for failure messages)."""
    if not isinstance(record, dict):
        return f"not an object: {record!r:.80}"
    origin = next((r for r in POOL if r["primaryKey"] == record.get("primaryKey")), None)
    if origin is None:
        return f"primaryKey {record.get('primaryKey')!r:.80}"
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for n, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{n}]")
        elif norm(a) != norm(b):
            found.append(f"{path}: {a!r:.60} -> {b!r:.60}")

    walk(origin, record, "")
    return "; ".join(found) or "unchanged"


def usable_key(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    key = record.get("primaryKey")
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        return None
    return str(key).strip() or None


# --------------------------------------------------------------------------- mutations


def _path(record: dict[str, Any], draw: Callable[..., Any]) -> tuple[dict[str, Any], str] | None:
    """A (parent object, field) pair somewhere in the invoice, chosen by hypothesis."""
    order = record.get("ServiceOrder") if isinstance(record.get("ServiceOrder"), dict) else None
    places: list[tuple[dict[str, Any], str]] = [(record, k) for k in record]
    if order:
        places += [(order, k) for k in order]
        complaints = order.get("Complaints") if isinstance(order.get("Complaints"), list) else []
        for complaint in complaints:
            if isinstance(complaint, dict):
                places += [(complaint, k) for k in complaint]
                for correction in complaint.get("Corrections") or []:
                    if isinstance(correction, dict):
                        places += [(correction, k) for k in correction]
                        for part in correction.get("Parts") or []:
                            if isinstance(part, dict):
                                places += [(part, k) for k in part]
    return draw(st.sampled_from(places)) if places else None


NESTED = [("Customer",), ("TaxInformation",), ("ServiceOrder",), ("ServiceOrder", "Unit"), ("ServiceOrder", "Customer")]
NESTED += [("ServiceOrder", "Complaints"), ("ServiceOrder", "MiscCharges")]
TEXT_FIELDS = ["customerTitle", "shopTitle", "customerBillingEmail", "shopPhysicalAddress", "createdByTechnician"]
SHORT_FIELDS = ["invoiceNumber"]
WEIRD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
    st.sampled_from(
        ["\x00", "a\x00b", "\ud800", "x\udfffy", "e\u0301", "\U0001d518\U0001d52b", "\u202eevil", "\\u0000"]
    ),
    st.sampled_from(["\\", '"', "'; DROP TABLE fullbay_work_orders; --", "\t\n\r", "\ufeff", "\uffff"]),
    st.sampled_from([65, 1_000, 100_000, 1_000_000]).map(lambda n: "\u00e9" * n),
)
# Amounts within what the contract and the columns hold (at most 4 decimals, |x| < 10^12)...
PLAIN_AMOUNTS = st.decimals(min_value=-(10**12) + 1, max_value=10**12 - 1, places=2, allow_nan=False)
AMOUNT_VALUES = st.one_of(
    PLAIN_AMOUNTS.map(float),
    PLAIN_AMOUNTS.map(str),
    PLAIN_AMOUNTS.map(lambda d: f"  {d} "),
    st.integers(min_value=-(10**11), max_value=10**11),
    st.sampled_from([0, -0.0, -0.01, "0", "-123.45", "999999999999.9999", "-999999999999.9999", "", None, "  "]),
    # ... and outside: NaN, infinities, too big, not numbers, wrong types.
    st.sampled_from([float("nan"), float("inf"), float("-inf"), "NaN", "Infinity", "-Infinity", "nan", "1e400"]),
    st.sampled_from([1e12, -1e12, 10**15, 1e308, "1e12", "12,34,x", "twelve", "1.2.3", True, [], {"v": 1}]),
)
BAD_DATES = st.sampled_from(
    [
        "2025-02-30",
        "2025-13-01",
        "2025-00-10",
        "0000-00-00",
        "not a date",
        "",
        None,
        "12/03/2025",
        "2025-3-12",
        20250312,
    ]
)
BAD_TIMESTAMPS = st.sampled_from(
    [
        "2025-03-12 25:00:00",
        "2025-02-30 10:00:00",
        "2025-03-12T10:00:00",
        "0000-00-00 00:00:00",
        "2025-03-12",
        "",
        None,
        "yesterday",
        "2025-03-12 10:00:00.123",
        1741773600,
    ]
)
BAD_KEYS = st.one_of(
    st.sampled_from([None, "", "   ", True, 12.5, [], {"id": 1}, "K" * 65, "\u00e9t\u00e9-1", "a\tb"]),
    st.integers(min_value=1, max_value=10**12),
)


def mutate(draw: Callable[..., Any], record: dict[str, Any]) -> Any:
    kind = draw(
        st.sampled_from(
            [
                "drop-nested",
                "nested-wrong-type",
                "number-as-string",
                "amount",
                "empty-string",
                "text",
                "short-text",
                "invoice-date",
                "other-day",
                "due-date",
                "timestamp",
                "primary-key",
                "not-an-object",
                "deep-null",
            ]
        )
    )
    if kind in ("drop-nested", "nested-wrong-type"):
        path = draw(st.sampled_from(NESTED))
        parent: Any = record
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            if kind == "drop-nested":
                replacement = draw(st.sampled_from(["delete", None, "", {}]))
                if replacement == "delete":
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = replacement
            else:
                parent[path[-1]] = draw(st.sampled_from([[1, 2], "text", 42, [{"a": 1}, "b"], True]))
    elif kind == "number-as-string":
        name = draw(st.sampled_from(list(AMOUNTS)))
        if isinstance(record.get(name), (int, float)):
            record[name] = draw(st.sampled_from([str, lambda v: f" {v} ", repr]))(record[name])
    elif kind == "amount":
        record[draw(st.sampled_from(list(AMOUNTS)))] = draw(AMOUNT_VALUES)
    elif kind == "empty-string":
        name = draw(st.sampled_from([*AMOUNTS, "dueDate", "created", "customerTitle", "exported", "invoiceNumber"]))
        record[name] = ""
    elif kind == "text":
        record[draw(st.sampled_from(TEXT_FIELDS))] = draw(WEIRD_TEXT)
    elif kind == "short-text":
        record[draw(st.sampled_from(SHORT_FIELDS))] = draw(WEIRD_TEXT)
    elif kind == "invoice-date":
        record["invoiceDate"] = draw(BAD_DATES)
    elif kind == "other-day":
        record["invoiceDate"] = (DAY + timedelta(days=draw(st.sampled_from([-1, 1, 400])))).isoformat()
    elif kind == "due-date":
        record["dueDate"] = draw(BAD_DATES)
    elif kind == "timestamp":
        record["created"] = draw(BAD_TIMESTAMPS)
    elif kind == "primary-key":
        if draw(st.booleans()):
            record.pop("primaryKey", None)
        else:
            record["primaryKey"] = draw(BAD_KEYS)
    elif kind == "not-an-object":
        return draw(st.sampled_from([None, "invoice", 42, [record], [], True]))
    elif kind == "deep-null":
        place = _path(record, draw)
        if place is not None:
            parent, name = place
            if name not in ("primaryKey", "invoiceDate") or parent is not record:
                parent[name] = draw(st.sampled_from([None, "", "NaN", [], {}, "\x00"]))
    return record


@st.composite
def batches(draw: Callable[..., Any]) -> list[Any]:
    picks = draw(st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=6, unique=True))
    records: list[Any] = []
    for index in picks:
        record: Any = copy.deepcopy(POOL[index])
        for _ in range(draw(st.integers(0, 3))):
            if not isinstance(record, dict):
                break
            record = mutate(draw, record)
        records.append(record)
    if draw(st.booleans()):  # the same invoice twice in one answer: exact copy, or a newer balance
        source = draw(st.sampled_from([r for r in records]))
        if isinstance(source, dict):
            twin = copy.deepcopy(source)
            if draw(st.booleans()) and "balance" in twin:
                twin["balance"] = 0
            records.insert(draw(st.integers(0, len(records))), twin)
    return records


# --------------------------------------------------------------------------- the property


def assert_each_record_loads_or_is_quarantined(engine: Engine, records: list[Any]) -> None:
    with engine.connect() as connection:
        loaded = {row.fullbay_id: row for row in connection.execute(select(work_orders))}
        held = [(json.loads(row.raw_text), row.reason) for row in connection.execute(select(quarantine))]
    held_norm = [(norm(value), reason) for value, reason in held]
    accounted: set[str] = set()
    for position, record in enumerate(records):
        key = usable_key(record)
        row = loaded.get(key) if key is not None else None
        is_loaded = row is not None and norm(row.raw_data) == norm(record)
        reasons = [reason for value, reason in held_norm if value == norm(record)]
        later_twin = any(usable_key(other) == key for other in records[position + 1 :]) if key else False
        if later_twin and not is_loaded and not reasons:
            continue  # the same invoice again later in the answer: the later copy is the one kept
        what = f"record {position} loaded={is_loaded} quarantined={reasons}: {changes(record)}"
        assert is_loaded != bool(reasons), what
        if reasons:
            assert all(reason and reason.strip() for reason in reasons)
        else:
            assert row is not None
            accounted.add(row.fullbay_id)
            for field, column in AMOUNTS.items():
                assert row._mapping[column] == expected_amount(record.get(field)), (field, record.get(field))
    assert set(loaded) == accounted, "a work order that no input record accounts for"


@settings(
    max_examples=int(os.environ.get("FULLBAY_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(records=batches())
def test_every_record_loads_exactly_or_is_quarantined_with_a_reason(prop_engine: Engine, records: list[Any]) -> None:
    empty(prop_engine)
    raw = loader.load_raw_day(prop_engine, DAY, records, run_id="prop", now=NOW)
    built = loader.build_work_orders_day(prop_engine, DAY, zone=ZONE, source="prop", now=NOW)
    assert_each_record_loads_or_is_quarantined(prop_engine, records)
    valid = [r for r in POOL if any(norm(r) == norm(x) for x in records)]
    for record in valid:  # an untouched invoice in the batch always loads
        assert record["primaryKey"] in harness.ids(prop_engine, work_orders)
    held = harness.row_count(prop_engine, quarantine)  # one row per distinct bad record
    assert raw.quarantined + built.quarantined == held, [changes(r) for r in records]


def test_the_valid_records_of_a_batch_all_load_next_to_bad_ones(prop_engine: Engine) -> None:
    empty(prop_engine)
    good = copy.deepcopy(POOL[:5])
    bad: list[Any] = [
        {**copy.deepcopy(POOL[5]), "total": float("nan")},
        {**copy.deepcopy(POOL[6]), "customerTitle": "nul \x00 here"},
        {**copy.deepcopy(POOL[7]), "invoiceDate": "2025-02-30"},
        {k: v for k, v in POOL[9].items() if k != "primaryKey"},
        "not an invoice",
    ]
    odd = {**copy.deepcopy(POOL[8]), "ServiceOrder": ["not", "an", "object"]}  # content: loads, with an issue
    records = [bad[0], good[0], bad[1], good[1], good[2], bad[2], odd, good[3], bad[3], good[4], bad[4]]
    raw = loader.load_raw_day(prop_engine, DAY, records, run_id="mixed", now=NOW)
    built = loader.build_work_orders_day(prop_engine, DAY, zone=ZONE, source="mixed", now=NOW)
    assert raw.quarantined + built.quarantined == len(bad)
    assert sorted(harness.ids(prop_engine, work_orders)) == sorted(r["primaryKey"] for r in [*good, odd])
    assert_each_record_loads_or_is_quarantined(prop_engine, records)


# --------------------------------------------------------------------------- bugs found (kept failing on purpose)


def _one(engine: Engine, record: dict[str, Any]) -> None:
    empty(engine)
    loader.load_raw_day(engine, DAY, [record, copy.deepcopy(POOL[1])], run_id="bug", now=NOW)
    loader.build_work_orders_day(engine, DAY, zone=ZONE, source="bug", now=NOW)
    assert_each_record_loads_or_is_quarantined(engine, [record, POOL[1]])


@pytest.mark.parametrize("amount", ["12.34567", 1e-07], ids=["5-decimals", "1e-07"])
def test_an_amount_with_more_than_four_decimals_is_not_silently_rounded(prop_engine: Engine, amount: Any) -> None:
    _one(prop_engine, {**copy.deepcopy(POOL[0]), "total": amount})


def test_a_timestamp_at_the_end_of_time_is_a_field_issue_not_fatal(prop_engine: Engine) -> None:
    _one(prop_engine, {**copy.deepcopy(POOL[0]), "created": "9999-12-31 23:00:00"})


@pytest.mark.parametrize("level", ["correction-key", "complaint-key"])
def test_a_fallback_line_key_longer_than_the_column_is_not_fatal(prop_engine: Engine, level: str) -> None:
    record = copy.deepcopy(POOL[0])
    complaint = record["ServiceOrder"]["Complaints"][0]
    correction = complaint["Corrections"][0]
    if level == "correction-key":
        correction["primaryKey"] = "K" * 64
        assert correction["Parts"], "the fixture invoice needs parts under its first correction"
        for part in correction["Parts"]:
            part.pop("primaryKey", None)
    else:
        complaint["primaryKey"] = "C" * 64
        correction.pop("primaryKey", None)
    _one(prop_engine, record)


def test_a_primary_key_with_a_nul_is_quarantined_not_fatal(prop_engine: Engine) -> None:
    _one(prop_engine, {**copy.deepcopy(POOL[0]), "primaryKey": "a\x00b"})


# --------------------------------------------------------------------------- through Dagster


def test_bad_records_in_an_api_answer_are_quarantined_and_the_check_fails(pg_url: str) -> None:
    """A contract-shaped getInvoices.php (the simulator never serves bad records)
    answers with five good invoices, two that cannot be stored or placed, and one
    whose ServiceOrder has the wrong type (loaded, with a field issue)."""
    odd = {**copy.deepcopy(POOL[7]), "ServiceOrder": "not an object"}
    good = [*copy.deepcopy(POOL[:5]), odd]
    bad = [
        {**copy.deepcopy(POOL[5]), "total": float("nan")},  # served as a bare NaN token
        {**copy.deepcopy(POOL[6]), "invoiceDate": (DAY + timedelta(days=1)).isoformat()},
    ]
    with harness.ContractServer([*good[:2], *bad, *good[2:]], page_size=3) as server:
        outcome = harness.run_job(DAY, database_url=pg_url, api_url=server.url)
    assert outcome.success, outcome.error
    assert outcome.checks["no_quarantined_records"] == (False, "WARN")
    assert outcome.checks["quarantine_below_one_percent"] == (False, "ERROR")  # 2 of 8 invoices missing
    assert outcome.checks["no_field_issues"] == (False, "WARN")
    assert outcome.checks["rows_match_api_count"][0] and outcome.checks["raw_and_normalised_agree"][0]
    assert sum(meta.get("quarantined", 0) for meta in outcome.metadata.values()) == len(bad)
    engine = harness.migrated_engine(pg_url)
    try:
        assert sorted(harness.ids(engine, work_orders)) == sorted(r["primaryKey"] for r in good)
        with engine.connect() as connection:
            held = connection.execute(select(quarantine.c.fullbay_id, quarantine.c.reason)).all()
        assert sorted(key for key, _ in held) == sorted(r["primaryKey"] for r in bad)
        assert all(reason for _, reason in held)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FULLBAY_START_DATE", "yesterday"),
        ("FULLBAY_TIMEZONE", "Central Time"),
        ("SCHEDULE_EXPRESSION", "daily at 6"),
    ],
)
def test_a_bad_setting_stops_the_code_location_with_one_message_naming_it(variable: str, value: str) -> None:
    """As ``dagster dev`` loads it: the module that builds the Definitions."""
    env = {"PATH": "/usr/bin:/bin", "FULLBAY_START_DATE": harness.START_DATE, variable: value}
    process = subprocess.run(
        [sys.executable, "-c", "import fullbay_dagster.defs.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode != 0
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("fullbay_dagster.defs.settings.SettingsError: ") and variable in last
    assert value in last
    assert process.stderr.count("SettingsError:") == 1


def _run_with_env(scrubbed_env: pytest.MonkeyPatch, **env: str) -> harness.RunOutcome:
    with harness.temp_database("config") as url:
        values = {
            "FULLBAY_API_KEY": harness.KEY,
            "FULLBAY_API_BASE_URL": "http://127.0.0.1:9/services",
            "FULLBAY_PUBLIC_IP": harness.IP,
            "DATABASE_URL": url,
            **env,
        }
        for name, value in values.items():
            scrubbed_env.setenv(name, value)
        return harness.run_job(DAY, resources={})


def test_a_base_url_without_scheme_fails_the_run_naming_the_variable(scrubbed_env: pytest.MonkeyPatch) -> None:
    outcome = _run_with_env(scrubbed_env, FULLBAY_API_BASE_URL="app.fullbay.com/services")
    assert not outcome.success
    assert "FULLBAY_API_BASE_URL" in outcome.error and "http" in outcome.error
    assert outcome.step_retries == 0


@pytest.mark.parametrize(
    "url",
    [
        "garbage",
        "postgresql//fullbay:PW-canary@db.example.com/fullbay",
        "mysql://fullbay:PW-canary@db.example.com:3306/fullbay",
        "postgresql://fullbay:PW-canary@db.example.com:54x2/fullbay",
    ],
    ids=["garbage", "no-colon", "mysql", "bad-port"],
)
def test_a_bad_database_url_fails_the_run_naming_the_variable(scrubbed_env: pytest.MonkeyPatch, url: str) -> None:
    outcome = _run_with_env(scrubbed_env, DATABASE_URL=url)
    assert not outcome.success
    assert "PW-canary" not in outcome.error
    assert "DATABASE_URL" in outcome.error
