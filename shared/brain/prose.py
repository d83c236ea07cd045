"""The offline synthesis' words: a first-person dispatch written from the deliberation's numbers.

Phrasing branches on the facts (the dominant pattern, the debate, the record), never on chance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shared.contracts import (
    SYNTHESIS,
    CycleContext,
    Deliberation,
    Features,
    MindOutput,
    MindSummary,
    ScoreLine,
    SymbolReturns,
)

TITLE_MAX = 120
# Fewer settled calls than this in a regime are quoted as thin rather than leaned on.
MIN_REGIME_CALLS = 10


def mind_label(mind: str) -> str:
    return f"{mind.replace('_', ' ').title()} Mind"


def _pct(x: float) -> str:
    return f"{x:+.2f}%"


def _r(features: Features, symbol: str | None) -> SymbolReturns:
    return features.returns.get(symbol or "", SymbolReturns())


def _broad_r1(features: Features) -> float | None:
    if features.breadth.broad_r1 is not None:
        return features.breadth.broad_r1
    return _r(features, features.broad).r1


def _settled(line: ScoreLine | None) -> int:
    return 0 if line is None else line.hits + line.misses


def _record_phrase(line: ScoreLine) -> str:
    n = _settled(line)
    skill = (
        f", Brier skill {line.brier_skill:+.3f} against the base rate"
        if line.brier_skill is not None
        else ""
    )
    return f"{line.hits} of {n}, {line.hits / n:.0%}{skill}"


def _best_line(
    d: Deliberation, source: str, regime: str
) -> tuple[ScoreLine | None, ScoreLine | None]:
    """The source's line in the regime and overall, each None when nothing has settled."""
    in_regime = d.record.line(source, regime)
    overall = d.record.line(source, "all")
    return (in_regime if _settled(in_regime) else None, overall if _settled(overall) else None)


# --- the dominant fact ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """A candidate headline fact with how loudly it speaks; the loudest leads the dispatch."""

    kind: str
    salience: float


def dominant_fact(features: Features, d: Deliberation) -> Fact:
    b = features.breadth
    day = _broad_r1(features)
    facts = [Fact("quiet", 0.0)]
    words = set(b.label.lower().split("_"))
    if "mega" in words and "down" in words and ({"flat", "up"} & words):
        facts.append(Fact("mega_down", 3.0))
    if features.vix is not None and features.vix >= 30:
        facts.append(Fact("vix_high", 2.5 + (features.vix - 30) / 5))
    if features.vix is not None and features.vix <= 12.5:
        facts.append(Fact("vix_low", 2.0))
    if day is not None and abs(day) >= 2.0:
        facts.append(Fact("big_move", 2.0 + abs(day) / 2))
    if features.curve_slope is not None and features.curve_slope < 0:
        facts.append(Fact("inverted", 1.5 + min(1.0, -features.curve_slope)))
    if d.debate == "divergent":
        facts.append(Fact("divergent", 1.0))
    # max keeps the first of equals, so the order above breaks ties deterministically.
    return max(facts, key=lambda fact: fact.salience)


def _title(fact: Fact, features: Features, d: Deliberation) -> str:
    name = features.broad or "the index"
    day = _broad_r1(features)
    call = d.prediction
    # Only a direction call reads as "up" or "down"; a threshold or range call has its own words.
    directional = call is not None and call.kind == "direction"
    down = directional and call is not None and call.direction == "down"
    up = directional and call is not None and call.direction == "up"
    if fact.kind == "mega_down":
        if down:
            title = "The Mega-Caps Are Lying to the Index"
        elif up:
            title = "Mega-Caps Sold, the Index Held, and I Side With the Index"
        else:
            title = "The Mega-Caps Are Slipping and the Index Hasn't Noticed Yet"
    elif fact.kind == "vix_high" and features.vix is not None:
        mood = (
            "The Rally That Doesn't Believe Itself"
            if day is not None and day > 0
            else "Fear Is Doing the Selling"
        )
        title = f"VIX at {features.vix:.2f}: {mood}"
    elif fact.kind == "vix_low" and features.vix is not None:
        title = f"VIX at {features.vix:.2f}: Nobody Is Paying for Insurance"
    elif fact.kind == "big_move" and day is not None:
        verdict = (
            "and I Expect More"
            if (up and day > 0) or (down and day < 0)
            else "and I Expect Some of It Back"
            if call is not None
            else "and I'm Not Guessing the Next One"
        )
        title = f"{name} {day:+.1f}% in a Session, {verdict}"
    elif fact.kind == "inverted" and features.curve_slope is not None:
        tail = (
            "and Stocks Are Starting to Listen"
            if down
            else ("and Stocks Don't Care Yet" if up else "and I Still Can't Time It")
        )
        title = f"The Curve Is Inverted at {features.curve_slope:+.2f} pts {tail}"
    elif fact.kind == "divergent":
        title = (
            f"Three Minds, Two Directions on {name}"
            if len(d.minds) == 3
            else f"The Minds Split on {name}"
        )
        if call is None:
            title += ", and I'm Sitting It Out"
    elif call is not None and not directional:
        title = f"{call.wording}: a {call.confidence:.0%} Call"
    elif call is not None:
        title = f"{name} {'Up' if up else 'Down'} by a Nose: a {call.confidence:.0%} Call"
    else:
        title = f"A Quiet Tape on {name}, and No Call From Me"
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1].rstrip() + "…"


