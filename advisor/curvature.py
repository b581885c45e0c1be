"""The numbers behind the learning-rate and scaling rules, from the data a script writes down.

For a linear model under a squared loss the Hessian does not depend on the weights: it is
`c * AᵀA`, with A the data the model sees (plus a column of ones for a bias) and c set by the
loss's reduction, its constant factors, the batch size and the number of outputs
(`Regression.curvature_scale`). Its eigenvalues give the largest stable step of gradient descent
(2/λmax, 2(1+μ)/λmax with momentum μ) and how fast each direction converges.

numpy is imported here, lazily, only once a rule asks for numbers that exist.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from typing import cast

from advisor.facts.arrays import Array
from advisor.facts.regression import Regression
from advisor.numbers import figure

SHRINK = 100.0  # "near the optimum": the error along a direction shrunk 100-fold
# Adam moves a weight by at most lr*(1-β1)/sqrt(1-β2) per step, 3.16 lr with the defaults
ADAM_STEP_BOUND = 3.2


@dataclass(frozen=True)
class Spectrum:
    """Eigenvalues of a symmetric positive semi-definite matrix, ascending."""

    eigenvalues: tuple[float, ...]
    rank: int

    @property
    def largest(self) -> float:
        return self.eigenvalues[-1]

    @property
    def smallest(self) -> float:
        """The smallest eigenvalue of the directions the data spans (zero ones are ignored:
        gradient descent never moves along them, and they do not change the loss)."""
        return self.eigenvalues[len(self.eigenvalues) - self.rank]

    @property
    def condition(self) -> float:
        return self.largest / self.smallest if self.smallest > 0 else math.inf


@dataclass(frozen=True)
class Analysis:
    """The curvature of one regression, and what standardising its features would give."""

    spectrum: Spectrum  # of the expected Hessian of one step's loss
    data_spectrum: Spectrum  # of AᵀA/n, the data's own
    standardized: Spectrum  # of ZᵀZ/n, Z the standardised columns plus a bias column
    column_means: tuple[float, ...]
    column_spreads: tuple[float, ...]
    rows: int
    solution: object | None  # least-squares weights (p[+1], k), when the targets are known


def design(features, bias: bool):
    """The matrix the weights multiply: the features as (n, p), then a column of ones."""
    import numpy as np

    data = np.asarray(features, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        data = data.reshape(data.shape[0], -1)
    if bias:
        data = np.hstack([data, np.ones((data.shape[0], 1))])
    return data


def spectrum(matrix) -> Spectrum:
    """Eigenvalues of a symmetric matrix, with its numerical rank."""
    import numpy as np

    values = np.clip(np.linalg.eigvalsh(np.asarray(matrix, dtype=float)), 0.0, None)
    top = float(values[-1]) if values.size else 0.0
    tolerance = top * max(values.size, 1) * np.finfo(float).eps * 10
    rank = int(np.count_nonzero(values > tolerance))
    return Spectrum(tuple(float(x) for x in values), max(rank, 1))


def gram(data):
    """AᵀA / n in float64."""
    import numpy as np

    data = np.asarray(data, dtype=float)
    return data.T @ data / data.shape[0]


def standardize(features):
    """Columns with mean 0 and spread 1 (constant columns dropped), then a bias column."""
    import numpy as np

    data = design(features, bias=False)
    spread = data.std(axis=0)
    keep = spread > 0
    z = (data[:, keep] - data[:, keep].mean(axis=0)) / spread[keep]
    return np.hstack([z, np.ones((data.shape[0], 1))])


def contraction(step: float, eigenvalue: float, momentum: float = 0.0, nesterov: bool = False):
    """How much one step multiplies the error along a direction of curvature `eigenvalue`.

    PyTorch's SGD keeps a velocity v <- μv + g and steps p <- p - lr·v (heavy ball), or
    p <- p - lr·(g + μv) with Nesterov. On a quadratic the error and the velocity evolve by a
    2x2 matrix; the spectral radius of that matrix is the factor per step.
    """
    h = step * eigenvalue
    if nesterov:
        trace, determinant = (1.0 + momentum) * (1.0 - h), momentum * (1.0 - h)
    else:
        trace, determinant = 1.0 + momentum - h, momentum
    root = cmath.sqrt(trace * trace - 4.0 * determinant)
    return max(abs((trace + root) / 2.0), abs((trace - root) / 2.0))


def steps_needed(
    step: float, eigenvalue: float, momentum: float = 0.0, nesterov: bool = False
) -> float:
    """Gradient-descent steps that shrink the error along one direction `SHRINK`-fold."""
    if step <= 0 or eigenvalue <= 0:
        return math.inf
    factor = contraction(step, eigenvalue, momentum, nesterov)
    if factor <= 0:
        return 1.0
    if factor >= 1:
        return math.inf
    return max(1.0, math.log(SHRINK) / -math.log(factor))


def stable_step(largest: float, momentum: float = 0.0, nesterov: bool = False) -> float:
    """The largest step at which gradient descent with momentum μ does not diverge:
    2(1+μ)/λmax for the heavy ball, 2(1+μ)/((1+2μ)λmax) with Nesterov."""
    if largest <= 0:
        return math.inf
    bound = 2.0 * (1.0 + momentum) / largest
    return bound / (1.0 + 2.0 * momentum) if nesterov else bound


def round_step(value: float) -> float:
    """A round learning rate at or below `value`: 1, 2 or 5 times a power of ten."""
    if value <= 0 or not math.isfinite(value):
        return value
    power = 10.0 ** math.floor(math.log10(value))
    for mantissa in (5.0, 2.0, 1.0):
        if mantissa * power <= value:
            return mantissa * power
    return power


def analyse(regression: Regression) -> Analysis | None:
    """The numbers of a regression whose data and model are known; None otherwise."""
    cached = getattr(regression, "_analysis", None)
    if cached is not None:
        return cast(Analysis, cached) if cached is not False else None
    result = _analyse(regression)
    regression._analysis = result if result is not None else False
    return result


def _analyse(regression: Regression) -> Analysis | None:
    features, model, scale = regression.features, regression.model, regression.curvature_scale
    if features is None or model is None or scale is None or features.values is None:
        return None
    if features.origin not in ("literal", "file", "synthetic", "derived"):
        return None
    values = features.values.get()  # the data exists: numpy is needed now
    if values is None:
        return None
    import numpy as np

    data = design(values, model.bias)
    if data.shape[0] < 2 or not np.all(np.isfinite(data)):
        return None
    if model.inputs is not None and data.shape[1] - int(model.bias) != model.inputs:
        return None  # the model's width disagrees with the data: not the data it sees
    rows = regression.rows or data.shape[0]
    with np.errstate(all="ignore"):
        own = gram(data)
        scaled, standard = own * (rows * scale), gram(standardize(values))
    if not all(np.all(np.isfinite(m)) for m in (scaled, own, standard)):
        return None  # numbers so large (1e308) that their squares overflow: no curvature
    raw = design(values, False)
    return Analysis(
        spectrum(scaled),
        spectrum(own),
        spectrum(standard),
        tuple(float(x) for x in raw.mean(axis=0)),
        tuple(float(x) for x in raw.std(axis=0)),
        data.shape[0],
        _solution(regression, data),
    )


def _solution(regression: Regression, data):
    import numpy as np

    target = regression.loss.target
    if target is None or target.values is None:
        return None
    values = target.values.get()
    if values is None:
        return None
    values = np.asarray(values, dtype=float)
    if values.size == 0 or values.size % data.shape[0]:
        return None  # the targets and the features disagree in rows: no least squares
    values = values.reshape(data.shape[0], -1)
    if not np.all(np.isfinite(values)):
        return None
    solution, *_ = np.linalg.lstsq(data, values, rcond=None)
    return solution


@dataclass(frozen=True)
class StepCheck:
    """A gradient-descent step size against the curvature of the script's own loss."""

    step: float  # what multiplies the gradient (lr, or lr / batch for a hand-written update)
    momentum: float
    nesterov: bool
    largest: float  # λmax of the expected Hessian of one step's loss (+ weight decay)
    smallest: float  # λmin over the directions the data spans
    bound: float  # the largest stable step
    needed: float  # steps to shrink the slowest direction's error 100-fold at this step
    steps: int | None  # steps the script runs
    exact: bool  # computed on the script's own numbers (not a sample of synthetic data)

    @property
    def ratio(self) -> float:
        return self.bound / self.step if self.step > 0 else math.inf

    @property
    def growth(self) -> float:
        """What one step multiplies the error by along the steepest direction."""
        return contraction(self.step, self.largest, self.momentum, self.nesterov)

    def needed_at(self, step: float) -> float:
        return steps_needed(step, self.smallest, self.momentum, self.nesterov)


