"""AnthropicBrain: the minds' views and the synthesis' words from Claude, as validated tool calls.

The model fills a forced tool whose schema is a pydantic model; a reply that fails validation
gets one repair, then the mind abstains. What the model may not decide stays in code: the learned
rules, the published call, the budget. SDK errors are translated here; retryable ones into
TransientError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal

import anthropic
import structlog
from pydantic import ValidationError

from shared.brain.cache import canonical_json, load_reply, request_key, store_reply
from shared.brain.offline import OfflineBrain
from shared.brain.prompting import (
    DRAFT_TOOL,
    VIEW_TOOL,
    M,
    MindView,
    Personas,
    ReplyTool,
    Rule,
    call_line,
    callable_symbols,
    contradiction,
    forbidding_rule,
    load_personas,
    mind_messages,
    write_messages,
)
from shared.brain.prose import write_dispatch
from shared.brain.spending import Caps, Prices, over_budget, record_spend
from shared.calendar import utc_now
from shared.contracts import (
    SYNTHESIS,
    CycleContext,
    Deliberation,
    DispatchDraft,
    MindCall,
    MindOutput,
    TokenUsage,
)
from shared.errors import ConfigurationError, TransientError
from shared.ports import Brain
from shared.settings import Settings

log = structlog.get_logger(__name__)

# Statuses a retry may fix: rate limits, request timeouts, lock conflicts, every 5xx (529 included).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# A conservative characters-per-token for the pre-call estimate: JSON-heavy prompts tokenize denser
# than prose, and overestimating keeps the cap a cap.
CHARS_PER_TOKEN = 3
REDACTED = "[redacted]"

RuleSource = Sequence[Rule] | Callable[[], Sequence[Rule]]


@dataclass(frozen=True)
class BrainConfig:
    """The knobs of the Claude brain, taken from Settings once at start-up."""

    model: str
    max_tokens: int
    synthesis_max_tokens: int
    timeout_s: float
    caps: Caps
    prices: Prices
    mind_models: Mapping[str, str] = field(default_factory=dict)
    synthesis_model: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BrainConfig:
        return cls(
            model=settings.anthropic_model,
            mind_models=dict(settings.anthropic_mind_models),
            synthesis_model=settings.anthropic_synthesis_model,
            max_tokens=settings.anthropic_max_tokens,
            synthesis_max_tokens=settings.anthropic_synthesis_max_tokens,
            timeout_s=settings.anthropic_timeout_s,
            caps=Caps(
                per_cycle=settings.anthropic_cycle_cap_usd, per_day=settings.anthropic_day_cap_usd
            ),
            prices=Prices(
                input=settings.anthropic_price_input_per_mtok,
                output=settings.anthropic_price_output_per_mtok,
                cache_read=settings.anthropic_price_cache_read_per_mtok,
                cache_write=settings.anthropic_price_cache_write_per_mtok,
            ),
        )

    def model_for(self, mind: str) -> str:
        if mind == SYNTHESIS:
            return self.synthesis_model or self.model
        return self.mind_models.get(mind, self.model)


class _NoAnswerError(Exception):
    """Internal: the model gave no usable answer, for a reason that makes the mind abstain or be
    absent (never a retry). Carries a message that has been scrubbed of secrets."""

    def __init__(self, status: Literal["abstained", "absent"], reason: str) -> None:
        super().__init__(reason)
        self.status: Literal["abstained", "absent"] = status
        self.reason = reason


@dataclass(frozen=True)
class _Outcome(Generic[M]):
    """How a conversation with the model ended: a valid reply, or why not; and what it cost."""

    reply: M | None
    usage: TokenUsage | None
    status: Literal["ok", "abstained", "absent"] = "ok"
    reason: str | None = None


def add_usage(total: TokenUsage | None, more: TokenUsage) -> TokenUsage:
    """Two usages summed; the sum is a cached reply only if every part was."""
    if total is None:
        return more
    return TokenUsage(
        input_tokens=total.input_tokens + more.input_tokens,
        output_tokens=total.output_tokens + more.output_tokens,
        cache_read_tokens=total.cache_read_tokens + more.cache_read_tokens,
        cache_write_tokens=total.cache_write_tokens + more.cache_write_tokens,
        dollars=round(total.dollars + more.dollars, 8),
        cached_reply=total.cached_reply and more.cached_reply,
    )


class AnthropicBrain:
    """The Brain port on Claude's Messages API (see shared.ports.Brain for the contract).

    think never raises for an expected failure: an unusable reply, a spent budget or a refused
    request make the mind abstained or absent with the reason. It raises TransientError for rate
    limits (429), overload (529), other 5xx, timeouts and connection errors, which Celery retries;
    the client must be built with max_retries=0 so that Celery alone owns retries.
    write raises TransientError the same way, and otherwise always returns a draft.
    """

    name = "anthropic"

    def __init__(
        self,
        client: anthropic.Anthropic,
        config: BrainConfig,
        *,
        db_url: str,
        rules: RuleSource = (),
        personas: Personas | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._config = config
        self._db_url = db_url
        self._rules = rules
        self._personas = personas or load_personas()
        self._clock = clock
        self._secrets = tuple(s for s in (client.api_key, client.auth_token) if s)

    # --- the port ------------------------------------------------------------------------------

    def think(self, mind: str, context: CycleContext) -> MindOutput:
        """One mind's view of the cycle, or an abstention/absence with the reason."""
        system = self._personas.system_for_mind(mind)
        if system is None:
            return MindOutput.absent(mind, f"no persona file for mind {mind!r}")
        rules = self.rules_in_force()
        request = self._request(
            model=self._config.model_for(mind),
            system=system,
            messages=mind_messages(mind, context, rules),
            tool=VIEW_TOOL,
            max_tokens=self._config.max_tokens,
        )
        outcome = self._converse(mind, context.snapshot.cycle_key, request, VIEW_TOOL)
        if outcome.reply is None:
            assert outcome.reason is not None
            assert outcome.status != "ok"
            log.info("mind.unanswered", mind=mind, status=outcome.status, reason=outcome.reason)
            return MindOutput(
                mind=mind, status=outcome.status, reason=outcome.reason, usage=outcome.usage
            )
        assert isinstance(outcome.reply, MindView)
        return self._mind_output(mind, outcome.reply, context, rules, outcome.usage)

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft:
        """The dispatch for a decision made in code; it states that decision and never another.

        A draft that contradicts the decision gets one repair; after that (or if the model cannot
        be asked: budget, a refused request) the draft is the deterministic prose of the offline
        writer. That is not a free-text fallback: every number, the call and the abstention in it
        are the deliberation's, rendered by code, and no unvalidated model text is published.
        """
        rules = self.rules_in_force()
        request = self._request(
            model=self._config.model_for(SYNTHESIS),
            system=self._personas.system_for_synthesis(),
            messages=write_messages(deliberation, context, rules),
            tool=DRAFT_TOOL,
            max_tokens=self._config.synthesis_max_tokens,
        )

        def states_the_decision(reply: object) -> str | None:
            body = getattr(reply, "body_md", "")
            return contradiction(str(body), deliberation)

        outcome = self._converse(
            SYNTHESIS, context.snapshot.cycle_key, request, DRAFT_TOOL, check=states_the_decision
        )
        draft = outcome.reply
        if draft is None:
            log.warning("synthesis.formatted_fallback", reason=outcome.reason)
            return self._formatted(deliberation, context, outcome.usage)
        if draft.proposed_call is not None:
            proposed = draft.proposed_call
            rule = forbidding_rule(rules, proposed.target, proposed.horizon_hours)
            log.info(
                "synthesis.dissent",
                target=proposed.target,
                direction=proposed.direction,
                horizon_hours=proposed.horizon_hours,
                probability=proposed.probability,
                forbidden_by=rule.name if rule else None,
            )
        return DispatchDraft(title=draft.title, body_md=draft.body_md, usage=outcome.usage)

    # --- rules and results -----------------------------------------------------------------------

    def rules_in_force(self) -> tuple[Rule, ...]:
        """The learned rules now: a fixed list, or whatever the rule source returns per call."""
        rules = self._rules() if callable(self._rules) else self._rules
        return tuple(rules)

    def _mind_output(
        self,
        mind: str,
        view: MindView,
        context: CycleContext,
        rules: Sequence[Rule],
        usage: TokenUsage | None,
    ) -> MindOutput:
        call: MindCall | None = None
        dropped: str | None = None
        if view.call is not None:
            proposed = view.call
            said = f"{proposed.target} {proposed.direction} {proposed.horizon_hours}h"
            rule = forbidding_rule(rules, proposed.target, proposed.horizon_hours)
            if rule is not None:
                dropped = f"The desk dropped my call ({said}): rule {rule.describe()}."
            elif proposed.target not in callable_symbols(context):
                dropped = f"The desk dropped my call ({said}): it has no price for the target."
            else:
                call = MindCall(
                    target=proposed.target,
                    direction=proposed.direction,
                    horizon_hours=proposed.horizon_hours,
                    probability=proposed.probability,
                )
            if dropped:
                log.info("mind.call_dropped", mind=mind, call=said, why=dropped)
        argument = view.argument if dropped is None else f"{view.argument}\n\n{dropped}"
        return MindOutput(
            mind=mind,
            status="ok",
            stance=view.stance,
            confidence=view.confidence,
            argument=argument,
            reason=dropped,
            topics=tuple(dict.fromkeys(t.strip().lower() for t in view.topics if t.strip())),
            call=call,
            usage=usage,
        )

    def _formatted(
        self, deliberation: Deliberation, context: CycleContext, usage: TokenUsage | None
    ) -> DispatchDraft:
        title, body = write_dispatch(deliberation, context)
        if contradiction(body, deliberation) is not None:
            body = f"{body.rstrip()}\n\n{call_line(deliberation)}\n"
        return DispatchDraft(title=title[:200], body_md=body, usage=usage)

    # --- talking to the model --------------------------------------------------------------------

    def _request(
        self,
        *,
        model: str,
        system: str,
        messages: list[dict[str, Any]],
        tool: ReplyTool[Any],
        max_tokens: int,
    ) -> dict[str, Any]:
        return {
            "model": model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": messages,
            "tools": [tool.param()],
            "tool_choice": tool.choice(),
        }

    def _converse(
        self,
        purpose: str,
        cycle_key: str,
        request: dict[str, Any],
        tool: ReplyTool[M],
        *,
        check: Callable[[M], str | None] | None = None,
    ) -> _Outcome[M]:
        """Ask, validate, and on a bad reply ask once more with the error; never a third time."""
        usage: TokenUsage | None = None
        problem = ""
        for attempt in (1, 2):
            try:
                reply, spent = self._send(purpose, cycle_key, request)
            except _NoAnswerError as unanswered:
                return _Outcome(None, usage, unanswered.status, unanswered.reason)
            usage = add_usage(usage, spent)
            parsed, problem, assistant, tool_use_id = self._parse(reply, tool)
            if parsed is not None and check is not None:
                problem = check(parsed) or ""
            if not problem and parsed is not None:
                return _Outcome(parsed, usage)
            log.info("brain.invalid_reply", purpose=purpose, attempt=attempt, problem=problem)
            request = {
                **request,
                "messages": [
                    *request["messages"],
                    {"role": "assistant", "content": assistant},
                    _repair_turn(tool, tool_use_id, problem),
                ],
            }
        return _Outcome(None, usage, "abstained", f"invalid reply after one repair: {problem}")

    def _send(
        self, purpose: str, cycle_key: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], TokenUsage]:
        """One request: from the reply cache if it was asked before, else (within budget) the API.

        Raises TransientError for what a retry may fix and _NoAnswerError for what it cannot.
        """
        key = request_key(request)
        cached = load_reply(self._db_url, key)
        if cached is not None:
            log.info("brain.cache_hit", purpose=purpose, key=key[:16])
            return cached, TokenUsage(cached_reply=True)
        now = self._clock()
        upcoming = self._most_it_could_cost(request)
        refusal = over_budget(
            self._db_url, cycle_key=cycle_key, at=now, caps=self._config.caps, upcoming=upcoming
        )
        if refusal is not None:
            log.warning("brain.over_budget", purpose=purpose, reason=refusal)
            raise _NoAnswerError("abstained", refusal)
        try:
            # The raw response: the cache keeps the reply exactly as the API sent it, and parsing
            # is ours (the same code reads a fresh reply and a cached one).
            response = self._client.messages.with_raw_response.create(
                **request, timeout=self._config.timeout_s
            )
            reply = response.json()
        except anthropic.AnthropicError as error:
            # `from None`: the SDK error holds the request, whose headers carry the API key; only
            # the scrubbed summary below travels on (into logs, Celery's result backend, retries).
            raise self._translate(error, purpose) from None
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            log.warning("brain.refused", purpose=purpose, error="reply is not a JSON object")
            raise _NoAnswerError("absent", f"model API answer is not a JSON message ({purpose})")
        usage = self._usage(reply)
        record_spend(
            self._db_url,
            cycle_key=cycle_key,
            purpose=purpose,
            model=str(request["model"]),
            request_key=key,
            usage=usage,
            at=now,
        )
        store_reply(self._db_url, key, model=str(request["model"]), reply=reply, at=now)
        log.info(
            "brain.reply",
            purpose=purpose,
            model=request["model"],
            stop_reason=reply.get("stop_reason"),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            dollars=usage.dollars,
        )
        return reply, usage

    def _most_it_could_cost(self, request: Mapping[str, Any]) -> float:
        prompt_tokens = len(canonical_json(dict(request))) // CHARS_PER_TOKEN
        return self._config.prices.dollars(
            input_tokens=prompt_tokens, output_tokens=int(request["max_tokens"])
        )

    def _usage(self, reply: Mapping[str, Any]) -> TokenUsage:
        raw = reply.get("usage") or {}
        tokens = {
            "input_tokens": int(raw.get("input_tokens") or 0),
            "output_tokens": int(raw.get("output_tokens") or 0),
            "cache_read_tokens": int(raw.get("cache_read_input_tokens") or 0),
            "cache_write_tokens": int(raw.get("cache_creation_input_tokens") or 0),
        }
        return TokenUsage(**tokens, dollars=self._config.prices.dollars(**tokens))

    def _parse(
        self, reply: Mapping[str, Any], tool: ReplyTool[M]
    ) -> tuple[M | None, str, list[dict[str, Any]], str | None]:
        """The validated reply, or the problem with it; plus the assistant turn to send back."""
        blocks = [b for b in reply.get("content") or () if isinstance(b, dict)]
        texts = [
            {"type": "text", "text": str(b.get("text"))}
            for b in blocks
            if b.get("type") == "text" and b.get("text")
        ]
        use = next(
            (b for b in blocks if b.get("type") == "tool_use" and b.get("name") == tool.name), None
        )
        if use is None:
            bare = texts or [{"type": "text", "text": "(no reply)"}]
            return None, f"the reply did not call the tool {tool.name}", bare, None
        tool_use_id = str(use.get("id") or "")
        raw_input = use.get("input")
        problem = ""
        data: object = raw_input
        if isinstance(raw_input, str):
            try:
                data = json.loads(raw_input)
            except ValueError as error:
                problem = f"the tool input is not valid JSON ({error})"
        echoed = data if isinstance(data, dict) and not problem else {}
        assistant: list[dict[str, Any]] = [
            *texts,
            {"type": "tool_use", "id": tool_use_id, "name": tool.name, "input": echoed},
        ]
        if problem:
            return None, problem, assistant, tool_use_id
        try:
            parsed = tool.model.model_validate(data)
        except ValidationError as error:
            return None, _describe(error), assistant, tool_use_id
        return parsed, "", assistant, tool_use_id

    def _translate(self, error: anthropic.AnthropicError, purpose: str) -> Exception:
        """The SDK error as the desk's: TransientError to retry, or _NoAnswerError (mind absent)."""
        if isinstance(error, anthropic.APITimeoutError):
            message = f"model API timed out after {self._config.timeout_s:g}s ({purpose})"
            log.warning("brain.transient", purpose=purpose, error="timeout")
            return TransientError(message)
        if isinstance(error, anthropic.APIConnectionError):
            log.warning("brain.transient", purpose=purpose, error="connection")
            return TransientError(f"model API unreachable ({purpose})")
        if isinstance(error, anthropic.APIStatusError):
            kind = self._scrub(str(error.type or "unknown_error"))
            summary = f"model API {error.status_code} {kind} ({purpose})"
            if error.request_id:
                summary += f" request {self._scrub(error.request_id)}"
            if error.status_code in RETRYABLE_STATUSES or error.status_code >= 500:
                log.warning("brain.transient", purpose=purpose, status=error.status_code, kind=kind)
                return TransientError(summary)
            detail = self._scrub(str(error.api_message or ""))[:200]
            log.warning("brain.refused", purpose=purpose, status=error.status_code, kind=kind)
            return _NoAnswerError("absent", f"{summary}: {detail}" if detail else summary)
        log.warning("brain.refused", purpose=purpose, error=type(error).__name__)
        return _NoAnswerError("absent", f"model API answer unusable: {type(error).__name__}")

    def _scrub(self, text: str) -> str:
        """Text from outside (an error body) with any credential of this client blanked out."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def _describe(error: ValidationError) -> str:
    """A validation error as the model can act on it: where, and what was wrong."""
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'input'}: {e['msg']}"
        for e in error.errors(include_url=False)
    ]
    return "schema violation: " + "; ".join(problems[:8])


def _repair_turn(tool: ReplyTool[Any], tool_use_id: str | None, problem: str) -> dict[str, Any]:
    instruction = f"{problem}. Call {tool.name} again with a corrected, complete input."
    if tool_use_id:
        content: list[dict[str, Any]] = [
            {
                "type": "tool_result",
                "tool_use_id": tool_use_id,
                "is_error": True,
                "content": instruction,
            }
        ]
    else:
        content = [{"type": "text", "text": instruction}]
    return {"role": "user", "content": content}


def build_brain(settings: Settings, *, db_url: str, rules: RuleSource = ()) -> Brain:
    """The brain the settings ask for: AnthropicBrain for "anthropic", else the offline brain.

    The SDK client is built once here with max_retries=0 (Celery owns retries) and the per-call
    timeout from the settings. Raises ConfigurationError when the Claude brain has no API key.
    """
    if settings.brain != "anthropic":
        return OfflineBrain()
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else ""
    if not key.strip():
        raise ConfigurationError(
            "brain is 'anthropic' but no API key is set: set WORKSHOP_ANTHROPIC_API_KEY "
            "(or ANTHROPIC_API_KEY)"
        )
    client = anthropic.Anthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        max_retries=0,
        timeout=settings.anthropic_timeout_s,
    )
    return AnthropicBrain(client, BrainConfig.from_settings(settings), db_url=db_url, rules=rules)
