"""A loopback fake of the Messages API (POST /v1/messages) for the real anthropic client.

Replies are scripted (a queue, consumed in order) or, once the script is empty, made by a
responder function; the default responder answers any forced tool with a plausible, schema-valid
input. Failure modes are replies too: API errors (429, 529, 500, 401...), a reply that arrives
too late, a dropped connection, garbage bodies. Every request is recorded (headers, JSON body).

In a test:  with FakeAnthropic() as fake: fake.script(rate_limited()); ... base_url=fake.base_url
For worker subprocesses: start it in the test process (or `python tests/fakes/anthropic_server.py
--port 0`, which prints its URL) and give the workers WORKSHOP_BRAIN=anthropic,
WORKSHOP_ANTHROPIC_BASE_URL=<url> and WORKSHOP_ANTHROPIC_API_KEY=<any string>.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MESSAGES_PATH = "/v1/messages"


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    A 200 reply is a message built from `content` (the model and ids are filled in per request);
    an error reply is the API's error body; `raw_body` is sent as-is; `drop` closes the connection
    without answering; `delay_s` waits first (longer than the client's timeout: a timeout).
    """

    status: int = 200
    content: tuple[Mapping[str, Any], ...] = ()
    stop_reason: str = "tool_use"
    usage: Mapping[str, int] | None = None
    error_type: str | None = None
    error_message: str = ""
    raw_body: str | None = None
    delay_s: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it: path, headers (lowercase names) and JSON body."""

    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    raw: bytes
    at: float

    @property
    def tool_name(self) -> str | None:
        """The tool the request forces (tool_choice type 'tool'), if any."""
        choice = self.body.get("tool_choice") or {}
        return str(choice["name"]) if choice.get("type") == "tool" else None

    @property
    def tool_schema(self) -> Mapping[str, Any]:
        for tool in self.body.get("tools") or ():
            if tool.get("name") == self.tool_name:
                return dict(tool.get("input_schema") or {})
        return {}

    @property
    def text(self) -> str:
        """Every text block of the request's messages, joined (what the model was told)."""
        parts: list[str] = []
        for message in self.body.get("messages") or ():
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
                continue
            for block in content or ():
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif block.get("type") == "tool_result":
                    inner = block.get("content")
                    parts.append(inner if isinstance(inner, str) else json.dumps(inner))
        return "\n".join(parts)


Responder = Callable[[Received], Reply]


# --- reply builders ----------------------------------------------------------------------------


def tool_use(
    name: str,
    tool_input: Mapping[str, Any] | str,
    *,
    usage: Mapping[str, int] | None = None,
    text: str | None = None,
) -> Reply:
    """A reply calling `name` with `tool_input`; a str input is sent as-is (e.g. broken JSON)."""
    blocks: list[Mapping[str, Any]] = [{"type": "text", "text": text}] if text else []
    block = {"type": "tool_use", "id": "", "name": name, "input": tool_input}
    return Reply(content=(*blocks, block), usage=usage)


def text_only(text: str, *, usage: Mapping[str, int] | None = None) -> Reply:
    """A reply with prose and no tool call at all."""
    return Reply(content=({"type": "text", "text": text},), stop_reason="end_turn", usage=usage)


def api_error(status: int, error_type: str, message: str = "") -> Reply:
    """The API's error body with its HTTP status."""
    return Reply(status=status, error_type=error_type, error_message=message or error_type)


def rate_limited() -> Reply:
    return api_error(429, "rate_limit_error", "Number of request tokens has exceeded your limit.")


def overloaded() -> Reply:
    return api_error(529, "overloaded_error", "Overloaded")


def server_error() -> Reply:
    return api_error(500, "api_error", "Internal server error")


def unauthorized() -> Reply:
    return api_error(401, "authentication_error", "invalid x-api-key")


def bad_request(message: str = "messages: field required") -> Reply:
    return api_error(400, "invalid_request_error", message)


def slow(reply: Reply, seconds: float) -> Reply:
    """The same reply, sent only after `seconds` (the client may have given up by then)."""
    return replace(reply, delay_s=seconds)


def dropped() -> Reply:
    """No answer at all: the connection is closed (the client sees a connection error)."""
    return Reply(drop=True)


# --- the default responder ---------------------------------------------------------------------

_FINAL_LINE = re.compile(r"Final line \(copy it exactly, on its own line\): (.+)")
_TARGET = re.compile(r'"target":"([^"]+)"')


