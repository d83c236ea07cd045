"""AnthropicBrain.write: the synthesis' words for a decision made in code, never contradicting."""

from __future__ import annotations

import re

import pytest

from shared.brain.prompting import NO_CALL_LINE, call_line, contradiction
from shared.brain.prose import write_dispatch
from shared.brain.spending import Caps
from shared.contracts import CycleContext, Deliberation
from shared.errors import TransientError
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    json_reply,
    overloaded,
    refusal,
    unauthorized,
)
from tests.unit.brain.cases import BrainMaker, make_deliberation

FINAL = "[DIRECTION: down] [TIMEFRAME: 24h] [CONFIDENCE: 0.54]"
NOTICE = re.compile(r"\n\n\*The model's words were not used \(.*?\)[^*]*\*\n")


def _without_notice(body: str) -> str:
    """The body with the fallback's notice taken out (to compare with the writer's own)."""
    found = NOTICE.search(body)
    assert found is not None, "the fallback must say the model's words were not used"
    return body[: found.start()] + body[found.end() - 1 :]


def draft(body: str, **more: object) -> dict[str, object]:
    prose = (
        "I need to stop being polite about what I'm seeing. SPY +0.09% while TSLA -5.42%: the "
        "mega-caps are being sold under a flat index. Contrarian is at 70% bearish, Macro Mind at "
        "25% and neutral, and Flow Mind was absent: no crypto data. My record in chop is 23 of 40."
    )
    return {
        "title": "The Mega-Caps Are Lying to the Indices",
        "body_md": f"{prose}\n\n{body}",
        **more,
    }


def test_a_draft_that_states_the_decision_is_published(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """A valid draft ending with the decided call line is returned as the model wrote it."""
    fake.script(json_reply(draft(f"SPY lower in 24 hours.\n\n{FINAL}")))
    result = make_brain().write(make_deliberation(), context)

    assert result.title == "The Mega-Caps Are Lying to the Indices"
    assert result.body_md.rstrip().endswith(FINAL)
    assert result.usage is not None
    assert result.usage.output_tokens > 0
    request = fake.requests[0]
    assert request.body["model"] == "claude-sonnet-5-5"
    assert "body_md" in request.output_schema["properties"]
    assert f"Final line (copy it exactly, on its own line): {FINAL}" in request.text
    assert "The synthesis" in request.system_text


def test_a_contradicting_draft_is_repaired_once(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """A body marking the other direction gets the contradiction back, and the repair is used."""
    fake.script(
        json_reply(draft("SPY higher.\n\n[DIRECTION: up] [TIMEFRAME: 24h]")),
        json_reply(draft(f"SPY lower.\n\n{FINAL}")),
    )
    result = make_brain().write(make_deliberation(), context)

    assert fake.request_count == 2
    repair = fake.requests[1].body["messages"][-1]["content"][0]
    assert repair["type"] == "text"
    assert "decided direction is down" in repair["text"]
    assert result.body_md.rstrip().endswith(FINAL)


def test_a_draft_never_repaired_falls_back_to_the_formatted_deliberation(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """Two contradicting drafts give the deterministic prose of the decision, which states it."""
    wrong = json_reply(draft("SPY higher. [DIRECTION: up]"))
    fake.script(wrong, wrong, json_reply(draft(FINAL)))
    deliberation = make_deliberation()
    result = make_brain().write(deliberation, context)

    title, body = write_dispatch(deliberation, context)
    assert result.title == title
    assert _without_notice(result.body_md) == body
    assert "The model's words were not used (invalid reply after one repair" in result.body_md
    assert contradiction(result.body_md, deliberation) is None
    assert "[DIRECTION: up]" not in result.body_md
    assert fake.request_count == 2
    assert result.usage is not None  # the two failed attempts still cost something
    assert result.usage.dollars > 0


def test_an_abstention_draft_must_not_carry_a_call(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """For an abstention, a body that smuggles in a direction marker is repaired."""
    fake.script(
        json_reply(draft(f"{NO_CALL_LINE}\n\n[DIRECTION: up]")),
        json_reply(draft(f"I'm sitting this one out.\n\n{NO_CALL_LINE}")),
    )
    result = make_brain().write(make_deliberation(call=False), context)

    assert fake.request_count == 2
    assert "abstain" in fake.requests[1].body["messages"][-1]["content"][0]["text"]
    assert result.body_md.rstrip().endswith(NO_CALL_LINE)


def test_over_budget_the_synthesis_is_formatted_without_a_request(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """With no budget left the dispatch is still written, by code, and the API is not called."""
    deliberation = make_deliberation(call=False)
    result = make_brain(caps=Caps(per_cycle=0.0, per_day=0.0)).write(deliberation, context)

    assert fake.request_count == 0
    assert _without_notice(result.body_md) == write_dispatch(deliberation, context)[1]
    assert "(budget: cycle" in result.body_md
    assert contradiction(result.body_md, deliberation) is None


def test_a_refused_request_is_formatted_and_an_overload_is_retried(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """A 401 gives the formatted dispatch; a 529 raises TransientError for Celery to retry."""
    brain = make_brain()
    deliberation = make_deliberation()
    fake.script(unauthorized())
    refused = brain.write(deliberation, context).body_md
    assert _without_notice(refused) == write_dispatch(deliberation, context)[1]
    assert "model API 401 authentication_error" in refused
    fake.script(overloaded())
    with pytest.raises(TransientError):
        brain.write(deliberation, context)


def test_a_dissenting_proposed_call_is_never_published(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """A proposed call of the model's own is logged as dissent and leaves the draft unchanged."""
    dissent = {"target": "QQQ", "direction": "up", "horizon_hours": 48, "probability": 0.6}
    fake.script(json_reply(draft(f"SPY lower.\n\n{FINAL}", proposed_call=dissent)))
    deliberation: Deliberation = make_deliberation()
    result = make_brain().write(deliberation, context)

    assert "QQQ" not in result.body_md
    assert result.body_md.rstrip().endswith(call_line(deliberation))


def test_a_refusal_gives_the_formatted_dispatch(
    fake: FakeAnthropic, make_brain: BrainMaker, context: CycleContext
) -> None:
    """A refusal stop reason on the synthesis publishes the deterministic writer's words."""
    fake.script(refusal("general_harms"))
    deliberation = make_deliberation()
    result = make_brain().write(deliberation, context)

    assert _without_notice(result.body_md) == write_dispatch(deliberation, context)[1]
    assert "refusal, category general_harms" in result.body_md
    assert fake.request_count == 1
