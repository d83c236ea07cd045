"""The backtest's in-memory record: calls, abstentions and settlements, read point-in-time by
each cycle. Its scoreboard is shared.tallies' TallyBook fed the very deltas the database's flush
hook folds into its tables (shared.db.record): one record, kept the same way in both places."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime

from services.resolver.settle import judge
from services.synth.calibrate import History
from shared.contracts import NO_TAPE, Fingerprint, Outcome, Prediction, ScoreLine, TrackRecord
from shared.memory import LessonIndex, write_lesson
from shared.ports import RecordBook, SettlementPrices
from shared.scoring import ALL, Abstained, CallOutcome, Key
from shared.tallies import EVIDENCE, PUBLIC, TallyBook, abstained, closed, opened
from shared.trusted import built


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


def overall_or_regime(key: Key) -> bool:
    return key[2:] == (ALL, ALL, ALL)


def rule_category(key: Key) -> bool:
    """The cuts learned rules are about: overall, regime, asset class x horizon, topic."""
    _, regime, asset_class, horizon, topic = key
    return (asset_class == ALL) == (horizon == ALL) and ALL in (regime, topic)


class Ledger:
    """Every call and abstention of a backtest, settled by the resolver's own judge.

    `public` is the scoreboard (withheld calls excluded); `evidence` also counts calls a learned
    rule withheld, scored as if made, so that a rule can be retired when its evidence turns.
    """

    def __init__(self, *, max_attempts: int = 3) -> None:
        self.max_attempts = max_attempts
        # The record's aggregates through the port the fleet's database keeps them behind
        # (shared.ports.RecordBook; shared.db.record.StoredBook), in memory here.
        self.book: RecordBook = TallyBook()
        self.settled: list[Settled] = []
        self._heap: list[tuple[datetime, int, OpenCall]] = []
        self._waiting: list[OpenCall] = []
        self._numbers = 0
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
        self.book.apply(opened(CallOutcome.of(prediction, "open", withheld_by is not None)))

    def forecast(
        self, cycle_key: str, prediction: Prediction, final: float | None, calibrated: bool
    ) -> None:
        """A cycle's pooled forecast (an 'up' Prediction whose confidence is the raw pool) and
        the desk's final p(up), recalibrated or not."""
        self._numbers += 1
        entry = OpenForecast(self._numbers, cycle_key, prediction, final, calibrated)
        heapq.heappush(self._pending, (prediction.matures_at, entry.number, entry))

    def abstain(self, source: str, regime: str) -> None:
        self.book.apply(abstained(Abstained(source, regime)))

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
                kind=p.kind,
                range_pct=p.range_pct,
            )
            if verdict.outcome is None:
                if verdict.spent_attempt:
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
                if verdict.spent_attempt:
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
        tape = self.tapes.get(cycle_key, NO_TAPE)
        self.lessons.add(write_lesson(cycle_key, prediction, outcome, price, now, tape))

    def _close(self, item: Settled) -> None:
        self.book.apply(
            closed(CallOutcome.of(item.prediction, item.outcome, bool(item.withheld_by)))
        )

    # --- reading ---------------------------------------------------------------------------------

    @property
    def open_calls(self) -> int:
        return len(self._heap) + len(self._waiting)

    def record(self, as_of: datetime) -> TrackRecord:
        """The scoreboard as it stands: every call settled so far was settled by as_of."""
        return _record(as_of, self.book.lines(PUBLIC, overall_or_regime))

    def scoreboard(self) -> tuple[ScoreLine, ...]:
        """Every cut of the public record (regime, asset class, horizon, topic), with the
        calibration buckets, as the database's scoreboard reads it from its tallies."""
        return self.book.lines(PUBLIC, detail=True)

    def evidence_record(self, as_of: datetime) -> TrackRecord:
        """The scoreboard with withheld calls counted: what learned rules are judged on."""
        return _record(as_of, self.book.lines(EVIDENCE, rule_category))


def _record(as_of: datetime, lines: tuple[ScoreLine, ...]) -> TrackRecord:
    """A TrackRecord of the book's own lines at the replay clock's (aware) as_of, built trusted
    (shared.trusted): two of these a cycle, each of a few dozen lines validation would only
    check again."""
    return built(TrackRecord, {"as_of": as_of, "lines": lines})