def example_for(schema: Mapping[str, Any]) -> Any:
    """A value valid for a simple JSON schema (objects, enums, strings, numbers, arrays, anyOf)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return (
            None
            if any(s.get("type") == "null" for s in schema["anyOf"])
            else example_for(options[0])
        )
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required") or []
        return {name: example_for(schema["properties"][name]) for name in required}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        low, high = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0))
        return round((low + high) / 2, 3)
    if kind == "boolean":
        return False
    if kind == "string":
        size = int(schema.get("minLength", 1))
        return ("Plausible placeholder text from the fake model. " * (size // 40 + 1))[
            : max(size, 48)
        ]
    return None


def desk_responder(request: Received) -> Reply:
    """Answers the desk's two tools sensibly (a neutral view; a dispatch that keeps the decided
    call's final line) and any other forced tool with a schema-valid example."""
    name = request.tool_name
    if name is None:
        return text_only("The fake model has nothing to say without a tool.")
    if name == "record_view":
        return tool_use(
            name,
            {
                "stance": "neutral",
                "confidence": 0.3,
                "argument": "I see no edge in these numbers today; the fake model stays neutral "
                "and says so plainly.",
                "topics": ["index"],
                "call": None,
            },
        )
    if name == "write_dispatch":
        found = _FINAL_LINE.search(request.text)
        final = found.group(1).strip() if found else "**No call this cycle.**"
        target = _TARGET.search(request.text)
        subject = target.group(1) if target else "the index"
        body = (
            f"I read the numbers on {subject} and the minds' arguments. This is the fake model "
            "writing, so the words are plain: every mind was named in the prompt with its "
            "confidence, what was missing was listed, and my record was given to me. The desk "
            "decided in code; I state that decision and nothing else.\n\n" + final + "\n"
        )
        return tool_use(name, {"title": "A Plain Dispatch From the Fake Model", "body_md": body})
    return tool_use(name, example_for(request.tool_schema) or {})


# --- the server ----------------------------------------------------------------------------------


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    script: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    responder: Responder = desk_responder
    stopping: threading.Event = field(default_factory=threading.Event)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _estimate_tokens(data: bytes | str) -> int:
    return max(1, len(data) // 4)


def _message(reply: Reply, request: Received, number: int) -> dict[str, Any]:
    content = []
    for index, block in enumerate(reply.content):
        sent = dict(block)
        if sent.get("type") == "tool_use":
            sent["id"] = f"toolu_fake_{number:05d}_{index}"
        content.append(sent)
    usage = {
        "input_tokens": _estimate_tokens(request.raw),
        "output_tokens": _estimate_tokens(json.dumps(content)),
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        **(reply.usage or {}),
    }
    return {
        "id": f"msg_fake_{number:05d}",
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model", "unknown"),
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read the recorded requests instead

    def do_POST(self) -> None:
        state = self.server.state
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        received = Received(
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body if isinstance(body, dict) else {},
            raw=raw,
            at=time.monotonic(),
        )
        with state.lock:
            state.requests.append(received)
            number = next(state.ids)
            scripted = state.script.pop(0) if state.script else None
        if self.path.split("?")[0] != MESSAGES_PATH:
            reply = api_error(404, "not_found_error", f"no route {self.path}")
        elif body is None:
            reply = bad_request("request body is not JSON")
        else:
            reply = scripted or state.responder(received)
        if reply.delay_s and state.stopping.wait(reply.delay_s):
            return
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(reply, received, number)

    def _send(self, reply: Reply, request: Received, number: int) -> None:
        if reply.raw_body is not None:
            payload = reply.raw_body.encode()
        elif reply.error_type is not None:
            payload = json.dumps(
                {
                    "type": "error",
                    "error": {"type": reply.error_type, "message": reply.error_message},
                    "request_id": f"req_fake_{number:05d}",
                }
            ).encode()
        else:
            payload = json.dumps(_message(reply, request, number)).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("request-id", f"req_fake_{number:05d}")
            if reply.status == 429:
                self.send_header("retry-after", "1")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (its timeout); nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


class FakeAnthropic:
    """The fake Messages API on 127.0.0.1; a context manager that starts and stops it."""

    def __init__(self, responder: Responder = desk_responder, *, port: int = 0) -> None:
        self._state = _State(responder=responder)
        self._server = _Server(("127.0.0.1", port), self._state)
        # A short poll so that stop() returns at once instead of after the default half second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-anthropic", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order; afterwards the responder answers."""
        with self._state.lock:
            self._state.script.extend(replies)

    def respond_with(self, responder: Responder) -> None:
        """Answer with `responder` whenever the script is empty."""
        with self._state.lock:
            self._state.responder = responder

    @property
    def requests(self) -> Sequence[Received]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def request_count(self) -> int:
        with self._state.lock:
            return len(self._state.requests)

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._state.lock:
            return len(self._state.script)


def main() -> None:
    """Run the fake with the default responder until interrupted, printing its base URL."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeAnthropic(port=args.port).start()
    print(fake.base_url, flush=True)  # the parent process reads the URL
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
