"""The backtest's figures: reliability (calibration) curves and rolling hit rate and Brier skill.

Drawn with matplotlib's Agg backend: no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

from shared.contracts import CalibrationBucket

COLOURS = {"synthesis": "#1f4e79", "macro": "#c0504d", "flow": "#4f8f3a", "contrarian": "#8064a2"}


@dataclass(frozen=True)
class Curve:
    """One source's calibration: the fixed ten buckets and finer equal-count bins."""

    source: str
    buckets: tuple[CalibrationBucket, ...]
    quantiles: Sequence[tuple[float, float, int]]  # (mean stated, observed, n)
    ece: float | None
    calls: int
    stated: str = "stated probability the call comes true"
    observed: str = "observed hit rate"
    unit: str = "settled calls"


@dataclass(frozen=True)
class Rolling:
    """One source's rolling series over settled calls."""

    source: str
    when: Sequence[datetime]
    hit_rate: Sequence[float]
    skill: Sequence[float | None]


def quantile_bins(
    pairs: Sequence[tuple[float, bool]], bins: int = 8
) -> list[tuple[float, float, int]]:
    """Equal-count bins of (stated probability, outcome): finer than fixed buckets where calls
    crowd into one narrow band, as a desk's 52-60% calls do."""
    # By probability only: sorting the (p, outcome) pairs would file ties by outcome, and bins
    # cut through a tie would then look miscalibrated when they are not.
    ordered = sorted(pairs, key=lambda pair: pair[0])
    # Fewer than ~100 calls a bin is noise dressed as a curve.
    bins = min(bins, len(ordered) // 100)
    if bins == 0:
        return []
    out = []
    for i in range(bins):
        part = ordered[i * len(ordered) // bins : (i + 1) * len(ordered) // bins]
        if part:
            out.append(
                (
                    sum(p for p, _ in part) / len(part),
                    sum(h for _, h in part) / len(part),
                    len(part),
                )
            )
    return out


def reliability(curves: Sequence[Curve], path: Path) -> None:
    """One panel per source: stated probability against observed frequency, with the diagonal."""
    columns = min(3, len(curves))
    rows = -(-len(curves) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.0 * columns, 4.8 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(curves) :]:
        ax.set_visible(False)
    for ax, curve in zip(flat, curves, strict=False):
        colour = COLOURS.get(curve.source, "#555555")
        points = [(b.mean_confidence, b.hit_rate) for b in curve.buckets]
        points += [(m, o) for m, o, _ in curve.quantiles]
        values = [v for pair in points for v in pair]
        lo = min([0.4, *values]) - 0.05
        hi = max([0.7, *values]) + 0.05
        ax.plot([lo, hi], [lo, hi], linestyle="--", color="#888888", label="perfect calibration")
        if curve.quantiles:
            ax.plot(
                [m for m, _, _ in curve.quantiles],
                [o for _, o, _ in curve.quantiles],
                marker="o",
                markersize=3,
                linewidth=1,
                color=colour,
                alpha=0.55,
                label="equal-count bins",
            )
        for b in curve.buckets:
            ax.scatter(
                [b.mean_confidence], [b.hit_rate], s=30 + 220 * b.count / max(1, curve.calls),
                color=colour, edgecolor="black", zorder=3,
            )  # fmt: skip
            ax.annotate(
                f"n={b.count}", (b.mean_confidence, b.hit_rate), textcoords="offset points",
                xytext=(6, -12), fontsize=8,
            )  # fmt: skip
        ece = "-" if curve.ece is None else f"{curve.ece:.3f}"
        ax.set_title(f"{curve.source}\n{curve.calls} {curve.unit}, ECE {ece}", fontsize=10)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(curve.stated)
        ax.set_ylabel(curve.observed)
        ax.grid(alpha=0.3)
        if not curve.buckets:
            ax.text(0.5, 0.5, f"no {curve.unit}", transform=ax.transAxes, ha="center")
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle("Reliability: ten fixed buckets (dots, sized by calls) and equal-count bins")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rolling(series: Sequence[Rolling], window: int, path: Path, notes: Mapping[str, str]) -> None:
    """Rolling hit rate (top) and rolling Brier skill against the base rate (bottom)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for s in series:
        if not s.when:
            continue
        colour = COLOURS.get(s.source, "#555555")
        label = f"{s.source} {notes.get(s.source, '')}".strip()
        top.plot(s.when, s.hit_rate, color=colour, linewidth=1.1, label=label)
        skill = [float("nan") if v is None else v for v in s.skill]
        bottom.plot(s.when, skill, color=colour, linewidth=1.1, label=label)
    top.axhline(0.5, color="#888888", linestyle="--", linewidth=0.8)
    bottom.axhline(0.0, color="#888888", linestyle="--", linewidth=0.8)
    top.set_ylabel(f"hit rate, last {window} settled calls\n(all of them while fewer)")
    bottom.set_ylabel(f"Brier skill vs base rate, last {window}")
    bottom.set_xlabel("date the call settled")
    top.set_title("Rolling record (dashed: a coin / the base rate)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no settled calls", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
