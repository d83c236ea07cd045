"""The one settings object: read from WORKSHOP_* variables (and an optional .env) at entrypoints.

Nothing below an entrypoint reads the environment; settings are passed down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import ConfigurationError
from shared.home import DEFAULT_HOME, ENV_FILE, STACK_FILE

DEFAULT_MINDS = ("macro", "flow", "contrarian")
DEFAULT_WATCHLIST = (
    "SPY", "QQQ", "IWM", "DIA",
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA",
    "^VIX", "^TNX", "^IRX", "BTC-USD", "ETH-USD", "MSTR",
)  # fmt: skip
DEFAULT_NEWS_FEEDS = (
    "https://feeds.content.dowjones.io/public/rss/mw_topstories",
    "https://www.cnbc.com/id/100003114/device/rss/rss.html",
    "https://feeds.bbci.co.uk/news/business/rss.xml",
    "https://www.federalreserve.gov/feeds/press_all.xml",
)
DEFAULT_FRED_SERIES = ("CPIAUCSL", "CPILFESL", "FEDFUNDS", "DGS2", "DGS10", "T10Y2Y", "VIXCLS")


# Lists in the environment are comma-separated (or JSON); NoDecode hands the raw text to _split.
Names = Annotated[tuple[str, ...], NoDecode]


def _split(value: object) -> object:
    """Accept a comma-separated string (or JSON list) for tuple settings from the environment."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return tuple(json.loads(text))
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Every knob of the desk; defaults run the offline desk on one machine."""

    model_config = SettingsConfigDict(
        env_prefix="WORKSHOP_", env_file=ENV_FILE, extra="ignore", frozen=True
    )

    # --- where state lives -----------------------------------------------------------------------
    home: Path = Field(default=DEFAULT_HOME, description="Folder for the db, redis and logs.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite.")
    broker_url: str | None = Field(default=None, description="Redis URL; default the embedded one.")
    redis_port: int = Field(default=0, ge=0, le=65535, description="Embedded Redis; 0 picks one.")

    # --- the cycle -------------------------------------------------------------------------------
    mode: Literal["live", "replay"] = "replay"
    data_dir: Path | None = Field(default=None, description="Replay directory; default the sample.")
    minds: Names = DEFAULT_MINDS
    horizon_hours: int = Field(default=24, gt=0)
    warm_sessions: int = Field(
        default=1000,
        ge=0,
        description="Sessions of price history before a cycle (the replay's own, or Yahoo's "
        "daily history for a live desk) the menu's calibration is warm-started on; 0 starts cold "
        "(workshop up --cold).",
    )
    mind_time_limit_s: float = Field(default=60.0, gt=0)
    task_time_limit_s: float = Field(
        default=60.0, gt=0, description="Soft time limit of every task but the minds' (+10 s hard)."
    )
    chaos_fail_minds: Names = Field(
        default=(), description="Minds that fail on purpose, for fire drills of the absent path."
    )
    chaos_mind_delay_s: float = Field(
        default=0.0, ge=0, description="Seconds each mind waits first: drills of lost workers."
    )
    chaos_kill_minds: Names = Field(
        default=(), description="Minds whose process kills itself: drills of dead letters."
    )
    cycle_every_s: int = Field(default=0, ge=0, description="Beat schedule for live cycles; 0 off.")
    resolve_every_s: int = Field(default=300, gt=0)
    resolver_max_attempts: int = Field(default=3, ge=1)
    worker_concurrency: int = Field(default=3, ge=1)

    # --- the fleet (issue 12) ---------------------------------------------------------------------
    message_max_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0, description="Largest task message a worker accepts."
    )
    message_max_depth: int = Field(
        default=32, ge=8, le=200, description="Deepest JSON nesting a worker accepts."
    )
    max_deliveries: int = Field(
        default=2, ge=1, description="Deliveries that never finish before a dead letter."
    )
    cycle_deadline_s: float = Field(
        default=300.0, gt=0, description="A cycle unpublished this long after its start is stuck."
    )
    sweep_every_s: float = Field(default=30.0, gt=0, description="Beat's stuck-cycle sweep.")
    max_redrives: int = Field(
        default=2, ge=0, description="Re-drives of a stuck cycle before it is closed."
    )

    # --- logging ---------------------------------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    # --- live sources (issue 3) ------------------------------------------------------------------
    watchlist: Names = DEFAULT_WATCHLIST
    fred_series: Names = DEFAULT_FRED_SERIES
    fred_api_key: SecretStr | None = None
    news_feeds: Names = DEFAULT_NEWS_FEEDS
    sec_user_agent: str | None = Field(
        default=None, description="Contact the SEC requires, e.g. 'Desk ops ops@example.com'."
    )
    source_timeout_s: float = Field(default=20.0, gt=0)
    record_dir: Path | None = None
    yahoo_base_url: str | None = Field(
        default=None, description="Send yfinance's requests here instead of Yahoo (tests, proxy)."
    )
    fred_base_url: str | None = Field(
        default=None, description="Replaces FRED's API and download hosts (tests, a mirror)."
    )
    sec_base_url: str | None = Field(
        default=None, description="Replaces the SEC's www and data hosts (tests, a mirror)."
    )

    # --- the model (issue 4) ---------------------------------------------------------------------
    brain: Literal["offline", "anthropic"] = "offline"
    # The SDK's own variable is accepted too, so a key exported for other tools just works.
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "WORKSHOP_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY", "anthropic_api_key"
        ),
    )
    anthropic_base_url: str | None = None
    # Models by id; their prices live in shared/brain/models.py (one table for the ledger).
    # Minds on the cheapest current model that does the job, the published words on Sonnet.
    anthropic_mind_model: str = Field(
        default="claude-haiku-5-5", description="Model of every mind (per-mind overrides below)."
    )
    anthropic_mind_models: dict[str, str] = Field(
        default_factory=dict, description='Per-mind override, JSON: {"macro": "<model id>"}.'
    )
    anthropic_synthesis_model: str = Field(
        default="claude-sonnet-5-5", description="Model of the synthesis' words."
    )
    # Effort sets how much the model thinks (thinking is adaptive on both default models). The
    # minds reason from the data; the synthesis puts a decision made in code into words.
    anthropic_mind_effort: Literal["low", "medium", "high", "xhigh", "max"] = "medium"
    anthropic_synthesis_effort: Literal["low", "medium", "high", "xhigh", "max"] = "low"
    # Thinking counts toward max_tokens on the current models: room for it and the JSON reply.
    anthropic_max_tokens: int = Field(default=4000, gt=0, description="Reply cap of a mind.")
    anthropic_synthesis_max_tokens: int = Field(default=6000, gt=0)
    # Two calls (a reply and its one repair) must fit inside the mind's Celery time limit.
    anthropic_timeout_s: float = Field(default=25.0, gt=0, description="SDK timeout per call.")
    # Sized from the measured cost of a cycle (bench/claude_cost.py, README "Thinking with
    # Claude"): $0.019 a warm cycle, $0.028 a cold one. The cycle cap leaves room for what is
    # reserved before each call (the most a synthesis call could cost, ~$0.13) through a repair or
    # a timed-out try; the day cap for a cycle every ten minutes around the clock ($2.72) with
    # room for cold caches, repairs and retries.
    anthropic_cycle_cap_usd: float = Field(default=0.40, ge=0, description="Spend cap per cycle.")
    anthropic_day_cap_usd: float = Field(default=4.0, ge=0, description="Spend cap per UTC day.")

    @field_validator(
        "minds",
        "chaos_fail_minds",
        "chaos_kill_minds",
        "watchlist",
        "fred_series",
        "news_feeds",
        mode="before",
    )
    @classmethod
    def _tuple_from_text(cls, value: object) -> object:
        return _split(value)

    @field_validator("minds")
    @classmethod
    def _some_minds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one mind is needed")
        return value

    # --- derived ---------------------------------------------------------------------------------

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'workshop.db').resolve()}"

    @property
    def stack_file(self) -> Path:
        return self.home / STACK_FILE

    def resolved_broker_url(self) -> str:
        """The broker: the setting, else the embedded Redis that `workshop up` recorded."""
        if self.broker_url:
            return self.broker_url
        if self.stack_file.exists():
            state = json.loads(self.stack_file.read_text())
            return str(state["broker_url"])
        raise ConfigurationError(
            "no broker: run `workshop up` to start the embedded stack, "
            "or set WORKSHOP_BROKER_URL=redis://host:port/0"
        )


def load_settings(**overrides: object) -> Settings:
    """Read the settings once at an entrypoint; overrides win over the environment."""
    return Settings(**overrides)  # type: ignore[arg-type]
