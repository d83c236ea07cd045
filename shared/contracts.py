"""Wire contracts every service agrees on: frozen pydantic models, extra fields forbidden.

Whatever crosses the broker or is stored as JSON is one of these. Times are timezone-aware UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, date
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.moments import check_moment

Mode = Literal["live", "replay"]
Stance = Literal["bullish", "bearish", "neutral"]
MindStatus = Literal["ok", "abstained", "absent"]
Direction = Literal["up", "down"]
# What a call is about: the sign of the move (direction), a close beyond a level (threshold), or
# a close within / outside a band around the reference (range).
CallKind = Literal["direction", "threshold", "range"]
CALL_KINDS: tuple[CallKind, ...] = ("direction", "threshold", "range")
# up/down for direction and threshold calls (above / below the line); inside/outside for range.
CallSide = Literal["up", "down", "inside", "outside"]
Debate = Literal["aligned_bullish", "aligned_bearish", "divergent", "unknown"]
Regime = Literal["risk_on", "risk_off", "chop", "crisis", "trending", "unknown"]
HealthStatus = Literal["ok", "stale", "partial", "empty", "error"]
Outcome = Literal["hit", "miss", "inconclusive"]

CYCLE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:_.\-]{0,127}$"
SYNTHESIS = "synthesis"


class Contract(BaseModel):
    """Base of every contract: immutable, and unknown fields are an error, not a silent drop."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- trigger -------------------------------------------------------------------------------------


