"""Wire feeds as RSS 2.0 and Atom documents, with the knobs tests need (no dates, markup)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Entry:
    """One feed item; published None leaves the date element out."""

    title: str
    link: str
    published: datetime | None
    summary: str = ""


def rss(entries: Sequence[Entry], *, title: str = "Wire top stories") -> str:
    """An RSS 2.0 channel; text is XML-escaped, so markup in it arrives as escaped HTML."""
    items = []
    for e in entries:
        date = f"<pubDate>{format_datetime(e.published)}</pubDate>" if e.published else ""
        items.append(
            f"<item><title>{escape(e.title)}</title><link>{escape(e.link)}</link>"
            f"<description>{escape(e.summary)}</description>{date}"
            f"<guid>{escape(e.link)}</guid></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://wire.example/</link>"
        f"<description>Top stories</description>{''.join(items)}</channel></rss>\n"
    )


def atom(entries: Sequence[Entry], *, title: str = "Press releases") -> str:
    """An Atom feed with the same entries."""
    parts = []
    for e in entries:
        updated = f"<updated>{e.published.isoformat()}</updated>" if e.published else ""
        parts.append(
            f'<entry><title type="html">{escape(e.title)}</title>'
            f'<link href="{escape(e.link)}"/><id>{escape(e.link)}</id>{updated}'
            f'<summary type="html">{escape(e.summary)}</summary></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:fake:feed</id>"
        f"<updated>2026-01-09T12:00:00Z</updated>{''.join(parts)}</feed>\n"
    )
