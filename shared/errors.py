"""One small error tree: transient errors are retried, bad input never is."""

from __future__ import annotations


class WorkshopError(Exception):
    """Base of every error the desk raises on purpose."""


class TransientError(WorkshopError):
    """Worth retrying with backoff: rate limits, timeouts, 5xx, a broker hiccup.

    retry_after is the wait in seconds the other side asked for (an HTTP retry-after), if any.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BadInputError(WorkshopError):
    """The payload or upstream data is unusable; retrying cannot help."""


class ReplayFormatError(BadInputError):
    """A replay directory is malformed; names the file, the line and what was wrong."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


class ConfigurationError(WorkshopError):
    """A setting is missing or contradictory; raised at start-up, before any work."""


class BudgetExceeded(WorkshopError):
    """The model-spending cap for the cycle or the day is reached."""


class StorageUnavailable(TransientError):
    """The database cannot be written safely right now (its file vanished or was replaced)."""
