"""AnthropicBrain: the minds' views and the synthesis' words from Claude, as validated JSON.

Each request asks for structured output (output_config.format with the JSON schema of a pydantic
reply model), sets adaptive thinking and an effort level explicitly where the model takes them,
and marks the persona as a cacheable prefix with a one-hour TTL (longer than a cycle interval).
It never forces a tool choice, samples, or prefills: the current models refuse those with a 400.
A reply that fails validation gets one repair, appended to the conversation with the reply's
thinking blocks sent back unchanged; then the mind abstains. A refusal stop reason is an
abstention with the model's reason. What the model may not decide stays in code: the learned
rules, the published call, the budget. SDK errors are translated here; retryable ones into
TransientError, which carries the retry-after the API asked for.
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
from shared.brain.fallback import formatted_draft
from shared.brain.models import Effort, spec_for
from shared.brain.offline import OfflineBrain
from shared.brain.prompting import (
    DRAFT_FORMAT,
    VIEW_FORMAT,
    M,
    MindView,
    Personas,
    ReplyFormat,
    Rule,
    callable_symbols,
    contradiction,
    forbidding_rule,
    load_personas,
    mind_messages,
    write_messages,
)
from shared.brain.spending import Caps, release, reserve, settle
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
# A conservative characters-per-token for the pre-call estimate: the 5.5 models' tokenizer counts
# about 30% more tokens than the old ~3.8 characters a token, JSON-heavy prompts are denser still,
# and overestimating keeps the cap a cap (a call settled above its reservation could overshoot).
CHARS_PER_TOKEN = 2
REDACTED = "[redacted]"
CacheTtl = Literal["5m", "1h"]

RuleSource = Sequence[Rule] | Callable[[], Sequence[Rule]]


@dataclass(frozen=True)
class BrainConfig:
    """The knobs of the Claude brain, taken from Settings once at start-up."""

    mind_model: str
    synthesis_model: str
    max_tokens: int
    synthesis_max_tokens: int
    timeout_s: float
    caps: Caps
    mind_effort: Effort = "medium"
    synthesis_effort: Effort = "medium"
    mind_models: Mapping[str, str] = field(default_factory=dict)
    cache_ttl: CacheTtl = "1h"

    def __post_init__(self) -> None:
        # Every model must have a price before a request is sent: fail at start-up, not mid-cycle.
        for model in (self.mind_model, self.synthesis_model, *self.mind_models.values()):
            spec_for(model)

    @classmethod
    def from_settings(cls, settings: Settings) -> BrainConfig:
        return cls(
            mind_model=settings.anthropic_mind_model,
            synthesis_model=settings.anthropic_synthesis_model,
            mind_models=dict(settings.anthropic_mind_models),
            max_tokens=settings.anthropic_max_tokens,
            synthesis_max_tokens=settings.anthropic_synthesis_max_tokens,
            mind_effort=settings.anthropic_mind_effort,
            synthesis_effort=settings.anthropic_synthesis_effort,
            timeout_s=settings.anthropic_timeout_s,
            caps=Caps(
                per_cycle=settings.anthropic_cycle_cap_usd, per_day=settings.anthropic_day_cap_usd
            ),
        )

    def model_for(self, mind: str) -> str:
        if mind == SYNTHESIS:
            return self.synthesis_model
        return self.mind_models.get(mind, self.mind_model)


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


def price_usage(model: str, raw: Mapping[str, Any]) -> TokenUsage:
    """A reply's usage block priced at its own model's list prices.

    Cache writes are split by TTL when the API says how (usage.cache_creation); otherwise they
    are charged at the one-hour price the desk asks for, the dearer of the two.
    """
    spec = spec_for(model)
    input_tokens = int(raw.get("input_tokens") or 0)
    output_tokens = int(raw.get("output_tokens") or 0)
    read = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    split = raw.get("cache_creation")
    if isinstance(split, Mapping):
        five = int(split.get("ephemeral_5m_input_tokens") or 0)
        hour = int(split.get("ephemeral_1h_input_tokens") or 0)
    else:
        five, hour = 0, written
    prices = spec.prices_for(input_tokens + read + written)
    dollars = prices.dollars(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=read,
        cache_write_5m_tokens=five,
        cache_write_1h_tokens=hour,
    )
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=read,
        cache_write_tokens=written,
        dollars=dollars,
    )


class AnthropicBrain:
    """The Brain port on Claude's Messages API (see shared.ports.Brain for the contract).

    think never raises for an expected failure: an unusable reply, a refusal, a spent budget or
    a refused request make the mind abstained or absent with the reason. It raises
    TransientError for rate limits (429), overload (529), other 5xx, timeouts and connection
    errors, which Celery retries; the client must be built with max_retries=0 so that Celery
    alone owns retries. write raises TransientError the same way, and otherwise always returns a
    draft.
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
            reply=VIEW_FORMAT,
            max_tokens=self._config.max_tokens,
            effort=self._config.mind_effort,
        )
        outcome = self._converse(mind, context.snapshot.cycle_key, request, VIEW_FORMAT)
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
        be asked: budget, a refused request, a refusal) the draft is the deterministic prose of
        the offline writer. That is not a free-text fallback: every number, the call and the
        abstention in it are the deliberation's, rendered by code, and no unvalidated model text
        is published.
        """
        rules = self.rules_in_force()
        request = self._request(
            model=self._config.model_for(SYNTHESIS),
            system=self._personas.system_for_synthesis(),
            messages=write_messages(deliberation, context, rules),
            reply=DRAFT_FORMAT,
            max_tokens=self._config.synthesis_max_tokens,
            effort=self._config.synthesis_effort,
        )

        def states_the_decision(reply: object) -> str | None:
            body = getattr(reply, "body_md", "")
            return contradiction(str(body), deliberation)

        outcome = self._converse(
            SYNTHESIS, context.snapshot.cycle_key, request, DRAFT_FORMAT, check=states_the_decision
        )
        draft = outcome.reply
        if draft is None:
            log.warning("synthesis.formatted_fallback", reason=outcome.reason)
            return formatted_draft(deliberation, context, outcome.usage)
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
        """The fixed rules now: a list, or whatever the rule source returns per call. (The
        learned rule book rides on the cycle's context.)"""
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

    # --- talking to the model --------------------------------------------------------------------

    def _request(
        self,
        *,
        model: str,
        system: str,
        messages: list[dict[str, Any]],
        reply: ReplyFormat[Any],
        max_tokens: int,
        effort: Effort,
    ) -> dict[str, Any]:
        spec = spec_for(model)
        output_config: dict[str, Any] = {"format": reply.output_format()}
        if effort in spec.efforts:
            output_config["effort"] = effort
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            # The persona is the stable prefix of every request of this kind: cached for an
            # hour, so each cycle (minutes apart) reads it at the cache price.
            "system": [
                {
                    "type": "text",
                    "text": system,
                    "cache_control": {"type": "ephemeral", "ttl": self._config.cache_ttl},
                }
            ],
            "messages": messages,
            "output_config": output_config,
        }
        if spec.adaptive_thinking:
            request["thinking"] = {"type": "adaptive"}
        return request

    def _converse(
        self,
        purpose: str,
        cycle_key: str,
        request: dict[str, Any],
        reply_format: ReplyFormat[M],
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
            if reply.get("stop_reason") == "refusal":
                reason = self._refusal_reason(reply)
                log.warning("brain.model_refused", purpose=purpose, reason=reason)
                return _Outcome(None, usage, "abstained", reason)
            parsed, problem = self._parse(reply, reply_format)
            if parsed is not None and check is not None:
                problem = check(parsed) or ""
            if not problem and parsed is not None:
                return _Outcome(parsed, usage)
            log.info("brain.invalid_reply", purpose=purpose, attempt=attempt, problem=problem)
            request = {
                **request,
                "messages": [
                    *request["messages"],
                    {"role": "assistant", "content": _assistant_turn(reply)},
                    _repair_turn(problem),
                ],
            }
        return _Outcome(None, usage, "abstained", f"invalid reply after one repair: {problem}")

    def _refusal_reason(self, reply: Mapping[str, Any]) -> str:
        details = reply.get("stop_details")
        details = details if isinstance(details, Mapping) else {}
        category = self._scrub(str(details.get("category") or "no category"))
        explanation = self._scrub(str(details.get("explanation") or ""))[:200]
        reason = f"the model declined to answer (refusal, category {category})"
        return f"{reason}: {explanation}" if explanation else reason

    def _send(
        self, purpose: str, cycle_key: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], TokenUsage]:
        """One request: from the reply cache if it was asked before, else (within budget) the API.

        The most it could cost is reserved in the ledger before it is sent and settled to its
        real cost after. Raises TransientError for what a retry may fix and _NoAnswerError for
        what it cannot.
        """
        key = request_key(request)
        cached = load_reply(self._db_url, key)
        if cached is not None:
            log.info("brain.cache_hit", purpose=purpose, key=key[:16])
            return cached, TokenUsage(cached_reply=True)
        now = self._clock()
        model = str(request["model"])
        reservation = reserve(
            self._db_url,
            cycle_key=cycle_key,
            purpose=purpose,
            model=model,
            request_key=key,
            at=now,
            caps=self._config.caps,
            upcoming=self._most_it_could_cost(request),
        )
        if isinstance(reservation, str):
            log.warning("brain.over_budget", purpose=purpose, reason=reservation)
            raise _NoAnswerError("abstained", reservation)
        try:
            # The raw response: the cache keeps the reply exactly as the API sent it, and parsing
            # is ours (the same code reads a fresh reply and a cached one).
            response = self._client.messages.with_raw_response.create(
                **request, timeout=self._config.timeout_s
            )
            reply = response.json()
        except anthropic.AnthropicError as error:
            # A timed-out or dropped request may still have been billed: its reservation stays
            # booked (the cap errs on the safe side). A refusal with a status cost nothing.
            if not isinstance(error, anthropic.APIConnectionError):
                release(self._db_url, reservation)
            # `from None`: the SDK error holds the request, whose headers carry the API key; only
            # the scrubbed summary below travels on (into logs, Celery's result backend, retries).
            raise self._translate(error, purpose) from None
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            release(self._db_url, reservation)
            log.warning("brain.refused", purpose=purpose, error="reply is not a JSON message")
            raise _NoAnswerError("absent", f"model API answer is not a JSON message ({purpose})")
        usage = price_usage(model, reply.get("usage") or {})
        settle(self._db_url, reservation, usage)
        store_reply(self._db_url, key, model=model, reply=reply, at=now)
        log.info(
            "brain.reply",
            purpose=purpose,
            model=model,
            stop_reason=reply.get("stop_reason"),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            dollars=usage.dollars,
        )
        return reply, usage

    def _most_it_could_cost(self, request: Mapping[str, Any]) -> float:
        """An upper bound: every prompt token at the dearest input price (a one-hour cache
        write), and the whole max_tokens (thinking included) at the output price."""
        prompt_tokens = len(canonical_json(dict(request))) // CHARS_PER_TOKEN
        prices = spec_for(str(request["model"])).prices_for(prompt_tokens)
        return prices.dollars(
            cache_write_1h_tokens=prompt_tokens, output_tokens=int(request["max_tokens"])
        )

    def _parse(
        self, reply: Mapping[str, Any], reply_format: ReplyFormat[M]
    ) -> tuple[M | None, str]:
        """The validated reply, or what was wrong with it. Blocks are read by type: a reply may
        begin with thinking blocks."""
        blocks = [b for b in reply.get("content") or () if isinstance(b, dict)]
        text = "".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
        if reply.get("stop_reason") == "max_tokens":
            return None, "the reply was cut off at max_tokens before it was complete"
        if not text.strip():
            return None, "the reply had no JSON text"
        try:
            data = json.loads(text)
        except ValueError as error:
            return None, f"the reply is not valid JSON ({error})"
        try:
            return reply_format.model.model_validate(data), ""
        except ValidationError as error:
            return None, _describe(error)

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
                after = _retry_after(error.response.headers.get("retry-after"))
                log.warning(
                    "brain.transient",
                    purpose=purpose,
                    status=error.status_code,
                    kind=kind,
                    retry_after=after,
                )
                return TransientError(summary, retry_after=after)
            detail = self._scrub(str(error.api_message or ""))[:300]
            log.warning("brain.refused", purpose=purpose, status=error.status_code, kind=kind)
            return _NoAnswerError("absent", f"{summary}: {detail}" if detail else summary)
        log.warning("brain.refused", purpose=purpose, error=type(error).__name__)
        return _NoAnswerError("absent", f"model API answer unusable: {type(error).__name__}")

    def _scrub(self, text: str) -> str:
        """Text from outside (an error body) with any credential of this client blanked out."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def _retry_after(value: str | None) -> float | None:
    """The retry-after header in seconds (the API sends a number), or None."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _describe(error: ValidationError) -> str:
    """A validation error as the model can act on it: where, and what was wrong."""
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'input'}: {e['msg']}"
        for e in error.errors(include_url=False)
    ]
    return "schema violation: " + "; ".join(problems[:8])


