"""A worker process moves what it keeps out of the garbage collector's reach once, after its
first task, and never again in that process."""

from __future__ import annotations

import gc

from shared import collector


def test_a_process_freezes_what_it_holds_after_its_first_task_only() -> None:
    """The first task's end freezes every live object; later task ends leave new ones alone."""
    collector._FROZEN_IN.clear()
    gc.unfreeze()
    try:
        collector.freeze_after_first_task()
        frozen = gc.get_freeze_count()
        assert frozen > 1000
        kept = [[n] for n in range(5000)]  # objects a later task made
        collector.freeze_after_first_task()
        assert gc.get_freeze_count() == frozen
        assert len(kept) == 5000
    finally:
        gc.unfreeze()
        collector._FROZEN_IN.clear()


def test_a_paused_collector_is_restored_as_it_was() -> None:
    """Inside paused() nothing collects on its own; after it (an exception too) the collector is
    on again if it was on before, and stays off if the caller had turned it off."""
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    try:
        with collector.paused():
            raise KeyError("inside")
    except KeyError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
