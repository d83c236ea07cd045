"""Limits a queue message must meet before anything parses it: size, nesting depth and shape.

A worker's main process hands every task body to a pool process by pickling it; a body nested a
few hundred levels deep overflows the pickler's recursion and kills the whole worker, and the
message then comes back for every restart. So the depth is measured on the raw bytes, without
parsing, and a message that fails any limit is refused before Celery sees it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# The desk's own messages nest about ten levels (a chord body inside a mind's context); the
# pickler fails somewhere past three hundred. Thirty-two leaves room for growth and none for harm.
DEFAULT_MAX_DEPTH = 32
# A mind's context carries the snapshot and the track record: well under a megabyte today.
DEFAULT_MAX_BYTES = 8 * 1024 * 1024

# A JSON string, as an unrolled loop (runs of plain characters, then one escape at a time):
# the same matches as '"(?:[^"\\]|\\.)*"', at a third of its cost on a mind's message.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_CYCLE_KEY = re.compile(rb'"cycle_key"\s*:\s*"([A-Za-z0-9:._-]{1,128})"')


class MessageRefused(ValueError):
    """A message broke a limit; the text says which, for the log and the dead-letter list."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, found without parsing it.

    Strings are blanked first so that brackets inside them do not count; what is left is only
    brackets, and the depth is the highest running count of openers over closers.
    """
    brackets = _STRING.sub(b'""', raw).translate(None, _BRACKETS)
    depth = deepest = 0
    # Runs of one bracket kind are counted a run at a time, so deep garbage costs little.
    for run in re.finditer(rb"[\[{]+|[\]}]+", brackets):
        size = run.end() - run.start()
        if run.group()[0] in b"[{":
            depth += size
            deepest = max(deepest, depth)
        else:
            depth -= size
    return deepest


def cycle_key_of(raw: bytes | str | None) -> str | None:
    """The cycle key a raw message names, if it names a well-formed one (for the rejection log)."""
    if raw is None:
        return None
    data = raw.encode() if isinstance(raw, str) else raw
    found = _CYCLE_KEY.search(data[:65536])
    return found.group(1).decode() if found else None


def check_raw(raw: bytes | str, content_type: str | None, limits: Limits) -> None:
    """Refuse a body that is too big, not JSON, or nested too deep, before it is decoded."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > limits.max_bytes:
        raise MessageRefused(f"body of {len(data)} bytes exceeds the limit of {limits.max_bytes}")
    if content_type != "application/json":
        raise MessageRefused(f"content type {content_type!r} refused: only application/json")
    depth = json_depth(data)
    if depth > limits.max_depth:
        raise MessageRefused(f"nested {depth} levels deep, over the limit of {limits.max_depth}")


def check_task_body(raw: bytes | str) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Decode a protocol-2 task body and check its shape: [args list, kwargs dict, embed dict]."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise MessageRefused(f"body is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(body, list) or len(body) != 3:
        raise MessageRefused(
            f"task body must be [args, kwargs, embed], got {type(body).__name__}"
            + (f" of length {len(body)}" if isinstance(body, list) else "")
        )
    args, kwargs, embed = body
    if not isinstance(args, list):
        raise MessageRefused(f"task args must be a list, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise MessageRefused(f"task kwargs must be an object, got {type(kwargs).__name__}")
    if embed is not None and not isinstance(embed, dict):
        raise MessageRefused(f"task options must be an object, got {type(embed).__name__}")
    return args, kwargs, embed or {}


def check_headers(headers: Any) -> str:
    """The task name a protocol-2 message's headers carry, or MessageRefused."""
    if not isinstance(headers, dict):
        raise MessageRefused("message has no headers: not a Celery protocol-2 task")
    name = headers.get("task")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise MessageRefused("message headers carry no task name")
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not task_id or len(task_id) > 200:
        raise MessageRefused(f"message for {name} carries no task id")
    return name


def structure_depth(value: Any, limit: int) -> int:
    """The nesting depth of decoded JSON, walked without recursion; stops counting past limit."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
