"""The settings of this code location, read from the environment once, on import.

Every module that shapes a definition by a setting imports ``SETTINGS`` from here,
so tests that need other settings set the environment and reload these modules.
"""

from fullbay_dagster.defs.settings import load_settings

SETTINGS = load_settings()
