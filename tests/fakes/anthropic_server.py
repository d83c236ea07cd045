"""A loopback fake of the Messages API (POST /v1/messages) for the real anthropic client.

It speaks the published rules of the models it claims to be (MODEL_RULES below): a request the
real API refuses with a 400 is refused here with the same error body, so a test fails the way
production would. Each rule names the documentation it encodes; the README's "The fake's rules"
lists them. Replies are scripted (a queue, consumed in order) or, once the script is empty, made
by a responder function; the default responder answers the desk's two structured-output formats
sensibly and any other schema with a valid example. Failure modes are replies too: API errors
(429, 529, 500, 401...), a refusal, a reply that arrives too late, a dropped connection, garbage
bodies. Usage is realistic: tokens counted from the text at the newer tokenizer's density,
thinking tokens by effort level, and prompt caching simulated (breakpoints, TTLs, minimum
cacheable length), so the spend ledger measures what a cycle would cost. Every request is
recorded (headers, JSON body).

In a test:  with FakeAnthropic() as fake: fake.script(rate_limited()); ... base_url=fake.base_url
For worker subprocesses: start it in the test process (or `python tests/fakes/anthropic_server.py
--port 0`, which prints its URL) and give the workers WORKSHOP_BRAIN=anthropic,
WORKSHOP_ANTHROPIC_BASE_URL=<url> and WORKSHOP_ANTHROPIC_API_KEY=<any string>.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MESSAGES_PATH = "/v1/messages"
EFFORTS = ("low", "medium", "high", "xhigh", "max")
# The newer tokenizer (Claude 4.7 and later, both 5.5 models) counts about 30% more tokens than
# the old ~3.8 characters a token; JSON-heavy prompts are denser still.
CHARS_PER_TOKEN = 2.9
# Thinking tokens a reply spends at each effort level: the fake's assumption (no figure is
# published); adaptive thinking may think less on simple requests, so these err high.
THINKING_TOKENS = {"low": 150, "medium": 400, "high": 900, "xhigh": 1800, "max": 3000}
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    A 200 reply is a message built from `content` (the model, ids, thinking blocks and usage are
    filled in per request unless given); an error reply is the API's error body; `raw_body` is
    sent as-is; `drop` closes the connection without answering; `delay_s` waits first (longer
    than the client's timeout: a timeout).
    """

    status: int = 200
    content: tuple[Mapping[str, Any], ...] = ()
    stop_reason: str = "end_turn"
    stop_details: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    error_type: str | None = None
    error_message: str = ""
    raw_body: str | None = None
    delay_s: float = 0.0
    drop: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it: path, headers (lowercase names) and JSON body."""

    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    raw: bytes
    at: float

    @property
    def tool_name(self) -> str | None:
        """The tool the request forces (tool_choice type 'tool'), if any."""
        choice = self.body.get("tool_choice") or {}
        return str(choice["name"]) if choice.get("type") == "tool" else None

    @property
    def output_schema(self) -> Mapping[str, Any]:
        """The JSON schema of output_config.format, or {} when the request asks for none."""
        fmt = (self.body.get("output_config") or {}).get("format") or {}
        return dict(fmt.get("schema") or {})

    @property
    def system_text(self) -> str:
        system = self.body.get("system")
        if isinstance(system, str):
            return system
        return "\n".join(str(b.get("text", "")) for b in system or () if isinstance(b, dict))

    @property
    def text(self) -> str:
        """Every text block of the request's messages, joined (what the model was told)."""
        parts: list[str] = []
        for message in self.body.get("messages") or ():
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
                continue
            for block in content or ():
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif block.get("type") == "tool_result":
                    inner = block.get("content")
                    parts.append(inner if isinstance(inner, str) else json.dumps(inner))
        return "\n".join(parts)


Responder = Callable[[Received], Reply]


# --- reply builders ----------------------------------------------------------------------------


def json_reply(data: Mapping[str, Any] | str, *, usage: Mapping[str, Any] | None = None) -> Reply:
    """A structured-output reply: the JSON text of `data` (a str is sent as-is, e.g. broken)."""
    text = data if isinstance(data, str) else json.dumps(data)
    return Reply(content=({"type": "text", "text": text},), usage=usage)


