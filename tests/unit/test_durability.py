"""SQLite durability: a moved or replaced database file is refused, never written around, and
what was committed is in the main file (checkpointed), not only in its write-ahead log."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared.db.models import NoteRecord
from shared.db.session import migrate, serialize_writers, session_scope
from shared.errors import StorageUnavailable


def _post(url: str, text: str) -> None:
    with session_scope(url) as session:
        session.add(NoteRecord(author="t", posted_at=datetime(2016, 1, 4, tzinfo=UTC), text=text))


def _file_notes(path: Path) -> int:
    """Notes in the main database file alone: immutable=1 reads it without its WAL."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM notes").fetchone()[0])
    finally:
        connection.close()


def test_commits_are_checkpointed_into_the_main_file(tmp_path: Path) -> None:
    """Every acknowledged commit can be read from the database file without its WAL."""
    path = tmp_path / "w.db"
    url = f"sqlite:///{path}"
    migrate(url)
    for i in range(5):
        _post(url, f"note {i}")
    assert _file_notes(path) == 5


def test_a_moved_database_file_is_refused_until_it_is_back(tmp_path: Path) -> None:
    """While the file is away, writes fail with StorageUnavailable and go nowhere (no fresh
    file appears); once it is back, writes succeed and nothing committed was lost."""
    path = tmp_path / "w.db"
    url = f"sqlite:///{path}"
    migrate(url)
    _post(url, "before")
    away = tmp_path / "away.db"
    path.rename(away)
    with pytest.raises(StorageUnavailable, match="is gone"):
        _post(url, "while away")
    assert not path.exists()
    away.rename(path)
    _post(url, "after")
    with session_scope(url) as session:
        texts = sorted(session.scalars(select(NoteRecord.text)).all())
    assert texts == ["after", "before"]
    assert _file_notes(path) == 2


def test_a_replaced_database_file_is_refused_once_then_reopened(tmp_path: Path) -> None:
    """A different file put at the path is noticed: one refusal, then writes go to the new one."""
    path = tmp_path / "w.db"
    url = f"sqlite:///{path}"
    migrate(url)
    _post(url, "old")
    other = tmp_path / "other.db"
    migrate(f"sqlite:///{other}")
    other.replace(path)
    with pytest.raises(StorageUnavailable, match="was replaced"):
        _post(url, "lost?")
    _post(url, "new")
    with session_scope(url) as session:
        assert session.scalars(select(NoteRecord.text)).all() == ["new"]


def test_serialized_writers_take_turns(tmp_path: Path) -> None:
    """Two transactions serialized on one name never overlap: the second waits for the first."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate(url)
    spans: list[tuple[float, float]] = []

    def job() -> None:
        with session_scope(url) as session:
            serialize_writers(session, "job")
            began = time.monotonic()
            session.scalar(select(func.count()).select_from(NoteRecord))
            time.sleep(0.3)
            spans.append((began, time.monotonic()))

    threads = [threading.Thread(target=job) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans.sort()
    assert len(spans) == 3
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2))


def test_only_a_transaction_that_wrote_counts_as_a_write(tmp_path: Path) -> None:
    """A session that only read has written nothing (no checkpoint follows it); one that added a
    row, or ran an UPDATE matching nothing, has."""
    from shared.db.session import _wrote

    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate(url)
    with session_scope(url) as session:
        session.scalar(select(func.count()).select_from(NoteRecord))
        assert not _wrote(session)
    with session_scope(url) as session:
        session.add(NoteRecord(author="t", posted_at=datetime(2016, 1, 4, tzinfo=UTC), text="x"))
        session.flush()
        assert _wrote(session)
    with session_scope(url) as session:
        serialize_writers(session, "job")
        assert _wrote(session)
