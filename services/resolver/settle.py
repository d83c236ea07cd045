"""Judging a matured call from a price, never from a model's opinion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.contracts import Outcome, Quote

# A call whose first close after maturity cannot be found this long after maturity is no longer
# waiting on a weekend or a holiday: its price is missing, and each further pass counts a retry.
GRACE = timedelta(hours=96)


@dataclass(frozen=True, slots=True)
class Judgement:
    outcome: Outcome | None  # None: not yet, try again later
    settle_price: float | None
    realized_move_pct: float | None
    reason: str
    # A pass past the grace period that still found no price: one of the call's attempts.
    spent_attempt: bool = False


def judge(
    direction: str,
    reference_price: float,
    line: float,
    quote: Quote | None,
    *,
    matures_at: datetime,
    now: datetime,
    attempts: int,
    max_attempts: int,
) -> Judgement:
    """Hit when the close is strictly beyond the line in the called direction; flat is a miss.

    Without a price: wait through the grace period, then count attempts, then inconclusive.
    """
    if quote is None:
        if now < matures_at + GRACE:
            return Judgement(None, None, None, "waiting for the first close after maturity")
        if attempts + 1 >= max_attempts:
            return Judgement(
                "inconclusive",
                None,
                None,
                f"no price after maturity in {attempts + 1} attempts",
            )
        return Judgement(
            None, None, None, f"no price yet (attempt {attempts + 1})", spent_attempt=True
        )
    move = (quote.price / reference_price - 1.0) * 100.0
    beyond = quote.price > line if direction == "up" else quote.price < line
    verb = "closed" if beyond else "did not close"
    side = "above" if direction == "up" else "below"
    return Judgement(
        "hit" if beyond else "miss",
        quote.price,
        move,
        f"{verb} {side} {line:.2f}: {quote.price:.2f} on {quote.session} ({move:+.2f}%)",
    )