class CycleTrigger(Contract):
    """The queue message that starts one cycle; the cycle key makes a repeated message harmless."""

    cycle_key: str = Field(pattern=CYCLE_KEY_PATTERN, description="Natural key, e.g. the slot.")
    as_of: AwareDatetime = Field(description="Nothing published later may enter the cycle.")
    mode: Mode = "replay"
    data_dir: str | None = Field(
        default=None,
        max_length=4096,
        description="Replay directory; None means the sample shipped in the package.",
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _iso_moment(cls, value: object) -> object:
        # ISO text only, 1900 to tomorrow: never a number read as seconds since 1970.
        return check_moment(value, "as_of")


# --- snapshot ------------------------------------------------------------------------------------


class Quote(Contract):
    """The last price of one symbol known at the snapshot's as_of."""

    symbol: str
    price: float = Field(gt=0)
    prev_close: float | None = Field(default=None, gt=0)
    change_pct: float | None = None
    volume: float | None = Field(default=None, ge=0)
    session: date = Field(description="Trading day the price closed (or traded) on.")
    observed_at: AwareDatetime


class MacroValue(Contract):
    """One macro observation with the moment it became public."""

    series: str
    value: float
    observed: date
    released_at: AwareDatetime


class NewsItem(Contract):
    """A headline; its text is untrusted input and is shown to models only marked as data."""

    published_at: AwareDatetime
    source: str
    title: str = Field(max_length=500)
    summary: str = Field(default="", max_length=2000)
    url: str = ""


class Filing(Contract):
    """A recent SEC filing of a watched name (8-K with items, Form 4 with the insider trade)."""

    ticker: str
    form: str
    filed_at: AwareDatetime
    cik: str | None = None
    items: tuple[str, ...] = ()
    url: str = ""
    summary: str = Field(default="", max_length=2000)
    insider: str | None = None
    transaction_code: str | None = None
    shares: float | None = None
    value: float | None = None


class OperatorNote(Contract):
    """A note an operator posted for the desk; untrusted input with its author and time."""

    author: str = Field(min_length=1, max_length=2000)
    posted_at: AwareDatetime
    text: str = Field(max_length=2000)

    @field_validator("posted_at", mode="before")
    @classmethod
    def _iso_moment(cls, value: object) -> object:
        return check_moment(value, "posted_at")


class FeedHealth(Contract):
    """How one source answered this cycle."""

    source: str
    status: HealthStatus
    detail: str = ""
    items: int = Field(default=0, ge=0)
    newest_at: AwareDatetime | None = None


class DataFlag(Contract):
    """A data-quality fact the minds and the dispatch must see: something missing or untrusted."""

    code: str = Field(description="e.g. missing_series, stale_feed, feed_error, bad_value")
    subject: str = Field(description="What it is about: a symbol, a series, a feed.")
    detail: str = ""


class Bar(Contract):
    """One daily bar; known only after its session's close."""

    session: date
    symbol: str
    close: float = Field(gt=0)
    open: float | None = Field(default=None, gt=0)
    high: float | None = Field(default=None, gt=0)
    low: float | None = Field(default=None, gt=0)
    volume: float | None = Field(default=None, ge=0)


class SourceResult(Contract):
    """What one ingest source fetched for a cycle, with its health; a dead feed is data too."""

    source: str
    health: FeedHealth
    bars: tuple[Bar, ...] = Field(default=(), description="Daily history for the features.")
    quotes: tuple[Quote, ...] = ()
    macro: tuple[MacroValue, ...] = ()
    news: tuple[NewsItem, ...] = ()
    filings: tuple[Filing, ...] = ()
    flags: tuple[DataFlag, ...] = ()


class Snapshot(Contract):
    """Everything known at as_of, point-in-time: no item is later than as_of."""

    cycle_key: str
    as_of: AwareDatetime
    mode: Mode
    quotes: tuple[Quote, ...] = ()
    macro: tuple[MacroValue, ...] = ()
    news: tuple[NewsItem, ...] = ()
    filings: tuple[Filing, ...] = ()
    notes: tuple[OperatorNote, ...] = ()
    health: tuple[FeedHealth, ...] = ()
    flags: tuple[DataFlag, ...] = ()

    @model_validator(mode="after")
    def _no_look_ahead(self) -> Self:
        late = [q.symbol for q in self.quotes if q.observed_at > self.as_of]
        late += [m.series for m in self.macro if m.released_at > self.as_of]
        late += [n.title[:40] for n in self.news if n.published_at > self.as_of]
        late += [f"{f.ticker} {f.form}" for f in self.filings if f.filed_at > self.as_of]
        if late:
            raise ValueError(f"items later than as_of {self.as_of.isoformat()}: {late[:5]}")
        return self

    def quote(self, symbol: str) -> Quote | None:
        return next((q for q in self.quotes if q.symbol == symbol), None)


# --- features ------------------------------------------------------------------------------------


# A symbol's stretch (SymbolReturns.stretch): its last five sessions' move in standard deviations.
STRETCH_SESSIONS = 5
STRETCH_CLIP = 4.0
TRADING_SESSIONS = 252  # a year of sessions, to turn annualised volatility into a session's


class SymbolReturns(Contract):
    """Simple returns in percent over 1, 5 and 20 of the symbol's own sessions; None where the
    history is too short or a window would span a gap in the data."""

    r1: float | None = None
    r5: float | None = None
    r20: float | None = None
    vol20: float | None = Field(
        default=None, description="Realised volatility over 20 sessions, annualised %."
    )
    session: date | None = Field(
        default=None,
        description="The symbol's last bar: behind Features.session if it did not trade.",
    )

    def stretch(self) -> float:
        """The last STRETCH_SESSIONS sessions' log move in standard deviations of the trailing
        volatility's move over as many sessions, clipped at STRETCH_CLIP (a crash's z of 12 says
        no more than 4); 0 when either is unknown, never a guess."""
        if self.r5 is None or self.vol20 is None or self.vol20 <= 0 or self.r5 <= -100:
            return 0.0
        sd = self.vol20 / math.sqrt(TRADING_SESSIONS) * math.sqrt(STRETCH_SESSIONS)
        z = 100.0 * math.log1p(self.r5 / 100.0) / sd
        return max(-STRETCH_CLIP, min(STRETCH_CLIP, z))


# A symbol with no returns reads as this one (immutable: one is shared, not built per read).
NO_RETURNS = SymbolReturns()


class SeriesLevel(Contract):
    """A daily macro series (a Treasury yield, oil) as the features see it, in its own units."""

    value: float
    d1: float | None = Field(default=None, description="Change over 1 observation.")
    d5: float | None = None
    d20: float | None = None
    sd20: float | None = Field(default=None, description="Sd of daily changes over 20.")
    observed: date


class Breadth(Contract):
    """Cap-weighted index against its heaviest members and small caps, in percent over one session.

    `label` names the pattern: e.g. "mega_down_index_flat" is the seeds' "the mega-caps are lying to
    the indices".
    """

    broad_r1: float | None = None
    tech_r1: float | None = None
    small_r1: float | None = None
    mega_mean_r1: float | None = None
    mega_up: int = 0
    mega_down: int = 0
    mega_count: int = 0
    spread_mega_vs_broad: float | None = None
    spread_small_vs_broad: float | None = None
    label: str = "unknown"


class BaseRate(Contract):
    """How often a symbol rose / fell over a horizon in the history known at as_of (frequencies).

    The reference forecast of every call's Brier skill: a desk with no skill can always quote it.
    """

    up: float = Field(ge=0.0, le=1.0)
    down: float = Field(ge=0.0, le=1.0)
    n: int = Field(ge=0, description="Outcomes counted (one per session).")


def horizon_sessions(horizon_hours: int) -> int:
    """Sessions a call's horizon spans on the daily calendar: 24 h is the next close, 48 h two."""
    return max(1, round(horizon_hours / 24))


def base_rate_key(symbol: str, horizon_hours: int) -> str:
    return f"{symbol}|{horizon_sessions(horizon_hours)}"


class ScoredHeadline(Contract):
    """A headline with its tone (VADER compound, finance lexicon) and topics; untrusted text."""

    published_at: AwareDatetime
    source: str
    title: str = Field(max_length=500)
    url: str = ""
    tone: float = Field(ge=-1.0, le=1.0)
    topics: tuple[str, ...] = ()


class NewsBlock(Contract):
    """The headlines known at as_of, scored (shared.news): how many, how toned, about what."""

    count: int = Field(ge=1)
    sources: int = Field(ge=1)
    newest_at: AwareDatetime
    tone: float = Field(ge=-1.0, le=1.0, description="Mean compound tone.")
    positive: int = Field(ge=0, description="Headlines with tone >= 0.2.")
    negative: int = Field(ge=0, description="Headlines with tone <= -0.2.")
    balance: float = Field(
        ge=-1.0, le=1.0, description="(positive - negative) / toned: +-1 is a one-sided flow."
    )
    market_count: int = Field(ge=0, description="Headlines on markets, policy, energy, deals.")
    market_balance: float = Field(ge=-1.0, le=1.0, description="balance of those alone.")
    topics: dict[str, int] = Field(default_factory=dict)
    topic_tone: dict[str, float] = Field(default_factory=dict)
    top: tuple[ScoredHeadline, ...] = Field(default=(), description="The most telling few.")
    leads: dict[str, ScoredHeadline] = Field(
        default_factory=dict, description="The most telling headline of each topic."
    )


class Features(Contract):
    """Derived numbers the minds reason over; unknown is None, never a silent zero."""

    as_of: AwareDatetime
    session: date = Field(description="Trading day whose close the features describe.")
    broad: str | None = Field(default=None, description="Symbol standing for the broad index.")
    tech: str | None = None
    small: str | None = None
    megas: tuple[str, ...] = ()
    returns: dict[str, SymbolReturns] = Field(default_factory=dict)
    last_close: dict[str, float] = Field(default_factory=dict)
    realized_vol_20d: float | None = Field(default=None, description="Broad index, annualised %.")
    volume_ratio_20d: float | None = Field(default=None, description="Broad volume / 20d mean.")
    vix: float | None = None
    vix_change_5d: float | None = Field(default=None, description="Points over 5 sessions.")
    curve_slope: float | None = Field(default=None, description="10y minus 2y, percent points.")
    curve_slope_change_20d: float | None = None
    cpi_yoy: float | None = None
    core_cpi_yoy: float | None = None
    fed_funds: float | None = None
    fed_funds_change_6m: float | None = None
    unemployment: float | None = None
    unemployment_change_3m: float | None = None
    oil_r20: float | None = None
    breadth: Breadth = Field(default_factory=Breadth)
    regime: Regime = "unknown"
    regime_score: float = Field(default=0.0, ge=0.0, le=1.0)
    unknown: tuple[str, ...] = Field(default=(), description="Features that could not be computed.")
    base_rates: dict[str, BaseRate] = Field(
        default_factory=dict,
        description="Keyed 'SYMBOL|sessions' (see base_rate_key): point-in-time outcome rates.",
    )
    levels: dict[str, SeriesLevel] = Field(
        default_factory=dict, description="Daily macro series by FRED id (DGS10, DCOILWTICO...)."
    )
    news: NewsBlock | None = Field(default=None, description="Headlines known at as_of, scored.")
    event_rates: dict[str, float] = Field(
        default_factory=dict,
        description="Keyed 'SYMBOL|sessions|event' (see shared.events): how often each move "
        "event on the menu's grid happened in the history known at the session.",
    )

    def returns_of(self, symbol: str | None) -> SymbolReturns:
        """The symbol's returns; one shared empty SymbolReturns (all None) where it has none."""
        return self.returns.get(symbol or "", NO_RETURNS)

    def base_rate(self, symbol: str, horizon_hours: int, direction: Direction) -> float | None:
        """The frequency of the outcome 'symbol closes up (down) over the horizon' known now."""
        rate = self.base_rates.get(base_rate_key(symbol, horizon_hours))
        if rate is None:
            return None
        return rate.up if direction == "up" else rate.down


# --- minds ---------------------------------------------------------------------------------------


class TokenUsage(Contract):
    """What one model call (or a cycle's calls) consumed."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    dollars: float = 0.0
    cached_reply: bool = False


class MindCall(Contract):
    """A mind's own directional call, scored like the synthesis' so each mind has a record."""

    target: str
    direction: Direction
    horizon_hours: int = Field(gt=0)
    probability: float = Field(ge=0.5, le=1.0, description="Probability that the call comes true.")


class MindOutput(Contract):
    """One mind's view; an expected failure is absent/abstained with a reason, not an error."""

    mind: str
    status: MindStatus = "ok"
    stance: Stance = "neutral"
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    argument: str = ""
    reason: str | None = None
    topics: tuple[str, ...] = ()
    call: MindCall | None = None
    usage: TokenUsage | None = None

    @model_validator(mode="after")
    def _reason_when_not_ok(self) -> Self:
        if self.status != "ok" and not self.reason:
            raise ValueError(f"mind {self.mind} is {self.status} without a reason")
        if self.status != "ok" and self.call is not None:
            raise ValueError(f"mind {self.mind} is {self.status} but makes a call")
        return self

    @classmethod
    def absent(cls, mind: str, reason: str) -> MindOutput:
        return cls(mind=mind, status="absent", reason=reason)


# --- predictions and dispatches ------------------------------------------------------------------


class Prediction(Contract):
    """One falsifiable call: settled later from prices, never from a model's opinion.

    Every kind is an event on the first close at or after matures_at against the reference:
    direction "up" (down) is a close strictly above (below) the reference; threshold "up" (down)
    a close strictly above (below) `threshold`; range "inside" a close within ±range_pct % of
    the reference (inclusive), "outside" beyond it.
    """

    source: str = Field(default=SYNTHESIS, description="'synthesis' or the mind that made it.")
    target: str
    kind: CallKind = "direction"
    direction: CallSide
    horizon_hours: int = Field(gt=0)
    reference_price: float = Field(gt=0)
    threshold: float | None = Field(
        default=None, gt=0, description="Price the close must be beyond; default the reference."
    )
    range_pct: float | None = Field(
        default=None, gt=0, description="Half-width of a range call's band, percent of reference."
    )
    band_pct: tuple[float, float] | None = Field(
        default=None, description="Expected size of the move in percent, low and high."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Probability that the call comes true.")
    falsifier: str = Field(description="What outcome would prove the call wrong.")
    made_at: AwareDatetime
    matures_at: AwareDatetime
    regime: Regime = "unknown"
    topic: str = "index"
    asset_class: str = "equity_index"
    base_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="How often this outcome happened in the history known at made_at.",
    )
    naive_probability: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="The outcome's probability under a driftless random walk at trailing vol.",
    )
    basis: str = Field(
        default="", max_length=600, description="What the call rested on, for its lesson."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.matures_at <= self.made_at:
            raise ValueError("matures_at must be after made_at")
        if self.band_pct is not None and not 0 <= self.band_pct[0] <= self.band_pct[1]:
            raise ValueError(f"band_pct must be (low, high) with 0 <= low <= high: {self.band_pct}")
        ranged = self.direction in ("inside", "outside")
        if (self.kind == "range") != ranged:
            raise ValueError(f"a {self.kind} call cannot be {self.direction!r}")
        if (self.kind == "range") != (self.range_pct is not None):
            raise ValueError("range_pct is given for range calls and only for them")
        if self.kind == "threshold" and self.threshold is None:
            raise ValueError("a threshold call needs its threshold")
        return self

    @property
    def line(self) -> float:
        """The price the call is judged against."""
        return self.threshold if self.threshold is not None else self.reference_price

    def comes_true(self, close: float) -> bool:
        """Whether a settling close makes this call a hit, exactly as it is worded."""
        return event_holds(
            self.kind, self.direction, self.reference_price, self.line, self.range_pct, close
        )

    @property
    def identity(self) -> str:
        """What the call is, whatever triggered the cycle that made it: the same market moment
        reached by `workshop cycle` and by a replay is one call, scored once."""
        made = self.made_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.source}|{self.target}|{self.kind}|{self.horizon_hours}h|{made}"

    @property
    def wording(self) -> str:
        """The call in words, e.g. "^VIX closes below 15.40 within 24h"."""
        return call_wording(
            self.target, self.kind, self.direction, self.reference_price, self.line,
            self.range_pct, self.horizon_hours,
        )  # fmt: skip


