"""What the data-quality checks report, as plain rows (no Dagster here): field
issues, the share of invoices quarantined, and schema drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select

from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS
from fullbay_dagster.fullbay.fields import KNOWN, MAPPED
from fullbay_dagster.fullbay.observe import fold
from fullbay_dagster.warehouse.schema import field_issues, ingestion_metadata, schema_fields

#: A day fails when more than this share of the invoices the API returned is quarantined.
MAX_QUARANTINED_SHARE = 0.01
#: A mapped path not seen for this long, while other paths were, "stopped appearing".
GONE_AFTER = timedelta(days=7)


def field_issue_summary(engine: Engine, first: date, last: date, top: int = 10) -> dict[str, Any]:
    """Field issues of ``first..last``: their number and the top paths (array
    positions folded), each with its expected type, an example value and invoice ids."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                field_issues.c.field_path,
                field_issues.c.expected_type,
                field_issues.c.observed_value,
                field_issues.c.fullbay_id,
            )
            # invoices' issues: the other endpoints' paths are named "<endpoint>:<path>"
            .where(field_issues.c.invoice_date.between(first, last), ~field_issues.c.field_path.contains(":"))
            .order_by(field_issues.c.fullbay_id, field_issues.c.field_path)
        ).all()
    by_path: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_path.setdefault(
            fold(row.field_path),
            {"field_path": fold(row.field_path), "issues": 0, "expected": row.expected_type, "examples": [], "ids": []},
        )
        entry["issues"] += 1
        if len(entry["examples"]) < 3 and row.observed_value not in entry["examples"]:
            entry["examples"].append(row.observed_value)
        if len(entry["ids"]) < 5 and row.fullbay_id not in entry["ids"]:
            entry["ids"].append(row.fullbay_id)
    ranked = sorted(by_path.values(), key=lambda e: (-e["issues"], e["field_path"]))[:top]
    return {
        "total": len(rows),
        "invoices": len({row.fullbay_id for row in rows}),
        "top": [
            {
                "field_path": e["field_path"],
                "issues": e["issues"],
                "expected": e["expected"],
                "example_values": ", ".join(e["examples"])[:200],
                "invoice_ids": ", ".join(e["ids"]),
            }
            for e in ranked
        ],
    }


@dataclass
class QuarantineShare:
    day: str
    api_records: int
    quarantined: int
    run_id: str  # the Dagster run whose counts these are
    duplicated: int = 0  # records whose key the same answer had already sent

    @property
    def share(self) -> float:
        return self.quarantined / self.api_records if self.api_records else 0.0


def quarantine_share(engine: Engine, day: date, endpoint: str = "invoices") -> QuarantineShare | None:
    """The day's records of ``endpoint`` as the latest run that fetched it counted them:
    how many the API returned, how many were quarantined and how many repeated a key
    (None if no run has fetched the day)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(
                ingestion_metadata.c.api_record_count,
                ingestion_metadata.c.records_quarantined,
                ingestion_metadata.c.records_duplicated,
                ingestion_metadata.c.dagster_run_id,
            )
            .where(
                ingestion_metadata.c.endpoint == endpoint,
                ingestion_metadata.c.partition_key == day.isoformat(),
                ingestion_metadata.c.api_record_count.is_not(None),
            )
            .order_by(ingestion_metadata.c.start_time.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return QuarantineShare(
        day.isoformat(),
        int(row.api_record_count or 0),
        int(row.records_quarantined or 0),
        row.dagster_run_id or "",
        int(row.records_duplicated or 0),
    )


@dataclass
class SchemaDrift:
    unknown: list[dict[str, Any]] = field(default_factory=list)  # paths the project does not know
    new_types: list[dict[str, Any]] = field(default_factory=list)  # mapped paths with an unexpected JSON type
    gone: list[dict[str, Any]] = field(default_factory=list)  # mapped paths that stopped appearing
    paths_seen: int = 0

    @property
    def findings(self) -> list[dict[str, Any]]:
        return [*self.unknown, *self.new_types, *self.gone]


def schema_drift(engine: Engine, now: datetime | None = None) -> SchemaDrift:
    """Compare ``fullbay_schema_fields`` with what the project knows (``fields.KNOWN``
    and ``fields.MAPPED``)."""
    # Invoice paths only: the other endpoints' paths carry their name as a prefix
    # ("customer_payments:amount") and have no known field list to compare with yet
    # (Fullbay documents them least); their observation is there to read, not to judge.
    invoices_only = and_(*(~schema_fields.c.field_path.startswith(f"{e.name}:") for e in GENERIC_ENDPOINTS))
    with engine.connect() as connection:
        rows = connection.execute(select(schema_fields).where(invoices_only).order_by(schema_fields.c.field_path)).all()
        latest = connection.execute(select(func.max(schema_fields.c.last_seen_at)).where(invoices_only)).scalar_one()
    drift = SchemaDrift(paths_seen=len(rows))
    if not rows:
        return drift
    reference = now or latest
    for row in rows:
        types = dict(row.json_types or {})
        described = {"field_path": row.field_path, "json_types": _types_text(types), "seen": int(row.seen_count)}
        mapped = MAPPED.get(row.field_path)
        if row.field_path not in KNOWN and mapped is None and _parent(row.field_path) in _CONTAINERS:
            drift.unknown.append({**described, "finding": "unknown path"})
        elif mapped is not None and set(types) - mapped[1]:
            unexpected = sorted(set(types) - mapped[1])
            drift.new_types.append(
                {**described, "finding": f"{mapped[0]} receives {', '.join(unexpected)}", "column": mapped[0]}
            )
        if mapped is not None and row.last_seen_at < reference - GONE_AFTER:
            drift.gone.append(
                {**described, "finding": f"not seen since {row.last_seen_at:%Y-%m-%d}", "column": mapped[0]}
            )
    return drift


def _parent(path: str) -> str:
    if path.endswith("[]"):
        return path[:-2]
    return path.rsplit(".", 1)[0] if "." in path else ""


# Objects and lists the project knows: a new field inside one is news; what sits
# under a known scalar that arrived as an object or list is that scalar's new type.
_CONTAINERS = frozenset(_parent(path) for path in KNOWN)


def _types_text(types: dict[str, Any]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(types.items(), key=lambda kv: -int(kv[1])))
