"""The backtest engine: the fleet's own code (snapshot and features, the minds' think, the
synthesis, the resolver's judge, the learning) run in one process over every trading day of a
replay directory, with an in-memory record fed back point-in-time. No broker, network or database.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from services.minds.think import think
from services.synth.calibrate import Calibrator, fit
from services.synth.calls import mind_prediction, pooled_forecast
from services.synth.menu import MenuBook, candidates, leaned
from services.synth.rules import update_rules
from services.synth.synthesize import decide, publish
from services.synth.warm import WARM_SESSIONS, warm_book
from shared.brain.offline import OfflineBrain
from shared.calendar import replay_as_of
from shared.collector import paused
from shared.contracts import (
    SYNTHESIS,
    CycleContext,
    CycleTrigger,
    Deliberation,
    Dispatch,
    DispatchDraft,
    Features,
    LearnedRule,
    MindOutput,
    ScoreLine,
    Snapshot,
    Story,
    TrackRecord,
)
from shared.market.replay import ReplayMarket, load_replay, sample_data_dir
from shared.memory import fingerprint
from shared.ports import Brain
from shared.settings import DEFAULT_MINDS
from shared.trusted import built
from workshop.backtest.ledger import Ledger, Settled

Progress = Callable[[int, int], None]
# What a cycle's dispatch says until its words are written: the report shows only the last
# dispatch and the last call, so only theirs are (the words never feed a decision).
UNWRITTEN = DispatchDraft(
    title="(words not written)",
    body_md="The backtest writes the words of the dispatches its report shows.\n",
)


@dataclass(frozen=True, slots=True)
class MindRow:
    mind: str
    status: str
    stance: str
    confidence: float
    probability_up: float | None


@dataclass(frozen=True, slots=True)
class CycleRow:
    """One cycle as the report and the plots see it."""

    day: date
    cycle_key: str
    regime: str
    target: str | None
    probability_up: float | None
    raw_probability_up: float | None
    base_rate_up: float | None
    calibrated_on: int
    direction: str | None
    confidence: float | None
    abstention: str | None
    rules_applied: tuple[str, ...]
    minds: tuple[MindRow, ...]
    flags: int
    recalled: tuple[tuple[str, datetime, datetime], ...] = ()  # cycle key, made, settled
    stories: tuple[tuple[str, str], ...] = ()  # key, status
    kind: str | None = None  # of the call made, if any
    call_target: str | None = None
    warm: bool = False  # the menu's calibration was trusted for some kind this cycle


@dataclass
class BacktestResult:
    """Everything a backtest produced; the report is written from this."""

    data_dir: Path
    start: date
    end: date
    minds: tuple[str, ...]
    horizon_hours: int
    cycles: int = 0
    seconds: float = 0.0
    ledger: Ledger = field(default_factory=Ledger)
    rows: list[CycleRow] = field(default_factory=list)
    flags: Counter[str] = field(default_factory=Counter)
    last_dispatch: Dispatch | None = None
    last_call: Dispatch | None = None
    rules: tuple[LearnedRule, ...] = ()
    board: tuple[ScoreLine, ...] | None = None  # the full scoreboard, scored once when asked
    warm: int = 0  # candidates the warm start settled before the first cycle
    record_basis: str | None = None  # what the first cycle's calibration rested on


def label_of(data_dir: Path) -> str:
    return data_dir.resolve().name[:32] or "replay"


@paused()  # a backtest makes no cyclic garbage; collecting walked all it holds (shared.collector)
def run_backtest(
    data_dir: Path | None,
    start: date,
    end: date,
    *,
    minds: Sequence[str] = DEFAULT_MINDS,
    horizon_hours: int = 24,
    brain: Brain | None = None,
    market: ReplayMarket | None = None,
    on_cycle: Progress | None = None,
    cold: bool = False,
    warm_sessions: int = WARM_SESSIONS,
    refit_every: int = 20,
    write_every: bool = False,
) -> BacktestResult:
    """Run one cycle per trading day from start to end inclusive, in order, on the replay clock.

    Before each cycle the ledger settles what matured by its as_of, exactly as the resolver
    does before a fleet cycle; the cycle then sees only that record. Unless cold, the menu's
    calibration starts warm: fitted on the warm_sessions before the first cycle, point-in-time
    (services.synth.warm). It is refitted every refit_every cycles on what settled by then.
    The brain writes the words of the last dispatch and the last call, the ones the report shows
    (nothing the desk decides reads them); write_every has it write every cycle's, as the fleet.
    Raises ReplayFormatError (a BadInputError) if the directory is not a valid replay, and
    BadInputError naming the data's range if no session of it falls between start and end.
    """
    started = time.perf_counter()
    directory = Path(data_dir) if data_dir is not None else sample_data_dir()
    market = market or ReplayMarket(load_replay(directory))
    brain = brain or OfflineBrain()
    minds = tuple(minds)
    result = BacktestResult(directory, start, end, minds, horizon_hours)
    ledger = result.ledger
    days = market.require_sessions(start, end)
    label = label_of(directory)
    calibrator: Calibrator | None = None
    book: tuple[LearnedRule, ...] = ()
    stories: tuple[Story, ...] = ()
    menu = MenuBook()
    unwritten: dict[str, tuple[Deliberation, CycleContext]] = {}
    if days and not cold:
        menu = warm_book(market, replay_as_of(days[0]), sessions=warm_sessions)
    result.warm = menu.warm
    for number, day in enumerate(days, start=1):
        as_of = replay_as_of(day)
        ledger.settle(market, as_of)
        menu.settle(market, as_of)
        if menu.calibrator is None or (number - 1) % refit_every == 0:
            menu.refit()
        # Refitted every cycle on what settled by as_of; the last fit only speeds convergence.
        calibrator = fit(ledger.history, start=(calibrator.a, calibrator.b) if calibrator else None)
        book = update_rules(book, ledger.evidence_record(as_of), as_of)
        trigger = CycleTrigger(
            cycle_key=f"backtest:{label}:{day.isoformat()}",
            as_of=as_of,
            mode="replay",
            data_dir=str(directory),
        )
        snapshot = market.snapshot(trigger)
        features = market.features(snapshot)
        context = _context(number, snapshot, features, ledger.record(as_of))
        outputs = [think(brain, mind, context) for mind in minds]
        tape = fingerprint(features)
        ledger.tapes[trigger.cycle_key] = tape
        recalled = (
            ledger.lessons.recall(features.broad, features.regime, tape, as_of)
            if features.broad
            else ()
        )
        # The menu without the minds' lean, built once: the synthesis and the book lean it.
        weighed = candidates(features)
        decision = decide(
            context,
            outputs,
            expected_minds=minds,
            horizon_hours=horizon_hours,
            calibrator=calibrator,
            rules=book,
            stories=stories,
            recalled=recalled,
            menu=menu.calibrator,
            previous=result.last_dispatch,
            menu_candidates=weighed,
        )
        draft = brain.write(decision, context) if write_every else UNWRITTEN
        dispatch = publish(decision, context, book, draft)
        if not write_every:
            unwritten[dispatch.cycle_key] = (decision, context)
        if result.record_basis is None:
            result.record_basis = dispatch.record_basis
        book, stories = dispatch.rules, dispatch.stories
        raw = dispatch.raw_probability_up
        lean = {features.broad: raw - 0.5} if features.broad and raw is not None else {}
        menu.propose(leaned(weighed, lean), as_of, desk=True, calibrator=menu.calibrator)
        _store(ledger, dispatch, outputs, context)
        forecast = pooled_forecast(dispatch, context, horizon_hours)
        if forecast is not None:
            ready = dispatch.recalibration is not None and dispatch.recalibration.ready
            ledger.forecast(dispatch.cycle_key, forecast, dispatch.probability_up, ready)
        result.flags.update(f"{f.code}: {f.subject}" for f in snapshot.flags)
        ready = menu.calibrator is not None and any(f.ready for f in menu.calibrator.fits.values())
        result.rows.append(_row(day, dispatch, context, ready))
        if dispatch.prediction is not None:
            result.last_call = dispatch
        if not write_every:
            # Only the words the result may still show are kept waiting: the last call's and
            # the last dispatch's.
            keep = (dispatch.cycle_key, _key(result.last_call))
            for key in [k for k in unwritten if k not in keep]:
                del unwritten[key]
        result.last_dispatch = dispatch
        if on_cycle is not None:
            on_cycle(number, len(days))
    # A last pass on the last as_of changes nothing a cycle saw; it settles what already could be.
    if days:
        ledger.settle(market, replay_as_of(days[-1]))
        result.start, result.end = days[0], days[-1]
    if result.last_dispatch is not None and not write_every:
        result.last_dispatch = _written(brain, result.last_dispatch, unwritten)
    if result.last_call is not None and not write_every:
        same = _key(result.last_call) == _key(result.last_dispatch)
        result.last_call = (
            result.last_dispatch if same else _written(brain, result.last_call, unwritten)
        )
    result.rules = book
    result.cycles = len(days)
    result.seconds = time.perf_counter() - started
    return result


def _context(
    number: int, snapshot: Snapshot, features: Features, record: TrackRecord
) -> CycleContext:
    """The cycle's context, built trusted (shared.trusted) from the replay's validated snapshot and
    features and the ledger's record; rules, stories and lessons are left at their defaults, as
    the validated build left them (the backtest hands those to the synthesis directly)."""
    return built(
        CycleContext,
        {
            "cycle_number": number,
            "snapshot": snapshot,
            "features": features,
            "record": record,
            "rules": (),
            "stories": (),
            "recalled": (),
        },
        _GIVEN,
    )


_GIVEN = ("cycle_number", "snapshot", "features", "record")


def _key(dispatch: Dispatch | None) -> str | None:
    return dispatch.cycle_key if dispatch is not None else None


def _written(
    brain: Brain, dispatch: Dispatch, unwritten: dict[str, tuple[Deliberation, CycleContext]]
) -> Dispatch:
    """The dispatch in the brain's words, written from the decision and context it was made on."""
    decision, context = unwritten[dispatch.cycle_key]
    draft = brain.write(decision, context)
    return dispatch.model_copy(update={"title": draft.title, "body_md": draft.body_md})


