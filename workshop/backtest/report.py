"""The backtest's report: report.json (the figures), report.md (what a person reads first),
reliability.png and rolling.png."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.contracts import SYNTHESIS, ScoreLine
from shared.scoring import Scored, baselines, brier, brier_skill, calibration, ece, log_score
from workshop.backtest.engine import BacktestResult
from workshop.backtest.ledger import Settled
from workshop.backtest.plots import Curve, Rolling, quantile_bins, reliability, rolling

ROLLING_WINDOW = 250
METRICS = ("calls", "abstentions", "hits", "misses", "inconclusive", "open", "withheld",
           "hit_rate", "hit_rate_low", "hit_rate_high", "brier", "log_score", "base_rate",
           "base_rate_brier", "brier_skill", "ece")  # fmt: skip
HONEST = ("brier_skill_se", "naive_brier", "brier_skill_naive", "brier_skill_naive_se",
          "brier_majority", "reliability", "resolution", "uncertainty")  # fmt: skip


def _metrics(line: ScoreLine | None) -> dict[str, Any]:
    if line is None:
        line = ScoreLine(source="none")
    values = line.model_dump(include=set(METRICS))
    values["calibration"] = [b.model_dump() for b in line.calibration]
    return {k: _round(v) for k, v in values.items()}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _lines(result: BacktestResult) -> dict[tuple[str, str], ScoreLine]:
    """Public lines by (source, regime), only the regime cut (and the overall line)."""
    return {(x.source, x.regime): x for x in _board(result) if x.is_overall()}


def _board(result: BacktestResult) -> tuple[ScoreLine, ...]:
    if result.board is None:
        result.board = result.ledger.scoreboard()
    return result.board


def _cut(line: ScoreLine) -> str:
    parts = [x for x in (line.asset_class, line.horizon, line.topic) if x != "all"]
    return " x ".join(parts)


def desk_pairs(result: BacktestResult) -> list[tuple[float, float, float, bool]]:
    """(final p(up), raw pool, base rate of up, went up) of every settled cycle forecast that
    was recalibrated (so after the calibrator's minimum) and had a base rate."""
    return [
        (f.final, f.raw, f.base_rate_up, f.went_up)
        for f in result.ledger.forecasts
        if f.final is not None and f.base_rate_up is not None and f.calibrated
    ]


def skill_evidence(rows: Sequence[tuple[float, float, bool]]) -> dict[str, Any]:
    """How sure the Brier skill is: the mean per-call Brier gain over the base rate, its
    standard error and their ratio, from (stated, base rate, came true) rows."""
    gains = [(b - y) ** 2 - (p - y) ** 2 for p, b, y in rows]
    if len(gains) < 2:
        return {"gain": None, "gain_stderr": None, "gain_t": None}
    mean = sum(gains) / len(gains)
    var = sum((g - mean) ** 2 for g in gains) / (len(gains) - 1)
    se = (var / len(gains)) ** 0.5
    return {"gain": mean, "gain_stderr": se, "gain_t": mean / se if se > 0 else None}


def desk_metrics(result: BacktestResult) -> dict[str, Any]:
    """The desk's p(up) on every cycle, called or not, scored against the base rate: the
    evidence that recalibration works whether or not any call clears the edge."""
    rows = desk_pairs(result)
    final = [(p, up) for p, _, _, up in rows]
    raw = [(r, up) for _, r, _, up in rows]
    base = [(b, up) for _, _, b, up in rows]
    buckets = calibration(final)
    reference = brier(base)
    values: dict[str, Any] = {
        "n": len(rows),
        "brier": brier(final),
        "log_score": log_score(final),
        "base_rate_brier": reference,
        "brier_skill": brier_skill(brier(final), reference),
        "raw_brier": brier(raw),
        "raw_brier_skill": brier_skill(brier(raw), reference),
        "ece": ece(buckets),
        "raw_ece": ece(calibration(raw)),
        "calibration": [b.model_dump() for b in buckets],
        **skill_evidence([(p, b, up) for p, _, b, up in rows]),
    }
    return {k: _round(v) for k, v in values.items()}


def _calls(result: BacktestResult, source: str) -> list[tuple[float, float, bool]]:
    return [
        (s.prediction.confidence, s.prediction.base_rate, s.outcome == "hit")
        for s in result.ledger.settled
        if s.source == source
        and not s.withheld_by
        and s.outcome != "inconclusive"
        and s.prediction.base_rate is not None
    ]


def _naive(item: Settled) -> float | None:
    p = item.prediction
    if p.naive_probability is not None:
        return p.naive_probability
    # A direction call without a stated naive probability: the driftless walk says a coin.
    return 0.5 if p.kind == "direction" else None


def honest(items: Sequence[Settled]) -> dict[str, Any]:
    """A group of settled calls scored against every baseline: the base rate (with the skill's
    standard error), the naive random walk, always the majority outcome, Murphy's terms."""
    done = [s for s in items if s.outcome != "inconclusive"]
    hits = sum(1 for s in done if s.outcome == "hit")
    rows = [Scored(s.prediction.confidence, s.prediction.base_rate, _naive(s), s.outcome == "hit")
            for s in done]  # fmt: skip
    pairs = [(r.p, r.hit) for r in rows]
    rated = [r for r in rows if r.base is not None]
    score = brier((r.p, r.hit) for r in rated)
    reference = brier((r.base or 0.0, r.hit) for r in rated)
    values: dict[str, Any] = {
        "calls": len(items),
        "hits": hits,
        "misses": len(done) - hits,
        "inconclusive": len(items) - len(done),
        "hit_rate": hits / len(done) if done else None,
        "brier": brier(pairs),
        "base_rate_brier": reference,
        "brier_skill": brier_skill(score, reference),
        "ece": ece(calibration(pairs)),
        **baselines(rows),
    }
    values.pop("skill_vs_base", None)
    return {k: _round(v) for k, v in values.items()}


def _grouped(items: Sequence[Settled], key: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Settled]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return {name: honest(group) for name, group in sorted(groups.items())}


def source_report(result: BacktestResult, source: str, line: ScoreLine | None) -> dict[str, Any]:
    """A source's record line with its honest baselines and its by-kind and by-target maps."""
    items = [s for s in result.ledger.settled if s.source == source and not s.withheld_by]
    overall = honest(items)
    return {
        **_metrics(line),
        **{k: overall[k] for k in HONEST},
        "by_kind": _grouped(items, lambda s: s.prediction.kind),
        "by_target": _grouped(items, lambda s: s.prediction.target),
    }


def call_mix(result: BacktestResult) -> dict[str, Any]:
    """How many calls went each way, of which kinds: a one-sided desk cannot hide."""
    made = [row for row in result.rows if row.direction is not None]
    by_kind: dict[str, dict[str, int]] = {}
    for row in made:
        sides = by_kind.setdefault(row.kind or "direction", {})
        sides[row.direction or "?"] = sides.get(row.direction or "?", 0) + 1
    warm = [row for row in result.rows if row.warm]
    return {
        "calls": len(made),
        "by_kind": by_kind,
        "cycles_warm": len(warm),
        "call_rate_warm": round(sum(1 for r in warm if r.direction) / len(warm), 4)
        if warm
        else None,
        "targets": sorted({row.call_target for row in made if row.call_target}),
    }


def build_report(result: BacktestResult) -> dict[str, Any]:
    """The report's figures as plain JSON-able data."""
    lines = _lines(result)
    sources = (SYNTHESIS, *result.minds)
    regimes = sorted({r for _, r in lines if r != "all"})
    calls = sum(1 for row in result.rows if row.direction is not None)
    return {
        "data_dir": str(result.data_dir),
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "cycles": result.cycles,
        "seconds": round(result.seconds, 3),
        "seconds_per_cycle": round(result.seconds / result.cycles, 6) if result.cycles else None,
        "horizon_hours": result.horizon_hours,
        "call_rate": round(calls / result.cycles, 4) if result.cycles else None,
        "call_mix": call_mix(result),
        "warm_start": {"candidates": result.warm, "record_basis": result.record_basis},
        "synthesis": {
            **source_report(result, SYNTHESIS, lines.get((SYNTHESIS, "all"))),
            **{k: _round(v) for k, v in skill_evidence(_calls(result, SYNTHESIS)).items()},
        },
        "minds": {m: source_report(result, m, lines.get((m, "all"))) for m in result.minds},
        "desk": desk_metrics(result),
        "by_category": {
            s: {
                _cut(x): _metrics(x)
                for x in _board(result)
                if x.source == s and x.regime == "all" and not x.is_overall()
            }
            for s in sources
        },
        "by_regime": {
            s: {r: _metrics(lines[(s, r)]) for r in regimes if (s, r) in lines} for s in sources
        },
        "rules": [rule.model_dump(mode="json") for rule in result.rules],
        "stories": story_summary(result),
        "memory": {
            "lessons": result.ledger.lessons.count,
            "cycles_recalling": sum(1 for row in result.rows if row.recalled),
            "recalled": sum(len(row.recalled) for row in result.rows),
        },
        "flags": dict(result.flags.most_common()),
        "open_at_end": result.ledger.open_calls,
    }


def _rolling(settled: Sequence[Settled], source: str, window: int) -> Rolling:
    rows = [s for s in settled if s.source == source and s.outcome != "inconclusive"]
    when, hits, skills = [], [], []
    hit_sum = 0
    sq = base = 0.0
    for i, s in enumerate(rows):
        y = 1.0 if s.outcome == "hit" else 0.0
        p, b = s.prediction.confidence, s.prediction.base_rate
        hit_sum += int(y)
        sq += (p - y) ** 2 if b is not None else 0.0
        base += (b - y) ** 2 if b is not None else 0.0
        if i >= window:
            old = rows[i - window]
            oy = 1.0 if old.outcome == "hit" else 0.0
            hit_sum -= int(oy)
            ob = old.prediction.base_rate
            if ob is not None:
                sq -= (old.prediction.confidence - oy) ** 2
                base -= (ob - oy) ** 2
        if i + 1 >= min(window, 50):
            n = min(i + 1, window)
            when.append(s.settled_at)
            hits.append(hit_sum / n)
            skills.append(1.0 - sq / base if base > 1e-12 else None)
    return Rolling(source, when, hits, skills)


def write_report(result: BacktestResult, out: Path) -> dict[str, Any]:
    """Write report.json, report.md, reliability.png and rolling.png into out; returns the data."""
    out.mkdir(parents=True, exist_ok=True)
    data = build_report(result)
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    sources = (SYNTHESIS, *result.minds)
    lines = _lines(result)
    settled = [s for s in result.ledger.settled if s.withheld_by is None]
    curves = []
    for source in sources:
        line = lines.get((source, "all"))
        pairs = [
            (s.prediction.confidence, s.outcome == "hit")
            for s in settled
            if s.source == source and s.outcome != "inconclusive"
        ]
        curves.append(
            Curve(
                source,
                line.calibration if line else (),
                quantile_bins(pairs),
                line.ece if line else None,
                len(pairs),
            )
        )
    desk = [(p, up) for p, _, _, up in desk_pairs(result)]
    desk_buckets = calibration(desk)
    curves.insert(
        0,
        Curve(
            "desk p(up), every cycle",
            desk_buckets,
            quantile_bins(desk),
            ece(desk_buckets),
            len(desk),
            stated="recalibrated p(up), called or not",
            observed="how often the target closed up",
            unit="forecasts",
        ),
    )
    reliability(curves, out / "reliability.png")
    notes = {
        s: f"(skill {_num(m['brier_skill'], '{:+.3f}')})"
        for s, m in [(SYNTHESIS, data["synthesis"]), *data["minds"].items()]
    }
    rolling([_rolling(settled, s, ROLLING_WINDOW) for s in sources], ROLLING_WINDOW,
            out / "rolling.png", notes)  # fmt: skip
    (out / "report.md").write_text(markdown(data, result))
    return data


# --- the page a person reads ---------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, pattern: str = "{:.4f}") -> str:
    return "-" if value is None else pattern.format(value)


def _row(name: str, m: dict[str, Any]) -> str:
    interval = (
        f"{m['hit_rate_low']:.3f}–{m['hit_rate_high']:.3f}"
        if m.get("hit_rate_low") is not None
        else "-"
    )
    return (
        f"| {name} | {m['calls']} | {m['abstentions']} | {m['hits']} | {m['misses']} | "
        f"{m['inconclusive']} | {_pct(m['hit_rate'])} | {interval} | {_num(m['brier'])} | "
        f"{_num(m['base_rate_brier'])} | {_num(m['brier_skill'], '{:+.4f}')} | "
        f"{_num(m['ece'])} |"
    )


def verdict(name: str, m: dict[str, Any]) -> str:
    """One plain sentence per source, from its numbers, whatever they are."""
    settled = m["hits"] + m["misses"]
    if settled == 0:
        return f"- **{name}** made no settled call."
    skill, low, high = m["brier_skill"], m["hit_rate_low"], m["hit_rate_high"]
    if high is not None and high < 0.5:
        side = "worse than a coin (the whole 95% interval is below 50%)"
    elif low is not None and low > 0.5:
        side = "better than a coin (the whole 95% interval is above 50%)"
    else:
        side = "not distinguishable from a coin (the 95% interval straddles 50%)"
    if skill is None:
        against = "no base rate was known for its calls"
    elif skill > 0:
        against = f"it beat always quoting the base rate (Brier skill {skill:+.4f})"
    else:
        against = f"it did not beat always quoting the base rate (Brier skill {skill:+.4f})"
    sure = ""
    if m.get("gain_t") is not None:
        t = m["gain_t"]
        sure = f" The skill is {abs(t):.1f} standard errors from zero" + (
            ", not distinguishable from luck." if abs(t) < 2 else "."
        )
    rate = _pct(m["hit_rate"])
    if m.get("base_rate") is not None:
        rate += f" (the called outcomes' base rate: {_pct(m['base_rate'])})"
    return f"- **{name}**: {settled} settled calls, hit rate {rate}, {side}; {against}.{sure}"


def markdown(data: dict[str, Any], result: BacktestResult) -> str:
    header = ("| source | calls | abstained | hits | misses | inconcl. | hit rate | 95% interval "
              "| Brier | base-rate Brier | Brier skill | ECE |\n"
              "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")  # fmt: skip
    table = [header, _row("synthesis", data["synthesis"])]
    table += [_row(m, v) for m, v in data["minds"].items()]
    parts = [
        f"# Backtest: {data['from']} to {data['to']}",
        _mix(data),
        f"Replay directory `{data['data_dir']}`: **{data['cycles']} cycles** (one per trading day) "
        f"in **{data['seconds']:.2f} s** ({(data['seconds_per_cycle'] or 0) * 1000:.2f} ms a "
        f"cycle), through the fleet's own features, minds, synthesis and resolver judge, with "
        f"an in-memory record each cycle reads point-in-time. The desk called on "
        f"{_pct(data['call_rate'])} of the days and abstained on the rest.",
        "## Record",
        "\n".join(table),
        "Hit rates count hits and misses only: abstentions and inconclusive calls never enter "
        "them. Brier skill is 1 − Brier / (the Brier of always quoting the base rate, the "
        "frequency of the called outcome in the history known when the call was made): above 0 "
        "beats the base rate, below 0 loses to it. ECE is the expected calibration error over "
        "ten confidence buckets.",
        "## Against the honest baselines, by kind of call",
        _kinds(data),
        "## The desk's probability on every cycle",
        _desk(data["desk"]),
        "## In plain words",
        "\n".join(
            verdict(s, data["synthesis"] if s == SYNTHESIS else data["minds"][s])
            for s in (SYNTHESIS, *data["minds"])
        ),
        "## Learned rules",
        _rules(data),
        "## Stories and memory",
        _stories(data),
        "## By regime",
        _regimes(data),
        "## What was missing",
        _flags(data, result.cycles),
        "## Figures",
        "- `reliability.png`: stated probability against observed hit rate, per source.\n"
        f"- `rolling.png`: hit rate and Brier skill over the last {ROLLING_WINDOW} settled "
        "calls, through time.",
    ]
    shown = result.last_call or result.last_dispatch
    if shown is not None:
        d = shown
        parts += [
            "## The last call" if result.last_call is not None else "## The last dispatch",
            f"*{d.as_of:%Y-%m-%d}* — **{d.title}**\n\n"
            + "\n".join(f"> {line}" if line else ">" for line in d.body_md.strip().splitlines()),
        ]
    return "\n\n".join(parts) + "\n"


def _mix(data: dict[str, Any]) -> str:
    """The first paragraph: how many calls went each way, of which kinds."""
    mix = data["call_mix"]
    if not mix["calls"]:
        return (
            f"**The synthesis made no call in {data['cycles']} cycles.** "
            + (f"Its record rests on: {data['warm_start']['record_basis']}." if
               data["warm_start"]["record_basis"] else "")
        )  # fmt: skip
    kinds = "; ".join(
        f"{kind} {sum(sides.values())} ("
        + ", ".join(f"{side} {n}" for side, n in sorted(sides.items()))
        + ")"
        for kind, sides in sorted(mix["by_kind"].items())
    )
    warm = (
        f", {_pct(mix['call_rate_warm'])} of the {mix['cycles_warm']} cycles once its "
        "calibration was trusted"
        if mix["cycles_warm"]
        else ""
    )
    return (
        f"**The synthesis made {mix['calls']} calls in {data['cycles']} cycles{warm}: {kinds}**, "
        f"on {', '.join(mix['targets'])}. Its calibration started from "
        f"{data['warm_start']['candidates']:,} settled candidates of the price history before the "
        "first cycle (the warm start)."
    )


def _kinds(data: dict[str, Any]) -> str:
    rows = [
        "Each kind of call scored against its own point-in-time base rate, against a naive "
        "model that knows only the trailing volatility and assumes a driftless random walk "
        "(persistence alone), and against always the majority outcome (probability 1 on "
        "whichever outcome the base rate favours). Skill is 1 − Brier / the baseline's Brier, "
        "± one standard error. A skill over the base rate that vanishes against the naive model "
        "is an edge of volatility persistence only, and is said so here.",
        "",
        "| source | kind | settled | hit rate | Brier | base Brier | skill vs base | naive Brier "
        "| skill vs naive | majority Brier | ECE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sources = [("synthesis", data["synthesis"]), *data["minds"].items()]
    for name, m in sources:
        for kind, k in [("all", m), *m["by_kind"].items()]:
            settled = k["hits"] + k["misses"]
            if not settled:
                continue
            rows.append(
                f"| {name} | {kind} | {settled} | {_pct(k['hit_rate'])} | {_num(k['brier'])} | "
                f"{_num(k['base_rate_brier'])} | {_pm(k['brier_skill'], k['brier_skill_se'])} | "
                f"{_num(k['naive_brier'])} | "
                f"{_pm(k['brier_skill_naive'], k['brier_skill_naive_se'])} | "
                f"{_num(k['brier_majority'])} | {_num(k['ece'], '{:.3f}')} |"
            )
    return "\n".join(rows)


def _pm(value: float | None, se: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" + (f" ± {se:.4f}" if se is not None else "")


def _regimes(data: dict[str, Any]) -> str:
    rows = ["| source | regime | settled | hit rate | Brier skill |", "|---|---|---:|---:|---:|"]
    for source, by in data["by_regime"].items():
        for regime, m in by.items():
            settled = m["hits"] + m["misses"]
            if settled:
                rows.append(
                    f"| {source} | {regime} | {settled} | {_pct(m['hit_rate'])} | "
                    f"{_num(m['brier_skill'], '{:+.4f}')} |"
                )
    return "\n".join(rows)


def _flags(data: dict[str, Any], cycles: int) -> str:
    flags = data["flags"]
    if not flags:
        return "Nothing was flagged missing or stale in any cycle."
    rows = [f"- {name}: {count} of {cycles} cycles" for name, count in list(flags.items())[:12]]
    more = len(flags) - 12
    if more > 0:
        rows.append(f"- and {more} more kinds of flag (all in report.json)")
    return (
        "Data-quality flags the cycles carried (each a fact the minds saw, never a crash):\n\n"
        + "\n".join(rows)
    )


def _desk(desk: dict[str, Any]) -> str:
    if not desk["n"]:
        return "No cycle's forecast was recalibrated and settled (too short a range)."
    return (
        f"Every cycle the synthesis pools the minds by skill and recalibrates the pool from its "
        f"own settled history, called or not. Over the {desk['n']} recalibrated cycles: Brier "
        f"{_num(desk['brier'])} against {_num(desk['base_rate_brier'])} for always quoting the "
        f"base rate (skill {_num(desk['brier_skill'], '{:+.4f}')}; the raw pool's was "
        f"{_num(desk['raw_brier_skill'], '{:+.4f}')}), ECE {_num(desk['ece'], '{:.3f}')} "
        f"(raw pool {_num(desk['raw_ece'], '{:.3f}')}). A call is made only where the calibrated "
        "probability beats the base rate by more than its own standard error. That skill is "
        f"{abs(desk['gain_t'] or 0):.1f} standard errors from zero."
    )


def _rules(data: dict[str, Any]) -> str:
    rules = data["rules"]
    if not rules:
        return (
            "No rule was learned: no category of calls lost to a coin with its whole 95% "
            "interval below 50% over 100 or more settled calls."
        )
    rows = [
        "A rule is created when a category's Wilson 95% upper bound falls below 50% over at least "
        "100 settled calls; the calls it stops are still settled in the shadow, and it is retired "
        "when even the 80% interval reaches 50% again.",
        "",
        "| rule | status | created | retired | settled | hit rate | 95% interval | calls stopped |",
        "|---|---|---|---|---:|---:|---|---:|",
    ]
    for r in rules:
        cuts = [r[k] for k in ("regime", "asset_class", "horizon", "topic") if r[k] != "all"]
        name = f"{r['source']} calls" + (f" in {' x '.join(cuts)}" if cuts else "")
        rows.append(
            f"| {name} | {r['status']} | {r['created_at'][:10]} | "
            f"{(r['retired_at'] or '-')[:10]} | {r['settled']} | {r['hit_rate']:.1%} | "
            f"{r['low']:.3f}–{r['high']:.3f} | {r['stopped']} |"
        )
    return "\n".join(rows)


def story_summary(result: BacktestResult) -> dict[str, Any]:
    """How many stories were followed, by kind, how long, and the longest ones."""
    runs: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    statuses: dict[str, int] = {}
    for row in result.rows:
        for key, status in row.stories:
            statuses[status] = statuses.get(status, 0) + 1
            run = open_.get(key)
            if run is None:
                run = open_[key] = {"key": key, "start": row.day.isoformat(), "sessions": 0,
                                    "statuses": []}  # fmt: skip
                runs.append(run)
            run["sessions"] += 1
            run["end"] = row.day.isoformat()
            if not run["statuses"] or run["statuses"][-1] != status:
                run["statuses"].append(status)
            if status == "resolved":
                del open_[key]
    kinds: dict[str, int] = {}
    for run in runs:
        kind = run["key"].split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    longest = sorted(runs, key=lambda r: -r["sessions"])[:6]
    return {"followed": len(runs), "by_kind": kinds, "status_cycles": statuses,
            "longest": longest}  # fmt: skip


def _stories(data: dict[str, Any]) -> str:
    stories, memory = data["stories"], data["memory"]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(stories["by_kind"].items()))
    lines = [
        f"{stories['followed']} stories were detected and followed ({kinds or 'none'}). "
        f"Each cycle's dispatch names the open ones with their status; cycles spent per status: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stories["status_cycles"].items()))
        + ".",
        "",
        "| story | from | to | sessions | path |",
        "|---|---|---|---:|---|",
    ]
    for run in stories["longest"]:
        lines.append(
            f"| {run['key']} | {run['start']} | {run['end']} | {run['sessions']} | "
            f"{' → '.join(run['statuses'][:8])}{' …' if len(run['statuses']) > 8 else ''} |"
        )
    lines += [
        "",
        f"{memory['lessons']} lessons were written as calls and pooled forecasts settled; "
        f"{memory['cycles_recalling']} cycles recalled {memory['recalled']} of them (same target, "
        "same regime, a tape in a neighbouring grid cell, never one settled after the cycle).",
    ]
    return "\n".join(lines)
