"""The offline market port: recorded real history replayed point-in-time.

`load_replay` reads and validates a replay directory into polars frames; `ReplayMarket` answers the
MarketData port from them, letting in only what was known at each as_of.
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from shared.calendar import END_OF_DAY_KNOWN, MONTHLY_RELEASE, NEW_YORK, SESSION_CLOSE
from shared.contracts import (
    CycleTrigger,
    DataFlag,
    Features,
    FeedHealth,
    HealthStatus,
    MacroValue,
    NewsItem,
    Quote,
    Snapshot,
)
from shared.errors import BadInputError, ReplayFormatError
from shared.features import (
    BROAD_CANDIDATES,
    DAILY_MAX_AGE,
    FEATURE_SERIES,
    MONTHLY_MAX_AGE,
    VIX,
    compute_features,
    empty_features,
    features_from_row,
    new_york_instant,
)
from shared.news import news_block
from shared.sanity import GAP_DAYS, Finding, screen_macro, screen_prices

PRICES_FILE, MACRO_FILE, NEWS_FILE = "prices.csv", "macro.csv", "news.csv"
PRICES_HEADER = ("date", "symbol", "open", "high", "low", "close", "volume")
MACRO_HEADER = ("date", "series", "value", "released")
NEWS_HEADER = ("published_at", "source", "title", "summary", "url")

NEWS_WINDOW = timedelta(hours=72)
# Newest headlines first; a cap keeps a snapshot message small when a replay carries a busy wire.
MAX_NEWS = 100
STALE_SESSIONS = 5
# Daily bars older than this are stale even when the data has no newer session at all (an as_of
# after the end of the recording).
STALE_BAR_AGE = timedelta(days=10)
# A sanity finding (a value set aside, a gap) is flagged in the cycles this long after it became
# known: a daily bar's for ten days, a monthly release's until the next one is overdue.
FINDING_WINDOW_DAILY = timedelta(days=10)
FINDING_WINDOW_MONTHLY = timedelta(days=70)

# Feature rows are turned into Python values this many at a time (see ReplayMarket._rows_from).
ROW_BLOCK = 64
ROW_CACHE_BLOCKS = 4
# Quotes and macro values kept for reuse (see ReplayMarket.__init__): a few sessions' worth.
CACHED_VALUES = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_KNOWN_AT = pl.Datetime("us", "UTC")


def sample_data_dir() -> Path:
    """The replay development set shipped inside the package (works in a fresh clone)."""
    return Path(__file__).resolve().parent.parent / "data" / "replay-dev"


@dataclass(frozen=True)
class ReplayData:
    """A validated replay directory, as polars frames sorted by time.

    prices: date, symbol, open, high, low, close, volume, known_at (UTC).
    macro: date, series, value, released, known_at (UTC).
    news: published_at (UTC), source, title, summary, url (possibly empty).
    """

    directory: Path
    prices: pl.DataFrame
    macro: pl.DataFrame
    news: pl.DataFrame
    has_news_file: bool


# --- loading -------------------------------------------------------------------------------------


def load_replay(directory: Path) -> ReplayData:
    """Read and validate prices.csv, macro.csv and the optional news.csv of a replay directory.

    Raises: ReplayFormatError naming the file, the 1-based line (header = line 1) and the problem.
    """
    directory = Path(directory)
    prices = _load_prices(directory / PRICES_FILE)
    macro = _load_macro(directory / MACRO_FILE)
    news_path = directory / NEWS_FILE
    has_news = news_path.exists()
    news = _load_news(news_path) if has_news else _empty_news()
    return ReplayData(
        directory=directory, prices=prices, macro=macro, news=news, has_news_file=has_news
    )


def _read_text(path: Path, header: Sequence[str]) -> str:
    if not path.is_file():
        raise ReplayFormatError(str(path), None, f"required file {path.name} is missing")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ReplayFormatError(str(path), line, "not valid UTF-8") from exc
    first = text.split("\n", 1)[0]
    expected = ",".join(header)
    if first != expected:
        hint = " (CRLF line ends?)" if first.rstrip("\r") == expected else ""
        raise ReplayFormatError(
            str(path), 1, f"header must be exactly {expected!r}, got {first[:200]!r}{hint}"
        )
    return text


def _check_columns(path: Path, text: str, width: int) -> None:
    """Every data line has `width` fields; vectorised on comma counts, csv only to confirm."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    commas = pl.Series(lines, dtype=pl.String).str.count_matches(",", literal=True)
    suspects = (commas != width - 1).arg_true().to_list()
    for index in suspects:
        # A quoted comma is legal CSV: only the csv module can say how many fields there are.
        fields = next(csv.reader([lines[index]]), [])
        if len(fields) != width:
            raise ReplayFormatError(
                str(path), index + 1, f"expected {width} columns, got {len(fields)}"
            )