# --- the body ------------------------------------------------------------------------------------


def _opening(fact: Fact, features: Features, d: Deliberation) -> str:
    name = features.broad or "the index"
    b = features.breadth
    day = _broad_r1(features)
    tech = _r(features, features.tech).r1 if features.tech else None
    if fact.kind == "mega_down":
        index = f"{name} {_pct(day)}" if day is not None else name
        if tech is not None and features.tech:
            index += f", {features.tech} {_pct(tech)}"
        mean = f" (mean {_pct(b.mega_mean_r1)})" if b.mega_mean_r1 is not None else ""
        movers = _mega_moves(features)
        return (
            f"The index says one thing and its heaviest names say another. {index}: by the "
            f"headline, a stable market. Underneath, {b.mega_down} of {b.mega_count} "
            f"mega-caps fell{mean}. {movers}".rstrip()
        )
    if fact.kind == "vix_high" and features.vix is not None:
        if day is not None and day > 0:
            return (
                f"I keep coming back to one number: VIX at {features.vix:.2f}. {name} is "
                f"{_pct(day)} on the session and the fear gauge is still above 30. That is a "
                "market buying stocks with one hand and insurance with the other."
            )
        return (
            f"VIX at {features.vix:.2f}. {name} {_pct(day) if day is not None else 'unknown'} "
            "on the session. Fear is not a forecast, but at this level it is the weather."
        )
    if fact.kind == "vix_low" and features.vix is not None:
        return (
            f"VIX at {features.vix:.2f} is the number that bothers me. Insurance this cheap "
            "means the crowd has stopped imagining a bad week."
        )
    if fact.kind == "big_move" and day is not None:
        size = "a big day" if abs(day) < 3 else "a violent day"
        return (
            f"{name} moved {_pct(day)} in one session, {size} for an index that usually "
            "moves a fraction of that. The question is whether it is information or noise."
        )
    if fact.kind == "inverted" and features.curve_slope is not None:
        return (
            f"The 10y-2y spread sits at {features.curve_slope:+.2f} pts. An inverted curve "
            "is the slowest signal on my screen and the hardest to time, so I keep it in "
            "view without letting it drive alone."
        )
    if fact.kind == "divergent":
        return (
            "The minds looked at the same tape and did not agree. That disagreement is the "
            "most honest thing in this dispatch, so I start with it."
        )
    if day is not None:
        return (
            f"{name} {_pct(day)} on the session. Not much happened, and I would rather say "
            "so than invent a story."
        )
    return "The tape is thin on facts this cycle, and I would rather say so than invent a story."


def _mega_moves(features: Features) -> str:
    moves = [(s, _r(features, s).r1) for s in features.megas]
    known = [(s, r) for s, r in moves if r is not None]
    if not known:
        return ""
    known.sort(key=lambda item: (item[1], item[0]))
    return " ".join(f"{s} {_pct(r)}." for s, r in known[:7])


def _tape(features: Features) -> str:
    parts: list[str] = []
    name = features.broad
    if name:
        r = _r(features, name)
        day = _broad_r1(features)
        windows = [f"{x:+.1f}% over {n}" for x, n in ((r.r5, 5), (r.r20, 20)) if x is not None]
        head = (
            f"{name} {_pct(day)} on the session" if day is not None else f"{name} (no session move)"
        )
        parts.append(head + (f" ({', '.join(windows)})" if windows else ""))
    for label, sym in (("tech", features.tech), ("small caps", features.small)):
        if sym and _r(features, sym).r1 is not None:
            parts.append(f"{label} ({sym}) {_pct(_r(features, sym).r1 or 0.0)}")
    if features.vix is not None:
        change = (
            f", {features.vix_change_5d:+.1f} pts in 5 sessions"
            if features.vix_change_5d is not None
            else ""
        )
        parts.append(f"VIX {features.vix:.2f}{change}")
    if features.curve_slope is not None:
        parts.append(f"10y-2y {features.curve_slope:+.2f} pts")
    if features.realized_vol_20d is not None:
        parts.append(f"20d realized vol {features.realized_vol_20d:.1f}%")
    if not parts:
        return "The tape: nothing I could price."
    regime = (
        f" The regime reads {features.regime} (score {features.regime_score:.2f})."
        if features.regime != "unknown"
        else " The regime is unlabelled."
    )
    return "The tape: " + "; ".join(parts) + "." + regime


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


