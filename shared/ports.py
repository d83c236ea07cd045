"""The ports: small protocols the services depend on, each with a real and an offline side.

Real adapters are named by technology (YahooMarket, AnthropicBrain), offline ones Replay*/Offline*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shared.contracts import (
    CycleContext,
    CycleTrigger,
    Deliberation,
    DispatchDraft,
    Features,
    MindOutput,
    Quote,
    Snapshot,
    SourceResult,
)

if TYPE_CHECKING:
    from shared.contracts import ScoreLine
    from shared.scoring import Key
    from shared.tallies import Delta


@runtime_checkable
class Clock(Protocol):
    """What time it is for the desk: the wall clock live, the replay clock in a replay."""

    def now(self) -> datetime: ...


@runtime_checkable
class MarketData(Protocol):
    """Point-in-time market, macro, news and filings.

    Raises: BadInputError when the source's data is unusable; TransientError when worth retrying.
    A dead feed inside a snapshot is a FeedHealth/DataFlag, not an exception.
    """

    def snapshot(self, trigger: CycleTrigger) -> Snapshot:
        """Everything known at trigger.as_of, with health records and data-quality flags."""
        ...

    def features(self, snapshot: Snapshot) -> Features:
        """The derived features at the snapshot's as_of (computed from history known then)."""
        ...

    def settlement_quote(self, symbol: str, matures_at: datetime, now: datetime) -> Quote | None:
        """The first close at or after matures_at that is already known at now; None if none yet."""
        ...

    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days with data between start and end inclusive."""
        ...


@runtime_checkable
class Brain(Protocol):
    """The reasoning of the minds and the words of the synthesis.

    A brain never raises for an expected failure (bad reply, spent budget): think returns a
    MindOutput marked absent or abstained with the reason. It raises TransientError for what a
    retry may fix.
    """

    name: str

    def think(self, mind: str, context: CycleContext) -> MindOutput: ...

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft: ...


@runtime_checkable
class Source(Protocol):
    """One live feed (prices, macro, news, filings) fetched by its own ingest task.

    fetch never raises for a dead, slow or garbled feed: the SourceResult's health says so.
    """

    name: str

    def fetch(self, as_of: datetime) -> SourceResult: ...


@runtime_checkable
class SettlementPrices(Protocol):
    """What the resolver needs of a market: the close that settles a matured call."""

    def settlement_quote(self, symbol: str, matures_at: datetime, now: datetime) -> Quote | None:
        """The first close at or after matures_at that is already known at now; None if none yet."""
        ...


@runtime_checkable
class RecordBook(Protocol):
    """The record's incremental aggregates: one tally per (book, line), folded from the deltas
    of every call made, settled or abstained from (shared.tallies: opened, closed, abstained),
    read as score lines. The fleet keeps them in its database (shared.db.record.StoredBook),
    the backtest in memory (shared.tallies.TallyBook): one interface, fed by the same deltas.
    """

    def apply(self, deltas: Iterable[Delta]) -> None:
        """Add the deltas (commutative: concurrent writers never lose one)."""

    def lines(
        self, book: str, keeps: Callable[[Key], bool] | None = None, *, detail: bool = False
    ) -> tuple[ScoreLine, ...]:
        """The book's lines kept by `keeps` (all when None), in scoreboard order."""
