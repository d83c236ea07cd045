"""Derived features (returns, breadth, volatility, curve, macro, regime) over replayed history.

`compute_features` builds one row per trading session with backward-looking windows only, once;
`features_at` slices it at an as_of into the Features contract.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import polars as pl

from shared.calendar import END_OF_DAY_KNOWN, NEW_YORK, new_york_date
from shared.contracts import BaseRate, Breadth, Features, Regime, SeriesLevel, SymbolReturns
from shared.events import event_rate_columns, event_rates_of, with_event_rates
from shared.sanity import GAP_DAYS, screen_macro, screen_prices
from shared.trusted import M, built

# The broad index is the first of these the data has, per session (documented in the README): the
# S&P 500, else the Dow, else the Nasdaq, else the total market, else the Russell 2000. A fund and
# its index stand together; the fund comes first because a live desk trades it.
BROAD_CANDIDATES = (
    "SPY", "^GSPC", "IVV", "VOO",  # S&P 500
    "DIA", "^DJI",  # Dow Jones Industrial Average
    "QQQ", "^IXIC", "^NDX",  # Nasdaq
    "VTI", "^W5000",  # total market
    "IWM", "^RUT",  # Russell 2000
)  # fmt: skip
TECH_CANDIDATES = ("QQQ", "^IXIC", "^NDX", "XLK")
SMALL_CANDIDATES = ("IWM", "^RUT", "IJR", "^SP600")
# A symbol without a bar on a session of the union calendar shows its last bar up to this old.
CARRY_DAYS = 10
MEGAS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA")
VIX = "^VIX"

CURVE_LONG, CURVE_SHORT = "DGS10", "DGS2"
CPI, CORE_CPI = "CPIAUCSL", "CPILFESL"
FED_FUNDS, UNEMPLOYMENT, WTI = "FEDFUNDS", "UNRATE", "DCOILWTICO"
FEATURE_SERIES = (CURVE_LONG, CURVE_SHORT, CPI, CORE_CPI, FED_FUNDS, UNEMPLOYMENT, WTI)

# A value older than this (since it became known) is stale: the as-of join must not carry a dead
# series forward for ever (the Treasury curve stops on 2017-03-29 in the sample).
DAILY_MAX_AGE = timedelta(days=10)
# Monthly releases come every ~30 days; 70 days means at least two releases were missed.
MONTHLY_MAX_AGE = timedelta(days=70)

TRADING_DAYS = 252
RETURN_WINDOWS = (1, 5, 20)
# Horizons, in sessions, whose point-in-time outcome frequencies (base rates) are kept per symbol;
# a base rate needs this many outcomes before it is quoted.
BASE_RATE_SESSIONS = (1, 2, 5)
BASE_RATE_MIN = 20
VOL_WINDOW = 20

# Breadth thresholds, percent over one session.
FLAT_PCT = 0.25  # |broad r1| at or below this is "flat"
DIVERGENCE_PCT = 0.5  # megas' mean must differ from the broad index by at least this
BROAD_MOVE_PCT = 1.0  # a broad rally / selloff
SMALL_SPREAD_PCT = 0.75  # small caps leading / lagging the broad index

# Regime thresholds. "vol" is VIX when known; otherwise the broad index's 20-session realised vol
# scaled by RV_TO_VIX, because implied vol has historically run about a fifth above realised
# (the variance risk premium), so raw realised vol would understate stress against VIX levels.
RV_TO_VIX = 1.2
CRISIS_VOL = 40.0  # VIX above 40: 2008-09, 2011-08, 2020-03
CRISIS_R20 = -15.0  # or a 15% fall in 20 sessions
RISK_OFF_VOL = 25.0
RISK_OFF_R20 = -6.0
TREND_R20 = 5.0  # |20-session move| with the 5-session move agreeing in sign
RISK_ON_VOL = 18.0

SCALAR_FIELDS = (
    "realized_vol_20d",
    "volume_ratio_20d",
    "vix",
    "vix_change_5d",
    "curve_slope",
    "curve_slope_change_20d",
    "cpi_yoy",
    "core_cpi_yoy",
    "fed_funds",
    "fed_funds_change_6m",
    "unemployment",
    "unemployment_change_3m",
    "oil_r20",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BREADTH_FIELDS = ("broad_r1", "tech_r1", "small_r1", "mega_mean_r1")


def new_york_instant(day: pl.Expr, clock: time) -> pl.Expr:
    """Vectorised shared.calendar.at_new_york: the UTC instant of a New York wall time on a day."""
    return (
        day.dt.combine(pl.time(clock.hour, clock.minute))
        .dt.replace_time_zone(str(NEW_YORK))
        .dt.convert_time_zone("UTC")
    )


def _close(symbol: str) -> str:
    return f"close|{symbol}"


def _ret(window: int, symbol: str) -> str:
    return f"r{window}|{symbol}"


def _base(symbol: str, sessions: int, side: str) -> str:
    return f"base|{symbol}|{sessions}|{side}"


def _pick(candidates: Sequence[str], column: str, exclude: str | None = None) -> pl.Expr:
    """Per row, `column` of the first candidate that traded that session, else of the first with a
    recent bar carried (a weekend row of a coin-and-stock replay), else null.

    Roles are chosen per row, not over the whole file, so that a symbol appearing later in the
    data cannot change what an earlier session looks like, and a broad index that stops part-way
    hands over to the next one in the preference list. `exclude` names a column holding a symbol
    the role must not take (the tech leg is never the broad index itself).
    """
    if not candidates:
        return pl.lit(None, dtype=pl.String if column == "symbol" else pl.Float64)
    expr: Any = pl
    for test in ("on", "carried"):
        for symbol in candidates:
            value = pl.lit(symbol) if column == "symbol" else pl.col(f"{column}|{symbol}")
            cond = pl.col(f"on|{symbol}") if test == "on" else pl.col(_close(symbol)).is_not_null()
            if exclude is not None:
                cond = cond & (pl.col(exclude).fill_null("") != symbol)
            expr = expr.when(cond).then(value)
    result: pl.Expr = expr.otherwise(None)
    return result


def _macro_series(macro: pl.DataFrame, series: str) -> pl.DataFrame:
    """One series' observations [date, value, known_at], by observation date."""
    return macro.filter(pl.col("series") == series).select("date", "value", "known_at").sort("date")


