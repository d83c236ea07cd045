"""Reading dispatches for people: the list, one dispatch by its number, its trail, its call's
status. Pure functions over a database session; the pages, the feed, the API and the terminal
all read through here.

A dispatch's permanent number is its row id in the dispatches table: given once, when it is
published, and never reused or renumbered (a cycle number can repeat across replays of different
directories; the dispatch number cannot).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.calendar import utc_now
from shared.contracts import SYNTHESIS, Dispatch, Lesson
from shared.db.models import (
    Cycle,
    DispatchRecord,
    LessonRecord,
    MindRecord,
    PredictionRecord,
)
from workshop import render
from workshop.web.schema import CallStatus, DispatchList, DispatchSummary, DispatchView

PER_PAGE = 20
NEWEST_FIRST = (DispatchRecord.as_of.desc(), DispatchRecord.id.desc())


def slugify(title: str, limit: int = 80) -> str:
    """The title in lower-case ASCII words joined by hyphens, e.g. 'the-rally-doesn-t-hold'."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    cut = words[:limit].rstrip("-")
    return cut or "dispatch"


def dispatch_path(number: int, title: str) -> str:
    return f"/read/{number}/{slugify(title)}"


def desk_clock(session: Session, mode: str) -> datetime:
    """'Now' for a call's time left: the wall clock for live cycles, and for replayed ones the
    replay's clock (the newest replayed as_of), so a 2015 call is not shown as 11 years late."""
    if mode != "replay":
        return utc_now()
    newest = session.scalar(select(func.max(Cycle.as_of)).where(Cycle.mode == "replay"))
    if newest is None:
        return utc_now()
    return newest if newest.tzinfo is not None else newest.replace(tzinfo=utc_now().tzinfo)


