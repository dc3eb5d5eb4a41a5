"""Load the code location's definitions under a given environment.

The definitions live at module level and read their settings on import (as a code
server does); a test that needs other settings sets them and reloads the modules
that depend on them, in dependency order.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from dagster import Definitions

SETTINGS_DEPENDENT = (
    "environment",
    "partitions",
    "assets",
    "checks",
    "endpoints",
    "freshness",
    "alerts",
    "schedules",
    "definitions",
)


def load_definitions(env: Mapping[str, str] | None = None) -> Definitions:
    """Definitions built with ``env`` added to the environment (restored afterwards:
    resources read credentials through EnvVar at run time, so set those separately)."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return _reload()
    except Exception:
        os.environ.clear()
        os.environ.update(saved)
        _reload()  # leave the modules whole for the tests that follow
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _reload() -> Definitions:
    for name in SETTINGS_DEPENDENT:
        importlib.reload(importlib.import_module(f"fullbay_dagster.defs.{name}"))
    return importlib.import_module("fullbay_dagster.defs.definitions").defs