def event_holds(
    kind: str, side: str, reference: float, line: float, range_pct: float | None, close: float
) -> bool:
    """The settlement rule of every call kind: strict beyond the line, inclusive inside a band."""
    if kind == "range":
        inside = abs(close / reference - 1.0) * 100.0 <= (range_pct or 0.0) + 1e-12
        return inside if side == "inside" else not inside
    return close > line if side == "up" else close < line


def horizon_words(hours: int) -> str:
    sessions = horizon_sessions(hours)
    return f"{hours}h" if sessions <= 2 else f"{sessions} sessions"


def call_wording(
    target: str, kind: str, side: str, reference: float, line: float, range_pct: float | None,
    hours: int,
) -> str:  # fmt: skip
    """A call's words from its terms: what must happen, by when."""
    when = horizon_words(hours)
    if kind == "range":
        pct = range_pct or 0.0
        low, high = reference * (1 - pct / 100.0), reference * (1 + pct / 100.0)
        verb = "closes within" if side == "inside" else "closes outside"
        return f"{target} {verb} ±{pct:g}% of {reference:.2f} ({low:.2f}–{high:.2f}) in {when}"
    return f"{target} closes {'above' if side == 'up' else 'below'} {line:.2f} within {when}"


RuleStatus = Literal["active", "retired"]


