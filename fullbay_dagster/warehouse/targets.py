"""Where each endpoint's rows go: the one place that knows invoices keep tables of their own.

The raw landing (``raw_landing``) and the typed build (``typed_build``) are written
once, for every endpoint; what differs between endpoints is data, described here
by a :class:`Landing` (the raw table) and a :class:`Shaping` (the typed tables).
Invoices differ from the other six endpoints only in that data: their own raw
table (no ``endpoint`` column), their record rules (``records``), field-issue and
observed paths without the ``<endpoint>:`` prefix, quarantine hashes of the bare
record text, and a typed table that carries ``raw_data`` (which the build copies
inside PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table

from fullbay_dagster.fullbay.endpoints import INVOICES, Endpoint
from fullbay_dagster.fullbay.fields import MAPPED
from fullbay_dagster.fullbay.generic_records import NormalisedRecord, normalise_record, record_check
from fullbay_dagster.fullbay.records import Checked, normalise_invoice
from fullbay_dagster.warehouse.bulk import JsonText
from fullbay_dagster.warehouse.schema import (
    endpoint_line_tables,
    endpoint_tables,
    field_issues,
    raw_records,
    raw_work_orders,
    work_order_lines,
    work_orders,
)

Normaliser = Callable[[dict[str, Any], str, date, ZoneInfo], NormalisedRecord]


def is_invoices(endpoint: Endpoint) -> bool:
    """Invoices, also when configuration replaced their description (a date field)."""
    return endpoint.name == INVOICES.name


@dataclass(frozen=True, eq=False)
class Landing:
    """The raw table an endpoint's answers land in, and how its records are placed."""

    endpoint: Endpoint
    table: Table
    date_column: str  # the record's day
    #: Columns that every row of this endpoint carries in a shared table (its name), else empty.
    fixed: Mapping[str, str]
    check: Callable[[Any, date], Checked]  # key, day and storable JSON, or RecordError
    #: The quarantine's record_hash includes the endpoint name (the same bad record may
    #: come from two endpoints on one day); invoices hash the bare text, as they always did.
    salted_quarantine: bool

    @property
    def key_columns(self) -> list[str]:
        return [*self.fixed, "fullbay_id"]

    @property
    def scope(self) -> list[ColumnElement[bool]]:
        """The conditions that pick this endpoint's rows out of the table."""
        return [self.table.c[name] == value for name, value in self.fixed.items()]

    @property
    def lock_name(self) -> str:
        return ":".join([self.table.name, *self.fixed.values()])

    def of_day(self, day: date) -> list[ColumnElement[bool]]:
        return [*self.scope, self.table.c[self.date_column] == day]

    def row(
        self, checked: Checked, day: date, now: datetime, fetched_at: datetime, run_id: str | None
    ) -> dict[str, Any]:
        """The raw row of a checked record."""
        return {
            **self.fixed,
            "fullbay_id": checked.key,
            self.date_column: day,
            "raw_data": JsonText(checked.text),
            "content_hash": checked.digest,
            "first_seen_at": now,
            "last_seen_at": now,
            "last_changed_at": now,
            "deleted_at": None,
            "last_run_id": run_id,
            "fetched_at": fetched_at,
        }

    def quarantine_row(self, record: Any, day: date, reason: str, now: datetime, run_id: str | None) -> dict[str, Any]:
        """A row of ``fullbay_quarantine`` for a record that cannot be placed."""
        # repr-like JSON that always succeeds: NaN stays NaN, NUL becomes \u0000, surrogates are escaped.
        raw_text = json.dumps(record, ensure_ascii=True, default=repr, sort_keys=True)
        key = record.get(self.endpoint.key_field) if isinstance(record, dict) else None
        usable_key = isinstance(key, (str, int)) and not isinstance(key, bool)
        hashed = f"{self.endpoint.name}\n{raw_text}" if self.salted_quarantine else raw_text
        return {
            "partition_key": day.isoformat(),
            "record_hash": hashlib.sha256(hashed.encode()).hexdigest(),
            # PostgreSQL text cannot hold NUL, and the key may be what made the record bad
            "fullbay_id": str(key).replace("\x00", "\\0")[:64] if usable_key else None,
            "endpoint": self.endpoint.name,
            "reason": reason.replace("\x00", "\\0"),
            "raw_text": raw_text,
            "first_seen_at": now,
            "last_seen_at": now,
            "last_run_id": run_id,
        }


