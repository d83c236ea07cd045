"""Scoring arithmetic shared by the resolver's scoreboard, the cycle's track record and the
backtest: pure functions over settled calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts import ScoreLine

SETTLED = ("hit", "miss")


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One call as the scoreboard sees it: who made it, in what regime, how it ended."""

    source: str
    regime: str
    status: str  # open | hit | miss | inconclusive
    confidence: float


@dataclass(frozen=True, slots=True)
class Abstained:
    source: str
    regime: str


def brier(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """Mean squared gap between the stated probability and what happened; None with no calls."""
    values = [(p - (1.0 if hit else 0.0)) ** 2 for p, hit in pairs]
    return sum(values) / len(values) if values else None


def score_line(
    source: str, regime: str, calls: Iterable[CallOutcome], abstentions: int
) -> ScoreLine:
    """One scoreboard line. Abstentions and inconclusive calls never enter the hit rate."""
    rows = list(calls)
    hits = sum(1 for c in rows if c.status == "hit")
    misses = sum(1 for c in rows if c.status == "miss")
    settled = hits + misses
    return ScoreLine(
        source=source,
        regime=regime,
        calls=len(rows),
        hits=hits,
        misses=misses,
        inconclusive=sum(1 for c in rows if c.status == "inconclusive"),
        open=sum(1 for c in rows if c.status == "open"),
        abstentions=abstentions,
        hit_rate=hits / settled if settled else None,
        brier=brier((c.confidence, c.status == "hit") for c in rows if c.status in SETTLED),
    )


def score_lines(
    calls: Iterable[CallOutcome], abstentions: Iterable[Abstained], *, by_regime: bool = True
) -> tuple[ScoreLine, ...]:
    """Lines per source overall ("all") and, when asked, per source and regime."""
    grouped: dict[tuple[str, str], list[CallOutcome]] = defaultdict(list)
    skipped: dict[tuple[str, str], int] = defaultdict(int)
    for call in calls:
        grouped[(call.source, "all")].append(call)
        if by_regime:
            grouped[(call.source, call.regime)].append(call)
    for item in abstentions:
        skipped[(item.source, "all")] += 1
        if by_regime:
            skipped[(item.source, item.regime)] += 1
    keys = sorted(set(grouped) | set(skipped), key=_order)
    return tuple(score_line(s, r, grouped.get((s, r), []), skipped.get((s, r), 0)) for s, r in keys)


def _order(key: tuple[str, str]) -> tuple[int, str, int, str]:
    source, regime = key
    return (0 if source == "synthesis" else 1, source, 0 if regime == "all" else 1, regime)
