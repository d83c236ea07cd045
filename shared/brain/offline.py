"""The offline brain: deterministic quantitative minds over the features, prose from the numbers.

No model, no network, no randomness, no clock: the same context gives the same words byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from shared.brain.prose import write_dispatch
from shared.contracts import (
    CycleContext,
    Deliberation,
    DispatchDraft,
    Features,
    MindCall,
    MindOutput,
    NewsBlock,
    ScoredHeadline,
    Stance,
)
from shared.names import breadth, capital, instrument
from shared.news import quote

# Daily index direction is close to a coin flip: no mind may claim more than 65/35, so that its
# probabilities stay in the range where calibration can be measured and is plausible.
MAX_EDGE = 0.15
# Below this edge a mind calls itself neutral rather than pretend a lean it cannot defend.
NEUTRAL_BAND = 0.01
# Unknown inputs shrink a mind's edge: with nothing but one input known it keeps 60% of it.
COVERAGE_FLOOR = 0.6
HORIZON_HOURS = 24
TRADING_DAYS = 252


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: its push on p(up) (positive is bullish) and the sentence saying it.

    A news signal quotes a headline; it leads the argument when it moved the mind, and closes
    it (saying what was read and why it did not matter) when it did not.
    """

    score: float
    text: str
    news: bool = False


@dataclass
class Reading:
    """What one mind made of the features: its evidence and the inputs it could not see."""

    signals: list[Signal] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    checked: int = 0
    # Inputs that can carry a view on their own; a yardstick (realized vol) alone cannot.
    essentials_known: int = 0

    def add(self, score: float, text: str) -> None:
        self.signals.append(Signal(score, text))

    def add_news(self, score: float, text: str) -> None:
        self.signals.append(Signal(score, text, news=True))


# Flags that say a number is missing or not to be trusted. Others (a ticker with no SEC filer
# id, an undated headline) say nothing about the features and must not blind a mind.
DISTRUSTED_VALUE_CODES = frozenset(
    {
        "missing_series",
        "stale_series",
        "missing_symbol",
        "stale_symbol",
        "bad_value",
        "missing_value",
        "stale_feed",
        "feed_error",
    }
)


class _Inputs:
    """Reads features for one mind, treating None, features.unknown and flagged series alike."""

    def __init__(self, context: CycleContext, reading: Reading) -> None:
        self._features = context.features
        self._reading = reading
        self._unknown = {name.lower() for name in context.features.unknown}
        self._flagged = {
            _norm(flag.subject)
            for flag in context.snapshot.flags
            if flag.code in DISTRUSTED_VALUE_CODES
        }

    def is_distrusted(self, *names: str) -> bool:
        wanted = {_norm(n) for n in names}
        return bool(wanted & self._unknown) or bool(wanted & self._flagged)

    def get(self, name: str, label: str, *aliases: str, essential: bool = True) -> float | None:
        """The feature's value, or None (noted as missing) when it is unknown or not to trust."""
        self._reading.checked += 1
        value = getattr(self._features, name)
        if value is None or self.is_distrusted(name, *aliases):
            self._reading.missing.append(label)
            return None
        self._reading.essentials_known += essential
        return float(value)

    def returns(self, symbol: str | None, window: str, label: str) -> float | None:
        """One window's return of a symbol, or None (noted) when the symbol or window is unknown."""
        self._reading.checked += 1
        if symbol is None:
            self._reading.missing.append(label)
            return None
        rets = self._features.returns_of(symbol)
        value: float | None = getattr(rets, window)
        names = (symbol, f"{symbol}.{window}", f"returns.{symbol}", f"returns.{symbol}.{window}")
        if value is None or self.is_distrusted(*names):
            self._reading.missing.append(label)
            return None
        self._reading.essentials_known += 1
        return value


@lru_cache(maxsize=4096)
def _norm(name: str) -> str:
    # Cached: the minds ask about the same few dozen names every cycle.
    return name.strip().lower().lstrip("^")


