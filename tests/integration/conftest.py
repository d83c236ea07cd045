"""Real parts for integration tests: a redis-server on a free loopback port, worker processes
started by the same code as `workshop up`, and a SQLite database in a temporary folder."""

from __future__ import annotations

import contextlib
import gc
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import warnings
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
    database_url: str | None = None,
    *,
    beat: bool = False,
) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("fleet")
    broker = f"redis://127.0.0.1:{redis_port}/{next(_databases)}"
    settings = Settings(home=home, broker_url=broker, database_url=database_url)
    env = {"WORKSHOP_LOG_FORMAT": "json", **(extra_env or {})}
    stack.up(settings, beat=beat, extra_env=env)
    app = driver.producer(broker)
    try:
        yield Fleet(settings=settings, app=app, home=home)
    finally:
        # Results still referenced unsubscribe in __del__; collect them while the broker is up.
        # Sockets kombu and redis-py left to the collector (their pools, not ours) are reported
        # as ResourceWarnings at that moment: draining them here is the point, not a leak of ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        driver.close_producer(app)
        stack.down(settings, timeout=20)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Fleet]:
    """A fleet of real worker processes (ingest, minds, synth, resolver) on the offline brain."""
    yield from start_fleet(tmp_path_factory, redis_port)


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is not installed: scripts/test.sh installs it")
    return found


@dataclass
class Postgres:
    """A throw-away PostgreSQL server the tests can stop and start again."""

    url: str
    base: Path
    options: str
    prefix: list[str]

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, _postgres_binary("pg_ctl"), "-D", str(self.base / "data"), *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        self._ctl("-o", self.options, "-l", str(self.base / "server.log"), "-w", "start")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server on a free loopback port, in a throw-away cluster."""
    # PostgreSQL refuses to run as root; as root the cluster belongs to the postgres user, in a
    # folder that user can reach (pytest's own temp folders are private to root).
    base = Path(tempfile.mkdtemp(prefix="workshop-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        base.chmod(0o755)
    data, port = base / "data", stack.free_port()
    subprocess.run(
        [*prefix, _postgres_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "desk"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    server = Postgres(
        url=f"postgresql+psycopg://desk@127.0.0.1:{port}/workshop",
        base=base,
        options=options,
        prefix=prefix,
    )
    server.start()
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(
            f"postgresql+psycopg://desk@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE workshop"))
        admin.dispose()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres: Postgres) -> str:
    """The URL of the session's PostgreSQL database."""
    return postgres.url
