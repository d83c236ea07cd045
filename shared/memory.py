"""Lessons and memory: what each settled call taught, and recalling the relevant ones later.

A lesson is written when a call settles (by the resolver in the fleet, by the ledger in the
backtest), from the call's own basis and the price that settled it. A cycle recalls the few most
relevant lessons: same target, same regime, a tape within one grid cell of today's (5-session
move and volatility), nearest first, and never a lesson settled after the cycle's as_of.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

from shared.contracts import Features, Fingerprint, Lesson, Memory, Outcome, Prediction
from shared.trusted import built

RECALL = 3
R5_CELL = 2.0  # percent
VOL_CELL = 5.0  # VIX points
# Typical sizes that put the fingerprint's numbers on one scale for the distance.
SCALES = {"r1": 1.0, "r5": 2.5, "r20": 5.0, "vol": 8.0, "slope": 1.0}
# Cycles kept per cell: older lessons of the same look add little and cost time.
CELL_DEPTH = 15


def fingerprint(features: Features) -> Fingerprint:
    """The tape in a few numbers: the broad index's moves, volatility and the curve."""
    rets = features.returns.get(features.broad or "")
    vol = features.vix
    if vol is None and features.realized_vol_20d is not None:
        vol = features.realized_vol_20d * 1.2
    r5 = rets.r5 if rets else None
    return Fingerprint(
        r1=rets.r1 if rets else None,
        r5=r5,
        r20=rets.r20 if rets else None,
        vol=vol,
        slope=features.curve_slope,
        r5_cell=math.floor(r5 / R5_CELL) if r5 is not None else None,
        vol_cell=math.floor(vol / VOL_CELL) if vol is not None else None,
    )


def distance(a: Fingerprint, b: Fingerprint) -> float:
    """Scaled Euclidean distance over the numbers both know; a missing one counts as 1."""
    total = 0.0
    for name, scale in SCALES.items():
        x, y = getattr(a, name), getattr(b, name)
        total += 1.0 if x is None or y is None else ((x - y) / scale) ** 2
    return math.sqrt(total)


# --- writing lessons -----------------------------------------------------------------------------


def _side(direction: str) -> str:
    return "above" if direction == "up" else "below"


def write_lesson(
    cycle_key: str,
    prediction: Prediction,
    outcome: Outcome,
    settle_price: float | None,
    settled_at: datetime,
    tape: Fingerprint,
) -> Lesson:
    """The lesson of one settled call, in three plain sentences from its numbers."""
    p = prediction
    line = p.line
    move = (settle_price / p.reference_price - 1.0) * 100.0 if settle_price else None
    rested = p.basis or f"{p.source}'s {p.direction} call at {p.confidence:.0%}."
    base = f" against a base rate of {p.base_rate:.0%}" if p.base_rate is not None else ""
    if p.source == "pool":
        called = "The minds' pool leaned" if abs(p.confidence - 0.5) >= 0.02 else "No lean:"
        basis = f" ({p.basis})" if p.basis else ""
        rested = f"{called} p(up) {p.confidence:.3f}{base}{basis}."
    if outcome == "inconclusive" or settle_price is None or move is None:
        happened = f"No settling price for {p.target} could be found; inconclusive."
        change = "A price for the target after maturity."
    else:
        way = "rose" if move > 0 else "fell" if move < 0 else "was unchanged"
        verdict = "a hit" if outcome == "hit" else "a miss"
        judged = (
            "" if p.source == "pool" else f": {verdict} for a call {_side(p.direction)} {line:.2f}"
        )
        happened = (
            f"{p.target} {way} {abs(move):.2f}% to {settle_price:.2f} by {settled_at:%Y-%m-%d}"
            f"{judged}."
        )
        needed = (line / settle_price - 1.0) * 100.0
        if p.source == "pool":
            change = (
                "Nothing I could have known: a pool this close to a coin is the base rate "
                "with noise."
                if abs(p.confidence - 0.5) < 0.05
                else f"A pool leaning the other way; the move was {move:+.2f}%."
            )
        elif outcome == "hit":
            other = _side("down" if p.direction == "up" else "up")
            change = (
                f"A close {abs(needed):.2f}% the other way ({other} {line:.2f}) would have "
                "made it a miss."
            )
        else:
            change = (
                f"{abs(needed):.2f}% more {'upside' if p.direction == 'up' else 'downside'} would "
                f"have made it a hit; at {p.confidence:.0%}{base}, not calling was the cheaper "
                "choice."
            )
    # Trusted (shared.trusted): every field, in field order, from a validated call and tape, an
    # outcome of the judge's and this function's own strings (a backtest writes thousands).
    return built(
        Lesson,
        {
            "cycle_key": cycle_key,
            "source": p.source,
            "target": p.target,
            "regime": p.regime,
            "made_at": p.made_at,
            "settled_at": settled_at,
            "outcome": outcome,
            "move_pct": round(move, 4) if move is not None else None,
            "rested_on": rested[:600],
            "happened": happened,
            "would_change": change,
            "fingerprint": tape,
        },
    )


# --- recalling them ------------------------------------------------------------------------------


def near_cells(tape: Fingerprint) -> list[tuple[int | None, int | None]]:
    """Today's grid cell and its neighbours (one step in each direction)."""
    if tape.r5_cell is None or tape.vol_cell is None:
        return [(tape.r5_cell, tape.vol_cell)]
    return [(tape.r5_cell + i, tape.vol_cell + j) for i in (-1, 0, 1) for j in (-1, 0, 1)]


