"""Load a week of type-chaos invoices (every non-identity field may take another
JSON type) into a throwaway PostgreSQL database and print what landed, as the
markdown table in docs/reliability.md ("Strict identity, tolerant content").

    python scripts/type_chaos_report.py [--rate 0.08] [--per-day 40] [--seed 11]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text

from benchmarks.common import SERVER_URL
from fullbay_dagster.fullbay.synthetic import invoices_for_day, with_type_chaos
from fullbay_dagster.warehouse import loader, migrate, quality
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster.warehouse.schema import field_issues, quarantine, work_order_lines, work_orders

FIRST = date(2025, 3, 10)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=0.08)
    parser.add_argument("--per-day", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    name = f"fullbay_chaos_report_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        engine = make_engine(normalise_url(SERVER_URL).set(database=name))
        migrate.upgrade(engine)
        sent = 0
        now = datetime.now(UTC)
        for n in range(7):
            day = FIRST + timedelta(days=n)
            records = [
                with_type_chaos(r, args.rate, args.seed)
                for r in invoices_for_day(args.seed, day, args.per_day, day + timedelta(days=30))
            ]
            sent += len(records)
            loader.load_raw_day(engine, day, records, now=now)
            loader.build_work_orders_day(engine, day, zone=ZoneInfo("America/Chicago"), source="report", now=now)
        with engine.connect() as connection:
            loaded = connection.execute(select(func.count()).select_from(work_orders)).scalar_one()
            lines = connection.execute(select(func.count()).select_from(work_order_lines)).scalar_one()
            null_amounts = connection.execute(
                select(func.count()).select_from(work_order_lines).where(work_order_lines.c.amount.is_(None))
            ).scalar_one()
            held = connection.execute(select(func.count()).select_from(quarantine)).scalar_one()
            issues = connection.execute(select(func.count()).select_from(field_issues)).scalar_one()
            kinds = connection.execute(
                select(field_issues.c.expected_type, func.count()).group_by(field_issues.c.expected_type)
            ).all()
        summary = quality.field_issue_summary(engine, FIRST, FIRST + timedelta(days=6), top=5)
        drift = quality.schema_drift(engine)
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("| figure | value |\n|---|---|")
    print(f"| invoices sent (7 days, type chaos {args.rate:g} per field, seed {args.seed}) | {sent} |")
    print(f"| in `fullbay_work_orders` | {loaded} |")
    print(f"| in `fullbay_quarantine` | {held} |")
    print(f"| lines (of which amount NULL) | {lines} ({null_amounts}) |")
    print(f"| `fullbay_field_issues` rows | {issues} |")
    for expected, count in sorted(kinds, key=lambda kv: -kv[1]):
        print(f"| ... expected {expected} | {count} |".replace("|x|", "\\|x\\|"))
    print(
        f"| schema check findings (unknown / new JSON type / gone) "
        f"| {len(drift.unknown)} / {len(drift.new_types)} / {len(drift.gone)} |"
    )
    print("\nTop field paths:\n\n| path | issues | example values |\n|---|---|---|")
    for entry in summary["top"]:
        print(f"| `{entry['field_path']}` | {entry['issues']} | `{entry['example_values'][:60]}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
