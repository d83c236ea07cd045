"""The fleet's deployment file stays in step with the queues the code routes to."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared import tasknames
from shared.settings import DEFAULT_MINDS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"


def _consumed_queues() -> set[str]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    queues: set[str] = set()
    for spec in services.values():
        command = spec.get("command") or []
        if "worker" in command:
            queues.update(command[command.index("--queues") + 1].split(","))
    return queues


def test_every_queue_has_a_worker_in_the_compose_file() -> None:
    """Each queue a task can be routed to is consumed by some worker service of the fleet."""
    assert set(tasknames.all_queues(DEFAULT_MINDS)) <= _consumed_queues()


def test_every_task_routes_to_a_declared_queue() -> None:
    """Every task name the services use maps to one of the declared queues."""
    names = [
        tasknames.START_CYCLE, tasknames.FETCH_SOURCE, tasknames.ASSEMBLE, tasknames.POST_NOTE,
        tasknames.TRIGGER_LIVE, tasknames.SYNTHESIZE, tasknames.SETTLE,
        *(tasknames.mind_task(m) for m in DEFAULT_MINDS),
    ]  # fmt: skip
    declared = set(tasknames.all_queues(DEFAULT_MINDS))
    assert {tasknames.queue_for(n) for n in names} <= declared


def _procfile() -> dict[str, str]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_every_queue_has_a_worker_in_the_procfile_and_the_systemd_units() -> None:
    """The Procfile and the systemd role files consume every queue, and each role has beat."""
    roles = _procfile()
    procfile: set[str] = set()
    for command in roles.values():
        words = command.split()
        if "worker" in words:
            procfile.update(words[words.index("--queues") + 1].split(","))
    systemd: set[str] = set()
    for env in (DEPLOY / "systemd").glob("worker-*.env"):
        for line in env.read_text().splitlines():
            if line.startswith("WORKER_QUEUES="):
                systemd.update(line.split("=", 1)[1].split(","))
    wanted = set(tasknames.all_queues(DEFAULT_MINDS))
    assert wanted <= procfile
    assert wanted <= systemd
    assert "workshop beat" in roles["beat"]
    target = (DEPLOY / "systemd" / "workshop.target").read_text()
    for env in (DEPLOY / "systemd").glob("worker-*.env"):
        assert f"workshop-worker@{env.stem.removeprefix('worker-')}.service" in target


def test_no_credential_is_written_into_a_deployment_command_line() -> None:
    """Flower's credentials and the broker password come from the environment, never from a
    command in the Procfile or a unit file."""
    for path in [DEPLOY / "Procfile", *(DEPLOY / "systemd").glob("*.service")]:
        text = path.read_text()
        assert "--basic-auth" not in text, path
        assert "redis://:" not in text, path
        assert "WORKSHOP_FLOWER_AUTH=" not in text, path