class LearnedRule(Contract):
    """A rule the desk taught itself from its record: calls in this category lose to a coin.

    Created when the Wilson 95% upper bound of the category's hit rate falls below 0.5 over
    enough settled calls; retired when new evidence (calls it stopped are still scored in the
    shadow) lifts the bound back to 0.5 or above. "all" means the rule does not cut by that
    dimension.
    """

    id: str = Field(description="Stable name: category and a serial, e.g. 'flow|risk_off#1'.")
    source: str = Field(description="Whose calls it stops: a mind or 'synthesis'.")
    regime: str = "all"
    asset_class: str = "all"
    horizon: str = "all"
    topic: str = "all"
    status: RuleStatus = "active"
    settled: int = Field(ge=0, description="Settled calls in the evidence (withheld included).")
    hits: int = Field(ge=0)
    hit_rate: float = Field(ge=0.0, le=1.0)
    low: float = Field(ge=0.0, le=1.0, description="Wilson 95% interval of the hit rate.")
    high: float = Field(ge=0.0, le=1.0)
    created_at: AwareDatetime
    retired_at: AwareDatetime | None = None
    stopped: int = Field(default=0, ge=0, description="Calls it has withheld so far.")

    @property
    def category(self) -> str:
        cuts = [x for x in (self.regime, self.asset_class, self.horizon, self.topic) if x != "all"]
        return f"{self.source} calls" + (f" in {' x '.join(cuts)}" if cuts else "")

    def describe(self) -> str:
        """e.g. "flow calls in risk_off: 0.451 over 805 (95% 0.417-0.486) — stop"."""
        verdict = "stop" if self.status == "active" else "retired"
        return (
            f"{self.category}: {self.hit_rate:.3f} over {self.settled} "
            f"(95% {self.low:.3f}-{self.high:.3f}) — {verdict}"
        )

    def forbids(self, prediction: Prediction) -> bool:
        """Whether this (active) rule stops the call."""
        return (
            self.status == "active"
            and prediction.source == self.source
            and self.regime in ("all", prediction.regime)
            and self.asset_class in ("all", prediction.asset_class)
            and self.horizon in ("all", f"{prediction.horizon_hours}h")
            and self.topic in ("all", prediction.topic)
        )


