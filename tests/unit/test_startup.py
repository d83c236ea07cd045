"""The command line imports only what a command needs: --help and status load no database,
broker, data-frame or contract library (what made every command take seconds to start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# (typer loads rich's renderers for its own help: those are its cost, not ours.)
HEAVY = ("sqlalchemy", "alembic", "polars", "celery", "kombu", "redis", "shared.contracts",
         "structlog")  # fmt: skip

PROBE = """
import json, sys
from workshop.main import main
sys.argv = ["workshop", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""
# What `workshop status` needs no more than the others: the framework that parses the other
# commands and the renderers of their tables.
FRAMEWORK = ("typer", "click", "rich")


def _loaded(args: list[str], home: Path, heavy: tuple[str, ...] = HEAVY) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=repr(heavy)), *args],
        capture_output=True, text=True, env=dict(os.environ, WORKSHOP_HOME=str(home)),
        check=False, timeout=60,
    )  # fmt: skip
    return json.loads(done.stderr.strip().splitlines()[-1]), done.stdout


@pytest.mark.parametrize("args", [["--help"], ["status"]])
def test_light_commands_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    """`workshop --help` and `workshop status` (no stack) leave every heavy library unloaded."""
    loaded, output = _loaded(args, tmp_path)
    assert loaded == []
    assert "status" in output or "no stack is running" in output


def test_status_answers_without_the_command_line_framework(tmp_path: Path) -> None:
    """`workshop status` prints its answer with neither typer nor rich loaded; `status --help`
    still goes through the full command line."""
    loaded, output = _loaded(["status"], tmp_path, HEAVY + FRAMEWORK)
    assert (loaded, output) == ([], "no stack is running\n")
    loaded, output = _loaded(["status", "--help"], tmp_path, FRAMEWORK)
    assert "typer" in loaded
    assert "Show which processes of the embedded stack are alive." in output


def test_a_command_still_gets_what_it_uses(tmp_path: Path) -> None:
    """The lazy modules load on first use: `workshop migrate` creates the schema."""
    loaded, output = _loaded(["migrate"], tmp_path)
    assert "is up to date" in output
    assert "sqlalchemy" in loaded
    assert "alembic" in loaded


def test_status_answers_without_pydantic_when_only_the_environment_sets_the_home(
    tmp_path: Path,
) -> None:
    """Without a .env file, `workshop status` finds the stack's folder with no settings object
    (pydantic and pydantic-settings stay unloaded); with one, the settings object reads it."""
    loaded, output = _loaded(["status"], tmp_path, ("pydantic", "pydantic_settings"))
    assert (loaded, output) == ([], "no stack is running\n")


@pytest.mark.parametrize(
    "environment",
    [{}, {"WORKSHOP_HOME": "elsewhere"}, {"workshop_home": "lower/case"}, {"WORKSHOP_HOME": ""}],
)
def test_the_home_without_settings_is_the_settings_home(
    environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """home_from_environment() gives the folder Settings gives, for every way the environment
    can name it; with a .env file it leaves the answer to Settings."""
    from shared.home import home_from_environment
    from shared.settings import load_settings

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.lower() == "workshop_home"]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert home_from_environment() == load_settings().home
    (tmp_path / ".env").write_text("WORKSHOP_HOME=from-dotenv\n")
    assert home_from_environment() is None
    # (The environment wins over the file, as pydantic-settings orders them.)
    given = next(iter(environment.values()), None)
    assert load_settings().home == (Path(given) if given is not None else Path("from-dotenv"))
