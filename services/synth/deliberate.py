"""The synthesis' decision in code: weigh minds by skill, pool them, recalibrate the pool from its
own settled history, label the debate, and call only with an edge over the base rate.

Pure: no brain, no database; the same context, outputs and calibrator give the same Deliberation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.synth.calibrate import Calibrator
from services.synth.calls import mind_prediction
from services.synth.menu import MenuCalibrator, Option, candidates, choose, leaned, prediction_of
from services.synth.rules import forbidding
from shared.calendar import maturity
from shared.contracts import (
    CycleContext,
    Debate,
    Deliberation,
    Direction,
    Features,
    LearnedRule,
    Memory,
    MindOutput,
    MindSummary,
    Prediction,
    ScoreLine,
    Story,
    TrackRecord,
    WithheldCall,
)
from shared.events import asset_class, topic_of
from shared.trusted import built

# A mind that states a stance without its own call is read as this much edge at full confidence;
# it matches the offline minds' cap, so both kinds of output pool on one scale.
CONFIDENCE_EDGE = 0.15
TRADING_DAYS = 252
HOURS_PER_SESSION = 24
# Expected size of the move, in standard deviations of the horizon's return: roughly the middle
# half of |move| under a normal (the 25th to 80th percentile of a half-normal).
BAND_SD = (0.3, 1.3)


# A mind's Brier skill moves its weight by SKILL_GAIN x skill (0.025 of skill = double weight),
# scaled by trust = n / (n + PRIOR_CALLS) so that thin evidence leaves it near equal weight.
SKILL_GAIN = 40.0
PRIOR_CALLS = 250
# Without recalibration the raw pool must sit this far from a coin before the desk calls.
MIN_EDGE = 0.03
# Recalibrated, this much edge over the base rate must remain beyond one standard error of the
# calibrated probability.
MIN_REMAINING_EDGE = 0.005


def _settled(line: ScoreLine | None) -> int:
    return 0 if line is None else line.hits + line.misses


def skill(record: TrackRecord, mind: str, regime: str) -> tuple[float, int]:
    """The mind's Brier skill in the regime if it has settled calls there, else overall, and n."""
    for key in (regime, "all"):
        line = record.line(mind, key)
        n = _settled(line)
        if line is not None and n > 0 and line.brier_skill is not None:
            return line.brier_skill, n
    return 0.0, 0


def raw_weight(
    record: TrackRecord, mind: str, regime: str, prior_calls: int = PRIOR_CALLS
) -> float:
    """1.0 for a mind with no record; above for skill over the base rate, below (down to 0, never
    negative) for a mind that loses to it; shrunk toward 1.0 by n / (n + prior_calls).

    A mind that keeps losing to the base rate in this regime stops being listened to.
    """
    value, n = skill(record, mind, regime)
    trust = n / (n + prior_calls) if n + prior_calls > 0 else 0.0
    return max(0.0, 1.0 + SKILL_GAIN * trust * value)


def p_up(output: MindOutput, target: str | None) -> float:
    """The mind's probability that the target rises; neutral (or no view) is a coin."""
    if output.status != "ok" or output.stance == "neutral":
        return 0.5
    call = output.call
    if call is not None and call.target == target:
        return call.probability if call.direction == "up" else 1.0 - call.probability
    edge = output.confidence * CONFIDENCE_EDGE
    return 0.5 + edge if output.stance == "bullish" else 0.5 - edge


def label_debate(present: Sequence[MindOutput]) -> Debate:
    stances = {o.stance for o in present if o.stance != "neutral"}
    if len(present) < 2 or not stances:
        return "unknown"
    if stances == {"bullish", "bearish"}:
        return "divergent"
    return "aligned_bullish" if stances == {"bullish"} else "aligned_bearish"


