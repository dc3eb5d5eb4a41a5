"""Fullbay invoices into PostgreSQL, as a Dagster code location."""

from fullbay_dagster.defs.definitions import defs

__all__ = ["defs"]
