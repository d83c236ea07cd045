"""Headlines scored into features: tone, topics, one-sidedness and the most telling few.

Tone is VADER's compound score (vaderSentiment, MIT licence: a lexicon and rules tuned on short
texts such as headlines) with its lexicon extended by FINANCE_LEXICON below, the market verbs
VADER's general-purpose word list lacks ("plunge", "devalue", "default", "rally"). Valences are in
VADER's own -4..+4 scale and were written for this project, so the source of every word is this
file. Topics are keyword patterns. Everything here is pure and deterministic: the same headlines
give the same block byte for byte.

Headline text is untrusted: `quote` makes a safe, attributed quotation of it for an argument.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from shared.contracts import NewsBlock, NewsItem, ScoredHeadline

# Market words VADER does not know, or knows only in their everyday sense.
FINANCE_LEXICON: dict[str, float] = {
    "plunge": -2.5, "plunges": -2.5, "plunged": -2.5, "plummet": -2.7, "plummets": -2.7,
    "tumble": -2.0, "tumbles": -2.0, "tumbling": -2.0, "slump": -2.0, "slumps": -2.0,
    "sell-off": -2.0, "selloff": -2.0, "rout": -2.5, "crash": -2.5, "crashes": -2.5,
    "tank": -1.5, "tanks": -1.5, "slide": -1.2, "slides": -1.2, "sink": -1.5, "sinks": -1.5,
    "fall": -1.0, "falls": -1.0, "fell": -1.0, "drop": -1.0, "drops": -1.0, "dropped": -1.0,
    "decline": -1.2, "declines": -1.2, "losses": -1.5, "downgrade": -1.8, "downgrades": -1.8,
    "default": -2.5, "defaults": -2.5, "defaulted": -2.5, "insolvent": -2.5, "bankruptcy": -2.8,
    "devalue": -1.8, "devalues": -1.8, "devaluation": -1.8, "devaluing": -1.8,
    "recession": -2.5, "contraction": -1.5, "slowdown": -1.5, "deficit": -1.0,
    "bailout": -1.0, "austerity": -1.2, "sanctions": -1.5, "embargo": -1.8, "tariff": -1.0,
    "tariffs": -1.0, "layoffs": -1.8, "jobless": -1.2, "unemployment": -0.8, "inflation": -0.6,
    "hike": -0.6, "hikes": -0.6, "tightening": -0.8, "volatility": -0.8, "turmoil": -2.2,
    "panic": -2.5, "fears": -1.5, "contagion": -2.2, "shutdown": -1.5,
    "rally": 2.0, "rallies": 2.0, "rallied": 2.0, "surge": 1.8, "surges": 1.8, "surged": 1.8,
    "soar": 2.0, "soars": 2.0, "soared": 2.0, "rebound": 1.5, "rebounds": 1.5, "gain": 1.2,
    "gains": 1.2, "rise": 0.8, "rises": 0.8, "rose": 0.8, "record": 0.8, "upgrade": 1.5,
    "upgrades": 1.5, "beats": 1.2, "growth": 1.2, "recovery": 1.5, "stimulus": 1.2,
    "easing": 0.8, "cut": -0.2, "cuts": -0.2, "deal": 1.0, "agreement": 1.2, "accord": 1.2,
    "ceasefire": 1.5, "truce": 1.5, "merger": 0.8, "acquires": 0.8, "approves": 1.0,
}  # fmt: skip

# A topic is named when any of its patterns matches the headline (case-insensitive, on words).
TOPICS: dict[str, tuple[str, ...]] = {
    "fed_rates": (
        r"\bfed\b", r"federal reserve", r"\bfomc\b", r"yellen", r"bernanke", r"powell",
        r"interest rates?", r"rate (hike|cut|rise|increase)s?", r"\becb\b",
        r"european central bank", r"people's bank of china", r"swiss national bank",
        r"bank of (england|japan|canada|korea)", r"monetary policy", r"treasury yields?",
        r"bond yields?", r"quantitative easing",
    ),
    "inflation": (r"inflation", r"deflation", r"consumer prices?", r"\bcpi\b", r"cost of living"),
    "oil_energy": (
        r"\boil\b", r"crude", r"\bopec\b", r"\bbrent\b", r"natural gas", r"petrol", r"gasoline",
        r"pipeline", r"\benergy\b", r"oil ?field", r"refiner",
    ),
    "geopolitics": (
        r"\bwar\b", r"military", r"missiles?", r"troops", r"sanctions?", r"invasion", r"invade",
        r"nuclear", r"\bcoup\b", r"terror", r"\bisis\b", r"\bisil\b", r"islamic state",
        r"air ?strikes?", r"ceasefire", r"annex", r"insurgen", r"referendum", r"bombing",
        r"rebels?", r"\bnato\b",
    ),
    "earnings": (
        r"earnings", r"quarterly (profit|results|loss)", r"\bprofits?\b", r"revenue",
        r"guidance", r"(beats|misses) (estimates|expectations)",
    ),
    "crypto": (r"bitcoin", r"crypto", r"blockchain", r"ethereum"),
    "deals": (
        r"merger", r"acquisition", r"acquires?", r"takeover", r"\bbuys\b", r"\bbuyout",
        r"\bipo\b", r"to buy", r"bid for", r"agrees? to sell", r"stake in",
    ),
    "markets": (
        r"stocks?\b", r"shares", r"stock market", r"\bdow\b", r"s&p", r"nasdaq", r"markets?\b",
        r"yuan", r"renminbi", r"currency", r"\bdebt\b", r"default", r"bailout", r"\bimf\b",
        r"bonds?\b", r"\bgdp\b", r"economy", r"economic", r"recession",
    ),
}  # fmt: skip
MARKET_TOPICS = frozenset({"fed_rates", "inflation", "oil_energy", "earnings", "deals", "markets"})
_PATTERNS = {
    topic: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    for topic, patterns in TOPICS.items()
}

# A headline with |compound| at or above this is toned (VADER's own neutral band is +-0.05; a
# headline needs a clearer lean to count on one side of the flow).
TONED = 0.2
TOP_N = 5
QUOTE_CHARS = 160
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)%\"'])[.!?](\s|$)")
_ABBREVIATION = re.compile(r"(?<=\b[A-Z])\.")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f`*_\[\]<>|\\#]")


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(FINANCE_LEXICON)
    return analyzer


def tone(text: str) -> float:
    """VADER compound score in [-1, 1] with the finance lexicon; 0 for text with no toned word."""
    return round(float(_analyzer().polarity_scores(text)["compound"]), 4)


def topics_of(text: str) -> tuple[str, ...]:
    """The topics a headline touches, in TOPICS order."""
    return tuple(topic for topic, pattern in _PATTERNS.items() if pattern.search(text))


def score(item: NewsItem) -> ScoredHeadline:
    """One headline with its tone and topics (the title only: summaries are not always there)."""
    return ScoredHeadline(
        published_at=item.published_at,
        source=item.source,
        title=item.title,
        url=item.url,
        tone=tone(item.title),
        topics=topics_of(item.title),
    )


def _telling(h: ScoredHeadline) -> float:
    """How much a headline says about markets: its tone's size, doubled if it is about them."""
    weight = 2.0 if MARKET_TOPICS & set(h.topics) else 1.0 if h.topics else 0.5
    return abs(h.tone) * weight


