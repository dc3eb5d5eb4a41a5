"""Fullbay invoices into PostgreSQL, as a Dagster code location.

``dagster ... -m fullbay_dagster`` finds the ``Definitions`` object ``definitions``
(not ``defs``: that is the name of the Dagster-layer subpackage). It is built on
first access, so importing a submodule (the client, the Lambda handler) does not
import Dagster or read the environment.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "definitions":
        from fullbay_dagster.defs.definitions import defs

        return defs
    raise AttributeError(f"module 'fullbay_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "definitions"]
