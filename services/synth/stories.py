"""Stories: narratives detected in the features and followed across cycles with a status.

Each detector measures one narrative's strength (a drawdown's depth, the fear gauge, the curve's
inversion...). A story starts when the strength crosses its threshold, and is then followed:
accelerating while it grows past where it stood a few sessions ago, reversing once it has
given back 30% of its peak, developing in between, and resolved when it falls below half its
starting threshold (or cannot be measured three cycles running). Pure: the previous cycle's
stories in, this cycle's out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.contracts import Features, Story, StoryStatus

TRAIL = 5
ACCELERATING = 1.10  # strength at least 10% above where it stood TRAIL sessions ago
REVERSING = 0.70  # strength at or below 70% of its peak
QUIET_LIMIT = 3


@dataclass(frozen=True)
class Detector:
    """One kind of story: how to measure it, when it starts, and when it is over."""

    kind: str
    measure: Callable[[Features], tuple[str, float, str] | None]  # subject, strength, detail
    start: float
    end: float


def _drawdown(f: Features) -> tuple[str, float, str] | None:
    r20 = f.returns_of(f.broad).r20
    if f.broad is None or r20 is None:
        return None
    return f.broad, -r20, f"{f.broad} {r20:+.1f}% over 20 sessions"


def _rally(f: Features) -> tuple[str, float, str] | None:
    r20 = f.returns_of(f.broad).r20
    if f.broad is None or r20 is None:
        return None
    return f.broad, r20, f"{f.broad} {r20:+.1f}% over 20 sessions"


def _fear(f: Features) -> tuple[str, float, str] | None:
    if f.vix is not None:
        return "VIX", f.vix, f"VIX at {f.vix:.1f}"
    if f.realized_vol_20d is not None:
        vol = f.realized_vol_20d * 1.2
        return (
            "volatility",
            vol,
            f"20-day realised vol {f.realized_vol_20d:.1f}% (x1.2 = {vol:.1f})",
        )
    return None


def _inversion(f: Features) -> tuple[str, float, str] | None:
    if f.curve_slope is None:
        return None
    return "10y-2y", -f.curve_slope, f"10y-2y at {f.curve_slope:+.2f} pts"


def _mega_divergence(f: Features) -> tuple[str, float, str] | None:
    broad5 = f.returns_of(f.broad).r5
    megas = [f.returns_of(m).r5 for m in f.megas]
    known = [x for x in megas if x is not None]
    if broad5 is None or len(known) < 2:
        return None
    gap = sum(known) / len(known) - broad5
    return "mega-caps", -gap, f"mega-caps {gap:+.1f} pts against {f.broad} over 5 sessions"


def _oil(f: Features) -> tuple[str, float, str] | None:
    if f.oil_r20 is None:
        return None
    return "oil", abs(f.oil_r20), f"oil {f.oil_r20:+.1f}% over 20 sessions"


def _jobs(f: Features) -> tuple[str, float, str] | None:
    if f.unemployment_change_3m is None:
        return None
    level = f" to {f.unemployment:.1f}%" if f.unemployment is not None else ""
    return (
        "unemployment",
        f.unemployment_change_3m,
        (f"unemployment {f.unemployment_change_3m:+.1f} pts in three months{level}"),
    )


DETECTORS: tuple[Detector, ...] = (
    Detector("drawdown", _drawdown, start=5.0, end=2.5),
    Detector("rally", _rally, start=5.0, end=2.5),
    Detector("fear", _fear, start=28.0, end=22.0),
    Detector("inversion", _inversion, start=0.0001, end=-0.15),
    Detector("mega-caps lagging", _mega_divergence, start=1.5, end=0.75),
    Detector("oil shock", _oil, start=20.0, end=10.0),
    Detector("jobs turning", _jobs, start=0.3, end=0.15),
)
TITLES = {
    "drawdown": "{subject} drawdown",
    "rally": "{subject} rally",
    "fear": "fear ({subject})",
    "inversion": "inverted curve ({subject})",
    "mega-caps lagging": "the mega-caps lagging the index",
    "oil shock": "oil shock",
    "jobs turning": "unemployment turning up",
}


def _status(story: Story, strength: float) -> StoryStatus:
    before = story.trail[0] if story.trail else story.strength
    if strength <= REVERSING * story.peak:
        return "reversing"
    if strength >= ACCELERATING * before and strength >= story.peak:
        return "accelerating"
    return "developing"


def follow(previous: Sequence[Story], features: Features) -> tuple[Story, ...]:
    """This cycle's stories: the open ones moved on (or resolved), new ones started.

    A story resolved last cycle is dropped; one that comes back later starts afresh.
    """
    by_key = {s.key: s for s in previous if s.status != "resolved"}
    out: list[Story] = []
    seen: set[str] = set()
    for detector in DETECTORS:
        measured = detector.measure(features)
        if measured is None:
            continue
        subject, strength, detail = measured
        key = f"{detector.kind}:{subject}"
        seen.add(key)
        story = by_key.get(key)
        if story is None:
            if strength >= detector.start:
                title = TITLES[detector.kind].format(subject=subject)
                out.append(
                    Story(
                        key=key, title=title, started=features.session,
                        last_seen=features.session, strength=round(strength, 4),
                        peak=round(strength, 4), trail=(round(strength, 4),), detail=detail,
                    )
                )  # fmt: skip
            continue
        if strength < detector.end:
            status: StoryStatus = "resolved"
        else:
            status = _status(story, strength)
        out.append(
            story.model_copy(
                update={
                    "status": status,
                    "last_seen": features.session,
                    "sessions": story.sessions + (features.session != story.last_seen),
                    "strength": round(strength, 4),
                    "peak": round(max(story.peak, strength), 4),
                    "trail": (*story.trail, round(strength, 4))[-TRAIL:],
                    "quiet": 0,
                    "detail": detail,
                }
            )
        )
    for key, story in by_key.items():
        if key in seen:
            continue
        quiet = story.quiet + 1
        out.append(
            story.model_copy(
                update={
                    "quiet": quiet,
                    "status": "resolved" if quiet >= QUIET_LIMIT else story.status,
                }
            )
        )
    return tuple(out)
