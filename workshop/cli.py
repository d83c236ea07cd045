"""The `workshop` command: start and stop the embedded stack, trigger and replay cycles, settle
calls, and read dispatches and the scoreboard. Entrypoints only build a request and hand it on."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.errors import WorkshopError

# Start-up is import time: every command (and --help) pays for whatever this module imports.
# The heavy parts (Celery, SQLAlchemy, polars, the pydantic contracts, rich's renderers) load
# when a command first touches them, so `workshop --help` and `workshop status` stay fast.
if TYPE_CHECKING:
    from rich.console import Console

    from shared.contracts import Dispatch, ScoreLine, TrackRecord
    from shared.records import AgainstBaselines
    from shared.settings import Settings
    from workshop import driver, render, stack
else:

    def _lazy(name: str) -> ModuleType:
        """The module, executed on its first attribute access (importlib's LazyLoader)."""
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ImportError(name)
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        return module

    driver = _lazy("workshop.driver")
    render = _lazy("workshop.render")
    stack = _lazy("workshop.stack")


cli = typer.Typer(
    help="Workshop: an autonomous market desk on Celery workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class _Console:
    """A rich Console built on first use (rich's import is part of start-up otherwise)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            if self._stderr:
                self._console = Console(stderr=True)
            else:
                # Off a terminal (CI logs, pipes) rich would wrap at 80 columns and truncate
                # the tables.
                self._console = Console() if Console().is_terminal else Console(width=140)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = _Console()
err = _Console(stderr=True)


def _settings(*, logs: bool = True) -> Settings:
    """The settings; logs=False for a command that logs nothing (structlog is a tenth of a
    second of start-up)."""
    from shared.settings import load_settings

    settings = load_settings()
    if not logs:
        return settings
    from shared.logs import configure_logging

    configure_logging(
        settings.log_format, "WARNING" if settings.log_level == "INFO" else settings.log_level
    )
    return settings


def _fail(message: str, code: int = 2) -> None:
    # Unwrapped: a path or a reason cut across lines is hard to copy.
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def _broker(settings: Settings) -> str:
    """The broker's URL, once it answers: a stopped broker is a clear error in seconds."""
    import redis

    try:
        url = settings.resolved_broker_url()
    except WorkshopError as error:
        _fail(str(error))
        raise
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        _fail(
            f"the broker at {stack.mask_url(url)} does not answer ({type(error).__name__}): "
            "`workshop status` shows the stack and `workshop up` restarts what died",
            1,
        )
    finally:
        client.close()
    return url


def _parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{name} must be a date like 2016-01-04, got {text!r}")
        raise


@cli.command()
def up(
    beat: Annotated[bool, typer.Option(help="Also start Celery beat (periodic settling).")] = True,
    record: Annotated[
        Path | None,
        typer.Option(help="Record what live cycles fetch into this replay directory."),
    ] = None,
    web: Annotated[bool, typer.Option(help="Also serve the desk in a browser.")] = True,
    web_port: Annotated[int, typer.Option(help="Its port (a free one if taken).")] = 8000,
    cold: Annotated[
        bool, typer.Option(help="No warm start: the desk's calibration starts from nothing.")
    ] = False,
) -> None:
    """Start the embedded stack (Redis on loopback with a password, a worker per service, beat
    and the web app); on a running stack, restart whichever part of it died."""
    settings = _settings()
    extra = {"WORKSHOP_RECORD_DIR": str(record.resolve())} if record else {}
    if cold:
        extra["WORKSHOP_WARM_SESSIONS"] = "0"
    try:
        state = stack.up(
            settings, beat=beat, extra_env=extra or None, web_port=web_port if web else None
        )
    except WorkshopError as error:
        _fail(str(error))
        return
    if state.repaired:
        out.print(f"stack repaired: restarted {', '.join(state.repaired)}")
    out.print(
        f"stack up: broker {state.masked_broker_url()}, "
        f"database {stack.mask_url(state.database_url)}"
    )
    out.print(f"processes: {', '.join(f'{n} (pid {p})' for n, p in state.named_pids().items())}")
    out.print(f"logs: {Path(state.home) / 'logs'}")
    if state.web_url:
        out.print(f"the desk in a browser: {state.web_url}")


@cli.command()
def down() -> None:
    """Stop the embedded stack cleanly (running tasks finish first)."""
    settings = _settings()
    state = stack.down(settings)
    out.print("stack down" if state else "no stack was running")


@cli.command()
def status() -> None:
    """Show which processes of the embedded stack are alive."""
    # The same answer `workshop status` gives without this module (workshop.main).
    from workshop.main import show_status

    code = show_status()
    if code:
        raise typer.Exit(code)


@cli.command()
def cycle(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time (default now; replay: a trading day).")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Cycle key (default derived from as_of).")] = None,
    mode: Annotated[str | None, typer.Option(help="replay or live (default the setting).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Replay directory (default the sample).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the dispatch and print it.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the dispatch.")] = 120,
) -> None:
    """Trigger one cycle by a queue message."""
    settings = _settings()
    chosen_mode = mode or settings.mode
    moment = _parse_moment(as_of, chosen_mode)
    data_dir = data or settings.data_dir
    payload: dict[str, Any] = {
        "cycle_key": key or f"{chosen_mode}:{moment:%Y%m%dT%H%M}",
        "as_of": moment.isoformat(),
        "mode": chosen_mode,
        "data_dir": str(data_dir.resolve()) if data_dir else None,
    }
    from shared.contracts import CycleTrigger

    try:
        trigger = CycleTrigger.model_validate(payload)
    except ValueError as error:
        _fail(f"bad trigger: {error}")
        return
    app = driver.producer(_broker(settings))
    task_id = driver.send_trigger(app, trigger)
    out.print(f"cycle {trigger.cycle_key} triggered (task {task_id})")
    if wait:
        try:
            dispatch = driver.wait_for_dispatch(
                settings.db_url, trigger.cycle_key, timeout, trigger_task=app.AsyncResult(task_id)
            )
        except WorkshopError as error:
            _fail(str(error), 1)
            return
        _print_dispatch(dispatch, as_json=False)


