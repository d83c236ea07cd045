"""The Claude models the desk knows: list prices per model id and what each request may carry.

One table, one place. The ledger charges every call at its own model's prices; the brain asks a
model for structured output the way that model accepts it; an id that is not in the table is a
configuration error at start-up, never a silent default price.

Sources (Anthropic's documentation, read 2026-11-29): the pricing page's model table (base input,
5-minute and 1-hour cache writes, cache hits, output, per million tokens), the Claude Sonnet 5.5
and Claude Haiku 5.5 migration guides and "What's new in Claude Haiku 5.5" (thinking, effort,
forced tool choice, sampling, prefill), and the structured-outputs guide (output_config.format).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shared.errors import ConfigurationError

Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "xhigh", "max")
MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens, by kind of token (the pricing page's five columns)."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float

    def dollars(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_5m_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float:
        total = (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_read_tokens * self.cache_read
            + cache_write_5m_tokens * self.cache_write_5m
            + cache_write_1h_tokens * self.cache_write_1h
        )
        return round(total / MILLION, 8)


@dataclass(frozen=True)
class ModelSpec:
    """One model id: its prices, and the request settings it accepts.

    long_prices apply to a whole request whose prompt (input plus cache reads and writes) is over
    long_above tokens, as the pricing page bills Haiku 5.5's long prompts.
    """

    id: str
    prices: Prices
    long_above: int | None = None
    long_prices: Prices | None = None
    # Adaptive thinking with an effort level: sent explicitly on every request that supports it.
    adaptive_thinking: bool = True
    efforts: tuple[Effort, ...] = EFFORTS
    # Structured outputs (output_config.format with a JSON schema).
    structured_outputs: bool = True

    def prices_for(self, prompt_tokens: int) -> Prices:
        long = self.long_prices is not None and self.long_above is not None
        if long and prompt_tokens > (self.long_above or 0) and self.long_prices is not None:
            return self.long_prices
        return self.prices


MODELS: Mapping[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        # Sonnet 5.5: cache hits at 0.05x input ($0.10), per the pricing page's note 2 and the
        # Sonnet 5.5 migration guide; an earlier version of the page listed $0.20.
        ModelSpec("claude-sonnet-5-5", Prices(2.0, 10.0, 0.10, 2.50, 4.0)),
        # Haiku 5.5: prices for prompts up to 100,000 tokens, and the long-prompt row above it.
        ModelSpec(
            "claude-haiku-5-5",
            Prices(0.10, 0.50, 0.01, 0.125, 0.20),
            long_above=100_000,
            long_prices=Prices(0.50, 2.50, 0.05, 0.625, 1.0),
        ),
        ModelSpec("claude-opus-5-5", Prices(4.0, 20.0, 0.20, 5.0, 8.0)),
        ModelSpec("claude-sonnet-5", Prices(2.0, 10.0, 0.20, 2.50, 4.0)),
        # Haiku 4.5 has no effort parameter and thinks only with a token budget: the desk runs it
        # without thinking.
        ModelSpec(
            "claude-haiku-4-5",
            Prices(1.0, 5.0, 0.10, 1.25, 2.0),
            adaptive_thinking=False,
            efforts=(),
        ),
    )
}


def spec_for(model: str) -> ModelSpec:
    """The table's entry for a model id; ConfigurationError naming the known ids otherwise."""
    spec = MODELS.get(model)
    if spec is None:
        known = ", ".join(sorted(MODELS))
        raise ConfigurationError(
            f"model {model!r} has no price in shared/brain/models.py (known: {known}); "
            "add its list prices there before using it"
        )
    return spec
