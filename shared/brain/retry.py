"""How long a task waits before it asks the model again: Celery's own backoff, with jitter,
and never sooner than the retry-after the API asked for."""

from __future__ import annotations

from celery.utils.time import get_exponential_backoff_interval

from shared.errors import TransientError

BACKOFF_FACTOR_S = 2
BACKOFF_MAX_S = 60
# Full jitter may draw zero; a floor keeps a retry from landing on an overloaded API at once.
MIN_WAIT_S = 0.5


def retry_countdown(retries: int, error: TransientError) -> float:
    """Seconds before retry number retries + 1: the interval Celery's retry_backoff and
    retry_jitter compute (exponential, full jitter, capped), raised to the error's retry_after."""
    backoff = get_exponential_backoff_interval(
        factor=BACKOFF_FACTOR_S, retries=retries, maximum=BACKOFF_MAX_S, full_jitter=True
    )
    return max(float(backoff), MIN_WAIT_S, error.retry_after or 0.0)