def _left(seconds: float) -> str:
    hours = int(seconds // 3600)
    if hours >= 48:
        return f"{hours // 24} d {hours % 24} h left"
    if hours >= 1:
        return f"{hours} h left"
    return f"{max(1, int(seconds // 60))} min left"


def call_status(dispatch: Dispatch, row: PredictionRecord | None, clock: datetime) -> CallStatus:
    """Where a dispatch's call stands at the clock, from its stored prediction row."""
    if dispatch.prediction is None:
        return CallStatus(state="no_call", text="No call", reason=dispatch.abstention)
    call = dispatch.prediction
    if row is None or row.status == "open":
        matures = row.matures_at if row is not None else call.matures_at
        left = (matures - clock).total_seconds()
        text = (
            f"Open — {_left(left)}" if left > 0 else "Open — matured, waiting on the settling close"
        )
        return CallStatus(state="open", text=text, matures_at=matures, seconds_left=max(0.0, left))
    state = row.status if row.status in ("hit", "miss", "inconclusive") else "inconclusive"
    if state == "inconclusive":
        text = f"Inconclusive — {row.settle_reason or 'no price to settle on'}"
    else:
        move = "" if row.realized_move_pct is None else f" ({row.realized_move_pct:+.2f}%)"
        close = "" if row.settle_price is None else f": {call.target} closed {row.settle_price:.2f}"
        text = f"{state.capitalize()}{close}{move}"
    return CallStatus(
        state=state,
        text=text,
        matures_at=row.matures_at,
        settled_at=row.settled_at,
        settle_price=row.settle_price,
        realized_move_pct=row.realized_move_pct,
        reason=row.settle_reason,
    )


def call_text(dispatch: Dispatch) -> str:
    """The call in one line, or 'no call' (the abstention's reason is on the dispatch page)."""
    return "no call" if dispatch.prediction is None else render.call_line(dispatch)


def _calls_of(session: Session, keys: Sequence[str]) -> dict[str, PredictionRecord]:
    """The published call (the synthesis', not one a rule withheld) of each cycle key."""
    if not keys:
        return {}
    rows = session.scalars(
        select(PredictionRecord).where(
            PredictionRecord.cycle_key.in_(keys),
            PredictionRecord.source == SYNTHESIS,
            PredictionRecord.withheld_by.is_(None),
        )
    )
    return {row.cycle_key: row for row in rows}


def _modes_of(session: Session, keys: Sequence[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = session.execute(select(Cycle.cycle_key, Cycle.mode).where(Cycle.cycle_key.in_(keys)))
    return {str(key): str(mode) for key, mode in rows}


class _Clocks:
    """The desk clock per mode, read once per request."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[str, datetime] = {}

    def __call__(self, mode: str) -> datetime:
        if mode not in self.known:
            self.known[mode] = desk_clock(self.session, mode)
        return self.known[mode]


def _summaries(session: Session, rows: Sequence[DispatchRecord]) -> list[DispatchSummary]:
    keys = [row.cycle_key for row in rows]
    calls, modes, clocks = _calls_of(session, keys), _modes_of(session, keys), _Clocks(session)
    out = []
    for row in rows:
        dispatch = Dispatch.model_validate(row.payload)
        clock = clocks(modes.get(row.cycle_key, "live"))
        out.append(
            DispatchSummary(
                number=row.id,
                slug=slugify(row.title),
                url=dispatch_path(row.id, row.title),
                cycle_number=row.cycle_number,
                cycle_key=row.cycle_key,
                as_of=row.as_of,
                title=row.title,
                call=call_text(dispatch),
                status=call_status(dispatch, calls.get(row.cycle_key), clock),
            )
        )
    return out


def list_dispatches(session: Session, page: int = 1, per_page: int = PER_PAGE) -> DispatchList:
    """One page of dispatches, newest first; a page past the end has no items."""
    total = int(session.scalar(select(func.count(DispatchRecord.id))) or 0)
    rows = session.scalars(
        select(DispatchRecord).order_by(*NEWEST_FIRST).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return DispatchList(
        page=page,
        pages=-(-total // per_page),
        per_page=per_page,
        total=total,
        items=tuple(_summaries(session, rows)),
    )


def _neighbour(session: Session, row: DispatchRecord, *, older: bool) -> int | None:
    """The number of the dispatch just before (older) or after (newer) it in time."""
    if older:
        query = select(DispatchRecord.id).where(
            (DispatchRecord.as_of < row.as_of)
            | ((DispatchRecord.as_of == row.as_of) & (DispatchRecord.id < row.id))
        )
        query = query.order_by(*NEWEST_FIRST)
    else:
        query = select(DispatchRecord.id).where(
            (DispatchRecord.as_of > row.as_of)
            | ((DispatchRecord.as_of == row.as_of) & (DispatchRecord.id > row.id))
        )
        query = query.order_by(DispatchRecord.as_of, DispatchRecord.id)
    return session.scalar(query.limit(1))


def dispatch_view(session: Session, number: int) -> DispatchView | None:
    """One dispatch by its permanent number, with its call's status and its neighbours."""
    row = session.get(DispatchRecord, number)
    if row is None:
        return None
    dispatch = Dispatch.model_validate(row.payload)
    mode = _modes_of(session, [row.cycle_key]).get(row.cycle_key, "live")
    call = _calls_of(session, [row.cycle_key]).get(row.cycle_key)
    path = dispatch_path(row.id, row.title)
    return DispatchView(
        number=row.id,
        slug=slugify(row.title),
        url=path,
        markdown_url=f"/read/{row.id}.md",
        trail_url=f"{path}/trail",
        status=call_status(dispatch, call, desk_clock(session, mode)),
        older=_neighbour(session, row, older=True),
        newer=_neighbour(session, row, older=False),
        dispatch=dispatch,
    )


def latest_number(session: Session) -> int | None:
    return session.scalar(select(DispatchRecord.id).order_by(*NEWEST_FIRST).limit(1))


@dataclass(frozen=True)
class MindView:
    """What one mind said in the cycle, for the trail."""

    mind: str
    status: str
    stance: str
    confidence: float
    argument: str
    reason: str | None
    call: dict[str, Any] | None


@dataclass(frozen=True)
class Trail:
    """Everything behind one dispatch: its inputs, its minds, its rules, stories and lessons."""

    view: DispatchView
    mode: str
    snapshot: dict[str, Any]
    features: dict[str, Any]
    minds: list[MindView] = field(default_factory=list)
    lessons: list[Lesson] = field(default_factory=list)


def trail(session: Session, number: int) -> Trail | None:
    """The trail of a dispatch: what the cycle saw (with timestamps and health), what each mind
    argued, and after settlement the lessons written about its calls."""
    view = dispatch_view(session, number)
    if view is None:
        return None
    key = view.dispatch.cycle_key
    cycle = session.scalar(select(Cycle).where(Cycle.cycle_key == key))
    order = {name: i for i, name in enumerate(m.mind for m in view.dispatch.minds)}
    minds = sorted(
        session.scalars(select(MindRecord).where(MindRecord.cycle_key == key)),
        key=lambda r: (order.get(r.mind, len(order)), r.mind),
    )
    lessons = session.scalars(
        select(LessonRecord.payload)
        .where(LessonRecord.cycle_key == key)
        .order_by(LessonRecord.source != SYNTHESIS, LessonRecord.source)
    )
    return Trail(
        view=view,
        mode=cycle.mode if cycle else "live",
        snapshot=(cycle.snapshot or {}) if cycle else {},
        features=(cycle.features or {}) if cycle else {},
        minds=[
            MindView(
                mind=r.mind,
                status=r.status,
                stance=r.stance,
                confidence=r.confidence,
                argument=str(r.payload.get("argument", "")),
                reason=r.reason,
                call=r.payload.get("call"),
            )
            for r in minds
        ],
        lessons=[Lesson.model_validate(p) for p in lessons],
    )


@dataclass(frozen=True)
class SettledCall:
    """A settled, published call: what the track record's plots are drawn from."""

    source: str
    settled_at: datetime
    confidence: float
    base_rate: float | None
    hit: bool
    # The same outcome's probability under a driftless random walk, where the call carries it.
    naive: float | None = None


def settled_calls(session: Session) -> list[SettledCall]:
    """Every published call settled hit or miss, oldest settlement first."""
    rows = session.execute(
        select(
            PredictionRecord.source,
            PredictionRecord.settled_at,
            PredictionRecord.confidence,
            PredictionRecord.base_rate,
            PredictionRecord.status,
            PredictionRecord.payload,
        )
        .where(
            PredictionRecord.status.in_(("hit", "miss")),
            PredictionRecord.withheld_by.is_(None),
            PredictionRecord.settled_at.is_not(None),
        )
        .order_by(PredictionRecord.settled_at, PredictionRecord.id)
    )
    return [
        SettledCall(source, when, confidence, base, status == "hit", _probability(payload))
        for source, when, confidence, base, status, payload in rows
    ]


def _probability(payload: dict[str, Any]) -> float | None:
    value = payload.get("naive_probability")
    return float(value) if isinstance(value, int | float) else None


def record_version(session: Session) -> tuple[int, int, str]:
    """Changes whenever a dispatch is published or a call settles: the plots' cache key."""
    dispatches = int(session.scalar(select(func.count(DispatchRecord.id))) or 0)
    settled = session.execute(
        select(func.count(PredictionRecord.id), func.max(PredictionRecord.settled_at)).where(
            PredictionRecord.status != "open"
        )
    ).one()
    return dispatches, int(settled[0] or 0), str(settled[1])