def _store(
    ledger: Ledger, dispatch: Dispatch, outputs: Sequence[MindOutput], context: CycleContext
) -> None:
    """What the synthesis task stores in the database, kept in the ledger instead."""
    regime = dispatch.regime
    key = dispatch.cycle_key
    stopped = {w.prediction.source: w for w in dispatch.withheld}
    for item in stopped.values():
        ledger.call(key, item.prediction, withheld_by=item.rule)
    if dispatch.prediction is not None:
        ledger.call(key, dispatch.prediction)
    else:
        ledger.abstain(SYNTHESIS, regime)
    for output in outputs:
        prediction = mind_prediction(output, context)
        if prediction is not None and output.mind not in stopped:
            ledger.call(key, prediction)
        else:
            ledger.abstain(output.mind, regime)


def _row(day: date, dispatch: Dispatch, context: CycleContext, warm: bool) -> CycleRow:
    p = dispatch.prediction
    return CycleRow(
        day=day,
        cycle_key=dispatch.cycle_key,
        regime=dispatch.regime,
        target=dispatch.target,
        probability_up=dispatch.probability_up,
        raw_probability_up=dispatch.raw_probability_up,
        base_rate_up=dispatch.base_rate_up,
        calibrated_on=dispatch.recalibration.n if dispatch.recalibration else 0,
        direction=p.direction if p else None,
        confidence=p.confidence if p else None,
        abstention=dispatch.abstention,
        rules_applied=dispatch.rules_applied,
        minds=tuple(
            MindRow(s.mind, s.status, s.stance, s.confidence, None) for s in dispatch.minds
        ),
        flags=len(context.snapshot.flags),
        recalled=tuple((m.cycle_key, m.made_at, m.settled_at) for m in dispatch.recalled),
        stories=tuple((s.key, s.status) for s in dispatch.stories),
        kind=p.kind if p else None,
        call_target=p.target if p else None,
        warm=warm,
    )


def settled_of(result: BacktestResult, source: str) -> list[Settled]:
    return [s for s in result.ledger.settled if s.source == source and s.withheld_by is None]
