"""The reply cache: the same request to the model gives the same stored reply, with no request.

A replay or a redelivered task then costs nothing and says the same words. The key covers everything
that shapes the reply (model, system prompt, messages, tool schema, parameters).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from shared.calendar import utc_now
from shared.db.models import Base, UtcDateTime
from shared.db.session import session_scope


class ModelReply(Base):
    """One stored reply of the model, under the hash of the request that produced it."""

    __tablename__ = "model_replies"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)


def canonical_json(value: object) -> str:
    """The one spelling of a JSON value: sorted keys, no spaces, so equal requests hash equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(request: Mapping[str, object]) -> str:
    """sha256 of the whole request body (model, system, messages, tools, tool_choice, max_tokens).

    Raises TypeError if the request holds something that is not JSON.
    """
    return hashlib.sha256(canonical_json(dict(request)).encode()).hexdigest()


def load_reply(db_url: str, key: str) -> dict[str, Any] | None:
    """The stored reply for a request key, or None if the model was never asked."""
    with session_scope(db_url) as session:
        row = session.scalar(select(ModelReply).where(ModelReply.key == key))
        return dict(row.reply) if row is not None else None


def store_reply(
    db_url: str, key: str, *, model: str, reply: Mapping[str, Any], at: datetime | None = None
) -> None:
    """Keep a reply under its key; a second writer of the same key (a racing worker) is a no-op."""
    try:
        with session_scope(db_url) as session:
            if session.get(ModelReply, key) is None:
                session.add(
                    ModelReply(key=key, model=model, reply=dict(reply), created_at=at or utc_now())
                )
    except IntegrityError:
        # Another process stored the same request between our read and our write: its reply is
        # as good as ours, and the first one stays so replays keep seeing one answer.
        return
