"""The desk's cycle against the bare Celery cycle of the same shape, side by side on one Redis
with the same worker flags: sequential latency, the critical path with slow minds, throughput of
a burst of triggers, and each worker's peak resident memory.

Both fleets are real worker processes; a cycle is timed from sending its trigger to its row
being readable in the database, polled the same way for both.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bench.report import Figure, Report

POLL_S = 0.002
# Warm-up cycles sent at once before measuring: twice the most processes any worker runs.
WARM_UP = 6


@dataclass
class Running:
    """A started fleet: how to trigger a cycle, where its rows land, its worker pids."""

    name: str
    db_path: Path
    table: str
    column: str
    workers: dict[str, int]
    send: Callable[[str], None]
    logs: Path
    close: Callable[[], None]
    keys: Iterator[str] = field(default_factory=lambda: iter(()))

    def done(self, key: str) -> bool:
        with sqlite3.connect(self.db_path, timeout=30) as db:
            row = db.execute(
                f"SELECT 1 FROM {self.table} WHERE {self.column} = ?",  # noqa: S608 - fixed names
                (key,),
            ).fetchone()
        return row is not None

    def count(self, keys: set[str]) -> int:
        with sqlite3.connect(self.db_path, timeout=30) as db:
            found = {r[0] for r in db.execute(f"SELECT {self.column} FROM {self.table}")}  # noqa: S608
        return len(found & keys)


def _wait(fleet: Running, key: str, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if fleet.done(key):
            return time.perf_counter() - started
        time.sleep(POLL_S)
    raise TimeoutError(f"{fleet.name}: no row for {key} within {timeout:.0f} s")


def one_cycle(fleet: Running) -> float:
    key = next(fleet.keys)
    started = time.perf_counter()
    fleet.send(key)
    _wait(fleet, key)
    return time.perf_counter() - started


def burst(fleet: Running, n: int, timeout: float = 300.0) -> float:
    """n triggers sent at once; cycles per second until every one has its row."""
    keys = [next(fleet.keys) for _ in range(n)]
    started = time.perf_counter()
    for key in keys:
        fleet.send(key)
    wanted = set(keys)
    deadline = started + timeout
    while fleet.count(wanted) < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{fleet.name}: burst of {n} not done within {timeout:.0f} s")
        time.sleep(0.02)
    return n / (time.perf_counter() - started)


# --- memory ---------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(x) for x in handle.read().split()]
    except OSError:
        return out
    return out


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


FOOTPRINT = """
import os, sys
os.environ.setdefault("WORKSHOP_BROKER_URL", "redis://127.0.0.1:9/0")
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
import celery
base = rss()
import shared.celery_app, services.ingest.tasks, services.minds.tasks, services.synth.tasks
import services.resolver.tasks
libs = rss()
from datetime import date
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.market.opening import replay_market
market = replay_market(None)
day = market.sessions(date(1900, 1, 1), date(2999, 12, 31))[-1]
snapshot = market.snapshot(CycleTrigger(cycle_key="x", as_of=replay_as_of(day), mode="replay"))
market.features(snapshot)
print(libs - base, rss() - libs)
"""


def footprint() -> tuple[float, float]:
    """What a desk process must hold beyond Celery, measured in a fresh interpreter: the desk's
    libraries and code (MB), and the price history with one cycle's features (MB)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", FOOTPRINT], capture_output=True, text=True,
                          cwd=root, check=True)  # fmt: skip
    libs, data = (float(x) for x in done.stdout.split())
    return libs, data


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a worker has used so far: its main process and pool children."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in (pid, *_children(pid)):
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def burst_cpu(fleet: Running, n: int) -> tuple[float, dict[str, float]]:
    """burst(), with the CPU milliseconds per cycle each of the fleet's workers spent in it."""
    before = {name: cpu_s(pid) for name, pid in fleet.workers.items()}
    rate = burst(fleet, n)
    spent = {name: (cpu_s(pid) - before[name]) * 1000 / n for name, pid in fleet.workers.items()}
    return rate, spent


