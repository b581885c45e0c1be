"""The regression a script trains, as numbers: what the probe replays and solves.

One record whatever the source: the facts (no user code runs), a `--data` file, or what `--run`
captured while the script ran. Every field holds what the script does, not what it should do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from advisor.probe.moments import Moments

# the update rules the replay knows; manual: w -= lr * grad by hand
OptimizerKind = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad", "manual"]
# where the problem's numbers come from: the facts alone, a --data file, or what --run captured
ProblemSource = Literal["facts", "data file", "run"]
# the starting parameters: nn.Linear's uniform ±1/sqrt(p), zeros, or the script's own (`initial`)
Init = Literal["linear", "zeros", "given"]


@dataclass(frozen=True)
class Optimizer:
    """The update rule, with PyTorch's semantics and defaults."""

    kind: OptimizerKind
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99  # RMSprop's smoothing
    accumulate: bool = False  # .grad is never cleared: each step uses the sum of all gradients

    def with_lr(self, lr: float) -> Optimizer:
        return replace(self, lr=lr)


@dataclass(frozen=True)
class Loss:
    """The script's own loss of one step: factor * (mean or sum) of squared errors.

    `broadcast`: the target is (B,) against a (B, 1) prediction (or the reverse), so the loss the
    script computes is over the (B, B) broadcast: every prediction against every target.
    """

    mean: bool = True
    factor: float = 1.0
    broadcast: bool = False


@dataclass
class Problem:
    """A linear least-squares regression as a script trains it.

    Data larger than memory (`--data` streamed in one pass) gives a problem that carries the
    full data's `moments` and `total_rows`, with `features`/`targets` holding a uniform sample
    of its rows: every full-data quantity (the optimum, the curvature, the loss of any
    parameters, full-batch training) comes from `full_moments()`, and only the step-by-step
    replay of mini-batch training runs on the sample.
    """

    features: np.ndarray  # (n, p) float64, as the model sees them (after the script's scaling)
    targets: np.ndarray  # (n, k) float64
    bias: bool
    loss: Loss
    optimizer: Optimizer | None  # None: the update rule is unknown (no replay)
    batch: int | None = None  # rows per step; None or >= n: full batch
    shuffle: bool = True  # a new order of the rows every epoch
    drop_last: bool = False
    epochs: int | None = None  # passes over the data; None: unknown
    steps: int | None = None  # optimizer steps in all; None: epochs * steps per epoch
    init: Init = "linear"
    initial: tuple[np.ndarray, np.ndarray] | None = None  # (weights (p, k), bias (k,)) if given
    source: ProblemSource = "facts"
    feature_names: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)  # what the probe assumed, for the report
    observed_losses: np.ndarray | None = (
        None  # --run: the loss the script printed/computed per step
    )
    final_params: tuple[np.ndarray, np.ndarray] | None = None  # --run: weights, bias at the end
    frozen: bool = False  # the gradients are cleared before every update: nothing moves
    # data larger than memory: the full data's sums (with the bias column, always: the model
    # without a bias reads a slice) and its number of rows; features/targets are then a sample
    moments: Moments | None = None
    total_rows: int | None = None

    @property
    def rows(self) -> int:
        """The full data's rows (the sample's when the rows are all in memory)."""
        if self.total_rows is not None:
            return int(self.total_rows)
        return int(self.features.shape[0])

    @property
    def sample_rows(self) -> int:
        """Rows held in memory: all of them, or the sample of a streamed problem."""
        return int(self.features.shape[0])

    @property
    def sampled(self) -> bool:
        """Whether `features`/`targets` are a sample of the rows, not all of them."""
        return self.moments is not None and self.sample_rows < self.rows

    def full_moments(self) -> Moments:
        """The sums over all rows for this problem's model (with its bias column or not):
        the streamed ones, or one pass over the rows in memory."""
        if self.moments is None:
            return Moments.accumulate([(self.features, self.targets)], self.bias)
        return self.moments if self.bias else self.moments.without_bias()

    @property
    def width(self) -> int:
        return int(self.features.shape[1])

    @property
    def outputs(self) -> int:
        return int(self.targets.shape[1])

    @property
    def rows_per_step(self) -> int:
        if self.batch is None or self.batch >= self.rows:
            return self.rows
        return self.batch

    @property
    def steps_per_epoch(self) -> int:
        size = self.rows_per_step
        if self.drop_last:
            return max(self.rows // size, 1)
        return -(-self.rows // size)

    @property
    def total_steps(self) -> int | None:
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return self.epochs * self.steps_per_epoch
        return None
