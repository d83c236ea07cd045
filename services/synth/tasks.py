"""The synthesis' Celery adapter: the body of the minds' chord."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from celery.signals import worker_process_init
from pydantic import ValidationError
from sqlalchemy import Text, bindparam, cast, exists, select

from services.synth.calibrate import Calibrator, fit
from services.synth.menu import MenuCalibrator
from services.synth.rules import update_rules
from services.synth.store import history_at, store_cycle
from services.synth.synthesize import synthesize as compose
from services.synth.warm import replay_menu
from services.synth.warm_live import live_menu, warm_in_background
from shared import tasknames
from shared.brain.factory import brain_from_settings as brain_for
from shared.brain.fallback import UnavailableModelWriter
from shared.brain.retry import retry_countdown
from shared.celery_app import app, settings_of
from shared.contracts import (
    CycleContext,
    Dispatch,
    Features,
    LearnedRule,
    Memory,
    MindOutput,
    Snapshot,
    Story,
)
from shared.db import record as desk_state
from shared.db.models import Cycle, DispatchRecord
from shared.db.record import State, StateConflict
from shared.db.session import session_scope
from shared.db.turns import turn
from shared.errors import BadInputError, TransientError
from shared.market.opening import replay_market
from shared.memory import fingerprint, recall_from
from shared.records import cycle_number, lessons_near, previous_dispatch, track_record
from shared.settings import Settings
from shared.tasking import STORAGE_RETRY, key_or_none, rejected

log = structlog.get_logger("synth")


def _outputs(results: list[Any], expected: tuple[str, ...]) -> list[MindOutput]:
    outputs: list[MindOutput] = []
    for index, raw in enumerate(results):
        try:
            outputs.append(MindOutput.model_validate(raw))
        except ValidationError:
            name = expected[index] if index < len(expected) else f"mind-{index}"
            outputs.append(MindOutput.absent(name, "its reply did not match the contract"))
    return outputs


MAX_MODEL_RETRIES = 3
# Concurrent cycles that keep moving the desk's state under this one: redo at most this often.
STATE_ATTEMPTS = 5
# How long a synthesis waits for its turn on the desk's state before it goes on without it (and
# the version check alone guards the state): far more than one synthesis takes, offline or not.
TURN_WAIT_S = 30.0


@dataclass(frozen=True)
class Reading:
    """What a cycle weighs, read in one transaction, and the state it was read at."""

    context: CycleContext
    calibrator: Calibrator
    rules: tuple[LearnedRule, ...]
    stories: tuple[Story, ...]
    recalled: tuple[Memory, ...]
    state: State
    current: bool  # at or after the state's as_of: this cycle carries the state forward
    previous: Dispatch | None = None  # the last dispatch before it, for what changed since
    menu: MenuCalibrator | None = None
    warm_note: str | None = None  # a live desk's warm start: what it rests on, or why nothing


# The cycle's row, its snapshot and features as their stored JSON text (pydantic parses and
# validates each in one pass), and whether it was published already: one statement.
_CYCLE = select(
    Cycle,
    cast(Cycle.snapshot, Text).label("snapshot"),
    cast(Cycle.features, Text).label("features"),
    exists().where(DispatchRecord.cycle_key == Cycle.cycle_key).label("published"),
).where(Cycle.cycle_key == bindparam("key"))


def read_cycle(cycle_key: str, settings: Settings) -> Reading | None:
    """The cycle's context, record, recalibration, rule book, stories and lessons; None when the
    cycle was already published."""
    with session_scope(settings.db_url) as session:
        found = session.execute(_CYCLE, {"key": cycle_key}).first()
        if found is not None and found.published:
            return None
        if found is None or found.snapshot is None or found.features is None:
            rejected(f"cycle {cycle_key} has no stored snapshot", task=tasknames.SYNTHESIZE)
            raise BadInputError(f"cycle {cycle_key} has no stored snapshot")
        cycle = found.Cycle
        context = CycleContext(
            cycle_number=cycle_number(session, cycle),
            snapshot=Snapshot.model_validate_json(found.snapshot),
            features=Features.model_validate_json(found.features),
            record=track_record(session, cycle.as_of),
        )
        state = desk_state.load_state(session)
        # A cycle at or after the state's as_of carries it forward; an older one (a backfill)
        # reads what the last dispatch before it carried and leaves the state alone.
        current = state.as_of is None or cycle.as_of >= state.as_of
        # The same recalibration the backtest fits, from the forecasts settled by as_of.
        calibrator = fit(history_at(session, cycle.as_of), start=state.fit if current else None)
        before = previous_dispatch(session, cycle.as_of)
        if current:
            book, stories = state.rules, state.stories
        else:
            book, stories = (before.rules, before.stories) if before else ((), ())
        # The rule book carried forward, judged on today's evidence.
        evidence = track_record(session, cycle.as_of, include_withheld=True)
        rules = update_rules(book, evidence, cycle.as_of)
        # What earlier cycles on a tape like this one taught, none settled after as_of.
        features, tape = context.features, fingerprint(context.features)
        recalled = (
            recall_from(
                lessons_near(session, features.broad, features.regime, tape, cycle.as_of),
                features.broad,
                features.regime,
                tape,
                cycle.as_of,
            )
            if features.broad
            else ()
        )
        mode, data_dir, as_of = cycle.mode, cycle.data_dir, cycle.as_of
    # The menu's calibration, warm from the price history before as_of: the replay's own, or
    # for a live desk Yahoo's daily history fetched once a day (without it, no menu, and why).
    menu: MenuCalibrator | None
    if mode == "replay":
        menu = replay_menu(data_dir or "", replay_market(data_dir), as_of,
                           sessions=settings.warm_sessions)  # fmt: skip
        warm_note = None
    else:
        live = live_menu(settings, as_of)
        menu, warm_note = live.menu, live.basis
    # The prompts see what the desk learned: the rule book, the stories, the lessons.
    context = context.model_copy(update={"rules": tuple(rules), "recalled": tuple(recalled)})
    return Reading(context, calibrator, tuple(rules), tuple(stories), tuple(recalled), state,
                   current, before, menu, warm_note)  # fmt: skip


def store_reading(
    reading: Reading, dispatch: Dispatch, outputs: list[MindOutput], settings: Settings
) -> bool:
    """Store the cycle and, in the same transaction, the state it leaves (rules, stories, the
    fit) over the version it read. Raises StateConflict (nothing stored) if another cycle
    stored a state in between; False if the cycle was already published."""
    with session_scope(settings.db_url) as session:
        stored = store_cycle(
            session, dispatch, outputs, reading.context, horizon_hours=settings.horizon_hours
        )
        if stored and reading.current:
            fitted = reading.calibrator
            desk_state.save_state(
                session, reading.state, dispatch.as_of, dispatch.rules, dispatch.stories,
                (fitted.a, fitted.b, fitted.n),
            )  # fmt: skip
    return stored


# A worker that consumes the synthesis queue of a live desk warms its menu as it starts (each pool
# process its own: the fit lives in the process's memory), so `workshop up` is warm by the first
# cycle. The queues the worker consumes were chosen in its main process before the pool forked,
# so a pool process reads them from the app it inherited.
@worker_process_init.connect
def _warm_at_start(**_: Any) -> None:
    if tasknames.SYNTH_QUEUE in app.amqp.queues.consume_from:
        warm_in_background(settings_of(app))


# Storage errors retry with backoff (STORAGE_RETRY, up to ten times); model errors retry at most
# MAX_MODEL_RETRIES times by hand below, then publish in the deterministic writer's words.
@app.task(name=tasknames.SYNTHESIZE, bind=True, **STORAGE_RETRY)
def synthesize(self: Any, results: Any, cycle_key: Any, close: Any = None) -> dict[str, Any]:
    """Weigh whoever showed up, write the dispatch, store it once for the cycle key.

    `close` (from the stuck-cycle sweep) publishes the cycle with every mind absent for that
    reason: a dispatch that says why the cycle could not complete.

    One synthesis at a time reads and stores the desk's state (shared.db.turns): the others
    wait their turn rather than redo their cycle on a state that moved under them."""
    with turn(settings_of(app).db_url, "synthesis state", wait_s=TURN_WAIT_S):
        return _synthesize(self, results, cycle_key, close)


def _synthesize(self: Any, results: Any, cycle_key: Any, close: Any) -> dict[str, Any]:
    started = time.perf_counter()
    key = key_or_none(cycle_key)
    structlog.contextvars.bind_contextvars(cycle_key=key, task_id=self.request.id)
    settings = settings_of(app)
    if key is None or not isinstance(results, list):
        reason = "synthesis needs a well-formed cycle key and a list of the minds' replies"
        rejected(reason, task=tasknames.SYNTHESIZE)
        structlog.contextvars.clear_contextvars()
        raise BadInputError(reason)
    try:
        outputs = (
            _outputs(results, settings.minds)
            if close is None
            else [MindOutput.absent(m, str(close)[:300]) for m in settings.minds]
        )
        for attempt in range(1, STATE_ATTEMPTS + 1):
            reading = read_cycle(cycle_key, settings)
            if reading is None:
                log.info("synth.duplicate", outcome="ignored")
                return {"cycle_key": cycle_key, "status": "duplicate"}

            def dispatch_with(brain: Any, reading: Reading = reading) -> Any:
                return compose(
                    reading.context,
                    outputs,
                    brain,
                    expected_minds=settings.minds,
                    horizon_hours=settings.horizon_hours,
                    calibrator=reading.calibrator,
                    rules=reading.rules,
                    stories=reading.stories,
                    recalled=reading.recalled,
                    menu=reading.menu,
                    warm_note=reading.warm_note,
                    previous=reading.previous,
                )

            try:
                dispatch = dispatch_with(brain_for(settings))
            except TransientError as error:
                # The model is rate-limited, overloaded or unreachable: retry with Celery's
                # backoff and jitter (never sooner than its retry-after); when the retries are
                # spent, the cycle still publishes, in the deterministic writer's words, saying so.
                if self.request.retries < MAX_MODEL_RETRIES:
                    wait = retry_countdown(self.request.retries, error)
                    log.warning("synth.model_retry", error=str(error), countdown=round(wait, 2))
                    raise self.retry(exc=error, countdown=wait) from None
                log.warning("synth.model_unavailable", error=str(error))
                dispatch = dispatch_with(UnavailableModelWriter(str(error)))
            try:
                stored = store_reading(reading, dispatch, outputs, settings)
            except StateConflict:
                # Another cycle stored the desk's state since this one read it: read it again
                # and redo, so that no cycle's rules or stories are built on a stale state.
                log.info("synth.state_moved", attempt=attempt)
                continue
            break
        else:
            raise StateConflict(f"the desk's state kept moving for {STATE_ATTEMPTS} attempts")
        log.info(
            "synth.completed",
            outcome="published" if stored else "duplicate",
            cycle_number=dispatch.cycle_number,
            debate=dispatch.debate,
            conviction=round(dispatch.conviction, 3),
            call=dispatch.prediction.wording if dispatch.prediction else None,
            abstention=dispatch.abstention,
            seconds=round(time.perf_counter() - started, 4),
        )
        return {
            "cycle_key": cycle_key,
            "status": "published" if stored else "duplicate",
            "title": dispatch.title,
        }
    finally:
        structlog.contextvars.clear_contextvars()