def _change_over(obs: pl.DataFrame, offset: str, relative: bool) -> pl.DataFrame:
    """Each observation's change against the observation `offset` earlier (e.g. "12mo")."""
    earlier = obs.select(
        pl.col("date").dt.offset_by(offset).alias("date"), pl.col("value").alias("earlier")
    )
    joined = obs.join(earlier, on="date", how="left")
    change = (
        (pl.col("value") / pl.col("earlier") - 1.0) * 100.0
        if relative
        else pl.col("value") - pl.col("earlier")
    )
    return joined.select("date", change.alias("value"), "known_at")


def _join_known(
    grid: pl.DataFrame, obs: pl.DataFrame, name: str, max_age: timedelta
) -> pl.DataFrame:
    """As-of join by the moment a value became known, never by its observation date."""
    if obs.is_empty():
        return grid.with_columns(pl.lit(None, dtype=pl.Float64).alias(name))
    # Two observations may become known at once (a revision); the latest observation wins.
    right = (
        obs.drop_nulls("value")
        .sort("known_at", "date")
        .unique("known_at", keep="last", maintain_order=True)
        .select(pl.col("known_at"), pl.col("value").alias(name))
    )
    return grid.join_asof(right, on="known_at", strategy="backward", tolerance=max_age)


def _per_symbol(prices: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's own bars with its returns, volatility and base rates, one row per bar.

    Windows count the symbol's own sessions (a coin trading at weekends, a stock closed on a
    holiday each keep their own calendar) and never span a gap: a bar more than GAP_DAYS after
    the previous one starts a new segment, so the first returns after it are unknown.
    """
    close = pl.col("close")
    seg = ["symbol", "segment"]
    bars = (
        prices.sort("symbol", "date")
        .with_columns(
            ((pl.col("date") - pl.col("date").shift(1)).dt.total_days() > GAP_DAYS)
            .fill_null(False)
            .over("symbol")
            .alias("gap")
        )
        .with_columns(pl.col("gap").cast(pl.Int32).cum_sum().over("symbol").alias("segment"))
    )
    changes = [(close - close.shift(n)).over(seg).alias(f"change{n}") for n in BASE_RATE_SESSIONS]
    bars = bars.with_columns(
        *(
            ((close / close.shift(n) - 1.0) * 100.0).over(seg).alias(f"r{n}")
            for n in RETURN_WINDOWS
        ),
        (
            (close / close.shift(1)).log().rolling_std(VOL_WINDOW, min_samples=VOL_WINDOW)
            * math.sqrt(TRADING_DAYS)
            * 100.0
        )
        .over(seg)
        .alias("rv"),
        (pl.col("volume") / pl.col("volume").rolling_mean(VOL_WINDOW, min_samples=VOL_WINDOW))
        .over(seg)
        .alias("volratio"),
        (close - close.shift(5)).over(seg).alias("d5"),
        *changes,
    )
    rates: list[pl.Expr] = []
    for n in BASE_RATE_SESSIONS:
        change = pl.col(f"change{n}")
        known = change.is_not_null().cast(pl.Int64).cum_sum().over("symbol")
        ups = (change > 0).fill_null(False).cast(pl.Int64).cum_sum().over("symbol")
        downs = (change < 0).fill_null(False).cast(pl.Int64).cum_sum().over("symbol")
        enough = known >= BASE_RATE_MIN
        rates += [
            pl.when(enough).then(ups / known).alias(f"base{n}up"),
            pl.when(enough).then(downs / known).alias(f"base{n}down"),
            pl.when(enough).then(known).alias(f"base{n}n"),
        ]
    # The menu's move events (shared.events), counted on the symbol's own sessions too.
    return with_event_rates(bars.with_columns(rates), seg)


_METRICS = ("close", "volume", "r1", "r5", "r20", "rv", "volratio", "d5")


def _carried(grid: pl.DataFrame, bars: pl.DataFrame, symbols: Sequence[str]) -> pl.DataFrame:
    """Each symbol's last bar at or before every session of the grid, up to CARRY_DAYS old.

    `at|SYM` is the date of the bar carried (equal to the session when the symbol traded that
    day); `on|SYM` says it did.
    """
    frame = grid
    for symbol in symbols:
        part = bars.filter(pl.col("symbol") == symbol).select(
            pl.col("date").alias(f"at|{symbol}"),
            *(pl.col(m).alias(f"{m}|{symbol}") for m in _METRICS),
            *(
                pl.col(f"base{n}{side}").alias(_base(symbol, n, side))
                for n in BASE_RATE_SESSIONS
                for side in ("up", "down", "n")
            ),
            *(pl.col(c).alias(f"{c}|{symbol}") for c in event_rate_columns(symbol)),
        )
        frame = frame.join_asof(
            part,
            left_on="session",
            right_on=f"at|{symbol}",
            strategy="backward",
            tolerance=timedelta(days=CARRY_DAYS),
        ).with_columns(
            (pl.col(f"at|{symbol}") == pl.col("session")).fill_null(False).alias(f"on|{symbol}")
        )
    return frame


def _daily_series(frame: pl.DataFrame, macro: pl.DataFrame) -> pl.DataFrame:
    """Level, 1/5/20-observation changes and change sd of every daily macro series (yields, oil),
    joined by the moment each value became known."""
    if macro.is_empty():
        return frame
    daily = (
        macro.group_by("series")
        .agg(((pl.col("released") == pl.col("date")).mean() >= 0.5).alias("daily"))
        .filter(pl.col("daily"))["series"]
        .sort()
        .to_list()
    )
    for name in daily:
        value = pl.col("value")
        obs = (
            macro.filter(pl.col("series") == name)
            .sort("date")
            .select(
                "known_at",
                value.alias(f"lvl|{name}"),
                *((value - value.shift(n)).alias(f"ld{n}|{name}") for n in RETURN_WINDOWS),
                (value - value.shift(1))
                .rolling_std(VOL_WINDOW, min_samples=VOL_WINDOW)
                .alias(f"lsd|{name}"),
                pl.col("date").alias(f"lat|{name}"),
            )
            .sort("known_at")
            .unique("known_at", keep="last", maintain_order=True)
        )
        frame = frame.join_asof(obs, on="known_at", strategy="backward", tolerance=DAILY_MAX_AGE)
    return frame


def compute_features(
    prices: pl.DataFrame, macro: pl.DataFrame, *, screened: bool = False
) -> pl.DataFrame:
    """One row per session of any symbol present (the union calendar), backward-looking.

    prices and macro are first screened by shared.sanity (unless `screened` says the caller did):
    an implausible value never reaches a feature. Columns: session, known_at
    (end_of_day_known(session), UTC); per symbol close|, volume|, r1|/r5|/r20|, rv| (20-session
    realised vol), volratio|, d5| and base-rate columns of its last bar up to CARRY_DAYS old, at|
    (that bar's date) and on| (it traded this session); lvl|/ld1|/ld5|/ld20|/lsd|/lat| per daily
    macro series; broad/tech/small (the symbol standing for each role that row), the scalar
    feature columns of the Features contract, the breadth columns, breadth_label, regime,
    regime_score.
    """
    if not screened:
        prices, _ = screen_prices(prices)
        macro, _ = screen_macro(macro)
    symbols = sorted(prices["symbol"].unique().to_list())
    broad = [s for s in BROAD_CANDIDATES if s in symbols]
    tech = [s for s in TECH_CANDIDATES if s in symbols]
    small = [s for s in SMALL_CANDIDATES if s in symbols]
    megas = [s for s in MEGAS if s in symbols]

    grid = (
        prices.select(pl.col("date").alias("session"))
        .unique()
        .sort("session")
        .with_columns(new_york_instant(pl.col("session"), END_OF_DAY_KNOWN).alias("known_at"))
    )
    frame = _carried(grid, _per_symbol(prices), symbols)

    vix_close = pl.col(_close(VIX)) if VIX in symbols else pl.lit(None, dtype=pl.Float64)
    vix_d5 = pl.col(f"d5|{VIX}") if VIX in symbols else pl.lit(None, dtype=pl.Float64)
    frame = frame.with_columns(_pick(broad, "symbol").alias("broad"))
    frame = frame.with_columns(
        _pick(tech, "symbol", exclude="broad").alias("tech"),
        _pick(small, "symbol", exclude="broad").alias("small"),
        _pick(broad, "r1").alias("broad_r1"),
        _pick(broad, "r5").alias("broad_r5"),
        _pick(broad, "r20").alias("broad_r20"),
        _pick(tech, "r1", exclude="broad").alias("tech_r1"),
        _pick(small, "r1", exclude="broad").alias("small_r1"),
        _pick(broad, "rv").alias("realized_vol_20d"),
        _pick(broad, "volratio").alias("volume_ratio_20d"),
        vix_close.alias("vix"),
        vix_d5.alias("vix_change_5d"),
    )

    # Breadth compares moves of the same session: a mega-cap that did not trade is not counted.
    mega_r1 = [pl.when(pl.col(f"on|{m}")).then(pl.col(_ret(1, m))) for m in megas]
    if mega_r1:
        frame = frame.with_columns(
            pl.mean_horizontal(mega_r1).alias("mega_mean_r1"),
            pl.sum_horizontal([c > 0 for c in mega_r1]).cast(pl.Int64).alias("mega_up"),
            pl.sum_horizontal([c < 0 for c in mega_r1]).cast(pl.Int64).alias("mega_down"),
            pl.sum_horizontal([c.is_not_null() for c in mega_r1])
            .cast(pl.Int64)
            .alias("mega_count"),
        )
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("mega_mean_r1"),
            *(pl.lit(0, dtype=pl.Int64).alias(c) for c in ("mega_up", "mega_down", "mega_count")),
        )
    frame = frame.with_columns(
        (pl.col("mega_mean_r1") - pl.col("broad_r1")).alias("spread_mega_vs_broad"),
        (pl.col("small_r1") - pl.col("broad_r1")).alias("spread_small_vs_broad"),
    )

    frame = _with_macro(frame, macro)
    frame = _daily_series(frame, macro)
    return _with_labels(frame)


def _with_macro(frame: pl.DataFrame, macro: pl.DataFrame) -> pl.DataFrame:
    long, short = _macro_series(macro, CURVE_LONG), _macro_series(macro, CURVE_SHORT)
    slope = long.join(short, on="date", how="inner", suffix="_short").select(
        "date",
        (pl.col("value") - pl.col("value_short")).alias("value"),
        pl.max_horizontal("known_at", "known_at_short").alias("known_at"),
    )
    cpi, core = _macro_series(macro, CPI), _macro_series(macro, CORE_CPI)
    fed, unrate = _macro_series(macro, FED_FUNDS), _macro_series(macro, UNEMPLOYMENT)
    wti = _macro_series(macro, WTI).with_columns(
        ((pl.col("value") / pl.col("value").shift(20) - 1.0) * 100.0).alias("value")
    )
    joins: list[tuple[pl.DataFrame, str, timedelta]] = [
        (slope, "curve_slope", DAILY_MAX_AGE),
        (_change_over(cpi, "12mo", relative=True), "cpi_yoy", MONTHLY_MAX_AGE),
        (_change_over(core, "12mo", relative=True), "core_cpi_yoy", MONTHLY_MAX_AGE),
        (fed, "fed_funds", MONTHLY_MAX_AGE),
        (_change_over(fed, "6mo", relative=False), "fed_funds_change_6m", MONTHLY_MAX_AGE),
        (unrate, "unemployment", MONTHLY_MAX_AGE),
        (_change_over(unrate, "3mo", relative=False), "unemployment_change_3m", MONTHLY_MAX_AGE),
        (wti, "oil_r20", DAILY_MAX_AGE),
    ]
    for obs, name, max_age in joins:
        frame = _join_known(frame, obs, name, max_age)
    return frame.with_columns(
        (pl.col("curve_slope") - pl.col("curve_slope").shift(20)).alias("curve_slope_change_20d")
    )


def _with_labels(frame: pl.DataFrame) -> pl.DataFrame:
    """Breadth and regime labels, classified once per row in plain Python (a few ms in all)."""
    cols = ("broad_r1", "mega_mean_r1", "mega_up", "mega_down", "mega_count", "small_r1")
    breadth = [classify_breadth(**row) for row in frame.select(cols).iter_rows(named=True)]
    regime_cols = (
        "vix",
        "realized_vol_20d",
        pl.col("broad_r5").alias("r5"),
        pl.col("broad_r20").alias("r20"),
    )
    regimes = [classify_regime(**row) for row in frame.select(regime_cols).iter_rows(named=True)]
    return frame.with_columns(
        pl.Series("breadth_label", breadth, dtype=pl.String),
        pl.Series("regime", [r for r, _ in regimes], dtype=pl.String),
        pl.Series("regime_score", [s for _, s in regimes], dtype=pl.Float64),
    )


def classify_breadth(
    *,
    broad_r1: float | None,
    mega_mean_r1: float | None,
    mega_up: int,
    mega_down: int,
    mega_count: int,
    small_r1: float | None,
) -> str:
    """Name the session's breadth pattern; mega-cap divergences first, as the seeds read them.

    mega_down_index_flat: at least two megas known, more of them down than up, their mean at
    least 0.5 pt below the broad index, and the index flat (|r1| <= 0.25%) or up;
    mega_up_index_flat is the mirror. broad_rally / broad_selloff: the index moved 1% or more with
    small caps (when known) the same way. small_leads / small_lags: small caps 0.75 pt or more
    above / below the index.
    """
    if broad_r1 is None:
        return "unknown"
    spread_mega = mega_mean_r1 - broad_r1 if mega_mean_r1 is not None else None
    if mega_count >= 2 and spread_mega is not None:
        if mega_down > mega_up and spread_mega <= -DIVERGENCE_PCT and broad_r1 >= -FLAT_PCT:
            return "mega_down_index_flat"
        if mega_up > mega_down and spread_mega >= DIVERGENCE_PCT and broad_r1 <= FLAT_PCT:
            return "mega_up_index_flat"
    if broad_r1 >= BROAD_MOVE_PCT and (small_r1 is None or small_r1 > 0):
        return "broad_rally"
    if broad_r1 <= -BROAD_MOVE_PCT and (small_r1 is None or small_r1 < 0):
        return "broad_selloff"
    if small_r1 is not None:
        if small_r1 - broad_r1 >= SMALL_SPREAD_PCT:
            return "small_leads"
        if small_r1 - broad_r1 <= -SMALL_SPREAD_PCT:
            return "small_lags"
    return "mixed"


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def classify_regime(
    *,
    vix: float | None,
    realized_vol_20d: float | None,
    r5: float | None,
    r20: float | None,
) -> tuple[Regime, float]:
    """Label the market regime with a score in [0, 1] for how deep inside the label it sits.

    vol = VIX, else realised vol x RV_TO_VIX. In order: crisis (vol >= 40 or r20 <= -15%);
    risk_off (vol >= 25 or r20 <= -6%); trending (|r20| >= 5% and r5 of the same sign); risk_on
    (vol < 18 and r20 >= 0); chop otherwise. Scores start at 0.5 on a threshold and grow with the
    distance past it; chop scores highest midway between calm and stress. Without any volatility
    measure the label rests on returns alone and its score is halved; with nothing, "unknown".
    """
    vol = (
        vix
        if vix is not None
        else (realized_vol_20d * RV_TO_VIX if realized_vol_20d is not None else None)
    )
    if vol is None and r20 is None:
        return "unknown", 0.0
    label: Regime
    score: float
    if (vol is not None and vol >= CRISIS_VOL) or (r20 is not None and r20 <= CRISIS_R20):
        by_vol = (vol - CRISIS_VOL) / CRISIS_VOL if vol is not None else -1.0
        by_ret = (CRISIS_R20 - r20) / -CRISIS_R20 if r20 is not None else -1.0
        label, score = "crisis", 0.5 + max(by_vol, by_ret)
    elif (vol is not None and vol >= RISK_OFF_VOL) or (r20 is not None and r20 <= RISK_OFF_R20):
        by_vol = (vol - RISK_OFF_VOL) / (CRISIS_VOL - RISK_OFF_VOL) if vol is not None else -1.0
        by_ret = (RISK_OFF_R20 - r20) / (RISK_OFF_R20 - CRISIS_R20) if r20 is not None else -1.0
        label, score = "risk_off", 0.5 + 0.5 * max(by_vol, by_ret)
    elif r20 is not None and r5 is not None and abs(r20) >= TREND_R20 and r5 * r20 > 0:
        label, score = "trending", 0.5 + (abs(r20) - TREND_R20) / (2 * TREND_R20)
    elif vol is not None and vol < RISK_ON_VOL and (r20 is None or r20 >= 0):
        label, score = "risk_on", 0.5 + (RISK_ON_VOL - vol) / RISK_ON_VOL
    else:
        if vol is None:
            distance = 1.0 - abs(r20 or 0.0) / TREND_R20
        else:
            mid = (RISK_ON_VOL + RISK_OFF_VOL) / 2
            distance = 1.0 - abs(vol - mid) / (RISK_OFF_VOL - mid)
        label, score = "chop", 0.3 + 0.4 * _clamp(distance)
    if vol is None:
        score /= 2
    return label, round(_clamp(score), 3)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


@lru_cache(maxsize=16)
def _layout(columns: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The symbols and the macro series of a frame's columns (the same for every row of it)."""
    symbols = tuple(key[len("close|") :] for key in columns if key.startswith("close|"))
    return symbols, tuple(key[len("lvl|") :] for key in columns if key.startswith("lvl|"))


def features_from_row(
    row: Mapping[str, Any], as_of: datetime, *, validate: bool = False
) -> Features:
    """The Features contract for one row of compute_features' frame (a dict from frame.row).

    The row is this process's own computation over a validated replay or history, so the
    contract is built without validating it again (shared.trusted; a cycle builds one with a
    few dozen nested parts); validate builds it through validation, as tests compare."""
    make = _validated if validate else _trusted
    symbols, series = _layout(tuple(row))
    returns: dict[str, SymbolReturns] = {}
    last_close: dict[str, float] = {}
    base_rates: dict[str, BaseRate] = {}
    for symbol in symbols:
        close = row[_close(symbol)]
        if close is not None:
            last_close[symbol] = float(close)
            returns[symbol] = make(
                SymbolReturns,
                {
                    "r1": _opt(row[_ret(1, symbol)]),
                    "r5": _opt(row[_ret(5, symbol)]),
                    "r20": _opt(row[_ret(20, symbol)]),
                    "vol20": _opt(row.get(f"rv|{symbol}")),
                    "session": row.get(f"at|{symbol}"),
                },
            )
        for n in BASE_RATE_SESSIONS:
            up = row.get(_base(symbol, n, "up"))
            if up is not None:
                base_rates[f"{symbol}|{n}"] = make(
                    BaseRate,
                    {
                        "up": float(up),
                        "down": float(row[_base(symbol, n, "down")]),
                        "n": int(row[_base(symbol, n, "n")]),
                    },
                )
    levels = {
        name: make(
            SeriesLevel,
            {
                "value": float(value),
                "d1": _opt(row.get(f"ld1|{name}")),
                "d5": _opt(row.get(f"ld5|{name}")),
                "d20": _opt(row.get(f"ld20|{name}")),
                "sd20": _opt(row.get(f"lsd|{name}")),
                "observed": row[f"lat|{name}"],
            },
        )
        for name in series
        if (value := row[f"lvl|{name}"]) is not None
    }
    breadth = make(
        Breadth,
        {
            "broad_r1": _opt(row["broad_r1"]),
            "tech_r1": _opt(row["tech_r1"]),
            "small_r1": _opt(row["small_r1"]),
            "mega_mean_r1": _opt(row["mega_mean_r1"]),
            "mega_up": int(row["mega_up"] or 0),
            "mega_down": int(row["mega_down"] or 0),
            "mega_count": int(row["mega_count"] or 0),
            "spread_mega_vs_broad": _opt(row["spread_mega_vs_broad"]),
            "spread_small_vs_broad": _opt(row["spread_small_vs_broad"]),
            "label": str(row["breadth_label"]),
        },
    )
    scalars = {name: _opt(row[name]) for name in SCALAR_FIELDS}
    unknown = [name for name, value in scalars.items() if value is None]
    unknown += [f"breadth.{name}" for name in BREADTH_FIELDS if row[name] is None]
    unknown += [role for role in ("broad", "tech", "small") if row[role] is None]
    if row["regime"] == "unknown":
        unknown.append("regime")
    given = {
        "as_of": as_of,
        "session": row["session"],
        "broad": row["broad"],
        "tech": row["tech"],
        "small": row["small"],
        "megas": tuple(m for m in MEGAS if row.get(_close(m)) is not None),
        "returns": returns,
        "last_close": last_close,
        "breadth": breadth,
        "regime": row["regime"],
        "regime_score": float(row["regime_score"]),
        "unknown": tuple(unknown),
        "base_rates": base_rates,
        "levels": levels,
        "event_rates": event_rates_of(row, symbols),  # floats already
        **scalars,
    }
    if validate:
        return Features(**given)
    # Every field in field order; news (not given) left at its default, as validation leaves it.
    return built(Features, {name: given.get(name) for name in _FEATURE_FIELDS}, given)


_FEATURE_FIELDS = tuple(Features.model_fields)
# A trusted build leaves out no field that has a default other than None (news is the one left).
assert all(
    Features.model_fields[name].default is None
    for name in _FEATURE_FIELDS
    if name not in {"as_of", "session", "broad", "tech", "small", "megas", "returns", "last_close",
                    "breadth", "regime", "regime_score", "unknown", "base_rates", "levels",
                    "event_rates", *SCALAR_FIELDS}
)  # fmt: skip


def _validated(cls: type[M], values: dict[str, Any]) -> M:
    return cls(**values)


def _trusted(cls: type[M], values: dict[str, Any]) -> M:
    return built(cls, values)


def row_index_at(frame: pl.DataFrame, as_of: datetime) -> int | None:
    """Index of the last row whose end-of-day time is at or before as_of (binary search)."""
    # Bisecting the integer microseconds costs ~30 us; polars' search_sorted on a datetime scalar
    # costs ~300 us per call, too much for a backtest calling this thousands of times.
    known = frame["known_at"].dt.cast_time_unit("us").to_physical()
    index = bisect_right(known, (as_of - _EPOCH) // timedelta(microseconds=1)) - 1
    return index if index >= 0 else None


def features_at(frame: pl.DataFrame, as_of: datetime) -> Features | None:
    """The Features of the last session known at as_of; None when no session is known yet."""
    index = row_index_at(frame, as_of)
    if index is None:
        return None
    return features_from_row(frame.row(index, named=True), as_of)


def empty_features(as_of: datetime, missing: Iterable[str] = ("history",)) -> Features:
    """Features with every value unknown, for an as_of before any session of the data."""
    return Features(
        as_of=as_of,
        session=new_york_date(as_of),
        unknown=(*missing, *SCALAR_FIELDS, "regime"),
    )
