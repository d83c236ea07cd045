"""Settling many open calls at once: the resolver's judge as one polars plan.

The same rules as services.resolver.settle.judge over shared.market.replay's settlement quote,
for a whole frame of calls: the quote is the first bar of the target closing at or after the
call's maturity (an as-of join, forward), usable only if it was known by now; without one a
call waits out the grace period, then spends an attempt per pass, then is inconclusive. With
one, a call is a hit when the close makes it true as worded (shared.contracts.event_holds:
strictly beyond its line in the called direction; inside or outside a range's band, the band
inclusive); a close later than the grace period after maturity (a gap in the prices) settles it
inconclusive.

The resolver's pass (services.resolver.resolve) judges a replay's calls with it: the frame picks
the calls that settle and the attempts spent, and judge() words the few that settle.

Times are integer microseconds since the epoch (UTC): the join needs no time-zone arithmetic.
The reason text is left to judge() for the calls that do settle (a handful per pass), so the
two cannot word an outcome differently.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from services.resolver.settle import GRACE
from shared.calendar import SESSION_CLOSE
from shared.features import new_york_instant

# Fixed vocabularies as enums: comparing and building them is integer work, not string work, and
# a frame with a kind or a side outside them cannot be built.
KIND = pl.Enum(["direction", "threshold", "range"])
SIDE = pl.Enum(["up", "down", "inside", "outside"])
OUTCOME = pl.Enum(["hit", "miss", "inconclusive"])
OPEN_SCHEMA = pl.Schema(
    {
        "id": pl.Int64(),
        "target": pl.Utf8(),
        "direction": SIDE,
        "reference_price": pl.Float64(),
        "line": pl.Float64(),
        "matures_us": pl.Int64(),
        "attempts": pl.Int64(),
        "kind": KIND,
        "range_pct": pl.Float64(),
    }
)
_GRACE_US = int(GRACE.total_seconds() * 1_000_000)

# The parts of the judge that do not depend on the moment of the pass, built once: a pass builds
# only the three comparisons with its now and max_attempts (building the whole plan per pass was
# a tenth of a 10,000-call pass). Each is evaluated once per row, not cached: the eager select
# does not eliminate common subexpressions, so the plan keeps the number of nodes small instead.
_price = pl.col("settle_price")
_side = pl.col("direction")
_MOVED = _price / pl.col("reference_price") - 1.0
_inside = (_MOVED.abs() * 100.0) <= (pl.col("range_pct").fill_null(0.0) + 1e-12)
# shared.contracts.event_holds: a band holds as worded when being inside is what was called.
_HOLDS = (
    pl.when(pl.col("kind") == "range")
    .then(_inside == (_side == "inside"))
    .when(_side == "up")
    .then(_price > pl.col("line"))
    .otherwise(_price < pl.col("line"))
)
_INCONCLUSIVE = pl.lit("inconclusive", OUTCOME)
# A priced call's verdict: a close later than the grace period after maturity (a gap in the
# prices) settles nothing either way.
_VERDICT = (
    pl.when(pl.col("closes_us") > pl.col("matures_us") + _GRACE_US)
    .then(_INCONCLUSIVE)
    .when(_HOLDS)
    .then(pl.lit("hit", OUTCOME))
    .otherwise(pl.lit("miss", OUTCOME))
)
_MOVE_PCT = _MOVED * 100.0


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def settlement_frame(prices: pl.DataFrame) -> pl.DataFrame:
    """Every bar as the judge sees it, from a replay's prices (date, symbol, close, known_at):
    target, closes_us (the session's close), known_us, settle_price, session; sorted for the
    as-of join."""
    return (
        prices.select(
            pl.col("symbol").alias("target"),
            new_york_instant(pl.col("date"), SESSION_CLOSE).dt.epoch("us").alias("closes_us"),
            pl.col("known_at").dt.epoch("us").alias("known_us"),
            pl.col("close").alias("settle_price"),
            pl.col("date").alias("session"),
        )
        # The as-of join wants its key sorted over the whole frame, the `by` groups within it.
        .sort("closes_us", "target")
    )


def quotes(open_calls: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Each call with the first bar of its target closing at or after its maturity (or nulls)."""
    return open_calls.sort("matures_us").join_asof(
        bars,
        left_on="matures_us",
        right_on="closes_us",
        by="target",
        strategy="forward",
        # Both sides are sorted on the key here; polars cannot check it with `by` groups.
        check_sortedness=False,
    )


def settle_frame(
    open_calls: pl.DataFrame, bars: pl.DataFrame, now: datetime, *, max_attempts: int
) -> pl.DataFrame:
    """Judge every call in open_calls (OPEN_SCHEMA) matured by now.

    Returns one row per matured call: id, outcome (OUTCOME: hit | miss | inconclusive, or null
    while it waits), spent_attempt, settle_price, session and realized_move_pct (null without a
    quote). Eager on purpose: for the few thousand rows of a pass, planning a lazy query costs
    more than running it.
    """
    now_us = micros(now)
    matured = open_calls["matures_us"].max()
    if matured is not None and matured > now_us:  # type: ignore[operator]
        # Copying the frame to drop calls not yet due is skipped when none is (a pass's query
        # asks only for those).
        open_calls = open_calls.filter(pl.col("matures_us") <= now_us)
    joined = quotes(open_calls, bars)
    # No quote (a null known_us) compares as null, which `when` takes as false.
    priced = pl.col("known_us") <= now_us
    waiting = (pl.col("known_us") > now_us).fill_null(True)
    past_grace = pl.col("matures_us") <= now_us - _GRACE_US
    give_up = pl.col("attempts") >= max_attempts - 1
    return joined.select(
        "id",
        pl.when(priced)
        .then(_VERDICT)
        .when(past_grace & give_up)
        .then(_INCONCLUSIVE)
        .alias("outcome"),
        (waiting & past_grace & ~give_up).alias("spent_attempt"),
        pl.when(priced).then(_price).alias("settle_price"),
        pl.when(priced).then(pl.col("session")).alias("session"),
        pl.when(priced).then(_MOVE_PCT).alias("realized_move_pct"),
    )