class WithheldCall(Contract):
    """A call a learned rule stopped: never published, still scored in the rules' shadow record."""

    rule: str
    prediction: Prediction


StoryStatus = Literal["developing", "accelerating", "reversing", "resolved"]


class Story(Contract):
    """A narrative the desk detected in the features and follows from cycle to cycle."""

    key: str = Field(description="Kind and subject, e.g. 'drawdown:^GSPC'.")
    title: str
    status: StoryStatus = "developing"
    started: date = Field(description="Session it was first seen.")
    last_seen: date
    sessions: int = Field(default=1, ge=1, description="Sessions it has been followed.")
    strength: float = Field(description="How strong it is now, in the detector's unit.")
    peak: float
    trail: tuple[float, ...] = Field(default=(), description="The last few strengths.")
    quiet: int = Field(default=0, ge=0, description="Cycles in a row it could not be measured.")
    detail: str = Field(default="", description="The numbers behind it, in a sentence.")


class Fingerprint(Contract):
    """A cycle's tape in a few numbers, to find past cycles that looked like it."""

    r1: float | None = None
    r5: float | None = None
    r20: float | None = None
    vol: float | None = Field(default=None, description="VIX, else realised vol x 1.2.")
    slope: float | None = None
    r5_cell: int | None = None
    vol_cell: int | None = None


