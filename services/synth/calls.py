"""The calls a cycle produces besides the synthesis' own: each mind's call and the pooled
forecast, as Predictions the resolver's judge can settle. Pure."""

from __future__ import annotations

import re

from shared.calendar import maturity
from shared.contracts import CycleContext, Dispatch, MindOutput, Prediction
from shared.events import asset_class
from shared.trusted import built

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
BASIS_MAX = 600


def first_sentence(text: str) -> str:
    """A mind's argument leads with its strongest evidence: the lesson's 'rested on'."""
    return _SENTENCE.split(text.strip(), maxsplit=1)[0][:BASIS_MAX] if text.strip() else ""


def mind_prediction(output: MindOutput, context: CycleContext) -> Prediction | None:
    """A mind's own call as a scorable prediction on the same terms as the synthesis' calls."""
    call = output.call
    if output.status != "ok" or call is None:
        return None
    features = context.features
    quote = context.snapshot.quote(call.target)
    reference = quote.price if quote else features.last_close.get(call.target)
    if reference is None or reference <= 0:
        return None
    session = quote.session if quote else features.session
    as_of = context.snapshot.as_of
    word = "above" if call.direction == "up" else "below"
    # Trusted (shared.trusted): every field, in field order, from a validated call and context: a
    # direction call (no threshold, range or band) on a positive reference, maturing after as_of.
    return built(
        Prediction,
        {
            "source": output.mind,
            "target": call.target,
            "kind": "direction",
            "direction": call.direction,
            "horizon_hours": call.horizon_hours,
            "reference_price": reference,
            "threshold": None,
            "range_pct": None,
            "band_pct": None,
            "confidence": call.probability,
            "falsifier": f"{call.target} does not close {word} {reference:.2f} at maturity",
            "made_at": as_of,
            "matures_at": maturity(as_of, session, call.horizon_hours),
            "regime": features.regime,
            "topic": output.topics[0] if output.topics else "index",
            "asset_class": asset_class(call.target),
            "base_rate": features.base_rate(call.target, call.horizon_hours, call.direction),
            "naive_probability": 0.5,  # a driftless random walk is a coin on direction
            "basis": first_sentence(output.argument),
        },
        _GIVEN,
    )


# The fields a mind's prediction states; kind, threshold, range and band are left at defaults.
_GIVEN = frozenset(Prediction.model_fields) - {"kind", "threshold", "range_pct", "band_pct"}


POOL = "pool"


def pooled_forecast(
    dispatch: Dispatch, context: CycleContext, horizon_hours: int
) -> Prediction | None:
    """The cycle's pooled p(up) as a forecast to settle, whether the desk called or abstained.

    The recalibration learns from these: every cycle's raw pool against whether the target then
    closed up. Carried as an 'up' Prediction whose confidence is the raw pool, so that the
    resolver's own judge settles it (a hit means the target closed above the reference).
    """
    target, raw = dispatch.target, dispatch.raw_probability_up
    if target is None or raw is None:
        return None
    features = context.features
    quote = context.snapshot.quote(target)
    reference = quote.price if quote else features.last_close.get(target)
    if reference is None or reference <= 0:
        return None
    session = quote.session if quote else features.session
    as_of = context.snapshot.as_of
    return Prediction(
        source=POOL,
        target=target,
        direction="up",
        horizon_hours=horizon_hours,
        reference_price=reference,
        confidence=raw,
        falsifier=f"{target} closes above {reference:.2f} or not",
        basis=", ".join(
            f"{m.mind} {m.stance} (weight {m.weight:.2f})"
            for m in dispatch.minds
            if m.status == "ok"
        )[:BASIS_MAX],
        made_at=as_of,
        matures_at=maturity(as_of, session, horizon_hours),
        regime=features.regime,
        base_rate=dispatch.base_rate_up,
    )