def tool_use(
    name: str,
    tool_input: Mapping[str, Any] | str,
    *,
    usage: Mapping[str, Any] | None = None,
    text: str | None = None,
) -> Reply:
    """A reply calling `name` with `tool_input`; a str input is sent as-is (e.g. broken JSON)."""
    blocks: list[Mapping[str, Any]] = [{"type": "text", "text": text}] if text else []
    block = {"type": "tool_use", "id": "", "name": name, "input": tool_input}
    return Reply(content=(*blocks, block), stop_reason="tool_use", usage=usage)


def text_only(text: str, *, usage: Mapping[str, Any] | None = None) -> Reply:
    """A reply with prose and no JSON or tool call at all."""
    return Reply(content=({"type": "text", "text": text},), stop_reason="end_turn", usage=usage)


def refusal(category: str | None = "general_harms", explanation: str | None = None) -> Reply:
    """A safety classifier's decline: HTTP 200, stop_reason "refusal", details, no answer."""
    details = {"type": "refusal", "category": category, "explanation": explanation}
    return Reply(content=(), stop_reason="refusal", stop_details=details)


def api_error(
    status: int, error_type: str, message: str = "", headers: Mapping[str, str] | None = None
) -> Reply:
    """The API's error body with its HTTP status."""
    return Reply(
        status=status,
        error_type=error_type,
        error_message=message or error_type,
        headers=dict(headers or {}),
    )


def rate_limited(retry_after: float = 1) -> Reply:
    return api_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit.",
        {"retry-after": f"{retry_after:g}"},
    )


def overloaded() -> Reply:
    return api_error(529, "overloaded_error", "Overloaded")


def server_error() -> Reply:
    return api_error(500, "api_error", "Internal server error")


def unauthorized() -> Reply:
    return api_error(401, "authentication_error", "invalid x-api-key")


def bad_request(message: str = "messages: field required") -> Reply:
    return api_error(400, "invalid_request_error", message)


def slow(reply: Reply, seconds: float) -> Reply:
    """The same reply, sent only after `seconds` (the client may have given up by then)."""
    return replace(reply, delay_s=seconds)


def dropped() -> Reply:
    """No answer at all: the connection is closed (the client sees a connection error)."""
    return Reply(drop=True)


# --- the published rules of each model ---------------------------------------------------------

SONNET_55_GUIDE = "platform.claude.com/docs/en/models/sonnet-5-5/migration-guide"
HAIKU_55_GUIDE = "platform.claude.com/docs/en/models/haiku-5-5/migration-guide"
HAIKU_55_NEW = "platform.claude.com/docs/en/models/haiku-5-5/whats-new-haiku-5-5"
STRUCTURED = "platform.claude.com/docs/en/build-with-claude/structured-outputs"
CACHING = "platform.claude.com/docs/en/build-with-claude/prompt-caching"

FORCED_TOOL = 'tool_choice: type "tool" and "any" are not supported for this model.'
THINKING_ENABLED = (
    '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
    '"output_config.effort" to control thinking behavior.'
)
THINKING_DISABLED = (
    'To turn thinking off on this model, send "thinking": {"type": "between_tools"} instead of '
    '{"type": "disabled"}. The model does not think before responding. The short updates it '
    "writes between tool calls come back as thinking blocks."
)
PREFILL = (
    "This model does not support assistant message prefill. The conversation must end with a "
    "user message."
)


@dataclass(frozen=True)
class ModelRules:
    """What one model accepts, as its documentation says (each field names its source)."""

    id: str
    # SONNET_55_GUIDE "Forced tool use is not supported" / HAIKU_55_GUIDE "Configure thinking":
    # Haiku 5.5 accepts a forced tool_choice, but the reply then starts with the call, unthought.
    forced_tool_choice: bool
    # The thinking.type values accepted (SONNET_55_GUIDE's table; HAIKU_55_GUIDE, HAIKU_55_NEW).
    thinking_types: frozenset[str]
    # The effort a request without output_config.effort runs at (each model page's table).
    default_effort: str
    # Highest effort at which thinking may be turned off ("between_tools" on Sonnet 5.5,
    # "disabled" on Haiku 5.5): SONNET_55_GUIDE "Turn off up-front thinking", HAIKU_55_NEW.
    off_max_effort: str
    min_cacheable_tokens: int = 512  # SONNET_55_GUIDE "Other changes"; Haiku 5.5 model page


