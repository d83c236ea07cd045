"""The menu of calls: every candidate the desk could make this cycle, each with a calibrated
probability, its own point-in-time base rate and the naive random walk's probability; and the
choice of the one call whose edge over its base rate is largest and beyond the calibration's
own error (or none, with the candidate that came closest and why it fell short).

For each priceable symbol and each horizon (24 h, 48 h, 5 sessions) the menu holds:
- direction: the close is higher than the reference (its complement: lower);
- threshold: the close is beyond the grid move (shared.events) above or below the reference
  nearest NEAR_Z standard deviations of the horizon's move (naive probability about 1/4), a
  level close enough to matter, never one so far that "it will not get there" is free;
- range: the close is within that same band (naive probability about a coin).

Each kind has its own calibration, a logistic model of the event on (logit of the naive
probability, logit of the base rate, the minds' lean toward the event, the symbol's stretch: its
last five sessions' move in standard deviations of its trailing volatility, toward the event),
fitted on candidates settled by as_of (ridge toward "the naive model" for threshold and range,
"the base rate" for direction). Direction on a volatility index has a calibration of its own: a
volatility index reverts after a run (measured on replay-dev's VIX, 2014-2018, fitted on the first
half: a five-session call from the stretch scores +0.06 Brier skill over the base rate on the
second), where an index or a stock shows no such thing, and one pooled fit would lend the stocks
VIX's reversion and VIX their drift. The history is binned on those four numbers, the statistic
the fit needs, so a fit costs the same on a decade as on a month. Pure: the backtest and the
fleet feed it the history.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from typing import NamedTuple

import numpy as np

from shared.calendar import maturity
from shared.contracts import (
    SYNTHESIS,
    CallKind,
    CallSide,
    Candidate,
    Features,
    Prediction,
    Regime,
    call_wording,
    event_holds,
    horizon_sessions,
)
from shared.events import asset_class, event_key, grid, naive_at_move, topic_of
from shared.judging import TERMS, Before, verdict_before_terms
from shared.ports import SettlementPrices
from shared.trusted import built

HORIZONS = (24, 48, 120)
TRADING_DAYS = 252
# The calibrations: one per kind, a threshold's upside and downside apart, and direction on a
# volatility index apart from direction on anything else (see the module's docstring).
MODELS = ("direction", "direction:volatility", "threshold:gt", "threshold:lt", "range")
# How a dispatch names each calibration.
MODEL_WORDS = {
    "direction": "direction",
    "direction:volatility": "volatility direction",
    "threshold:gt": "levels above",
    "threshold:lt": "levels below",
    "range": "ranges",
}
# A threshold candidate sits at the grid move whose naive probability is nearest this: a level
# the tape could reach, not one so far that "it will not get there" is free.
NEAR_Z = 0.6745  # P(Z > z) = 1/4 and P(|Z| < z) = 1/2 for a standard normal
# Settled candidates a kind's calibration needs before the desk trusts it with a call.
MIN_SETTLED = 300
# A kind is called only once its calibrated probabilities, each stated before the outcome, have
# beaten the base rate out of sample by this many standard errors: a model that only fits the
# past is not an edge.
PROVEN_T = 2.0
# The edge that must remain once one standard error of the calibrated probability is taken off.
MIN_EDGE = 0.02
# How much an edge that also departs from the naive random walk is preferred in the rank. Zero,
# measured: on replay-dev a weight of 0.25 chose more tail thresholds where the calibration is
# least sure, and their skill against the naive model fell (-0.031 against -0.023 at zero).
NAIVE_WEIGHT = 0.0
# Bins of the fit's statistic: logit(naive), logit(base rate), lean, stretch.
BIN_NAIVE, BIN_BASE, BIN_LEAN, BIN_STRETCH = 0.1, 0.1, 0.01, 0.5
INPUTS = 4  # the calibration's inputs; with the intercept, INPUTS + 1 parameters
RIDGE = 4.0
_STEPS = 25
_TOLERANCE = 1e-7
P_FLOOR = 1e-4
_SEEN = 4096  # evaluations a fit remembers (see KindFit.evaluate)


def logit(p: float) -> float:
    p = min(1 - P_FLOOR, max(P_FLOOR, p))
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


_SIDES: dict[str, CallSide] = {"up": "up", "gt": "up", "lt": "down", "in": "inside"}


@cache
def _model_of(kind: str, event: str, target: str) -> str:
    """The calibration an option is scored by: one per kind, a threshold's upside and downside
    apart (a market's tails are not mirror images), and a volatility index's direction apart (it
    reverts)."""
    if kind == "threshold":
        return f"threshold:{event}"
    if kind == "direction" and asset_class(target) == "volatility":
        return "direction:volatility"
    return kind


class _Terms(NamedTuple):
    target: str
    kind: CallKind
    event: str  # up | gt | lt | in
    move_pct: float
    horizon_hours: int
    reference: float
    session: date
    base: float
    naive: float
    lean: float
    stretch: float  # the symbol's stretch (z of its last sessions' move), signed up
    # Computed once (every candidate is evaluated, proposed and binned): the calibration's
    # inputs and the calibration it is scored by.
    logits: tuple[float, float, float, float]
    model: str


class Option(_Terms):
    """One event on the menu: what would be called, on what terms, and what it is measured by.

    A tuple (frozen, built by one call: the menu builds and leans some 300,000 of these over a
    replay); Option(...) takes the terms and computes the calibration's inputs and model."""

    __slots__ = ()

    def __new__(
        cls,
        target: str,
        kind: CallKind,
        event: str,
        move_pct: float,
        horizon_hours: int,
        reference: float,
        session: date,
        base: float,
        naive: float,
        lean: float = 0.0,
        stretch: float = 0.0,
    ) -> Option:
        # The stretch toward the event: up and above the line with it, below against it, and a
        # range by its size alone (a run either way is a loud tape).
        if event == "lt":
            toward = -stretch
        elif event == "in":
            toward = abs(stretch)
        else:
            toward = stretch
        return _option((target, kind, event, move_pct, horizon_hours, reference, session, base,
                        naive, lean, stretch, (logit(naive), logit(base), lean, toward),
                        _model_of(kind, event, target)))  # fmt: skip

    @property
    def side(self) -> CallSide:
        return _SIDES[self.event]

    @property
    def line(self) -> float:
        if self.kind == "threshold":
            return self.reference * (1.0 + self.move_pct / 100.0)
        return self.reference

    @property
    def range_pct(self) -> float | None:
        return self.move_pct if self.kind == "range" else None

    def x(self) -> tuple[float, float, float, float]:
        return self.logits


_LOGIT_HALF = logit(0.5)


def _option(values: tuple[object, ...]) -> Option:
    """An Option from all its fields, logits and model included, in field order: what Option(...)
    builds, without recomputing what the caller has."""
    return tuple.__new__(Option, values)


def options(
    features: Features,
    lean_up: Mapping[str, float] | None = None,
    horizons: Sequence[int] = HORIZONS,
) -> list[Option]:
    """Every candidate event priceable from the features: each symbol with a close, a trailing
    volatility and the horizon's base rates. lean_up is the minds' pooled p(up) - 0.5 per target
    (the broad index, where they argue)."""
    return leaned(candidates(features, horizons), lean_up)


def leaned(weighed: Sequence[Option], lean_up: Mapping[str, float] | None) -> list[Option]:
    """The candidates with the minds' lean toward each event: up and above the line lean with
    p(up), below it against; a range is not a direction, so it has none. Building the candidates
    once and leaning them is how a caller that weighs the menu twice a cycle pays for it once."""
    if not lean_up:
        return list(weighed)
    out: list[Option] = []
    for option in weighed:
        lean = lean_up.get(option.target)
        if lean is None or option.kind == "range":
            out.append(option)
        else:
            o = option  # built anew, not dataclasses.replace: the menu leans thousands of these
            leaning = -lean if o.event == "lt" else lean
            x1, x2, _, x4 = o.logits  # the lean is the third input; the others stay
            out.append(
                _option((o.target, o.kind, o.event, o.move_pct, o.horizon_hours, o.reference,
                         o.session, o.base, o.naive, leaning, o.stretch, (x1, x2, leaning, x4),
                         o.model))
            )  # fmt: skip
    return out


@cache
def _events(symbol: str, sessions: int, move: float) -> tuple[tuple[str, float, str], ...]:
    """(event, signed move, its event-rate key) of the three events at a grid move: above the
    move, within it, below minus it (a grid is a handful of moves, so this is built once)."""
    return tuple(
        (event, signed, event_key(symbol, sessions, f"{event}{signed:g}"))
        for event, signed in (("gt", move), ("in", move), ("lt", -move))
    )


def _nearest(moves: Sequence[float], aim: float) -> float:
    """The first of the moves whose log is nearest aim's (min by that key, written out)."""
    best, gap = moves[0], abs(math.log(moves[0] / aim))
    for g in moves[1:]:
        d = abs(math.log(g / aim))
        if d < gap:
            best, gap = g, d
    return best


def candidates(features: Features, horizons: Sequence[int] = HORIZONS) -> list[Option]:
    """The menu without the minds' lean (see options)."""
    out: list[Option] = []
    rates = features.event_rates
    for symbol in sorted(features.last_close):
        reference = features.last_close[symbol]
        returns = features.returns.get(symbol)
        vol = returns.vol20 if returns is not None else None
        if reference <= 0 or vol is None or vol <= 0:
            continue
        # A symbol that did not trade this session (its last bar carried) is not called on:
        # its reference would be a stale price.
        session = (returns.session if returns is not None else None) or features.session
        if session != features.session:
            continue
        sd = vol / math.sqrt(TRADING_DAYS)  # daily % sd of log moves
        z = returns.stretch() if returns is not None else 0.0
        for hours in horizons:
            n = horizon_sessions(hours)
            base_up = features.base_rate(symbol, hours, "up")
            # Built as Option(...) would (see _option): its inputs are the logits of the naive
            # probability and the base rate, no lean, and the stretch toward the event.
            if base_up is not None:
                out.append(
                    _option((symbol, "direction", "up", 0.0, hours, reference, session, base_up,
                             0.5, 0.0, z, (_LOGIT_HALF, logit(base_up), 0.0, z),
                             _model_of("direction", "up", symbol)))
                )  # fmt: skip
            # The grid move nearest NEAR_Z standard deviations of the horizon's move: there a
            # threshold's naive probability is about 1/4 and a range's about a coin.
            move = _nearest(grid(symbol), NEAR_Z * sd * math.sqrt(n))
            # Above the move, within it, below minus it: in _events' order (gt, in, lt).
            naives = naive_at_move(move, sd, n)
            for (event, signed_move, key), naive in zip(
                _events(symbol, n, move), naives, strict=True
            ):
                rate = rates.get(key)
                if rate is None:
                    continue
                kind: CallKind = "range" if event == "in" else "threshold"
                # Option itself turns the stretch toward the event (one rule, one place).
                out.append(Option(symbol, kind, event, signed_move, hours, reference, session,
                                  rate, naive, 0.0, z))  # fmt: skip
    return out


# --- the calibration -----------------------------------------------------------------------------


@dataclass
class MenuHistory:
    """Settled candidates per kind, binned: (naive bin, base bin, lean bin, stretch bin) -> [n,
    hits, sums of the four inputs]."""

    cells: dict[str, dict[tuple[int, int, int, int], list[float]]] = field(
        default_factory=lambda: {k: {} for k in MODELS}
    )
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODELS, 0))
    from_desk: int = 0  # of them, candidates weighed on the desk's own cycles (with the lean)
    # Per model, out of sample: candidates scored by the fit in force when they were weighed,
    # [count, sum of Brier gains over the base rate, sum of squared gains, sum of base Briers].
    tested: dict[str, list[float]] = field(
        default_factory=lambda: {k: [0.0, 0.0, 0.0, 0.0] for k in MODELS}
    )
    # The bins as the fit reads them, one array per model, brought up to date at each fit from
    # the cells changed since the last (rebuilding it whole each refit was a tenth of a backtest).
    _tables: dict[str, np.ndarray] = field(
        default_factory=lambda: {k: np.zeros((0, INPUTS + 2)) for k in MODELS},
        repr=False, compare=False,
    )  # fmt: skip
    _rows: dict[str, dict[tuple[int, int, int, int], int]] = field(
        default_factory=lambda: {k: {} for k in MODELS}, repr=False, compare=False
    )
    _dirty: dict[str, set[tuple[int, int, int, int]]] = field(
        default_factory=lambda: {k: set() for k in MODELS}, repr=False, compare=False
    )

    def table(self, model: str) -> np.ndarray:
        """The model's bins as rows of [n, hits, sums of the four inputs] (no order promised)."""
        rows, dirty, cells = self._rows[model], self._dirty[model], self.cells[model]
        table = self._tables[model]
        if dirty:
            changed = [rows.setdefault(key, len(rows)) for key in dirty]
            if len(rows) > len(table):
                grown = np.zeros((max(64, 2 * len(table), len(rows)), INPUTS + 2))
                grown[: len(table)] = table
                table = self._tables[model] = grown
            # One assignment of every changed bin (row by row was most of a refit's cost).
            table[changed] = [cells[key] for key in dirty]
            dirty.clear()
        return table[: len(rows)]

    def proven(self, model: str) -> bool:
        """Whether the model's probabilities, each given before its outcome was known, have beaten
        the base rate by PROVEN_T standard errors over at least MIN_SETTLED candidates."""
        n, gain, squares, _ = self.tested[model]
        if n < MIN_SETTLED:
            return False
        mean = gain / n
        var = max(0.0, squares / n - mean * mean) * n / (n - 1)
        return mean > PROVEN_T * math.sqrt(var / n)

    def out_of_sample_skill(self, model: str) -> float | None:
        n, gain, _, base = self.tested[model]
        return gain / base if n and base > 0 else None

    def add(
        self, option: Option, hit: bool, *, desk: bool = False, stated: float | None = None
    ) -> None:
        self.add_all(((option, hit, desk, stated),))

    def add_all(self, settled: Iterable[tuple[Option, bool, bool, float | None]]) -> None:
        """Settled candidates, in order: (option, hit, weighed on the desk's cycle, the
        probability the fit in force gave it or None)."""
        tested, all_cells, all_dirty, counts = self.tested, self.cells, self._dirty, self.counts
        for option, hit, desk, stated in settled:
            model = option.model
            if stated is not None:
                y = 1.0 if hit else 0.0
                ref = (option.base - y) ** 2
                gain = ref - (stated - y) ** 2
                cell = tested[model]
                cell[0] += 1
                cell[1] += gain
                cell[2] += gain * gain
                cell[3] += ref
            x1, x2, x3, x4 = option.logits
            key = (
                round(x1 / BIN_NAIVE), round(x2 / BIN_BASE), round(x3 / BIN_LEAN),
                round(x4 / BIN_STRETCH),
            )  # fmt: skip
            cells = all_cells[model]
            row = cells.get(key)
            if row is None:
                row = cells[key] = [0.0] * (INPUTS + 2)
            all_dirty[model].add(key)
            row[0] += 1
            row[1] += 1.0 if hit else 0.0
            row[2] += x1
            row[3] += x2
            row[4] += x3
            row[5] += x4
            counts[model] += 1
            if desk:
                self.from_desk += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


