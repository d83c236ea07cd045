"""Data sanity: values no market could have printed are set aside, and gaps are named, not priced.

A vendor glitch (a close x100, a CPI print x10) must not read as "+9653% in a session", and a
return across two missing years must not read as one session's move. `screen_prices` and
`screen_macro` are pure: they return the frame without the rejected rows and the findings, each
with the moment it became knowable, so that a replay can flag it in the cycles that follow.

Rules (both sides of each are documented in the README's replay data section):
- a price move is a `bad_value` when its log size is beyond log(5) (a fivefold jump or a fall to a
  fifth in one session, which no index, stock or coin in our data has made), or beyond both 15
  standard deviations of the symbol's trailing 60 moves and a floor for its kind of asset (0.25 for
  an index: the 1987 crash was -0.23; 1.0 for a volatility index: VIX's record day, 5 Feb 2018,
  was +0.77; 0.7 for anything else). The value is dropped: no quote, feature or settlement uses
  it, and the next bar is measured from the last good one.
- three rejected bars in a row that agree with each other are a new level (a re-based series), not
  a glitch: the third is accepted and a `level_shift` is reported.
- a bar more than GAP_DAYS calendar days after the symbol's previous one follows a `gap`: the
  move across it is not a session's move, so no return window spans it.
- a macro value is a `bad_value` when its change is beyond 15 standard deviations of the series'
  trailing 60 changes AND the level jumped at least fourfold (or fell to a quarter) from a
  positive level; without 12 trailing changes, a tenfold jump from a level of at least 1.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from shared.contracts import DataFlag

TRAILING = 60
MIN_TRAILING = 20
MIN_TRAILING_MACRO = 12
SD_LIMIT = 15.0
HARD_LOG = math.log(5.0)
FLOOR_INDEX, FLOOR_VOLATILITY, FLOOR_OTHER = 0.25, 1.0, 0.7
GAP_DAYS = 7  # 9/11 shut the NYSE from the 10th to the 17th: 7 days, a real (if long) session
REBASE_AFTER = 3
MACRO_RATIO = 4.0
MACRO_HARD_RATIO = 10.0

VOLATILITY_SYMBOLS = frozenset({"^VIX", "^VXN", "^VVIX", "^VIX3M", "VIXY", "VXX", "UVXY"})
INDEX_FUNDS = frozenset({"SPY", "IVV", "VOO", "DIA", "QQQ", "IWM", "VTI", "IJR", "XLK", "MDY"})


class _Window:
    """The last `size` values with their standard deviation, in O(1) per value."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque()
        self.size = size
        self.total = 0.0
        self.squares = 0.0

    def __len__(self) -> int:
        return len(self.values)

    def add(self, value: float) -> None:
        self.values.append(value)
        self.total += value
        self.squares += value * value
        if len(self.values) > self.size:
            old = self.values.popleft()
            self.total -= old
            self.squares -= old * old

    def clear(self) -> None:
        self.values.clear()
        self.total = self.squares = 0.0

    def sd(self) -> float:
        n = len(self.values)
        mean = self.total / n
        return math.sqrt(max(0.0, self.squares / n - mean * mean))


@dataclass(frozen=True)
class Finding:
    """One sanity finding: what, about which subject and which day, known from when."""

    code: str  # bad_value | gap | level_shift
    subject: str
    day: date
    known_at: datetime
    detail: str


_EPOCH_DAY = date(1970, 1, 1)


def _day(days: int) -> date:
    return _EPOCH_DAY + timedelta(days=days)


def floor_for(symbol: str) -> float:
    """The smallest log move that can be called implausible for this kind of asset."""
    if symbol in VOLATILITY_SYMBOLS or "VIX" in symbol.upper():
        return FLOOR_VOLATILITY
    if symbol.startswith("^") or symbol in INDEX_FUNDS:
        return FLOOR_INDEX
    return FLOOR_OTHER


def _pct(log_move: float) -> str:
    return f"{(math.exp(log_move) - 1) * 100:+.1f}%"


