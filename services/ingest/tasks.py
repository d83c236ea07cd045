"""Ingest's Celery adapters: validate the trigger, build the point-in-time snapshot, claim the
cycle key, and launch the minds' chord. The work itself lives in pure modules."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import chord
from pydantic import ValidationError

from services.ingest import cycle as cycles
from services.ingest import sweep
from services.ingest.cycle import parse_trigger
from shared import tasknames
from shared.calendar import utc_now
from shared.celery_app import app, settings_of
from shared.contracts import CycleContext, CycleTrigger, Features, Snapshot
from shared.db.session import checkpoint, session_scope
from shared.errors import BadInputError
from shared.market.opening import replay_market
from shared.moments import check_moment
from shared.records import track_record
from shared.tasking import STORAGE_RETRY, key_or_none, rejected

log = structlog.get_logger("ingest")


@app.task(name=tasknames.START_CYCLE, bind=True, **STORAGE_RETRY)
def start_cycle(self: Any, payload: Any) -> dict[str, Any]:
    """Start one cycle from a trigger message; a repeated key is acknowledged and ignored."""
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(task_id=self.request.id)
    # Only a well-formed key goes into the log context: the payload is untrusted.
    key = key_or_none(payload.get("cycle_key")) if isinstance(payload, dict) else None
    structlog.contextvars.bind_contextvars(cycle_key=key)
    try:
        trigger = parse_trigger(payload)
        if trigger.mode == "live":
            # Fetching the sources is most of a live cycle: a repeated key is found before it.
            with session_scope(settings_of(app).db_url) as session:
                duplicate = cycles.is_duplicate(session, trigger.cycle_key)
            return _repeated(trigger) if duplicate else _fetch_live(trigger)
        # A replay's snapshot costs less than a transaction: the claim finds a repeated key.
        market = replay_market(trigger.data_dir)
        snapshot = market.snapshot(trigger)
        features = market.features(snapshot)
        return launch(trigger, snapshot, features)
    except BadInputError as error:
        rejected(str(error), task=tasknames.START_CYCLE)
        raise
    finally:
        log.info("task.finished", task=tasknames.START_CYCLE, seconds=time.perf_counter() - started)
        structlog.contextvars.clear_contextvars()


def launch(trigger: CycleTrigger, snapshot: Snapshot, features: Features) -> dict[str, Any]:
    """Claim the key and hand the context to every mind at once; the synthesis is the body."""
    settings = settings_of(app)
    url = settings.db_url  # resolved from the home's path each time it is asked
    # The claim's commit is all the minds wait for: its checkpoint comes with the launch mark's,
    # after they are sent (one checkpoint per launch, off the cycle's critical path).
    with session_scope(url, checkpoint=False) as session:
        snapshot = cycles.with_notes(session, snapshot)
        context = cycles.claim(session, trigger, snapshot, features)
    if context is None:
        return _repeated(trigger)
    try:
        _send_minds(context)
    except BaseException:
        checkpoint(url)  # what was committed is in the main file, sent or not
        raise
    with session_scope(url) as session:
        cycles.mark_launched(session, trigger.cycle_key)
    log.info(
        "cycle.launched",
        cycle_number=context.cycle_number,
        minds=list(settings.minds),
        flags=len(snapshot.flags),
        regime=features.regime,
    )
    return {
        "cycle_key": trigger.cycle_key,
        "cycle_number": context.cycle_number,
        "status": "launched",
    }


def _repeated(trigger: CycleTrigger) -> dict[str, Any]:
    """A key already launched or published is acknowledged and ignored, unless its cycle never
    published: then it is re-driven."""
    with session_scope(settings_of(app).db_url) as session:
        stuck = sweep.stuck_cycles(session, utc_now(), _deadline(), cycle_key=trigger.cycle_key)
    if stuck:
        return {"cycle_key": trigger.cycle_key, "status": redrive(stuck[0], utc_now())}
    log.info("cycle.duplicate", outcome="ignored")
    return {"cycle_key": trigger.cycle_key, "status": "duplicate"}


def _send_minds(context: CycleContext) -> None:
    """Every mind gets the context at once; the synthesis is the chord's body."""
    settings = settings_of(app)
    message = context.model_dump(mode="json")
    key = context.snapshot.cycle_key
    # Each message's argsrepr (what events and monitors show of its arguments) is said here: Celery
    # would otherwise build it with its safe repr, walking each context in Python (about a
    # millisecond a mind, on the critical path); the body's, likewise, when the last mind sends it.
    header = [
        app.signature(
            tasknames.mind_task(m),
            args=[cycles.for_mind(message, m)],
            argsrepr=f"[<{m}'s context for {key}>]",
        )
        for m in settings.minds
    ]
    replies = f"[<the minds' replies for {key}>]"
    body = app.signature(tasknames.SYNTHESIZE, kwargs={"cycle_key": key}, argsrepr=replies)
    chord(header)(body)