def _missing(context: CycleContext, outputs: Sequence[MindOutput]) -> tuple[str, ...]:
    # A whole feed down matters more than any single series, so it is said first.
    items = [
        f"the {h.source} feed ({h.status}{': ' + h.detail[:160] if h.detail else ''})"
        for h in context.snapshot.health
        if h.status in ("error", "empty")
    ]
    items += [f"{o.mind} mind absent: {o.reason}" for o in outputs if o.status == "absent"]
    for flag in context.snapshot.flags:
        detail = f" ({flag.detail})" if flag.detail else ""
        items.append(f"{flag.subject}: {flag.code.replace('_', ' ')}{detail}")
    items += [f"{name} not computable" for name in context.features.unknown]
    return tuple(dict.fromkeys(items))  # keeps order, drops repeats


def _band(features: Features, horizon_hours: int) -> tuple[float, float] | None:
    vol = features.realized_vol_20d
    if vol is None or vol <= 0:
        return None
    sd = vol * math.sqrt(horizon_hours / HOURS_PER_SESSION / TRADING_DAYS)
    return (round(BAND_SD[0] * sd, 2), round(BAND_SD[1] * sd, 2))


def _prediction(
    context: CycleContext, prob_up: float, direction: Direction, horizon_hours: int, basis: str
) -> Prediction:
    features = context.features
    target = features.broad
    assert target is not None  # checked by the caller before any call is made
    reference = features.last_close[target]
    made_at = context.snapshot.as_of
    # The reference is the last close, so the horizon runs from that close: a 24 h call on
    # Monday's close is judged on Tuesday's close, not Wednesday's.
    quote = context.snapshot.quote(target)
    matures_at = maturity(made_at, quote.session if quote else features.session, horizon_hours)
    wrong = "at or below" if direction == "up" else "at or above"
    return Prediction(
        target=target,
        direction=direction,
        horizon_hours=horizon_hours,
        reference_price=reference,
        band_pct=_band(features, horizon_hours),
        confidence=round(prob_up if direction == "up" else 1.0 - prob_up, 4),
        falsifier=(
            f"{target}'s first close at or after {matures_at:%Y-%m-%d %H:%M} UTC is "
            f"{wrong} {reference:.2f}"
        ),
        made_at=made_at,
        matures_at=matures_at,
        regime=features.regime,
        asset_class=asset_class(target),
        topic=topic_of(target),
        base_rate=features.base_rate(target, horizon_hours, direction),
        naive_probability=0.5,  # a driftless random walk is a coin on direction
        basis=basis[:600],
    )


def pool(
    present: Sequence[MindOutput], record: TrackRecord, regime: str, target: str | None,
    prior_calls: int = PRIOR_CALLS,
) -> tuple[dict[str, float], float | None]:  # fmt: skip
    """Skill weights (summing to 1) and the weighted p(up); a coin when every weight is zero."""
    raw = {o.mind: raw_weight(record, o.mind, regime, prior_calls) for o in present}
    total = sum(raw.values())
    if not present:
        return {}, None
    if total <= 0:
        return dict.fromkeys(raw, 0.0), 0.5
    weights = {m: w / total for m, w in raw.items()}
    return weights, round(sum(weights[o.mind] * p_up(o, target) for o in present), 4)


def _decide(
    prob: float, reference: float, stderr: float, min_edge: float, calibrated: bool
) -> tuple[Direction | None, str]:
    """The direction worth calling, or None with the reason.

    The remaining edge is the distance from the reference (the base rate once recalibrated, a
    coin before) less one standard error of the probability itself: an edge no bigger than the
    calibration's own uncertainty is not an edge. It must reach min_edge, and the probability
    must lean past a coin the same way, before a call is made.
    """
    edge = prob - reference
    remaining = abs(edge) - stderr
    if remaining >= min_edge and edge > 0 and prob > 0.5:
        return "up", ""
    if remaining >= min_edge and edge < 0 and prob < 0.5:
        return "down", ""
    if not calibrated:
        return None, (
            f"the pooled edge is {abs(edge):.3f} (p(up) {prob:.3f}), below the "
            f"{min_edge:.3f} I need before calling a coin-flip market"
        )
    head = f"calibrated p(up) {prob:.3f} against a base rate of {reference:.3f}"
    if remaining >= min_edge:
        return None, f"{head}: an edge, but it does not lean past a coin the way it points"
    return None, (
        f"{head} is an edge of {edge:+.3f}, and my calibration is only good to ±{stderr:.3f}: "
        f"{max(0.0, remaining):.3f} of edge remains, below the {min_edge:.3f} I need to call"
    )