def step_check(regression: Regression) -> StepCheck | None:
    """The step of an SGD or hand-written update against its data; None where unknown."""
    if regression.rule not in ("sgd", "manual") or not regression.step_size:
        return None
    analysis = analyse(regression)
    if analysis is None:
        return None
    config = regression.config
    momentum = (config.momentum or 0.0) if regression.rule == "sgd" else 0.0
    decay = (config.weight_decay or 0.0) if regression.rule == "sgd" else 0.0
    nesterov = config.nesterov and regression.rule == "sgd"
    if not 0 <= momentum < 1 or (regression.rule == "sgd" and config.dampening != 0):
        return None  # dampening scales the step in a way this model does not follow
    largest = analysis.spectrum.largest + decay
    smallest = analysis.spectrum.smallest + decay
    if largest <= 0:
        return None
    step = float(regression.step_size)
    return StepCheck(
        step,
        momentum,
        nesterov,
        largest,
        smallest,
        stable_step(largest, momentum, nesterov),
        steps_needed(step, smallest, momentum, nesterov),
        regression.steps,
        cast(Array, regression.features).exact,  # analysed, so its data are known
    )


def learning_rate_diagnostics(facts, finders, fix_text: str):
    """Diagnostics at each regression's lr from the first finder that has something to say.

    A finder returns (message, confidence, evidence, suggested lr or None) or None.
    """
    from advisor.facts.regression import regressions
    from advisor.findings import Diagnostic, Fix

    for regression in regressions(facts):
        if regression.lr_node is None or regression.scheduled:
            continue  # a scheduler's lr is not the one written: nothing certain to say
        for finder in finders:
            found = finder(regression)
            if found is None:
                continue
            message, confidence, evidence, lr = found
            fix = Fix(fix_text.format(lr=figure(lr))) if lr else None
            yield Diagnostic(regression.lr_node, message, confidence, fix, evidence)
            break
