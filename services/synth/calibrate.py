"""Recalibrating the synthesis' pooled probability from its own settled history.

Logistic (Platt) recalibration anchored on the base rate:

    p(up) = sigmoid(logit(base rate) + a + b * logit(pooled))

fitted by Newton's method on every pooled forecast settled by as_of (abstentions included: each
cycle's pool is a forecast of whether the target closes up), each against the base rate known
when it was made. b is what the pool's lean has been worth; a is how far the desk's own history
strayed from the base rate. A ridge holds a near 0 (the base rate rests on the whole price
history, the desk's own on a few hundred cycles: a lucky or unlucky year must not pass for an
edge) and b lightly toward 0: with thin or signal-free history the calibrated probability is the
base rate, never a confident guess.

The history is kept as a histogram of the pooled probability (bins of 0.002, each with its mean
base-rate logit), the statistic the fit needs: the fleet builds it from the database, the
backtest updates it as forecasts settle, and both fit the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.contracts import Recalibration

BIN = 0.002
# Settled forecasts needed before the calibrated probability is trusted with a call.
MIN_FORECASTS = 100
# Ridge strengths on (a, b). RIDGE_A = 250 is the curvature of ~1,000 forecasts at p = 0.5: the
# desk's history must be long before it may disagree with the base rate on its own. b is in
# units of logit(pooled), whose spread is ~0.1.
RIDGE_A = 250.0
RIDGE_B = 1.0
_TOLERANCE = 1e-10
_MAX_STEPS = 50


def logit(p: float) -> float:
    p = min(1 - 1e-9, max(1e-9, p))
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass
class History:
    """Settled pooled forecasts in bins of the pooled probability.

    bin -> [logit of the bin, count, ups, sum of the base-rate logits]; within a bin the base
    rate barely moves (it is a frequency over thousands of sessions), so its mean stands in.
    """

    bins: dict[int, list[float]] = field(default_factory=dict)
    n: int = 0
    ups: int = 0
    # What fit reads of the bins, kept while n (moved by every forecast a bin takes) stands still:
    # the backtest fits every cycle and most cycles settle no forecast.
    _cells: tuple[int, list[tuple[float, float, float, float]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def cells(self) -> list[tuple[float, float, float, float]]:
        """(logit of the bin, count, ups, mean base-rate logit) of each bin, in bin order."""
        if self._cells is None or self._cells[0] != self.n:
            self._cells = (self.n, [(x, n, k, s / n) for x, n, k, s in self.bins.values()])
        return self._cells[1]

    def add(self, pooled: float, went_up: bool, base_rate: float | None = None) -> None:
        index = round(pooled / BIN)
        cell = self.bins.get(index)
        if cell is None:
            cell = self.bins[index] = [logit(index * BIN), 0, 0, 0.0]
        cell[1] += 1
        cell[2] += int(went_up)
        # Without a known base rate the forecast is anchored on a coin.
        cell[3] += logit(base_rate) if base_rate is not None else 0.0
        self.n += 1
        self.ups += int(went_up)

    @classmethod
    def of(cls, rows: Iterable[tuple[float, bool, float | None]]) -> History:
        """From (pooled, went up, base rate of up) rows."""
        history = cls()
        for pooled, went_up, base_rate in rows:
            history.add(pooled, went_up, base_rate)
        return history


@dataclass(frozen=True)
class Calibrator:
    """A fitted recalibration; `ready` once it rests on at least MIN_FORECASTS settled forecasts.

    (vaa, vab, vbb) is the covariance of (a, b) from the penalised likelihood's curvature (the
    Laplace approximation): how far the fit itself could be off.
    """

    a: float
    b: float
    n: int
    ups: int
    minimum: int = MIN_FORECASTS
    vaa: float = 0.0
    vab: float = 0.0
    vbb: float = 0.0

    @property
    def ready(self) -> bool:
        return self.n >= self.minimum

    def apply(self, pooled: float, base_rate: float | None) -> float:
        """The calibrated p(up) for a pool, today's base rate of up as the anchor."""
        anchor = logit(base_rate) if base_rate is not None else 0.0
        return sigmoid(anchor + self.a + self.b * logit(pooled))

    def stderr(self, pooled: float, base_rate: float | None) -> float:
        """Standard error of the calibrated probability at this pool (delta method)."""
        x = logit(pooled)
        p = self.apply(pooled, base_rate)
        variance = self.vaa + 2 * x * self.vab + x * x * self.vbb
        return p * (1 - p) * math.sqrt(max(0.0, variance))

    def describe(self) -> Recalibration:
        return Recalibration(
            n=self.n, ups=self.ups, a=round(self.a, 6), b=round(self.b, 6), ready=self.ready,
            minimum=self.minimum,
        )  # fmt: skip


def fit(
    history: History, *, start: tuple[float, float] | None = None, minimum: int = MIN_FORECASTS
) -> Calibrator:
    """The ridge-penalised maximum-likelihood (a, b); start only speeds convergence (the problem
    is strictly convex, so every start reaches the same optimum)."""
    a, b = start if start is not None else (0.0, 0.0)
    cells = history.cells()
    haa = hab = hbb = 0.0
    for _ in range(_MAX_STEPS):
        ga = -RIDGE_A * a
        gb = -RIDGE_B * b
        haa, hab, hbb = RIDGE_A, 0.0, RIDGE_B
        for x, n, k, anchor in cells:
            p = sigmoid(anchor + a + b * x)
            residual = k - n * p
            weight = n * p * (1.0 - p)
            ga += residual
            gb += residual * x
            haa += weight
            hab += weight * x
            hbb += weight * x * x
        det = haa * hbb - hab * hab
        step_a = (hbb * ga - hab * gb) / det
        step_b = (haa * gb - hab * ga) / det
        a += step_a
        b += step_b
        if abs(step_a) < _TOLERANCE and abs(step_b) < _TOLERANCE:
            break
    # The curvature at the last step stands for the optimum's: the step was below tolerance.
    det = haa * hbb - hab * hab
    return Calibrator(
        a, b, history.n, history.ups, minimum, vaa=hbb / det, vab=-hab / det, vbb=haa / det
    )