@dataclass(frozen=True, eq=False)
class Shaping:
    """The typed table (and line table) an endpoint's raw rows are built into."""

    landing: Landing
    table: Table
    lines: Table | None
    date_column: str
    normalise: Normaliser  # RecordError only for a record that cannot be placed
    #: Field-issue and observed paths carry it: "" for invoices, "<endpoint>:" for the others.
    issue_prefix: str
    mapped_columns: Mapping[str, str]  # observed path -> the table.column it loads into

    @property
    def issue_scope(self) -> ColumnElement[bool]:
        """This endpoint's rows of the shared ``fullbay_field_issues``."""
        if self.issue_prefix:
            return field_issues.c.field_path.startswith(self.issue_prefix)
        return ~field_issues.c.field_path.contains(":")  # invoices: every path without a prefix

    @cached_property
    def _carries(self) -> frozenset[str]:
        return frozenset(column.name for column in self.table.columns)

    def bookkeeping(self, digest: str, raw_text: str, now: datetime, run_id: str | None, source: str) -> dict[str, Any]:
        """The columns of a built row that do not come from the record, as its table has them."""
        carries = self._carries
        row: dict[str, Any] = {"updated_at": now, "content_hash": digest}
        if "ingestion_source" in carries:
            row.update(ingestion_timestamp=now, ingestion_source=source)
        row["deleted_at"] = None
        if "last_run_id" in carries:
            row["last_run_id"] = run_id
        if "raw_data" in carries:
            row["raw_data"] = JsonText(raw_text)
        return row


def mapped_columns(endpoint: Endpoint) -> dict[str, str]:
    """Observed path -> the typed column it loads into, for ``fullbay_schema_fields``."""
    if is_invoices(endpoint):
        return {path: column for path, (column, _) in MAPPED.items()}
    prefix = f"{endpoint.name}:"
    out = {prefix + t.path: f"{endpoint.table}.{t.column}" for t in endpoint.columns}
    if endpoint.lines_path and endpoint.lines_table:
        for t in endpoint.line_columns:
            out[f"{prefix}{endpoint.lines_path}[].{t.path}"] = f"{endpoint.lines_table}.{t.column}"
    return out


def landing(endpoint: Endpoint) -> Landing:
    check = record_check(endpoint)
    if is_invoices(endpoint):
        return Landing(endpoint, raw_work_orders, "invoice_date", {}, check, salted_quarantine=False)
    return Landing(endpoint, raw_records, "record_date", {"endpoint": endpoint.name}, check, salted_quarantine=True)


def _invoice(record: dict[str, Any], key: str, day: date, zone: ZoneInfo) -> NormalisedRecord:
    normalised = normalise_invoice(record, zone)
    return NormalisedRecord(normalised.work_order, normalised.lines, normalised.issues)


def shaping(endpoint: Endpoint) -> Shaping:
    raw = landing(endpoint)
    mapped = mapped_columns(endpoint)
    if is_invoices(endpoint):
        return Shaping(raw, work_orders, work_order_lines, "invoice_date", _invoice, "", mapped)

    def normalise(record: dict[str, Any], key: str, day: date, zone: ZoneInfo) -> NormalisedRecord:
        return normalise_record(endpoint, record, key, day)  # typed columns of these hold no local times

    typed, lines = endpoint_tables[endpoint.name], endpoint_line_tables.get(endpoint.name)
    return Shaping(raw, typed, lines, "record_date", normalise, f"{endpoint.name}:", mapped)
