"""One cycle's dispatch from the minds' outputs: mark who didn't reply, deliberate, get words.

Pure: no database, no Celery; the task that calls it owns storage and retries.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.synth.calibrate import Calibrator
from services.synth.deliberate import deliberate
from services.synth.menu import MenuCalibrator, Option
from services.synth.rules import active, count_stops
from services.synth.stories import follow
from shared.contracts import (
    CycleContext,
    Deliberation,
    Dispatch,
    DispatchDraft,
    LearnedRule,
    Memory,
    MindOutput,
    Outcome,
    Prediction,
    Recap,
    Story,
)
from shared.ports import Brain

NO_REPLY = "no reply"


def with_absentees(
    outputs: Sequence[MindOutput], expected_minds: Sequence[str]
) -> list[MindOutput]:
    """Expected minds in configured order, each with its output or marked absent; extras last."""
    by_mind: dict[str, MindOutput] = {}
    for output in outputs:
        by_mind.setdefault(output.mind, output)
    ordered = [
        by_mind.get(m) or MindOutput.absent(m, NO_REPLY) for m in dict.fromkeys(expected_minds)
    ]
    extras = [o for m, o in by_mind.items() if m not in set(expected_minds)]
    return ordered + extras


def _settles_now(call: Prediction, context: CycleContext) -> tuple[Outcome, float] | None:
    """The previous call's outcome when this cycle's close is the one that settles it.

    The same rule as the resolver's judge (the first close at or after maturity, strictly beyond
    the line); a call maturing later, or whose target has no close here, is left to the resolver.
    """
    features = context.features
    close = features.last_close.get(call.target)
    if close is None or call.matures_at > context.snapshot.as_of:
        return None
    quote = context.snapshot.quote(call.target)
    session = quote.session if quote else features.session
    if session < call.matures_at.date():
        return None
    hit = close > call.line if call.direction == "up" else close < call.line
    return ("hit" if hit else "miss"), close


def recap(
    previous: Dispatch | None, rules: Sequence[LearnedRule], context: CycleContext
) -> Recap | None:
    """What the last dispatch said, as this one needs it to tell what changed since."""
    if previous is None or previous.as_of >= context.snapshot.as_of:
        return None
    before = {r.id for r in previous.rules if r.status == "active"}
    now = {r.id for r in rules if r.status == "active"}
    settled = _settles_now(previous.prediction, context) if previous.prediction else None
    return Recap(
        as_of=previous.as_of,
        minds=previous.minds,
        prediction=previous.prediction,
        probability_up=previous.probability_up,
        stories=previous.stories,
        settled=settled[0] if settled else None,
        settle_price=settled[1] if settled else None,
        new_rules=tuple(r for r in rules if r.status == "active" and r.id not in before),
        retired_rules=tuple(r for r in rules if r.id in before and r.id not in now),
    )


def synthesize(
    context: CycleContext,
    outputs: Sequence[MindOutput],
    brain: Brain,
    *,
    expected_minds: Sequence[str],
    horizon_hours: int = 24,
    calibrator: Calibrator | None = None,
    rules: Sequence[LearnedRule] = (),
    stories: Sequence[Story] = (),
    recalled: Sequence[Memory] = (),
    menu: MenuCalibrator | None = None,
    previous: Dispatch | None = None,
    menu_candidates: Sequence[Option] | None = None,
    warm_note: str | None = None,
) -> Dispatch:
    """The cycle's Dispatch: the decision from deliberate, the words from the brain.

    rules is the whole rule book (retired rules included, as history); the active ones are
    enforced, and the dispatch carries the book on with this cycle's stops counted. stories
    are the last cycle's, followed on here; recalled are the past lessons the caller found;
    previous is the last dispatch, so that the words can say what changed since;
    menu_candidates, the menu's candidates if the caller built them (see deliberate); warm_note,
    what a live desk's warm start rests on (or why it has none), said before the record's basis.
    """
    decision = decide(
        context,
        outputs,
        expected_minds=expected_minds,
        horizon_hours=horizon_hours,
        calibrator=calibrator,
        rules=rules,
        stories=stories,
        recalled=recalled,
        menu=menu,
        previous=previous,
        menu_candidates=menu_candidates,
        warm_note=warm_note,
    )
    return publish(decision, context, rules, brain.write(decision, context))


def decide(
    context: CycleContext,
    outputs: Sequence[MindOutput],
    *,
    expected_minds: Sequence[str],
    horizon_hours: int = 24,
    calibrator: Calibrator | None = None,
    rules: Sequence[LearnedRule] = (),
    stories: Sequence[Story] = (),
    recalled: Sequence[Memory] = (),
    menu: MenuCalibrator | None = None,
    previous: Dispatch | None = None,
    menu_candidates: Sequence[Option] | None = None,
    warm_note: str | None = None,
) -> Deliberation:
    """Everything of the dispatch but its words (see synthesize): what the brain writes from."""
    everyone = with_absentees(outputs, expected_minds)
    decision = deliberate(
        context,
        everyone,
        horizon_hours=horizon_hours,
        calibrator=calibrator,
        rules=active(rules),
        stories=follow(stories, context.features),
        recalled=recalled,
        menu=menu,
        menu_candidates=menu_candidates,
    )
    basis = decision.record_basis
    if warm_note:
        basis = f"{warm_note}; {basis}" if basis else warm_note
    return decision.model_copy(
        update={"previous": recap(previous, rules, context), "record_basis": basis}
    )


def publish(
    decision: Deliberation,
    context: CycleContext,
    rules: Sequence[LearnedRule],
    draft: DispatchDraft,
) -> Dispatch:
    """The dispatch of a decision in the brain's words; rules is the book decide was given."""
    snapshot = context.snapshot
    return Dispatch(
        cycle_key=snapshot.cycle_key,
        cycle_number=context.cycle_number,
        as_of=snapshot.as_of,
        title=draft.title,
        body_md=draft.body_md,
        debate=decision.debate,
        conviction=decision.conviction,
        minds=decision.minds,
        prediction=decision.prediction,
        abstention=decision.abstention,
        regime=context.features.regime,
        regime_score=context.features.regime_score,
        missing=decision.missing,
        rules_applied=decision.rules_applied,
        withheld=decision.withheld,
        rules=count_stops(rules, (w.rule for w in decision.withheld)),
        stories=decision.stories,
        recalled=decision.recalled,
        probability_up=decision.probability_up,
        raw_probability_up=decision.raw_probability_up,
        target=decision.target,
        base_rate_up=decision.base_rate_up,
        recalibration=decision.recalibration,
        chosen=decision.chosen,
        closest=decision.closest,
        considered=decision.considered,
        record_basis=decision.record_basis,
    )
