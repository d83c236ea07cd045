"""What the JSON API answers, built on the wire contracts: a dispatch is the `Dispatch` contract,
the scoreboard is the `TrackRecord` contract; these add only what a reader needs around them."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts import Dispatch

CallState = Literal["open", "hit", "miss", "inconclusive", "no_call"]


class View(BaseModel):
    """Base of the API's answers: immutable, unknown fields refused like the contracts."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CallStatus(View):
    """Where the dispatch's call stands: open with time left, settled with the outcome, or none."""

    state: CallState
    text: str = Field(description="One line for a reader, e.g. 'Open — 18 h left'.")
    matures_at: AwareDatetime | None = None
    seconds_left: float | None = Field(
        default=None, description="Until maturity on the desk's clock (the replay's in a replay)."
    )
    settled_at: AwareDatetime | None = None
    settle_price: float | None = Field(default=None, description="The close it was settled on.")
    realized_move_pct: float | None = None
    reason: str | None = Field(default=None, description="Why it settled so (or no call).")


class DispatchSummary(View):
    """One line of the list: what the front page and `workshop dispatches` show."""

    number: int = Field(ge=1, description="The dispatch's permanent number (its URL).")
    slug: str
    url: str = Field(description="Path of its page, /read/{number}/{slug}.")
    cycle_number: int
    cycle_key: str
    as_of: AwareDatetime
    title: str
    call: str = Field(description="The call in one line, or 'no call'.")
    status: CallStatus


class DispatchList(View):
    """A page of dispatches, newest first."""

    page: int = Field(ge=1)
    pages: int = Field(ge=0)
    per_page: int = Field(ge=1)
    total: int = Field(ge=0)
    items: tuple[DispatchSummary, ...]


class DispatchView(View):
    """One dispatch: the contract as published, where its call stands, and its neighbours."""

    number: int = Field(ge=1)
    slug: str
    url: str
    markdown_url: str
    trail_url: str
    status: CallStatus
    older: int | None = Field(default=None, description="Number of the previous dispatch.")
    newer: int | None = Field(default=None, description="Number of the next dispatch.")
    dispatch: Dispatch
