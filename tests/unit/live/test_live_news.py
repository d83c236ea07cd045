"""RssNews against loopback RSS 2.0 and Atom feeds, fetched with httpx, parsed by feedparser."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from shared.market.live.news import RssNews, plain_text
from tests.fakes.http import FakeServer, Reply
from tests.fakes.rss import Entry, atom, rss

AS_OF = datetime(2026, 1, 9, 22, 30, tzinfo=UTC)
RSS_TYPE = "application/rss+xml"


def _news(fake: FakeServer, *paths: str, **kw: float) -> RssNews:
    options = {"timeout_s": 10.0, "backoff_s": 0.05} | kw
    return RssNews([fake.url(p) for p in paths], **options)  # type: ignore[arg-type]


def _hours_ago(h: float) -> datetime:
    return AS_OF - timedelta(hours=h)


def test_good_day_rss_and_atom_deduplicated(fake: FakeServer) -> None:
    """Two feeds, one repeated headline: one item each, newest first, with date, source, link."""
    wire = [
        Entry("Stocks rise as yields fall", "http://wire.example/a", _hours_ago(2), "Markets up."),
        Entry("Fed holds rates", "http://wire.example/b", _hours_ago(5)),
    ]
    press = [Entry("FED HOLDS RATES!", "http://fed.example/p1", _hours_ago(4))]
    fake.script("/wire.xml", Reply(body=rss(wire), content_type=RSS_TYPE))
    fake.script("/press.atom", Reply(body=atom(press), content_type="application/atom+xml"))
    result = _news(fake, "/wire.xml", "/press.atom").fetch(AS_OF)
    assert result.health.status == "ok", result.health
    assert [n.title for n in result.news] == ["Stocks rise as yields fall", "Fed holds rates"]
    assert all(n.source == "127.0.0.1:" + fake.base_url.rsplit(":", 1)[1] for n in result.news)
    assert result.news[0].url == "http://wire.example/a"
    assert result.news[0].published_at == _hours_ago(2).replace(microsecond=0)


def test_items_after_as_of_are_left_out(fake: FakeServer) -> None:
    """An item published after as_of never enters."""
    entries = [
        Entry("Later news", "http://wire.example/late", AS_OF + timedelta(minutes=5)),
        Entry("Earlier news", "http://wire.example/early", _hours_ago(1)),
    ]
    fake.script("/wire.xml", Reply(body=rss(entries), content_type=RSS_TYPE))
    result = _news(fake, "/wire.xml").fetch(AS_OF)
    assert [n.title for n in result.news] == ["Earlier news"]


def test_undated_items_are_flagged_not_dated(fake: FakeServer) -> None:
    """Items without a date are left out with a flag; none is given a made-up date."""
    entries = [
        Entry("No date here", "http://wire.example/x", None),
        Entry("Dated", "http://wire.example/y", _hours_ago(1)),
    ]
    fake.script("/wire.xml", Reply(body=rss(entries), content_type=RSS_TYPE))
    result = _news(fake, "/wire.xml").fetch(AS_OF)
    assert [n.title for n in result.news] == ["Dated"]
    assert any(f.code == "undated_item" and "1 items" in f.detail for f in result.flags)


def test_markup_is_stripped_and_length_limited(fake: FakeServer) -> None:
    """Title and summary markup, scripts and entities are stripped; long text is cut."""
    title = "<b>Big</b> move &amp; <script>alert('x')</script>more " + "y" * 600
    summary = "<p>Read <a href='javascript:evil()'>this</a></p><style>p{}</style>"
    entry = Entry(title, "javascript:alert(1)", _hours_ago(1), summary)
    fake.script("/wire.xml", Reply(body=rss([entry]), content_type=RSS_TYPE))
    [item] = _news(fake, "/wire.xml").fetch(AS_OF).news
    assert item.title.startswith("Big move & more yyy")
    assert "<" not in item.title
    assert "alert" not in item.title
    assert len(item.title) <= 300
    assert item.summary == "Read this"
    assert item.url == ""


def test_truncated_xml_is_flagged(fake: FakeServer) -> None:
    """A feed cut off mid-document is flagged garbled and the result partial, without a crash."""
    body = rss([Entry("One", "http://wire.example/1", _hours_ago(1))] * 1)
    truncated = body[: body.index("</item>") - 10]
    fake.script("/wire.xml", Reply(body=truncated, content_type=RSS_TYPE))
    fake.script("/good.xml", Reply(body=rss([Entry("Two", "http://w.example/2", _hours_ago(2))])))
    result = _news(fake, "/wire.xml", "/good.xml").fetch(AS_OF)
    assert result.health.status == "partial"
    assert any(f.code == "garbled_feed" for f in result.flags)
    assert "Two" in [n.title for n in result.news]


def test_stale_feed(fake: FakeServer) -> None:
    """A feed whose newest item is days old is stale."""
    entries = [Entry("Old", "http://wire.example/old", AS_OF - timedelta(days=4))]
    fake.script("/wire.xml", Reply(body=rss(entries), content_type=RSS_TYPE))
    result = _news(fake, "/wire.xml").fetch(AS_OF)
    assert result.health.status == "stale"
    assert any(f.code == "stale_feed" for f in result.flags)


def test_rate_limit_then_success_and_dead_feed(fake: FakeServer) -> None:
    """A 429 is retried; a feed that only fails makes the result partial with a feed_error."""
    fake.script("/wire.xml", Reply(body=rss([Entry("Up", "http://w.example/u", _hours_ago(1))])))
    fake.first("/wire.xml", Reply(status=429, headers={"Retry-After": "0"}))
    fake.script("/dead.xml", Reply(status=503))
    result = _news(fake, "/wire.xml", "/dead.xml").fetch(AS_OF)
    assert [n.title for n in result.news] == ["Up"]
    assert result.health.status == "partial"
    assert any(f.code == "feed_error" for f in result.flags)
    assert len(fake.hits("/wire.xml")) == 2


def test_empty_body_and_all_dead_is_error(fake: FakeServer) -> None:
    """An empty 200 body is a garbled feed; with nothing else, the source is in error."""
    fake.script("/wire.xml", Reply(body=b"", content_type=RSS_TYPE))
    result = _news(fake, "/wire.xml").fetch(AS_OF)
    assert result.health.status == "error"
    assert result.news == ()


def test_hang_returns_error_within_time_limit(fake: FakeServer) -> None:
    """A feed that never answers gives an error health in about the time limit."""
    fake.script("/wire.xml", Reply(delay_s=3.0, body=rss([])))
    started = time.monotonic()
    result = _news(fake, "/wire.xml", timeout_s=0.5).fetch(AS_OF)
    assert time.monotonic() - started < 1.5
    assert result.health.status == "error"


def test_plain_text_drops_control_characters() -> None:
    """Control characters (terminal escapes) do not survive into a headline."""
    assert plain_text("a\x1b[31mb\x00c", 50) == "a[31mbc"
