"""Scoring arithmetic shared by the resolver's scoreboard, the cycle's track record and the
backtest: pure functions over settled calls, and a running tally that both build lines from.

Every probability here is the probability the call comes true (its confidence); a call's base rate
is how often its outcome happened in the history known when it was made.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.contracts import CalibrationBucket, ScoreLine
from shared.trusted import built

SETTLED = ("hit", "miss")
Z95 = 1.959963984540054
BUCKETS = 10
# log(0) is minus infinity: a call stated at 0 or 1 that went wrong is clipped, not fatal.
LOG_FLOOR = 1e-6
ALL = "all"


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One call as the scoreboard sees it: who made it, in what category, how it ended."""

    source: str
    regime: str
    status: str  # open | hit | miss | inconclusive
    confidence: float
    asset_class: str = "equity_index"
    horizon_hours: int = 24
    topic: str = "index"
    base_rate: float | None = None
    withheld: bool = False  # stopped by a learned rule: shadow-scored, never published

    @classmethod
    def of(cls, call: Call, status: str, withheld: bool = False) -> CallOutcome:
        """A call (stored or in a backtest's memory) as scoring counts it, with the status it had
        at the moment asked about: one mapping for the fleet's record and the backtest's."""
        return cls(
            call.source,
            call.regime,
            status,
            call.confidence,
            asset_class=call.asset_class,
            horizon_hours=call.horizon_hours,
            topic=call.topic,
            base_rate=call.base_rate,
            withheld=withheld,
        )


