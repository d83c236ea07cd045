"""The backtest of the whole replay on one core, beside the floor of merely loading that replay.

Runs in a child process pinned to one core with polars on one thread, so that the figure is the
one-core figure whatever else the machine is doing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench.report import Figure, Report

LIMIT_S = 10.0
GOAL_S = 2.0


def child(days: int | None) -> dict[str, float]:
    """In the pinned child: load the replay alone, then backtest it (days: only the last ones)."""
    from shared.market.replay import load_replay, sample_data_dir
    from workshop.backtest import run_backtest

    directory = sample_data_dir()
    started = time.perf_counter()
    load_replay(directory)
    load_s = time.perf_counter() - started
    start, end = date(1900, 1, 1), date(2999, 12, 31)
    if days is not None:
        from shared.market.replay import ReplayMarket

        sessions = ReplayMarket(load_replay(directory)).sessions(start, end)
        start = sessions[-days]
    started = time.perf_counter()
    result = run_backtest(directory, start, end)
    return {"load_s": load_s, "backtest_s": time.perf_counter() - started,
            "cycles": result.cycles}  # fmt: skip


def run(report: Report, *, quick: bool) -> None:
    env = dict(os.environ, POLARS_MAX_THREADS="1")
    core = min(os.sched_getaffinity(0))
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "bench.backtest", "--child"]
    if quick:
        command += ["--days", "60"]
    done = subprocess.run(
        command, env=env, cwd=root, capture_output=True, text=True, check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"backtest child failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cycles = int(figures["cycles"])
    report.add(
        Figure(
            f"backtest, {cycles} trading days, one core", figures["backtest_s"],
            figures["load_s"], "s", "<=", None, limit=None if quick else LIMIT_S,
            note=f"floor: loading the replay; goal {GOAL_S:g} s; "
            f"{figures['backtest_s'] / max(cycles, 1) * 1000:.2f} ms per cycle",
        )
    )  # fmt: skip


if __name__ == "__main__":
    if "--child" in sys.argv:
        days = int(sys.argv[sys.argv.index("--days") + 1]) if "--days" in sys.argv else None
        print(json.dumps(child(days)))