# The tape of a cycle whose features are not known (immutable: one is shared, as NO_RETURNS).
NO_TAPE = Fingerprint()


class Lesson(Contract):
    """What a settled call taught: what it rested on, what happened, what would have changed it."""

    cycle_key: str
    source: str
    target: str
    regime: str
    made_at: AwareDatetime
    settled_at: AwareDatetime
    outcome: Outcome
    move_pct: float | None = None
    rested_on: str
    happened: str
    would_change: str
    fingerprint: Fingerprint = Field(default_factory=Fingerprint)

    @property
    def text(self) -> str:
        return (
            f"Rested on: {self.rested_on} What happened: {self.happened} "
            f"What would have changed it: {self.would_change}"
        )


class Memory(Contract):
    """A past lesson a cycle recalled: same target, same regime, a tape that looked alike."""

    cycle_key: str
    source: str
    made_at: AwareDatetime
    settled_at: AwareDatetime
    regime: str
    outcome: Outcome
    distance: float = Field(ge=0.0, description="How far its fingerprint was from today's.")
    text: str


class MindSummary(Contract):
    """How a mind stood in the debate, as the dispatch reports it."""

    mind: str
    status: MindStatus
    stance: Stance
    confidence: float = Field(ge=0.0, le=1.0)
    weight: float = Field(default=0.0, ge=0.0, description="Weight the synthesis gave it.")
    reason: str | None = None


class Dispatch(Contract):
    """What the desk publishes for one cycle: an essay and at most one call, or an abstention."""

    cycle_key: str
    cycle_number: int = Field(ge=1)
    as_of: AwareDatetime
    title: str = Field(min_length=1, max_length=200)
    body_md: str = Field(min_length=1)
    debate: Debate
    conviction: float = Field(ge=0.0, le=1.0)
    minds: tuple[MindSummary, ...]
    prediction: Prediction | None = None
    abstention: str | None = Field(default=None, description="Why no call was made.")
    regime: Regime = "unknown"
    regime_score: float = Field(default=0.0, ge=0.0, le=1.0)
    missing: tuple[str, ...] = Field(default=(), description="What the desk could not see.")
    rules_applied: tuple[str, ...] = ()
    withheld: tuple[WithheldCall, ...] = Field(
        default=(), description="Calls learned rules stopped this cycle (the desk's or a mind's)."
    )
    rules: tuple[LearnedRule, ...] = Field(
        default=(), description="The rule book as it stood after this cycle, retired included."
    )
    stories: tuple[Story, ...] = Field(default=(), description="Narratives being followed.")
    recalled: tuple[Memory, ...] = Field(
        default=(), description="Past lessons this cycle recalled, none newer than as_of."
    )
    probability_up: float | None = Field(
        default=None, ge=0.0, le=1.0, description="The desk's final p(target closes up)."
    )
    raw_probability_up: float | None = Field(
        default=None, ge=0.0, le=1.0, description="The minds' pool before recalibration."
    )
    target: str | None = Field(default=None, description="What the probabilities are about.")
    base_rate_up: float | None = Field(default=None, ge=0.0, le=1.0)
    recalibration: Recalibration | None = None
    chosen: Candidate | None = None
    closest: Candidate | None = None
    considered: int = Field(default=0, ge=0)
    record_basis: str | None = None

    @model_validator(mode="after")
    def _call_or_abstention(self) -> Self:
        if (self.prediction is None) == (self.abstention is None):
            raise ValueError("a dispatch has exactly one of prediction and abstention")
        return self


