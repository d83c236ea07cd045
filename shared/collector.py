"""The garbage collector in a long-lived worker process.

What a worker process holds for good (the libraries; in a pool process the replay's rows, the
menu's running book, the database engine) is hundreds of thousands of objects, and every full
collection walked all of them: in process that was about 4 ms a cycle on average, paid in
bursts of 100 ms or more by whichever cycle tripped it. They are moved out of the collector's
reach: in the main process before the pool forks (the children inherit them frozen, and the
collector never writes to those shared pages), and in each pool process once its first task has
built what it keeps. Cyclic garbage made later is collected as before, and a frozen object freed
by its reference count is freed as before.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_FROZEN_IN: set[int] = set()  # processes that froze after a task (a forked child is not one)


def freeze_before_fork(**_: Any) -> None:
    gc.collect()
    gc.freeze()


def freeze_after_first_task(**_: Any) -> None:
    if os.getpid() not in _FROZEN_IN:
        _FROZEN_IN.add(os.getpid())
        gc.collect()
        gc.freeze()


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside, restored as it was after: for a loop that allocates
    millions of objects and makes no cyclic garbage (a backtest over replay-dev: 900 collections,
    0 objects found, 7% of its time walking what it holds). What refcounting frees is freed as
    before; a cycle made inside is left to the next collection after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
