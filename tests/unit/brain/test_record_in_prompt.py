"""What the desk learned reaches the minds' prompts: the rule book and stories the last dispatch
carried, as the ingest claims the next cycle."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from services.ingest.cycle import claim
from services.synth.store import store_cycle
from services.synth.synthesize import synthesize
from shared.brain.offline import OfflineBrain
from shared.brain.prompting import mind_messages
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger, LearnedRule, Story
from shared.db.session import migrate, session_scope
from shared.market.opening import replay_market

MINDS = ("macro", "flow", "contrarian")


def test_the_next_cycle_carries_the_rule_book_and_stories_into_the_minds_prompt(
    tmp_path: Path,
) -> None:
    """A rule the last dispatch carried is in the next cycle's context and in a mind's rules
    block with its evidence (retired rules are not); the stories come along too."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    market = replay_market(None)
    first = CycleTrigger(cycle_key="first", as_of=replay_as_of(date(2015, 8, 24)))
    snapshot = market.snapshot(first)
    with session_scope(url) as session:
        context = claim(session, first, snapshot, market.features(snapshot))
    assert context is not None
    assert context.rules == ()
    rule = LearnedRule(
        id="flow|chop#1",
        source="flow",
        regime="chop",
        settled=140,
        hits=55,
        hit_rate=55 / 140,
        low=0.31,
        high=0.475,
        created_at=first.as_of,
    )
    retired = rule.model_copy(update={"id": "macro|all#1", "status": "retired"})
    story = Story(
        key="drawdown:^GSPC",
        title="The index is in a drawdown",
        started=date(2015, 8, 20),
        last_seen=date(2015, 8, 24),
        strength=-6.2,
        peak=-6.2,
    )
    brain = OfflineBrain()
    outputs = [brain.think(m, context) for m in MINDS]
    dispatch = synthesize(context, outputs, brain, expected_minds=MINDS)
    dispatch = dispatch.model_copy(update={"rules": (rule, retired), "stories": (story,)})
    with session_scope(url) as session:
        assert store_cycle(session, dispatch, outputs, context)

    second = CycleTrigger(cycle_key="second", as_of=replay_as_of(date(2015, 8, 25)))
    snapshot = market.snapshot(second)
    with session_scope(url) as session:
        later = claim(session, second, snapshot, market.features(snapshot))
    assert later is not None
    assert later.rules == (rule,)
    assert later.stories == (story,)
    text = mind_messages("flow", later)[0]["content"][0]["text"]
    rules_block = text.split("<rules>")[1].split("</rules>")[0]
    assert "flow calls in chop: 0.393 over 140 (95% 0.310-0.475)" in rules_block
    assert "macro" not in rules_block
    assert "No rules in force" not in text
    assert "The index is in a drawdown" in text.split("<stories>")[1]
