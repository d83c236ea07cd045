"""The resolver's batch judge over N synthetic open calls on the real price history, beside a
bare polars as-of join of the same calls to the same bars (the floor: finding each call's first
close after maturity is the least any settler does). The batch judge is what the resolver's pass
runs on a replay's calls (services.resolver.resolve)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl

from bench.report import Figure, Report

TARGET = 1.5


def synthetic_calls(bars: pl.DataFrame, n: int, seed: int = 13) -> pl.DataFrame:
    """n open calls on the replay's symbols, maturing at random moments inside its history: a
    third of them each direction, threshold and range calls, as the desk makes them."""
    from services.resolver.batch import OPEN_SCHEMA

    rows = bars.sample(n, with_replacement=True, seed=seed)
    index = pl.int_range(n, eager=True)
    hours = (index * 7919) % (24 * 3)  # maturities spread over three days before a close
    up = index % 2 == 0
    kind = index % 3
    ranged = kind == 2
    return pl.DataFrame(
        {
            "id": pl.int_range(n, eager=True),
            "target": rows["target"],
            "direction": pl.select(
                pl.when(ranged & up)
                .then(pl.lit("inside"))
                .when(ranged)
                .then(pl.lit("outside"))
                .when(up)
                .then(pl.lit("up"))
                .otherwise(pl.lit("down"))
            ).to_series(),
            "reference_price": rows["settle_price"],
            "line": rows["settle_price"]
            * pl.select(pl.when(kind == 1).then(1.01).otherwise(1.0)).to_series(),
            "matures_us": rows["closes_us"] - hours * 3_600_000_000,
            "attempts": pl.zeros(n, dtype=pl.Int64, eager=True),
            "kind": pl.select(
                pl.when(ranged)
                .then(pl.lit("range"))
                .when(kind == 1)
                .then(pl.lit("threshold"))
                .otherwise(pl.lit("direction"))
            ).to_series(),
            "range_pct": pl.select(pl.when(ranged).then(1.0)).to_series(),
        },
        schema=OPEN_SCHEMA,
    )


def bare_join(calls: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Each call beside the first bar at or after its maturity: nothing judged."""
    return calls.sort("matures_us").join_asof(
        bars, left_on="matures_us", right_on="closes_us", by="target", strategy="forward",
        check_sortedness=False,
    )  # fmt: skip


def _paired(
    floor: Callable[[], object], value: Callable[[], object], runs: int
) -> tuple[float, float]:
    """Median seconds of each, run alternately so that the machine's drift hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        for fn, times in ((floor, a), (value, b)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


def run(report: Report, *, quick: bool) -> None:
    from services.resolver.batch import settle_frame, settlement_frame
    from shared.market.replay import load_replay, sample_data_dir

    bars = settlement_frame(load_replay(sample_data_dir()).prices)
    last = int(bars["known_us"].max())  # type: ignore[arg-type]
    now = datetime.fromtimestamp(last / 1e6, UTC) + timedelta(days=5)
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    for n in sizes:
        calls = synthetic_calls(bars, n)
        runs = 3 if n >= 1_000_000 else 7
        settled = settle_frame(calls, bars, now, max_attempts=3)
        assert settled.height == n, "every synthetic call has matured"
        floor, value = _paired(
            lambda c=calls: bare_join(c, bars),  # type: ignore[misc]
            lambda c=calls: settle_frame(c, bars, now, max_attempts=3),  # type: ignore[misc]
            runs,
        )
        report.add(Figure(f"resolver: settle {n:,} open calls", value * 1000, floor * 1000,
                          "ms", "<=", TARGET, note="floor: bare polars as-of join"))  # fmt: skip
