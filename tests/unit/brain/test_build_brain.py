"""build_brain: the wiring's one call that turns settings into a brain."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.brain.anthropic import AnthropicBrain, build_brain
from shared.brain.offline import OfflineBrain
from shared.errors import ConfigurationError
from shared.ports import Brain
from shared.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.unit.brain.cases import make_context


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "WORKSHOP_ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_anthropic_brain_without_a_key_is_a_configuration_error() -> None:
    """Choosing the Claude brain with no key fails at start-up, naming the setting to set."""
    settings = Settings(brain="anthropic", _env_file=None)
    with pytest.raises(ConfigurationError, match="WORKSHOP_ANTHROPIC_API_KEY"):
        build_brain(settings, db_url="sqlite://")


def test_the_sdk_variable_is_accepted_and_the_client_never_retries(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropic, db_url: str
) -> None:
    """ANTHROPIC_API_KEY is enough; the built brain talks to the base URL with max_retries=0."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    settings = Settings(brain="anthropic", anthropic_base_url=fake.base_url, _env_file=None)
    brain = build_brain(settings, db_url=db_url)

    assert isinstance(brain, AnthropicBrain)
    assert isinstance(brain, Brain)
    assert brain._client.max_retries == 0
    assert brain.think("macro", make_context()).status == "ok"  # the fake's default responder
    assert fake.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert fake.requests[0].body["model"] == "claude-haiku-5-5"  # minds on the Haiku class


def test_a_model_without_a_price_is_a_configuration_error(db_url: str) -> None:
    """A model id missing from the price table fails at start-up, naming the table."""
    settings = Settings(
        brain="anthropic",
        anthropic_api_key="sk-x",
        anthropic_synthesis_model="claude-sonnet-9",
        _env_file=None,
    )
    with pytest.raises(ConfigurationError, match=r"claude-sonnet-9.*shared/brain/models\.py"):
        build_brain(settings, db_url=db_url)


def test_the_offline_setting_builds_the_offline_brain(tmp_path: Path) -> None:
    """With brain='offline' the factory returns the deterministic offline brain."""
    settings = Settings(_env_file=None)
    assert isinstance(build_brain(settings, db_url=f"sqlite:///{tmp_path}/x.db"), OfflineBrain)
