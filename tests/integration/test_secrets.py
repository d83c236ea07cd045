"""No secret leaks: a live cycle on Claude, FRED with an API key, the embedded Redis with its
password and PostgreSQL with a password; every log line, every file the stack writes, every
command's output and every process' command line is searched for all four."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from shared.calendar import NEW_YORK
from shared.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.fred import install_fred
from tests.fakes.http import FakeServer, Reply, serve
from tests.fakes.yahoo import daily_bars, install_yahoo
from tests.integration.conftest import Postgres
from workshop import stack

pytestmark = [pytest.mark.integration, pytest.mark.drill, pytest.mark.timeout(600)]

MODEL_KEY = "sk-ant-api03-modelsecret-Zq8v"
FRED_KEY = "fredsecret0123456789abcdef0123"
DB_PASSWORD = "dbsecret-Kx3p9"
NOW = datetime.now(UTC)


@pytest.fixture
def feeds() -> Iterator[FakeServer]:
    """Yahoo prices and FRED's API (which needs the key in the query string)."""
    last = NOW.astimezone(NEW_YORK).date() - timedelta(days=1)
    with serve() as fake:
        install_yahoo(fake, {s: daily_bars(last, 70, start=100 + i) for i, s in
                             enumerate(("SPY", "QQQ", "^VIX"))})  # fmt: skip
        observed = last - timedelta(days=40)
        install_fred(fake, api={"DGS10": [(observed, "4.1", observed, "9999-12-31")]})
        fake.script("/wire.xml", *[Reply(status=404, body="no")] * 20)
        yield fake


def test_no_secret_in_any_log_file_output_or_command_line(
    tmp_path: Path, feeds: FakeServer, postgres: Postgres
) -> None:
    """After a live cycle with all four secrets set, none appears in a log line, in a file
    anyone but the desk's user can read, in a command's output, or on a command line; the
    files that must hold the Redis password are 0600."""
    home = tmp_path / "home"
    database_url = postgres.url.replace("desk@", f"desk:{DB_PASSWORD}@")
    with FakeAnthropic() as claude:
        env = {
            "WORKSHOP_LOG_FORMAT": "json",
            "WORKSHOP_BRAIN": "anthropic",
            "WORKSHOP_ANTHROPIC_BASE_URL": claude.base_url,
            "WORKSHOP_ANTHROPIC_API_KEY": MODEL_KEY,
            "WORKSHOP_FRED_API_KEY": FRED_KEY,
            "WORKSHOP_FRED_SERIES": "DGS10",
            "WORKSHOP_WATCHLIST": "SPY,QQQ,^VIX",
            "WORKSHOP_NEWS_FEEDS": feeds.url("/wire.xml"),
            "WORKSHOP_YAHOO_BASE_URL": feeds.base_url,
            "WORKSHOP_FRED_BASE_URL": feeds.base_url,
            "WORKSHOP_SEC_BASE_URL": feeds.base_url,
            "WORKSHOP_SEC_USER_AGENT": "Workshop tests ops@example.com",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
        cli_env = {**os.environ, **env, "WORKSHOP_HOME": str(home),
                   "WORKSHOP_DATABASE_URL": database_url}  # fmt: skip
        cli_env.pop("WORKSHOP_BROKER_URL", None)
        outputs: list[str] = []

        def workshop(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [sys.executable, "-m", "workshop.cli", *args], env=cli_env,
                capture_output=True, text=True, timeout=240, check=False,
            )  # fmt: skip
            outputs.append(done.stdout + done.stderr)
            return done

        try:
            assert workshop("up", "--no-beat").returncode == 0, outputs[-1]
            settings = Settings(home=home, database_url=database_url)
            state = stack.read_state(settings)
            assert state is not None
            password = redis.connection.parse_url(state.broker_url)["password"]
            assert password
            assert len(password) >= 24
            cycle = workshop("cycle", "--mode", "live", "--timeout", "180")
            assert cycle.returncode == 0, outputs[-1]
            assert feeds.hits("/fred/series/observations"), "FRED was asked with the key"
            assert claude.requests, "the minds asked the model"
            workshop("status")
            workshop("dead-letters")
            command_lines = [
                Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                for pid in [state.redis_pid, *state.pids()]
                if pid and Path(f"/proc/{pid}/cmdline").exists()
            ]
        finally:
            workshop("down")
    secrets = {"model key": MODEL_KEY, "FRED key": FRED_KEY, "Redis password": password,
               "database password": DB_PASSWORD}  # fmt: skip
    private = {home / "stack.json", home / "redis.conf"}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        text = path.read_bytes().decode(errors="replace")
        found = [name for name, value in secrets.items() if value in text]
        if path in private:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert set(found) <= {"Redis password"}, (path, found)
        else:
            assert not found, f"{found} in {path}"
    assert (home / "logs" / "ingest.log").stat().st_size > 0
    for name, value in secrets.items():
        assert all(value not in out for out in outputs), f"{name} in a command's output"
        assert all(value not in line for line in command_lines), f"{name} on a command line"
    # The stack really ran with them: the live cycle asked FRED with the key.
    assert any(r.param("api_key") == FRED_KEY for r in feeds.hits("/fred/series/observations"))