def deliberate(
    context: CycleContext,
    outputs: Sequence[MindOutput],
    *,
    horizon_hours: int = 24,
    min_edge: float | None = None,
    prior_calls: int = PRIOR_CALLS,
    calibrator: Calibrator | None = None,
    rules: Sequence[LearnedRule] = (),
    stories: Sequence[Story] = (),
    recalled: Sequence[Memory] = (),
    menu: MenuCalibrator | None = None,
    menu_candidates: Sequence[Option] | None = None,
) -> Deliberation:
    """Weighs whichever minds showed up and decides: one Prediction, or an abstention with why.

    With a calibrator (the fleet and the backtest always pass one) the pool is recalibrated and
    must beat the target's base rate; until the calibrator rests on enough settled forecasts the
    desk abstains. Without one (a bare call) the raw pool is judged against a coin. Active
    learned rules are enforced last: a call one forbids (the desk's or a mind's) is not made; it
    is withheld, named in rules_applied, and left for the shadow record. menu_candidates is the menu
    without the minds' lean (menu.candidates of these features) when the caller built it already.
    """
    features = context.features
    regime = features.regime
    target = features.broad
    # One voice per mind: a redelivered output must not count twice.
    unique = list({o.mind: o for o in reversed(outputs)}.values())[::-1]
    present = [o for o in unique if o.status == "ok"]

    weights, raw_prob = pool(present, context.record, regime, target, prior_calls)
    base_up = features.base_rate(target, horizon_hours, "up") if target else None
    prob_up = raw_prob
    if raw_prob is not None and calibrator is not None and calibrator.ready:
        prob_up = round(calibrator.apply(raw_prob, base_up), 4)
    calibrated = calibrator is not None and calibrator.ready
    reference = base_up if (calibrated and base_up is not None) else 0.5
    stderr = 0.0
    if calibrated and calibrator is not None and raw_prob is not None:
        stderr = round(calibrator.stderr(raw_prob, base_up), 4)

    debate = label_debate(present)
    conviction = 0.0
    if prob_up is not None:
        edge_score = min(1.0, abs(prob_up - reference) / CONFIDENCE_EDGE)
        side = "bullish" if prob_up > reference else "bearish"
        agreement = sum(weights[o.mind] for o in present if o.stance == side)
        conviction = round(edge_score * (0.5 + 0.5 * agreement), 3)

    prediction: Prediction | None = None
    abstention: str | None = None
    chosen = closest = None
    considered = 0
    if menu is not None and raw_prob is not None:
        # The menu: every priceable candidate, calibrated per kind, the largest edge called.
        lean = {target: raw_prob - 0.5} if target else {}
        menu_options = leaned(
            menu_candidates if menu_candidates is not None else candidates(features), lean
        )
        considered = len(menu_options)
        best, near, why = choose(menu_options, menu)
        if best is not None:
            weighed_minds = ", ".join(
                f"{o.mind} {o.stance} (weight {weights[o.mind]:.2f})" for o in present
            )
            basis = (
                f"{best.wording()}: calibrated {best.probability:.3f} against its base rate "
                f"{best.base:.3f} and the naive random walk's {best.naive:.3f} "
                f"(±{best.stderr:.3f}), the largest edge of {considered} candidates; the minds "
                "pooled p(up) "
                f"{raw_prob:.3f} on {target} ({weighed_minds})."
            )
            prediction = prediction_of(best, context.snapshot.as_of, regime, basis)
            chosen = best.candidate("the largest edge over its base rate beyond its error")
        else:
            abstention = why
            closest = near.candidate(why) if near is not None else None
    elif prob_up is None:
        why = "; ".join(f"{o.mind} {o.status}: {o.reason}" for o in unique) or "no outputs"
        abstention = f"no mind showed up to argue ({why})"
    elif target is None or features.last_close.get(target) is None:
        abstention = f"the broad index {target or '(none configured)'} has no price at as_of"
    elif calibrator is not None and not calibrator.ready:
        abstention = (
            f"my pooled probabilities are not calibrated yet: {calibrator.n} of the "
            f"{calibrator.minimum} settled forecasts I need before I trust them with a call"
        )
    else:
        need = (
            min_edge if min_edge is not None else (MIN_REMAINING_EDGE if calibrated else MIN_EDGE)
        )
        direction, why = _decide(prob_up, reference, stderr, need, calibrated)
        if direction is None:
            abstention = why
        else:
            weighed = ", ".join(
                f"{o.mind} {o.stance} (weight {weights[o.mind]:.2f})" for o in present
            )
            basis = (
                f"the minds pooled by skill to p(up) {raw_prob:.3f} ({weighed}), recalibrated "
                f"to {prob_up:.3f} against a base rate of {reference:.3f}."
            )
            prediction = _prediction(context, prob_up, direction, horizon_hours, basis)

    withheld: list[WithheldCall] = []
    applied: list[str] = []
    if prediction is not None:
        rule = forbidding(rules, prediction)
        if rule is not None:
            withheld.append(WithheldCall(rule=rule.id, prediction=prediction))
            applied.append(f"{rule.describe()}: my {prediction.direction} call was not made")
            abstention = f"my learned rule {rule.category} stopped the call ({rule.describe()})"
            prediction = None
    for output in present:
        call = mind_prediction(output, context) if rules else None
        rule = forbidding(rules, call) if call is not None else None
        if call is not None and rule is not None:
            withheld.append(WithheldCall(rule=rule.id, prediction=call))
            applied.append(f"{rule.describe()}: {output.mind}'s {call.direction} call withheld")

    # Trusted (shared.trusted): every field, in field order, of a validated output and its
    # weight (a share of a non-negative total, or none).
    minds = tuple(
        built(
            MindSummary,
            {
                "mind": o.mind,
                "status": o.status,
                "stance": o.stance,
                "confidence": o.confidence,
                "weight": round(weights.get(o.mind, 0.0), 4),
                "reason": o.reason,
            },
        )
        for o in unique
    )
    # Trusted (shared.trusted): every field, in field order, computed above from validated
    # inputs (probabilities rounded inside [0, 1], tuples built as tuples); the previous dispatch's
    # recap is left unset, for decide to add.
    return built(
        Deliberation,
        {
            "minds": minds,
            "outputs": tuple(unique),
            "debate": debate,
            "conviction": conviction,
            "probability_up": prob_up,
            "prediction": prediction,
            "abstention": abstention,
            "rules_applied": tuple(applied),
            "missing": _missing(context, unique),
            "record": context.record,
            "raw_probability_up": raw_prob,
            "base_rate_up": base_up,
            "recalibration": calibrator.describe() if calibrator is not None else None,
            "withheld": tuple(withheld),
            "stories": tuple(stories),
            "recalled": tuple(recalled),
            "probability_stderr": stderr if calibrated else None,
            "target": target,
            "horizon_hours": horizon_hours,
            "chosen": chosen,
            "closest": closest,
            "considered": considered,
            "record_basis": menu.describe() if menu is not None else None,
            "previous": None,
        },
        _DECIDED,
    )


# The fields deliberate states; the recap of the previous dispatch is decide's.
_DECIDED = frozenset(Deliberation.model_fields) - {"previous"}
