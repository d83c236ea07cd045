"""Finding cycles that launched but never published, and taking one re-drive of each.

A cycle can stall after launch in many ways (a mind's result lost while Redis was down, the
synthesis failing on a storage error past its retries, a worker lost with its messages). The
sweep finds every cycle with no dispatch whose last start (claim, launch or re-drive) is older
than the deadline; each is re-driven (its minds' chord sent again from the stored snapshot) a
bounded number of times, then closed with a dispatch that says why. Taking a re-drive is a
compare-and-set on the cycle's row, so two sweepers (or a sweep and a trigger) never both act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from shared.db.models import Cycle, DispatchRecord

FAILED = "failed"


@dataclass(frozen=True)
class Stuck:
    cycle_key: str
    redrives: int
    since: datetime


def _last_start() -> ColumnElement[datetime]:
    return func.coalesce(Cycle.redriven_at, Cycle.launched_at, Cycle.claimed_at)


def stuck_cycles(
    session: Session, now: datetime, deadline: timedelta, *, cycle_key: str | None = None
) -> list[Stuck]:
    """Cycles with no dispatch whose last start is older than the deadline (oldest first)."""
    started = _last_start()
    query = (
        select(Cycle.cycle_key, Cycle.redrives, started)
        .where(~Cycle.cycle_key.in_(select(DispatchRecord.cycle_key)))
        .where(Cycle.status != FAILED)
        .where(started < now - deadline)
        .order_by(Cycle.id)
        .limit(100)
    )
    if cycle_key is not None:
        query = query.where(Cycle.cycle_key == cycle_key)
    return [Stuck(key, redrives or 0, since) for key, redrives, since in session.execute(query)]


def take_redrive(session: Session, stuck: Stuck, now: datetime) -> bool:
    """Claim the next re-drive of a stuck cycle; False if someone else took it first."""
    result = session.execute(
        update(Cycle)
        .where(Cycle.cycle_key == stuck.cycle_key)
        .where(Cycle.redrives == stuck.redrives)
        .where(~Cycle.cycle_key.in_(select(DispatchRecord.cycle_key)))
        .values(redrives=stuck.redrives + 1, redriven_at=now, status="redriven")
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def give_up(session: Session, cycle_key: str, reason: str) -> None:
    """Stop sweeping a cycle even its closing dispatch could not be written for."""
    session.execute(
        update(Cycle)
        .where(Cycle.cycle_key == cycle_key)
        .values(status=FAILED, error=reason[:2000])
        .execution_options(synchronize_session=False)
    )
