"""The scoreboard's honest baselines: each source's settled calls against the base rate, the
naive random walk and always the majority outcome, with a verdict that calls a tie a tie."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from shared.db.models import Base, PredictionRecord
from shared.records import AgainstBaselines, against_baselines

MADE = datetime(2016, 1, 4, 21, tzinfo=UTC)


def _call(n: int, source: str, p: float, base: float, naive: float, status: str,
          withheld: str | None = None) -> PredictionRecord:  # fmt: skip
    return PredictionRecord(
        cycle_key=f"c{n}", source=source, target="^GSPC", direction="up", horizon_hours=24,
        reference_price=2000.0, confidence=p, made_at=MADE + timedelta(days=n),
        matures_at=MADE + timedelta(days=n + 1), regime="chop", topic="index",
        asset_class="equity_index", base_rate=base, naive_probability=naive, kind="direction",
        call_key=f"{source}-{n}", payload={}, status=status, withheld_by=withheld,
    )  # fmt: skip


def test_sharp_calls_beat_every_baseline_and_a_copy_of_the_base_rate_ties_it() -> None:
    """A source whose probability tracks what happens has an edge over all three; a source that
    quotes the base rate itself is a tie with it, said plainly; withheld and open calls are left
    out."""
    rng = random.Random(7)
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for n in range(400):
            happened = rng.random() < 0.5
            sharp = 0.8 if happened else 0.3
            status = "hit" if happened else "miss"
            session.add(_call(n, "synthesis", sharp, 0.5, 0.5, status))
            session.add(_call(n, "macro", 0.55, 0.55, 0.5, status))
        session.add(_call(999, "synthesis", 0.99, 0.5, 0.5, "miss", withheld="a rule"))
        session.add(_call(998, "synthesis", 0.99, 0.5, 0.5, "open"))
        session.commit()
        found = {line.source: line for line in against_baselines(session)}
    assert list(found) == ["synthesis", "macro"]
    sharp_line, copy = found["synthesis"], found["macro"]
    assert sharp_line.settled == copy.settled == 400
    assert sharp_line.skill_base is not None
    assert sharp_line.skill_base > 0.1
    assert sharp_line.verdict == "an edge over every baseline"
    assert copy.skill_base == 0.0
    assert "the base rate (a tie within noise)" in copy.verdict
    assert copy.verdict.startswith("no edge shown over")


def test_verdict_needs_enough_calls_and_more_than_two_standard_errors() -> None:
    """Thirty settled calls at the least; a skill inside two standard errors is no edge, below
    minus two it is worse, and a Brier no better than always-the-majority is named too."""
    line = AgainstBaselines("flow", 29, 0.2, 0.3, 0.01, 0.3, 0.01, 0.4)
    assert line.verdict == "too few settled calls (29) to judge"
    edge = AgainstBaselines("flow", 100, 0.2, 0.05, 0.02, 0.05, 0.02, 0.4)
    assert edge.verdict == "an edge over every baseline"
    tie = AgainstBaselines("flow", 100, 0.2, 0.03, 0.02, -0.05, 0.02, 0.19)
    assert tie.verdict == (
        "no edge shown over the base rate (a tie within noise), the naive random walk (worse), "
        "always the majority (worse)"
    )
    unmeasured = AgainstBaselines("flow", 100, 0.2, 0.05, 0.02, 0.05, 0.02, None)
    assert unmeasured.verdict == "no edge shown over always the majority (not measured)"