def peak_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a worker: its main process and every pool child."""
    pids = [pid, *_children(pid)]
    return sum(_status_kb(p, "VmHWM") for p in pids) / 1024


# --- the two fleets ------------------------------------------------------------------------


def _bare_command(name: str, queues: list[str], concurrency: int) -> list[str]:
    """The desk's own worker command line with the bare app in place of the desk's."""
    from workshop import stack

    command = stack.worker_command(name, queues, concurrency)
    command[command.index("-A") + 1] = "bench.bare:app"
    return command


@contextmanager
def bare_fleet(broker: str, home: Path, delay: float) -> Iterator[Running]:
    import subprocess

    from bench import bare
    from workshop import stack

    home.mkdir(parents=True, exist_ok=True)
    db_path = home / "bare.sqlite"
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env.update(
        BENCH_BARE_BROKER=broker,
        BENCH_BARE_DB=str(db_path),
        BENCH_BARE_MIND_DELAY_S=str(delay),
        PYTHONPATH=os.pathsep.join([root, env.get("PYTHONPATH", "")]),
    )
    bare.create_table(str(db_path))
    groups = {"ingest": ([bare.INGEST], 2), "minds": ([bare.MINDS], 3), "synth": ([bare.SYNTH], 2)}
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, (queues, concurrency) in groups.items():
        with (logs / f"bare-{name}.log").open("ab") as out:
            processes[name] = subprocess.Popen(
                _bare_command(f"bare-{name}", queues, concurrency),
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
            )  # fmt: skip
    from celery import Celery

    producer = Celery("bare-client", broker=broker, backend=broker)
    producer.conf.update(task_serializer="json", accept_content=["json"])
    try:
        stack.wait_for_workers(broker, {f"bare-{n}": p.pid for n, p in processes.items()}, logs)

        def send(key: str) -> None:
            producer.send_task("bare.ingest", args=[key], queue=bare.INGEST)

        numbers = iter(range(10**9))
        yield Running(
            "bare", db_path, "rows", "key", {n: p.pid for n, p in processes.items()}, send, logs,
            close=lambda: None, keys=(f"bare-{n}" for n in numbers),
        )  # fmt: skip
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        producer.close()


@contextmanager
def desk_fleet(broker: str, home: Path, delay: float, days: list[date]) -> Iterator[Running]:
    from shared import tasknames
    from shared.calendar import replay_as_of
    from shared.contracts import CycleTrigger
    from shared.settings import Settings
    from workshop import driver, stack

    settings = Settings(home=home, broker_url=broker)
    env = {"WORKSHOP_LOG_FORMAT": "json", "WORKSHOP_CHAOS_MIND_DELAY_S": str(delay)}
    state = stack.up(settings, beat=False, extra_env=env)
    app = driver.producer(broker)
    by_key: dict[str, date] = {}

    def send(key: str) -> None:
        trigger = CycleTrigger(
            cycle_key=key, as_of=replay_as_of(by_key[key]), mode="replay", data_dir=None
        )
        app.send_task(tasknames.START_CYCLE, args=[trigger.model_dump(mode="json")])

    def keys() -> Iterator[str]:
        for day in days:
            key = f"bench:{delay:g}:{day.isoformat()}"
            by_key[key] = day
            yield key

    db_path = Path(settings.db_url.split("///", 1)[1])
    try:
        yield Running(
            "desk", db_path, "dispatches", "cycle_key", dict(state.workers), send,
            home / "logs", close=lambda: None, keys=keys(),
        )  # fmt: skip
    finally:
        driver.close_producer(app)
        stack.down(settings, timeout=20)


def _task_seconds(logs: Path) -> dict[str, float]:
    """Median seconds each desk task spent in its own code, from the workers' JSON logs."""
    wanted = {"task.finished": "ingest task", "mind.completed": "mind task",
              "synth.completed": "synthesis task"}  # fmt: skip
    found: dict[str, list[float]] = {v: [] for v in wanted.values()}
    for path in logs.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            name = wanted.get(event.get("event", ""))
            if name and isinstance(event.get("seconds"), int | float):
                found[name].append(float(event["seconds"]))
    return {k: statistics.median(v) for k, v in found.items() if v}


def run(report: Report, *, quick: bool) -> None:
    """Start Redis, run the bare and the desk fleets through each figure, print the ratios."""
    from shared.market.opening import replay_market
    from workshop import stack

    sequential_n, critical_n, burst_n = (5, 3, 20) if quick else (30, 10, 200)
    market = replay_market(None)
    days = market.sessions(date(1900, 1, 1), date(2999, 12, 31))
    with tempfile.TemporaryDirectory(prefix="workshop-bench-") as tmp:
        home = Path(tmp)
        port = stack.free_port()
        redis = stack.start_redis(home / "redis", port, persistent=False)
        try:
            _measure(report, home, port, days, sequential_n, critical_n, burst_n)
        finally:
            redis.terminate()
            redis.wait(timeout=10)


