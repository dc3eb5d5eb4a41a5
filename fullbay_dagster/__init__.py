"""Fullbay invoices into PostgreSQL, as a Dagster code location.

``dagster ... -m fullbay_dagster`` finds the ``Definitions`` object below. It is
not called ``defs`` here because that is the name of the Dagster-layer subpackage.
"""

from fullbay_dagster.defs.definitions import defs as definitions

__all__ = ["definitions"]
