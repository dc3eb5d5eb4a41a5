"""Start-up: importing the code location's definitions, and the Lambda handler's cold import.

Each figure is the median wall time of N fresh ``python -c`` processes (process
start to exit, so it includes the interpreter's own start-up, shown separately as
``python -c pass``). The Lambda check also lists which heavy packages the import
pulled in: Dagster must not be one of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import ROOT, Figure, SectionResult, child_env, median

HEAVY = ("dagster", "sqlalchemy", "pandas", "boto3", "botocore", "requests", "psycopg2", "alembic", "pydantic")
_REPORT_MODULES = (
    "import json, sys; "
    f"heavy = {HEAVY!r}; "
    "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))"
)

COMMANDS = {
    "python -c pass": "pass",
    "import definitions": "import fullbay_dagster; fullbay_dagster.definitions",
    "Lambda handler cold import": "import fullbay_dagster.aws.lambda_handler",
}


def _time(code: str, repeats: int) -> list[float]:
    env = child_env()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True)  # noqa: S603
        times.append(time.perf_counter() - started)
    return times


def _modules_after(code: str) -> list[str]:
    completed = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", f"{code}; {_REPORT_MODULES}"],
        check=True,
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return list(json.loads(completed.stdout.strip().splitlines()[-1]))


def run(repeats: int, log: Any) -> SectionResult:
    result = SectionResult()
    times: dict[str, list[float]] = {}
    for name, code in COMMANDS.items():
        log(f"[startup] {name}: {repeats} fresh processes")
        _time(code, 1)  # warm the OS file cache and .pyc files; not counted
        times[name] = _time(code, repeats)
    lambda_modules = _modules_after(COMMANDS["Lambda handler cold import"])
    definition_modules = _modules_after(COMMANDS["import definitions"])
    result.data = {
        "repeats": repeats,
        "times": times,
        "median": {k: median(v) for k, v in times.items()},
        "lambda_modules": lambda_modules,
        "definition_modules": definition_modules,
    }
    base = median(times["python -c pass"])
    for name, values in times.items():
        note = f"min {min(values):.3f} s, max {max(values):.3f} s"
        if name != "python -c pass":
            note += f"; {median(values) - base:.3f} s over the bare interpreter"
        result.figures.append(Figure("startup", f"{name} (median of {repeats})", median(values), "s", note=note))
    dagster_loaded = "dagster" in lambda_modules
    result.figures.append(
        Figure(
            "startup",
            "Lambda handler import pulls in dagster",
            "yes" if dagster_loaded else "no",
            target="no",
            passed=not dagster_loaded,
            note="heavy packages imported: " + (", ".join(lambda_modules) or "none"),
        )
    )
    return result