def _measure(
    report: Report, home: Path, port: int, days: list[date], sequential_n: int,
    critical_n: int, burst_n: int,
) -> None:  # fmt: skip
    base = f"redis://127.0.0.1:{port}"
    # Each part uses its own days, so no cycle key is ever repeated.
    plain_days = days[-(sequential_n + burst_n + WARM_UP + 1) :]
    slow_days = days[: critical_n + WARM_UP]
    with (
        bare_fleet(f"{base}/1", home / "bare", 0.0) as bare,
        desk_fleet(f"{base}/2", home / "desk", 0.0, plain_days) as desk,
    ):
        # Warm-up: every pool process runs a cycle before anything is measured, as in a fleet
        # that has been running (a process's first cycle pays imports and connections, and a
        # desk's synthesis process its menu's warm start: seconds, once). A burst of twice the
        # processes reaches each of them; its time is printed, not compared.
        warm_bare, warm_desk = burst(bare, WARM_UP), burst(desk, WARM_UP)
        report.note(f"warm-up, {WARM_UP} cycles at once on cold processes: desk "
                    f"{WARM_UP / warm_desk:.1f} s, bare {WARM_UP / warm_bare:.1f} s")  # fmt: skip
        seq_bare: list[float] = []
        seq_desk: list[float] = []
        for _ in range(sequential_n):  # interleaved so that drift on the machine hits both
            seq_bare.append(one_cycle(bare))
            seq_desk.append(one_cycle(desk))
        b, d = statistics.median(seq_bare), statistics.median(seq_desk)
        report.add(Figure("sequential cycle, median", d * 1000, b * 1000, "ms", "<=", 1.5))
        tp_bare, cpu_bare = burst_cpu(bare, burst_n)
        tp_desk, cpu_desk = burst_cpu(desk, burst_n)
        for fleet, cpu in (("desk", cpu_desk), ("bare", cpu_bare)):
            per = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
            report.note(f"{fleet} CPU per cycle in the burst: {sum(cpu.values()):.1f} ms ({per})")
        report.add(
            Figure(f"throughput, {burst_n} triggers at once", tp_desk, tp_bare, "cycles/s",
                   ">=", 0.5)
        )  # fmt: skip
        libs, data = footprint()
        report.note(f"a desk process holds {libs:.0f} MB of libraries and code beyond Celery, "
                    f"and {data:.0f} MB of price history once it builds a snapshot")  # fmt: skip
        # Which pool processes must hold the price history: ingest (snapshots and features),
        # the resolver (settling closes) and the synthesis (the menu weighs each session's
        # candidates from the replay's features, and its warm start a thousand sessions of them).
        for name, holds_data, twin in (
            ("ingest", True, "ingest"),
            ("minds", False, "minds"),
            ("synth", True, "synth"),
            ("resolver", True, "synth"),
        ):
            children = len(_children(desk.workers[name]))
            bare_mb = peak_mb(bare.workers[twin])
            needed = bare_mb + (children + 1) * libs + (children * data if holds_data else 0)
            report.add(
                Figure(f"peak memory (VmHWM), {name} worker", peak_mb(desk.workers[name]),
                       bare_mb, "MB", "<=", None, limit=MEMORY_RATIO * needed,
                       note=f"bare: the bare {twin} worker; limit {MEMORY_RATIO:g} x {needed:.0f} "
                       f"MB, the bare worker + what its {children + 1} processes must hold")
            )  # fmt: skip
        own = _task_seconds(desk.logs)
    for name, seconds in own.items():
        report.note(f"desk {name}: {seconds * 1000:.1f} ms of its own code (median, from its log)")
    with (
        bare_fleet(f"{base}/3", home / "bare-slow", 0.5) as bare,
        desk_fleet(f"{base}/4", home / "desk-slow", 0.5, slow_days) as desk,
    ):
        burst(bare, WARM_UP), burst(desk, WARM_UP)
        crit_bare: list[float] = []
        crit_desk: list[float] = []
        for _ in range(critical_n):
            crit_bare.append(one_cycle(bare))
            crit_desk.append(one_cycle(desk))
        b, d = statistics.median(crit_bare), statistics.median(crit_desk)
        report.add(Figure("critical path, 0.5 s per mind", d * 1000, b * 1000, "ms", "<=", 1.05))


# A desk worker must hold, in each of its processes, what the bare worker holds (the interpreter
# and Celery), the desk's libraries and code, and (the pool processes of ingest, the synthesis
# and the resolver) the price history: measured in the same run, that is the floor. The target
# allows a quarter more for what a cycle allocates on top (a snapshot, the features, the record).
MEMORY_RATIO = 1.25

if __name__ == "__main__":
    sys.exit("run `python -m bench` (see bench/__main__.py)")
