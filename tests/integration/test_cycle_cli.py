"""`workshop cycle` at the terminal against a real fleet: a trigger the worker rejects fails the
command with the worker's reason instead of a timeout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.market.replay import sample_data_dir
from tests.integration.conftest import Fleet

pytestmark = pytest.mark.integration


def test_rejected_trigger_fails_the_command_with_the_workers_reason(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A replay directory with a bad row: the command exits 1 naming the file, line and problem,
    long before its 100 s wait for a dispatch is over."""
    bad = tmp_path / "bad-replay"
    bad.mkdir()
    shutil.copy(sample_data_dir() / "macro.csv", bad / "macro.csv")
    lines = (sample_data_dir() / "prices.csv").read_text().splitlines()[:4]
    (bad / "prices.csv").write_text("\n".join([*lines, "2015-13-45,SPY,1,2,3,4,5"]) + "\n")
    env = {
        **os.environ,
        "WORKSHOP_BROKER_URL": fleet.settings.resolved_broker_url(),
        "WORKSHOP_DATABASE_URL": fleet.db_url,
        "WORKSHOP_HOME": str(fleet.home),
    }
    done = subprocess.run(
        [sys.executable, "-m", "workshop.cli", "cycle", "--as-of", "2015-03-02",
         "--data", str(bad), "--key", "rejected-by-worker", "--timeout", "100"],
        capture_output=True, text=True, env=env, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stderr
    assert "the worker rejected cycle rejected-by-worker" in said
    assert f"{bad / 'prices.csv'}:5" in said
    assert "2015-13-45" in said
    assert "within 100s" not in said
