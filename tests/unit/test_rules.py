"""Learned rules: created from the evidence, enforced before a call is made, then retired."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from services.synth.rules import active, update_rules
from services.synth.store import store_cycle
from services.synth.synthesize import synthesize
from shared.brain.offline import OfflineBrain
from shared.contracts import CycleContext, LearnedRule, ScoreLine, TrackRecord
from shared.db.models import Cycle, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.records import track_record
from shared.scoring import wilson
from workshop.cli import cli

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]

EARLY = datetime(2008, 2, 13, 22, 30, tzinfo=UTC)
LATER = datetime(2009, 6, 1, 21, 30, tzinfo=UTC)
MINDS = ("macro", "flow", "contrarian")


def _line(source: str, hits: int, settled: int, **cut: str) -> ScoreLine:
    low, high = wilson(hits, settled) or (0.0, 1.0)
    return ScoreLine(
        source=source, calls=settled, hits=hits, misses=settled - hits,
        hit_rate=hits / settled, hit_rate_low=low, hit_rate_high=high, **cut,
    )  # fmt: skip


def _evidence(*lines: ScoreLine) -> TrackRecord:
    return TrackRecord(lines=lines)


def test_a_rule_is_created_only_when_the_whole_interval_is_below_a_coin() -> None:
    """38 of 100 (95% top 0.478) makes a rule; 44 of 100 (top 0.54) or 30 of 99 (too few) not."""
    book = update_rules(
        (),
        _evidence(
            _line("flow", 2000, 4000),
            _line("flow", 38, 100, regime="risk_off"),
            _line("macro", 44, 100, regime="chop"),
            _line("contrarian", 30, 99, regime="crisis"),
        ),
        EARLY,
    )
    assert [(r.id, r.status) for r in book] == [("flow|risk_off#1", "active")]
    rule = book[0]
    assert (rule.settled, rule.hits, rule.created_at) == (100, 38, EARLY)
    assert rule.high < 0.5
    assert rule.describe() == "flow calls in risk_off: 0.380 over 100 (95% 0.291-0.478) — stop"


def test_a_cut_holding_all_of_a_sources_calls_is_not_a_second_rule() -> None:
    """When every flow call is an equity-index 24 h call, one overall rule stands for both."""
    book = update_rules(
        (),
        _evidence(
            _line("flow", 380, 1000),
            _line("flow", 380, 1000, asset_class="equity_index", horizon="24h"),
            _line("flow", 380, 1000, topic="breadth"),
        ),
        EARLY,
    )
    assert [r.id for r in book] == ["flow|all#1"]


def test_a_rule_is_retired_when_its_evidence_no_longer_holds_and_not_before() -> None:
    """Shadow-scored calls lifting 38/100 to 70/150 (80% top 0.519) retire the rule, a lift to
    45/110 (95% top 0.503, 80% top 0.470) keeps it active so that it does not flicker, and worse
    evidence later earns the category a new rule."""
    book = update_rules((), _evidence(_line("flow", 38, 100, regime="risk_off")), EARLY)
    marginal = update_rules(book, _evidence(_line("flow", 45, 110, regime="risk_off")), LATER)
    assert marginal[0].status == "active"
    assert marginal[0].settled == 110
    recovered = update_rules(book, _evidence(_line("flow", 70, 150, regime="risk_off")), LATER)
    assert recovered[0].status == "retired"
    assert recovered[0].retired_at == LATER
    assert active(recovered) == ()
    again = update_rules(recovered, _evidence(_line("flow", 40, 140, regime="risk_off")), LATER)
    assert [(r.id, r.status) for r in again] == [
        ("flow|risk_off#1", "retired"),
        ("flow|risk_off#2", "active"),
    ]


def _rule(source: str, regime: str = "chop") -> LearnedRule:
    return LearnedRule(
        id=f"{source}|{regime}#1", source=source, regime=regime, settled=300, hits=120,
        hit_rate=0.4, low=0.345, high=0.457, created_at=EARLY,
    )  # fmt: skip


def _hollow() -> CycleContext:
    return fx.context(fx.calm_features(**{**fx.hawkish_macro(), **fx.hollow_breadth()}))


def test_a_forbidden_mind_call_is_not_made_and_the_dispatch_names_the_rule(tmp_path: Path) -> None:
    """macro's bearish call in chop, forbidden by a rule, is withheld: no public prediction, an
    abstention on the scoreboard, a shadow row the rule's evidence counts, and the dispatch
    says which rule stopped it."""
    brain = OfflineBrain()
    ctx = _hollow()
    outputs = [brain.think(m, ctx) for m in MINDS]
    assert outputs[0].call is not None  # the macro mind did make a call
    book = (_rule("macro"), _rule("flow", "crisis"))
    dispatch = synthesize(ctx, outputs, brain, expected_minds=MINDS, rules=book)
    assert [w.prediction.source for w in dispatch.withheld] == ["macro"]
    assert dispatch.withheld[0].rule == "macro|chop#1"
    assert any("macro calls in chop" in line for line in dispatch.rules_applied)
    assert dispatch.rules[0].stopped == 1
    assert dispatch.rules[1].stopped == 0
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    with session_scope(url) as session:
        session.add(Cycle(cycle_key=dispatch.cycle_key, as_of=fx.AS_OF, mode="replay"))
        session.flush()
        store_cycle(session, dispatch, outputs, ctx)
    with session_scope(url) as session:
        shadow = session.query(PredictionRecord).filter_by(source="macro").one()
        assert shadow.withheld_by == "macro|chop#1"
        public = track_record(session).line("macro")
        evidence = track_record(session, include_withheld=True).line("macro")
    assert public is not None
    assert evidence is not None
    assert (public.calls, public.abstentions) == (0, 1)
    assert evidence.calls == 1


def test_a_forbidden_synthesis_call_becomes_an_abstention_naming_the_rule() -> None:
    """A rule on the desk's own calls in the regime turns its call into an abstention."""
    brain = OfflineBrain()
    ctx = _hollow()
    outputs = [
        fx.mind("macro", "bearish", 0.8, probability=0.62),
        fx.mind("flow", "bearish", 0.6, probability=0.59),
    ]
    free = synthesize(ctx, outputs, brain, expected_minds=("macro", "flow"))
    assert free.prediction is not None
    stopped = synthesize(
        ctx, outputs, brain, expected_minds=("macro", "flow"), rules=(_rule("synthesis"),)
    )
    assert stopped.prediction is None
    assert stopped.abstention is not None
    assert "synthesis calls in chop" in stopped.abstention
    assert stopped.withheld[0].prediction == free.prediction


def test_workshop_rules_lists_a_backtest_book_with_its_evidence(tmp_path: Path) -> None:
    """`workshop rules --report` prints each rule's category, status and evidence."""
    report = {"rules": [_rule("flow", "risk_off").model_dump(mode="json")]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    result = CliRunner().invoke(cli, ["rules", "--report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "flow calls in risk_off" in result.output
    assert "0.345-0.457" in result.output
