"""The backtest's in-memory record: calls, abstentions and settlements, scored with the same
tallies as the database's track record, and read point-in-time by each cycle."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from services.resolver.settle import judge
from services.synth.calibrate import History
from shared.contracts import Fingerprint, Outcome, Prediction, ScoreLine, TrackRecord
from shared.memory import LessonIndex, write_lesson
from shared.ports import SettlementPrices
from shared.scoring import (
    ALL,
    Abstained,
    CallOutcome,
    Key,
    Tally,
    abstention_keys,
    keys_of,
    line_of,
    order,
    score_lines,
)


@dataclass(slots=True)
class OpenCall:
    """A call waiting for its first close after maturity."""

    number: int
    cycle_key: str
    prediction: Prediction
    withheld_by: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class OpenForecast:
    """A cycle's pooled p(up) waiting to learn whether the target closed up."""

    number: int
    cycle_key: str
    prediction: Prediction
    final: float | None
    calibrated: bool
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class SettledForecast:
    """A pooled forecast and what came: the rows of the desk's every-cycle score."""

    made_at: datetime
    settled_at: datetime
    raw: float
    final: float | None
    base_rate_up: float | None
    went_up: bool
    calibrated: bool


@dataclass(frozen=True, slots=True)
class Settled:
    """A call as it was settled: the rows the rolling plots, lessons and the report read."""

    number: int
    cycle_key: str
    prediction: Prediction
    outcome: Outcome
    settled_at: datetime
    settle_price: float | None
    realized_move_pct: float | None
    reason: str
    withheld_by: str | None

    @property
    def source(self) -> str:
        return self.prediction.source


def outcome_of(prediction: Prediction, status: str, withheld: bool = False) -> CallOutcome:
    return CallOutcome(
        prediction.source,
        prediction.regime,
        status,
        prediction.confidence,
        asset_class=prediction.asset_class,
        horizon_hours=prediction.horizon_hours,
        topic=prediction.topic,
        base_rate=prediction.base_rate,
        withheld=withheld,
    )


def overall_or_regime(key: Key) -> bool:
    return key[2:] == (ALL, ALL, ALL)


def rule_category(key: Key) -> bool:
    """The cuts learned rules are about: overall, regime, asset class x horizon, topic."""
    _, regime, asset_class, horizon, topic = key
    return (asset_class == ALL) == (horizon == ALL) and ALL in (regime, topic)


@dataclass
class Book:
    """Tallies per line key with a cache of the lines, rebuilt only for keys that changed.

    `keeps` picks the cuts a cycle reads (the synthesis weighs minds by their overall and regime
    lines; rules look at a few more): the full scoreboard is scored once, at the end, from the
    settled calls.
    """

    keeps: Callable[[Key], bool] = overall_or_regime
    tallies: dict[Key, Tally] = field(default_factory=lambda: defaultdict(Tally))
    lines: dict[Key, ScoreLine] = field(default_factory=dict)
    dirty: set[Key] = field(default_factory=set)

    def touch(self, key: Key) -> Tally | None:
        if not self.keeps(key):
            return None
        self.dirty.add(key)
        return self.tallies[key]

    def record(self) -> tuple[ScoreLine, ...]:
        for key in self.dirty:
            self.lines[key] = line_of(key, self.tallies[key], detail=False)
        self.dirty.clear()
        return tuple(self.lines[key] for key in sorted(self.lines, key=order))

    def detailed(self) -> tuple[ScoreLine, ...]:
        return tuple(line_of(k, self.tallies[k]) for k in sorted(self.tallies, key=order))


