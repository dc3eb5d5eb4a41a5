"""Schema observation: which field paths (array positions folded to ``[]``) and
JSON types the API actually sends, compared with what the project knows.

Fullbay documents no types and few fields, so a user learns what their account
sends from this (``fullbay_schema_fields`` and its check) rather than from a
quarantine. It must cost little next to loading: instead of counting every field
of every invoice, it counts each object's *shape* (its path, keys and value types,
one dict increment per object: the tuples are built in C) and expands the few
distinct shapes into per-path counts once, at the end. Hand-written for that
reason; a JSON-path library would visit field by field. Even so a full walk costs
about a tenth of a first load, so a load observes every invoice up to
``OBSERVE_ALL`` and one in ``OBSERVE_EVERY`` after that (counts are of the
invoices observed; ``benchmarks/load.py`` measures both).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fullbay_dagster.fullbay.records import json_type

# (folded path, JSON type) -> times seen
Observed = Counter[tuple[str, str]]
_Shape = tuple[str, tuple[str, ...], tuple[type, ...]]
_NAMES = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null", dict: "object"}
_NAMES[list] = "array"


OBSERVE_ALL = 200
OBSERVE_EVERY = 10


class Observer:
    """Counts the shapes of the records it is given; :meth:`observed` expands them."""

    def __init__(self, observe_all: int = OBSERVE_ALL, every: int = OBSERVE_EVERY) -> None:
        self.offered = self.taken = 0
        self._observe_all, self._every = observe_all, every
        self._shapes: dict[_Shape, int] = {}
        self._plans: dict[_Shape, list[tuple[int, str, bool]]] = {}
        self._scalars: Observed = Counter()  # list items that are not objects

    def offer(self, record: dict[str, Any]) -> None:
        """Observe ``record`` if it falls in the sample (see the module docstring)."""
        self.offered += 1
        if self.offered <= self._observe_all or self.offered % self._every == 0:
            self.observe(record)

    def observe(self, record: dict[str, Any]) -> None:
        self.taken += 1
        self._walk(record, "")

    def _walk(self, obj: dict[str, Any], prefix: str) -> None:
        values = tuple(obj.values())
        shape = (prefix, tuple(obj), tuple(map(type, values)))
        shapes = self._shapes
        shapes[shape] = shapes.get(shape, 0) + 1
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plans[shape] = [
                (n, f"{prefix}.{key}" if prefix else key, kind is list)
                for n, (key, kind) in enumerate(zip(shape[1], shape[2], strict=True))
                if kind is dict or kind is list
            ]
        for n, path, is_list in plan:
            value = values[n]
            if not is_list:
                self._walk(value, path)
                continue
            folded = f"{path}[]"
            for item in value:
                if type(item) is dict:
                    self._walk(item, folded)
                else:
                    self._scalars[(folded, json_type(item))] += 1

    def observed(self) -> Observed:
        seen: Observed = Counter(self._scalars)
        for (prefix, keys, kinds), count in self._shapes.items():
            if prefix.endswith("[]"):
                seen[(prefix, "object")] += count  # an object inside a list
            for key, kind in zip(keys, kinds, strict=True):
                name = _NAMES.get(kind) or ("object" if issubclass(kind, dict) else "array")
                seen[(f"{prefix}.{key}" if prefix else key, name)] += count
        return seen


def observe(record: dict[str, Any]) -> Observed:
    """The paths and JSON types of one record (for tests and one-offs)."""
    observer = Observer()
    observer.observe(record)
    return observer.observed()


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