def _clamp(x: float, low: float, high: float) -> float:
    return max(low, min(high, x))


def _name(features: Features) -> str:
    # Arguments are quoted in dispatches: instruments go by their names, never their tickers.
    return instrument(features.broad)


# --- macro ---------------------------------------------------------------------------------------

_CURVE = ("t10y2y", "dgs10", "dgs2", "tnx", "curve", "10y", "2y")


def read_macro(context: CycleContext) -> Reading:
    """Rates, inflation, policy and jobs: the slow forces that set the price of money and risk."""
    reading = Reading()
    k = _Inputs(context, reading)
    slope = k.get("curve_slope", "the 10y-2y slope", *_CURVE)
    dslope = k.get(
        "curve_slope_change_20d", "the curve's 20-session change", *_CURVE, essential=False
    )
    cpi = k.get("cpi_yoy", "CPI inflation", "cpiaucsl", "cpi")
    funds = k.get("fed_funds", "the fed funds rate", "fedfunds")
    dfunds = k.get("fed_funds_change_6m", "the 6-month fed funds change", "fedfunds")
    djobs = k.get("unemployment_change_3m", "the unemployment trend", "unrate", "unemployment")
    oil = k.get("oil_r20", "oil's 20-session move", "dcoilwtico", "oil", "wti", "cl=f")
    jobless = context.features.unemployment

    if slope is not None:
        trend = ""
        if dslope is not None and abs(dslope) >= 0.05:
            shape = "flatter" if dslope < 0 else "steeper"
            trend = f", {abs(dslope):.2f} pts {shape} than 20 sessions ago"
        if slope < 0:
            depth = min(0.03, -slope * 0.04)
            deepening = -0.01 if dslope is not None and dslope < -0.1 else 0.0
            reading.add(
                -0.02 - depth + deepening,
                f"10y-2y at {slope:+.2f} pts{trend}: the curve is inverted, the bond market "
                "pricing cuts it expects to need.",
            )
        elif slope < 0.5:
            reading.add(-0.005, f"10y-2y at {slope:+.2f} pts{trend}: flat, little reward for term.")
        elif dslope is not None and dslope >= 0.5:
            # A curve steepening this fast is the front end collapsing on expected cuts (2001,
            # 2007-08), not growth: it is read as stress, whatever the level.
            reading.add(
                -0.01,
                f"10y-2y at {slope:+.2f} pts{trend}: a steepening this fast is the front end "
                "pricing emergency cuts, not expansion.",
            )
        elif slope >= 1.5:
            reading.add(
                0.015, f"10y-2y at {slope:+.2f} pts{trend}: a steep curve, expansion-shaped."
            )
        else:
            nudge = -0.01 if dslope is not None and dslope < -0.25 else 0.005
            reading.add(
                nudge, f"10y-2y at {slope:+.2f} pts{trend}: an ordinary, upward-sloping curve."
            )

    if funds is not None and cpi is not None:
        real = funds - cpi
        head = (
            f"Fed funds {funds:.2f}% against CPI {cpi:.1f}% y/y leaves a real policy rate "
            f"of {real:+.2f}%"
        )
        if real >= 2.0:
            reading.add(-0.02, f"{head}: restrictive, money is expensive in real terms.")
        elif real >= 0.5:
            reading.add(-0.005, f"{head}: mildly restrictive.")
        elif real <= -1.0:
            reading.add(0.015, f"{head}: policy sits below inflation, still accommodative.")
        else:
            reading.add(0.0, f"{head}: roughly neutral policy.")
    elif cpi is not None and cpi >= 4.0:
        reading.add(-0.015, f"CPI at {cpi:.1f}% y/y is hot enough to keep policy tight.")

    if dfunds is not None:
        if dfunds >= 0.5:
            pace = -(0.015 + min(0.02, (dfunds - 0.5) * 0.02))
            reading.add(pace, f"The Fed has tightened {dfunds:.2f} pts in six months.")
        elif dfunds <= -0.5:
            # Fast cuts are easing, but they usually arrive because something broke: a small push.
            reading.add(
                0.005,
                f"Fed funds {dfunds:+.2f} pts in six months: easing, though cuts "
                "this fast usually mean something broke.",
            )

    if djobs is not None:
        level = f" to {jobless:.1f}%" if jobless is not None else ""
        if djobs >= 0.3:
            reading.add(
                -0.03,
                f"Unemployment up {djobs:.1f} pts in three months{level}: a rise "
                "that size has marked the start of past recessions.",
            )
        elif djobs >= 0.1:
            reading.add(-0.01, f"Unemployment drifting up, {djobs:.1f} pts in three months{level}.")
        elif djobs <= -0.2:
            reading.add(
                0.01,
                f"Unemployment down {-djobs:.1f} pts in three months{level}: jobs "
                "still tightening.",
            )

    if oil is not None:
        if oil >= 25:
            reading.add(
                -0.02,
                f"Oil {oil:+.1f}% in 20 sessions: a supply shock that taxes "
                "consumers and feeds inflation.",
            )
        elif oil >= 15:
            reading.add(-0.01, f"Oil {oil:+.1f}% in 20 sessions, an inflation push.")
        elif oil <= -25:
            reading.add(
                -0.005, f"Oil {oil:+.1f}% in 20 sessions: a demand scare as much as relief."
            )
    _macro_news(context, reading)
    return reading


