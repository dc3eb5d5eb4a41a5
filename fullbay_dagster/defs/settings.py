"""Environment-driven settings.

``Settings`` shapes the definitions themselves (partitions, schedule); it is read
once, when the code location loads (``environment.SETTINGS``). ``ClientTuning`` is the one
declaration of the Fullbay client's tunables: the raw asset's run config, the
``FULLBAY_*`` environment names and the client configuration all come from it.
Credentials are in neither: resources read those through ``EnvVar`` at run time
so they never reach the UI, and tuning a run never touches them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster import Config
from pydantic import Field
from pydantic.fields import FieldInfo

from fullbay_dagster.fullbay.endpoints import ENDPOINTS, ENDPOINTS_SETTING, Endpoint, selected_endpoints

DEFAULT_START_DATE = "2024-01-01"
DEFAULT_SCHEDULE = "rate(1 day)"
DEPLOYED_ENVIRONMENTS = ("prod", "production", "staging")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_AWS_DAYS = {"1": "SUN", "2": "MON", "3": "TUE", "4": "WED", "5": "THU", "6": "FRI", "7": "SAT"}
_RATE_UNITS = {
    "minute": "minutes",
    "minutes": "minutes",
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
}


class SettingsError(ValueError):
    """A setting's value cannot work; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    environment: str
    start_date: str
    timezone: str
    cron_schedule: str
    repull_days: int
    freshness_hour: int
    log_level: str = "INFO"
    #: FULLBAY_ENDPOINTS with the date fields of FULLBAY_DATE_FIELDS, in their documented order
    endpoints: tuple[Endpoint, ...] = tuple(ENDPOINTS.values())

    @property
    def deployed(self) -> bool:
        return self.environment in DEPLOYED_ENVIRONMENTS

    @property
    def endpoint_names(self) -> frozenset[str]:
        return frozenset(e.name for e in self.endpoints)

    def endpoint(self, name: str) -> Endpoint:
        """The chosen endpoint of that name, with its confirmed date field."""
        return next(e for e in self.endpoints if e.name == name)


