"""The Atom feed of dispatches, built with feedgen (it escapes every text it is given)."""

from __future__ import annotations

from collections.abc import Sequence

from feedgen.feed import FeedGenerator

from workshop.web.schema import DispatchSummary
from workshop.web.text import markdown_html

FEED_SIZE = 30


def atom(base_url: str, items: Sequence[tuple[DispatchSummary, str]]) -> bytes:
    """An Atom document of the newest dispatches: (summary, body markdown) pairs, newest first."""
    base = base_url.rstrip("/")
    feed = FeedGenerator()
    feed.id(f"{base}/")
    feed.title("Workshop desk")
    feed.subtitle("Dispatches of an autonomous market desk: one falsifiable call or none.")
    feed.link(href=f"{base}/", rel="alternate")
    feed.link(href=f"{base}/feed.atom", rel="self")
    feed.language("en")
    if items:
        feed.updated(items[0][0].as_of)
    # feedgen puts each new entry first: adding the oldest first leaves the newest on top.
    for summary, body in reversed(items):
        entry = feed.add_entry()
        entry.id(f"{base}{summary.url}")
        entry.title(summary.title)
        entry.link(href=f"{base}{summary.url}", rel="alternate")
        entry.published(summary.as_of)
        entry.updated(summary.status.settled_at or summary.as_of)
        entry.summary(f"{summary.call} — {summary.status.text}")
        entry.content(markdown_html(body), type="html")
    return bytes(feed.atom_str(pretty=True))
