"""Learned rules: derived from the scoreboard's evidence, enforced before a call is made.

A category of calls (a source in a regime, on an asset class x horizon, on a topic, or all its
calls) gets a "stop" rule once the Wilson 95% upper bound of its hit rate is below 0.5 over at
least MIN_RULE_CALLS settled calls: it loses to a coin, and not by luck. Calls a rule stops are
still settled in the shadow (the evidence record), so a rule is retired when that evidence no
longer holds (even the 80% interval reaches 0.5 again). Pure: the fleet feeds it the database's
record, the backtest its ledger's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from shared.contracts import LearnedRule, Prediction, ScoreLine, TrackRecord
from shared.scoring import wilson

MIN_RULE_CALLS = 100
# Retiring takes more than creating: a rule born when the 95% interval's top fell below 0.5 is
# retired only when even the narrower 80% interval reaches 0.5 again. Without the gap a rule on
# the boundary would flicker on and off with each shadow call.
RETIRE_Z = 1.2815515655446004


def _category(line: ScoreLine) -> str:
    cuts = [x for x in (line.regime, line.asset_class, line.horizon, line.topic) if x != "all"]
    return "|".join([line.source, *cuts]) if cuts else f"{line.source}|all"


def _evidence(line: ScoreLine) -> dict[str, float | int]:
    return {
        "settled": line.settled,
        "hits": line.hits,
        "hit_rate": line.hit_rate or 0.0,
        "low": line.hit_rate_low or 0.0,
        "high": line.hit_rate_high or 1.0,
    }


def _candidates(lines: Iterable[ScoreLine]) -> dict[str, ScoreLine]:
    """The categories a rule may be about: a source overall, in a regime, on an asset class x
    horizon, on a topic. A cut holding exactly the source's overall calls is the overall
    category again (every flow call is an equity-index 24 h breadth call), not a second rule."""
    out: dict[str, ScoreLine] = {}
    overall: dict[str, tuple[int, int]] = {}
    cuts: list[ScoreLine] = []
    for line in lines:
        asset_only = line.asset_class != "all" and line.horizon == "all"
        horizon_only = line.horizon != "all" and line.asset_class == "all"
        if asset_only or horizon_only:
            continue
        if line.regime == "all" and line.is_overall():
            overall[line.source] = (line.settled, line.hits)
            out[_category(line)] = line
        else:
            cuts.append(line)
    for line in cuts:
        if overall.get(line.source) != (line.settled, line.hits):
            out.setdefault(_category(line), line)
    return out


def loses_to_a_coin(line: ScoreLine, min_calls: int = MIN_RULE_CALLS) -> bool:
    return line.settled >= min_calls and line.hit_rate_high is not None and line.hit_rate_high < 0.5


def update_rules(
    book: Sequence[LearnedRule],
    evidence: TrackRecord,
    as_of: datetime,
    *,
    min_calls: int = MIN_RULE_CALLS,
) -> tuple[LearnedRule, ...]:
    """The rule book after looking at the evidence at as_of: new rules created, active ones
    refreshed or retired; retired rules are kept as history (a category can earn a new rule)."""
    lines = _candidates(evidence.lines)
    out: list[LearnedRule] = []
    active: set[str] = set()
    serials: dict[str, int] = {}
    for rule in book:
        category = rule.id.split("#", 1)[0]
        serials[category] = max(serials.get(category, 0), int(rule.id.rsplit("#", 1)[1]))
        line = lines.get(category)
        if rule.status != "active":
            out.append(rule)
            continue
        if line is None or line.hit_rate_high is None:
            out.append(rule)
            active.add(category)
            continue
        refreshed = rule.model_copy(update=_evidence(line))
        loose = wilson(line.hits, line.settled, RETIRE_Z)
        if loose is not None and loose[1] >= 0.5:
            refreshed = refreshed.model_copy(update={"status": "retired", "retired_at": as_of})
        else:
            active.add(category)
        out.append(refreshed)
    for category, line in lines.items():
        if category in active or not loses_to_a_coin(line, min_calls):
            continue
        serial = serials.get(category, 0) + 1
        out.append(
            LearnedRule(
                id=f"{category}#{serial}",
                source=line.source,
                regime=line.regime,
                asset_class=line.asset_class,
                horizon=line.horizon,
                topic=line.topic,
                created_at=as_of,
                **_evidence(line),
            )
        )
    return tuple(out)


def active(book: Iterable[LearnedRule]) -> tuple[LearnedRule, ...]:
    return tuple(rule for rule in book if rule.status == "active")


def forbidding(rules: Iterable[LearnedRule], prediction: Prediction) -> LearnedRule | None:
    """The first active rule that stops this call, or None."""
    return next((rule for rule in rules if rule.forbids(prediction)), None)


def count_stops(book: Sequence[LearnedRule], stopped: Iterable[str]) -> tuple[LearnedRule, ...]:
    """The book with each rule's tally of stopped calls raised by this cycle's stops."""
    counts: dict[str, int] = {}
    for rule_id in stopped:
        counts[rule_id] = counts.get(rule_id, 0) + 1
    if not counts:
        return tuple(book)
    return tuple(
        rule.model_copy(update={"stopped": rule.stopped + counts[rule.id]})
        if rule.id in counts
        else rule
        for rule in book
    )