MODEL_RULES: Mapping[str, ModelRules] = {
    rules.id: rules
    for rules in (
        ModelRules(
            "claude-sonnet-5-5",
            forced_tool_choice=False,
            thinking_types=frozenset({"adaptive", "between_tools"}),
            default_effort="high",
            off_max_effort="high",
        ),
        ModelRules(
            "claude-haiku-5-5",
            forced_tool_choice=True,
            thinking_types=frozenset({"adaptive", "disabled"}),
            default_effort="medium",
            off_max_effort="high",
        ),
    )
}

# JSON Schema keywords structured outputs do not support (STRUCTURED, "JSON Schema limitations").
UNSUPPORTED_SCHEMA = ("minimum", "maximum", "multipleOf", "minLength", "maxLength")


def _invalid(message: str) -> Reply:
    return api_error(400, "invalid_request_error", message)


def _schema_problem(node: object, where: str = "schema") -> str | None:
    """Why a schema is outside the structured-outputs subset, or None."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            found = _schema_problem(item, f"{where}[{index}]")
            if found:
                return found
        return None
    if not isinstance(node, dict):
        return None
    for keyword in UNSUPPORTED_SCHEMA:
        if keyword in node and not isinstance(node[keyword], dict):
            return f"{where}: '{keyword}' is not supported in structured outputs"
    if node.get("type") == "object" and node.get("additionalProperties") is not False:
        return f"{where}: objects must set 'additionalProperties': false"
    if "minItems" in node and node["minItems"] not in (0, 1):
        return f"{where}: 'minItems' supports only 0 and 1"
    if "maxItems" in node:
        return f"{where}: 'maxItems' is not supported in structured outputs"
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                found = _schema_problem(sub, f"{where}.{name}")
                if found:
                    return found
        elif key in ("items", "anyOf", "allOf"):
            found = _schema_problem(value, f"{where}.{key}")
            if found:
                return found
    return None


def _signature(model: str, body: Mapping[str, Any], before: Sequence[Any]) -> str:
    """A thinking block's signature: bound to the model and everything sent before the block."""
    bound = {"model": model, "system": body.get("system"), "tools": body.get("tools")}
    text = json.dumps({**bound, "messages": list(before)}, sort_keys=True, separators=(",", ":"))
    return "fake-sig-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def check_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> Reply | None:
    """The 400 (or 404) the real API answers this request with, or None if it is accepted."""
    model = str(body.get("model") or "")
    rules = MODEL_RULES.get(model)
    if rules is None:
        # An unknown or guessed id is a 404 not_found_error; the fake also refuses ids whose
        # published rules it does not encode, rather than accept what production might refuse.
        return api_error(404, "not_found_error", f"model: {model}")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return _invalid("max_tokens: field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _invalid("messages: at least one message is required")
    # SONNET_55_GUIDE "Prefill returns an error"; HAIKU_55_GUIDE "Replace assistant prefill".
    if messages[-1].get("role") == "assistant":
        return _invalid(PREFILL)
    # SONNET_55_GUIDE "Forced tool use is not supported".
    choice = body.get("tool_choice") or {}
    forced = choice.get("type") in ("tool", "any")
    if forced and not rules.forced_tool_choice:
        return _invalid(FORCED_TOOL)
    output_config = body.get("output_config") or {}
    effort = output_config.get("effort") or rules.default_effort
    if effort not in EFFORTS:
        return _invalid(f"output_config.effort: must be one of {', '.join(EFFORTS)}")
    thinking = body.get("thinking") or {"type": "adaptive"}
    kind = thinking.get("type")
    if kind == "enabled":
        # SONNET_55_GUIDE "Thinking budgets return an error" (its text; HAIKU_55_GUIDE
        # "Configure thinking" documents the 400 without quoting its message).
        return _invalid(THINKING_ENABLED)
    if kind == "disabled" and "disabled" not in rules.thinking_types:
        return _invalid(THINKING_DISABLED)  # SONNET_55_GUIDE "Turn off up-front thinking"
    if kind not in rules.thinking_types:
        return _invalid(f"thinking.type: {kind!r} is not supported for this model")
    if kind in ("between_tools", "disabled"):
        if EFFORTS.index(effort) > EFFORTS.index(rules.off_max_effort):
            return _invalid(f'thinking.type "{kind}" is not supported at effort "{effort}"')
        if kind == "between_tools" and set(thinking) - {"type"}:
            extra = sorted(set(thinking) - {"type"})
            return _invalid(f'thinking.type "between_tools" takes no other field: {extra}')
    # HAIKU_55_GUIDE "Remove sampling parameters" (temperature 1 and top_p 0.99 are the only
    # values accepted, top_k none, never both); SONNET_55_GUIDE says "a non-default value"
    # returns a 400, and the fake takes the defaults the Haiku guide names.
    if "temperature" in body and "top_p" in body:
        return _invalid("temperature and top_p cannot both be specified for this model")
    if "temperature" in body and body["temperature"] != 1:
        return _invalid("temperature: only the default value 1 is supported for this model")
    if "top_p" in body and body["top_p"] != 0.99:
        return _invalid("top_p: only the default value 0.99 is supported for this model")
    if "top_k" in body:
        return _invalid("top_k: is not supported for this model")
    # SONNET_55_GUIDE "Structured outputs": output_format needs the old beta header.
    if "output_format" in body and "structured-outputs-2025-11-13" not in headers.get(
        "anthropic-beta", ""
    ):
        return _invalid("output_format: is deprecated; use output_config.format")
    fmt = output_config.get("format")
    if fmt is not None:
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            return _invalid("output_config.format: type must be 'json_schema' with a schema")
        problem = _schema_problem(fmt["schema"])
        if problem:
            return _invalid(f"output_config.format.{problem}")  # STRUCTURED, limitations
    marks = _breakpoints(body)
    if len(marks) > MAX_BREAKPOINTS:  # CACHING: at most four cache breakpoints a request
        return _invalid(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(marks)}."
        )
    if any(m.get("ttl", "5m") not in TTL_SECONDS for m in marks):
        return _invalid("cache_control.ttl: must be '5m' or '1h'")
    # SONNET_55_GUIDE "Thinking blocks are tied to the model and the conversation";
    # HAIKU_55_GUIDE "Keep earlier turns unchanged": a thinking block sent back after any change
    # to system, tools or earlier messages is a 400.
    for index, message in enumerate(messages):
        if message.get("role") != "assistant" or not isinstance(message.get("content"), list):
            continue
        expected = _signature(model, body, messages[:index])
        for block in message["content"]:
            if block.get("type") == "thinking" and block.get("signature") != expected:
                return _invalid(
                    f"messages.{index}.content: a thinking block was sent back after an "
                    "earlier part of the conversation changed; keep conversations append-only"
                )
    return None