def _read_frame(path: Path, text: str, header: Sequence[str]) -> pl.DataFrame:
    _check_columns(path, text, len(header))
    try:
        return pl.read_csv(
            io.StringIO(text),
            schema=dict.fromkeys(header, pl.String),
            has_header=True,
        )
    except pl.exceptions.PolarsError as exc:
        raise ReplayFormatError(
            str(path), _first_bad_csv_line(text, len(header)), f"unreadable CSV: {exc}"
        ) from exc


def _first_bad_csv_line(text: str, width: int) -> int | None:
    """Slow path, only when polars refuses a file: where the csv module sees a broken record."""
    reader = csv.reader(io.StringIO(text), strict=True)
    start = 1
    try:
        for fields in reader:
            if len(fields) != width:
                return start
            start = reader.line_num + 1
    except csv.Error:
        return start
    return None


class _Checks:
    """Collects vectorised row checks and raises for the earliest offending line of the file."""

    def __init__(self, path: Path, frame: pl.DataFrame) -> None:
        self.path = path
        self.frame = frame.with_row_index("_row")
        self.checks: list[tuple[pl.Expr, pl.Expr]] = []

    def add(self, bad: pl.Expr, message: pl.Expr) -> None:
        self.checks.append((bad, message))

    def raise_first(self) -> None:
        if not self.checks:
            return
        hits = [
            self.frame.filter(bad).select("_row", message.alias("problem")).head(1)
            for bad, message in self.checks
        ]
        found = pl.concat(hits).sort("_row", maintain_order=True)
        if found.height:
            row, problem = found.row(0)
            raise ReplayFormatError(str(self.path), int(row) + 2, str(problem))


def _raw(name: str) -> pl.Expr:
    return pl.col(name).fill_null("")


def _shown(name: str) -> pl.Expr:
    return pl.format("got {}", _raw(name).str.slice(0, 40))


def _parse_date(checks: _Checks, name: str) -> pl.Expr:
    parsed = pl.col(name).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    checks.add(
        parsed.is_null(),
        pl.concat_str(pl.lit(f"{name} must be a date YYYY-MM-DD, "), _shown(name)),
    )
    return parsed


def _parse_number(checks: _Checks, name: str, *, required: bool) -> pl.Expr:
    parsed = pl.col(name).cast(pl.Float64, strict=False)
    present = pl.col(name).is_not_null() & (pl.col(name) != "")
    checks.add(
        present & (parsed.is_null() | parsed.is_nan() | parsed.is_infinite()),
        pl.concat_str(pl.lit(f"{name} must be a number, "), _shown(name)),
    )
    if required:
        checks.add(~present, pl.lit(f"{name} is missing"))
    return parsed


def _require_text(checks: _Checks, name: str) -> None:
    checks.add(_raw(name).str.strip_chars() == "", pl.lit(f"{name} is missing"))