_VERDICT = ("Leaning ", "No lean")


def _gist(argument: str, n: int = 2) -> str:
    """The argument's first n sentences of evidence, plus what it said it could not see.

    The mind's closing verdict is dropped: the paragraph already states stance and confidence.
    """
    sentences = _SENTENCE.split(argument.strip())
    evidence = [x for x in sentences if not x.startswith((*_VERDICT, "Not known"))][:n]
    blind = [x for x in sentences if x.startswith("Not known")]
    return " ".join(evidence + blind) or " ".join(sentences[:n])


def _stance_phrase(s: MindSummary) -> str:
    if s.stance == "neutral":
        return f"has no lean ({s.confidence:.0%} confidence)"
    if s.confidence < 0.3:
        return f"leans {s.stance}, barely, at {s.confidence:.0%} confidence"
    if s.confidence >= 0.6:
        return f"is firmly {s.stance} at {s.confidence:.0%} confidence"
    return f"is {s.stance} at {s.confidence:.0%} confidence"


def _mind_paragraph(s: MindSummary, output: MindOutput | None, d: Deliberation, regime: str) -> str:
    label = f"**{mind_label(s.mind)}**"
    if s.status == "absent":
        return f"{label} didn't show up: {s.reason or 'no reason given'}."
    if s.status == "abstained":
        return f"{label} abstained: {s.reason or 'no reason given'}."
    text = f"{label} {_stance_phrase(s)}, weight {s.weight:.2f}."
    if output is not None and output.argument:
        text += f" {_gist(output.argument)}"
    in_regime, overall = _best_line(d, s.mind, regime)
    if in_regime is not None and _settled(in_regime) >= MIN_REGIME_CALLS:
        text += f" Its record in {regime}: {_record_phrase(in_regime)}."
    elif overall is not None:
        text += f" Its record overall: {_record_phrase(overall)}."
    else:
        text += " It has no settled record yet."
    return text


def _debate(d: Deliberation) -> str:
    present = [s for s in d.minds if s.status == "ok"]
    bulls = [mind_label(s.mind) for s in present if s.stance == "bullish"]
    bears = [mind_label(s.mind) for s in present if s.stance == "bearish"]
    pooled = f"p(up) {d.probability_up:.3f}" if d.probability_up is not None else "no pool"
    raw = d.raw_probability_up
    if raw is not None and d.probability_up is not None and raw != d.probability_up:
        pooled = f"p(up) {raw:.3f}, recalibrated to {d.probability_up:.3f}"
        if (raw - 0.5) * (d.probability_up - 0.5) < 0:
            pooled += (
                " (the minds' leans this way have lost often enough that my record turns the "
                "pool around)"
            )
    if d.debate == "divergent":
        return (
            f"That is a split: {' and '.join(bulls)} bullish against {' and '.join(bears)} "
            f"bearish. Weighted by skill, the pool comes to {pooled}; disagreement this "
            f"plain keeps my conviction at {d.conviction:.0%}."
        )
    if d.debate in ("aligned_bullish", "aligned_bearish"):
        side = "bullish" if d.debate == "aligned_bullish" else "bearish"
        views = bulls or bears
        if len(views) == 1:
            return (
                f"Only {views[0]} has a view, {side}; the others present have no lean. "
                "The label says aligned, but unopposed is not the same as confirmed: "
                f"{pooled}, conviction {d.conviction:.0%}."
            )
        return (
            f"Every mind with a view leans {side}. Agreement is not evidence by itself, since "
            f"they read overlapping numbers, but it is the cleanest setup I get: {pooled}, "
            f"conviction {d.conviction:.0%}."
        )
    if len(present) < 2:
        return (
            f"With {len(present)} mind{'s' if len(present) != 1 else ''} giving a view there "
            f"is no debate to speak of ({pooled})."
        )
    return f"Nobody has a real lean ({pooled}), so there is nothing to adjudicate."


def _missing(d: Deliberation) -> str:
    if not d.missing:
        return "Nothing was flagged missing this cycle; what I have, I have in full."
    items = list(d.missing)
    shown = "; ".join(items[:8]) + (f"; and {len(items) - 8} more" if len(items) > 8 else "")
    cost = (
        "so the call is smaller than it would be with the full picture"
        if d.prediction is not None
        else "and that is part of why I am not calling it"
    )
    if len(items) == 1:
        return f"What I couldn't see: {shown}. One gap, {cost}."
    return f"What I couldn't see: {shown}. {len(items)} gaps, {cost}."