# --- news ----------------------------------------------------------------------------------------

# Tone past which a topic's headlines lean one way (VADER compound, mean over the topic).
NEWS_LEAN = 0.2
# A market headline this dark (VADER compound) is a shock the Macro mind reads as such.
MARKET_SHOCK = 0.5
# Market headlines needed, and how one-sided they must be, before the Contrarian fades them.
ONE_SIDED_MIN = 2
ONE_SIDED_BALANCE = 0.6
_MACRO_TOPICS = ("fed_rates", "inflation", "oil_energy", "markets")


def _topics_phrase(news: NewsBlock) -> str:
    top = sorted(news.topics.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return ", ".join(f"{n} on {t.replace('_', ' ')}" for t, n in top) or "none on a named topic"


def _lead(news: NewsBlock, *topics: str) -> ScoredHeadline | None:
    leads = [news.leads[t] for t in topics if t in news.leads]
    return max(leads, key=lambda h: (abs(h.tone), h.published_at), default=None)


def _macro_news(context: CycleContext, reading: Reading) -> None:
    """Policy and geopolitics from the wire: a lean only when they bear on money or energy."""
    news = context.features.news
    if news is None:
        return
    policy = news.topics.get("fed_rates", 0) + news.topics.get("inflation", 0)
    policy_tone = [news.topic_tone[t] for t in ("fed_rates", "inflation") if t in news.topic_tone]
    lead = _lead(news, "fed_rates", "inflation")
    if lead is not None and policy_tone and abs(min(policy_tone, key=abs)) >= NEWS_LEAN:
        lean = sum(policy_tone) / len(policy_tone)
        reading.add_news(
            _clamp(lean * 0.03, -0.02, 0.02),
            f"On policy the wire leans {'hawkish or fearful' if lean < 0 else 'easy'} "
            f"({policy} headline{'s' if policy > 1 else ''} on the Fed, rates or inflation, "
            f"tone {lean:+.2f}); the most telling, {quote(lead)}.",
        )
        return
    # Conflict moves this mind only where it touches markets, energy or money; a market headline
    # only when it is plainly a shock (growth fears, a default, a currency war).
    seen = news.top + tuple(news.leads.values())
    conflict = [h for h in seen if "geopolitics" in h.topics and set(h.topics) & set(_MACRO_TOPICS)]
    shocks = [h for h in seen if "markets" in h.topics and h.tone <= -MARKET_SHOCK]
    worst = min(conflict, key=lambda h: (h.tone, h.title), default=None)
    if worst is not None and worst.tone <= -NEWS_LEAN:
        reading.add_news(
            -0.015,
            f"Geopolitics reaches the money on the wire: {quote(worst)}; conflict that touches "
            "energy, sanctions or markets is a risk premium, not background.",
        )
        return
    shock = min(shocks, key=lambda h: (h.tone, h.title), default=None)
    if shock is not None:
        reading.add_news(
            -0.015,
            f"The wire carries a macro shock: {quote(shock)}; fear about growth, debt or "
            "currencies travels across markets before it shows in the monthly data.",
        )
        return
    geo = news.topics.get("geopolitics", 0)
    why = (
        f"{geo} on conflict, none touching energy, sanctions or markets"
        if geo
        else "none on policy or conflict"
    )
    reading.add_news(
        0.0,
        f"I read {news.count} headlines ({_topics_phrase(news)}): {why}, and no policy "
        "headline leans clearly, so the wire does not move my macro view.",
    )


def _contrarian_news(context: CycleContext, reading: Reading) -> None:
    """A one-sided market wire is a crowd to fade: everyone has read the same story."""
    news = context.features.news
    if news is None:
        return
    side = news.market_balance
    if news.market_count >= ONE_SIDED_MIN and abs(side) >= ONE_SIDED_BALANCE:
        loud = [h for h in news.top if set(h.topics) - {"geopolitics", "crypto"}] or list(news.top)
        lead = min(loud, key=lambda h: h.tone) if side < 0 else max(loud, key=lambda h: h.tone)
        gloom = side < 0
        reading.add_news(
            0.015 if gloom else -0.01,
            f"The market wire is one-sided ({news.market_count} market headlines, balance "
            f"{side:+.2f}): {'gloom' if gloom else 'cheer'} everyone has already read, the "
            f"loudest {quote(lead)}; a crowd this sure is one to lean against.",
        )
        return
    reading.add_news(
        0.0,
        f"I read {news.count} headlines, {news.market_count} on markets with balance "
        f"{side:+.2f}: not one-sided enough to fade.",
    )


def _flow_news(context: CycleContext, reading: Reading) -> None:
    """Deals are money moving; crypto headlines are noted for what they are."""
    news = context.features.news
    if news is None:
        return
    deal = news.leads.get("deals")
    if deal is not None:
        n = news.topics["deals"]
        reading.add_news(
            0.005,
            f"Deal flow on the wire ({n} headline{'s' if n > 1 else ''}): {quote(deal)}; "
            "buyers paying for assets is money coming in.",
        )
        return
    coin = news.leads.get("crypto")
    extra = f"; on crypto, {quote(coin)}, with no crypto price here to read it" if coin else ""
    reading.add_news(
        0.0,
        f"I read {news.count} headlines and none on mergers or buyouts; flow reads the tape, "
        f"not the wire{extra}.",
    )


# --- flow ----------------------------------------------------------------------------------------


def _breadth_signal(label: str, mega_down: int, mega_count: int) -> tuple[float, str] | None:
    """Reads a breadth label; the labels are compositional words, so parse the words, not a list."""
    words = set(label.lower().split("_"))
    text = breadth(label)
    if "mega" in words and "down" in words and ({"flat", "up"} & words):
        who = f"{mega_down} of {mega_count} mega-caps down" if mega_count else "mega-caps down"
        return -0.03, (
            f"Breadth: {who} while the index holds up; the mega-caps are lying to the "
            "index, and that is rarely a healthy tape."
        )
    if "mega" in words and "up" in words and ({"flat", "down"} & words):
        return -0.015, (
            "Breadth: the heaviest names carry the index while the rest lag, a narrow market."
        )
    if "narrow" in words:
        return -0.015, f"Breadth shows {text}: few names doing the work."
    if "broad" in words and ({"up", "rally", "advance"} & words):
        return 0.02, f"Breadth shows {text}: participation is wide, the healthy kind of rally."
    if "broad" in words and ({"down", "selloff", "decline"} & words):
        return -0.02, f"Breadth shows {text}: selling is everywhere, not just in a few names."
    if "small" in words and ({"lead", "leads", "up"} & words):
        return 0.01, f"Breadth shows {text}: small caps leading, risk appetite widening."
    if "small" in words and ({"lag", "lags", "down"} & words):
        return -0.01, f"Breadth shows {text}: small caps lagging, appetite shrinking."
    return None


def read_flow(context: CycleContext) -> Reading:
    """Breadth, momentum, volume and rotation: who is actually buying, and how much of the tape."""
    reading = Reading()
    k = _Inputs(context, reading)
    f = context.features
    b = f.breadth
    name = _name(f)
    r5 = k.returns(f.broad, "r5", "5-session momentum")
    r20 = k.returns(f.broad, "r20", "20-session momentum")

    if r5 is not None or r20 is not None:
        score = 0.0
        parts = []
        if r5 is not None:
            score += _clamp(r5 * 0.008, -0.02, 0.02)
            parts.append(f"{r5:+.1f}% over 5 sessions")
        if r20 is not None:
            score += _clamp(r20 * 0.006, -0.03, 0.03)
            parts.append(f"{r20:+.1f}% over 20")
        mood = "up" if score > 0.005 else "down" if score < -0.005 else "flat"
        reading.add(score, f"{capital(name)} is {' and '.join(parts)}: momentum is {mood}.")

    reading.checked += 1
    label_known = b.label not in ("", "unknown") and not k.is_distrusted("breadth", "breadth.label")
    parsed = _breadth_signal(b.label, b.mega_down, b.mega_count) if label_known else None
    if parsed is not None:
        reading.essentials_known += 1
        reading.add(*parsed)
    elif b.mega_count >= 3 and not k.is_distrusted("breadth"):
        reading.essentials_known += 1
        share = b.mega_up / b.mega_count
        mean = f", mean {b.mega_mean_r1:+.2f}%" if b.mega_mean_r1 is not None else ""
        head = f"{b.mega_up} of {b.mega_count} mega-caps up on the session{mean}"
        if share >= 0.8:
            reading.add(0.01, f"{head}: the leaders are with the tape.")
        elif share <= 0.2:
            reading.add(-0.01, f"{head}: the leaders are being sold.")
        else:
            reading.add(0.0, f"{head}: the leaders are split.")
    else:
        reading.missing.append("breadth")

    tech5 = f.returns_of(f.tech).r5
    if f.tech and tech5 is not None and r5 is not None and not k.is_distrusted(f.tech):
        gap = tech5 - r5
        if gap >= 1.0:
            reading.add(
                0.01,
                f"{capital(instrument(f.tech))} ahead of {name} by {gap:+.1f} pts over 5 sessions: "
                "growth is being bought.",
            )
        elif gap <= -1.0:
            reading.add(
                -0.01,
                f"{capital(instrument(f.tech))} behind {name} by {gap:+.1f} pts over 5 "
                "sessions: growth is being sold.",
            )
    small5 = f.returns_of(f.small).r5
    small_gap = (
        (small5 - r5) if (small5 is not None and r5 is not None) else b.spread_small_vs_broad
    )
    if f.small and small_gap is not None and not k.is_distrusted(f.small):
        if small_gap >= 1.0:
            reading.add(
                0.01,
                f"Small caps ({instrument(f.small)}) {small_gap:+.1f} pts against {name}: "
                "participation is broadening.",
            )
        elif small_gap <= -1.0:
            reading.add(
                -0.01,
                f"Small caps ({instrument(f.small)}) {small_gap:+.1f} pts against {name}: "
                "the rally, if any, is narrow.",
            )

    volume = k.get("volume_ratio_20d", "volume", "volume")
    day = b.broad_r1 if b.broad_r1 is not None else f.returns_of(f.broad).r1
    if volume is not None:
        if volume >= 1.4 and day is not None and day != 0:
            kind = "accumulation" if day > 0 else "distribution"
            reading.add(
                0.01 if day > 0 else -0.01,
                f"Volume {volume:.1f}x its 20-day average on a {day:+.2f}% day: {kind}.",
            )
        elif volume <= 0.7:
            reading.add(
                0.0,
                f"Volume only {volume:.1f}x its 20-day average: moves on light volume mean less.",
            )
    _flow_news(context, reading)
    return reading


# --- contrarian ----------------------------------------------------------------------------------

_VIX = ("vix", "vixcls")


def read_contrarian(context: CycleContext) -> Reading:
    """Fades extremes: stretched moves against realized vol, fear spikes, and complacency."""
    reading = Reading()
    k = _Inputs(context, reading)
    f = context.features
    name = _name(f)
    r5 = k.returns(f.broad, "r5", "the 5-session move")
    vol = k.get("realized_vol_20d", "realized volatility", "realized_vol", essential=False)
    vix = k.get("vix", "VIX", *_VIX)
    dvix = k.get("vix_change_5d", "the VIX's 5-session change", *_VIX)
    complacency_said = False

    if r5 is not None and vol is not None and vol > 0:
        sd5 = vol * math.sqrt(5 / TRADING_DAYS)
        z = r5 / sd5
        head = (
            f"{capital(name)} {r5:+.1f}% in 5 sessions against 20-day realised volatility "
            f"of {vol:.1f}% "
            f"(a 5-session sd of {sd5:.1f}%), a {z:+.1f} sd move"
        )
        if z <= -1.5:
            reading.add(
                min(0.045, 0.02 + (-z - 1.5) * 0.015),
                f"{head}: selloffs this stretched tend to snap back, so fade the panic.",
            )
        elif z >= 1.5 and vix is not None and vix < 15:
            complacency_said = True
            reading.add(
                -min(0.045, 0.02 + (z - 1.5) * 0.015),
                f"{head} with VIX at {vix:.1f}: nobody is paying for insurance, "
                "complacency worth fading.",
            )
        elif z >= 1.5:
            reading.add(-0.01, f"{head}: stretched enough to expect some give-back.")
        else:
            reading.add(0.0, f"{head}: nothing stretched enough to fade.")
    elif r5 is not None:
        if r5 <= -4:
            reading.add(
                0.02,
                f"{capital(name)} {r5:+.1f}% in 5 sessions, a hard selloff even without a "
                "vol yardstick.",
            )
        elif r5 >= 4:
            reading.add(
                -0.01, f"{capital(name)} {r5:+.1f}% in 5 sessions, a run that invites give-back."
            )
        else:
            reading.add(
                0.0, f"{capital(name)} {r5:+.1f}% in 5 sessions: no extreme to lean against."
            )

    if vix is not None:
        if vix >= 35:
            reading.add(
                0.035,
                f"VIX at {vix:.2f}: fear this high has usually sat near lows, "
                "not at the start of declines.",
            )
        elif vix >= 28:
            reading.add(0.02, f"VIX at {vix:.2f}: the crowd is paying up for protection.")
        elif vix <= 12 and not complacency_said:
            reading.add(
                -0.02, f"VIX at {vix:.2f}: complacency, insurance priced as if nothing can happen."
            )
        elif vix <= 14 and not complacency_said:
            reading.add(-0.005, f"VIX at {vix:.2f}, on the calm side.")
    if dvix is not None:
        if dvix >= 6:
            reading.add(
                0.015,
                f"VIX up {dvix:+.1f} pts in 5 sessions: a fear spike, the kind "
                "that exhausts sellers.",
            )
        elif dvix <= -6:
            reading.add(-0.005, f"VIX {dvix:+.1f} pts in 5 sessions: fear drained fast.")
    _contrarian_news(context, reading)
    return reading


# --- from a reading to an output -----------------------------------------------------------------

Reader = Callable[[CycleContext], Reading]


@dataclass(frozen=True)
class MindSpec:
    """A registered mind: how it reads the features, what it talks about, and why it may abstain."""

    read: Reader
    topics: tuple[str, ...]
    blind: str


MINDS: dict[str, MindSpec] = {
    "macro": MindSpec(
        read_macro,
        ("rates", "inflation", "policy"),
        "no rates, inflation or labor data known at as_of",
    ),
    "flow": MindSpec(
        read_flow,
        ("breadth", "momentum", "rotation"),
        "no momentum, breadth or volume data known at as_of",
    ),
    "contrarian": MindSpec(
        read_contrarian, ("sentiment", "volatility"), "no index move or VIX known at as_of"
    ),
}


def _stance(edge: float) -> Stance:
    if edge >= NEUTRAL_BAND:
        return "bullish"
    if edge <= -NEUTRAL_BAND:
        return "bearish"
    return "neutral"


def conclude(mind: str, spec: MindSpec, reading: Reading, context: CycleContext) -> MindOutput:
    """Turns a reading into the mind's stance, calibrated-range probability and argument."""
    known = reading.checked - len(reading.missing)
    # Headlines that did not move a mind cannot stand in for the data it reads.
    evidence = [x for x in reading.signals if not x.news or x.score != 0]
    if reading.essentials_known <= 0 and not evidence:
        return MindOutput(mind=mind, status="abstained", reason=spec.blind, topics=spec.topics)
    if not evidence:
        reading.add(0.0, "Nothing among the known inputs is far enough from normal to lean on.")
    coverage = known / reading.checked if reading.checked else 0.0
    raw = _clamp(sum(s.score for s in reading.signals), -MAX_EDGE, MAX_EDGE)
    # Evidence seen through a half-open window is worth less: shrink the edge with coverage.
    edge = raw * (COVERAGE_FLOOR + (1 - COVERAGE_FLOOR) * coverage)
    p_up = round(0.5 + edge, 4)
    stance = _stance(edge)
    confidence = round(min(1.0, abs(edge) / MAX_EDGE), 3)
    target = context.features.broad
    call = None
    if stance != "neutral" and target is not None:
        call = MindCall(
            target=target,
            direction="up" if stance == "bullish" else "down",
            horizon_hours=HORIZON_HOURS,
            probability=max(p_up, round(1 - p_up, 4)),
        )
    return MindOutput(
        mind=mind,
        stance=stance,
        confidence=confidence,
        argument=_argument(reading, stance, p_up, target),
        topics=spec.topics,
        call=call,
    )


def _argument(reading: Reading, stance: Stance, p_up: float, target: str | None) -> str:
    # A headline that moved the mind leads (so the dispatch quotes it); then the strongest
    # evidence, ties in reading order so the text is stable; then headlines read but set aside.
    moved = [s.text for s in reading.signals if s.news and s.score != 0]
    ranked = sorted((s for s in reading.signals if not s.news), key=lambda s: -abs(s.score))[:3]
    read = [s.text for s in reading.signals if s.news and s.score == 0]
    sentences = moved + [s.text for s in ranked] + read
    if reading.missing:
        sentences.append(
            f"Not known this cycle: {', '.join(reading.missing)}; confidence cut accordingly."
        )
    where = instrument(target)
    if stance == "neutral":
        sentences.append(f"No lean: the evidence nets to p(up) {p_up:.2f}.")
    else:
        sentences.append(f"Leaning {stance} on {where} over {HORIZON_HOURS}h, p(up) {p_up:.2f}.")
    return " ".join(sentences)


class OfflineBrain:
    """The embedded default brain: quantitative minds over the features, prose from the numbers."""

    name = "offline"

    def __init__(self, minds: dict[str, MindSpec] | None = None) -> None:
        self._minds = dict(MINDS if minds is None else minds)

    def think(self, mind: str, context: CycleContext) -> MindOutput:
        """One mind's view; an unknown mind is absent, a blind one abstains, neither raises."""
        spec = self._minds.get(mind)
        if spec is None:
            return MindOutput.absent(mind, f"no offline reasoning registered for mind '{mind}'")
        return conclude(mind, spec, spec.read(context), context)

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft:
        """The dispatch's title and body, in the house voice, from the deliberation's numbers."""
        title, body = write_dispatch(deliberation, context)
        return DispatchDraft(title=title, body_md=body)
