"""structlog set-up: JSON lines off a terminal, a console renderer on one.

Tasks bind the cycle key, task id and mind through contextvars so every line carries them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

import structlog

_SECRET_KEYS = ("api_key", "apikey", "authorization", "password", "secret", "token")


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # Secrets never reach a log line, whatever a caller passes by mistake.
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_KEYS) and not key.endswith("_tokens"):
            event[key] = "[redacted]"
    return event


# A log line is at most this long, whatever a message carried: one field is cut at FIELD_CHARS.
MAX_LINE_CHARS = 16_000
FIELD_CHARS = 2_000
# Keys in URL query strings (FRED's api_key=...) and passwords in URLs (redis://:pw@host).
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access_token|secret|client_secret|password|pass"
    r"|auth|signature|sig)=)[^&\s\"'#]+"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s\"']*:)[^@/\s\"']+@")


def scrub(text: str) -> str:
    """Text with every URL query key and URL password replaced by [redacted]."""
    text = _QUERY_SECRET.sub(r"\1[redacted]", text)
    return _URL_PASSWORD.sub(r"\1[redacted]@", text)


def _bound(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # A 4 MB field (an echoed message, a huge repr) would make a 4 MB line: cut it.
    for key, value in event.items():
        if isinstance(value, str) and len(value) > FIELD_CHARS:
            event[key] = f"{value[:FIELD_CHARS]}...[{len(value) - FIELD_CHARS} more chars]"
    return event


class _SafeRenderer:
    """The renderer, then the secret scrub and the line bound; a value it cannot render (too
    deep, not serialisable) is rendered by its cut-down repr instead of failing the log call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> str:
        try:
            line = str(self.inner(logger, name, dict(event)))
        except (RecursionError, TypeError, ValueError):
            line = ""
        if not line or len(line) > MAX_LINE_CHARS:
            cut = {k: v if isinstance(v, int | float | bool) or v is None else _short(v)
                   for k, v in event.items()}  # fmt: skip
            cut["truncated"] = True
            line = str(self.inner(logger, name, cut))[:MAX_LINE_CHARS]
        return scrub(line)


def _short(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} too deep to show>"
    return text[:500]


def _descriptor(stream: Any) -> int | None:
    """The stream's file descriptor when it is a real file (a worker's log), else None (a test's
    capture, Celery's logging proxy)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) else None


def _write_line(fd: int, line: str) -> None:
    """The whole line in one write(2) where the kernel takes it whole: a worker's processes
    share its log file, and print()'s two writes (text, then newline) let another process's
    line land in between (seen here: two JSON lines run together)."""
    data = (line + "\n").encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data) :]


class _LineLogger:
    """structlog's logger for a real file: each rendered line written whole."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def msg(self, message: str) -> None:
        _write_line(self._fd, message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stdlib (Celery) side of the same log file, a record per write(2)."""

    def __init__(self, fd: int) -> None:
        super().__init__(sys.stderr)
        self._fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write_line(self._fd, self.format(record))
        except Exception:  # logging must never take the worker down
            self.handleError(record)


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and route stdlib logging (Celery's) through the same renderer."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    fd = _descriptor(sys.stderr)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        _bound,
    ]
    renderer: Any = _SafeRenderer(
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=(
            structlog.PrintLoggerFactory(file=sys.stderr)
            if fd is None
            else (lambda *_args: _LineLogger(fd))
        ),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr) if fd is None else _LineHandler(fd)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request line at INFO, query string (and any key in it) included.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