Theta = tuple[float, float, float, float, float]


def _prior(kind: str) -> Theta:
    # Threshold and range start at the naive model, direction at the base rate: thin history
    # leaves the calibrated probability at the baseline, never a confident guess.
    if kind.startswith("direction"):
        return (0.0, 0.0, 1.0, 0.0, 0.0)
    return (0.0, 1.0, 0.0, 0.0, 0.0)


def _solve_all(h: list[list[float]], rhs: Sequence[Sequence[float]]) -> list[list[float]]:
    """Solve h x = g for each g of rhs (h symmetric positive definite, a handful square) by one
    Gaussian elimination of [h | every g]: each g goes through exactly the row operations it
    would alone (they depend on h only), so each solution is the one solving for g alone gives."""
    n, m = len(h), len(rhs)
    a = [[*row, *(g[i] for g in rhs)] for i, row in enumerate(h)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col] != 0.0:
                f = a[r][col] / a[col][col]
                for c in range(col, n + m):
                    a[r][c] -= f * a[col][c]
    return [[a[i][n + j] / a[i][i] for i in range(n)] for j in range(m)]


def _solve(h: list[list[float]], g: list[float]) -> list[float]:
    return _solve_all(h, [g])[0]


def _inverse(h: list[list[float]]) -> list[list[float]]:
    n = len(h)
    cols = _solve_all(h, [[1.0 if i == j else 0.0 for i in range(n)] for j in range(n)])
    return [[cols[j][i] for j in range(n)] for i in range(n)]


