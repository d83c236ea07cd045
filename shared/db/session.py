"""Engine and session for the desk's database; the schema comes from the Alembic migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Importing the record registers the flush hook that keeps its aggregates (shared.db.record):
# every session that can write a call must have it.
from shared.db import record as _aggregates  # noqa: F401
from shared.db.moments import (  # and the hook that numbers replay cycles as claimed
    sqlite_wrote,
    take_turns,
)
from shared.errors import StorageUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# Brief write contention waits; a lock held longer fails the transaction with "database is
# locked", which tasks retry with backoff. Well under every task's soft time limit (20 s at the
# least), so a task is never killed while it waits inside SQLite.
BUSY_TIMEOUT_S = 10


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API and many worker processes read while one writes; the busy timeout turns
    # brief write contention between workers into a wait instead of "database is locked".
    # synchronous=FULL makes every commit durable on disk before it is acknowledged.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


@cache
def engine_for(url: str) -> Engine:
    """One engine per URL per process (workers build it once and reuse its pool)."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            sqlite3.connect(path).close()  # a new database starts as an empty file
        target = f"file:{quote(str(path.resolve()))}?mode=rw"

        def connect() -> sqlite3.Connection:
            # mode=rw: a file that vanishes later is an error, never a fresh empty database the
            # fleet would write its cycles into while the real one is away.
            return sqlite3.connect(
                target, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )

        engine = create_engine(url, creator=connect)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


_identities: dict[str, tuple[int, int]] = {}


def _check_file(url: str, path: Path) -> None:
    """Refuse to commit unless the database file is still the one this process opened.

    Moved away, a SQLite file keeps taking writes through the connections already open to it,
    and they are lost to whoever reads the path; replaced, the open connections write to the
    old file. Either way the transaction is refused (a StorageUnavailable, which tasks retry
    with backoff) and the pool is dropped, so the next attempt opens what is at the path."""
    try:
        found = path.stat()
    except FileNotFoundError:
        engine_for(url).dispose()
        _identities.pop(url, None)
        raise StorageUnavailable(
            f"the database file {path} is gone: refusing to write until it is back"
        ) from None
    identity = (found.st_dev, found.st_ino)
    known = _identities.setdefault(url, identity)
    if identity != known:
        engine_for(url).dispose()
        _identities[url] = identity
        raise StorageUnavailable(f"the database file {path} was replaced: reconnecting")


def alembic_config(url: str) -> Config:
    # Alembic is imported only to migrate: every command and worker imports this module, few
    # of them migrate, and alembic (with mako) is a large part of a command's start-up.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Create the database if need be and bring its schema to the newest migration."""
    from alembic import command

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    engine = engine_for(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@cache
def _sessions(url: str) -> sessionmaker[Session]:
    # One factory per URL per process: a sessionmaker builds a Session subclass, and every
    # listener on Session (the record's flush hook among them) is copied onto each new one.
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str, *, checkpoint: bool = True) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back if it raises.

    checkpoint=False leaves a SQLite write's checkpoint to the caller (checkpoint(url)), for a
    task whose next step waits on nothing but the commit: the commit is durable in the WAL, and
    the task checkpoints before it is acknowledged."""
    factory = _sessions(url)
    path = sqlite_path(url)
    if path is not None:
        _check_file(url, path)
    session = factory()
    wrote = False
    try:
        yield session
        if path is not None:
            _check_file(url, path)
            session.flush()
            wrote = _wrote(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if wrote and checkpoint:
        _checkpoint(url)


def checkpoint(url: str) -> None:
    """Copy a SQLite database's WAL into its main file (nothing for other databases)."""
    if sqlite_path(url) is not None:
        _checkpoint(url)


def _wrote(session: Session) -> bool:
    """Whether this SQLite transaction wrote anything: a session that only read has no driver
    transaction open (a cycle's reads are most of its sessions: they commit nothing and need
    no checkpoint)."""
    return session.in_transaction() and sqlite_wrote(session.connection(), unknown=True)


def _checkpoint(url: str) -> None:
    # Copy the WAL into the main file now rather than every thousand pages: what was
    # acknowledged lives in the database file itself, not only in its -wal neighbour.
    with engine_for(url).connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def serialize_writers(session: Session, name: str) -> None:
    """Hold the database's lock for `name` until the transaction ends, so that two tasks doing
    the same job (three settles at once) take turns instead of judging the same rows."""
    take_turns(session.connection(), name)
