"""Human names for what the desk watches: "the S&P 500", not ^GSPC; "a risk-off tape", not risk_off.

Readers of a dispatch never see a raw ticker or an internal label in its prose. The writers (the
offline one and the Claude one's fallback) and the minds' arguments name things through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

# Symbols in the spellings the sources use (Yahoo, FRED); an ETF is named for what it tracks.
INSTRUMENTS: dict[str, str] = {
    "^GSPC": "the S&P 500",
    "^SPX": "the S&P 500",
    "SPY": "the S&P 500",
    "ES=F": "S&P 500 futures",
    "^IXIC": "the Nasdaq",
    "^NDX": "the Nasdaq 100",
    "QQQ": "the Nasdaq 100",
    "^DJI": "the Dow",
    "DIA": "the Dow",
    "^RUT": "the Russell 2000",
    "IWM": "the Russell 2000",
    "^VIX": "VIX",
    "VIX": "VIX",
    "VIXCLS": "VIX",
    "^TNX": "the 10-year yield",
    "DGS10": "the 10-year yield",
    "DGS2": "the 2-year yield",
    "T10Y2Y": "the 10-year/2-year spread",
    "DCOILWTICO": "oil",
    "CPIAUCSL": "CPI",
    "CPILFESL": "core CPI",
    "FEDFUNDS": "the fed funds rate",
    "UNRATE": "unemployment",
    "PAYEMS": "payrolls",
    "AAPL": "Apple",
    "MSFT": "Microsoft",
    "NVDA": "Nvidia",
    "AMZN": "Amazon",
    "GOOGL": "Alphabet",
    "GOOG": "Alphabet",
    "META": "Meta",
    "TSLA": "Tesla",
    "BRK-B": "Berkshire Hathaway",
    "AVGO": "Broadcom",
    "BTC-USD": "bitcoin",
    "ETH-USD": "ether",
    "MSTR": "MicroStrategy",
}

REGIMES: dict[str, str] = {
    "risk_on": "risk-on",
    "risk_off": "risk-off",
    "chop": "choppy",
    "crisis": "crisis",
    "trending": "trending",
    "unknown": "unlabelled",
    "all": "every",
}

# The breadth labels (shared.features.classify_breadth) as a reader would say them.
BREADTH: dict[str, str] = {
    "mega_down_index_flat": "the mega-caps sold while the index held",
    "mega_up_index_flat": "the mega-caps carried an index that went nowhere",
    "broad_rally": "a broad rally",
    "broad_selloff": "a broad selloff",
    "small_leads": "small caps leading",
    "small_lags": "small caps lagging",
    "mixed": "a mixed tape",
    "unknown": "unreadable breadth",
}


def instrument(symbol: str | None, default: str = "the index") -> str:
    """A symbol's human name; an unknown one loses its index caret rather than leak as ^XYZ."""
    if not symbol:
        return default
    known = INSTRUMENTS.get(symbol) or INSTRUMENTS.get(symbol.upper())
    if known:
        return known
    return symbol.lstrip("^").removesuffix("-USD")


def regime(label: str) -> str:
    """'risk_off' -> 'risk-off': the adjective, for "in risk-off tapes"."""
    return REGIMES.get(label, label.replace("_", "-"))


def breadth(label: str) -> str:
    return BREADTH.get(label, label.replace("_", " "))


def capital(text: str) -> str:
    """The first letter raised, for a name that opens a sentence ("The S&P 500 fell ...")."""
    return text[:1].upper() + text[1:]


_SMALL = frozenset({"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to"})


def title_case(text: str) -> str:
    """Words of a title raised, short joining words kept low: "the drawdown in the S&P 500" ->
    "The Drawdown in the S&P 500" (the first word is always raised)."""
    words = text.split(" ")
    return " ".join(
        w[:1].upper() + w[1:] if (i == 0 or w not in _SMALL) and w[:1].isalpha() else w
        for i, w in enumerate(words)
    )


def humanize(text: str, symbols: Iterable[str] = ()) -> str:
    """Text from elsewhere (a mind's argument, a lesson) with tickers and labels put in words.

    Only whole tokens are replaced: MSFT in 'MSFT-led' is, MSFTX is not.
    """
    names, tickers = _ticker_pattern(tuple(sorted(set(symbols) - INSTRUMENTS.keys())))
    text = tickers.sub(lambda m: names[m.group(0)], text)
    text = _LABELS.sub(lambda m: _LABEL_WORDS[m.group(1)], text)
    return text.replace("as_of", "this cycle")


@cache
def _ticker_pattern(extra: tuple[str, ...]) -> tuple[dict[str, str], re.Pattern[str]]:
    """Every ticker a text may hold and its name, as one pattern (longest first, so '^VIX' wins
    over 'VIX'): a dispatch humanizes hundreds of texts, and one pass per ticker was a tenth of a
    backtest. No name holds another ticker but itself (VIX's is "VIX"), so one pass is enough."""
    names = {s: instrument(s) for s in (*INSTRUMENTS, *extra)}
    alternation = "|".join(re.escape(s) for s in sorted(names, key=len, reverse=True))
    return names, re.compile(rf"(?<![\w^])(?:{alternation})(?![\w=])")


# Labels a text may hold in code's words ('risk_off', "broad_selloff"), quoted or bare; the
# plain-English ones ("unknown", "crisis") stay as they are.
_LABEL_WORDS = {
    label: breadth(label) if label in BREADTH else regime(label)
    for label in {*BREADTH, *REGIMES} - {"unknown", "all", "chop", "crisis"}
}
_LABELS = re.compile(r"'?\b(" + "|".join(sorted(_LABEL_WORDS, key=len, reverse=True)) + r")\b'?")
