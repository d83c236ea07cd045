"""Waiting for a stack's workers: answers are gathered across pings (a loaded machine rarely
fits every reply in one window), each ping waits longer, and a worker that never answers is
named with the end of its log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from workshop.stack import gather_answers

WORKERS = {name: os.getpid() for name in ("ingest", "minds", "synth", "resolver")}


def test_answers_split_across_pings_are_enough(tmp_path: Path) -> None:
    """Each ping hears only two workers; after two pings all four have answered."""
    rounds: Iterator[list[dict[str, object]]] = iter([
        [{"ingest@vm": {"ok": "pong"}}, {"minds@vm": {"ok": "pong"}}],
        [{"synth@vm": {"ok": "pong"}}, {"resolver@vm": {"ok": "pong"}}],
    ])  # fmt: skip
    windows: list[float] = []

    def ping(window: float) -> list[dict[str, object]]:
        windows.append(window)
        return next(rounds)

    gather_answers(ping, WORKERS, tmp_path, timeout=30)
    assert len(windows) == 2
    assert windows[1] > windows[0]


def test_a_silent_worker_is_named_with_its_log(tmp_path: Path) -> None:
    """The synthesis never answers: the error names it and quotes the end of its log."""
    (tmp_path / "synth.log").write_text("starting\nconsumer: Cannot connect to redis\n")

    def ping(window: float) -> list[dict[str, object]]:
        return [{f"{name}@vm": {"ok": "pong"}} for name in ("ingest", "minds", "resolver")]

    with pytest.raises(ConfigurationError, match=r"\['synth'\] did not answer") as caught:
        gather_answers(ping, WORKERS, tmp_path, timeout=0.2)
    assert "Cannot connect to redis" in str(caught.value)


def test_a_dead_worker_fails_at_once(tmp_path: Path) -> None:
    """A worker whose process is gone is reported as exited, without waiting out the timeout."""
    workers = {**WORKERS, "minds": 2**22 + 12345}  # above pid_max's default: no such process
    (tmp_path / "minds.log").write_text("ImportError: no module named x\n")
    with pytest.raises(ConfigurationError, match="worker minds exited at start") as caught:
        gather_answers(lambda window: [], workers, tmp_path, timeout=60)
    assert "ImportError" in str(caught.value)
