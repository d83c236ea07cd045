"""Real parts for integration tests: a redis-server on a free loopback port, worker processes
started by the same code as `workshop up`, and a SQLite database in a temporary folder."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery

from shared.settings import Settings
from workshop import driver, stack

_databases = itertools.count(1)


@dataclass
class Fleet:
    """A running fleet: its settings, a producer app and where its logs go."""

    settings: Settings
    app: Celery
    home: Path

    @property
    def db_url(self) -> str:
        return self.settings.db_url

    def log(self, worker: str) -> str:
        return (self.home / "logs" / f"{worker}.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One real redis-server for the session; each fleet uses its own database number."""
    home = tmp_path_factory.mktemp("redis")
    port = stack.free_port()
    process = stack.start_redis(home, port, persistent=False)
    yield port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def start_fleet(
    tmp_path_factory: pytest.TempPathFactory,
    redis_port: int,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("fleet")
    broker = f"redis://127.0.0.1:{redis_port}/{next(_databases)}"
    settings = Settings(home=home, broker_url=broker)
    env = {"WORKSHOP_LOG_FORMAT": "json", **(extra_env or {})}
    stack.up(settings, beat=False, extra_env=env)
    app = driver.producer(broker)
    try:
        yield Fleet(settings=settings, app=app, home=home)
    finally:
        app.close()
        stack.down(settings, timeout=20)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Fleet]:
    """A fleet of real worker processes (ingest, minds, synth, resolver) on the offline brain."""
    yield from start_fleet(tmp_path_factory, redis_port)
