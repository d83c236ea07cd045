"""Turns on the desk's state: one holder at a time, a waiter goes on when the holder lets go,
and a wait has a bound after which the block runs without the turn."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shared.db.turns import turn


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'desk.sqlite'}"


def test_a_second_holder_waits_for_the_first_to_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url(tmp_path)
    events: list[str] = []
    inside, release, waiting = threading.Event(), threading.Event(), threading.Event()
    pause = time.sleep

    def waited(seconds: float) -> None:  # the second found the turn taken and waits
        waiting.set()
        pause(seconds)

    monkeypatch.setattr(time, "sleep", waited)  # only the waiter sleeps in this test

    def first() -> None:
        with turn(url, "synthesis state", wait_s=5) as had:
            events.append(f"first in {had}")
            inside.set()
            release.wait(5)
            events.append("first out")

    def second() -> None:
        inside.wait(5)
        with turn(url, "synthesis state", wait_s=5) as had:
            events.append(f"second in {had}")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    # The first lets go only once the second has found the turn taken.
    assert waiting.wait(5)
    release.set()
    for thread in threads:
        thread.join(10)
    assert events == ["first in True", "first out", "second in True"]


def test_a_wait_past_its_bound_goes_on_without_the_turn(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with turn(url, "synthesis state", wait_s=1) as had:
        assert had
        seen: list[bool] = []
        waiter = threading.Thread(target=lambda: seen.append(_try(url)))
        waiter.start()
        waiter.join(10)
        assert seen == [False]
        # Another job's turn is its own.
        with turn(url, "another job", wait_s=0.05) as other:
            assert other
    assert _try(url)


def _try(url: str) -> bool:
    with turn(url, "synthesis state", wait_s=0.05) as had:
        return had


def test_no_folder_for_the_lock_runs_without_a_turn(tmp_path: Path) -> None:
    with turn(f"sqlite:///{tmp_path / 'gone' / 'desk.sqlite'}", "synthesis state", wait_s=1) as had:
        assert not had
    with turn("sqlite:///:memory:", "synthesis state", wait_s=1) as had:
        assert not had
