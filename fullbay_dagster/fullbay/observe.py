"""Schema observation: which field paths (array positions folded to ``[]``) and
JSON types the API actually sends, compared with what the project knows.

Fullbay documents no types and few fields, so a user learns what their account
sends from this (``fullbay_schema_fields`` and its check) rather than from a
quarantine. The walk is hand-written rather than done with a JSON-path library:
it must visit every field of every loaded invoice at a cost close to
``json.loads`` itself, so it caches the path strings and counts in one dict.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fullbay_dagster.fullbay.records import json_type

# (folded path, JSON type) -> times seen
Observed = Counter[tuple[str, str]]

_T = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def observe(record: dict[str, Any], seen: Observed, paths: dict[tuple[str, str], str] | None = None) -> None:
    """Add every field of ``record`` to ``seen``; ``paths`` caches path strings across records."""
    cache = {} if paths is None else paths
    _walk(record, "", seen, cache)


def _walk(obj: dict[str, Any], prefix: str, seen: Observed, cache: dict[tuple[str, str], str]) -> None:
    for key, value in obj.items():
        path = cache.get((prefix, key))
        if path is None:
            path = cache[(prefix, key)] = f"{prefix}.{key}" if prefix else key
        kind = _T.get(type(value))
        if kind is not None:
            seen[(path, kind)] += 1
        elif type(value) is dict:
            seen[(path, "object")] += 1
            _walk(value, path, seen, cache)
        elif type(value) is list:
            seen[(path, "array")] += 1
            folded = cache.get((path, "[]"))
            if folded is None:
                folded = cache[(path, "[]")] = f"{path}[]"
            for item in value:
                if type(item) is dict:
                    seen[(folded, "object")] += 1
                    _walk(item, folded, seen, cache)
                else:
                    seen[(folded, json_type(item))] += 1
        else:
            seen[(path, json_type(value))] += 1


def fold(path: str) -> str:
    """``A.B[3].c`` -> ``A.B[].c``: the path as schema observation names it."""
    out, skipping = [], False
    for char in path:
        if char == "[":
            out.append("[]")
            skipping = True
        elif char == "]":
            skipping = False
        elif not skipping:
            out.append(char)
    return "".join(out)
