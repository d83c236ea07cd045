"""The track record's pictures, drawn from the database on request and cached until the record
changes (a dispatch published or a call settled): calibration, and rolling Brier skill against
the base rate with the naive random walk's skill on the same calls beside it."""

from __future__ import annotations

import io
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from shared.contracts import ScoreLine
from workshop.web.reading import SettledCall

# matplotlib's pyplot keeps global state: one figure at a time per process.
_DRAWING = threading.Lock()
ROLLING_WINDOW = 50


class ChartCache:
    """PNG bytes by (chart, record version); the few newest versions are kept."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._items: OrderedDict[tuple[str, object], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.draws = 0

    def get(self, name: str, version: object, draw: Callable[[], bytes]) -> bytes:
        key = (name, version)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        png = draw()
        with self._lock:
            self.draws += 1
            self._items[key] = png
            while len(self._items) > self.keep:
                self._items.popitem(last=False)
        return png


def calibration_png(calls: Sequence[SettledCall], lines: Mapping[str, ScoreLine]) -> bytes:
    """Stated probability against observed hit rate, one panel per source with settled calls."""
    # matplotlib (through the backtest's plots) loads on the first chart, not at start-up.
    from workshop.backtest.plots import Curve, quantile_bins, reliability

    sources = sorted({c.source for c in calls}, key=_source_order)
    curves = []
    for source in sources or ["synthesis"]:
        pairs = [(c.confidence, c.hit) for c in calls if c.source == source]
        line = lines.get(source)
        curves.append(
            Curve(
                source,
                line.calibration if line else (),
                quantile_bins(pairs),
                line.ece if line else None,
                len(pairs),
            )
        )
    with _DRAWING, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calibration.png"
        reliability(curves, path)
        return path.read_bytes()


def rolling_series(
    calls: Sequence[SettledCall], window: int = ROLLING_WINDOW
) -> tuple[list[datetime], list[float | None], list[float | None]]:
    """(settled_at, the source's Brier skill vs the base rate, the naive model's skill vs the base
    rate) over the last `window` calls that carry a base rate; the naive one where all the
    window's calls carry a naive probability."""
    rows = [c for c in calls if c.base_rate is not None]
    when: list[datetime] = []
    desk: list[float | None] = []
    naive: list[float | None] = []
    for i in range(len(rows)):
        if i + 1 < min(window, 20):
            continue
        part = rows[max(0, i + 1 - window) : i + 1]
        outcome = [1.0 if c.hit else 0.0 for c in part]
        base = sum(((c.base_rate or 0.0) - y) ** 2 for c, y in zip(part, outcome, strict=True))
        mine = sum((c.confidence - y) ** 2 for c, y in zip(part, outcome, strict=True))
        when.append(rows[i].settled_at)
        desk.append(1.0 - mine / base if base > 1e-12 else None)
        if all(c.naive is not None for c in part) and base > 1e-12:
            theirs = sum(((c.naive or 0.0) - y) ** 2 for c, y in zip(part, outcome, strict=True))
            naive.append(1.0 - theirs / base)
        else:
            naive.append(None)
    return when, desk, naive


def rolling_png(calls: Sequence[SettledCall], window: int = ROLLING_WINDOW) -> bytes:
    """Rolling Brier skill of each source against the base rate (0, dashed), with the naive
    random walk's skill on the synthesis' calls when the calls carry it."""
    from matplotlib import dates
    from matplotlib.figure import Figure

    from workshop.backtest.plots import COLOURS

    sources = sorted({c.source for c in calls}, key=_source_order)
    with _DRAWING:
        # A Figure of its own (no pyplot): nothing global is touched while it is drawn.
        fig = Figure(figsize=(9, 4.2))
        ax = fig.subplots()
        drawn = False
        for source in sources:
            when, desk, naive = rolling_series([c for c in calls if c.source == source], window)
            if not when:
                continue
            colour = COLOURS.get(source, "#555555")
            x = dates.date2num(when)
            ax.plot(x, _nan(desk), color=colour, linewidth=1.2, label=source)
            if any(v is not None for v in naive):
                ax.plot(x, _nan(naive), color=colour, linewidth=0.9, linestyle=":",
                        label=f"naive random walk on {source}'s calls")  # fmt: skip
            drawn = True
        locator = dates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
        ax.axhline(0.0, color="#888888", linestyle="--", linewidth=0.8, label="base rate")
        ax.set_ylabel(f"Brier skill vs base rate\n(last {window} settled calls)")
        ax.set_xlabel("date the call settled")
        ax.set_title("Rolling skill: above the dashed line beats quoting the base rate")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no settled calls with a base rate yet", transform=ax.transAxes,
                    ha="center")  # fmt: skip
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _nan(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _source_order(source: str) -> tuple[int, str]:
    return (0 if source == "synthesis" else 1, source)
