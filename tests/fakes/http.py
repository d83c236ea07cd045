"""A scripted HTTP server on a free 127.0.0.1 port, so real client libraries can be tested offline.

Each path gets a script of replies (the last one repeats) or a handler function; broken modes (429,
5xx, empty or truncated bodies, a reply that hangs) are just replies. Every request is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body, headers, and an optional delay before it is sent."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def payload(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Request:
    """What the server received: method, path, query parameters and headers."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


Handler = Callable[[Request], Reply]

NOT_FOUND = Reply(status=404, body=b'{"error": "not found"}')


class FakeServer:
    """Routes by exact path (scripted replies) or by path prefix (a handler function)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._prefixes: list[tuple[str, Handler]] = []
        self._first: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        self.base_url = ""

    def script(self, path: str, *replies: Reply) -> None:
        """Answer `path` with these replies in turn; the last one repeats."""
        if not replies:
            raise ValueError("a script needs at least one reply")
        with self._lock:
            self._scripts[path] = list(replies)

    def first(self, path: str, *replies: Reply) -> None:
        """Answer `path` with these replies, once each, before its normal route (429, then data)."""
        with self._lock:
            self._first.setdefault(path, []).extend(replies)

    def handle(self, prefix: str, handler: Handler) -> None:
        """Answer every path starting with `prefix` with handler(request); longest prefix wins."""
        with self._lock:
            self._prefixes.append((prefix, handler))
            self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def hits(self, path_prefix: str) -> list[Request]:
        """The recorded requests whose path starts with path_prefix."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            first = self._first.get(request.path)
            if first:
                return first.pop(0)
            script = self._scripts.get(request.path)
            if script is not None:
                return script.pop(0) if len(script) > 1 else script[0]
            handler = next((h for p, h in self._prefixes if request.path.startswith(p)), None)
        return handler(request) if handler is not None else NOT_FOUND


def _handler_class(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                at=time.monotonic(),
            )
            reply = fake._answer(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            body = reply.payload()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to tell it

        do_GET = do_POST = do_HEAD = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:
            return  # keep test output quiet

    return _Handler


@contextmanager
def serve(fake: FakeServer | None = None) -> Iterator[FakeServer]:
    """Run `fake` (or a new FakeServer) on a free loopback port for the duration of the block."""
    fake = fake or FakeServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(fake))
    server.daemon_threads = True
    server.block_on_close = False  # a hanging reply must not hold up the test's exit
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="fake-http", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