class Ledger:
    """Every call and abstention of a backtest, settled by the resolver's own judge.

    `public` is the scoreboard (withheld calls excluded); `evidence` also counts calls a learned
    rule withheld, scored as if made, so that a rule can be retired when its evidence turns.
    """

    def __init__(self, *, max_attempts: int = 3) -> None:
        self.max_attempts = max_attempts
        self.public = Book(overall_or_regime)
        self.evidence = Book(rule_category)
        self.settled: list[Settled] = []
        self._heap: list[tuple[datetime, int, OpenCall]] = []
        self._waiting: list[OpenCall] = []
        self._numbers = 0
        self._abstained: list[Abstained] = []
        # The recalibration's history: pooled forecasts settled so far (so, by each as_of).
        self.history = History()
        self.forecasts: list[SettledForecast] = []
        self._pending: list[tuple[datetime, int, OpenForecast]] = []
        self._pending_waiting: list[OpenForecast] = []
        # Lessons, written as calls settle (the resolver's job in the fleet), from the tape each
        # call was made on.
        self.lessons = LessonIndex()
        self.tapes: dict[str, Fingerprint] = {}

    # --- writing ---------------------------------------------------------------------------------

    def call(self, cycle_key: str, prediction: Prediction, withheld_by: str | None = None) -> None:
        """A call made (or, with withheld_by, stopped by a rule and shadow-scored) at made_at."""
        self._numbers += 1
        entry = OpenCall(self._numbers, cycle_key, prediction, withheld_by)
        heapq.heappush(self._heap, (prediction.matures_at, entry.number, entry))
        outcome = outcome_of(prediction, "open", withheld_by is not None)
        books = (self.evidence,) if withheld_by else (self.public, self.evidence)
        for book in books:
            for key in keys_of(outcome):
                tally = book.touch(key)
                if tally is not None:
                    tally.add(outcome)

    def forecast(
        self, cycle_key: str, prediction: Prediction, final: float | None, calibrated: bool
    ) -> None:
        """A cycle's pooled forecast (an 'up' Prediction whose confidence is the raw pool) and
        the desk's final p(up), recalibrated or not."""
        self._numbers += 1
        entry = OpenForecast(self._numbers, cycle_key, prediction, final, calibrated)
        heapq.heappush(self._pending, (prediction.matures_at, entry.number, entry))

    def abstain(self, source: str, regime: str) -> None:
        self._abstained.append(Abstained(source, regime))
        for book in (self.public, self.evidence):
            for key in abstention_keys(Abstained(source, regime)):
                tally = book.touch(key)
                if tally is not None:
                    tally.abstentions += 1

    def settle(self, market: SettlementPrices, now: datetime) -> list[Settled]:
        """Judge every call matured by now, as the resolver does; returns what settled."""
        due = self._waiting
        self._waiting = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        done: list[Settled] = []
        for entry in due:
            p = entry.prediction
            quote = market.settlement_quote(p.target, p.matures_at, now)
            verdict = judge(
                p.direction,
                p.reference_price,
                p.line,
                quote,
                matures_at=p.matures_at,
                now=now,
                attempts=entry.attempts,
                max_attempts=self.max_attempts,
            )
            if verdict.outcome is None:
                if "attempt" in verdict.reason:
                    entry.attempts += 1
                self._waiting.append(entry)
                continue
            item = Settled(
                entry.number,
                entry.cycle_key,
                p,
                verdict.outcome,
                now,
                verdict.settle_price,
                verdict.realized_move_pct,
                verdict.reason,
                entry.withheld_by,
            )
            self._close(item)
            done.append(item)
            self._learn(entry.cycle_key, p, verdict.outcome, verdict.settle_price, now)
        self.settled.extend(done)
        self._settle_forecasts(market, now)
        return done

    def _settle_forecasts(self, market: SettlementPrices, now: datetime) -> None:
        due = self._pending_waiting
        self._pending_waiting = []
        while self._pending and self._pending[0][0] <= now:
            due.append(heapq.heappop(self._pending)[2])
        for entry in due:
            p = entry.prediction
            verdict = judge(
                "up",
                p.reference_price,
                p.reference_price,
                market.settlement_quote(p.target, p.matures_at, now),
                matures_at=p.matures_at,
                now=now,
                attempts=entry.attempts,
                max_attempts=self.max_attempts,
            )
            if verdict.outcome is None:
                if "attempt" in verdict.reason:
                    entry.attempts += 1
                self._pending_waiting.append(entry)
                continue
            self._learn(entry.cycle_key, p, verdict.outcome, verdict.settle_price, now)
            if verdict.outcome == "inconclusive":
                continue
            went_up = verdict.outcome == "hit"
            self.history.add(p.confidence, went_up, p.base_rate)
            self.forecasts.append(
                SettledForecast(
                    p.made_at,
                    now,
                    p.confidence,
                    entry.final,
                    p.base_rate,
                    went_up,
                    entry.calibrated,
                )
            )

    def _learn(
        self,
        cycle_key: str,
        prediction: Prediction,
        outcome: Outcome,
        price: float | None,
        now: datetime,
    ) -> None:
        tape = self.tapes.get(cycle_key, Fingerprint())
        self.lessons.add(write_lesson(cycle_key, prediction, outcome, price, now, tape))

    def _close(self, item: Settled) -> None:
        outcome = outcome_of(item.prediction, item.outcome, item.withheld_by is not None)
        p = item.prediction
        books = (self.evidence,) if item.withheld_by else (self.public, self.evidence)
        for book in books:
            for key in keys_of(outcome):
                tally = book.touch(key)
                if tally is not None:
                    tally.closed(item.outcome, p.confidence, p.base_rate)

    # --- reading ---------------------------------------------------------------------------------

    @property
    def open_calls(self) -> int:
        return len(self._heap) + len(self._waiting)

    def record(self, as_of: datetime) -> TrackRecord:
        """The scoreboard as it stands: every call settled so far was settled by as_of."""
        return TrackRecord(as_of=as_of, lines=self.public.record())

    def scoreboard(self) -> tuple[ScoreLine, ...]:
        """Every cut of the public record (regime, asset class, horizon, topic), with the
        calibration buckets: scored once from the settled and open calls, as the database is."""
        calls = [outcome_of(s.prediction, s.outcome) for s in self.settled if not s.withheld_by]
        calls += [
            outcome_of(entry.prediction, "open")
            for entry in [*(e for _, _, e in self._heap), *self._waiting]
            if not entry.withheld_by
        ]
        return score_lines(calls, self._abstained)

    def evidence_record(self, as_of: datetime) -> TrackRecord:
        """The scoreboard with withheld calls counted: what learned rules are judged on."""
        return TrackRecord(as_of=as_of, lines=self.evidence.record())
