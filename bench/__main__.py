"""Run the benchmarks: `bash scripts/bench.sh` (or `.venv/bin/python -m bench`) for every figure,
`--quick` for the smoke run CI does (small sizes; it asserts nothing about time), `--only NAME`
for one part, `--json FILE` to keep the figures, `--markdown` to print the README's table."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from bench.report import Report, machine

PARTS = {
    "startup": "bench.startup",
    "history": "bench.history",
    "resolver": "bench.resolver",
    "backtest": "bench.backtest",
    "fleet": "bench.fleet",
}
TITLES = {
    "startup": "(e) command-line start-up",
    "history": "(a) a cycle's cost as the stored history grows",
    "resolver": "(d) resolver: batch settle against a bare as-of join",
    "backtest": "(c) backtest of the whole replay on one core",
    "fleet": "(b, f) the desk's cycle against a bare Celery cycle of the same shape; memory",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", choices=sorted(PARTS), action="append", help="run only these")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--markdown", action="store_true", help="print the table for the README")
    args = parser.parse_args(argv)
    report = Report()
    print(f"machine: {machine()}; {'quick' if args.quick else 'full'} run", flush=True)
    started = time.perf_counter()
    for name in args.only or list(PARTS):
        report.section(TITLES[name])
        importlib.import_module(PARTS[name]).run(report, quick=args.quick)
    missed = [f.name for f in report.figures if f.met() is False]
    print(f"\n{len(report.figures)} figures in {time.perf_counter() - started:.0f} s; "
          f"{len(missed)} missed{': ' + ', '.join(missed) if missed else ''}")  # fmt: skip
    if args.markdown:
        print(f"\nMeasured on {machine()}:\n\n{report.table()}")
    if args.json:
        report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