def _parse_moment(text: str | None, mode: str) -> datetime:
    from shared.calendar import replay_as_of

    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == 10:
            return replay_as_of(date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--as-of must be a date or an ISO time with offset, got {text!r}")
        raise
    if moment.tzinfo is None:
        _fail(f"--as-of needs a timezone offset (e.g. {text}+00:00)")
    return moment


@cli.command()
def replay(
    data: Annotated[
        Path | None, typer.Option(help="Replay directory (default the sample).")
    ] = None,
    from_: Annotated[str, typer.Option("--from", help="First trading day, e.g. 2016-01-04.")] = "",
    to: Annotated[str, typer.Option(help="Last trading day.")] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each cycle.")] = 120,
    quiet: Annotated[bool, typer.Option(help="Print only the summary.")] = False,
) -> None:
    """Replay a date range of a replay directory through the fleet, one cycle per trading day."""
    settings = _settings()
    if not from_ or not to:
        _fail("--from and --to are required")
    start, end = _parse_day(from_, "--from"), _parse_day(to, "--to")
    if end < start:
        _fail(f"--to {end} is before --from {start}")
    data_dir = data or settings.data_dir
    if data_dir is not None and not data_dir.is_dir():
        _fail(f"replay directory {data_dir} does not exist")
    app = driver.producer(_broker(settings))
    count = 0
    try:
        for step in driver.replay(app, settings.db_url, data_dir, start, end, timeout=timeout):
            count += 1
            if not quiet:
                out.print(render.step_line(step), soft_wrap=True)
    except WorkshopError as error:
        _fail(str(error), 1)
    if count == 0:
        _fail(f"no trading days with data between {start} and {end}", 1)
    out.print(f"replayed {count} trading days")


@cli.command()
def backtest(
    data: Annotated[
        Path | None, typer.Option(help="Replay directory (default the shipped sample).")
    ] = None,
    from_: Annotated[str, typer.Option("--from", help="First trading day, e.g. 1999-01-04.")] = "",
    to: Annotated[str, typer.Option(help="Last trading day.")] = "",
    report: Annotated[Path, typer.Option(help="Folder for report.json/.md and the plots.")] = Path(
        "backtest-report"
    ),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    cold: Annotated[
        bool, typer.Option(help="No warm start from the history before --from.")
    ] = False,
) -> None:
    """Backtest the desk's own code over a replay directory in one process: no broker, no DB."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from workshop.backtest import run_backtest, write_report

    settings = _settings()
    data_dir = data or settings.data_dir
    if data_dir is not None and not data_dir.is_dir():
        _fail(f"replay directory {data_dir} does not exist")
    start = _parse_day(from_, "--from") if from_ else date(1900, 1, 1)
    end = _parse_day(to, "--to") if to else date(2999, 12, 31)
    if end < start:
        _fail(f"--to {end} is before --from {start}")
    bar = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err.console, disable=not progress,
    )  # fmt: skip
    with bar:
        task = bar.add_task("backtest", total=None)

        def tick(done: int, total: int) -> None:
            if done == 1 or done % 25 == 0 or done == total:
                bar.update(task, completed=done, total=total)

        try:
            result = run_backtest(
                data_dir, start, end, minds=settings.minds, horizon_hours=settings.horizon_hours,
                on_cycle=tick, cold=cold, warm_sessions=settings.warm_sessions,
            )  # fmt: skip
        except WorkshopError as error:
            _fail(str(error), 1)
            return
    if result.cycles == 0:
        _fail(f"no trading days with data between {start} and {end}", 1)
    figures = write_report(result, report)
    synth = figures["synthesis"]
    out.print(
        f"{figures['cycles']} cycles in {figures['seconds']:.2f} s; synthesis: "
        f"{synth['calls']} calls, hit rate {_num(synth['hit_rate'], '{:.1%}')}, "
        f"Brier skill {_num(synth['brier_skill'], '{:+.4f}')} vs the base rate, "
        f"{_num(synth['brier_skill_naive'], '{:+.4f}')} vs the naive random walk, "
        f"ECE {_num(synth['ece'], '{:.3f}')}"
    )
    out.print(f"report: {report / 'report.md'}")


@cli.command()
def resolve(
    now: Annotated[
        str | None, typer.Option(help="Settle as of this ISO time (default the wall clock).")
    ] = None,
) -> None:
    """Settle every matured call from prices (through the resolver workers)."""
    settings = _settings()
    moment = datetime.fromisoformat(now) if now else None
    if moment is not None and moment.tzinfo is None:
        _fail("--now needs a timezone offset")
    app = driver.producer(_broker(settings))
    answer = driver.settle_via_queue(app, moment)
    out.print(json.dumps(answer))


@cli.command()
def dispatches(
    page: Annotated[int, typer.Option(min=1, help="Page, newest first.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=200, help="Dispatches a page.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="The page as JSON.")] = False,
) -> None:
    """List recent dispatches: number, date, title, call and status (`workshop dispatch N`)."""
    settings = _settings()
    listing = driver.dispatch_list(settings.db_url, page, per_page)
    if as_json:
        sys.stdout.write(listing.model_dump_json(indent=2) + "\n")
        return
    if not listing.items:
        _fail("no dispatch yet" if page == 1 else f"no page {page}: there are {listing.pages}", 1)
    out.print(render.dispatch_table(listing))


@cli.command()
def dispatch(
    number: Annotated[
        int | None, typer.Argument(help="The dispatch's number (see `workshop dispatches`).")
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="The latest dispatch.")] = True,
    key: Annotated[str | None, typer.Option(help="The dispatch of this cycle key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The contract as JSON.")] = False,
) -> None:
    """Print a dispatch: number N, or the last one by default."""
    settings = _settings()
    if number is not None:
        view = driver.dispatch_by_number(settings.db_url, number)
        if view is None:
            _fail(f"no dispatch No. {number} (`workshop dispatches` lists them)", 1)
            return
        if as_json:
            sys.stdout.write(view.dispatch.model_dump_json(indent=2) + "\n")
            return
        _print_markdown(render.numbered_markdown(view))
        return
    found = driver.last_dispatch(settings.db_url, cycle_key=key)
    if found is None:
        _fail("no dispatch yet" if key is None else f"no dispatch for cycle {key}", 1)
        return
    _print_dispatch(found, as_json=as_json)


def _print_dispatch(found: Dispatch, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(found.model_dump_json(indent=2) + "\n")
        return
    _print_markdown(render.dispatch_markdown(found))


def _print_markdown(text: str) -> None:
    if out.is_terminal:
        from rich.markdown import Markdown

        out.print(Markdown(text))
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


@cli.command()
def scoreboard(
    as_json: Annotated[bool, typer.Option("--json", help="The scoreboard as JSON.")] = False,
    by_regime: Annotated[
        bool, typer.Option(help="Also show each regime's (and asset class, horizon, topic) lines.")
    ] = False,
) -> None:
    """Print the track record of the synthesis and each mind."""
    settings = _settings()
    board = driver.record(settings.db_url)
    if as_json:
        sys.stdout.write(board.model_dump_json(indent=2) + "\n")
        return
    _print_board(board, by_regime=by_regime)
    _print_baselines(driver.against_baselines(settings.db_url))


def _print_board(board: TrackRecord, *, by_regime: bool) -> None:
    from rich.table import Table

    table = Table(title="Scoreboard (settled from prices; abstentions never count as hits)")
    for column in ("source", "cut", "calls", "hits", "misses", "inconcl.", "open", "abstained",
                   "hit rate", "95% interval", "Brier", "base Brier", "skill", "ECE"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("source", "cut") else "right")
    for line in board.lines:
        plain = line.regime == "all" and line.is_overall()
        if not plain and not by_regime:
            continue
        table.add_row(
            line.source, _cut(line), str(line.calls), str(line.hits), str(line.misses),
            str(line.inconclusive), str(line.open), str(line.abstentions),
            _num(line.hit_rate, "{:.0%}"),
            "-" if line.hit_rate_low is None or line.hit_rate_high is None
            else f"{line.hit_rate_low:.2f}-{line.hit_rate_high:.2f}",
            _num(line.brier, "{:.3f}"), _num(line.base_rate_brier, "{:.3f}"),
            _num(line.brier_skill, "{:+.3f}"), _num(line.ece, "{:.3f}"),
        )  # fmt: skip
    out.print(table)


def _print_baselines(found: list[AgainstBaselines]) -> None:
    from rich.table import Table

    if not found:
        return
    table = Table(title="Against honest baselines (Brier skill ± one standard error; an edge "
                  "needs more than two)")  # fmt: skip
    for column in ("source", "settled", "Brier", "vs base rate", "vs naive", "majority Brier",
                   "verdict"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("source", "verdict") else "right")
    for line in found:
        table.add_row(
            line.source, str(line.settled), _num(line.brier, "{:.3f}"),
            _skill(line.skill_base, line.skill_base_se),
            _skill(line.skill_naive, line.skill_naive_se),
            _num(line.majority_brier, "{:.3f}"), line.verdict,
        )  # fmt: skip
    out.print(table)


def _skill(skill: float | None, se: float | None) -> str:
    if skill is None:
        return "-"
    return f"{skill:+.3f}" if se is None else f"{skill:+.3f} ± {se:.3f}"


def _num(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _cut(line: ScoreLine) -> str:
    """The category a line is cut by, e.g. 'chop' or 'equity_index x 24h'; 'all' for none."""
    parts = [x for x in (line.regime, line.asset_class, line.horizon, line.topic) if x != "all"]
    return " x ".join(parts) or "all"


@cli.command()
def rules(
    report: Annotated[
        Path | None, typer.Option(help="Read a backtest's rules (its --report folder).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The rules as JSON.")] = False,
) -> None:
    """List the learned rules with their evidence: the fleet's latest book, or a backtest's."""
    from shared.contracts import LearnedRule

    if report is not None:
        path = report / "report.json" if report.is_dir() else report
        if not path.is_file():
            _fail(f"no backtest report at {path}")
        found = json.loads(path.read_text()).get("rules")
        if found is None:
            _fail(f"{path} carries no rules (written before rules were learned)")
        book = [LearnedRule.model_validate(r) for r in found or ()]
        where = str(path)
    else:
        settings = _settings()
        book = list(driver.rule_book(settings.db_url))
        where = "the fleet's rule book"
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in book], indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(
        title=f"Learned rules ({where}); a stopped call is shadow-scored, never published"
    )
    for column in ("rule", "status", "settled", "hit rate", "95% interval", "created", "retired",
                   "stopped"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("rule", "status") else "right")
    for rule in book:
        table.add_row(
            rule.category, rule.status, str(rule.settled), f"{rule.hit_rate:.1%}",
            f"{rule.low:.3f}-{rule.high:.3f}", f"{rule.created_at:%Y-%m-%d}",
            f"{rule.retired_at:%Y-%m-%d}" if rule.retired_at else "-", str(rule.stopped),
        )  # fmt: skip
    out.print(table if book else "no rule learned yet")


@cli.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues, e.g. ingest,synth.")],
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    name: Annotated[str, typer.Option(help="Worker name (before @host).")] = "worker",
) -> None:
    """Run one worker in the foreground for chosen queues (for a fleet on several machines)."""
    settings = _settings()
    os.environ.setdefault("WORKSHOP_BROKER_URL", _broker(settings))
    # A pid file in the home's run folder: `workshop status` and `down` know this worker too.
    # exec keeps the pid, so the file can be named by it.
    run = stack.run_dir(settings.home.resolve())
    run.mkdir(parents=True, exist_ok=True)
    pidfile = run / f"{name}-by-hand-{os.getpid()}.pid"
    command = stack.worker_command(name, queues.split(","), concurrency, pidfile=pidfile)
    os.execvp(command[0], command)  # noqa: S606 - replaces this process with the worker


@cli.command()
def beat() -> None:
    """Run Celery beat in the foreground (periodic settling and, if set, live cycles)."""
    settings = _settings()
    os.environ.setdefault("WORKSHOP_BROKER_URL", _broker(settings))
    home = settings.home.resolve()
    stack.run_dir(home).mkdir(parents=True, exist_ok=True)
    pidfile = stack.run_dir(home) / f"beat-by-hand-{os.getpid()}.pid"
    command = stack.beat_command(home, pidfile)
    os.execvp(command[0], command)  # noqa: S606 - replaces this process with beat


@cli.command()
def flower(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5555,
    address: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs credentials.")
    ] = "127.0.0.1",
    auth_file: Annotated[
        Path | None,
        typer.Option(help="File holding user:password (mode 0600); else WORKSHOP_FLOWER_AUTH."),
    ] = None,
) -> None:
    """Start Flower on the fleet's broker (loopback by default), behind basic auth.

    Credentials come from a file or the environment, never the command line, where any local
    user could read them."""
    settings = _settings()
    os.environ.setdefault("WORKSHOP_BROKER_URL", _broker(settings))
    auth = os.environ.get("WORKSHOP_FLOWER_AUTH")
    if auth_file is not None:
        try:
            if auth_file.stat().st_mode & 0o077:
                _fail(f"{auth_file} is readable by others: chmod 600 {auth_file}")
            auth = auth_file.read_text().strip()
        except OSError as error:
            _fail(f"cannot read {auth_file}: {error.strerror}")
    if auth is not None and ":" not in auth:
        _fail("Flower credentials must be user:password")
    if not auth and address not in ("127.0.0.1", "localhost", "::1"):
        _fail(f"refusing to serve Flower on {address} without credentials")
    command = [sys.executable, "-m", "celery", "-A", stack.CELERY_APP, "flower",
               f"--address={address}", f"--port={port}"]  # fmt: skip
    if auth:
        # Flower reads FLOWER_<OPTION> from its environment, private to its own user.
        os.environ["FLOWER_BASIC_AUTH"] = auth
    else:
        err.print("flower: no credentials given; the UI is open to anyone on this machine")
    os.execvp(command[0], command)  # noqa: S606 - replaces this process with Flower


@cli.command()
def note(
    text: Annotated[str, typer.Argument(help="What the desk should know (untrusted input).")],
    author: Annotated[str, typer.Option(help="Who posts it.")] = os.environ.get("USER", "operator"),
    at: Annotated[
        str | None, typer.Option(help="Posting time, ISO with offset (default now; for replays).")
    ] = None,
) -> None:
    """Post a note to the desk's inbox by a queue message; cycles of the next day read it."""
    from shared.contracts import OperatorNote

    settings = _settings()
    posted = datetime.fromisoformat(at) if at else datetime.now(UTC)
    if posted.tzinfo is None:
        _fail("--at needs a timezone offset")
    try:
        message = OperatorNote(author=author, posted_at=posted, text=text)
    except ValueError as error:
        _fail(f"bad note: {error}")
        return
    app = driver.producer(_broker(settings))
    answer = driver.post_note(app, message)
    out.print(f"note {answer['note_id']} posted by {author} at {posted.isoformat()}")


@cli.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON lines.")] = False,
    purge: Annotated[bool, typer.Option(help="Drop them all after listing.")] = False,
) -> None:
    """List messages the fleet refused or that killed workers twice, with the reason."""
    import redis
    from rich.table import Table

    from shared import deadletters

    settings = _settings()
    client = redis.Redis.from_url(_broker(settings), socket_connect_timeout=3, socket_timeout=5)
    try:
        found = deadletters.letters(client, limit)
        dropped = deadletters.purge(client) if purge else 0
    except redis.RedisError as error:
        _fail(f"cannot read dead letters: broker unreachable ({type(error).__name__})", 1)
        return
    finally:
        client.close()
    if as_json:
        for letter in found:
            sys.stdout.write(letter.model_dump_json() + "\n")
    elif not found:
        out.print("no dead letters")
    else:
        table = Table(title="Dead letters (refused or worker-killing messages, acknowledged)")
        for column in ("when (UTC)", "task", "cycle key", "reason", "body"):
            table.add_column(column)
        for letter in found:
            when = datetime.fromtimestamp(letter.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            table.add_row(
                when, letter.task or "-", letter.cycle_key or "-", letter.reason, letter.body[:60]
            )
        out.print(table)
    if purge:
        out.print(f"purged {dropped} dead letters")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the desk in a browser: dispatches, their trails, the track record, feed and API."""
    import uvicorn

    from shared.db.session import migrate as run

    settings = _settings()
    run(settings.db_url)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"the desk is at http://{shown}:{port}/ (API docs at /docs); Ctrl-C stops it")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"serve: listening on {host}: anyone who can reach it can read the desk")
    uvicorn.run(
        "workshop.web.app:app_from_settings", factory=True, host=host, port=port,
        workers=workers, log_level="warning", proxy_headers=False,
    )  # fmt: skip


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from shared.db.session import migrate as run

    settings = _settings()
    run(settings.db_url)
    out.print(f"database at {settings.db_url} is up to date")


def main() -> None:
    try:
        cli()
    except Exception as error:
        message = expected_failure(error)
        if message is None:
            raise
        err.print(f"[bold red]error:[/] {message}")
        sys.exit(1)


def expected_failure(error: BaseException) -> str | None:
    """What to tell the user for a failure that is not a bug (the broker or the database away,
    a wait that timed out); None for anything else, whose traceback is worth seeing."""
    import celery.exceptions
    import kombu.exceptions
    import redis
    import sqlalchemy.exc

    if isinstance(error, kombu.exceptions.OperationalError | redis.ConnectionError | OSError):
        return (
            f"the broker is unreachable ({type(error).__name__}): is the stack up? "
            "`workshop status` shows it and `workshop up` restarts what died"
        )
    if isinstance(error, celery.exceptions.TimeoutError | redis.TimeoutError):
        return "no answer from the workers in time: `workshop status` shows which are up"
    if isinstance(error, sqlalchemy.exc.OperationalError):
        return f"the database is unreachable or locked: {str(error.orig)[:200]}"
    return None


if __name__ == "__main__":
    main()