class Resolution(Contract):
    """How a matured call was settled from prices."""

    prediction_id: int
    cycle_key: str
    source: str
    outcome: Outcome
    settled_at: AwareDatetime
    settle_price: float | None = None
    realized_move_pct: float | None = None
    reason: str = ""


# --- track record --------------------------------------------------------------------------------


class CalibrationBucket(Contract):
    """Settled calls whose stated probability fell in [low, high): what they said and what came."""

    low: float
    high: float
    count: int = Field(ge=0)
    mean_confidence: float
    hit_rate: float


class ScoreLine(Contract):
    """A record for one source (a mind or the synthesis), overall or within one category.

    A line is keyed by source plus at most a few category dimensions (regime, asset class,
    horizon, topic); "all" means the line is not cut by that dimension. Abstentions and
    inconclusive calls never enter the hit rate or the probability scores.
    """

    source: str
    regime: Regime | Literal["all"] = "all"
    calls: int = 0
    hits: int = 0
    misses: int = 0
    inconclusive: int = 0
    open: int = 0
    abstentions: int = 0
    hit_rate: float | None = None
    brier: float | None = None
    asset_class: str = "all"
    horizon: str = Field(default="all", description="e.g. '24h', or 'all'.")
    topic: str = "all"
    hit_rate_low: float | None = Field(default=None, description="Wilson 95% interval, low.")
    hit_rate_high: float | None = Field(default=None, description="Wilson 95% interval, high.")
    log_score: float | None = Field(
        default=None, description="Mean natural log of the probability given to what happened."
    )
    base_rate: float | None = Field(default=None, description="Mean base rate of the calls.")
    base_rate_brier: float | None = Field(
        default=None, description="Brier of always quoting the base rate, on the same calls."
    )
    brier_skill: float | None = Field(
        default=None, description="1 - Brier / base-rate Brier, over calls with a base rate."
    )
    ece: float | None = Field(default=None, description="Expected calibration error, 10 buckets.")
    calibration: tuple[CalibrationBucket, ...] = ()
    withheld: int = Field(default=0, description="Calls a learned rule stopped (shadow-scored).")

    @property
    def settled(self) -> int:
        return self.hits + self.misses

    def is_overall(self) -> bool:
        """True for a line cut by nothing but, possibly, its regime (the classic scoreboard)."""
        return self.asset_class == "all" and self.horizon == "all" and self.topic == "all"


class TrackRecord(Contract):
    """What the synthesis knows of everyone's record when it decides; all settled before as_of."""

    as_of: AwareDatetime | None = None
    lines: tuple[ScoreLine, ...] = ()

    def line(
        self,
        source: str,
        regime: str = "all",
        *,
        asset_class: str = "all",
        horizon: str = "all",
        topic: str = "all",
    ) -> ScoreLine | None:
        """The line of a source in one category; every dimension not given is "all"."""
        return next(
            (
                x
                for x in self.lines
                if x.source == source
                and x.regime == regime
                and x.asset_class == asset_class
                and x.horizon == horizon
                and x.topic == topic
            ),
            None,
        )


