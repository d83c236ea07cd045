"""Judging a matured call from a price, never from a model's opinion: the one judge the resolver,
the backtest and the menu's calibration all settle with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from shared.calendar import session_close
from shared.contracts import Outcome, Quote, event_holds

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
    # When the settling close became known (None without one): a replay's clock for the call.
    known_at: datetime | None = None

    def settled_at(self, mode: str, now: datetime, matures_at: datetime) -> datetime:
        """When the call was settled on the clock of the market it was made on: a replay's call
        is settled when its close became known (or its grace ran out), never on the wall clock
        of the machine that ran the resolver."""
        if mode != "replay":
            return now
        return min(now, self.known_at or matures_at + GRACE)


def outcome(
    direction: str,
    reference_price: float,
    line: float,
    quote: Quote | None,
    *,
    matures_at: datetime,
    now: datetime,
    attempts: int,
    max_attempts: int,
    kind: str = "direction",
    range_pct: float | None = None,
) -> Outcome | None:
    """The judge's verdict alone (None: not yet), without the reason's words: what the menu's
    thousands of candidates a cycle need. judge() explains this same verdict."""
    before = verdict_before_terms(
        quote, matures_at=matures_at, now=now, attempts=attempts, max_attempts=max_attempts
    )
    if before != TERMS or quote is None:
        return None if before is None else "inconclusive"
    beyond = event_holds(kind, direction, reference_price, line, range_pct, quote.price)
    return "hit" if beyond else "miss"


# What verdict_before_terms says when the quote is there and on time: the call's terms decide.
TERMS: Final = "terms"
Before = Literal["inconclusive", "terms"] | None


def verdict_before_terms(
    quote: Quote | None, *, matures_at: datetime, now: datetime, attempts: int, max_attempts: int
) -> Before:
    """The part of outcome() every call maturing at one time on one quote shares: None (not
    yet), inconclusive (no price past the grace, or a gap), or TERMS: hit or miss by the call's
    own terms (event_holds on the quote's price). The menu settles each symbol's candidates of
    one maturity on one quote."""
    if quote is None:
        if now < matures_at + GRACE or attempts + 1 < max_attempts:
            return None
        return "inconclusive"
    if late(quote, matures_at):
        return "inconclusive"
    return TERMS


def late(quote: Quote, matures_at: datetime) -> bool:
    """Whether the quote's close came later than the grace period after maturity (a gap)."""
    return session_close(quote.session) > matures_at + GRACE


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
    kind: str = "direction",
    range_pct: float | None = None,
) -> Judgement:
    """Hit when the first close at or after maturity makes the call true as worded (see
    shared.contracts.event_holds: beyond a line is strict, so flat is a miss; a range's band
    is inclusive).

    Without a price: wait through the grace period, then count attempts, then inconclusive. A
    close found, but later than the grace period after maturity (a gap in the data), settles
    nothing: the call is inconclusive, never a hit or a miss on a move it did not name.
    """
    verdict = outcome(
        direction, reference_price, line, quote, matures_at=matures_at, now=now,
        attempts=attempts, max_attempts=max_attempts, kind=kind, range_pct=range_pct,
    )  # fmt: skip
    if quote is None:
        if now < matures_at + GRACE:
            return Judgement(None, None, None, "waiting for the first close after maturity")
        if verdict is not None:
            return Judgement(
                verdict, None, None, f"no price after maturity in {attempts + 1} attempts"
            )
        return Judgement(
            None, None, None, f"no price yet (attempt {attempts + 1})", spent_attempt=True
        )
    move = (quote.price / reference_price - 1.0) * 100.0
    if verdict == "inconclusive":
        closed_at = session_close(quote.session)
        return Judgement(
            verdict,
            quote.price,
            move,
            reason=f"the first close after maturity is {quote.session}, "
            f"{(closed_at - matures_at).days} days late (grace {GRACE.days} days): a gap in the "
            "prices, not the move the call named",
            known_at=quote.observed_at,
        )
    verb = "closed" if verdict == "hit" else "did not close"
    if kind == "range":
        where = f"within ±{range_pct:g}% of {reference_price:.2f}"
        if direction == "outside":
            where = where.replace("within", "outside")
    else:
        where = f"{'above' if direction == 'up' else 'below'} {line:.2f}"
    return Judgement(
        verdict,
        quote.price,
        move,
        f"{verb} {where}: {quote.price:.2f} on {quote.session} ({move:+.2f}%)",
        known_at=quote.observed_at,
    )
