"""Flower watches the fleet: behind basic auth, with the workers and their tasks visible."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from tests.integration.conftest import Fleet
from workshop import driver, stack

pytestmark = pytest.mark.integration


def test_flower_requires_auth_and_lists_the_workers(fleet: Fleet) -> None:
    """Without credentials Flower answers 401; with them its API lists every service's worker."""
    port = stack.free_port()
    env = {
        **os.environ,
        "WORKSHOP_BROKER_URL": fleet.settings.resolved_broker_url(),
        "WORKSHOP_FLOWER_AUTH": "ops:s3cret",
    }
    command = [sys.executable, "-m", "workshop.cli", "flower", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        # Flower imports the whole app before it listens: over 20 s on a loaded 2-core machine.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                anonymous = httpx.get(f"{base}/api/workers", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("Flower did not start within 90s")
        assert anonymous.status_code == 401
        trigger = CycleTrigger(cycle_key=f"flower-{port}", as_of=replay_as_of(date(2016, 3, 9)))
        driver.send_trigger(fleet.app, trigger)
        driver.wait_for_dispatch(fleet.db_url, trigger.cycle_key, timeout=60)
        names: set[str] = set()
        while time.monotonic() < deadline + 30 and not {"ingest", "minds", "synth"} <= names:
            answer = httpx.get(
                f"{base}/api/workers", params={"refresh": "1"}, auth=("ops", "s3cret"), timeout=10
            )
            assert answer.status_code == 200
            names = {name.split("@", 1)[0] for name in answer.json()}
            time.sleep(0.5)
        assert {"ingest", "minds", "synth", "resolver"} <= names
        # The credentials are not on any process' command line.
        assert b"s3cret" not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
    finally:
        process.terminate()
        process.communicate(timeout=20)