@dataclass(frozen=True)
class KindFit:
    """One kind's fitted calibration: p = sigmoid(t0 + t1 logit(naive) + t2 logit(base) + t3
    lean + t4 stretch), with the covariance of t from the penalised likelihood's curvature."""

    kind: str
    theta: Theta
    cov: tuple[tuple[float, ...], ...]
    n: int
    minimum: int = MIN_SETTLED
    proven: bool = True  # beaten the base rate out of sample (MenuHistory.proven)
    # What evaluate gave, by the option's inputs: a cycle weighs each candidate twice with one
    # fit (choosing the call, then proposing the candidates with the probability they were given).
    _seen: dict[tuple[float, float, float, float], tuple[float, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def ready(self) -> bool:
        return self.n >= self.minimum and self.proven

    def evaluate(self, option: Option) -> tuple[float, float]:
        """The calibrated probability of the option's event and its standard error (delta
        method), in one pass (the menu weighs thousands of these a second)."""
        seen = self._seen.get(option.logits)
        if seen is not None:
            return seen
        if len(self._seen) >= _SEEN:
            self._seen.clear()  # a fit a long-running desk keeps for many cycles stays small
        seen = self._seen[option.logits] = self._evaluate(option)
        return seen

    def _evaluate(self, option: Option) -> tuple[float, float]:
        x1, x2, x3, x4 = option.x()
        t0, t1, t2, t3, t4 = self.theta
        p = sigmoid(t0 + t1 * x1 + t2 * x2 + t3 * x3 + t4 * x4)
        # v' cov v for v = (1, x1, x2, x3, x4), row by row in this order (written out: hot).
        c0, c1, c2, c3, c4 = self.cov
        var = (
            0.0
            + 1.0 * (c0[0] + c0[1] * x1 + c0[2] * x2 + c0[3] * x3 + c0[4] * x4)
            + x1 * (c1[0] + c1[1] * x1 + c1[2] * x2 + c1[3] * x3 + c1[4] * x4)
            + x2 * (c2[0] + c2[1] * x1 + c2[2] * x2 + c2[3] * x3 + c2[4] * x4)
            + x3 * (c3[0] + c3[1] * x1 + c3[2] * x2 + c3[3] * x3 + c3[4] * x4)
            + x4 * (c4[0] + c4[1] * x1 + c4[2] * x2 + c4[3] * x3 + c4[4] * x4)
        )
        return p, p * (1 - p) * math.sqrt(max(0.0, var))

    def probability(self, option: Option) -> float:
        return self.evaluate(option)[0]

    def stderr(self, option: Option) -> float:
        return self.evaluate(option)[1]


def fit_kind(
    kind: str,
    table: np.ndarray,
    n: int,
    start: Sequence[float] | None = None,
    minimum: int = MIN_SETTLED,
) -> KindFit:
    """Ridge-penalised maximum likelihood by Newton's method over the binned history.

    One step is a few array operations over every bin (numpy): a decade of candidates fills a
    thousand bins or so per kind, and the fit is redone every refit."""
    prior = _prior(kind)
    theta = list(start if start is not None else prior)
    count, hits = table[:, 0], table[:, 1]
    # Each bin's mean inputs, with the intercept's column of ones: the design matrix.
    design = np.column_stack((np.ones(len(table)), table[:, 2:] / count[:, None]))
    ridge = np.diag([RIDGE] * (INPUTS + 1))
    h = [[0.0] * (INPUTS + 1) for _ in range(INPUTS + 1)]
    anchor = np.array(prior)
    for _ in range(_STEPS):
        at = np.array(theta)
        z = design @ at
        e = np.exp(-np.abs(z))  # the stable sigmoid on both signs of z
        q = 1.0 + e
        p = np.where(z >= 0, 1.0 / q, e / q)
        expected = count * p
        r = hits - expected
        w = expected * (1.0 - p)  # count * p * (1 - p), multiplied in that order
        g = (design.T @ r - RIDGE * (at - anchor)).tolist()
        h = ((design.T * w) @ design + ridge).tolist()
        step = _solve(h, g)
        theta = [t + s for t, s in zip(theta, step, strict=True)]
        if max(abs(s) for s in step) < _TOLERANCE:
            break
    cov = _inverse(h)
    return KindFit(kind, (theta[0], theta[1], theta[2], theta[3], theta[4]),
                   tuple(tuple(row) for row in cov), n, minimum)  # fmt: skip


@dataclass(frozen=True)
class MenuCalibrator:
    """Every kind's fit and what the record rests on."""

    fits: Mapping[str, KindFit]
    settled: int
    from_desk: int = 0
    warm: int = 0  # of the settled candidates, those from before the first cycle (replay or live)

    def describe(self) -> str:
        ready = [MODEL_WORDS[k] for k in MODELS if self.fits[k].ready]
        unready = [MODEL_WORDS[k] for k in MODELS if not self.fits[k].ready]
        per = ", ".join(f"{MODEL_WORDS[k]} {self.fits[k].n:,}" for k in MODELS)
        warm = (
            f"; {self.warm:,} of them from the history before my first cycle (the warm start)"
            if self.warm
            else ""
        )
        return (
            f"my calibration rests on {self.settled:,} settled candidates ({per}){warm}; "
            f"{self.from_desk:,} weighed on my own cycles with the minds' lean; "
            + (
                f"trusted for {', '.join(ready)}"
                + (
                    f" (not for {', '.join(unready)}: not yet beating their base rates out of "
                    "sample)"
                    if unready
                    else ""
                )
                if ready
                else f"not yet trusted for any kind (needs {self.fits['range'].minimum} each)"
            )
        )


def fit_menu(history: MenuHistory, previous: MenuCalibrator | None = None,
             *, minimum: int = MIN_SETTLED, warm: int = 0) -> MenuCalibrator:  # fmt: skip
    """Refit every kind; the previous fit only speeds convergence (the problem is convex)."""
    fits = {
        kind: replace(
            fit_kind(
                kind,
                history.table(kind),
                history.counts[kind],
                previous.fits[kind].theta if previous is not None else None,
                minimum,
            ),
            proven=history.proven(kind),
        )
        for kind in MODELS
    }
    return MenuCalibrator(fits, history.total, history.from_desk, warm)


# --- pending candidates and their settlement -----------------------------------------------------


@dataclass
class MenuBook:
    """Candidates weighed and waiting for their first close after maturity; settled by the
    resolver's own judge into the history the calibration is fitted on."""

    history: MenuHistory = field(default_factory=MenuHistory)
    _heap: list[tuple[datetime, int, Option, bool, float | None]] = field(default_factory=list)
    _seq: int = 0
    warm: int = 0  # candidates settled before the first cycle (the warm start)
    calibrator: MenuCalibrator | None = None

    def refit(self, minimum: int = MIN_SETTLED) -> MenuCalibrator:
        """The calibration on everything settled so far (the last fit speeds convergence)."""
        self.calibrator = fit_menu(self.history, self.calibrator, minimum=minimum, warm=self.warm)
        return self.calibrator

    def propose(
        self,
        weighed: Iterable[Option],
        made_at: datetime,
        *,
        desk: bool = False,
        calibrator: MenuCalibrator | None = None,
    ) -> None:
        """Candidates weighed at made_at; with the calibrator then in force, each keeps the
        probability it was given, so that each kind is judged out of sample when it settles."""
        dues: dict[tuple[date, int], datetime] = {}
        for option in weighed:
            slot = (option.session, option.horizon_hours)
            if slot not in dues:
                dues[slot] = maturity(made_at, option.session, option.horizon_hours)
            due = dues[slot]
            self._seq += 1
            stated = (
                calibrator.fits[option.model].evaluate(option)[0]
                if calibrator is not None
                else None
            )
            heapq.heappush(self._heap, (due, self._seq, option, desk, stated))

    def settle(self, market: SettlementPrices, now: datetime) -> int:
        """Settle what matured and is known by now; a candidate without a close within the
        grace period is dropped (inconclusive), never counted as a hit or a miss."""
        waiting: list[tuple[datetime, int, Option, bool, float | None]] = []
        # The candidates of one symbol and horizon share their settling close, and with it all
        # of outcome() but the terms (shared.judging.verdict_before_terms).
        shared: dict[tuple[str, datetime], tuple[Before, float]] = {}
        heap = self._heap
        settled: list[tuple[Option, bool, bool, float | None]] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            due, _, option, desk, stated = entry
            key = (option.target, due)
            known = shared.get(key)
            if known is None:
                quote = market.settlement_quote(option.target, due, now)
                before = verdict_before_terms(
                    quote, matures_at=due, now=now, attempts=0, max_attempts=1
                )
                known = shared[key] = (before, quote.price if quote is not None else 0.0)
            before, price = known
            if before is None:
                waiting.append(entry)
                continue
            if before == TERMS:
                event = option.event
                kind = option.kind
                # Option's side, line and range_pct, as event_holds takes them.
                hit = event_holds(
                    kind,
                    _SIDES[event],
                    option.reference,
                    option.reference * (1.0 + option.move_pct / 100.0)
                    if kind == "threshold"
                    else option.reference,
                    option.move_pct if kind == "range" else None,
                    price,
                )
                settled.append((option, hit, desk, stated))
        self.history.add_all(settled)
        for entry in waiting:
            heapq.heappush(heap, entry)
        return len(settled)


# --- the choice ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scored:
    """A candidate with the side worth calling (the one more likely than not) and its numbers."""

    option: Option
    side: CallSide
    probability: float
    base: float
    naive: float
    stderr: float
    margin: float
    ready: bool

    @property
    def edge(self) -> float:
        return self.probability - self.base

    @property
    def line(self) -> float:
        return self.option.line

    def wording(self) -> str:
        o = self.option
        return call_wording(o.target, o.kind, self.side, o.reference, o.line, o.range_pct,
                            o.horizon_hours)  # fmt: skip

    def candidate(self, verdict: str) -> Candidate:
        o = self.option
        # Trusted (shared.trusted): every field, in field order, of numbers the menu computed
        # (probabilities of the likelier side and their complements, a non-negative error).
        return built(
            Candidate,
            {
                "wording": self.wording(),
                "target": o.target,
                "kind": o.kind,
                "direction": self.side,
                "horizon_hours": o.horizon_hours,
                "probability": round(self.probability, 4),
                "base_rate": round(self.base, 4),
                "naive_probability": round(self.naive, 4),
                "stderr": round(self.stderr, 4),
                "edge": round(self.edge, 4),
                "edge_naive": round(self.probability - self.naive, 4),
                "margin": round(self.margin, 4),
                "verdict": verdict,
            },
        )


_FLIP: dict[str, CallSide] = {"up": "down", "down": "up", "inside": "outside", "outside": "inside"}


def score(option: Option, calibrator: MenuCalibrator, min_edge: float = MIN_EDGE) -> Scored:
    fit = calibrator.fits[option.model]
    p, se = fit.evaluate(option)
    # The edge is the distance from the base rate either way, and the side called the likelier
    # one: "inside at 76% where 87% is usual" is a call too (the dispatch says it is rarer than
    # usual). Measured on replay-dev: keeping only calls whose side beats its own base rate cut the
    # skill over the naive model from +0.029 to +0.007, because the calls it drops are those where
    # the calibration knows most beyond the random walk (a loud tape's reverting volatility).
    margin = abs(p - option.base) - se - min_edge
    if p >= 0.5:
        return Scored(option, option.side, p, option.base, option.naive, se, margin, fit.ready)
    return Scored(option, _FLIP[option.side], 1 - p, 1 - option.base, 1 - option.naive, se,
                  margin, fit.ready)  # fmt: skip


def rank(scored: Scored) -> float:
    """The best call has the most edge over its base rate beyond its error (NAIVE_WEIGHT can
    favour edges that depart from the naive random walk; measured, it does not help)."""
    return scored.margin + NAIVE_WEIGHT * abs(scored.probability - scored.naive)


def choose(
    weighed: Sequence[Option], calibrator: MenuCalibrator, min_edge: float = MIN_EDGE
) -> tuple[Scored | None, Scored | None, str]:
    """(the call, None, "") or (None, the closest candidate, why it fell short)."""
    if not weighed:
        return None, None, "no symbol has a price, a trailing volatility and a base rate"
    # max(key=rank) over the scored candidates, trusted ones first, without building a Scored
    # for each: the first of the largest rank wins, as with max.
    top: tuple[float, Option] | None = None
    top_trusted: tuple[float, Option] | None = None
    fits = calibrator.fits
    for option in weighed:
        fit = fits[option.model]
        p, se = fit.evaluate(option)
        margin = abs(p - option.base) - se - min_edge
        probability, naive = (p, option.naive) if p >= 0.5 else (1 - p, 1 - option.naive)
        value = margin + NAIVE_WEIGHT * abs(probability - naive)
        if top is None or value > top[0]:
            top = (value, option)
        if fit.ready and (top_trusted is None or value > top_trusted[0]):
            top_trusted = (value, option)
    if top_trusted is None:
        assert top is not None
        return (
            None,
            score(top[1], calibrator, min_edge),
            (f"my calibration is not trusted yet for any kind of call ({calibrator.describe()})"),
        )
    best = score(top_trusted[1], calibrator, min_edge)
    if best.margin >= 0:
        return best, None, ""
    return (
        None,
        best,
        (
            f"the closest, {best.wording()}, is at {best.probability:.3f} against its base rate "
            f"{best.base:.3f} (edge {best.edge:+.3f}), and my calibration is good to ±"
            f"{best.stderr:.3f}: {max(0.0, abs(best.edge) - best.stderr):.3f} of edge remains, "
            f"below the {min_edge:.3f} I need"
        ),
    )


def prediction_of(scored: Scored, made_at: datetime, regime: Regime, basis: str) -> Prediction:
    """The chosen candidate as a Prediction the resolver settles exactly as worded."""
    o = scored.option
    due = maturity(made_at, o.session, o.horizon_hours)
    wording = scored.wording()
    # Trusted (shared.trusted): every field, in field order, of the menu's own terms: a positive
    # reference and line, a range's band only on a range, the likelier side's probability, a due
    # after made_at. Validated, it would be this very object.
    return built(
        Prediction,
        {
            "source": SYNTHESIS,
            "target": o.target,
            "kind": o.kind,
            "direction": scored.side,
            "horizon_hours": o.horizon_hours,
            "reference_price": o.reference,
            "threshold": round(o.line, 6) if o.kind == "threshold" else None,
            "range_pct": o.range_pct,
            "band_pct": None,
            "confidence": round(scored.probability, 4),
            "falsifier": f"the first close of {o.target} at or after {due:%Y-%m-%d %H:%M} UTC "
            f"does not bear out: {wording}",
            "made_at": made_at,
            "matures_at": due,
            "regime": regime,
            "topic": topic_of(o.target),
            "asset_class": asset_class(o.target),
            "base_rate": round(scored.base, 4),
            "naive_probability": round(scored.naive, 4),
            "basis": basis[:600],
        },
        _STATED,
    )


# The fields a menu call states; its source and band are left at their defaults.
_STATED = frozenset(Prediction.model_fields) - {"source", "band_pct"}
