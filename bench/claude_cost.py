"""What a live-like cycle costs on the Claude desk at default settings, measured by the ledger.

Runs the real AnthropicBrain (real anthropic client) against the loopback Messages API fake,
which counts tokens at the newer tokenizer's density, spends thinking tokens by effort and
simulates prompt caching. A cycle is 17 symbols, 30 headlines and 20 filings, three minds on the
default mind model and the synthesis on the default synthesis model. Prints, from the spend
ledger: a cold cycle (nothing cached), a warm one (the next cycle, personas read from the cache),
a replay of the first (answered from the reply cache), and the day at one cycle every 10 minutes.

    .venv/bin/python -m bench.claude_cost
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import anthropic

from services.synth.synthesize import synthesize
from shared.brain.anthropic import AnthropicBrain, BrainConfig
from shared.brain.spending import cycle_usage
from shared.contracts import CycleContext, Dispatch
from shared.db.session import migrate
from shared.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.unit.brain.cases import AS_OF, live_like_context

MINDS = ("macro", "flow", "contrarian")
CYCLES_PER_DAY = 24 * 6


def run_cycle(brain: AnthropicBrain, context: CycleContext) -> Dispatch:
    """The three minds and the synthesis of one cycle, as the fleet runs them."""
    outputs = [brain.think(mind, context) for mind in MINDS]
    return synthesize(context, outputs, brain, expected_minds=MINDS)


def measure(db_url: str, fake: FakeAnthropic) -> dict[str, float]:
    settings = Settings(_env_file=None)
    config = BrainConfig.from_settings(settings)
    with anthropic.Anthropic(api_key="sk-bench", base_url=fake.base_url, max_retries=0) as client:
        brain = AnthropicBrain(client, config, db_url=db_url)
        cold = live_like_context(AS_OF, "cold")
        run_cycle(brain, cold)
        warm = live_like_context(AS_OF + timedelta(minutes=10), "warm")
        run_cycle(brain, warm)
        before = fake.request_count
        run_cycle(
            brain,
            cold.model_copy(
                update={"snapshot": cold.snapshot.model_copy(update={"cycle_key": "replay"})}
            ),
        )
        assert fake.request_count == before, "a replay must make no request"
    return {key: cycle_usage(db_url, key).dollars for key in ("cold", "warm", "replay")}


def main() -> None:
    with tempfile.TemporaryDirectory() as home, FakeAnthropic() as fake:
        db_url = f"sqlite:///{Path(home) / 'cost.db'}"
        migrate(db_url)
        cost = measure(db_url, fake)
        usage = cycle_usage(db_url, "warm")
    settings = Settings(_env_file=None)
    print(
        f"models: minds {settings.anthropic_mind_model} ({settings.anthropic_mind_effort}), "
        f"synthesis {settings.anthropic_synthesis_model} ({settings.anthropic_synthesis_effort})"
    )
    print(f"cold cycle   ${cost['cold']:.4f}")
    print(
        f"warm cycle   ${cost['warm']:.4f}  (input {usage.input_tokens}, cache read "
        f"{usage.cache_read_tokens}, cache write {usage.cache_write_tokens}, output "
        f"{usage.output_tokens} tokens)"
    )
    print(f"replay       ${cost['replay']:.4f}")
    print(
        f"per day      ${cost['warm'] * CYCLES_PER_DAY:.2f}  ({CYCLES_PER_DAY} cycles, one every "
        "10 minutes)"
    )


if __name__ == "__main__":
    main()
