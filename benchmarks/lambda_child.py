"""The in-process Lambda path, as a benchmark child: the handler's scheduled-event
branch (``materialize_recent_days``) with an ephemeral instance, in this process.

    python -m benchmarks.lambda_child EVENT_TIME

FULLBAY_REPULL_DAYS (set by the parent) makes the run cover the benchmark's days.
Prints one JSON line: the handler's summary.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from fullbay_dagster.aws.lambda_handler import handler

    summary = handler({"source": "aws.events", "detail-type": "Scheduled Event", "time": argv[0]})
    print(json.dumps(summary, default=str), flush=True)
    return 0 if summary.get("status") == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