class CycleContext(Contract):
    """What ingest hands to each mind: the snapshot and the features derived from it."""

    cycle_number: int = Field(ge=1)
    snapshot: Snapshot
    features: Features
    record: TrackRecord = Field(default_factory=TrackRecord)
    # What the desk learned, for the minds' and the synthesis' prompts (the decision itself is
    # made in code from the synthesis' own copies).
    rules: tuple[LearnedRule, ...] = Field(default=(), description="The rule book carried in.")
    stories: tuple[Story, ...] = Field(default=(), description="Stories followed last cycle.")
    recalled: tuple[Memory, ...] = Field(default=(), description="Lessons of a tape like this.")


class Recalibration(Contract):
    """The recalibration the synthesis applied: fitted on n pooled forecasts settled by as_of."""

    n: int = Field(ge=0)
    ups: int = Field(ge=0)
    a: float
    b: float
    ready: bool = Field(description="Enough settled forecasts (minimum) to trust it with a call.")
    minimum: int = Field(ge=0)


class Candidate(Contract):
    """One call on the menu as the desk weighed it: its calibrated probability against its own
    base rate and the naive random walk's, and how far beyond the calibration's error it is."""

    wording: str
    target: str
    kind: CallKind
    direction: CallSide
    horizon_hours: int = Field(gt=0)
    probability: float = Field(ge=0.0, le=1.0, description="Calibrated p that it comes true.")
    base_rate: float = Field(ge=0.0, le=1.0)
    naive_probability: float = Field(ge=0.0, le=1.0)
    stderr: float = Field(ge=0.0, description="Standard error of the calibrated probability.")
    edge: float = Field(description="probability - base_rate.")
    edge_naive: float = Field(description="probability - naive_probability.")
    margin: float = Field(description="|edge| less its error and the edge needed: >= 0 calls.")
    verdict: str = Field(default="", description="Why it was made, or why it fell short.")


class Recap(Contract):
    """The previous dispatch as the next one sees it, so the dispatch can say what changed since:
    a mind changing sides, a story turning, a rule coming into force, the last call settling."""

    as_of: AwareDatetime
    minds: tuple[MindSummary, ...] = ()
    prediction: Prediction | None = None
    probability_up: float | None = Field(default=None, ge=0.0, le=1.0)
    stories: tuple[Story, ...] = ()
    settled: Outcome | None = Field(
        default=None, description="The previous call's outcome, when this cycle's close settles it."
    )
    settle_price: float | None = None
    new_rules: tuple[LearnedRule, ...] = Field(default=(), description="Came into force since.")
    retired_rules: tuple[LearnedRule, ...] = Field(default=(), description="Retired since.")


class Deliberation(Contract):
    """What the synthesis decided in code, before any prose; the brain writes words for it."""

    minds: tuple[MindSummary, ...]
    outputs: tuple[MindOutput, ...]
    debate: Debate
    conviction: float = Field(ge=0.0, le=1.0)
    probability_up: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Final p(up): recalibrated when it could be."
    )
    prediction: Prediction | None = None
    abstention: str | None = None
    rules_applied: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    record: TrackRecord = Field(default_factory=TrackRecord)
    raw_probability_up: float | None = Field(
        default=None, ge=0.0, le=1.0, description="The skill-weighted pool of the minds."
    )
    base_rate_up: float | None = Field(
        default=None, ge=0.0, le=1.0, description="How often the target rose over the horizon."
    )
    recalibration: Recalibration | None = None
    withheld: tuple[WithheldCall, ...] = ()
    stories: tuple[Story, ...] = ()
    recalled: tuple[Memory, ...] = ()
    probability_stderr: float | None = Field(
        default=None, ge=0.0, description="Standard error of the calibrated probability."
    )
    target: str | None = None
    horizon_hours: int = 24
    chosen: Candidate | None = Field(default=None, description="The menu's call, if made.")
    closest: Candidate | None = Field(
        default=None, description="On an abstention, the candidate that came closest."
    )
    considered: int = Field(default=0, ge=0, description="Candidates weighed on the menu.")
    record_basis: str | None = Field(
        default=None, description="What the calibration rests on, in a sentence."
    )
    previous: Recap | None = Field(
        default=None, description="The last dispatch before this one, for what changed since."
    )


class DispatchDraft(Contract):
    """The brain's words for a deliberation."""

    title: str = Field(min_length=1, max_length=200)
    body_md: str = Field(min_length=1)
    usage: TokenUsage | None = None
