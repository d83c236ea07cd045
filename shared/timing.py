"""How long tasks may run and how soon a lost worker's messages come back: one place, so the
visibility timeout always exceeds the longest task (else a slow task runs twice) and the bound
on redelivery after a worker dies can be stated (README: Operating the fleet)."""

from __future__ import annotations

from typing import Any

from shared.settings import Settings

HARD_MARGIN_S = 10
MIND_HARD_MARGIN_S = 15  # services.minds.tasks: a mind's hard limit is its soft one plus this
VISIBILITY_MARGIN_S = 15
RESTORE_INTERVAL_S = 2
LONGEST_RETRY_WAIT_S = 30  # shared.tasking.STORAGE_RETRY's retry_backoff_max


def visibility_timeout(settings: Settings) -> float:
    """Seconds a delivered message may stay unacknowledged before another worker gets it: longer
    than any task may run (its hard time limit) and than any retry's countdown."""
    longest = max(
        settings.mind_time_limit_s + MIND_HARD_MARGIN_S,
        settings.task_time_limit_s + HARD_MARGIN_S,
        LONGEST_RETRY_WAIT_S,
    )
    return float(longest + VISIBILITY_MARGIN_S)


def redelivery_bound(settings: Settings) -> float:
    """The longest a lost worker's message waits before a live worker restores it."""
    return visibility_timeout(settings) + RESTORE_INTERVAL_S


def transport_options(settings: Settings) -> dict[str, Any]:
    return {
        "visibility_timeout": visibility_timeout(settings),
        # kombu looks for expired unacknowledged messages every interval x throttle seconds
        # (10 x 10 by default); every two seconds keeps the bound close to the timeout.
        "unacked_restore_interval": RESTORE_INTERVAL_S,
        "unacked_restore_throttle": 1,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
        "health_check_interval": 25,
    }