def _vector(tape: Fingerprint) -> tuple[float | None, ...]:
    return tuple(
        None if getattr(tape, name) is None else getattr(tape, name) / scale
        for name, scale in SCALES.items()
    )


def _distance(a: tuple[float | None, ...], b: tuple[float | None, ...]) -> float:
    total = 0.0
    for x, y in zip(a, b, strict=True):
        total += 1.0 if x is None or y is None else (x - y) ** 2
    return math.sqrt(total)


@dataclass(slots=True)
class _Cycle:
    """The lessons of one past cycle (they share its tape and cycle key), kept for recall."""

    vector: tuple[float | None, ...]
    made_at: datetime
    lessons: list[Lesson]
    newest_first: float = 0.0  # -timestamp of made_at: the tie-break, computed once
    key: str = ""  # the lessons' cycle key: the last tie-break, read once

    def __post_init__(self) -> None:
        self.newest_first = -self.made_at.timestamp()
        self.key = self.lessons[0].cycle_key


def _memory(d: float, lesson: Lesson) -> Memory:
    # Trusted (shared.trusted): every field, in field order, from a lesson and a distance >= 0.
    return built(
        Memory,
        {
            "cycle_key": lesson.cycle_key,
            "source": lesson.source,
            "made_at": lesson.made_at,
            "settled_at": lesson.settled_at,
            "regime": lesson.regime,
            "outcome": lesson.outcome,
            "distance": round(d, 4),
            "text": lesson.text,
        },
    )


_order = itemgetter(0, 1, 2)  # distance, newest first, cycle key


def _rank(
    cycles: Iterable[_Cycle], tape: Fingerprint, as_of: datetime, k: int
) -> tuple[Memory, ...]:
    here = _vector(tape)
    # _distance written out (recall weighs a hundred past cycles every cycle): each number
    # either tape lacks counts 1, the same terms summed in the same order.
    h0, h1, h2, h3, h4 = here
    scored = [
        (
            math.sqrt(
                0.0
                + (1.0 if h0 is None or v[0] is None else (h0 - v[0]) ** 2)
                + (1.0 if h1 is None or v[1] is None else (h1 - v[1]) ** 2)
                + (1.0 if h2 is None or v[2] is None else (h2 - v[2]) ** 2)
                + (1.0 if h3 is None or v[3] is None else (h3 - v[3]) ** 2)
                + (1.0 if h4 is None or v[4] is None else (h4 - v[4]) ** 2)
            ),
            c.newest_first,
            c.key,
            c,
        )
        for c in cycles
        if c.made_at < as_of
        for v in (c.vector,)
    ]
    out: list[Memory] = []
    for d, _, _, cycle in sorted(scored, key=_order):
        # Only lessons settled by as_of exist yet: the memory never reaches forward.
        known = [x for x in cycle.lessons if x.settled_at <= as_of]
        if known:
            out.append(_memory(d, min(known, key=lambda x: x.source)))
            if len(out) == k:
                break
    return tuple(out)


def rank(
    candidates: Iterable[Lesson], tape: Fingerprint, as_of: datetime, k: int = RECALL
) -> tuple[Memory, ...]:
    """The k nearest lessons settled by as_of, one per cycle (its first by source name),
    nearest first, then newest."""
    cycles: dict[str, _Cycle] = {}
    for lesson in candidates:
        held = cycles.get(lesson.cycle_key)
        if held is None:
            cycles[lesson.cycle_key] = _Cycle(_vector(lesson.fingerprint), lesson.made_at, [lesson])
        else:
            held.lessons.append(lesson)
    return _rank(cycles.values(), tape, as_of, k)


Cell = tuple[str, str, int | None, int | None]


@dataclass
class LessonIndex:
    """Lessons by (target, regime, grid cell), each cell holding its CELL_DEPTH most recently
    settled cycles: what the backtest keeps in memory and the fleet rebuilds from its table."""

    cells: dict[Cell, dict[str, _Cycle]] = field(default_factory=lambda: defaultdict(dict))
    count: int = 0

    def add(self, lesson: Lesson) -> None:
        tape = lesson.fingerprint
        cell = self.cells[(lesson.target, lesson.regime, tape.r5_cell, tape.vol_cell)]
        held = cell.get(lesson.cycle_key)
        if held is None:
            cell[lesson.cycle_key] = _Cycle(_vector(tape), lesson.made_at, [lesson])
            if len(cell) > CELL_DEPTH:
                del cell[next(iter(cell))]
        else:
            held.lessons.append(lesson)
        self.count += 1

    def recall(
        self, target: str, regime: str, tape: Fingerprint, as_of: datetime, k: int = RECALL
    ) -> tuple[Memory, ...]:
        """The k most relevant lessons for a cycle at as_of (see the module's docstring)."""
        found: list[_Cycle] = []
        for r5_cell, vol_cell in near_cells(tape):
            found += self.cells.get((target, regime, r5_cell, vol_cell), {}).values()
        return _rank(found, tape, as_of, k)


def recall_from(
    lessons: Sequence[Lesson], target: str, regime: str, tape: Fingerprint, as_of: datetime
) -> tuple[Memory, ...]:
    """The same recall over a plain list (what the fleet reads from its database)."""
    index = LessonIndex()
    for lesson in sorted(lessons, key=lambda x: (x.settled_at, x.made_at)):
        index.add(lesson)
    return index.recall(target, regime, tape, as_of)
