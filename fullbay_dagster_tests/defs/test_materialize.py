"""End to end: Dagster runs against the simulator over HTTP and a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    instance_for_test,
)
from sqlalchemy import Engine, func, select

from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster.warehouse.loader import table_checksum
from fullbay_dagster.warehouse.schema import ingestion_metadata, raw_work_orders, work_order_lines, work_orders
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs_loader import load_definitions

DAY = date(2025, 3, 12)
NORMALISED = ["work_orders", "work_order_lines", "quarantine", "field_issues", "schema_fields"]  # one step
Run = Callable[..., ExecuteInProcessResult]


@pytest.fixture()
def env(project_env: dict[str, str]) -> dict[str, str]:
    return project_env


@pytest.fixture()
def engine(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture()
def run(env: dict[str, str]) -> Run:
    def execute(
        first: date,
        last: date | None = None,
        instance: DagsterInstance | None = None,
        fullbay: dict[str, object] | None = None,
        **kw: object,
    ):
        job = load_definitions().resolve_job_def(JOB_NAME)
        # a tuned client (run config of the raw step), otherwise as the environment says
        run_config = {"ops": {"raw_work_orders": {"config": fullbay}}} if fullbay else None
        tags = range_tags(first.isoformat(), (last or first).isoformat())
        return job.execute_in_process(
            instance=instance or DagsterInstance.ephemeral(), tags=tags, run_config=run_config, **kw
        )

    return execute


def business_checksums(engine: Engine) -> dict[str, str]:
    """Every table's digest, leaving out only bookkeeping that a rerun must move."""
    return {
        "raw": table_checksum(engine, raw_work_orders, exclude=["last_seen_at", "last_run_id", "fetched_at"]),
        "work_orders": table_checksum(engine, work_orders),
        "lines": table_checksum(engine, work_order_lines),
    }