def _deadline() -> timedelta:
    return timedelta(seconds=settings_of(app).cycle_deadline_s)


def redrive(stuck: sweep.Stuck, now: datetime) -> str:
    """Take one re-drive of a stuck cycle: send its minds again, or close it when the re-drives
    are spent (a dispatch with every mind absent, saying why). Returns what was done."""
    settings = settings_of(app)
    structlog.contextvars.bind_contextvars(cycle_key=stuck.cycle_key)
    context = None
    with session_scope(settings.db_url) as session:
        if not sweep.take_redrive(session, stuck, now):
            return "duplicate"
        if stuck.redrives > settings.max_redrives:
            # Even the closing dispatch could not be written: stop, loudly.
            reason = f"no dispatch after {stuck.redrives} re-drives and a closing attempt"
            sweep.give_up(session, stuck.cycle_key, reason)
            log.error("cycle.failed", reason=reason)
            return "failed"
        cycle = cycles.existing_cycle(session, stuck.cycle_key)
        if cycle is not None and stuck.redrives < settings.max_redrives:
            context = CycleContext(
                cycle_number=cycle.id,
                snapshot=Snapshot.model_validate(cycle.snapshot),
                features=Features.model_validate(cycle.features),
                record=track_record(session, cycle.as_of),
            )
    waited = round((now - stuck.since).total_seconds())
    if context is not None:
        _send_minds(context)
        log.warning("cycle.redriven", redrive=stuck.redrives + 1, waited_s=waited)
        return "redriven"
    reason = (
        f"the cycle did not publish within {settings.cycle_deadline_s:g}s, "
        f"{stuck.redrives} re-drive(s) included; closed by the sweep"
    )
    app.send_task(
        tasknames.SYNTHESIZE, args=[[]], kwargs={"cycle_key": stuck.cycle_key, "close": reason}
    )
    log.warning("cycle.closing", redrives=stuck.redrives, waited_s=waited, reason=reason)
    return "closing"


@app.task(name=tasknames.SWEEP, **STORAGE_RETRY)
def sweep_stuck() -> dict[str, Any]:
    """Beat's sweep: every cycle that never published within its deadline is re-driven once
    more, or closed with a dispatch that says why."""
    settings = settings_of(app)
    now = utc_now()
    with session_scope(settings.db_url) as session:
        found = sweep.stuck_cycles(session, now, _deadline())
    outcomes: dict[str, int] = {}
    for stuck in found:
        try:
            outcome = redrive(stuck, now)
        finally:
            structlog.contextvars.clear_contextvars()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if found:
        log.info("sweep.finished", stuck=len(found), **outcomes)
    return {"stuck": len(found), **outcomes}


def _fetch_live(trigger: CycleTrigger) -> dict[str, Any]:
    """Every live source is its own task, run as a group; assembly waits for all of them."""
    from shared.market.live import build_sources

    settings = settings_of(app)
    names = sorted(build_sources(settings))
    header = [
        app.signature(tasknames.FETCH_SOURCE, args=[name, trigger.as_of.isoformat()])
        for name in names
    ]
    body = app.signature(
        tasknames.ASSEMBLE, kwargs={"payload": trigger.model_dump(mode="json"), "expected": names}
    )
    chord(header)(body)
    log.info("cycle.fetching", sources=names)
    return {"cycle_key": trigger.cycle_key, "status": "fetching", "sources": names}


