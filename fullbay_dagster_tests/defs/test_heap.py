"""The collector skips what existed before a step, collects the step's own cycles,
and sees everything again afterwards."""

from __future__ import annotations

import gc
import weakref

from fullbay_dagster.defs.heap import step_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_a_step_freezes_what_exists_and_still_collects_its_own_cycles() -> None:
    before = Node()
    assert gc.get_freeze_count() == 0
    with step_heap():
        assert gc.get_freeze_count() > 0
        older = weakref.ref(before)
        del before
        gc.collect()
        assert older() is not None  # frozen: out of the collector's sight during the step
        made = Node()
        mine = weakref.ref(made)
        del made
        gc.collect()
        assert mine() is None  # the step's own garbage is collected as usual
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert older() is None  # collected again once the step is over


def test_garbage_from_before_the_step_is_collected_not_frozen() -> None:
    dropped = Node()
    gone = weakref.ref(dropped)
    del dropped  # unreachable, but a cycle: only the collector frees it
    with step_heap():
        assert gone() is None
