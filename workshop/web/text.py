"""Markdown from a model or a feed, rendered as HTML a browser cannot be tricked by: raw HTML in
the source is shown as text (html off), and links keep markdown-it's refusal of javascript:,
vbscript:, file: and data: URLs (other than images)."""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt


@cache
def _parser() -> MarkdownIt:
    # commonmark with tables and strikethrough; "html": False escapes any tag in the source.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def markdown_html(source: str) -> str:
    """HTML of untrusted markdown: every tag in the source arrives escaped."""
    return str(_parser().render(source))