def _assistant_turn(reply: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The reply as the assistant turn of a repair: thinking blocks exactly as they came (the API
    checks their signatures), then the text, so the conversation stays append-only."""
    turn: list[dict[str, Any]] = []
    for block in reply.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "thinking":
            turn.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking", ""),
                    "signature": block.get("signature", ""),
                }
            )
        elif kind == "redacted_thinking":
            turn.append({"type": "redacted_thinking", "data": block.get("data", "")})
        elif kind == "text" and block.get("text"):
            turn.append({"type": "text", "text": str(block["text"])})
    if not any(b["type"] == "text" for b in turn):
        turn.append({"type": "text", "text": "(no reply)"})
    return turn


def _repair_turn(problem: str) -> dict[str, Any]:
    instruction = (
        f"Your reply could not be used: {problem}. Answer again with the complete JSON object "
        "the output format asks for, corrected."
    )
    return {"role": "user", "content": [{"type": "text", "text": instruction}]}


def build_brain(settings: Settings, *, db_url: str, rules: RuleSource = ()) -> Brain:
    """The brain the settings ask for: AnthropicBrain for "anthropic", else the offline brain.

    The SDK client is built once here with max_retries=0 (Celery owns retries) and the per-call
    timeout from the settings. Raises ConfigurationError when the Claude brain has no API key or
    a model id has no price.
    """
    if settings.brain != "anthropic":
        return OfflineBrain()
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else ""
    if not key.strip():
        raise ConfigurationError(
            "brain is 'anthropic' but no API key is set: set WORKSHOP_ANTHROPIC_API_KEY "
            "(or ANTHROPIC_API_KEY)"
        )
    config = BrainConfig.from_settings(settings)
    client = anthropic.Anthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        max_retries=0,
        timeout=settings.anthropic_timeout_s,
    )
    return AnthropicBrain(client, config, db_url=db_url, rules=rules)