@app.task(name=tasknames.FETCH_SOURCE, bind=True)
def fetch_source(self: Any, name: Any, as_of: Any) -> dict[str, Any]:
    """Fetch one live source; a dead feed comes back as a health record, never as an error."""
    from celery.exceptions import SoftTimeLimitExceeded

    from shared.contracts import FeedHealth, SourceResult
    from shared.market.live import build_sources

    settings = settings_of(app)
    try:
        moment = check_moment(as_of, "as_of")
        if not isinstance(name, str) or name not in build_sources(settings):
            raise ValueError(f"no live source named {str(name)[:80]!r}")
    except ValueError as error:
        rejected(str(error), task=tasknames.FETCH_SOURCE)
        raise BadInputError(str(error)) from None
    try:
        result = build_sources(settings)[name].fetch(moment)
    except SoftTimeLimitExceeded:
        result = SourceResult(
            source=name, health=FeedHealth(source=name, status="error", detail="time limit")
        )
    except Exception as error:  # process edge: a source bug must not sink the cycle
        log.exception("source.failed", source=name)
        result = SourceResult(
            source=name,
            health=FeedHealth(
                source=name, status="error", detail=f"{type(error).__name__}: {error}"[:300]
            ),
        )
    log.info("source.fetched", source=name, status=result.health.status)
    return result.model_dump(mode="json")


@app.task(name=tasknames.ASSEMBLE, bind=True, **STORAGE_RETRY)
def assemble(self: Any, results: Any, payload: Any, expected: Any) -> dict[str, Any]:
    """Merge the sources' answers into one snapshot and launch the minds."""
    from services.ingest.live import assemble_live
    from shared.contracts import SourceResult

    settings = settings_of(app)
    try:
        trigger = parse_trigger(payload)
        structlog.contextvars.bind_contextvars(cycle_key=trigger.cycle_key, task_id=self.request.id)
        if not isinstance(results, list) or not isinstance(expected, list):
            raise BadInputError("assemble needs a list of source results and of expected sources")
        try:
            parsed = [SourceResult.model_validate(r) for r in results]
        except ValidationError as error:
            problems = error.error_count()
            raise BadInputError(f"malformed source result: {problems} problems") from None
    except BadInputError as error:
        rejected(str(error), task=tasknames.ASSEMBLE)
        structlog.contextvars.clear_contextvars()
        raise
    if settings.record_dir is not None:
        from shared.market.live.recorder import record

        record(settings.record_dir, parsed)
    snapshot, features = assemble_live(trigger, parsed, expected=expected)
    return launch(trigger, snapshot, features)


@app.task(name=tasknames.POST_NOTE, **STORAGE_RETRY)
def post_note(payload: Any) -> dict[str, Any]:
    """Take an operator's note from its queue into the inbox the next snapshots read."""
    from shared.contracts import OperatorNote

    try:
        note = OperatorNote.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'note'}: {e['msg']}" for e in error.errors()
        )
        rejected(f"malformed note: {problems}", task=tasknames.POST_NOTE)
        raise BadInputError(f"malformed note: {problems}") from None
    settings = settings_of(app)
    with session_scope(settings.db_url) as session:
        note_id = cycles.post_note(session, note)
    log.info("note.posted", note_id=note_id, author=note.author, chars=len(note.text))
    return {"note_id": note_id}


@app.task(name=tasknames.TRIGGER_LIVE)
def trigger_live() -> dict[str, Any]:
    """Beat's live cycle: the slot (to the minute) is the cycle key, so one slot is one cycle."""
    settings = settings_of(app)
    now = utc_now()
    slot = now.replace(second=0, microsecond=0)
    trigger = CycleTrigger(cycle_key=f"live:{slot:%Y%m%dT%H%M}", as_of=now, mode="live")
    app.send_task(tasknames.START_CYCLE, args=[trigger.model_dump(mode="json")])
    log.info("cycle.triggered", cycle_key=trigger.cycle_key, every_s=settings.cycle_every_s)
    return {"cycle_key": trigger.cycle_key}
