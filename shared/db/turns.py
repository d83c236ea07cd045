"""Taking turns on a piece of the database's work across processes and transactions.

Two syntheses that read the desk's state at once cannot both store the state they built on it:
the second finds the state's version moved (shared.db.record.StateConflict), rolls back, reads
again and redoes its whole cycle. That check keeps the state right; it is not a way to share
work. In a burst of triggers (a backfill, the benchmark's 200 at once) with two synthesis
processes, 75 of 212 cycles were done twice. A turn makes the second synthesis wait for the
first instead, for as long as one synthesis takes, and costs nothing when nobody waits.

The turn spans the reading transaction, the composing in between and the storing transaction,
so it is held outside them: on SQLite (one host, one file) an flock on a file beside the
database, on PostgreSQL an advisory lock on a connection of its own. Both are released by the
kernel or the server when the holder dies. A wait has a bound: past it the synthesis goes on
without its turn, as it did before turns, and the version check still guards the state.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db.moments import advisory_key
from shared.db.session import engine_for, sqlite_path

# How often a waiter on SQLite tries the file lock again: a syscall, so a millisecond costs
# nothing and hands the turn on within a millisecond of its release.
POLL_S = 0.001


@contextmanager
def turn(url: str, name: str, *, wait_s: float) -> Iterator[bool]:
    """Hold the database's turn for `name` for the block; yields whether it was had (False:
    waited wait_s, or the database has no place for a lock, and the block runs without it)."""
    path = sqlite_path(url)
    if path is not None:
        with _file_turn(
            path.with_name(f"{path.name}.{name.replace(' ', '-')}.turn"), wait_s
        ) as had:
            yield had
    elif url.startswith("postgresql"):
        with _advisory_turn(url, name, wait_s) as had:
            yield had
    else:  # in-memory SQLite: one process, nobody to take turns with
        yield False


@contextmanager
def _file_turn(lock_file: Path, wait_s: float) -> Iterator[bool]:
    deadline = time.monotonic() + wait_s
    try:
        handle = lock_file.open("a")
    except OSError:  # no folder for it (nor, then, for the database: its own error says so)
        yield False
        return
    with handle:
        had = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                had = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(POLL_S)
        try:
            yield had
        finally:
            if had:
                fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_turn(url: str, name: str, wait_s: float) -> Iterator[bool]:
    # A transaction-scoped lock on a connection of its own: released at the rollback that ends
    # the block, or by the server when the connection drops with its process.
    with engine_for(url).connect() as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = '{max(1, round(wait_s * 1000))}ms'"))
        try:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)}
            )
            had = True
        except DBAPIError:  # lock_timeout: the holder kept it past the bound
            had = False
            connection.rollback()
        try:
            yield had
        finally:
            if had:
                connection.rollback()