def _load_prices(path: Path) -> pl.DataFrame:
    raw = _read_frame(path, _read_text(path, PRICES_HEADER), PRICES_HEADER)
    checks = _Checks(path, raw)
    day = _parse_date(checks, "date")
    _require_text(checks, "symbol")
    numbers = {
        name: _parse_number(checks, name, required=name == "close")
        for name in ("open", "high", "low", "close", "volume")
    }
    checks.raise_first()
    typed = raw.select(day.alias("date"), "symbol", *(e.alias(n) for n, e in numbers.items()))
    # The raw text rides along so that a message quotes the cell as written ("-3", not "-3.0").
    checks = _Checks(path, typed.hstack(raw.select(pl.all().name.prefix("raw_"))))
    for name in ("open", "high", "low", "close"):
        checks.add(
            pl.col(name) <= 0,
            pl.format(f"{name} must be positive, got {{}}", pl.col(f"raw_{name}")),
        )
    checks.add(
        pl.col("volume") < 0,
        pl.format("volume must not be negative, got {}", pl.col("raw_volume")),
    )
    checks.add(
        ~pl.struct("date", "symbol").is_first_distinct(),
        pl.format("duplicate bar for {} on {}", pl.col("symbol"), pl.col("date")),
    )
    checks.raise_first()
    return typed.with_columns(
        new_york_instant(pl.col("date"), END_OF_DAY_KNOWN).alias("known_at")
    ).sort("date", "symbol")


def _load_macro(path: Path) -> pl.DataFrame:
    raw = _read_frame(path, _read_text(path, MACRO_HEADER), MACRO_HEADER)
    checks = _Checks(path, raw)
    day = _parse_date(checks, "date")
    released = _parse_date(checks, "released")
    _require_text(checks, "series")
    value = _parse_number(checks, "value", required=True)
    checks.raise_first()
    typed = raw.select(
        day.alias("date"), "series", value.alias("value"), released.alias("released")
    )
    checks = _Checks(path, typed)
    checks.add(
        pl.col("released") < pl.col("date"),
        pl.format("released {} is before its date {}", pl.col("released"), pl.col("date")),
    )
    checks.add(
        ~pl.struct("date", "series").is_first_distinct(),
        pl.format("duplicate value for {} on {}", pl.col("series"), pl.col("date")),
    )
    checks.raise_first()
    # A daily fixing (released on its own date) is known after that day's close; a monthly release
    # at 08:30 New York on its release date.
    known_at = (
        pl.when(pl.col("released") == pl.col("date"))
        .then(new_york_instant(pl.col("released"), END_OF_DAY_KNOWN))
        .otherwise(new_york_instant(pl.col("released"), MONTHLY_RELEASE))
    )
    return typed.with_columns(known_at.alias("known_at")).sort("date", "series")


def _empty_news() -> pl.DataFrame:
    schema: dict[str, Any] = {"published_at": _KNOWN_AT}
    schema.update(dict.fromkeys(NEWS_HEADER[1:], pl.String))
    return pl.DataFrame(schema=schema)


def _load_news(path: Path) -> pl.DataFrame:
    """News is free text (quoted commas, newlines): the csv module reads it record by record."""
    text = _read_text(path, NEWS_HEADER)
    reader = csv.reader(io.StringIO(text), strict=True)
    rows: list[tuple[datetime, str, str, str, str]] = []
    start = 1
    try:
        next(reader)
        start = reader.line_num + 1
        for fields in reader:
            if len(fields) != len(NEWS_HEADER):
                raise ReplayFormatError(
                    str(path), start, f"expected {len(NEWS_HEADER)} columns, got {len(fields)}"
                )
            stamp, source, title, summary, url = fields
            try:
                published = datetime.fromisoformat(stamp)
            except ValueError:
                raise ReplayFormatError(
                    str(path), start, f"published_at must be ISO-8601, got {stamp[:40]!r}"
                ) from None
            if published.tzinfo is None:
                raise ReplayFormatError(
                    str(path), start, f"published_at has no timezone offset: {stamp[:40]!r}"
                )
            if not title.strip():
                raise ReplayFormatError(str(path), start, "title is missing")
            rows.append((published.astimezone(UTC), source, title, summary, url))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ReplayFormatError(str(path), start, f"unreadable CSV: {exc}") from exc
    if not rows:
        return _empty_news()
    return pl.DataFrame(rows, schema=_empty_news().schema, orient="row").sort("published_at")


