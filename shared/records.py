"""Point-in-time track records read from the database: only what was settled by as_of counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import ColumnElement, Select, Text, bindparam, cast, func, or_, select, union_all
from sqlalchemy.orm import Session

from shared.contracts import Dispatch, Fingerprint, LearnedRule, Lesson, Story, TrackRecord
from shared.db import moments
from shared.db import record as aggregates
from shared.db.models import (
    AbstentionRecord,
    Cycle,
    DispatchRecord,
    ForecastRecord,
    LessonRecord,
    PredictionRecord,
)
from shared.memory import CELL_DEPTH, near_cells
from shared.scoring import Abstained, Scored, baselines, brier, score_lines

# A cycle leaves at most a lesson per source (four) and one for its pooled forecast, all in the
# cell of its tape: the newest CELL_DEPTH cycles of a cell fit in one read of this many per cycle.
LESSONS_PER_CYCLE = 6


def track_record(
    session: Session,
    as_of: datetime | None = None,
    *,
    detail: bool = False,
    include_withheld: bool = False,
) -> TrackRecord:
    """Every source's record as it stood at as_of (None: everything stored).

    detail adds each line's calibration buckets (the scoreboard's plots); a cycle's context leaves
    them out to stay small on the wire. include_withheld counts the calls learned rules stopped
    (the evidence rules are judged on); the scoreboard never does.

    Read from the aggregates kept as calls are made and settled (constant time) whenever they
    are the record at as_of; for a cycle older than the newest event folded, from the aggregates
    less the events after its as_of (shared.db.record.later_than), or from the rows when those
    are many (a far backfill).
    """
    if aggregates.usable(session, as_of):
        lines = aggregates.lines(session, include_withheld=include_withheld, detail=detail)
        return TrackRecord(as_of=as_of, lines=lines)
    # Behind the record: the aggregates less what came after as_of, when that is little.
    later = aggregates.later_than(session, as_of) if as_of is not None else None
    if later is not None:
        lines = aggregates.lines_before(
            session, later, include_withheld=include_withheld, detail=detail
        )
        return TrackRecord(as_of=as_of, lines=lines)
    return scanned_record(session, as_of, detail=detail, include_withheld=include_withheld)


def scanned_record(
    session: Session,
    as_of: datetime | None = None,
    *,
    detail: bool = False,
    include_withheld: bool = False,
) -> TrackRecord:
    """track_record() from the stored calls themselves: what the aggregates must always equal."""
    query = select(PredictionRecord)
    skipped = select(AbstentionRecord)
    if as_of is not None:
        query = query.where(PredictionRecord.made_at <= as_of)
        skipped = skipped.where(AbstentionRecord.made_at <= as_of)
    calls = []
    for row in session.scalars(query):
        status = row.status
        # A call settled after as_of was still open then: the record must not know its outcome.
        if as_of is not None and row.settled_at is not None and row.settled_at > as_of:
            status = "open"
        calls.append(aggregates.call_outcome(row, status))
    abstentions = [Abstained(a.source, a.regime) for a in session.scalars(skipped)]
    lines = score_lines(calls, abstentions, detail=detail, include_withheld=include_withheld)
    return TrackRecord(as_of=as_of, lines=lines)


def previous_dispatch(session: Session, as_of: datetime) -> Dispatch | None:
    """The last dispatch published for a cycle before as_of: what the desk carried forward
    (its rule book, its stories)."""
    text = session.connection().execute(_PREVIOUS, {"as_of": as_of}).scalar()
    return _dispatch(text) if text is not None else None


_PREVIOUS = (
    # The stored JSON as text: pydantic parses and validates it in one pass.
    select(cast(DispatchRecord.payload, Text))
    .where(DispatchRecord.as_of < bindparam("as_of", type_=DispatchRecord.as_of.type))
    .order_by(DispatchRecord.as_of.desc(), DispatchRecord.id.desc())
    .limit(1)
)


# A run of cycles reads the same previous dispatch over and over (each cycle's, then by the next
# one, and by every redo of a StateConflict): the last few parsed are kept, keyed by the stored
# text itself, so a kept one is never stale (a dispatch is written once and never changed).
@lru_cache(maxsize=8)
def _dispatch(payload: str) -> Dispatch:
    return Dispatch.model_validate_json(payload)


def carried_book(
    session: Session, as_of: datetime
) -> tuple[tuple[LearnedRule, ...], tuple[Story, ...]]:
    """The rule book and stories a cycle at as_of starts from, for the minds' prompts.

    The desk's own state tables hold them as the latest cycle left them; a cycle that is not
    later than that state (a re-run of the same day, a backfill) starts from what the last
    dispatch before it carried instead, so nothing learned on or after its as_of reaches it and
    the same market at the same as_of is shown the same book.
    """
    state = aggregates.load_state(session)
    if state.as_of is not None and state.as_of < as_of:
        return state.rules, state.stories
    before = previous_dispatch(session, as_of)
    return (before.rules, before.stories) if before is not None else ((), ())


def forecast_history(session: Session, as_of: datetime) -> list[tuple[float, bool, float | None]]:
    """(raw pooled p(up), went up, base rate of up then) of every pooled forecast settled by
    as_of, oldest first.

    What the synthesis' recalibration is fitted on: never a forecast settled after as_of.
    """
    query = (
        select(
            ForecastRecord.raw_probability_up, ForecastRecord.went_up, ForecastRecord.base_rate_up
        )
        .where(
            ForecastRecord.status == "settled",
            ForecastRecord.settled_at <= as_of,
            ForecastRecord.went_up.is_not(None),
        )
        .order_by(ForecastRecord.settled_at, ForecastRecord.id)
    )
    return [(float(p), bool(up), base) for p, up, base in session.execute(query)]


def _recall_query(*cell: ColumnElement[bool]) -> Select[str]:
    as_of = bindparam("as_of", type_=LessonRecord.settled_at.type)
    return (
        # The stored JSON as text: pydantic parses and validates it in one pass.
        select(cast(LessonRecord.payload, Text))
        .where(
            LessonRecord.target == bindparam("target"),
            LessonRecord.regime == bindparam("regime"),
            *cell,
            LessonRecord.settled_at <= as_of,
            LessonRecord.made_at < as_of,
        )
        .order_by(LessonRecord.settled_at.desc(), LessonRecord.made_at.desc())
        .limit(CELL_DEPTH * LESSONS_PER_CYCLE)
    )


_NO_CELL = _recall_query(
    or_(LessonRecord.r5_cell.is_(None), LessonRecord.r5_cell == bindparam("r5")),
    or_(LessonRecord.vol_cell.is_(None), LessonRecord.vol_cell == bindparam("vol")),
)
# A tape in the grid recalls from its cell and the eight around it: nine short range scans of
# the recall index, sent as one statement (one round trip, one result) rather than nine.
NEAR = 9


def _cell_query(n: int) -> Select[tuple[str]]:
    one = _recall_query(
        LessonRecord.r5_cell == bindparam(f"r5_{n}"),
        LessonRecord.vol_cell == bindparam(f"vol_{n}"),
    ).subquery(f"cell_{n}")
    return select(*one.c)


_NEAR_CELLS = union_all(*(_cell_query(n) for n in range(NEAR)))


def lessons_near(
    session: Session, target: str, regime: str, tape: Fingerprint, as_of: datetime
) -> list[Lesson]:
    """Lessons a cycle may recall: same target and regime, a tape in today's grid cell or a
    neighbouring one, settled by as_of (shared.memory.recall_from ranks them).

    Recall keeps only the CELL_DEPTH most recently settled cycles of each cell, so each cell is
    one short range scan of the recall index, newest first, however many lessons are stored.
    """
    # The session's connection: plain rows of text, without the ORM's per-row work.
    connection = session.connection()
    common = {"target": target, "regime": regime, "as_of": as_of}
    cells = near_cells(tape)
    if len(cells) == NEAR and all(r5 is not None and vol is not None for r5, vol in cells):
        values = dict(common)
        for n, (r5, vol) in enumerate(cells):
            values[f"r5_{n}"], values[f"vol_{n}"] = r5, vol
        rows = connection.execute(_NEAR_CELLS, values)
    else:
        r5, vol = cells[0]
        rows = connection.execute(_NO_CELL, {**common, "r5": r5, "vol": vol})
    return [_parsed(payload) for (payload,) in rows]


# Parsing a stored lesson is a pure function of its text, and a cycle recalls mostly what the
# cycle before it did (the tape moves slowly; a lesson is written once and never changed): the
# most recently parsed are kept, enough for two full recalls (nine cells of a full depth each).
# Keyed by the text itself, a kept lesson can never be stale, whatever the database.
@lru_cache(maxsize=2 * 9 * CELL_DEPTH * LESSONS_PER_CYCLE)
def _parsed(payload: str) -> Lesson:
    return Lesson.model_validate_json(payload)


def cycle_number(session: Session, cycle: Cycle) -> int:
    """The cycle's number as a dispatch shows it. Within a replay it follows as_of (1 + the
    market moments of the same replay directory before it), whatever order the days were run or
    re-run in; live, it is the cycle's row id.

    A replay's moments are numbered as its cycles are claimed (shared.db.moments): one lookup.
    Counting is left for a cycle whose moment was never placed (written around the ORM).
    """
    if cycle.mode != "replay":
        return cycle.id
    placed = moments.number(session, cycle.data_dir, cycle.as_of)
    if placed is not None:
        return placed
    same = Cycle.data_dir.is_(None) if cycle.data_dir is None else Cycle.data_dir == cycle.data_dir
    earlier = session.scalar(
        select(func.count(func.distinct(Cycle.as_of))).where(
            Cycle.mode == "replay", same, Cycle.as_of < cycle.as_of
        )
    )
    return 1 + int(earlier or 0)


@dataclass(frozen=True, slots=True)
class AgainstBaselines:
    """One source's settled calls against every honest baseline, with a verdict in words."""

    source: str
    settled: int
    brier: float | None
    skill_base: float | None
    skill_base_se: float | None
    skill_naive: float | None
    skill_naive_se: float | None
    majority_brier: float | None

    @property
    def verdict(self) -> str:
        """What the figures allow one to say: an edge only where the call beats each baseline by
        more than two standard errors (a tie with a trivial forecaster is no edge)."""
        if self.settled < 30 or self.brier is None:
            return f"too few settled calls ({self.settled}) to judge"
        behind: list[str] = []
        for name, skill, se in (("the base rate", self.skill_base, self.skill_base_se),
                                ("the naive random walk", self.skill_naive,
                                 self.skill_naive_se)):  # fmt: skip
            if skill is None or se is None:
                behind.append(f"{name} (not measured)")
            elif skill < -2 * se:
                behind.append(f"{name} (worse)")
            elif skill <= 2 * se:
                behind.append(f"{name} (a tie within noise)")
        if self.majority_brier is None:
            behind.append("always the majority (not measured)")
        elif self.brier >= self.majority_brier:
            behind.append("always the majority (worse)")
        if not behind:
            return "an edge over every baseline"
        return "no edge shown over " + ", ".join(behind)