def count(engine: Engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def materialization_metadata(result: ExecuteInProcessResult, asset: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_one_partition_lands_and_a_rerun_changes_nothing(run: Run, engine: Engine, simulator: Simulator) -> None:
    first = run(DAY)
    assert first.success
    per_day = simulator.config.invoices_per_day
    assert count(engine, work_orders, work_orders.c.invoice_date == DAY) == per_day
    assert count(engine, work_order_lines) > per_day
    meta = materialization_metadata(first, "work_orders")
    assert meta["dagster/row_count"] == per_day and meta["inserted"] == per_day
    raw_meta = materialization_metadata(first, "raw_work_orders")
    assert raw_meta["run_api_requests"] == raw_meta["run_api_pages"] == -(-per_day // simulator.config.page_size)
    checks = {(c.check_name, c.partition): c.passed for c in first.get_asset_check_evaluations()}
    assert checks == {
        ("no_quarantined_records", DAY.isoformat()): True,
        ("raw_and_normalised_agree", DAY.isoformat()): True,
        ("line_sums_match_totals", DAY.isoformat()): True,
        ("rows_match_api_count", DAY.isoformat()): True,
        ("no_field_issues", DAY.isoformat()): True,
        ("quarantine_below_one_percent", DAY.isoformat()): True,
        ("schema_as_known", None): True,  # the whole table, once per run
    }
    before = business_checksums(engine)

    second = run(DAY)
    assert second.success
    assert business_checksums(engine) == before
    meta = materialization_metadata(second, "work_orders")
    assert (meta["inserted"], meta["updated"], meta["unchanged"]) == (0, 0, per_day)
    with engine.connect() as connection:
        statuses = connection.execute(select(ingestion_metadata.c.status, ingestion_metadata.c.records_processed)).all()
    assert sorted(statuses) == [("success", per_day), ("success", per_day)]


def test_balances_paid_later_update_rows_instead_of_duplicating(run: Run, engine: Engine, simulator: Simulator) -> None:
    simulator.set_as_of(DAY + timedelta(days=1))
    assert run(DAY).success
    with engine.connect() as connection:
        before = dict(connection.execute(select(work_orders.c.fullbay_id, work_orders.c.balance)).all())
    simulator.set_as_of(DAY + timedelta(days=60))
    result = run(DAY)
    assert result.success
    with engine.connect() as connection:
        after = dict(connection.execute(select(work_orders.c.fullbay_id, work_orders.c.balance)).all())
    changed = sum(1 for key in before if before[key] != after[key])
    assert set(after) == set(before)
    assert changed > 0
    assert materialization_metadata(result, "work_orders")["updated"] == changed


def test_fourteen_days_in_one_run_never_ask_for_more_than_seven(run: Run, engine: Engine, simulator: Simulator) -> None:
    last = DAY + timedelta(days=13)
    result = run(DAY, last)
    assert result.success
    assert len({r.run_id for r in [result]}) == 1
    assert count(engine, work_orders) == 14 * simulator.config.invoices_per_day
    spans = [
        (date.fromisoformat(r["endDate"]) - date.fromisoformat(r["startDate"])).days + 1 for r in simulator.requests()
    ]
    assert max(spans) == 7
    assert count(engine, ingestion_metadata, ingestion_metadata.c.status == "success") == 14


def test_auth_failure_fails_the_run_records_it_and_commits_nothing(
    run: Run, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLBAY_PUBLIC_IP", "203.0.113.77")
    result = run(DAY, raise_on_error=False)
    assert not result.success
    assert count(engine, raw_work_orders) == 0 and count(engine, work_orders) == 0
    with engine.connect() as connection:
        [row] = connection.execute(select(ingestion_metadata)).all()
    assert row.status == "failed"
    assert "FullbayAuthError" in row.error_message and "allow-list" in row.error_message
    assert TEST_KEY not in row.error_message


def test_transient_faults_within_a_run_are_survived(run: Run, engine: Engine, simulator: Simulator) -> None:
    simulator.queue_faults("503", "reset", "malformed")
    result = run(DAY)
    assert result.success
    assert materialization_metadata(result, "raw_work_orders")["run_api_retries"] == 3
    assert count(engine, work_orders) == simulator.config.invoices_per_day


def test_missing_database_configuration_is_a_clear_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")
    result = run(DAY, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "No warehouse database is configured" in str(failure.event_specific_data.error)


def test_unreachable_database_names_host_and_port(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://fullbay:Sup3rS3cret@127.0.0.1:9/warehouse")
    result = run(DAY, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "127.0.0.1:9/warehouse" in message
    assert "Sup3rS3cret" not in message


def test_runs_against_an_instance_stored_in_postgresql(run: Run, engine: Engine, pg_url: str) -> None:
    # dagster-postgres hands its URL to SQLAlchemy as is: name the installed driver.
    instance_url = normalise_url(pg_url).render_as_string(hide_password=False)
    assert instance_url.startswith("postgresql+psycopg2://")
    overrides = {"storage": {"postgres": {"postgres_url": instance_url}}}
    with instance_for_test(overrides=overrides) as instance:
        result = run(DAY, instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.is_success
        records = instance.fetch_materializations(records_filter=AssetKey("work_orders"), limit=10).records
        assert [r.partition_key for r in records] == [DAY.isoformat()]
    assert count(engine, work_orders) > 0


FAST_RETRIES = {"max_attempts": 2, "step_retry_wait": 0.1, "min_interval": 0.0}


def test_when_the_client_gives_up_dagster_retries_the_step(run: Run, engine: Engine, simulator: Simulator) -> None:
    simulator.queue_faults("503", "503")  # both of the client's attempts at page 1
    result = run(DAY, fullbay=FAST_RETRIES)
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1
    assert count(engine, work_orders) == simulator.config.invoices_per_day


@pytest.mark.parametrize("fault", ["shift", "grow"])
def test_data_moving_under_the_pager_is_fetched_again(
    run: Run, engine: Engine, simulator: Simulator, fault: str
) -> None:
    simulator.clear_requests()
    simulator.queue_faults(fault)
    result = run(DAY, fullbay=FAST_RETRIES)
    assert result.success
    assert count(engine, work_orders, work_orders.c.deleted_at.is_(None)) == simulator.config.invoices_per_day
    pages = -(-simulator.config.invoices_per_day // simulator.config.page_size)
    requested = [r["page"] for r in simulator.requests()]
    first_pass, second_pass = requested[:-pages], requested[-pages:]
    # Page 1 first in each pass, then the others fetched ahead (max_in_flight at once,
    # so in any order), each once; the second pass starts after the first has ended.
    assert first_pass[0] == second_pass[0] == 1
    assert sorted(second_pass) == list(range(1, pages + 1))
    assert len(set(first_pass)) == len(first_pass) and set(first_pass) <= set(range(1, pages + 1))
    # "grow" is seen on page 2 (totals differ from page 1's), "shift" only at the end
    assert 2 in first_pass if fault == "grow" else sorted(first_pass) == list(range(1, pages + 1))


def test_a_permanent_error_is_not_retried_by_dagster(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULLBAY_PUBLIC_IP", "203.0.113.77")
    result = run(DAY, fullbay=FAST_RETRIES, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_each_day_of_a_range_run_shows_its_own_figures(
    run: Run, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster gives every partition of a range the same MaterializeResult; the per-day
    figures must still be each day's own, as stored in the instance."""
    days = [DAY + timedelta(days=n) for n in range(3)]
    config = SimulatorConfig(
        api_key=TEST_KEY, invoices_per_day=12, page_size=5, expected_ip="127.0.0.1", seed=5, void_rate=0.4
    )
    config = dataclasses.replace(config, as_of=DAY + timedelta(days=60))  # voided invoices are gone by then
    with Simulator(config) as simulator, instance_for_test() as instance:
        monkeypatch.setenv("FULLBAY_API_BASE_URL", simulator.url)
        assert run(days[0], days[-1], instance=instance).success
        truth = {
            "work_orders": [count(engine, work_orders, work_orders.c.invoice_date == d) for d in days],
            "raw_work_orders": [count(engine, raw_work_orders, raw_work_orders.c.invoice_date == d) for d in days],
            "work_order_lines": [
                count(
                    engine,
                    work_order_lines.join(work_orders, work_orders.c.fullbay_id == work_order_lines.c.fullbay_id),
                    work_orders.c.invoice_date == d,
                )
                for d in days
            ],
            "quarantine": [0, 0, 0],
            "field_issues": [0, 0, 0],
            "ingestion_metadata": [1, 1, 1],
        }
        assert len(set(truth["work_orders"])) > 1, "the days must differ for this test to mean anything"
        for asset, expected in truth.items():
            shown = []
            for day in days:
                [record] = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[day.isoformat()]), limit=1
                ).records
                metadata = record.asset_materialization.metadata  # type: ignore[union-attr]
                shown.append(metadata["dagster/row_count"].value)
                assert "first_day" not in metadata and "days" not in metadata
            assert shown == expected, asset
        # the preview of a day holds that day's rows only
        for day in days:
            [record] = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey("work_orders"), asset_partitions=[day.isoformat()]), limit=1
            ).records
            preview = record.asset_materialization.metadata["preview"].value  # type: ignore[union-attr]
            assert {r.data["invoice_date"] for r in preview.records} == {day.isoformat()}
            assert all(isinstance(r.data["total_amount"], float) for r in preview.records)
        # every check has one result per day, tied to that day; the schema check one per run
        evaluations = instance.get_records_for_run(
            run_id=instance.get_runs(limit=1)[0].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        outcomes = [r.event_log_entry.dagster_event.event_specific_data for r in evaluations]  # type: ignore[union-attr]
        partitions = sorted((o.check_name, o.partition) for o in outcomes)  # type: ignore[union-attr]
        per_day = sorted((name, d.isoformat()) for name in CHECK_NAMES for d in days)
        assert partitions == sorted([*per_day, ("schema_as_known", None)])


CHECK_NAMES = [
    "rows_match_api_count",
    "raw_and_normalised_agree",
    "line_sums_match_totals",
    "no_quarantined_records",
    "quarantine_below_one_percent",
    "no_field_issues",
]


def test_a_check_fails_for_the_day_it_is_about(run: Run, engine: Engine) -> None:
    """Delete one normalised row behind the pipeline's back: that day's checks fail, the other day's pass."""
    assert run(DAY, DAY + timedelta(days=1)).success
    with engine.begin() as connection:
        victim = connection.execute(
            select(work_orders.c.fullbay_id).where(work_orders.c.invoice_date == DAY).limit(1)
        ).scalar_one()
        connection.execute(work_orders.delete().where(work_orders.c.fullbay_id == victim))
    from fullbay_dagster.defs.checks import evaluate_day

    broken = {key.name: outcome for key, outcome in evaluate_day(engine, DAY).items()}
    fine = {key.name: outcome for key, outcome in evaluate_day(engine, DAY + timedelta(days=1)).items()}
    assert not broken["rows_match_api_count"][0] and not broken["raw_and_normalised_agree"][0]
    assert victim in broken["raw_and_normalised_agree"][1]["examples"]
    assert broken["rows_match_api_count"][1]["expected_rows"] - broken["rows_match_api_count"][1]["live_rows"] == 1
    assert all(passed for passed, _ in fine.values())


def test_tuning_one_client_setting_per_run_keeps_the_credentials(
    run: Run, engine: Engine, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run config for the raw step sets one field; the API key still comes from the environment."""
    monkeypatch.setenv("FULLBAY_MAX_IN_FLIGHT", "1")
    result = run(DAY, fullbay={"read_timeout": 30.0})
    assert result.success
    assert count(engine, work_orders) == simulator.config.invoices_per_day


def test_each_days_check_result_is_current_in_the_checks_partition_view(run: Run) -> None:
    """What the UI's partition view of a check is built from: each day's own result, tied
    to that day's materialization (else Dagster counts no day's result as current)."""
    instance = DagsterInstance.ephemeral()
    days = [DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()]
    assert run(DAY, DAY + timedelta(days=1), instance=instance).success
    keys = [
        AssetCheckKey(AssetKey("work_orders"), "rows_match_api_count"),
        AssetCheckKey(AssetKey("work_order_lines"), "line_sums_match_totals"),
    ]
    infos = instance.event_log_storage.get_asset_check_partition_info(keys)
    seen = {(info.check_key, info.partition_key): info for info in infos}
    for key in keys:
        for day in days:
            info = seen[(key, day)]
            assert info.is_current and info.latest_execution_status.value == "SUCCEEDED", (key, day)


@pytest.mark.parametrize(
    ("logger", "shown"),
    [({}, False), ({"config": {"log_level": "INFO"}}, True), ({"config": {"log_level": "ERROR"}}, False)],
)
def test_a_run_that_names_the_console_logger_logs_at_its_level_else_at_log_level(
    env: dict[str, str], capfd: pytest.CaptureFixture[str], logger: dict[str, object], shown: bool
) -> None:
    job = load_definitions({"LOG_LEVEL": "WARNING"}).resolve_job_def(JOB_NAME)
    capfd.readouterr()
    result = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(DAY.isoformat(), DAY.isoformat()),
        run_config={"loggers": {"console": logger}},
    )
    assert result.success
    assert ("Fetching 1 day(s)" in capfd.readouterr().err) is shown


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("FULLBAY_READ_TIMEOUT", "soon", "must be a number > 0"),
        ("FULLBAY_MAX_IN_FLIGHT", "-1", "must be a whole number >= 1"),
        ("FULLBAY_MIN_INTERVAL", "60", "must be at least min_interval (FULLBAY_MIN_INTERVAL, 60)"),
        ("FULLBAY_TOKEN_TIMEZONE", "Mars/Base", "is not an IANA timezone"),
        ("FULLBAY_AUTH_FAIL_PATTERN", "(key", "is not a regular expression"),
    ],
)
def test_a_bad_tuning_variable_names_itself_and_fails_the_run_log(
    run: Run, engine: Engine, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, rule: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = run(DAY, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert variable in str(failure.event_specific_data.error) and rule in str(failure.event_specific_data.error)
    with engine.connect() as connection:
        [row] = connection.execute(select(ingestion_metadata)).all()
    # The day's row says why, instead of staying `running` for the next run to close.
    assert row.status == "failed" and variable in row.error_message and rule in row.error_message, row.error_message


def test_when_retries_run_out_the_run_log_keeps_the_real_cause(run: Run, engine: Engine, simulator: Simulator) -> None:
    simulator.queue_faults(*["503"] * 8)
    result = run(DAY, fullbay={**FAST_RETRIES, "step_retries": 1}, raise_on_error=False)
    assert not result.success
    with engine.connect() as connection:
        [row] = connection.execute(select(ingestion_metadata)).all()
    assert row.status == "failed"
    assert row.error_message.startswith("Fullbay") and "503" in row.error_message, row.error_message
    assert "RetryRequested" not in row.error_message


# -- empty days, paging quirks, types that wander -------------------------------------------------


def test_an_empty_day_materializes_with_zero_rows_and_a_success_row(
    run: Run, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(invoices_per_day=0, empty_shape="pages1")
    simulator.clear_requests()
    result = run(DAY, fullbay=FAST_RETRIES)
    assert result.success
    assert len(simulator.requests()) == 1
    assert count(engine, work_orders) == 0
    with engine.connect() as connection:
        rows = connection.execute(select(ingestion_metadata.c.status, ingestion_metadata.c.records_processed)).all()
    assert rows == [("success", 0)]


def test_stable_page_repeats_load_the_window_with_a_warning(run: Run, engine: Engine, simulator: Simulator) -> None:
    simulator.configure(page_repeats=True)
    result = run(DAY, fullbay=FAST_RETRIES)
    assert result.success
    per_day = simulator.config.invoices_per_day
    pages = -(-per_day // (simulator.config.page_size - 1))
    assert count(engine, work_orders) == per_day
    assert materialization_metadata(result, "raw_work_orders")["run_api_page_repeats"] == pages - 1


def test_a_day_of_wandering_types_loads_every_invoice(run: Run, engine: Engine, simulator: Simulator) -> None:
    simulator.configure(type_chaos=0.05)
    result = run(DAY, fullbay=FAST_RETRIES)
    assert result.success
    assert count(engine, work_orders) == simulator.config.invoices_per_day
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["no_field_issues"].passed and checks["quarantine_below_one_percent"].passed
    assert not checks["schema_as_known"].passed  # mapped paths arrived with unexpected JSON types
    meta = materialization_metadata(result, "work_orders")
    with engine.connect() as connection:
        recorded = connection.execute(select(ingestion_metadata.c.field_issues)).scalar_one()
    assert meta["field_issues"] == recorded == checks["no_field_issues"].metadata["field_issues"].value > 0


@pytest.mark.parametrize(
    "selection",
    [["raw_work_orders"], ["raw_work_orders", *NORMALISED]],
    ids=["raw alone", "raw and normalise"],
)
def test_a_run_of_part_of_the_chain_closes_its_run_log_rows(
    run: Run, engine: Engine, selection: list[str], simulator: Simulator
) -> None:
    # The UI's "Materialize" on the raw asset runs it alone: its day must not stay
    # "running" until a later run closes it as abandoned.
    result = run(DAY, asset_selection=[AssetKey(name) for name in selection])
    assert result.success
    with engine.connect() as connection:
        rows = connection.execute(
            select(ingestion_metadata.c.status, ingestion_metadata.c.api_record_count, ingestion_metadata.c.end_time)
        ).all()
    [(status, api_records, end_time)] = rows
    assert status == "success" and end_time is not None
    assert api_records == simulator.config.invoices_per_day
