"""The synthesis' decision in code: weigh minds by record, pool them, label the debate, decide.

Pure: no brain, no database; the same context and outputs give the same Deliberation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.calendar import maturity
from shared.contracts import (
    CycleContext,
    Debate,
    Deliberation,
    Direction,
    Features,
    MindOutput,
    MindSummary,
    Prediction,
    ScoreLine,
    TrackRecord,
)

# A mind that states a stance without its own call is read as this much edge at full confidence;
# it matches the offline minds' cap, so both kinds of output pool on one scale.
CONFIDENCE_EDGE = 0.15
TRADING_DAYS = 252
HOURS_PER_SESSION = 24
# Expected size of the move, in standard deviations of the horizon's return: roughly the middle
# half of |move| under a normal (the 25th to 80th percentile of a half-normal).
BAND_SD = (0.3, 1.3)


def _settled(line: ScoreLine | None) -> int:
    return 0 if line is None else line.hits + line.misses


def skill(record: TrackRecord, mind: str, regime: str) -> tuple[float, int]:
    """The mind's hit rate in the regime if it has settled calls there, else overall, and its n."""
    for key in (regime, "all"):
        line = record.line(mind, key)
        n = _settled(line)
        if line is not None and n > 0:
            return line.hits / n, n
    return 0.5, 0


def raw_weight(record: TrackRecord, mind: str, regime: str, prior_calls: int) -> float:
    """Skill relative to a coin (1.0 = coin), shrunk toward 1.0 by n/(n+prior_calls).

    Thin evidence must not swing the desk: two lucky calls barely move a mind off equal weight.
    """
    rate, n = skill(record, mind, regime)
    trust = n / (n + prior_calls) if n + prior_calls > 0 else 0.0
    return trust * (2.0 * rate) + (1.0 - trust) * 1.0


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


def _prediction(context: CycleContext, prob_up: float, horizon_hours: int) -> Prediction:
    features = context.features
    target = features.broad
    assert target is not None  # checked by the caller before any call is made
    reference = features.last_close[target]
    direction: Direction = "up" if prob_up > 0.5 else "down"
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
        confidence=round(max(prob_up, 1.0 - prob_up), 4),
        falsifier=(
            f"{target}'s first close at or after {matures_at:%Y-%m-%d %H:%M} UTC is "
            f"{wrong} {reference:.2f}"
        ),
        made_at=made_at,
        matures_at=matures_at,
        regime=features.regime,
        base_rate=features.base_rate(target, horizon_hours, direction),
    )


def deliberate(
    context: CycleContext,
    outputs: Sequence[MindOutput],
    *,
    horizon_hours: int = 24,
    min_edge: float = 0.03,
    prior_calls: int = 20,
) -> Deliberation:
    """Weighs whichever minds showed up and decides: one Prediction, or an abstention with why."""
    features = context.features
    regime = features.regime
    target = features.broad
    # One voice per mind: a redelivered output must not count twice.
    unique = list({o.mind: o for o in reversed(outputs)}.values())[::-1]
    present = [o for o in unique if o.status == "ok"]

    raw = {o.mind: raw_weight(context.record, o.mind, regime, prior_calls) for o in present}
    total = sum(raw.values())
    weights = {m: w / total for m, w in raw.items()} if total > 0 else {}

    prob_up: float | None = None
    if weights:
        prob_up = round(sum(weights[o.mind] * p_up(o, target) for o in present), 4)

    debate = label_debate(present)
    conviction = 0.0
    if prob_up is not None:
        edge_score = min(1.0, abs(prob_up - 0.5) / CONFIDENCE_EDGE)
        side = "bullish" if prob_up > 0.5 else "bearish"
        agreement = sum(weights[o.mind] for o in present if o.stance == side)
        conviction = round(edge_score * (0.5 + 0.5 * agreement), 3)

    prediction: Prediction | None = None
    abstention: str | None = None
    if prob_up is None:
        why = "; ".join(f"{o.mind} {o.status}: {o.reason}" for o in unique) or "no outputs"
        abstention = f"no mind showed up to argue ({why})"
    elif target is None or features.last_close.get(target) is None:
        abstention = f"the broad index {target or '(none configured)'} has no price at as_of"
    elif abs(prob_up - 0.5) < min_edge:
        abstention = (
            f"the pooled edge is {abs(prob_up - 0.5):.3f} (p(up) {prob_up:.3f}), below "
            f"the {min_edge:.3f} I need before calling a coin-flip market"
        )
    else:
        prediction = _prediction(context, prob_up, horizon_hours)

    minds = tuple(
        MindSummary(
            mind=o.mind,
            status=o.status,
            stance=o.stance,
            confidence=o.confidence,
            weight=round(weights.get(o.mind, 0.0), 4),
            reason=o.reason,
        )
        for o in unique
    )
    return Deliberation(
        minds=minds,
        outputs=tuple(unique),
        debate=debate,
        conviction=conviction,
        probability_up=prob_up,
        prediction=prediction,
        abstention=abstention,
        missing=_missing(context, unique),
        record=context.record,
    )