def against_baselines(session: Session) -> list[AgainstBaselines]:
    """Each source's published, settled calls against the honest baselines (baseline_lines),
    read from the calls themselves: an operator's question, not a cycle's."""
    rows = session.execute(
        select(
            PredictionRecord.source,
            PredictionRecord.confidence,
            PredictionRecord.base_rate,
            PredictionRecord.naive_probability,
            PredictionRecord.status,
        ).where(
            PredictionRecord.status.in_(("hit", "miss")), PredictionRecord.withheld_by.is_(None)
        )
    ).all()
    return baseline_lines(
        (source, Scored(p, base, naive, status == "hit")) for source, p, base, naive, status in rows
    )


def baseline_lines(calls: Iterable[tuple[str, Scored]]) -> list[AgainstBaselines]:
    """Each source's settled calls against the point-in-time base rate, the naive random walk
    and always the majority outcome (shared.scoring.baselines): the synthesis first."""
    by_source: dict[str, list[Scored]] = {}
    for source, call in calls:
        by_source.setdefault(source, []).append(call)
    found: list[AgainstBaselines] = []
    for source in sorted(by_source, key=lambda s: (s != "synthesis", s)):
        scored = by_source[source]
        figures = baselines(scored)
        found.append(
            AgainstBaselines(
                source=source,
                settled=len(scored),
                brier=brier((s.p, s.hit) for s in scored),
                skill_base=_float(figures["skill_vs_base"]),
                skill_base_se=_float(figures["brier_skill_se"]),
                skill_naive=_float(figures["brier_skill_naive"]),
                skill_naive_se=_float(figures["brier_skill_naive_se"]),
                majority_brier=_float(figures["brier_majority"]),
            )
        )
    return found


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)