def news_block(
    items: Sequence[NewsItem], as_of: datetime, window: timedelta | None = None
) -> NewsBlock | None:
    """The news features of the headlines known at as_of (None when there are none).

    Only items published at or before as_of (and within `window` when given) count. The top
    headlines are the most telling ones (see _telling), newest first among equals.
    """
    since = as_of - window if window is not None else None
    known = [
        i for i in items if i.published_at <= as_of and (since is None or i.published_at > since)
    ]
    if not known:
        return None
    scored = [score(i) for i in known]
    pos = sum(1 for h in scored if h.tone >= TONED)
    neg = sum(1 for h in scored if h.tone <= -TONED)
    topics = Counter(t for h in scored for t in h.topics)
    topic_tone = {
        t: round(sum(h.tone for h in scored if t in h.topics) / n, 4) for t, n in topics.items()
    }
    market = [h for h in scored if MARKET_TOPICS & set(h.topics)]
    m_pos = sum(1 for h in market if h.tone >= TONED)
    m_neg = sum(1 for h in market if h.tone <= -TONED)
    ranked = sorted(scored, key=lambda h: (-_telling(h), -h.published_at.timestamp(), h.title))
    return NewsBlock(
        count=len(scored),
        sources=len({h.source for h in scored}),
        newest_at=max(h.published_at for h in scored),
        tone=round(sum(h.tone for h in scored) / len(scored), 4),
        positive=pos,
        negative=neg,
        balance=round((pos - neg) / (pos + neg), 4) if pos + neg else 0.0,
        market_count=len(market),
        market_balance=round((m_pos - m_neg) / (m_pos + m_neg), 4) if m_pos + m_neg else 0.0,
        topics=dict(sorted(topics.items())),
        topic_tone=dict(sorted(topic_tone.items())),
        top=tuple(ranked[:TOP_N]),
        leads={t: next(h for h in ranked if t in h.topics) for t in sorted(topics)},
    )


def quote(headline: ScoredHeadline) -> str:
    """An attributed quotation of an untrusted headline, safe to put in an argument's prose.

    Its first sentence only (the dispatch writer cuts arguments at sentence ends), without
    markup characters, clipped; marked as a headline with its source and date.
    """
    text = " ".join(headline.title.split())
    text = _UNSAFE.sub("", text).replace('"', "'")
    end = _SENTENCE_END.search(text)
    cut = end is not None and end.start() < len(text) - 1
    if end is not None and cut:
        text = text[: end.start()]
    # The dispatch writer splits prose at ". "; an abbreviation (U.S. stocks) must not cut it.
    text = _ABBREVIATION.sub("", text)
    text = re.sub(r"[.!?](?=\s)", "", text).rstrip(" .!?")
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 4].rsplit(" ", 1)[0].rstrip(" ,;:")
        cut = True
    if cut:
        text += " ..."
    source = _UNSAFE.sub("", " ".join(headline.source.split()))[:60] or "unnamed source"
    return f'headline (untrusted text, {source}, {headline.published_at:%Y-%m-%d}): "{text}"'