class Call(Protocol):
    """What scoring reads of a call: a stored PredictionRecord and a Prediction both have it."""

    @property
    def source(self) -> str: ...
    @property
    def regime(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def asset_class(self) -> str: ...
    @property
    def horizon_hours(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def base_rate(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Abstained:
    source: str
    regime: str


# --- the arithmetic ------------------------------------------------------------------------------


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a hit rate (95% by default); None with no settled calls.

    Unlike the normal approximation it stays inside [0, 1] and is honest at small n.
    """
    if n <= 0:
        return None
    p = hits / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def brier(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """Mean squared gap between the stated probability and what happened; None with no calls."""
    values = [(p - (1.0 if hit else 0.0)) ** 2 for p, hit in pairs]
    return sum(values) / len(values) if values else None


def log_likelihood(p: float, hit: bool) -> float:
    """Natural log of the probability the forecast gave to what happened (clipped)."""
    q = p if hit else 1.0 - p
    return math.log(min(1.0 - LOG_FLOOR, max(LOG_FLOOR, q)))


def log_score(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """Mean log-likelihood of the outcomes (0 is perfect, ln 0.5 = -0.693 is a coin)."""
    values = [log_likelihood(p, hit) for p, hit in pairs]
    return sum(values) / len(values) if values else None


def bucket_of(p: float, buckets: int = BUCKETS) -> int:
    return min(buckets - 1, max(0, int(p * buckets)))


def calibration(
    pairs: Iterable[tuple[float, bool]], buckets: int = BUCKETS
) -> tuple[CalibrationBucket, ...]:
    """Calls grouped by stated probability in equal-width buckets; only non-empty buckets."""
    sums = [[0, 0.0, 0] for _ in range(buckets)]
    for p, hit in pairs:
        cell = sums[bucket_of(p, buckets)]
        cell[0] += 1
        cell[1] += p
        cell[2] += 1 if hit else 0
    return _buckets(sums, buckets)


def _buckets(sums: Sequence[Sequence[float]], buckets: int) -> tuple[CalibrationBucket, ...]:
    return tuple(
        CalibrationBucket(
            low=i / buckets,
            high=(i + 1) / buckets,
            count=int(n),
            mean_confidence=total / n,
            hit_rate=hits / n,
        )
        for i, (n, total, hits) in enumerate(sums)
        if n
    )


def ece(buckets: Iterable[CalibrationBucket]) -> float | None:
    """Expected calibration error: the count-weighted mean |stated - observed| over buckets."""
    rows = list(buckets)
    total = sum(b.count for b in rows)
    if total == 0:
        return None
    return sum(b.count * abs(b.mean_confidence - b.hit_rate) for b in rows) / total


def _ece_of_cells(cells: Sequence[Sequence[float]]) -> float | None:
    """ece() straight from [count, sum of stated, hits] cells: sum |sum stated - hits| / total
    (one pass, summed in bucket order: every line the record builds reads this)."""
    total: float = 0  # an int 0, as sum() starts: the same sums to the last bit
    gap: float = 0
    for count, stated, hits in cells:
        if count:
            total += count
            gap += abs(stated - hits)
    return gap / total if total else None


def brier_skill(score: float | None, reference: float | None) -> float | None:
    """1 - Brier / reference Brier: above 0 beats the reference, 0 ties it, below 0 loses."""
    if score is None or reference is None or reference <= 0:
        return None
    return 1.0 - score / reference


# --- the running tally ---------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Running sums for one scoreboard line; O(1) to update, O(buckets) to read.

    The backtest keeps these in memory and updates them as calls settle; the database path builds
    the same tallies from stored rows, so both produce identical lines.
    """

    calls: int = 0
    hits: int = 0
    misses: int = 0
    inconclusive: int = 0
    open: int = 0
    abstentions: int = 0
    withheld: int = 0
    squared: float = 0.0
    log: float = 0.0
    # Brier skill is taken over the settled calls that carry a base rate, on both sides.
    rated: int = 0
    rated_squared: float = 0.0
    base_squared: float = 0.0
    base_sum: float = 0.0
    cells: list[list[float]] = field(default_factory=lambda: [[0, 0.0, 0] for _ in range(BUCKETS)])

    def opened(self) -> None:
        self.calls += 1
        self.open += 1

    def closed(self, status: str, confidence: float, base_rate: float | None) -> None:
        """An open call settled (hit, miss or inconclusive)."""
        self.open -= 1
        if status == "inconclusive":
            self.inconclusive += 1
            return
        hit = status == "hit"
        outcome = 1.0 if hit else 0.0
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        gap = (confidence - outcome) ** 2
        self.squared += gap
        self.log += log_likelihood(confidence, hit)
        cell = self.cells[bucket_of(confidence)]
        cell[0] += 1
        cell[1] += confidence
        cell[2] += outcome
        if base_rate is not None:
            self.rated += 1
            self.rated_squared += gap
            self.base_squared += (base_rate - outcome) ** 2
            self.base_sum += base_rate

    def add(self, call: CallOutcome) -> None:
        self.opened()
        if call.withheld:
            self.withheld += 1
        if call.status != "open":
            self.closed(call.status, call.confidence, call.base_rate)

    def line(
        self,
        source: str,
        regime: str = ALL,
        *,
        asset_class: str = ALL,
        horizon: str = ALL,
        topic: str = ALL,
        detail: bool = True,
        trusted: bool = False,
    ) -> ScoreLine:
        """The scoreboard line; detail adds the calibration buckets (left out of cycle contexts).

        trusted skips validating the line: for a caller whose key came from validated calls (the
        backtest's in-memory book rebuilds thousands of lines; each is a fold of numbers made
        here, so validation could only re-check this function's own arithmetic)."""
        settled = self.hits + self.misses
        interval = wilson(self.hits, settled)
        rated_brier = self.rated_squared / self.rated if self.rated else None
        base_brier = self.base_squared / self.rated if self.rated else None
        # In ScoreLine's field order (a trusted line's fields are this dict as it stands).
        values: dict[str, Any] = {
            "source": source,
            "regime": regime,
            "calls": self.calls,
            "hits": self.hits,
            "misses": self.misses,
            "inconclusive": self.inconclusive,
            "open": self.open,
            "abstentions": self.abstentions,
            "hit_rate": self.hits / settled if settled else None,
            "brier": self.squared / settled if settled else None,
            "asset_class": asset_class,
            "horizon": horizon,
            "topic": topic,
            "hit_rate_low": interval[0] if interval else None,
            "hit_rate_high": interval[1] if interval else None,
            "log_score": self.log / settled if settled else None,
            "base_rate": self.base_sum / self.rated if self.rated else None,
            "base_rate_brier": base_brier,
            "brier_skill": brier_skill(rated_brier, base_brier),
            "ece": _ece_of_cells(self.cells),
            "calibration": _buckets(self.cells, BUCKETS) if detail else (),
            "withheld": self.withheld,
        }
        return _trusted_line(values) if trusted else ScoreLine.model_validate(values)


def _trusted_line(values: dict[str, Any]) -> ScoreLine:
    """values as a ScoreLine, unvalidated (shared.trusted): every field, in field order."""
    return built(ScoreLine, values)


# The Tally sums a line shows as they are and computes none of its rates from.
COUNTS = ("calls", "inconclusive", "open", "abstentions", "withheld")


def recounted(line: ScoreLine, tally: Tally) -> ScoreLine:
    """A trusted line (Tally.line, trusted) with the tally's counts, for a tally whose other sums
    are those the line was built from: the line Tally.line would build, without recomputing its
    rates (the backtest's record moves a line's counts every cycle, its rates only on a settle)."""
    values = dict(line.__dict__)
    for name in COUNTS:
        values[name] = getattr(tally, name)
    return _trusted_line(values)


# --- lines ---------------------------------------------------------------------------------------

# (regime, asset_class, horizon, topic) of each cut a call is counted in; ALL means "not cut".
Key = tuple[str, str, str, str, str]


def horizon_label(hours: int) -> str:
    return f"{hours}h"


def keys_of(call: CallOutcome, *, by_category: bool = True) -> Iterator[Key]:
    """Every line a call counts in: overall, and (by_category) per regime, asset class, horizon,
    topic, and asset class x horizon (the cut rules are most often about)."""
    s, horizon = call.source, horizon_label(call.horizon_hours)
    yield (s, ALL, ALL, ALL, ALL)
    if by_category:
        yield (s, call.regime, ALL, ALL, ALL)
        yield (s, ALL, call.asset_class, ALL, ALL)
        yield (s, ALL, ALL, horizon, ALL)
        yield (s, ALL, ALL, ALL, call.topic)
        yield (s, ALL, call.asset_class, horizon, ALL)


def abstention_keys(item: Abstained, *, by_category: bool = True) -> Iterator[Key]:
    yield (item.source, ALL, ALL, ALL, ALL)
    if by_category:
        yield (item.source, item.regime, ALL, ALL, ALL)


def line_of(key: Key, tally: Tally, *, detail: bool = True, trusted: bool = False) -> ScoreLine:
    source, regime, asset_class, horizon, topic = key
    return tally.line(
        source,
        regime,
        asset_class=asset_class,
        horizon=horizon,
        topic=topic,
        detail=detail,
        trusted=trusted,
    )


def tallies(
    calls: Iterable[CallOutcome],
    abstentions: Iterable[Abstained],
    *,
    by_category: bool = True,
    include_withheld: bool = False,
) -> dict[Key, Tally]:
    """Tallies per line key; withheld (rule-stopped) calls only when asked (rules' evidence)."""
    out: dict[Key, Tally] = defaultdict(Tally)
    for call in calls:
        if call.withheld and not include_withheld:
            continue
        for key in keys_of(call, by_category=by_category):
            out[key].add(call)
    for item in abstentions:
        for key in abstention_keys(item, by_category=by_category):
            out[key].abstentions += 1
    return out


def score_line(
    source: str, regime: str, calls: Iterable[CallOutcome], abstentions: int
) -> ScoreLine:
    """One scoreboard line. Abstentions and inconclusive calls never enter the hit rate."""
    tally = Tally()
    for call in calls:
        tally.add(call)
    tally.abstentions = abstentions
    return tally.line(source, regime)


def score_lines(
    calls: Iterable[CallOutcome],
    abstentions: Iterable[Abstained],
    *,
    by_regime: bool = True,
    detail: bool = True,
    include_withheld: bool = False,
) -> tuple[ScoreLine, ...]:
    """Lines per source overall ("all") and, when by_regime, per source and regime, asset class,
    horizon, topic and asset class x horizon."""
    found = tallies(calls, abstentions, by_category=by_regime, include_withheld=include_withheld)
    return tuple(line_of(key, found[key], detail=detail) for key in sorted(found, key=order))


def order(key: Key) -> tuple[int, str, int, str, str, str, str]:
    """Synthesis first, then minds by name; within a source the overall line, then the cuts."""
    source, regime, asset_class, horizon, topic = key
    plain = (regime, asset_class, horizon, topic) == (ALL, ALL, ALL, ALL)
    return (0 if source == "synthesis" else 1, source, 0 if plain else 1, regime, asset_class,
            horizon, topic)  # fmt: skip


# --- honest baselines ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scored:
    """A settled call with its baselines: stated probability, base rate, naive probability
    (a driftless random walk at trailing volatility), and whether it came true."""

    p: float
    base: float | None
    naive: float | None
    hit: bool


def murphy(pairs: Sequence[tuple[float, bool]], buckets: int = BUCKETS) -> dict[str, float | None]:
    """Murphy's decomposition of the Brier score over equal-width probability buckets:
    Brier ~= reliability - resolution + uncertainty (exact up to the spread within buckets)."""
    n = len(pairs)
    if n == 0:
        return {"reliability": None, "resolution": None, "uncertainty": None}
    mean = sum(1.0 for _, y in pairs if y) / n
    cells = [[0, 0.0, 0.0] for _ in range(buckets)]
    for p, y in pairs:
        cell = cells[bucket_of(p, buckets)]
        cell[0] += 1
        cell[1] += p
        cell[2] += 1.0 if y else 0.0
    reliability = sum(c[0] * (c[1] / c[0] - c[2] / c[0]) ** 2 for c in cells if c[0]) / n
    resolution = sum(c[0] * (c[2] / c[0] - mean) ** 2 for c in cells if c[0]) / n
    return {"reliability": reliability, "resolution": resolution,
            "uncertainty": mean * (1.0 - mean)}  # fmt: skip


def skill_and_se(rows: Sequence[tuple[float, float, bool]]) -> tuple[float | None, float | None]:
    """Brier skill against a reference forecast, from (stated, reference, came true) rows, with
    its standard error: the per-call Brier gains' standard error over the reference's Brier."""
    n = len(rows)
    if n == 0:
        return None, None
    ours = [(p - (1.0 if y else 0.0)) ** 2 for p, _, y in rows]
    refs = [(r - (1.0 if y else 0.0)) ** 2 for _, r, y in rows]
    ref = sum(refs) / n
    if ref <= 0:
        return None, None
    skill = 1.0 - (sum(ours) / n) / ref
    if n < 2:
        return skill, None
    gains = [r - o for o, r in zip(ours, refs, strict=True)]
    mean = sum(gains) / n
    var = sum((g - mean) ** 2 for g in gains) / (n - 1)
    return skill, math.sqrt(var / n) / ref


def baselines(rows: Sequence[Scored]) -> dict[str, float | int | None]:
    """Brier against every honest baseline: the point-in-time base rate, the naive random walk,
    and "always the majority outcome" (probability 1 on whichever outcome the base rate makes
    more likely, a forecaster that never hedges); plus Murphy's decomposition."""
    pairs = [(r.p, r.hit) for r in rows]
    rated = [(r.p, r.base, r.hit) for r in rows if r.base is not None]
    naive = [(r.p, r.naive, r.hit) for r in rows if r.naive is not None]
    skill, skill_se = skill_and_se(rated)
    skill_naive, naive_se = skill_and_se(naive)
    majority = [
        ((1.0 if r.base >= 0.5 else 0.0) - (1.0 if r.hit else 0.0)) ** 2
        for r in rows
        if r.base is not None
    ]
    naive_brier = brier((q, y) for _, q, y in naive)
    return {
        "settled": len(rows),
        "brier_skill_se": skill_se,
        "naive_brier": naive_brier,
        "brier_skill_naive": skill_naive,
        "brier_skill_naive_se": naive_se,
        "brier_majority": sum(majority) / len(majority) if majority else None,
        "skill_vs_base": skill,
        **murphy(pairs),
    }
