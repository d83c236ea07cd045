"""Start-up of the command line: `workshop --help` and `workshop status` (no stack running), each
beside a bare interpreter start, the floor no Python command can go under."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Figure, Report

LIMIT_S = 0.5


def _time(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + system) of the command."""
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            command, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def run(report: Report, *, quick: bool) -> None:
    runs = 3 if quick else 9
    workshop = str(Path(sys.executable).with_name("workshop"))
    with tempfile.TemporaryDirectory(prefix="workshop-bench-home-") as home:
        env = dict(os.environ, WORKSHOP_HOME=home)
        floor, floor_cpu = _time([sys.executable, "-c", "pass"], env, runs)
        for label, args in (("workshop --help", ["--help"]), ("workshop status", ["status"])):
            seconds, cpu = _time([workshop, *args], env, runs)
            report.add(Figure(label, seconds, floor, "s", "<=", None, limit=LIMIT_S,
                              note="floor: a bare `python -c pass`"))  # fmt: skip
            # CPU time hardly moves with the machine's load, where wall time does.
            report.add(Figure(f"{label} (CPU time)", cpu, floor_cpu, "s", "<=", None,
                              note="user + system; floor: a bare `python -c pass`"))  # fmt: skip
