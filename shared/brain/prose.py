"""The offline synthesis' words: a first-person dispatch argued from the deliberation's numbers.

A dispatch is a thesis and an argument, in this order: a title that states the cycle's most
telling fact and the desk's reading of it; a lede on that fact (or on what changed since the last
dispatch, when that is the news); the tape in words; which mind the desk sides with and why, the
strongest objection and its answer; what the desk refuses to do and the record or rule that stops
it; what it could not see (once); the stories and memories in play; the call or the abstention.

Phrasing branches on the facts (sizes judged against trailing volatility, stances, records,
reasons), never on chance: a replay gives the same text byte for byte. Instruments and labels are
named for readers (shared.names): no raw ticker or internal label reaches the prose. Only the
call block keeps the target's symbol, beside its name, since it is what the resolver settles.

Public entry points, kept stable for the Claude writer (shared/brain/anthropic.py), which falls
back to this writer and shares its structure: write_dispatch(d, context) -> (title, body),
mind_label(mind), and speak_call(prediction) (one call, in words, whatever its kind).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from shared.contracts import (
    SYNTHESIS,
    CycleContext,
    Deliberation,
    Features,
    LearnedRule,
    Memory,
    MindOutput,
    MindSummary,
    Prediction,
    ScoreLine,
    Story,
)
from shared.names import capital, humanize, instrument, regime, title_case

TITLE_MAX = 120
TRADING_DAYS = 252
# Fewer settled calls than this in a regime are quoted as thin rather than leaned on.
MIN_REGIME_CALLS = 10
# A lean this far from the reference (base rate, or a coin) is worth naming; below it, no lean.
LEAN = 0.005
# A reader finishes ~600 words; past this, the optional paragraphs (memory, stories) give way.
MAX_WORDS = 580

Size = Literal["unknown", "quiet", "ordinary", "big", "violent"]


def mind_label(mind: str) -> str:
    return f"{mind.replace('_', ' ').title()} Mind"


def _pct(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}%"


def _num(x: float) -> str:
    """A price as a reader writes it: 2,071.50; small numbers keep two decimals."""
    return f"{x:,.2f}"


def _settled(line: ScoreLine | None) -> int:
    return 0 if line is None else line.hits + line.misses


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _lower_first(text: str) -> str:
    """A sentence continued after a colon: "Momentum is down" -> "momentum is down", "VIX" kept."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _sentences(text: str) -> str:
    """Sentences start with a capital after names were put in ("the S&P 500 ..." -> "The ...")."""
    text = text[:1].upper() + text[1:]
    return re.sub(r"([.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


# --- the day, judged against its own volatility -------------------------------------------------


@dataclass(frozen=True)
class Move:
    """The broad index's session move, and how big it was against trailing volatility."""

    pct: float | None
    sigma: float | None  # the move in daily standard deviations of the last 20 sessions

    @property
    def size(self) -> Size:
        if self.pct is None:
            return "unknown"
        a = abs(self.pct)
        z = abs(self.sigma) if self.sigma is not None else None
        if a >= 3.0 or (z is not None and z >= 3.0 and a >= 1.5):
            return "violent"
        if a >= 1.5 or (z is not None and z >= 1.5 and a >= 0.75):
            return "big"
        # Quiet is a claim about the tape: a move under half a percent AND under 0.7 sd.
        if a < 0.5 and (z is None or z < 0.7):
            return "quiet"
        return "ordinary"

    @property
    def up(self) -> bool:
        return (self.pct or 0.0) > 0

    def verb(self) -> str:
        words = {
            "quiet": ("barely moved", "barely moved"),
            "ordinary": ("rose", "fell"),
            "big": ("jumped", "dropped"),
            "violent": ("surged", "plunged"),
        }
        pair = words.get(self.size, ("moved", "moved"))
        return pair[0] if self.up else pair[1]


def day_move(features: Features) -> Move:
    b = features.breadth
    pct = b.broad_r1 if b.broad_r1 is not None else features.returns_of(features.broad).r1
    vol = features.realized_vol_20d
    sigma = None
    if pct is not None and vol is not None and vol > 0:
        sigma = pct / (vol / math.sqrt(TRADING_DAYS))
    return Move(pct, sigma)


# --- the desk's reading: call, lean, or why not --------------------------------------------------

Reason = Literal["call", "rule", "calibrating", "edge", "blind", "price"]


@dataclass(frozen=True)
class Reading:
    """What the desk decided, in the terms the words need: called or not, its lean, and why."""

    reason: Reason
    lean: Literal["up", "down", "none"]
    edge: float  # calibrated (or raw) p(up) less its reference
    reference: float
    # A plain call is a direction call on the broad index: the title can say "It Higher".
    # Any other (VIX below a level, a range, another index) is named in full.
    plain: bool = True

    @property
    def called(self) -> bool:
        return self.reason == "call"


def reading_of(d: Deliberation) -> Reading:
    calibrated = d.recalibration is not None and d.recalibration.ready
    reference = d.base_rate_up if (calibrated and d.base_rate_up is not None) else 0.5
    edge = (d.probability_up - reference) if d.probability_up is not None else 0.0
    lean: Literal["up", "down", "none"] = (
        "up" if edge >= LEAN else "down" if edge <= -LEAN else "none"
    )
    reason: Reason
    plain = True
    if d.prediction is not None:
        reason = "call"
        p = d.prediction
        plain = str(getattr(p, "kind", "direction")) == "direction" and p.target == d.target
        if plain:
            lean = "down" if p.direction == "down" else "up"
    elif d.probability_up is None:
        reason = "blind"
    elif any(w.prediction.source == SYNTHESIS for w in d.withheld):
        reason = "rule"
    elif d.target is None or (d.abstention or "").find("has no price") >= 0:
        reason = "price"
    elif d.recalibration is not None and not d.recalibration.ready:
        reason = "calibrating"
    else:
        reason = "edge"
    return Reading(reason, lean, edge, reference, plain)


def speak_call(p: Prediction, horizon_style: Literal["short", "long", "title"] = "long") -> str:
    """One call in words, whatever its kind: the one place a call is worded.

    direction: "the S&P 500 closes above 2,071.50 within 24 hours"; threshold: "VIX closes
    below 26.00 within 24 hours"; range: "the S&P 500 closes within ±1% of 2,071.50 in 5
    sessions". Kinds other than direction are read from the contract when it carries them.
    """
    name = instrument(p.target)
    kind = str(getattr(p, "kind", "direction"))
    side = str(p.direction)
    sessions = max(1, round(p.horizon_hours / 24))
    when = (
        f"within {p.horizon_hours} hours" if sessions <= 2 else f"in {_plural(sessions, 'session')}"
    )
    if horizon_style == "short":
        when = "by the next close" if sessions == 1 else when
    if horizon_style == "title":
        # "VIX Below 26.00 by the Next Close": the call as a title's clause, no verb.
        when = "by the next close" if sessions == 1 else when.replace("within", "in")
        if kind == "range":
            width = getattr(p, "range_pct", None) or 0.0
            where = "within" if side == "inside" else "outside"
            return f"{name} {where} ±{width:g}% of {_num(p.reference_price)} {when}"
        return f"{name} {'above' if side == 'up' else 'below'} {_num(p.line)} {when}"
    if kind == "range":
        width = getattr(p, "range_pct", None) or 0.0
        verb = "closes within" if side == "inside" else "closes outside"
        return f"{name} {verb} ±{width:g}% of {_num(p.reference_price)} {when}"
    where = "above" if side == "up" else "below"
    return f"{name} closes {where} {_num(p.line)} {when}"


# --- what changed since the last dispatch --------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One thing that changed since the last dispatch, with how loudly it speaks."""

    kind: str
    salience: float
    headline: str  # a title clause
    sentence: str  # how the lede says it
    key: str = ""  # the story it is about, if any: said here, not again among the stories


def changes(d: Deliberation, features: Features) -> list[Change]:
    prev = d.previous
    out: list[Change] = []
    if prev is None:
        return out
    for rule in prev.new_rules:
        who = "my own calls" if rule.source == SYNTHESIS else f"{mind_label(rule.source)}'s calls"
        out.append(
            Change(
                "rule_new",
                4.5,
                "A Rule of Mine Benches "
                + ("Me" if rule.source == SYNTHESIS else mind_label(rule.source)),
                f"A rule came into force since my last dispatch: {who}{_rule_scope(rule)} have "
                f"hit {rule.hit_rate:.1%} over {rule.settled} settled calls (95% interval "
                f"{rule.low:.1%} to {rule.high:.1%}), below a coin, so they are no longer made.",
            )
        )
    for rule in prev.retired_rules:
        out.append(
            Change(
                "rule_retired",
                4.0,
                f"{mind_label(rule.source) if rule.source != SYNTHESIS else 'My Own Calls'} Back "
                "on the Desk",
                f"A rule retired since my last dispatch: the calls it stopped{_rule_scope(rule)} "
                f"have climbed back to {rule.hit_rate:.1%} over {rule.settled}, no longer "
                "provably worse than a coin.",
            )
        )
    if prev.settled is not None and prev.prediction is not None and prev.settle_price is not None:
        p = prev.prediction
        was = speak_call(p, "short")
        hit = prev.settled == "hit"
        move = (prev.settle_price / p.reference_price - 1) * 100
        out.append(
            Change(
                "settled_hit" if hit else "settled_miss",
                3.6,
                "My Last Call Came Good" if hit else "My Last Call Missed",
                f"My last call settled today: I said {was}, and it closed at "
                f"{_num(prev.settle_price)} ({_pct(move)}), a {'hit' if hit else 'miss'}.",
            )
        )
    before = {s.mind: s for s in prev.minds}
    for s in d.minds:
        old = before.get(s.mind)
        if old is None or s.status != "ok" or old.status != "ok":
            continue
        if {old.stance, s.stance} == {"bullish", "bearish"}:
            out.append(
                Change(
                    "flip",
                    2.2 + s.confidence * 2,
                    f"{mind_label(s.mind)} Turns {s.stance.title()}",
                    f"{mind_label(s.mind)} changed sides since my last dispatch: {old.stance} "
                    f"then, {s.stance} now at {s.confidence:.0%} confidence.",
                )
            )
    old_stories = {s.key: s for s in prev.stories}
    for story in d.stories:
        was_status = old_stories[story.key].status if story.key in old_stories else None
        if was_status == story.status:
            continue
        what = _story_name(story, features)
        if was_status is None and story.status != "resolved":
            out.append(
                Change(
                    "story_new",
                    2.0,
                    _story_opens(story, features),
                    f"A new story opened today: {what} ({_story_detail(story, features)}).",
                    story.key,
                )
            )
        elif story.status in ("reversing", "resolved", "accelerating"):
            verb = {
                "reversing": "turned: it is reversing",
                "resolved": "is over: resolved",
                "accelerating": "is accelerating",
            }[story.status]
            out.append(
                Change(
                    f"story_{story.status}",
                    2.4 if story.status != "accelerating" else 1.8,
                    f"{title_case(what).replace('Mega-caps', 'Mega-Caps')} "
                    + {"reversing": "Turns", "resolved": "Is Over"}.get(story.status, "Speeds Up"),
                    f"The story of {what} {verb} after {_plural(story.sessions, 'session')} "
                    f"({_story_detail(story, features)}).",
                    story.key,
                )
            )
    return out


def _story_opens(story: Story, features: Features) -> str:
    """A title clause for a story seen for the first time."""
    kind, _, subject = story.key.partition(":")
    name = instrument(subject) if subject else ""
    return {
        "drawdown": f"A Drawdown Opens in {name}",
        "rally": f"A Rally Takes Hold in {name}",
        "fear": f"Fear Arrives, {story.strength:.0f} on the Gauge",
        "inversion": "The Curve Inverts",
        "mega-caps lagging": "The Mega-Caps Fall Behind",
        "oil shock": "An Oil Shock Begins",
        "jobs turning": "Unemployment Turns Up",
    }.get(kind, f"A New Story: {title_case(_story_name(story, features))}")


def _rule_scope(rule: LearnedRule) -> str:
    cuts = []
    if rule.regime != "all":
        cuts.append(f"in {regime(rule.regime)} tapes")
    if rule.horizon != "all":
        cuts.append(f"over {rule.horizon.replace('h', ' hours')}")
    if rule.topic != "all":
        cuts.append(f"on {rule.topic}")
    return (" " + " ".join(cuts)) if cuts else ""


def _story_name(story: Story, features: Features) -> str:
    kind, _, subject = story.key.partition(":")
    name = instrument(subject) if subject else ""
    return {
        "drawdown": f"the drawdown in {name}",
        "rally": f"the rally in {name}",
        "fear": "fear" if subject != "VIX" else "fear in VIX",
        "inversion": "the inverted curve",
        "mega-caps lagging": "the mega-caps lagging",
        "oil shock": "the oil shock",
        "jobs turning": "unemployment turning up",
    }.get(kind, humanize(story.title, features.returns))


def _story_detail(story: Story, features: Features) -> str:
    text = humanize(story.detail, features.returns).replace(" pts", " points")
    text = re.sub(r" \(x[0-9.]+ = [0-9.]+\)", "", text)  # the detector's scaling, not news
    return text.replace("10y-2y", "the 10-year less the 2-year").replace(
        "realised vol", "volatility"
    )


# --- facts on the tape ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """A candidate lead: what the tape said loudest this cycle."""

    kind: str
    salience: float


def facts(features: Features, d: Deliberation) -> list[Fact]:
    move = day_move(features)
    out = [Fact("quiet" if move.size in ("quiet", "unknown") else "move", 0.5)]
    z = abs(move.sigma) if move.sigma is not None else 0.0
    if move.size == "violent":
        out.append(Fact("move", 5.0 + z / 2))
    elif move.size == "big":
        out.append(Fact("move", 3.0 + z / 2))
    elif move.size == "ordinary":
        # A move of a percent or more leads over the slow facts (a calm VIX, a month's trend).
        out.append(Fact("move", 1.0 + z / 4 + (1.0 if abs(move.pct or 0.0) >= 1.0 else 0.0)))
    words = set(features.breadth.label.lower().split("_"))
    if "mega" in words and "down" in words and ({"flat", "up"} & words):
        out.append(Fact("mega_down", 3.2))
    if "mega" in words and "up" in words and ({"flat", "down"} & words):
        out.append(Fact("mega_up", 2.1))
    if features.vix_change_5d is not None and features.vix_change_5d >= 5:
        out.append(Fact("vix_spike", 2.6 + features.vix_change_5d / 5))
    if features.vix is not None and features.vix >= 28:
        out.append(Fact("vix_high", 2.4 + (features.vix - 28) / 5))
    if features.vix is not None and features.vix <= 12.5:
        out.append(Fact("vix_low", 1.6))
    r20 = features.returns_of(features.broad).r20
    if r20 is not None and abs(r20) >= 5:
        out.append(Fact("month", 1.4 + abs(r20) / 10))
    if features.curve_slope is not None and features.curve_slope < 0:
        # An inversion is news when it is new; months into it, it is the background.
        held = max((s.sessions for s in d.stories if s.key.startswith("inversion")), default=1)
        out.append(Fact("inverted", (1.3 + min(1.0, -features.curve_slope)) / held))
    if d.debate == "divergent":
        out.append(Fact("split", 1.2))
    return out


# --- the title -----------------------------------------------------------------------------------


def _lean_words(r: Reading) -> str:
    """The desk's stance as a title phrase; a call says so, a lean says lean, never more."""
    word = {"up": "Higher", "down": "Lower", "none": ""}[r.lean]
    if r.reason == "rule":
        return "but My Own Rule Stops the Call"
    if r.called and r.plain:
        return f"and I'm Calling It {word}"
    return f"and I Lean {word}" if word else "and I Have No Lean"


def _with(r: Reading, up: bool) -> Literal["with", "against", "none"]:
    """Whether the desk's lean goes the way of a move (up=True for a rise)."""
    if r.lean == "none":
        return "none"
    return "with" if (r.lean == "up") == up else "against"


def _move_verb(move: Move, close: float | None = None) -> str:
    """A third-person verb for a title: 'Slips 0.7%', 'Plunges 3.2%', 'Holds 2,093'."""
    if move.size in ("quiet", "unknown"):
        if move.pct is None or abs(move.pct) < 0.005:
            return f"Holds at {close:,.0f}" if close is not None else "Holds Still"
        # The close and the move together: flat weeks do not print the same title twice.
        way = "Edges Up" if move.up else "Edges Down"
        return f"{way} {abs(move.pct):.2f}%" + (f" to {close:,.0f}" if close is not None else "")
    words = {
        "ordinary": ("Gains", "Slips"),
        "big": ("Jumps", "Drops"),
        "violent": ("Surges", "Plunges"),
    }
    pair = words[move.size]
    # Moves cluster (0.6%, 1.7%...): two decimals keep a month of titles apart.
    return f"{pair[0] if move.up else pair[1]} {abs(move.pct or 0.0):.2f}%"


def _title_call(p: Prediction) -> str:
    """The call as a title's clause: "I Call VIX Within ±15% of 28.03 in 5 Sessions"."""
    return title_case(f"I call {speak_call(p, 'title')}")


def _fact_head(fact: Fact, features: Features, d: Deliberation) -> str:
    """The lead fact alone, without the desk's reading: what a title that names a call hangs on."""
    name = instrument(features.broad)
    big = capital(name)
    move = day_move(features)
    close = features.last_close.get(features.broad or "")
    day = f"{big} {_move_verb(move, close)}" if move.pct is not None else f"A Thin Tape on {name}"
    if fact.kind == "mega_down":
        who = _named_megas(features, down=True) or "the Mega-Caps"
        verb = "Slide" if " and " in who or who == "the Mega-Caps" else "Slides"
        return f"{capital(who)} {verb} While {name} {_move_verb(move, close)}"
    if fact.kind == "mega_up":
        who = _named_megas(features, down=False) or "the Mega-Caps"
        verb = "Rise" if " and " in who or who == "the Mega-Caps" else "Rises"
        return f"{capital(who)} {verb} and {name} {_move_verb(move, close)}"
    if fact.kind == "vix_spike" and features.vix_change_5d is not None and features.vix:
        return f"VIX Jumps {features.vix_change_5d:.0f} Points in a Week to {features.vix:.1f}"
    if fact.kind in ("vix_high", "vix_low") and features.vix is not None:
        return f"VIX at {features.vix:.2f} as {name} {_move_verb(move, close)}"
    if fact.kind == "month":
        r20 = features.returns_of(features.broad).r20 or 0.0
        return f"{big} {'Down' if r20 < 0 else 'Up'} {abs(r20):.1f}% in a Month"
    if fact.kind == "inverted" and features.curve_slope is not None:
        return f"The Curve Inverted at {features.curve_slope:+.2f} Points"
    if fact.kind == "split" and move.pct is not None:
        return f"The Minds Split as {name} {_move_verb(move, close)}"
    return day


def _call_joint(p: Prediction, features: Features) -> str:
    """How the call meets the day: "but" when it runs against the day's look, "and" when not.

    A range inside after a big day bets on calm after it; outside after a quiet one bets on a
    break; a side call (threshold, or direction on another instrument) against the day's move.
    """
    move = day_move(features)
    loud = move.size in ("big", "violent") or (features.vix_change_5d or 0.0) >= 5
    kind = str(p.kind)
    if kind == "range":
        against = loud if p.direction == "inside" else not loud
    else:
        # A side call meets its own instrument's day (VIX rising on a falling index is with it).
        own = features.returns_of(p.target).r1
        day = own if own is not None else move.pct
        against = day is not None and abs(day) >= 0.5 and (p.direction == "up") != (day > 0)
    return ", but " if against else ", and "


def _called_title(
    lead: Fact | Change, features: Features, d: Deliberation, p: Prediction
) -> list[str]:
    """Titles that name a call other than a plain direction on the index, longest first."""
    call = _title_call(p)
    joint = _call_joint(p, features)
    move = day_move(features)
    close = features.last_close.get(features.broad or "")
    if isinstance(lead, Change):
        day = (
            f" as {instrument(features.broad)} {_move_verb(move, close)}"
            if move.pct is not None
            else ""
        )
        head = f"{lead.headline}{day}"
    else:
        head = _fact_head(lead, features, d)
    short = (
        f"{capital(instrument(features.broad))} {_move_verb(move, close)}"
        if move.pct is not None
        else ""
    )
    return [
        capital(head) + joint + call,
        *([short + joint + call] if short else []),
        call,
    ]


def _fact_title(fact: Fact, features: Features, d: Deliberation, r: Reading) -> str:
    name = instrument(features.broad)
    big = capital(name)
    move = day_move(features)
    calling = r.called and r.plain
    close = features.last_close.get(features.broad or "")
    if fact.kind == "move" and move.pct is not None and move.size in ("big", "violent"):
        way = _with(r, move.up)
        noun = {"violent": ("Surge", "Plunge"), "big": ("Jump", "Drop")}[move.size][
            0 if move.up else 1
        ]
        head = f"{big}'s {abs(move.pct):.2f}% {noun}"
        if way == "with":
            return head + (
                " Has Further to Go, and I'm Calling It" if calling else " Isn't Finished"
            )
        if way == "against":
            tired = "Looks Stretched" if move.up else "Looks Overdone"
            return head + f" {tired}" + (", and I'm Calling the Turn" if calling else " to Me")
        if d.debate == "divergent":
            return f"{big} {_move_verb(move, close)} and the Minds Split on What It Means"
        return f"{big} {_move_verb(move, close)}, and Nobody Has an Edge on the Next Day"
    if fact.kind == "move" and move.pct is not None:
        way = _with(r, move.up)
        head = f"{big} {_move_verb(move, close)}"
        if way == "with":
            return head + (", and I'm Calling More" if calling else ", and the Tape Backs the Lean")
        if way == "against":
            doubt = "the Dip Doesn't Worry Me" if move.up is False else "I Don't Trust It"
            return head + (", and I'm Calling It Back" if calling else f", and {doubt}")
        if abs(move.pct or 0.0) < 1.0 and abs(move.sigma or 0.0) < 1.0:
            return head + ": More Noise Than News"
        return head + ", and No Edge on What Comes Next"
    if fact.kind == "mega_down":
        who = _named_megas(features, down=True) or "the Mega-Caps"
        verb = "Slide" if " and " in who or who == "the Mega-Caps" else "Slides"
        head = f"{capital(who)} {verb} While {name} {_move_verb(move, close)}"
        if r.lean == "down" and calling:
            # Two named mega-caps and a close make this the longest title: the close gives way.
            title = f"{head}: the Mega-Caps Are Lying to the Index, and I'm Calling It Lower"
            if len(title) > TITLE_MAX:
                title = (
                    f"{capital(who)} {verb} While {name} {_move_verb(move)}: the Mega-Caps Are "
                    "Lying to the Index, and I'm Calling It Lower"
                )
            return title
        if r.lean == "down":
            return f"{head}: the Mega-Caps Are Lying to the Index"
        if r.lean == "up":
            if calling:
                return f"{head}: I Side With the Index and I'm Calling It Higher"
            return f"{head}, and I Side With the Index"
        return f"{head}, and I Can't Yet Tell Which One Is Lying"
    if fact.kind == "mega_up":
        who = _named_megas(features, down=False) or "the Mega-Caps"
        verb = "Rise" if " and " in who or who == "the Mega-Caps" else "Rises"
        head = f"{capital(who)} {verb} and {name} {_move_verb(move, close)}"
        tail = {
            "down": ", and Narrow Rallies Worry Me",
            "up": ", and I'll Take It",
            "none": ": a Narrow Tape",
        }[r.lean]
        return head + tail
    if fact.kind == "vix_spike" and features.vix_change_5d is not None and features.vix:
        head = f"VIX Jumps {features.vix_change_5d:.0f} Points in a Week to {features.vix:.1f}"
        tail = {
            "up": ": Fear Like This Tends to Exhaust Itself",
            "down": ", and the Fear Looks Earned",
            "none": ", and I Won't Guess Where It Breaks",
        }[r.lean]
        return head + tail
    if fact.kind == "vix_high" and features.vix is not None:
        head = f"VIX at {features.vix:.1f}"
        if move.up and r.lean != "up":
            return head + ": the Rally That Doesn't Believe Itself"
        tail = {
            "up": ": Fear This High Has Marked Lows Before",
            "down": ": Fear Is Doing the Selling",
            "none": ": Fear Is the Weather, Not the Forecast",
        }[r.lean]
        return head + tail
    if fact.kind == "vix_low" and features.vix is not None:
        head = f"VIX at {features.vix:.2f}"
        tail = {
            "down": ": Nobody Is Paying for Insurance, and I Lean Lower",
            "up": ": Cheap Insurance, and Calm Can Stay Calm",
            "none": ": Nobody Is Paying for Insurance",
        }[r.lean]
        return head + tail
    if fact.kind == "month":
        r20 = features.returns_of(features.broad).r20 or 0.0
        head = f"{big} {'Down' if r20 < 0 else 'Up'} {abs(r20):.1f}% in a Month"
        way = _with(r, r20 > 0)
        if way == "with":
            return head + ", and I Don't See the Turn Yet"
        if way == "against":
            return head + (": the Selling Looks Tired" if r20 < 0 else ": the Rally Looks Tired")
        today = (
            f"a {abs(move.pct):.1f}% {'Gain' if move.up else 'Slip'} Today"
            if move.pct is not None and move.size not in ("quiet", "unknown")
            else "a Flat Day Today"
        )
        return head + f", {today}, and No Edge on Tomorrow"
    if fact.kind == "inverted" and features.curve_slope is not None:
        head = f"The Curve Inverted at {features.curve_slope:+.2f} Points"
        tail = {
            "down": ", and Stocks Are Starting to Listen",
            "up": ", and Stocks Don't Care Yet",
            "none": ", and Still No Way to Time It",
        }[r.lean]
        return head + tail
    if fact.kind == "split":
        bulls = [mind_label(s.mind) for s in d.minds if s.status == "ok" and s.stance == "bullish"]
        bears = [mind_label(s.mind) for s in d.minds if s.status == "ok" and s.stance == "bearish"]
        head = (
            f"{' and '.join(bulls)} Against {' and '.join(bears)} as {name} "
            f"{_move_verb(move, close)}"
        )
        if r.lean == "none":
            return head + ": Nobody Wins the Argument"
        side = bulls if r.lean == "up" else bears
        return head + f": I Side With {' and '.join(side)}"
    close = features.last_close.get(features.broad or "")
    if close is not None:
        tail = {
            "up": ", and the Lean Is Still Higher",
            "down": ", but the Lean Is Lower",
            "none": ": a Quiet Day I Won't Dress Up",
        }[r.lean]
        return f"{big} {_move_verb(move, close)}" + tail
    return f"A Thin Tape on {name}"


def _change_title(change: Change, features: Features, d: Deliberation, r: Reading) -> str:
    move = day_move(features)
    close = features.last_close.get(features.broad or "")
    day = (
        f" as {instrument(features.broad)} {_move_verb(move, close)}"
        if move.pct is not None
        else ""
    )
    if change.kind == "flip":
        mind = change.headline.split(" Turns ")[0]
        joins = any(
            mind_label(s.mind) == mind and _side(s) == r.lean for s in d.minds if s.status == "ok"
        )
        tail = (
            "and I Turn With It"
            if joins
            else ("but I Don't Follow" if r.lean != "none" else "and I Still See No Edge")
        )
        return f"{change.headline}{day}, {tail}"
    return f"{change.headline}{day}, {_lean_words(r)}"


def _title(lead: Fact | Change, features: Features, d: Deliberation, r: Reading) -> str:
    """The thesis in at most TITLE_MAX characters: a shorter whole title, never a cut one."""
    if r.called and not r.plain and d.prediction is not None:
        options = _called_title(lead, features, d, d.prediction)
    else:
        if isinstance(lead, Change):
            title = _change_title(lead, features, d, r)
        else:
            title = _fact_title(lead, features, d, r)
        if r.reason == "rule" and "Rule" not in title:
            title += ", but My Own Rule Stops the Call"
        move = day_move(features)
        close = features.last_close.get(features.broad or "")
        short = capital(instrument(features.broad)) + (
            f" {_move_verb(move, close)}" if move.pct is not None else ""
        )
        options = [capital(title), f"{short}, {_lean_words(r)}"]
        if r.called and d.prediction is not None and not re.search(r"Calling|I Call", title):
            # A lead whose tail reads the tape but not the call (a split, a VIX level, a mind
            # turning): the call is added in words, or the title names it in full.
            word = "Higher" if r.lean == "up" else "Lower"
            named = f"I Call {instrument(d.prediction.target)} {word}"
            joint = ": " if ":" not in title else ", and " if ", and" not in title else "; "
            options = [
                f"{capital(title)}{joint}{named}",
                *_called_title(lead, features, d, d.prediction),
                f"{short}, {_lean_words(r)}",
            ]
    return next((t for t in options if len(t) <= TITLE_MAX), options[-1])


def _named_megas(features: Features, *, down: bool) -> str:
    moves = [(s, features.returns_of(s).r1) for s in features.megas]
    known = sorted(
        ((s, r) for s, r in moves if r is not None and ((r < 0) if down else (r > 0))),
        key=lambda x: (x[1] if down else -x[1], x[0]),
    )
    names = [instrument(s) for s, _ in known[:2]]
    return " and ".join(names)


# --- the lede ------------------------------------------------------------------------------------


def _lede_fact(fact: Fact, features: Features, d: Deliberation) -> str:
    name = instrument(features.broad)
    move = day_move(features)
    b = features.breadth
    vol = features.realized_vol_20d
    sigma = ""
    if move.sigma is not None and abs(move.sigma) >= 0.8:
        sigma = f", {abs(move.sigma):.1f} times its typical daily move over the last month"
    elif move.sigma is not None:
        sigma = f", well inside the month's typical daily swing (volatility {vol:.0f}%)"
    if fact.kind == "move" and move.pct is not None:
        lead = f"{name} {move.verb()} {abs(move.pct):.2f}% today{sigma}."
        if move.size == "violent":
            return (
                lead + " Days like this are information whether or not anyone can say what it "
                "means; the question is whether the next one follows or fades."
            )
        if move.size == "big":
            return (
                lead
                + " That is a big day by the tape's own yardstick"
                + (f" (20-day volatility {vol:.0f}%)" if vol else "")
                + ", and it deserves an argument, not a shrug."
            )
        if move.sigma is not None and abs(move.sigma) >= 1:
            return lead + " More than the tape's usual day, less than a signal by itself."
        return lead + " An ordinary move, but not nothing."
    if fact.kind == "mega_down":
        fell = _named_megas(features, down=True) or "the mega-caps"
        index = f"{name} {_pct(move.pct)}" if move.pct is not None else name
        return (
            f"The index says one thing and its heaviest names say another: {index}, while "
            f"{b.mega_down} of {b.mega_count} mega-caps fell"
            f"{f' (on average {_pct(b.mega_mean_r1)})' if b.mega_mean_r1 is not None else ''}, "
            f"{fell} among them."
        )
    if fact.kind == "mega_up":
        return (
            f"{name} went nowhere ({_pct(move.pct or 0.0)}) while {b.mega_up} of "
            f"{b.mega_count} mega-caps rose: a narrow tape, a few names holding up the rest."
        )
    if fact.kind == "vix_spike" and features.vix_change_5d is not None and features.vix is not None:
        day = (
            f", and {instrument(features.broad)} {move.verb()} {abs(move.pct):.2f}% today"
            if move.pct is not None
            else ""
        )
        return (
            f"VIX rose {features.vix_change_5d:.1f} points in five sessions to "
            f"{features.vix:.2f}{day}. Fear that arrives this fast is usually a reaction, and "
            "reactions overshoot; the question is whether this one already has."
        )
    if fact.kind == "vix_high" and features.vix is not None:
        day = f"{name} {_pct(move.pct)} on the day" if move.pct is not None else name
        if move.up:
            return (
                f"I keep coming back to one number: VIX at {features.vix:.2f}. {day}, and the "
                "fear gauge still above 28: a market buying stocks with one hand and insurance "
                "with the other."
            )
        return (
            f"VIX at {features.vix:.2f}, {day}. Fear is not a forecast, but at this level it "
            "is the weather."
        )
    if fact.kind == "vix_low" and features.vix is not None:
        return (
            f"VIX at {features.vix:.2f} is the number that bothers me. Insurance this cheap "
            "means the crowd has stopped imagining a bad week."
        )
    if fact.kind == "month":
        r20 = features.returns_of(features.broad).r20 or 0.0
        today = f" ({_pct(move.pct)} today)" if move.pct is not None else ""
        word = "down" if r20 < 0 else "up"
        return (
            f"{name} is {word} {abs(r20):.1f}% over 20 sessions{today}. A month like that "
            "sets the tone for a day more than the day sets it for the month."
        )
    if fact.kind == "inverted" and features.curve_slope is not None:
        return (
            f"The 10-year yields {abs(features.curve_slope):.2f} points "
            f"{'less' if features.curve_slope < 0 else 'more'} than the 2-year. An inverted "
            "curve is the slowest signal I watch and the hardest to time."
        )
    if fact.kind == "split":
        ok = [s for s in d.minds if s.status == "ok" and s.stance != "neutral"]
        sides = ", ".join(
            f"{mind_label(s.mind)} says {'higher' if s.stance == 'bullish' else 'lower'} at "
            f"{s.confidence:.0%}"
            for s in ok
        )
        today = f" on a {_pct(move.pct)} day" if move.pct is not None else ""
        return (
            f"{sides}{today}: the minds looked at the same tape and came down on opposite "
            "sides. That disagreement is the most honest thing in this dispatch, so I start "
            "with it."
        )
    if move.pct is not None:
        return (
            f"{name} {move.verb()} today ({_pct(move.pct)}), inside its usual range"
            f"{f' at 20-day volatility of {vol:.0f}%' if vol else ''}. A quiet session, and "
            "I would rather say so than invent a story."
        )
    return "The tape is thin on facts this cycle, and I would rather say so than invent a story."


# --- the tape ------------------------------------------------------------------------------------


def _tape(features: Features) -> str:
    name = instrument(features.broad)
    r = features.returns_of(features.broad)
    move = day_move(features)
    parts: list[str] = []
    if features.broad and move.pct is not None:
        close = features.last_close.get(features.broad)
        at = f" at {_num(close)}" if close is not None else ""
        windows = [
            f"{_pct(x, 1)} over {n} sessions" for x, n in ((r.r5, 5), (r.r20, 20)) if x is not None
        ]
        parts.append(
            f"{name} closed{at}, {_pct(move.pct)} on the day"
            + (f" and {' and '.join(windows)}" if windows else "")
        )
    for sym in (features.tech, features.small):
        if sym and sym != features.broad and features.returns_of(sym).r1 is not None:
            parts.append(f"{instrument(sym)} {_pct(features.returns_of(sym).r1 or 0.0)}")
    sentences = ["; ".join(parts) + "."] if parts else []
    drift = _drift(features)
    if drift:
        sentences.append(drift)
    if features.vix is not None:
        change = (
            f", {features.vix_change_5d:+.1f} points on the week"
            if features.vix_change_5d is not None
            else ""
        )
        sentences.append(f"VIX {features.vix:.2f}{change}.")
    if features.curve_slope is not None:
        sentences.append(f"The 10-year less the 2-year: {features.curve_slope:+.2f} points.")
    if features.realized_vol_20d is not None:
        sentences.append(f"Realised volatility over 20 sessions: {features.realized_vol_20d:.1f}%.")
    if features.regime != "unknown":
        sentences.append(
            f"I read it as a {regime(features.regime)} tape ({features.regime_score:.2f} on a "
            "0-1 scale of how clearly)."
        )
    return " ".join(sentences) if sentences else "The tape gave me nothing I could price."


def _drift(features: Features) -> str:
    """The month's direction in a sentence, unless a month-sized move already leads."""
    r = features.returns_of(features.broad)
    if r.r20 is None or abs(r.r20) >= 5:
        return ""
    if abs(r.r20) < 1:
        return "Over a month the index has gone nowhere, so there is no drift to lean on."
    way = "up" if r.r20 > 0 else "down"
    if r.r5 is not None and (r.r5 > 0) != (r.r20 > 0) and abs(r.r5) >= 0.5:
        return (
            f"The month's drift is {way} ({_pct(r.r20, 1)}), but the last week went the other "
            "way: the tape is turning or pausing, and I cannot yet say which."
        )
    return f"The month's drift is {way} ({_pct(r.r20, 1)}), and the last week has not broken it."


# --- the argument --------------------------------------------------------------------------------


def _record(d: Deliberation, source: str, reg: str) -> tuple[ScoreLine | None, str]:
    """The line worth quoting (the regime's when it has enough calls) and its scope in words."""
    line = d.record.line(source, reg)
    if _settled(line) >= MIN_REGIME_CALLS:
        return line, f"in {regime(reg)} tapes"
    overall = d.record.line(source, "all")
    if _settled(overall):
        return overall, "overall"
    return None, ""


def _record_words(line: ScoreLine, scope: str) -> str:
    n = _settled(line)
    if n < MIN_REGIME_CALLS:
        return f"{line.hits} of {n} {scope}, too few to lean on"
    return f"{line.hits / n:.0%} over {_plural(n, 'settled call')} {scope}"


def _evidence(output: MindOutput | None, features: Features, n: int = 1) -> str:
    """A mind's strongest evidence in its own words, names put in; its verdict line dropped."""
    if output is None or not output.argument:
        return ""
    sentences = re.split(r"(?<=[.!?])\s+", output.argument.strip())
    keep = [
        s
        for s in sentences
        if not s.startswith(("Leaning ", "No lean", "Not known", "The desk dropped"))
    ][:n]
    text = humanize(" ".join(keep), features.returns)
    text = text.replace("10y-2y", "the 10-year less the 2-year").replace(" pts", " points")
    return _sentences(text)


def _pull(s: MindSummary) -> float:
    """How hard a mind pulls the pool: its weight times its confidence."""
    return s.weight * s.confidence


def _side(s: MindSummary) -> Literal["up", "down", "none"]:
    if s.status != "ok":
        return "none"
    return "up" if s.stance == "bullish" else "down" if s.stance == "bearish" else "none"


def _argument(d: Deliberation, features: Features, r: Reading) -> list[str]:
    """Who the desk sides with and why; the strongest objection, named and answered."""
    reg = features.regime
    outputs = {o.mind: o for o in d.outputs}
    present = [s for s in d.minds if s.status == "ok"]
    leaning = [s for s in present if _side(s) != "none"]
    paragraphs: list[str] = []
    if not leaning:
        names = ", ".join(mind_label(s.mind) for s in present) or "nobody"
        views = [x for x in (_evidence(outputs.get(s.mind), features) for s in present) if x]
        paragraphs.append(
            f"Nobody leans far enough to side with: {names} "
            f"{'all come out near a coin' if len(present) > 1 else 'comes out near a coin'}. "
            + (f"The nearest thing to an argument: {views[0]}" if views else "")
        )
    else:
        side = r.lean if r.lean != "none" else _side(max(leaning, key=_pull))
        allies = [s for s in leaning if _side(s) == side] or leaning
        champion = max(allies, key=lambda s: (_pull(s), s.mind))
        others = [s for s in leaning if _side(s) != _side(champion)]
        line, scope = _record(d, champion.mind, reg)
        why = _evidence(outputs.get(champion.mind), features, 2)
        rec = (
            f" Its record: {_record_words(line, scope)}, weight {champion.weight:.2f} in my pool."
            if line is not None
            else f" It has no settled record yet; its weight is {champion.weight:.2f}."
        )
        verb = "I side with" if r.called or r.lean != "none" else "If I side with anyone, it is"
        paragraphs.append(
            f"{verb} {mind_label(champion.mind)}, {champion.stance} at "
            f"{champion.confidence:.0%} confidence. {why}{rec}"
        )
        if others:
            objector = max(others, key=lambda s: (_pull(s), s.mind))
            paragraphs.append(_objection(d, features, champion, objector, outputs))
        else:
            friends = [s for s in allies if s is not champion]
            if friends:
                f = friends[0]
                said = _evidence(outputs.get(f.mind), features)
                paragraphs.append(
                    f"{mind_label(f.mind)} agrees, {f.stance} at {f.confidence:.0%}"
                    + (f": {_lower_first(said)}" if said else ".")
                    + " Agreement is not evidence by itself, since the minds read overlapping "
                    "numbers, but nobody argues the other side."
                )
            quiet = [s for s in present if _side(s) == "none"]
            if quiet and not friends:
                q = quiet[0]
                said = _evidence(outputs.get(q.mind), features)
                paragraphs.append(
                    f"Nobody argues the other side, which is not the same as being right. "
                    f"{mind_label(q.mind)} has no lean"
                    + (f": {_lower_first(said)}" if said else ".")
                )
    absent = [s for s in d.minds if s.status != "ok"]
    if absent:
        parts = [
            f"{mind_label(s.mind)} {'did not show up' if s.status == 'absent' else 'abstained'}"
            f" ({humanize(s.reason or 'no reason given', features.returns)})"
            for s in absent
        ]
        paragraphs.append(
            "; ".join(parts) + ". An empty chair is a signal too: the pool above is "
            "what the others said."
        )
    return paragraphs


# How shared.news quotes a headline inside a mind's argument: untrusted text, attributed.
HEADLINE_MARK = "headline (untrusted text"


def _wire(d: Deliberation, features: Features, already: str) -> list[str]:
    """The headline that moved a mind, quoted as the mind quoted it (source and date, marked as
    untrusted text), unless the argument above already carries it.

    A mind's argument leads with its strongest evidence, so a headline in its first sentence
    is one that moved it; a headline further down was read and set aside.
    """
    moved: list[str] = []
    for output in d.outputs:
        if output.status != "ok" or output.stance == "neutral" or not output.argument:
            continue
        first = re.split(r"(?<=[.!?])\s+", output.argument.strip(), maxsplit=1)[0]
        if HEADLINE_MARK not in first:
            continue
        sentence = _sentences(humanize(first, features.returns))
        quoted = re.search(r'"[^"]+"', sentence)
        if (quoted.group(0) if quoted else sentence) in already:
            continue
        moved.append(f"The wire moved {mind_label(output.mind)}: {_lower_first(sentence)}")
    if not moved:
        return []
    return [" ".join(moved) + " A headline is a claim, not a fact; I weigh it as the mind did."]


def _objection(
    d: Deliberation,
    features: Features,
    champion: MindSummary,
    objector: MindSummary,
    outputs: dict[str, MindOutput],
) -> str:
    reg = features.regime
    said = _evidence(outputs.get(objector.mind), features)
    if HEADLINE_MARK in said:
        # A headline alone is thin as an objection: give the mind's next piece of evidence too.
        said = _evidence(outputs.get(objector.mind), features, 2)
    head = (
        f"The strongest objection is {mind_label(objector.mind)}'s, {objector.stance} at "
        f"{objector.confidence:.0%}" + (f": {_lower_first(said)}" if said else ".")
    )
    mine, _ = _record(d, champion.mind, reg)
    theirs, their_scope = _record(d, objector.mind, reg)
    thick = (
        theirs is not None
        and mine is not None
        and min(_settled(theirs), _settled(mine)) >= MIN_REGIME_CALLS
    )
    pull = (
        f"{objector.weight:.2f} weight at {objector.confidence:.0%} against "
        f"{champion.weight:.2f} at {champion.confidence:.0%}"
    )
    their_n, my_n = _settled(theirs), _settled(mine)
    if thick and theirs is not None and mine is not None:
        rate_t = theirs.hits / their_n
        rate_m = mine.hits / my_n
        if rate_t < rate_m - 0.005:
            answer = (
                f"My answer is its record: {_record_words(theirs, their_scope)}, against "
                f"{rate_m:.0%} for {mind_label(champion.mind)}, and the pool weighs them "
                f"accordingly ({pull})."
            )
        else:
            answer = (
                f"Its record is no worse ({_record_words(theirs, their_scope)}), so I do not "
                f"dismiss it; it loses on conviction, not on record ({pull})."
            )
    elif theirs is not None and their_n >= MIN_REGIME_CALLS:
        answer = (
            f"Its record is the longer one ({_record_words(theirs, their_scope)}), against "
            f"{my_n} settled for {mind_label(champion.mind)}: I go with conviction here, and I "
            f"know it is the weaker footing ({pull})."
        )
    elif theirs is not None:
        answer = (
            f"Its record is too thin to settle it ({theirs.hits} of {their_n}), so the argument "
            f"is decided by conviction: {pull}."
        )
    else:
        answer = f"It has no settled record yet, so it is heard, not followed ({pull})."
    raw, cal = d.raw_probability_up, d.probability_up
    if raw is not None and cal is not None and (raw - 0.5) * (cal - 0.5) < 0:
        answer += (
            " And my own record turns the minds' pool around: leans like today's have lost "
            f"often enough that {100 * raw:.1f}% becomes {100 * cal:.1f}% once recalibrated."
        )
    return f"{head} {answer}"


def _tape_misleads(d: Deliberation, features: Features, r: Reading) -> list[str]:
    """When the call runs against the tape's look, say why the tape misleads (a direction call
    on the index; a call of another kind says what it bets on in _the_call)."""
    if not r.called or not r.plain or d.prediction is None:
        return []
    move = day_move(features)
    r5 = features.returns_of(features.broad).r5
    looks_down = (move.pct is not None and move.size in ("big", "violent") and not move.up) or (
        r5 is not None and r5 <= -2
    )
    looks_up = (move.pct is not None and move.size in ("big", "violent") and move.up) or (
        r5 is not None and r5 >= 2
    )
    up = d.prediction.direction == "up"
    if not ((up and looks_down) or (not up and looks_up)):
        return []
    look = "bearish" if up else "bullish"
    reasons = []
    raw, cal = d.raw_probability_up, d.probability_up
    if raw is not None and cal is not None and (raw - 0.5) * (cal - 0.5) < 0:
        reasons.append(
            f"the minds read it {look}, and {look} reads from these minds have lost often "
            "enough that my record turns them around"
        )
    if d.base_rate_up is not None:
        reasons.append(
            f"{instrument(features.broad)} has closed higher after "
            f"{d.base_rate_up:.0%} of sessions in the history I know"
            if up
            else f"{instrument(features.broad)} has closed lower after "
            f"{1 - d.base_rate_up:.0%} of sessions in the history I know"
        )
    sd5 = (features.realized_vol_20d or 0.0) * math.sqrt(5 / TRADING_DAYS)
    if r5 is not None and sd5 > 0 and abs(r5) / sd5 >= 1.5:
        reasons.append(
            f"the week's {_pct(r5, 1)} is {abs(r5) / sd5:.1f} sd, stretched enough to give "
            "some back"
        )
    because = "; ".join(reasons) or "the tape's look is not what my record rewards"
    return [
        f"The tape looks {look}, and I am calling {'up' if up else 'down'} anyway. Why the "
        f"look misleads: {because}."
    ]


def _the_call(d: Deliberation, features: Features, r: Reading) -> list[str]:
    """A call that is not a direction on the index: what it bets on, and why it is not the
    argument's lean restated (the minds argue direction; the menu chose this call)."""
    p = d.prediction
    if not r.called or r.plain or p is None:
        return []
    name = instrument(p.target)
    move = day_move(features)
    loud = move.size in ("big", "violent") or (features.vix_change_5d or 0.0) >= 5
    kind = str(p.kind)
    words = speak_call(p)
    # A rough tape without a loud day (VIX in the mid-20s, a month of 25% volatility) is not calm.
    rough = (features.vix or 0.0) >= 25 or (features.realized_vol_20d or 0.0) >= 25
    tape = "loud" if loud else "rough" if rough else "calm"
    if kind == "range":
        bet = {
            ("inside", "loud"): "a bet that the sessions after a day this loud are quieter",
            ("inside", "rough"): "a bet that this rough tape keeps settling",
            ("inside", "calm"): "a bet that this calm holds",
            ("outside", "loud"): "a bet that the swings go on, whichever way",
            ("outside", "rough"): "a bet that this rough tape swings again, whichever way",
            ("outside", "calm"): "a bet that this calm breaks, whichever way",
        }[(str(p.direction), tape)]
        lead = f"My call is on size, not direction: {words}, {bet}"
    elif kind == "threshold":
        lead = f"My call is on a level, not on the minds' lean: {words}"
        lead += _against_the_run(p, features)
    else:
        lead = f"My call is on {name}, not on {instrument(features.broad)}: {words}"
        lead += _against_the_run(p, features)
    odds = (
        f" ({p.confidence:.0%} by my calibration, {p.naive_probability:.0%} for a random walk)."
        if p.naive_probability is not None
        else "."
    )
    return [lead + odds]


def _against_the_run(p: Prediction, features: Features) -> str:
    """Why a direction or threshold call goes against its instrument's last five sessions, when
    it does: the stretch the calibration weighs (a volatility index's runs unwind, and a level
    beyond a stretched index is likelier back toward where it came from)."""
    r = features.returns_of(p.target)
    z = r.stretch()
    if r.r5 is None or abs(z) < 1.0 or (z > 0) == (p.direction == "up"):
        return ""
    verb = "rose" if z > 0 else "fell"
    return (
        f", against its run: it {verb} {abs(r.r5):.1f}% in five sessions, {abs(z):.1f} "
        "standard deviations of its usual five-session move, and runs like that tend to unwind"
    )


def _since(lead: Fact | Change, news: list[Change]) -> str:
    """What else changed, in at most two sentences; a second new story is not announced as new
    twice in a row."""
    said: list[str] = []
    opened = isinstance(lead, Change) and lead.kind == "story_new"
    for c in news[:2]:
        text = c.sentence
        if c.kind == "story_new":
            if opened:
                text = text.replace("A new story opened today: ", "Another opened beside it: ", 1)
            opened = True
        said.append(text)
    return " ".join(said)


# --- what the desk refuses, and what stops it ----------------------------------------------------


def _refusal(d: Deliberation, features: Features, r: Reading) -> str:
    reg = features.regime
    own, scope = _record(d, SYNTHESIS, reg)
    record = (
        f"My own record: {_record_words(own, scope)}"
        + (
            # A record that ties or trails the base rate has no edge, and says so plainly.
            f", Brier skill {own.brier_skill:+.3f} against always quoting the base rate"
            + (": no edge over it yet" if own.brier_skill <= 0 else "")
            if own.brier_skill is not None
            else ""
        )
        + "."
        if own is not None
        else ""
    )
    stopped = [w for w in d.withheld if w.prediction.source != SYNTHESIS]
    rule_words = ""
    if stopped:
        w = stopped[0]
        rule_words = (
            f" I am also not letting {mind_label(w.prediction.source)}'s "
            f"{'up' if w.prediction.direction == 'up' else 'down'} call through: "
            + _rule_words(w.rule, d)
            + " It is scored in the shadow, never published."
        )
    if r.reason == "call" and d.prediction is not None:
        p = d.prediction
        base = (
            f" against a base rate of {p.base_rate:.0%} for that outcome"
            if p.base_rate is not None
            else ""
        )
        if p.base_rate is not None and p.confidence < p.base_rate:
            # The menu calls the likelier side even when it is less likely than usual: say so.
            base += ", rarer than usual but likelier than not"
        if not r.plain and d.probability_up is not None:
            # The minds argued direction; the menu chose another call: say why not direction.
            return (
                f"What I will not do is call {instrument(features.broad)}'s direction on the "
                f"minds' {100 * d.probability_up:.1f}% for a higher close. This call is "
                f"{p.confidence:.0%}{base.replace(' for that outcome', '')}. " + record + rule_words
            ).strip()
        return (
            f"What I will not do is dress this up: it is a {p.confidence:.0%} call{base}, "
            "and I size my words to it. " + record + rule_words
        ).strip()
    if r.reason == "rule":
        w = next(w for w in d.withheld if w.prediction.source == SYNTHESIS)
        return (
            f"I had a {'higher' if w.prediction.direction == 'up' else 'lower'} call ready, "
            f"and I am not making it: {_rule_words(w.rule, d)} The withheld call is scored in "
            "the shadow, so the rule can retire itself if it stops being right. " + record
        ).strip()
    if r.reason == "calibrating" and d.recalibration is not None:
        rc = d.recalibration
        lean = {"up": "higher", "down": "lower", "none": "either way"}[r.lean]
        prob = (
            f"The minds' pool puts a higher close at {100 * (d.raw_probability_up or 0.5):.1f}%"
            if d.raw_probability_up is not None
            else "The minds' pool is a coin"
        )
        left = rc.minimum - rc.n
        if r.lean == "none":
            stance = "There is no lean worth the name, and even a lean would not be a call yet"
        elif left <= 10:
            stance = f"My lean is {lean}, and it stays a lean for {_plural(left, 'more cycle')}"
        else:
            stance = f"Until then my lean {lean} is a lean, not a call"
        return (
            f"{prob}. I refuse to turn a pool into a call before I know how far to trust it: "
            f"I recalibrate it on its own settled forecasts, and {rc.n} of the {rc.minimum} "
            f"I need have settled. {stance}. Each cycle's pool is itself a forecast, settled "
            "on the next close: that is how the count grows. " + record + rule_words
        ).strip()
    if r.reason == "edge":
        stderr = d.probability_stderr or 0.0
        chance = d.probability_up or 0.5
        calibrated = d.recalibration is not None and d.recalibration.ready
        whose = "My calibrated" if calibrated else "The minds' pooled"
        return (
            f"{whose} chance of a higher close is {100 * chance:.1f}% against a "
            f"reference of {100 * r.reference:.1f}%: an edge of {100 * r.edge:+.1f} points, "
            + (
                f"inside my calibration's own error of ±{100 * stderr:.1f}. "
                if stderr
                else "too small to call. "
            )
            + "I will not call an edge smaller than my uncertainty about it. "
            + record
            + rule_words
        ).strip()
    if r.reason == "blind":
        return (
            "No mind gave me a view, so there is nothing to weigh, and I will not guess. " + record
        ).strip()
    return (
        f"I have no price for {instrument(features.broad)} to be judged on, and a call nobody "
        "can settle is not a call. " + record
    ).strip()


def _closest(d: Deliberation, features: Features) -> str:
    """On an abstention from the menu of calls, the candidate that came closest, in words."""
    c = getattr(d, "closest", None)
    if c is None:
        return ""
    considered = int(getattr(d, "considered", 0) or 0)
    wording = humanize(str(c.wording), features.returns)
    wording = re.sub(r"\b(\d+)h\b", r"\1 hours", wording)
    remains = max(0.0, abs(float(c.edge)) - float(c.stderr))
    of = f", of the {considered} I weighed" if considered > 1 else ""
    return (
        f"The call that came closest{of}: {wording}, at {float(c.probability):.1%} against its "
        f"base rate of {float(c.base_rate):.1%} (a random walk says "
        f"{float(c.naive_probability):.1%}). My calibration is good to ±{float(c.stderr):.1%}, "
        f"so {remains:.1%} of edge remains, and that is not enough to publish."
    )


def _rule_words(rule_id: str, d: Deliberation) -> str:
    """A rule in words from its id and, when the applied list carries it, its evidence."""
    source, _, rest = rule_id.partition("|")
    detail = next((a for a in d.rules_applied if a.startswith(f"{source} calls")), "")
    evidence = ""
    m = re.search(r": ([0-9.]+) over ([0-9]+) \(95% ([0-9.]+)-([0-9.]+)\)", detail)
    if m:
        evidence = (
            f" ({float(m.group(1)):.1%} over {m.group(2)} settled calls, 95% interval "
            f"{float(m.group(3)):.1%} to {float(m.group(4)):.1%})"
        )
    scope = rest.split("#")[0]
    cut = " ".join(
        f"in {regime(part)} tapes"
        if part in ("risk_on", "risk_off", "chop", "crisis", "trending")
        else f"over {part}"
        if part.endswith("h")
        else ""
        for part in scope.split("|")
        if part and part != "all"
    ).strip()
    who = "my own calls" if source == SYNTHESIS else f"{mind_label(source)}'s calls"
    return f"my learned rule on {who}{' ' + cut if cut else ''} stops it{evidence}."


# --- missing data, said once ---------------------------------------------------------------------


def _gaps(d: Deliberation, features: Features) -> list[str]:
    """What could not be seen, grouped and in words; each thing said once."""
    said: dict[str, None] = {}
    for item in d.missing:
        low = item.lower()
        if "news" in low:
            said["no news this cycle"] = None
        elif "broad fallback" in low:
            # The index the desk reads changed: worth a sentence in full, in names.
            detail = item.split("(", 1)[-1].split(" (preference")[0].rstrip(")")
            said[humanize(detail, features.returns)] = None
        elif low.startswith("the ") and "feed" in low:
            said[humanize(item[:100], features.returns)] = None
        elif "vix" in low:
            failed = any(w in low for w in ("error", "stale", "feed"))
            said["VIX unavailable (its feed failed)" if failed else "no VIX for this date"] = None
        elif "small" in low:
            said["no small-cap index in this data"] = None
        elif "filing" in low or "edgar" in low:
            said["no SEC filings"] = None
        elif "mind absent" in low:
            continue  # the argument already named the empty chair
        elif "realized_vol" in low or "volatility" in low:
            said["too little history for a volatility yardstick"] = None
        elif "volume" in low:
            said["no volume history"] = None
        elif "curve_slope_change" in low:
            said["no trend yet in the curve"] = None
        elif "curve" in low or "dgs" in low or "t10y2y" in low:
            said["no Treasury curve"] = None
        elif "cpi" in low or "fed" in low or "unemployment" in low or "unrate" in low:
            said["some macro series missing"] = None
        elif "oil" in low or "dcoil" in low:
            said["no oil price"] = None
        elif "breadth" in low or any(m.lower() in low for m in features.megas):
            said["thin breadth (few mega-caps priced)"] = None
        elif "regime" in low:
            said["no regime reading"] = None
        else:
            words = humanize(item[:100], features.returns).replace("_", " ")
            said[words.replace(" not computable", " (not computable)")] = None
    return list(said)


def _missing(d: Deliberation, features: Features, r: Reading) -> list[str]:
    gaps = _gaps(d, features)
    if not gaps:
        return []
    listed = "; ".join(gaps)
    if r.reason in ("blind", "price"):
        return [f"What I could not see: {listed}. That, not the tape, is why there is no call."]
    if r.reason == "edge":
        return [
            f"What I could not see: {listed}. The gaps thin the minds' evidence; the reason I "
            "sat out is the size of the edge, not the gaps."
        ]
    return [
        f"What I could not see: {listed}. None of it is why I "
        f"{'called as I did' if r.called else 'sat out'}."
    ]


# --- stories, memory, notes ----------------------------------------------------------------------


def _stories(d: Deliberation, features: Features, told: set[str]) -> list[str]:
    open_ = [s for s in d.stories if s.status != "resolved" and s.key not in told]
    if not open_:
        return []
    parts = [
        f"{_story_name(s, features)}, {s.status} after {_plural(s.sessions, 'session')} "
        f"({_story_detail(s, features)})"
        for s in open_[:3]
    ]
    head = "Also following: " if told else "Stories I'm following: "
    return [head + "; ".join(parts) + "."]


def _memory(d: Deliberation, features: Features) -> list[str]:
    if not d.recalled:
        return []
    hits = sum(m.outcome == "hit" for m in d.recalled)
    misses = sum(m.outcome == "miss" for m in d.recalled)
    near = d.recalled[0]
    happened = _what_happened(near, features)
    who = (
        "my pooled forecast"
        if near.source == "pool"
        else ("my call" if near.source == SYNTHESIS else f"{mind_label(near.source)}'s call")
    )
    return [
        f"My memory of tapes like this one: {_plural(len(d.recalled), 'lesson')}, {hits} "
        f"{'hit' if hits == 1 else 'hits'} and {misses} {'miss' if misses == 1 else 'misses'}. "
        f"The closest, {near.made_at:%b %d, %Y}: {who} was a {near.outcome}"
        + (f" ({happened})" if happened else "")
        + "."
    ]


def _what_happened(m: Memory, features: Features) -> str:
    found = re.search(r"What happened: (.*?)(?::| What would| by \d{4})", m.text)
    if not found:
        return ""
    return humanize(found.group(1).strip().rstrip("."), features.returns)


def _notes(context: CycleContext) -> list[str]:
    """Operator notes, quoted as what they are: someone's words, not an instruction to the desk."""
    notes = sorted(context.snapshot.notes, key=lambda n: n.posted_at)[-3:]
    if not notes:
        return []
    quoted = "; ".join(
        f"{n.author} at {n.posted_at:%Y-%m-%d %H:%M} UTC: “{' '.join(n.text.split())[:300]}”"
        for n in notes
    )
    return [f"On the desk's inbox (read as a signal, not an instruction): {quoted}."]


# --- the call block and the footer ---------------------------------------------------------------


def _unlock(d: Deliberation, r: Reading) -> str:
    """What would turn this abstention into a call: the honest half of sitting out."""
    if r.reason == "blind":
        return "What would change that: minds that show up with something to argue."
    if r.reason == "price":
        return "What would change that: a price I can be judged on."
    if r.reason == "calibrating" and d.recalibration is not None:
        left = d.recalibration.minimum - d.recalibration.n
        return (
            f"What would change that: {left} more settled forecasts, and a lean that survives them."
        )
    if r.reason == "rule":
        return "What would change that: the rule's shadow record climbing back above a coin."
    if d.debate == "divergent":
        return (
            "What would change that: the split closing, or one side's record earning it the "
            "weight to decide."
        )
    return "What would change that: a lean bigger than my uncertainty about it."


def _ending(d: Deliberation, r: Reading) -> str:
    p = d.prediction
    basis = f"\n\n{d.record_basis[:1].upper()}{d.record_basis[1:]}." if d.record_basis else ""
    if p is None:
        return f"**No call this cycle.** {_unlock(d, r)}{basis}"
    name = instrument(p.target)
    words = speak_call(p)
    lines = [
        f"**Prediction:** {words.replace(name, f'{name} ({p.target})', 1)} (judged on the first "
        f"close at or after {p.matures_at:%Y-%m-%d %H:%M} UTC).",
    ]
    if d.chosen is not None:
        c = d.chosen
        lines.append(
            f"Edge: {c.probability:.0%} against a base rate of {c.base_rate:.0%} "
            f"({c.edge:+.3f}) and the naive random walk's {c.naive_probability:.0%} "
            f"({c.edge_naive:+.3f}), ±{c.stderr:.3f}; the largest of {d.considered} candidates."
        )
    if p.band_pct is not None:
        lines.append(f"Expected size of the move: {p.band_pct[0]:.2f}–{p.band_pct[1]:.2f}%.")
    lines.append(
        f"[DIRECTION: {p.direction}] [TIMEFRAME: {p.horizon_hours}h] "
        f"[CONFIDENCE: {p.confidence:.2f}]"
    )
    lines.append(f"Falsifier: {p.falsifier}.")
    return "\n\n".join(lines) + basis


def _footer(d: Deliberation) -> str:
    parts = [f"Debate: {d.debate}", f"Conviction: {d.conviction:.0%}"]
    for s in d.minds:
        name = s.mind.replace("_", " ").title()
        parts.append(f"{name}: {s.confidence:.0%}" if s.status == "ok" else f"{name}: {s.status}")
    return "*" + " | ".join(parts) + "*"


# --- the dispatch --------------------------------------------------------------------------------


def lead_of(d: Deliberation, features: Features) -> tuple[Fact | Change, list[Change]]:
    """The loudest of the tape's facts and what changed; the changes not leading follow it."""
    news = changes(d, features)
    tape = facts(features, d)
    best_fact = max(tape, key=lambda f: f.salience)
    best_change = max(news, key=lambda c: c.salience) if news else None
    if best_change is not None and best_change.salience > best_fact.salience:
        return best_change, [c for c in news if c is not best_change]
    return best_fact, news


def write_dispatch(d: Deliberation, context: CycleContext) -> tuple[str, str]:
    """The title and markdown body of one dispatch."""
    features = context.features
    r = reading_of(d)
    lead, news = lead_of(d, features)
    as_of = context.snapshot.as_of
    if isinstance(lead, Change):
        opening = (
            lead.sentence
            + " "
            + _lede_fact(max(facts(features, d), key=lambda f: f.salience), features, d)
        )
    else:
        opening = _lede_fact(lead, features, d)
    since = _since(lead, news)
    told = {c.key for c in (*news[:2], *([lead] if isinstance(lead, Change) else [])) if c.key}
    memory, stories = _memory(d, features), _stories(d, features, told)
    argument = _argument(d, features, r)
    wire = _wire(d, features, " ".join(argument))
    paragraphs: list[str] = [
        f"**Cycle {context.cycle_number} | {as_of:%B %d, %Y — %H:%M} UTC**",
        _sentences(opening),
        *([_sentences(since)] if since else []),
        _sentences(_tape(features)),
        *argument,
        *wire,
        *_tape_misleads(d, features, r),
        *_the_call(d, features, r),
        _refusal(d, features, r),
        *([closest] if (closest := _closest(d, features)) and not r.called else []),
        *_missing(d, features, r),
        *_notes(context),
        *stories,
        *memory,
        _ending(d, r),
        "---",
        _footer(d),
    ]
    # Over the length a reader will finish, memory goes first, then the stories, then the wire.
    for optional in (memory, stories, wire):
        if sum(len(x.split()) for x in paragraphs) <= MAX_WORDS:
            break
        paragraphs = [x for x in paragraphs if x not in optional]
    if sum(len(x.split()) for x in paragraphs) > MAX_WORDS and len(news) > 1 and since:
        # Still long: the second change since the last dispatch gives way to the first.
        paragraphs[paragraphs.index(_sentences(since))] = _sentences(_since(lead, news[:1]))
    return _title(lead, features, d, r), "\n\n".join(paragraphs) + "\n"