def _screen_symbol(
    symbol: str, days: list[int], closes: list[float], known: pl.Series
) -> tuple[list[bool], list[Finding]]:
    """Which bars to keep, and what was found, walking one symbol's bars in session order."""
    keep = [False] * len(days)
    found: list[Finding] = []
    moves = _Window(TRAILING)
    floor = floor_for(symbol)
    last: int | None = None
    rejected: list[int] = []
    for i, (number, close) in enumerate(zip(days, closes, strict=True)):
        day = _day(number)
        if last is None:
            keep[i], last = True, i
            continue
        before = _day(days[last])
        if number - days[last] > GAP_DAYS:
            found.append(
                Finding(
                    "gap",
                    symbol,
                    day,
                    known[i],
                    f"{symbol}: no bar for {number - days[last]} days before {day} (last "
                    f"{before}); the move across the gap is not a session's move",
                )
            )
            keep[i], last = True, i
            moves.clear()
            rejected.clear()
            continue
        move = math.log(close / closes[last])
        sd = moves.sd() if len(moves) >= MIN_TRAILING else None
        limit = HARD_LOG if sd is None else min(HARD_LOG, max(SD_LIMIT * sd, floor))
        if abs(move) <= limit:
            keep[i], last = True, i
            moves.add(move)
            rejected.clear()
            continue
        rejected.append(i)
        steady = all(
            abs(math.log(closes[b] / closes[a])) <= floor for a, b in itertools.pairwise(rejected)
        )
        if len(rejected) >= REBASE_AFTER and steady:
            found.append(
                Finding(
                    "level_shift",
                    symbol,
                    day,
                    known[i],
                    f"{symbol}: {REBASE_AFTER} closes in a row near {close:g} against "
                    f"{closes[last]:g} on {before}; read as a new level from {day}",
                )
            )
            keep[i], last = True, i
            moves.clear()
            rejected.clear()
            continue
        if not steady:
            rejected = [i]
        bound = (
            "a fivefold move"
            if limit == HARD_LOG
            else f"the larger of {SD_LIMIT:.0f} sd of its trailing moves and its asset floor"
        )
        found.append(
            Finding(
                "bad_value",
                symbol,
                day,
                known[i],
                f"{symbol} close {close:g} on {day} is {_pct(move)} from {closes[last]:g} on "
                f"{before}, beyond {bound} (limit {_pct(limit)}); value not used",
            )
        )
    return keep, found


# A vectorised pass first finds the symbols (series) whose raw history could hold a finding, with
# every bound 1% tighter than the walk's (and a gap always suspect); only those are walked bar by
# bar. While the walk accepts every bar its state is the raw history's, so a symbol the pass clears
# holds nothing the walk would find: clean data costs a few column operations, not a Python loop.
_SLACK = 0.99


def _price_suspects(ordered: pl.DataFrame) -> set[str]:
    symbols = ordered["symbol"].unique().to_list()
    floors = pl.DataFrame(
        {"symbol": symbols, "_floor": [floor_for(str(x)) for x in symbols]},
        schema={"symbol": ordered.schema["symbol"], "_floor": pl.Float64},
    )
    close = pl.col("close")
    checked = (
        ordered.join(floors, on="symbol")
        .sort("symbol", "date")
        .with_columns(
            (close / close.shift(1)).log().over("symbol").alias("_move"),
            ((pl.col("date") - pl.col("date").shift(1)).dt.total_days() > GAP_DAYS)
            .over("symbol")
            .fill_null(False)
            .alias("_gap"),
        )
        .with_columns(
            pl.col("_move")
            .shift(1)
            .rolling_std(TRAILING, min_samples=MIN_TRAILING, ddof=0)
            .over("symbol")
            .alias("_sd")
        )
    )
    walk_bound = pl.min_horizontal(
        pl.lit(HARD_LOG), pl.max_horizontal(SD_LIMIT * pl.col("_sd"), pl.col("_floor"))
    )
    bound = pl.when(pl.col("_sd").is_null()).then(pl.col("_floor")).otherwise(walk_bound)
    suspect = (pl.col("_move").abs() > bound * _SLACK) | pl.col("_gap")
    return {str(x) for x in checked.filter(suspect)["symbol"].unique().to_list()}


def _macro_suspects(ordered: pl.DataFrame) -> set[str]:
    value = pl.col("value")
    prev = value.shift(1)
    checked = ordered.with_columns(
        (value - prev).over("series").alias("_change"),
        pl.when((prev > 0) & (value > 0)).then(value / prev).over("series").alias("_ratio"),
    ).with_columns(
        pl.col("_change")
        .shift(1)
        .rolling_std(TRAILING, min_samples=MIN_TRAILING_MACRO, ddof=0)
        .over("series")
        .alias("_sd")
    )
    jump = (pl.col("_ratio") >= MACRO_RATIO * _SLACK) | (
        pl.col("_ratio") <= 1 / (MACRO_RATIO * _SLACK)
    )
    large = pl.col("_sd").is_null() | (pl.col("_change").abs() > SD_LIMIT * pl.col("_sd") * _SLACK)
    return {str(x) for x in checked.filter(jump & large)["series"].unique().to_list()}


