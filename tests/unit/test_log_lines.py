"""Log lines from the processes of one worker share one file and must stay whole lines."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

PROCESSES = 4
LINES = 400


def _log_from_child(path: Path, number: int) -> None:
    """In a forked child: stderr is the shared log file, as in a worker; log LINES JSON lines."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)
    # Python's own stderr: line-buffered text written straight through to the descriptor.
    raw = open(2, "wb", buffering=0, closefd=False)  # noqa: SIM115
    sys.stderr = io.TextIOWrapper(raw, line_buffering=True, write_through=True)
    from shared.logs import configure_logging, get_logger

    configure_logging("json")
    log = get_logger("test")
    for line in range(LINES):
        log.info("mind.completed", child=number, line=line, padding="x" * 300)
    os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks like a prefork worker")
def test_lines_from_many_processes_never_run_together(tmp_path: Path) -> None:
    """Four processes logging at once into one file (a prefork worker's children) leave only
    whole JSON lines: none run together, none lost."""
    path = tmp_path / "worker.log"
    path.touch()
    children = []
    for number in range(PROCESSES):
        pid = os.fork()
        if pid == 0:
            _log_from_child(path, number)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert len(records) == PROCESSES * LINES
    assert all(line.strip() for line in lines)