def to_cron(expression: str) -> str:
    """Accept plain 5-field cron and EventBridge's ``rate(...)`` / ``cron(...)`` forms
    (the original Lambda design used those) and return 5-field cron for Dagster."""
    value = expression.strip()
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+(\w+)\s*\)", value)
    if rate:
        amount, unit = int(rate.group(1)), _RATE_UNITS.get(rate.group(2).lower())
        if amount < 1 or unit is None:
            raise SettingsError(f"SCHEDULE_EXPRESSION {expression!r}: use rate(N minutes|hours|days) with N >= 1")
        if unit == "minutes" and amount < 60:
            return f"*/{amount} * * * *"
        if unit == "hours" and amount < 24:
            return f"0 */{amount} * * *"
        if unit == "days" and amount == 1:
            return "0 0 * * *"
        raise SettingsError(
            f"SCHEDULE_EXPRESSION {expression!r} cannot be written as cron: use minutes < 60, hours < 24 or 1 day"
        )
    aws = re.fullmatch(r"cron\((.*)\)", value)
    if aws:
        fields = aws.group(1).split()
        if len(fields) != 6:
            raise SettingsError(
                f"SCHEDULE_EXPRESSION {expression!r}: EventBridge cron has 6 fields "
                "(minutes hours day-of-month month day-of-week year)"
            )
        minute, hour, dom, month, dow, year = fields
        if year not in ("*", "?"):
            raise SettingsError(f"SCHEDULE_EXPRESSION {expression!r}: a year other than * is not supported")
        if any(mark in f for f in (dom, dow) for mark in ("L", "W", "#")):
            raise SettingsError(f"SCHEDULE_EXPRESSION {expression!r}: L, W and # are not supported")
        # EventBridge numbers days 1=SUN..7=SAT; cron numbers them 0=SUN..6=SAT. Use names.
        dow = re.sub(r"\b[1-7]\b", lambda m: _AWS_DAYS[m.group(0)], dow)
        return " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, dow))
    fields = value.split()
    if len(fields) != 5:
        raise SettingsError(
            f"SCHEDULE_EXPRESSION {expression!r}: expected 5-field cron ('0 6 * * *'), rate(1 day) or cron(0 6 * * ? *)"
        )
    return " ".join(fields)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    timezone = env.get("FULLBAY_TIMEZONE") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"FULLBAY_TIMEZONE {timezone!r} is not an IANA timezone (e.g. America/Chicago)") from None
    start_date = env.get("FULLBAY_START_DATE") or DEFAULT_START_DATE
    try:
        date.fromisoformat(start_date)
    except ValueError:
        raise SettingsError(f"FULLBAY_START_DATE {start_date!r} is not a YYYY-MM-DD date") from None
    repull = env.get("FULLBAY_REPULL_DAYS") or "2"
    if not repull.isdigit() or int(repull) > 60:
        raise SettingsError(f"FULLBAY_REPULL_DAYS {repull!r} must be a whole number from 0 to 60")
    log_level = (env.get("LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL {env.get('LOG_LEVEL')!r} must be one of {', '.join(_LOG_LEVELS)}")
    freshness = env.get("FULLBAY_FRESHNESS_HOUR") or "9"
    if not freshness.isdigit() or int(freshness) > 23:
        raise SettingsError(f"FULLBAY_FRESHNESS_HOUR {freshness!r} must be an hour from 0 to 23 (shop time)")
    return Settings(
        environment=(env.get("ENVIRONMENT") or "local").lower(),
        endpoints=_endpoints(env),
        start_date=start_date,
        timezone=timezone,
        cron_schedule=to_cron(env.get("SCHEDULE_EXPRESSION") or DEFAULT_SCHEDULE),
        repull_days=int(repull),
        freshness_hour=int(freshness),
        log_level=log_level,
    )


def _endpoints(env: Mapping[str, str]) -> tuple[Endpoint, ...]:
    """FULLBAY_ENDPOINTS (unset: all seven) and FULLBAY_DATE_FIELDS; set but empty is a mistake
    (a shell that cleared it), not a wish to load nothing."""
    chosen = env.get(ENDPOINTS_SETTING)
    if chosen is not None and not chosen.replace(",", "").strip():
        raise SettingsError(
            f"{ENDPOINTS_SETTING} is set but names no endpoint; unset it for all, or name some of: "
            f"{', '.join(ENDPOINTS)}"
        )
    try:
        return tuple(selected_endpoints(env=env))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


class ClientTuning(Config):
    """How the Fullbay client paces and waits; per run (launchpad: ``ops: raw_work_orders:
    config:``) or from the environment (``FULLBAY_`` + the field name in capitals). A field
    left unset falls back to its variable, then to the client's default."""

    connect_timeout: float | None = Field(default=None, gt=0, description="seconds to connect")
    read_timeout: float | None = Field(default=None, gt=0, description="seconds to wait for an answer (default 1000)")
    total_deadline: float | None = Field(default=None, gt=0, description="seconds one call may take with retries")
    max_attempts: int | None = Field(default=None, ge=1, description="attempts per call")
    retry_after_cap: float | None = Field(default=None, ge=0, description="longest Retry-After honoured, seconds")
    min_interval: float | None = Field(
        default=None, ge=0, description="floor of seconds between two calls, even while Fullbay answers promptly (0)"
    )
    max_interval: float | None = Field(
        default=None, gt=0, description="ceiling of the gap between calls while backing off, seconds (30)"
    )
    slow_factor: float | None = Field(
        default=None, gt=1, description="an answer this many times slower than usual counts as pushback (4)"
    )
    max_in_flight: int | None = Field(
        default=None, ge=1, description="calls in flight at once: pages of a window ahead, windows side by side (2)"
    )
    step_retries: int | None = Field(default=None, ge=0, description="Dagster retries of the fetch step (default 3)")
    step_retry_wait: float | None = Field(default=None, ge=0, description="seconds before such a retry (default 60)")

    @staticmethod
    def env_name(field: str) -> str:
        return f"FULLBAY_{field.upper()}"

    def resolved(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The fields that are set, here or in the environment, with their values."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            raw = env.get(self.env_name(name))
            if value is None and raw:
                try:
                    value = type(self).model_validate({name: raw}).model_dump()[name]
                except ValueError:
                    raise SettingsError(
                        f"{self.env_name(name)} {raw!r} must be {_rule(info)}: {info.description}"
                    ) from None
            if value is not None:
                values[name] = value
        return values

    def client_kwargs(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """What goes into ``FullbayClientConfig`` (the step_* fields are Dagster's)."""
        return {k: v for k, v in self.resolved(env).items() if not k.startswith("step_")}


def _rule(info: FieldInfo) -> str:
    """What a tuning field accepts, in words: e.g. "a whole number >= 1"."""
    kind = "a whole number" if int in get_args(info.annotation) else "a number"
    bounds = [f"> {m.gt}" for m in info.metadata if getattr(m, "gt", None) is not None]
    bounds += [f">= {m.ge}" for m in info.metadata if getattr(m, "ge", None) is not None]
    return " ".join([kind, *bounds])
