"""What every day load shares: its counts, its batches and its partition lock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from itertools import islice
from typing import Any

from sqlalchemy import Connection, text

BATCH_SIZE = 1000


@dataclass
class LoadCounts:
    processed: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    duplicates: int = 0
    stale: int = 0
    quarantined: int = 0
    lines: int = 0  # line rows written by a build (a rerun of unchanged records writes none)
    field_issues: int = 0  # fields of the day's live records that did not parse (all of them, not only new)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return ", ".join(f"{value} {name}" for name, value in self.as_dict().items() if value or name == "processed")


def batches(items: Iterable[Any], size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def lock_partition(connection: Connection, name: str, day: date) -> None:
    """Two runs of the same day take turns; different days run side by side."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"fullbay:{name}:{day.isoformat()}"}
        )
