"""Recalibrating the synthesis' pooled probability from its own settled history.

Logistic (Platt) recalibration, p = sigmoid(a + b * logit(pooled)), fitted by Newton's method on
every pooled forecast settled by as_of (abstentions included: each cycle's pool is a forecast of
whether the target closes up). A light ridge pulls (a, b) toward (the history's up-rate, 0): with
thin or signal-free history the calibrated probability is the base rate, never a confident guess.

The history is kept as a histogram of the pooled probability (bins of 0.002), the statistic the
fit needs: the fleet builds it from the database, the backtest updates it as forecasts settle,
and both fit the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.contracts import Recalibration

BIN = 0.002
# Settled forecasts needed before the calibrated probability is trusted with a call.
MIN_FORECASTS = 100
# Ridge strengths on (a, b); b's is in units of logit(pooled), whose spread is ~0.1.
RIDGE_A = 0.1
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
    """Settled pooled forecasts as bins of the pooled probability (with the bin's logit)."""

    bins: dict[int, list[float]] = field(default_factory=dict)  # bin -> [logit, count, ups]
    n: int = 0
    ups: int = 0

    def add(self, pooled: float, went_up: bool) -> None:
        index = round(pooled / BIN)
        cell = self.bins.get(index)
        if cell is None:
            cell = self.bins[index] = [logit(index * BIN), 0, 0]
        cell[1] += 1
        cell[2] += int(went_up)
        self.n += 1
        self.ups += int(went_up)

    @classmethod
    def of(cls, pairs: Iterable[tuple[float, bool]]) -> History:
        history = cls()
        for pooled, went_up in pairs:
            history.add(pooled, went_up)
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

    def apply(self, pooled: float) -> float:
        return sigmoid(self.a + self.b * logit(pooled))

    def stderr(self, pooled: float) -> float:
        """Standard error of the calibrated probability at this pool (delta method)."""
        x = logit(pooled)
        p = self.apply(pooled)
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
    prior_a = logit((history.ups + 1) / (history.n + 2))
    a, b = start if start is not None else (prior_a, 0.0)
    cells = list(history.bins.values())
    haa = hab = hbb = 0.0
    for _ in range(_MAX_STEPS):
        ga = -RIDGE_A * (a - prior_a)
        gb = -RIDGE_B * b
        haa, hab, hbb = RIDGE_A, 0.0, RIDGE_B
        for x, n, k in cells:
            p = sigmoid(a + b * x)
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