def _own_record(d: Deliberation, regime: str) -> str:
    in_regime, overall = _best_line(d, SYNTHESIS, regime)
    if in_regime is None and overall is None:
        return "I have no settled record yet, so this stands on the numbers alone."
    parts = []
    if in_regime is not None and _settled(in_regime) >= MIN_REGIME_CALLS:
        parts.append(f"My record in {regime}: {_record_phrase(in_regime)}.")
    elif in_regime is not None:
        parts.append(
            f"In {regime} I have only {_settled(in_regime)} settled calls, too few to lean on."
        )
    if overall is not None:
        parts.append(f"Overall: {_record_phrase(overall)}.")
        rate = overall.hits / _settled(overall)
        if _settled(overall) >= MIN_REGIME_CALLS and rate < 0.5:
            parts.append("That is worse than a coin, and it is why my calls stay small.")
    return " ".join(parts)


def _unlock(d: Deliberation, features: Features) -> str:
    """What would turn this abstention into a call: the honest half of sitting out."""
    if d.probability_up is None:
        return "What would change that: minds that show up with something to argue."
    name = features.broad
    if name is None or name not in features.last_close:
        return f"What would change that: a price for {name or 'a broad index'} I can be judged on."
    if d.debate == "divergent":
        return (
            "What would change that: the split closing, or one side's record earning it "
            "the weight to decide."
        )
    if d.debate.startswith("aligned"):
        return "What would change that: the same lean with more evidence behind it."
    return (
        "What would change that: a mind finding something stretched, broken or trending "
        "enough to argue for."
    )


def _ending(d: Deliberation, features: Features) -> str:
    p = d.prediction
    basis = f"\n\n{d.record_basis[:1].upper()}{d.record_basis[1:]}." if d.record_basis else ""
    if p is None:
        reason = (d.abstention or "no edge").rstrip(".")
        return (
            f"**No call this cycle.** {reason[:1].upper()}{reason[1:]}. {_unlock(d, features)}"
            f"{basis}"
        )
    lines = [
        f"**Prediction:** {p.wording} (judged on the first close at or after "
        f"{p.matures_at:%Y-%m-%d %H:%M} UTC).",
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


def _stories(d: Deliberation) -> list[str]:
    """The narratives being followed, with their status; resolved ones said once, then dropped."""
    open_ = [s for s in d.stories if s.status != "resolved"]
    done = [s for s in d.stories if s.status == "resolved"]
    if not open_ and not done:
        return []
    parts = [
        f"{s.title}, {s.status} ({s.detail}; followed {s.sessions} session"
        f"{'s' if s.sessions != 1 else ''} since {s.started:%Y-%m-%d})"
        for s in open_
    ]
    text = "Stories I'm following: " + "; ".join(parts) + "." if parts else ""
    if done:
        text += (
            (" " if text else "")
            + "Resolved: "
            + "; ".join(f"{s.title} ({s.detail})" for s in done)
            + "."
        )
    return [text]


def _rules_applied(d: Deliberation) -> list[str]:
    if not d.rules_applied:
        return []
    return ["My learned rules stepped in: " + "; ".join(d.rules_applied) + "."]


def _recalled(d: Deliberation) -> list[str]:
    if not d.recalled:
        return []
    lines = [
        f"- {m.made_at:%Y-%m-%d}, {m.source} in {m.regime} ({m.outcome}): {m.text}"
        for m in d.recalled
    ]
    return ["What I remember from tapes like this one:\n\n" + "\n".join(lines)]


def write_dispatch(d: Deliberation, context: CycleContext) -> tuple[str, str]:
    """The title and markdown body of one dispatch."""
    features = context.features
    fact = dominant_fact(features, d)
    regime = features.regime
    outputs = {o.mind: o for o in d.outputs}
    as_of = context.snapshot.as_of
    paragraphs: Sequence[str] = [
        f"**Cycle {context.cycle_number} | {as_of:%B %d, %Y — %H:%M} UTC**",
        _opening(fact, features, d),
        _tape(features),
        *(_mind_paragraph(s, outputs.get(s.mind), d, regime) for s in d.minds),
        _debate(d),
        _missing(d),
        *_notes(context),
        *_stories(d),
        *_rules_applied(d),
        *_recalled(d),
        _own_record(d, regime),
        _ending(d, features),
        "---",
        _footer(d),
    ]
    return _title(fact, features, d), "\n\n".join(paragraphs) + "\n"
