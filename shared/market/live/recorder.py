"""Appends what a live run fetched to a replay directory in the replay format, to replay it later.

Files and order follow the replay README: UTF-8 CSV with a header, `\\n` line ends, sorted by date
then key (code-point order), plain decimals, an empty cell for unknown. A row already there with
the same key is replaced by the newer fetch (a live bar by the day's final bar).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from shared.calendar import end_of_day_known, new_york_date, release_known
from shared.contracts import Bar, MacroValue, NewsItem, SourceResult
from shared.locking import exclusive
from shared.market.replay import (
    MACRO_FILE,
    MACRO_HEADER,
    NEWS_FILE,
    NEWS_HEADER,
    PRICES_FILE,
    PRICES_HEADER,
)

Row = tuple[str, ...]


@dataclass(frozen=True)
class Recorded:
    """How many rows each file holds after a recording."""

    prices: int
    macro: int
    news: int


def plain(number: float | None) -> str:
    """A plain decimal (never an exponent), trailing zeros dropped; '' for unknown."""
    if number is None:
        return ""
    text = format(Decimal(repr(float(number))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def replay_released(value: MacroValue) -> date:
    """The `released` day under which a replay will not know the value before it was public.

    The replay reads a value released on its own date as known at 17:00 New York, any other at
    08:30 on the released day; when that would be earlier than released_at, the next day is used.
    """
    day = new_york_date(value.released_at)
    replay_known = end_of_day_known(day) if day == value.observed else release_known(day)
    if replay_known < value.released_at:
        day += timedelta(days=1)
    return max(day, value.observed)


def bar_row(bar: Bar) -> Row:
    return (
        bar.session.isoformat(),
        bar.symbol,
        plain(bar.open),
        plain(bar.high),
        plain(bar.low),
        plain(bar.close),
        plain(bar.volume),
    )


def macro_row(value: MacroValue) -> Row:
    return (
        value.observed.isoformat(),
        value.series,
        plain(value.value),
        replay_released(value).isoformat(),
    )


def news_row(item: NewsItem) -> Row:
    return (_stamp(item.published_at), item.source, item.title, item.summary, item.url)


def _read(path: Path, header: Sequence[str]) -> list[Row]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return []
    if tuple(rows[0]) != tuple(header):
        raise ValueError(f"{path}: header {rows[0]} is not {list(header)}")
    return [tuple(row) for row in rows[1:] if row]


def _merge(
    path: Path, header: Sequence[str], new: Iterable[Row], key: Callable[[Row], tuple[str, ...]]
) -> int:
    """Existing rows and new ones, one per key (the new one wins), sorted, written atomically."""
    rows = {key(row): row for row in _read(path, header)}
    rows.update((key(row), row) for row in new)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows[k] for k in sorted(rows))
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(buffer.getvalue())
    os.replace(temp, path)
    return len(rows)


def record(directory: Path, results: Sequence[SourceResult]) -> Recorded:
    """Append the bars, macro values and news of a live run's results to a replay directory."""
    directory.mkdir(parents=True, exist_ok=True)
    bars = [bar for result in results for bar in result.bars]
    macro = [value for result in results for value in result.macro]
    news = [item for result in results for item in result.news]
    # One writer at a time: several ingest workers may record into the same directory.
    with exclusive(directory / ".record.lock"):
        prices_count = _merge(
            directory / PRICES_FILE, PRICES_HEADER, map(bar_row, bars), lambda r: (r[0], r[1])
        )
        macro_count = _merge(
            directory / MACRO_FILE, MACRO_HEADER, map(macro_row, macro), lambda r: (r[0], r[1])
        )
        # News has no natural key but its text: the same headline from the same wire is one row.
        news_count = _merge(
            directory / NEWS_FILE, NEWS_HEADER, map(news_row, news), lambda r: (r[0], r[1], r[2])
        )
    return Recorded(prices=prices_count, macro=macro_count, news=news_count)