# --- the port ------------------------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _micros_delta(span: timedelta) -> int:
    return span // _US


def _instant(micros: int) -> datetime:
    return _EPOCH + micros * _US


def _day(days: int) -> date:
    return _EPOCH.date() + timedelta(days=days)


def _micros_list(series: pl.Series) -> list[int]:
    return list(series.dt.epoch("us").to_list())


@dataclass(frozen=True)
class _Bars:
    """One symbol's bars as Python lists, in session order, for bisecting."""

    dates: list[date]
    known: list[int]
    closes_at: list[int]
    close: list[float]
    volume: list[float | None]
    known_at: list[datetime]
    gap_before: list[bool]


@dataclass(frozen=True)
class _Series:
    """One macro series ordered by the moment values became known.

    latest[i] is the observation with the latest date among the first i+1 known, so a late
    revision of an old month never hides the newest month.
    """

    daily: bool
    known: list[int]
    latest: list[int]
    # Kept as epoch days and microseconds: building 55k Python dates and datetimes up front
    # would triple the start-up cost for values a snapshot reads one at a time.
    days: list[int]
    values: list[float]
    known_at: list[int]


class ReplayMarket:
    """MarketData over a ReplayData: what a desk would have known at each moment, no later."""

    def __init__(self, data: ReplayData) -> None:
        self.data = data
        # Values no market could have printed are set aside once, here: quotes, features and
        # settlement all read the screened frames; the findings become flags in later cycles.
        self._prices, price_findings = screen_prices(data.prices)
        self._macro_frame, macro_findings = screen_macro(data.macro)
        self.findings: tuple[Finding, ...] = tuple(
            sorted(price_findings + macro_findings, key=lambda f: (f.known_at, f.subject))
        )
        self._finding_known = [_micros(f.known_at) for f in self.findings]
        self._bars = self._index_bars(self._prices)
        self._series = self._index_macro(self._macro_frame)
        self._series_names = sorted(set(self._series) | set(FEATURE_SERIES))
        # The calendar is the union of every symbol's sessions: no symbol's absence (the S&P
        # missing, or stopping part-way) truncates a replay.
        days = sorted({d for bars in self._bars.values() for d in bars.dates})
        self._sessions = days
        self._session_known = _micros_list(
            pl.Series(days, dtype=pl.Date)
            .to_frame("d")
            .select(new_york_instant(pl.col("d"), END_OF_DAY_KNOWN))["d"]
        )
        self._news_known = _micros_list(data.news["published_at"])
        self._news_rows = data.news.rows(named=True)
        self._frame: pl.DataFrame | None = None
        self._frame_known: list[int] = []
        self._rows: dict[int, dict[str, Any]] = {}
        # A bar's Quote and a release's MacroValue are the same every cycle that reads them
        # (a snapshot reads each symbol's last bar, a settlement its first after maturity): built
        # once, the most recent kept.
        self._quote_of: dict[tuple[str, int], Quote] = {}
        self._macro_of: dict[tuple[str, int], MacroValue] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_directory(cls, directory: Path | None = None) -> ReplayMarket:
        """Load a replay directory (default: the shipped sample). Raises ReplayFormatError."""
        return cls(load_replay(directory or sample_data_dir()))

    @staticmethod
    def _index_bars(prices: pl.DataFrame) -> dict[str, _Bars]:
        ordered = prices.sort("symbol", "date").with_columns(
            pl.col("known_at").dt.epoch("us").alias("known_us"),
            new_york_instant(pl.col("date"), SESSION_CLOSE).dt.epoch("us").alias("close_us"),
        )
        bars: dict[str, _Bars] = {}
        for (symbol,), part in ordered.partition_by("symbol", as_dict=True).items():
            dates = part["date"].to_list()
            gaps = [False] + [(b - a).days > GAP_DAYS for a, b in itertools.pairwise(dates)]
            bars[str(symbol)] = _Bars(
                dates=dates,
                known=part["known_us"].to_list(),
                closes_at=part["close_us"].to_list(),
                close=part["close"].to_list(),
                volume=part["volume"].to_list(),
                known_at=part["known_at"].to_list(),
                gap_before=gaps,
            )
        return bars

    @staticmethod
    def _index_macro(macro: pl.DataFrame) -> dict[str, _Series]:
        ordered = macro.sort("series", "date").with_columns(
            pl.int_range(pl.len()).over("series").alias("rank")
        )
        out: dict[str, _Series] = {}
        for (name,), part in ordered.partition_by("series", as_dict=True).items():
            by_known = part.sort("known_at", "date", maintain_order=True)
            out[str(name)] = _Series(
                daily=(part["released"] == part["date"]).sum() * 2 >= part.height,
                known=_micros_list(by_known["known_at"]),
                latest=by_known["rank"].cum_max().to_list(),
                days=part["date"].to_physical().to_list(),
                values=part["value"].to_list(),
                known_at=_micros_list(part["known_at"]),
            )
        return out

    # --- snapshot --------------------------------------------------------------------------------

    def snapshot(self, trigger: CycleTrigger) -> Snapshot:
        """Everything known at trigger.as_of: quotes, macro, news, feed health and data flags."""
        as_of = trigger.as_of.astimezone(UTC)
        now = _micros(as_of)
        price_flags: list[DataFlag] = []
        macro_flags: list[DataFlag] = []
        news_flags: list[DataFlag] = []
        quotes = self._quotes(as_of, now, price_flags)
        price_flags += self._broad_flags(now)
        price_flags += self._range_flags(as_of, now)
        price_flags += self._finding_flags(now)
        macro = self._macro(as_of, now, macro_flags)
        news, news_health = self._news(as_of, now, news_flags)
        health = (
            _health("replay.prices", "symbols", quotes, len(price_flags)),
            _health("replay.macro", "series", macro, len(macro_flags)),
            news_health,
        )
        flags = price_flags + macro_flags + news_flags
        return Snapshot(
            cycle_key=trigger.cycle_key,
            as_of=as_of,
            mode="replay",
            quotes=tuple(quotes),
            macro=tuple(macro),
            news=tuple(news),
            health=health,
            flags=tuple(flags),
        )

    def _quotes(self, as_of: datetime, now: int, flags: list[DataFlag]) -> list[Quote]:
        known_sessions = bisect_right(self._session_known, now)
        # A symbol with no bar in the last five sessions of the data known at as_of is stale.
        cutoff = self._sessions[max(0, known_sessions - STALE_SESSIONS)] if known_sessions else None
        quotes: list[Quote] = []
        for symbol, bars in sorted(self._bars.items()):
            i = bisect_right(bars.known, now) - 1
            if i < 0:
                continue
            last = bars.dates[i]
            age = as_of - bars.known_at[i]
            if (cutoff is not None and last < cutoff) or age > STALE_BAR_AGE:
                flags.append(
                    DataFlag(
                        code="stale_series",
                        subject=symbol,
                        detail=f"{symbol}: last bar {last.isoformat()} is {age.days} days old"
                        f" (no bar in the last {STALE_SESSIONS} sessions); left out",
                    )
                )
                continue
            quotes.append(self._quote(symbol, bars, i))
        known = {s for s, b in self._bars.items() if b.known and b.known[0] <= now}
        if VIX not in known:
            flags.append(
                DataFlag(
                    code="missing_series",
                    subject=VIX,
                    detail="no VIX level is recorded at this date; volatility comes from "
                    "realised moves only",
                )
            )
        if not known & set(BROAD_CANDIDATES):
            flags.append(
                DataFlag(
                    code="missing_series",
                    subject="broad_index",
                    detail=f"none of {', '.join(BROAD_CANDIDATES)} has a bar at this date",
                )
            )
        return quotes

    def _broad_flags(self, now: int) -> list[DataFlag]:
        """Says so when the broad index in use is not the first of the preference list the data
        has had: the S&P stopped (or missed the session), and the Dow or the Nasdaq stands in."""
        known_sessions = bisect_right(self._session_known, now)
        if not known_sessions:
            return []
        session = self._sessions[known_sessions - 1]
        last: dict[str, date] = {}
        for symbol in BROAD_CANDIDATES:
            bars = self._bars.get(symbol)
            i = bisect_right(bars.known, now) - 1 if bars else -1
            if bars is not None and i >= 0:
                last[symbol] = bars.dates[i]
        seen = [s for s in BROAD_CANDIDATES if s in last]
        trading = [s for s in seen if last[s] == session]
        if not trading or trading[0] == seen[0]:
            return []
        return [
            DataFlag(
                code="broad_fallback",
                subject="broad_index",
                detail=f"{seen[0]} has no bar since {last[seen[0]].isoformat()}; {trading[0]} "
                f"stands for the broad index (preference: {', '.join(BROAD_CANDIDATES)})",
            )
        ]

    def _range_flags(self, as_of: datetime, now: int) -> list[DataFlag]:
        """Loud flags for an as_of outside the data or on a day that is not one of its sessions:
        the features then describe an earlier session, never 'the session' of that day."""
        if not self._sessions:
            return []
        first, last = self._sessions[0], self._sessions[-1]
        span = f"this replay holds sessions from {first.isoformat()} to {last.isoformat()}"
        day = as_of.astimezone(NEW_YORK).date()
        if day < first:
            return [
                DataFlag(
                    code="out_of_range",
                    subject="as_of",
                    detail=f"as_of {as_of.isoformat()} is before the data: {span}",
                )
            ]
        if day > last + timedelta(days=STALE_BAR_AGE.days):
            return [
                DataFlag(
                    code="out_of_range",
                    subject="as_of",
                    detail=f"as_of {as_of.isoformat()} is after the data: {span}; the latest "
                    f"session is {last.isoformat()}",
                )
            ]
        index = bisect_left(self._sessions, day)
        if (index >= len(self._sessions) or self._sessions[index] != day) and day <= last:
            previous = self._sessions[index - 1] if index > 0 else None
            return [
                DataFlag(
                    code="no_session",
                    subject="as_of",
                    detail=f"{day.isoformat()} is not a session of this data (weekend, holiday "
                    f"or missing); the latest session is "
                    f"{previous.isoformat() if previous else 'none'}",
                )
            ]
        return []

    def _finding_flags(self, now: int) -> list[DataFlag]:
        """Sanity findings that became known recently: values set aside, gaps, new levels."""
        hi = bisect_right(self._finding_known, now)
        lo = bisect_right(self._finding_known, now - _micros_delta(FINDING_WINDOW_MONTHLY))
        daily_from = now - _micros_delta(FINDING_WINDOW_DAILY)
        flags = []
        for finding, known in zip(self.findings[lo:hi], self._finding_known[lo:hi], strict=True):
            series = self._series.get(finding.subject)
            monthly = series is not None and not series.daily
            if monthly or known > daily_from:
                flags.append(
                    DataFlag(code=finding.code, subject=finding.subject, detail=finding.detail)
                )
        return flags

    def require_sessions(self, start: date, end: date) -> list[date]:
        """sessions(start, end), refusing a range with none with an error naming the data's.

        Raises: BadInputError.
        """
        days = self.sessions(start, end)
        if not days:
            span = (
                f"{self._sessions[0].isoformat()} to {self._sessions[-1].isoformat()}"
                if self._sessions
                else "no session at all"
            )
            raise BadInputError(
                f"no session between {start.isoformat()} and {end.isoformat()} in "
                f"{self.data.directory}: its data runs from {span}"
            )
        return days

    def _macro(self, as_of: datetime, now: int, flags: list[DataFlag]) -> list[MacroValue]:
        values: list[MacroValue] = []
        for name in self._series_names:
            series = self._series.get(name)
            i = bisect_right(series.known, now) - 1 if series else -1
            if series is None or i < 0:
                if name in FEATURE_SERIES:
                    flags.append(
                        DataFlag(
                            code="missing_series",
                            subject=name,
                            detail=f"{name} has no value published by this date",
                        )
                    )
                continue
            obs = series.latest[i]
            value = self._macro_of.get((name, obs))
            if value is None:
                released_at, observed = _instant(series.known_at[obs]), _day(series.days[obs])
            else:
                released_at, observed = value.released_at, value.observed
            age = as_of - released_at
            limit = DAILY_MAX_AGE if series.daily else MONTHLY_MAX_AGE
            if age > limit:
                flags.append(
                    DataFlag(
                        code="stale_series",
                        subject=name,
                        detail=f"{name}: last value ({observed.isoformat()}) was "
                        f"published {age.days} days ago, over the {limit.days}-day limit for a "
                        f"{'daily' if series.daily else 'monthly'} series; left out",
                    )
                )
                continue
            if value is None:
                value = MacroValue(
                    series=name,
                    value=series.values[obs],
                    observed=observed,
                    released_at=released_at,
                )
                if len(self._macro_of) >= CACHED_VALUES:
                    self._macro_of = {}
                self._macro_of[(name, obs)] = value
            values.append(value)
        return values

    def _news(
        self, as_of: datetime, now: int, flags: list[DataFlag]
    ) -> tuple[list[NewsItem], FeedHealth]:
        if not self.data.has_news_file:
            flags.append(
                DataFlag(
                    code="no_news",
                    subject="news",
                    detail="this replay carries no news file: no headlines are available",
                )
            )
            return [], FeedHealth(
                source="replay.news", status="empty", detail="no news.csv in the replay directory"
            )
        lo = bisect_right(self._news_known, _micros(as_of - NEWS_WINDOW))
        hi = bisect_right(self._news_known, now)
        rows = self._news_rows[lo:hi][::-1][:MAX_NEWS]
        items = [
            NewsItem(
                published_at=r["published_at"],
                source=r["source"],
                # Headlines are untrusted text; clip to the contract rather than fail the cycle.
                title=r["title"][:500],
                summary=(r["summary"] or "")[:2000],
                url=r["url"] or "",
            )
            for r in rows
        ]
        if not items:
            flags.append(
                DataFlag(
                    code="no_news",
                    subject="news",
                    detail=f"no headline in the {NEWS_WINDOW.total_seconds() / 3600:.0f} hours "
                    "before this moment",
                )
            )
        detail = f"{hi - lo} headlines in window" + (
            f", newest {MAX_NEWS} kept" if hi - lo > MAX_NEWS else ""
        )
        health = FeedHealth(
            source="replay.news",
            status="ok" if items else "empty",
            detail=detail,
            items=len(items),
            newest_at=items[0].published_at if items else None,
        )
        return items, health

    # --- features --------------------------------------------------------------------------------

    def feature_frame(self) -> pl.DataFrame:
        """The features over the whole history, computed once on first use."""
        with self._lock:
            if self._frame is None:
                frame = compute_features(self._prices, self._macro_frame, screened=True)
                self._frame_known = _micros_list(frame["known_at"])
                self._frame = frame
            return self._frame

    def features(self, snapshot: Snapshot) -> Features:
        """Features of the last session whose close was known at snapshot.as_of, with the
        snapshot's headlines scored into the news block."""
        frame = self.feature_frame()
        index = bisect_right(self._frame_known, _micros(snapshot.as_of)) - 1
        news = news_block(snapshot.news, snapshot.as_of)
        if index < 0:
            return empty_features(snapshot.as_of).model_copy(update={"news": news})
        row = self._rows.get(index)
        if row is None:
            row = self._rows_from(frame, index)
        features = features_from_row(row, snapshot.as_of)
        return features.model_copy(update={"news": news}) if news is not None else features

    def _rows_from(self, frame: pl.DataFrame, index: int) -> dict[str, Any]:
        """Index's row, converted with the rest of its block of ROW_BLOCK: polars turns whole
        columns into Python values far faster than one row at a time, and a replay reads its
        sessions in order. Only the last ROW_CACHE_BLOCKS blocks are kept: a row is a dict of
        every feature column (hundreds), and keeping every session a long-running worker ever
        read held tens of megabytes per process for rows it would not read again."""
        start = index - index % ROW_BLOCK
        block = frame.slice(start, ROW_BLOCK).to_dict(as_series=False)
        names, columns = list(block), list(block.values())
        rows = {
            start + offset: dict(zip(names, [c[offset] for c in columns], strict=True))
            for offset in range(len(columns[0]) if columns else 0)
        }
        if len(self._rows) >= ROW_CACHE_BLOCKS * ROW_BLOCK:
            # A new dict, not clear(): another thread may be reading the old one.
            self._rows = {}
        self._rows.update(rows)
        return rows[index]

    # --- settlement and calendar -----------------------------------------------------------------

    def settlement_quote(self, symbol: str, matures_at: datetime, now: datetime) -> Quote | None:
        """The first bar closing at or after matures_at, if it is already known at now."""
        bars = self._bars.get(symbol)
        if bars is None:
            return None
        i = bisect_left(bars.closes_at, _micros(matures_at))
        if i >= len(bars.dates) or bars.known[i] > _micros(now):
            return None
        return self._quote(symbol, bars, i)

    def _quote(self, symbol: str, bars: _Bars, i: int) -> Quote:
        """The quote of the symbol's bar i (Quotes are immutable: one is shared by every reader)."""
        quote = self._quote_of.get((symbol, i))
        if quote is not None:
            return quote
        prev = bars.close[i - 1] if i > 0 and not bars.gap_before[i] else None
        close = bars.close[i]
        quote = Quote(
            symbol=symbol,
            price=close,
            prev_close=prev,
            change_pct=(close / prev - 1.0) * 100.0 if prev else None,
            volume=bars.volume[i],
            session=bars.dates[i],
            observed_at=bars.known_at[i],
        )
        if len(self._quote_of) >= CACHED_VALUES:
            self._quote_of = {}  # a new dict, not clear(): another thread may be reading it
        self._quote_of[(symbol, i)] = quote
        return quote

    def sessions(self, start: date, end: date) -> list[date]:
        """Sessions of any symbol of the data (the union calendar) from start to end inclusive."""
        days = self._sessions
        return days[bisect_left(days, start) : bisect_right(days, end)]


def _health(
    source: str, kind: str, items: Sequence[Quote] | Sequence[MacroValue], left_out: int
) -> FeedHealth:
    newest = max(
        (q.observed_at if isinstance(q, Quote) else q.released_at for q in items), default=None
    )
    status: HealthStatus = "empty" if not items else "partial" if left_out else "ok"
    detail = f"{len(items)} {kind} known" + (f", {left_out} stale or missing" if left_out else "")
    return FeedHealth(
        source=source, status=status, detail=detail, items=len(items), newest_at=newest
    )