# --- usage: tokens and prompt caching -----------------------------------------------------------


def count_tokens(value: object) -> int:
    """Tokens of a value as the newer tokenizer would count its JSON text (an estimate)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _breakpoints(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    marks: list[Mapping[str, Any]] = []
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("cache_control"):
            marks.append(tool["cache_control"])
    system = body.get("system")
    for block in system if isinstance(system, list) else ():
        if isinstance(block, dict) and block.get("cache_control"):
            marks.append(block["cache_control"])
    for message in body.get("messages") or ():
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("cache_control"):
                marks.append(block["cache_control"])
    return marks


def _prefix_blocks(body: Mapping[str, Any]) -> list[tuple[object, Mapping[str, Any] | None]]:
    """The request in cache order (tools, system, messages), each block with its cache_control.
    The structured-output schema is part of the prompt (the API adds a system prompt for it)."""
    blocks: list[tuple[object, Mapping[str, Any] | None]] = []
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is not None:
        blocks.append((fmt, None))
    for tool in body.get("tools") or ():
        blocks.append((tool, tool.get("cache_control") if isinstance(tool, dict) else None))
    system = body.get("system")
    if isinstance(system, str):
        blocks.append((system, None))
    for block in system if isinstance(system, list) else ():
        blocks.append((block.get("text", block), block.get("cache_control")))
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            blocks.append((content, None))
            continue
        for block in content or ():
            blocks.append((block, block.get("cache_control") if isinstance(block, dict) else None))
    return blocks


@dataclass
class _Cache:
    """Prompt-cache entries by (model, prefix hash), each with the monotonic time it expires."""

    entries: dict[str, float] = field(default_factory=dict)

    def usage(self, model: str, body: Mapping[str, Any], minimum: int) -> dict[str, Any]:
        """Input, cache-read and cache-write tokens of a request, updating the cache."""
        now = time.monotonic()
        digest = hashlib.sha256(model.encode())
        total = 0
        points: list[tuple[str, int, str]] = []  # (key, tokens up to here, ttl)
        for content, control in _prefix_blocks(body):
            digest.update(json.dumps(content, sort_keys=True).encode())
            total += count_tokens(content if isinstance(content, str) else json.dumps(content))
            if control:
                points.append((digest.hexdigest(), total, str(control.get("ttl", "5m"))))
        read = 0
        for key, tokens, ttl in points:
            if self.entries.get(key, 0.0) > now:
                read = tokens
                self.entries[key] = now + TTL_SECONDS[ttl]  # a hit refreshes the entry
        written = {"5m": 0, "1h": 0}
        done = read
        for key, tokens, ttl in points:
            if tokens <= done or tokens < minimum:
                continue  # below the minimum cacheable length nothing is cached, silently
            written[ttl] += tokens - done
            done = tokens
            self.entries[key] = now + TTL_SECONDS[ttl]
        creation = written["5m"] + written["1h"]
        return {
            "input_tokens": total - read - creation,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": creation,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written["5m"],
                "ephemeral_1h_input_tokens": written["1h"],
            },
        }


# --- the default responder ---------------------------------------------------------------------

_FINAL_LINE = re.compile(r"Final line \(copy it exactly, on its own line\): (.+)")
_TARGET = re.compile(r'"target":"([^"]+)"')


def example_for(schema: Mapping[str, Any]) -> Any:
    """A value valid for a simple JSON schema (objects, enums, strings, numbers, arrays, anyOf)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        if any(s.get("type") == "null" for s in schema["anyOf"]):
            return None
        return example_for(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required") or []
        return {name: example_for(schema["properties"][name]) for name in required}
    if kind == "array":
        return []
    if kind == "integer":
        return 24
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return False
    if kind == "string":
        return "Plausible placeholder text from the fake model, long enough for most fields. " * 4
    return None


# A mind's view and a dispatch as long as the real ones: the token counts of a cycle are then
# those of production, which is what the cost measurement needs.
VIEW_ARGUMENT = (
    "I see no edge in these numbers today. The broad index moved less than its twenty-session "
    "range would suggest, the curve barely changed, and the headlines repeat what prices already "
    "know. My record in this regime is thin, so I stay neutral with low confidence and say so "
    "plainly: a call here would be a coin flip dressed up as conviction."
)


def desk_responder(request: Received) -> Reply:
    """Answers the desk's two formats sensibly (a neutral view; a dispatch that keeps the decided
    call's final line), any other schema with a valid example, and a forced tool with a call."""
    schema = request.output_schema
    properties = schema.get("properties") or {}
    if "stance" in properties:
        return json_reply(
            {
                "stance": "neutral",
                "confidence": 0.3,
                "argument": VIEW_ARGUMENT,
                "topics": ["index"],
                "call": None,
            }
        )
    if "body_md" in properties:
        found = _FINAL_LINE.search(request.text)
        final = found.group(1).strip() if found else "**No call this cycle.**"
        target = _TARGET.search(request.text)
        subject = target.group(1) if target else "the index"
        paragraph = (
            f"I read the numbers on {subject} and the minds' arguments. This is the fake model "
            "writing, so the words are plain: every mind was named in the prompt with its "
            "confidence, what was missing was listed, and my record was given to me. The desk "
            "decided in code; I state that decision and nothing else."
        )
        body = "\n\n".join([paragraph] * 4) + "\n\n" + final + "\n"
        return json_reply({"title": "A Plain Dispatch From the Fake Model", "body_md": body})
    if schema:
        return json_reply(example_for(schema) or {})
    name = request.tool_name
    if name is not None:
        for tool in request.body.get("tools") or ():
            if tool.get("name") == name:
                return tool_use(name, example_for(tool.get("input_schema") or {}) or {})
    return text_only("The fake model has nothing to say without a format.")


# --- the server ----------------------------------------------------------------------------------


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    script: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    responder: Responder = desk_responder
    stopping: threading.Event = field(default_factory=threading.Event)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    cache: _Cache = field(default_factory=_Cache)


def _message(reply: Reply, request: Received, number: int, cache: _Cache) -> dict[str, Any]:
    body = request.body
    model = str(body.get("model", "unknown"))
    rules = MODEL_RULES.get(model)
    output_config = body.get("output_config") or {}
    effort = str(output_config.get("effort") or (rules.default_effort if rules else "medium"))
    thinking = (body.get("thinking") or {"type": "adaptive"}).get("type")
    choice = (body.get("tool_choice") or {}).get("type")
    # Adaptive thinking runs by default; a forced tool call (Haiku 5.5) starts unthought, and a
    # refusal or thinking turned off has none.
    thinks = thinking == "adaptive" and choice not in ("tool", "any") and reply.content != ()
    content: list[dict[str, Any]] = []
    thinking_tokens = 0
    if thinks:
        thinking_tokens = THINKING_TOKENS[effort]
        signature = _signature(model, body, body.get("messages") or [])
        content.append({"type": "thinking", "thinking": "", "signature": signature})
    for index, block in enumerate(reply.content):
        sent = dict(block)
        if sent.get("type") == "tool_use":
            sent["id"] = f"toolu_fake_{number:05d}_{index}"
        content.append(sent)
    answer = [b for b in content if b.get("type") != "thinking"]
    output_tokens = thinking_tokens + (count_tokens(answer) if answer else 0)
    stop_reason = reply.stop_reason
    limit = int(body.get("max_tokens") or 1)
    if output_tokens > limit and reply.usage is None:
        # Thinking counts toward max_tokens: the reply stops where the budget ends.
        output_tokens = limit
        stop_reason = "max_tokens"
        kept = max(0, (limit - thinking_tokens)) * CHARS_PER_TOKEN
        content = [
            {**b, "text": str(b.get("text", ""))[: int(kept)]} if b.get("type") == "text" else b
            for b in content
        ]
    usage: dict[str, Any] = {
        **cache.usage(model, body, rules.min_cacheable_tokens if rules else 1024),
        "output_tokens": output_tokens,
        "output_tokens_details": {"thinking_tokens": thinking_tokens},
    }
    usage.update(reply.usage or {})
    return {
        "id": f"msg_fake_{number:05d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_details": dict(reply.stop_details) if reply.stop_details else None,
        "stop_sequence": None,
        "usage": usage,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read the recorded requests instead

    def do_POST(self) -> None:
        state = self.server.state
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        received = Received(
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body if isinstance(body, dict) else {},
            raw=raw,
            at=time.monotonic(),
        )
        with state.lock:
            state.requests.append(received)
            number = next(state.ids)
            scripted = state.script.pop(0) if state.script else None
            if self.path.split("?")[0] != MESSAGES_PATH:
                reply = api_error(404, "not_found_error", f"no route {self.path}")
            elif body is None:
                reply = bad_request("request body is not JSON")
            elif scripted is not None and scripted.status != 200:
                reply = scripted  # a scripted failure comes before any validation
            else:
                refused = check_request(received.body, received.headers)
                if refused is not None and scripted is not None:
                    state.script.insert(0, scripted)  # the scripted answer waits for a valid ask
                reply = refused or scripted or state.responder(received)
        if reply.delay_s and state.stopping.wait(reply.delay_s):
            return
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(reply, received, number)

    def _send(self, reply: Reply, request: Received, number: int) -> None:
        state = self.server.state
        if reply.raw_body is not None:
            payload = reply.raw_body.encode()
        elif reply.error_type is not None:
            payload = json.dumps(
                {
                    "type": "error",
                    "error": {"type": reply.error_type, "message": reply.error_message},
                    "request_id": f"req_fake_{number:05d}",
                }
            ).encode()
        else:
            with state.lock:
                message = _message(reply, request, number, state.cache)
            payload = json.dumps(message).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("request-id", f"req_fake_{number:05d}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (its timeout); nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


class FakeAnthropic:
    """The fake Messages API on 127.0.0.1; a context manager that starts and stops it."""

    def __init__(self, responder: Responder = desk_responder, *, port: int = 0) -> None:
        self._state = _State(responder=responder)
        self._server = _Server(("127.0.0.1", port), self._state)
        # A short poll so that stop() returns at once instead of after the default half second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-anthropic", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order; afterwards the responder answers."""
        with self._state.lock:
            self._state.script.extend(replies)

    def respond_with(self, responder: Responder) -> None:
        """Answer with `responder` whenever the script is empty."""
        with self._state.lock:
            self._state.responder = responder

    def forget_cache(self) -> None:
        """Expire every prompt-cache entry (as if an hour had passed)."""
        with self._state.lock:
            self._state.cache.entries.clear()

    @property
    def requests(self) -> Sequence[Received]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def request_count(self) -> int:
        with self._state.lock:
            return len(self._state.requests)

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._state.lock:
            return len(self._state.script)


def main() -> None:
    """Run the fake with the default responder until interrupted, printing its base URL."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeAnthropic(port=args.port).start()
    print(fake.base_url, flush=True)  # the parent process reads the URL
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
