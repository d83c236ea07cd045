"""Benchmark: backtest the whole shipped replay (~5,000 trading days) on one core and print the
figures against the targets: under 10 s; once warm the synthesis calls on >= 40% of cycles on >=
3 kinds; Brier skill vs the base rate >= +0.03 and >= 3 standard errors; skill vs the naive
random walk >= 0; ECE <= 0.03; never worse than "always the majority outcome" on any kind.

    .venv/bin/python scripts/bench_backtest.py [--data DIR] [--report OUT] [--profile]

Not a timed test: machines differ; this prints what it measured and says where it stands.
"""

from __future__ import annotations

import os

# One core: polars' thread pool is pinned before polars is imported anywhere.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import contextlib
import cProfile
import pstats
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workshop.backtest import build_report, run_backtest, write_report

TARGET_SECONDS = 10.0
TARGET_ECE = 0.05


def _fmt(value: object, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="replay directory")
    parser.add_argument("--report", type=Path, default=None, help="also write the report here")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):  # not every platform pins a process
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    started = time.perf_counter()
    profile = cProfile.Profile() if args.profile else None
    if profile:
        profile.enable()
    result = run_backtest(args.data, date(1900, 1, 1), date(2999, 12, 31))
    if profile:
        profile.disable()
    total = time.perf_counter() - started
    data = write_report(result, args.report) if args.report else build_report(result)
    print(f"cycles {data['cycles']}  {data['from']}..{data['to']}")
    print(f"engine seconds {data['seconds']:.2f} (incl. loading the replay and features)")
    print(f"wall seconds   {total:.2f} (target < {TARGET_SECONDS:.0f})")
    print(f"call rate      {_fmt(data['call_rate'], '{:.1%}')}")
    header = f"{'source':12}{'calls':>7}{'abst.':>7}{'hit rate':>10}{'95% CI':>15}"
    header += f"{'Brier':>9}{'base':>9}{'skill':>9}{'ECE':>8}"
    print(header)
    for name, m in [("synthesis", data["synthesis"]), *data["minds"].items()]:
        ci = (
            f"{m['hit_rate_low']:.3f}-{m['hit_rate_high']:.3f}"
            if m["hit_rate_low"] is not None
            else "-"
        )
        print(
            f"{name:12}{m['calls']:>7}{m['abstentions']:>7}{_fmt(m['hit_rate'], '{:.3f}'):>10}"
            f"{ci:>15}{_fmt(m['brier'], '{:.4f}'):>9}{_fmt(m['base_rate_brier'], '{:.4f}'):>9}"
            f"{_fmt(m['brier_skill'], '{:+.4f}'):>9}{_fmt(m['ece'], '{:.3f}'):>8}"
        )
    desk = data.get("desk")
    if desk:
        print(
            f"desk p(up) every cycle: n {desk['n']}, Brier {_fmt(desk['brier'], '{:.4f}')}, "
            f"base {_fmt(desk['base_rate_brier'], '{:.4f}')}, skill "
            f"{_fmt(desk['brier_skill'], '{:+.4f}')}, ECE {_fmt(desk['ece'], '{:.3f}')}"
        )
    synth = data["synthesis"]
    mix = data["call_mix"]
    print(
        f"calls {mix['calls']}: "
        + "; ".join(
            f"{kind} " + ", ".join(f"{side} {n}" for side, n in sorted(sides.items()))
            for kind, sides in sorted(mix["by_kind"].items())
        )
    )
    print(
        f"call rate once warm {_fmt(mix['call_rate_warm'], '{:.1%}')} of "
        f"{mix['cycles_warm']} cycles; warm start {data['warm_start']['candidates']} candidates"
    )
    print(
        f"{'source':12}{'kind':>11}{'settled':>8}{'Brier':>8}{'base':>8}{'skill':>9}{'±se':>8}"
        f"{'naive':>8}{'vs naive':>9}{'±se':>8}{'major.':>8}{'ECE':>7}"
    )
    for name, m in [("synthesis", synth), *data["minds"].items()]:
        for kind, k in [("all", m), *m["by_kind"].items()]:
            print(
                f"{name:12}{kind:>11}{k['hits'] + k['misses']:>8}{_fmt(k['brier'], '{:.4f}'):>8}"
                f"{_fmt(k['base_rate_brier'], '{:.4f}'):>8}{_fmt(k['brier_skill'], '{:+.4f}'):>9}"
                f"{_fmt(k['brier_skill_se'], '{:.4f}'):>8}{_fmt(k['naive_brier'], '{:.4f}'):>8}"
                f"{_fmt(k['brier_skill_naive'], '{:+.4f}'):>9}"
                f"{_fmt(k['brier_skill_naive_se'], '{:.4f}'):>8}"
                f"{_fmt(k['brier_majority'], '{:.4f}'):>8}{_fmt(k['ece'], '{:.3f}'):>7}"
            )
    checks: list[tuple[str, bool | None]] = [("under 10 s", total < TARGET_SECONDS)]
    kinds = {k: v for k, v in synth["by_kind"].items() if v["hits"] + v["misses"]}
    skill, se = synth["brier_skill"], synth["brier_skill_se"]
    checks += [
        ("calls on >= 40% of cycles once warm", (mix["call_rate_warm"] or 0) >= 0.40),
        ("calls on >= 3 kinds", len(kinds) >= 3),
        ("Brier skill vs base rate >= +0.03", skill is not None and skill >= 0.03),
        ("... and >= 3 standard errors above zero",
         skill is not None and bool(se) and skill >= 3 * se),
        ("Brier skill vs the naive random walk >= 0",
         synth["brier_skill_naive"] is not None and synth["brier_skill_naive"] >= 0),
        ("ECE <= 0.03", synth["ece"] is not None and synth["ece"] <= 0.03),
        ("never worse than always-the-majority on any kind it calls",
         all(v["brier"] <= v["brier_majority"] for v in kinds.values()
             if v["brier_majority"] is not None)),
    ]  # fmt: skip
    if desk and desk["n"]:
        checks += [("desk every-cycle p(up) ECE <= 0.05", desk["ece"] <= TARGET_ECE)]
        checks += [("desk every-cycle p(up) Brier skill >= 0", desk["brier_skill"] >= 0)]
    for name, ok in checks:
        print(f"{'n/a   ' if ok is None else 'MET   ' if ok else 'MISSED'} {name}")
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(35)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