def screen_prices(prices: pl.DataFrame) -> tuple[pl.DataFrame, list[Finding]]:
    """The bars that pass, in the input's order, and the findings, oldest first.

    prices: date, symbol, close, known_at (any other columns ride along).
    """
    if prices.is_empty():
        return prices, []
    ordered = prices.with_row_index("_row").sort("symbol", "date")
    suspects = _price_suspects(ordered)
    if not suspects:
        return prices, []
    drop_rows: list[int] = []
    findings: list[Finding] = []
    walked = ordered.filter(pl.col("symbol").is_in(sorted(suspects)))
    for (symbol,), part in walked.partition_by("symbol", as_dict=True, maintain_order=True).items():
        keep, found = _screen_symbol(
            str(symbol),
            part["date"].to_physical().to_list(),
            part["close"].to_list(),
            part["known_at"],
        )
        rows = part["_row"].to_list()
        drop_rows += [row for row, kept in zip(rows, keep, strict=True) if not kept]
        findings += found
    kept = prices.with_row_index("_row").filter(~pl.col("_row").is_in(drop_rows)).drop("_row")
    findings.sort(key=lambda f: (f.known_at, f.subject))
    return kept, findings


def _screen_series(
    series: str, days: list[int], values: list[float], known: pl.Series
) -> tuple[list[bool], list[Finding]]:
    keep = [True] * len(days)
    found: list[Finding] = []
    changes = _Window(TRAILING)
    last: int | None = None
    for i, value in enumerate(values):
        if last is None:
            last = i
            continue
        prev = values[last]
        change = value - prev
        sd = changes.sd() if len(changes) >= MIN_TRAILING_MACRO else None
        ratio = value / prev if prev > 0 and value > 0 else None
        if sd is not None:
            bad = (
                abs(change) > SD_LIMIT * sd
                and ratio is not None
                and (ratio >= MACRO_RATIO or ratio <= 1 / MACRO_RATIO)
            )
        else:
            bad = (
                ratio is not None
                and prev >= 1.0
                and (ratio >= MACRO_HARD_RATIO or ratio <= 1 / MACRO_HARD_RATIO)
            )
        if bad:
            keep[i] = False
            found.append(
                Finding(
                    "bad_value",
                    series,
                    _day(days[i]),
                    known[i],
                    f"{series} {value:g} for {_day(days[i])} against {prev:g} for "
                    f"{_day(days[last])} "
                    f"(x{value / prev:.2f}) is beyond any move the series has made; value not used",
                )
            )
            continue
        changes.add(change)
        last = i
    return keep, found


def screen_macro(macro: pl.DataFrame) -> tuple[pl.DataFrame, list[Finding]]:
    """The observations that pass and the findings; macro: date, series, value, known_at."""
    if macro.is_empty():
        return macro, []
    ordered = macro.with_row_index("_row").sort("series", "date")
    suspects = _macro_suspects(ordered)
    drop_rows: list[int] = []
    findings: list[Finding] = []
    walked = ordered.filter(pl.col("series").is_in(sorted(suspects)))
    for (name,), part in walked.partition_by("series", as_dict=True, maintain_order=True).items():
        keep, found = _screen_series(
            str(name),
            part["date"].to_physical().to_list(),
            part["value"].to_list(),
            part["known_at"],
        )
        rows = part["_row"].to_list()
        drop_rows += [row for row, kept in zip(rows, keep, strict=True) if not kept]
        findings += found
    if not drop_rows:
        return macro, findings
    kept = macro.with_row_index("_row").filter(~pl.col("_row").is_in(drop_rows)).drop("_row")
    findings.sort(key=lambda f: (f.known_at, f.subject))
    return kept, findings


def recent_flags(findings: Sequence[Finding], as_of: datetime, window: timedelta) -> list[DataFlag]:
    """Flags for the findings that became known in the `window` before as_of (none later)."""
    return [
        DataFlag(code=f.code, subject=f.subject, detail=f.detail)
        for f in findings
        if as_of - window < f.known_at <= as_of
    ]
