"""Fullbay's per-call token: lowercase hex SHA-1 of ``key + today + ip``.

Shared by the client and the simulator so both sides agree on one definition.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo


class Dating(NamedTuple):
    """How a call's token was dated (no secret in it): what a refusal is judged by."""

    day: date  # the token's day
    margin: tuple[date, date]  # the token days a few minutes either side: two near a midnight
    pin: tuple[date, tuple[date, date]] | None  # the day sent instead of ours near midnight, then
    credentials: int  # the generation of the key and IP


def make_token(key: str, today: date, ip: str) -> str:
    return hashlib.sha1(f"{key}{today.isoformat()}{ip}".encode()).hexdigest()


def current_instant() -> datetime:
    """Now, for the client and the simulator alike (tests pin both to one instant)."""
    return datetime.now(UTC)


def today_in(timezone: str, now: datetime | None = None) -> date:
    """The call date as Fullbay computes it, in ``timezone`` (UTC unless configured)."""
    return (now or current_instant()).astimezone(ZoneInfo(timezone)).date()
