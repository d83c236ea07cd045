"""The loopback fake refuses what each model's documentation says the real API refuses.

Each case sends, through the real anthropic client, a request the Sonnet 5.5 or Haiku 5.5 docs
list as a 400 (or, for Haiku 5.5, as accepted), and checks the status and the error text the docs
quote. The brain's own request shape is checked against the same rules for both models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from shared.brain.prompting import VIEW_FORMAT
from tests.fakes.anthropic_server import (
    FORCED_TOOL,
    PREFILL,
    THINKING_DISABLED,
    THINKING_ENABLED,
    FakeAnthropic,
)

SONNET, HAIKU = "claude-sonnet-5-5", "claude-haiku-5-5"
TOOL = {
    "name": "record_view",
    "description": "Record a view.",
    "input_schema": {
        "type": "object",
        "properties": {"stance": {"type": "string"}},
        "required": ["stance"],
        "additionalProperties": False,
    },
}


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="sk-test", base_url=fake.base_url, max_retries=0) as sdk:
        yield sdk


def _ask(client: anthropic.Anthropic, model: str, **more: Any) -> anthropic.types.Message:
    messages = more.pop("messages", [{"role": "user", "content": "What is the market doing?"}])
    reply: anthropic.types.Message = client.messages.create(
        model=model, max_tokens=2000, messages=messages, **more
    )
    return reply


def _refused(client: anthropic.Anthropic, model: str, **more: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        _ask(client, model, **more)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    return str(caught.value.api_message)


@pytest.mark.parametrize("choice", [{"type": "tool", "name": "record_view"}, {"type": "any"}])
def test_sonnet_55_refuses_forced_tool_choice(client: anthropic.Anthropic, choice: Any) -> None:
    """Sonnet 5.5 answers a tool_choice of type tool or any with the documented 400."""
    assert _refused(client, SONNET, tools=[TOOL], tool_choice=choice) == FORCED_TOOL


def test_haiku_55_accepts_forced_tool_choice_but_does_not_think_first(
    client: anthropic.Anthropic,
) -> None:
    """Haiku 5.5 accepts a forced tool; the reply starts with the call and has no thinking."""
    reply = _ask(client, HAIKU, tools=[TOOL], tool_choice={"type": "tool", "name": "record_view"})
    assert [block.type for block in reply.content] == ["tool_use"]


@pytest.mark.parametrize("model", [SONNET, HAIKU])
def test_thinking_budgets_are_refused(client: anthropic.Anthropic, model: str) -> None:
    """thinking: enabled with budget_tokens is a 400 on both 5.5 models."""
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    assert _refused(client, model, thinking=thinking) == THINKING_ENABLED


def test_sonnet_55_refuses_thinking_disabled_and_names_between_tools(
    client: anthropic.Anthropic,
) -> None:
    """thinking: disabled on Sonnet 5.5 is the documented 400 that points to between_tools;
    between_tools is accepted up to high effort and refused above it."""
    assert _refused(client, SONNET, thinking={"type": "disabled"}) == THINKING_DISABLED
    reply = _ask(
        client, SONNET, thinking={"type": "between_tools"}, output_config={"effort": "high"}
    )
    assert all(block.type != "thinking" for block in reply.content)
    message = _refused(
        client, SONNET, thinking={"type": "between_tools"}, output_config={"effort": "max"}
    )
    assert "between_tools" in message


def test_haiku_55_turns_thinking_off_only_up_to_high_effort(client: anthropic.Anthropic) -> None:
    """Haiku 5.5 accepts thinking: disabled at high effort or below, and refuses it above."""
    reply = _ask(client, HAIKU, thinking={"type": "disabled"}, output_config={"effort": "high"})
    assert all(block.type != "thinking" for block in reply.content)
    assert "disabled" in _refused(
        client, HAIKU, thinking={"type": "disabled"}, output_config={"effort": "xhigh"}
    )


@pytest.mark.parametrize("model", [SONNET, HAIKU])
@pytest.mark.parametrize(
    "sampling",
    [{"temperature": 0.2}, {"top_p": 1.0}, {"top_k": 5}, {"temperature": 1.0, "top_p": 0.99}],
    ids=["temperature", "top_p", "top_k", "both"],
)
def test_non_default_sampling_is_refused(
    client: anthropic.Anthropic, model: str, sampling: dict[str, float]
) -> None:
    """Non-default temperature, any top_p but 0.99 (1 included), any top_k, or temperature and
    top_p together are refused; the defaults alone are accepted. (SDK 2.14 no longer takes
    sampling keywords at all: they can only be sent as extra body fields.)"""
    _refused(client, model, extra_body=sampling)
    _ask(client, model, extra_body={"temperature": 1.0})
    _ask(client, model, extra_body={"top_p": 0.99})


@pytest.mark.parametrize("model", [SONNET, HAIKU])
def test_assistant_prefill_is_refused(client: anthropic.Anthropic, model: str) -> None:
    """A conversation ending with an assistant turn is a prefill: the documented 400."""
    messages = [
        {"role": "user", "content": "Answer in JSON."},
        {"role": "assistant", "content": "{"},
    ]
    assert _refused(client, model, messages=messages) == PREFILL


@pytest.mark.parametrize("model", [SONNET, HAIKU])
def test_structured_output_schema_must_stay_in_the_supported_subset(
    client: anthropic.Anthropic, model: str
) -> None:
    """A raw pydantic schema (bounds, lengths) is refused; the desk's transformed one is not,
    and the reply is JSON that the reply model validates."""
    raw = VIEW_FORMAT.model.model_json_schema()
    assert "not supported" in _refused(
        client, model, output_config={"format": {"type": "json_schema", "schema": raw}}
    )
    reply = _ask(client, model, output_config={"format": VIEW_FORMAT.output_format()})
    text = "".join(block.text for block in reply.content if block.type == "text")
    assert VIEW_FORMAT.model.model_validate_json(text).stance == "neutral"
    assert reply.content[0].type == "thinking"  # adaptive thinking runs by default


def test_an_unknown_model_id_is_not_found(client: anthropic.Anthropic) -> None:
    """A guessed model id is a 404 not_found_error, as on the real API."""
    with pytest.raises(anthropic.NotFoundError):
        _ask(client, "claude-sonnet-5-5-20260928")


def test_more_than_four_cache_breakpoints_are_refused(client: anthropic.Anthropic) -> None:
    """At most four blocks may carry cache_control."""
    mark: Any = {"type": "ephemeral", "ttl": "1h"}
    system: Any = [{"type": "text", "text": f"part {i}", "cache_control": mark} for i in range(5)]
    assert "maximum of 4" in _refused(client, SONNET, system=system)


def test_a_cached_prefix_is_read_on_the_second_request(client: anthropic.Anthropic) -> None:
    """A persona over the 512-token minimum is written to the cache once (1-hour TTL) and read
    by the next request; a short one is never cached."""
    long_persona = "You are a careful market analyst. " * 120
    system: Any = [
        {"type": "text", "text": long_persona, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    first = _ask(client, HAIKU, system=system).usage
    second = _ask(client, HAIKU, system=system).usage
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_1h_input_tokens > 512
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    short: Any = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    _ask(client, HAIKU, system=short)
    assert _ask(client, HAIKU, system=short).usage.cache_read_input_tokens == 0
