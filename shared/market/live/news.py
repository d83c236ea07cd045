"""Headlines from RSS 2.0 and Atom wire feeds, fetched with httpx and parsed by feedparser.

Titles and summaries are untrusted input: markup is stripped and length limited here, and the
minds see them only marked as data. An item without a date is flagged, never given one.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
import httpx
import structlog

from shared.contracts import DataFlag, FeedHealth, HealthStatus, NewsItem, SourceResult
from shared.errors import WorkshopError
from shared.market.live.health import Deadline, bounded, get_with_backoff, unique_flags

log = structlog.get_logger(__name__)

TITLE_LIMIT = 300
SUMMARY_LIMIT = 1000
ITEMS_PER_FEED = 50
# A wire feed whose newest item is older than this has stopped moving.
STALE_AFTER = timedelta(days=2)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "noscript", "iframe"})


class _Text(HTMLParser):
    """The visible text of an HTML fragment; script and style contents are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip += 1
        elif tag in {"br", "p", "div", "li"}:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(markup: str, limit: int) -> str:
    """Markup stripped, entities decoded, whitespace collapsed, cut to limit characters."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    text = " ".join(unescape("".join(parser.parts)).split())
    # Control characters have no business in a headline and can confuse a terminal or a prompt.
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _link(value: object) -> str:
    """An http(s) link without its fragment, or '' for anything else (javascript:, data:)."""
    if not isinstance(value, str):
        return ""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))[:1000]


def _title_key(title: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", title.lower()))


def _link_key(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}" if link else ""


def _published(entry: Any) -> datetime | None:
    """The entry's publication time: feedparser gives a UTC struct_time, or nothing."""
    for key in ("published_parsed", "updated_parsed"):
        stamp = entry.get(key)
        if stamp:
            return datetime.fromtimestamp(calendar.timegm(stamp), tz=UTC)
    return None


@dataclass
class _FeedOutcome:
    source: str
    items: list[NewsItem] = field(default_factory=list)
    flags: list[DataFlag] = field(default_factory=list)
    failed: bool = False
    garbled: bool = False
    stale: bool = False


class RssNews:
    """The `news` source: deduplicated headlines of the configured feeds, none after as_of."""

    name = "news"

    def __init__(
        self,
        feeds: Sequence[str],
        *,
        timeout_s: float = 20.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        user_agent: str = "workshop-desk/0.1 (news reader)",
    ) -> None:
        self.feeds = tuple(dict.fromkeys(feeds))
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.user_agent = user_agent

    def fetch(self, as_of: datetime) -> SourceResult:
        """Headlines published by as_of; never raises for a dead, slow or garbled feed."""
        return bounded(self.name, self.timeout_s, lambda: self._fetch(as_of))

    def _fetch(self, as_of: datetime) -> SourceResult:
        deadline = Deadline(self.timeout_s)
        headers = {"User-Agent": self.user_agent}
        outcomes: list[_FeedOutcome] = []
        with httpx.Client(follow_redirects=True, headers=headers) as client:
            for url in self.feeds:
                outcomes.append(self._feed(client, url, as_of, deadline))
        items = _dedupe(item for outcome in outcomes for item in outcome.items)
        flags = [flag for outcome in outcomes for flag in outcome.flags]
        failed = [o.source for o in outcomes if o.failed]
        garbled = [o.source for o in outcomes if o.garbled]
        stale = [o.source for o in outcomes if o.stale]
        status: HealthStatus = "ok"
        if failed and len(failed) == len(outcomes):
            status = "error"
        elif failed or garbled:
            status = "partial"
        elif not items:
            status = "empty"
        elif stale:
            status = "stale"
        detail = f"{len(outcomes) - len(failed)}/{len(outcomes)} feeds, {len(items)} items"
        for label, names in (("failed", failed), ("garbled", garbled), ("stale", stale)):
            if names:
                detail += f"; {label} {', '.join(names)}"
        health = FeedHealth(
            source=self.name,
            status=status,
            detail=detail[:500],
            items=len(items),
            newest_at=max((i.published_at for i in items), default=None),
        )
        return SourceResult(
            source=self.name, health=health, news=tuple(items), flags=unique_flags(flags)
        )

    def _feed(
        self, client: httpx.Client, url: str, as_of: datetime, deadline: Deadline
    ) -> _FeedOutcome:
        outcome = _FeedOutcome(source=urlsplit(url).netloc or url[:60])
        try:
            response = get_with_backoff(
                client, url, deadline=deadline, attempts=self.attempts, backoff_s=self.backoff_s
            )
        except WorkshopError as exc:
            outcome.failed = True
            outcome.flags.append(
                DataFlag(code="feed_error", subject=outcome.source, detail=str(exc))
            )
            return outcome
        if not response.content.strip():
            outcome.failed = True
            outcome.flags.append(
                DataFlag(code="feed_error", subject=outcome.source, detail="empty body")
            )
            return outcome
        parsed = feedparser.parse(response.content)
        entries = list(parsed.entries)
        if not parsed.get("version") and not entries:
            outcome.failed = True
            outcome.flags.append(
                DataFlag(
                    code="garbled_feed",
                    subject=outcome.source,
                    detail=f"not an RSS or Atom document: {response.content[:60]!r}",
                )
            )
            return outcome
        if parsed.get("bozo"):
            reason = parsed.get("bozo_exception")
            outcome.garbled = True
            outcome.flags.append(
                DataFlag(
                    code="garbled_feed",
                    subject=outcome.source,
                    detail=f"{type(reason).__name__}: {reason}"[:300]
                    + f"; {len(entries)} entries recovered",
                )
            )
            if not entries:
                outcome.failed = True
                return outcome
        undated = 0
        for entry in entries[:ITEMS_PER_FEED]:
            published = _published(entry)
            if published is None:
                undated += 1
                continue
            title = plain_text(str(entry.get("title", "")), TITLE_LIMIT)
            if not title or published > as_of:
                continue
            outcome.items.append(
                NewsItem(
                    published_at=published,
                    source=outcome.source,
                    title=title,
                    summary=plain_text(str(entry.get("summary", "")), SUMMARY_LIMIT),
                    url=_link(entry.get("link")),
                )
            )
        if undated:
            outcome.flags.append(
                DataFlag(
                    code="undated_item",
                    subject=outcome.source,
                    detail=f"{undated} items without a date left out",
                )
            )
        known = [i.published_at for i in outcome.items]
        if known and as_of - max(known) > STALE_AFTER:
            outcome.stale = True
            outcome.flags.append(
                DataFlag(
                    code="stale_feed", subject=outcome.source, detail=f"newest item {max(known)}"
                )
            )
        elif not known and entries and not undated:
            outcome.flags.append(
                DataFlag(code="empty_feed", subject=outcome.source, detail="no item by as_of")
            )
        return outcome


def _dedupe(items: Iterable[NewsItem]) -> list[NewsItem]:
    """One item per link and per normalised title (wires repeat each other); earliest wins."""
    kept: list[NewsItem] = []
    seen: set[str] = set()
    for item in sorted(items, key=lambda i: (i.published_at, i.source, i.title)):
        keys = {"t:" + _title_key(item.title)}
        if item.url:
            keys.add(_link_key(item.url))
        if keys & seen:
            continue
        seen |= keys
        kept.append(item)
    return sorted(kept, key=lambda i: i.published_at, reverse=True)
