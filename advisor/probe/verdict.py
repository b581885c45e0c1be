"""The verdict: does the script's training reach the optimum, why not, and a fix proven by
replaying it on the same data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, cast

import numpy as np

from advisor.curvature import contraction, figure, round_step, stable_step
from advisor.probe.exact import Optimum, solve
from advisor.probe.problem import Loss, Optimizer, Problem
from advisor.probe.replay import REPLAYABLE, Evaluator, Replay, gradient_scale, replay
from advisor.rules.huge_learning_rate import RULE as HUGE_LEARNING_RATE
from advisor.rules.loss_shape_broadcast import RULE as LOSS_SHAPE_BROADCAST
from advisor.rules.missing_zero_grad import RULE as MISSING_ZERO_GRAD
from advisor.rules.tiny_learning_rate import RULE as TINY_LEARNING_RATE
from advisor.rules.unscaled_features import RULE as UNSCALED_FEATURES
from advisor.rules.zero_grad_before_step import RULE as ZERO_GRAD_BEFORE_STEP

TOLERANCE = 1e-6  # "at the optimum": the loss within this relative excess
CONVERGED = 1e-2  # the verdict's "converged": within 1 % of the optimum's loss ...
EXPLAINED = 1e-4  # ... or within 0.01 % of what the model can explain at all
MAX_EPOCHS = 10**12


@dataclass
class Curvature:
    """Of the expected Hessian of one step's loss."""

    eigenvalues: np.ndarray
    condition: float
    stable_step: float  # the largest stable lr for the script's optimizer (SGD semantics)
    slowest_contraction: float | None  # error factor per step along the slowest direction
    standardized_condition: float  # with the columns standardised and a bias


@dataclass
class Candidate:
    """A change to the script, replayed on the data."""

    label: str
    problem: Problem
    optimum: Optimum
    replay: Replay | None  # None: the optimizer has no replay
    epochs_needed: float | None  # to reach TOLERANCE of its own optimum; None: not within reach
    keeps_model: bool  # False when the fix adds a bias (a different, better model)
    weights: np.ndarray  # (p, k) in the script's feature units
    bias: np.ndarray  # (k,)


# what the replay of the script's training shows; unknown: there is no replay (the update
# rule is not one the probe knows)
Status = Literal["converged", "not converged", "diverged", "unknown"]


@dataclass
class Verdict:
    status: Status
    problem: Problem
    optimum: Optimum
    curvature: Curvature
    replay: Replay | None
    final: float | None = None  # median final loss over the initialisations
    spread: tuple[float, float] | None = None
    excess: float | None = None
    excess_percent: float | None = None
    parameter_error: float | None = None  # ‖θ - θ*‖ / ‖θ*‖, median
    slow_progress: float | None = None  # share of the initial error removed along the slowest
    # (why key, why): a rule's id, or a name for a reason no rule stands for (weight-decay)
    reasons: list[tuple[str, str]] = field(default_factory=list)
    fixes: list[Candidate] = field(default_factory=list)
    shape_fixed: Replay | None = None  # the same training with the target's shape fixed
    # --run, full batch: the largest relative gap between the replay's loss and the loss the
    # script itself computed at the same steps
    observed_gap: float | None = None

    @property
    def best(self) -> Candidate | None:
        reached = [f for f in self.fixes if f.epochs_needed is not None]
        if not reached:
            return None
        return min(reached, key=lambda f: (f.epochs_needed, not f.keeps_model))


def hessian(problem: Problem, weight_decay: float = 0.0) -> np.ndarray:
    """Expected Hessian of one step's loss (a batch's rows are a share of all rows)."""
    moments = problem.full_moments()
    rows = problem.rows_per_step
    scale = gradient_scale(problem, rows) * rows / problem.rows
    return scale * moments.gram + weight_decay * np.eye(moments.gram.shape[0])


def curvature(problem: Problem) -> Curvature:
    optimizer = problem.optimizer
    decay = optimizer.weight_decay if optimizer else 0.0
    eigenvalues = np.clip(np.linalg.eigvalsh(hessian(problem, decay)), 0.0, None)
    top = eigenvalues[-1]
    spanned = eigenvalues[eigenvalues > top * eigenvalues.size * np.finfo(float).eps * 10]
    low = spanned.min() if spanned.size else 0.0
    momentum = optimizer.momentum if optimizer and optimizer.kind == "sgd" else 0.0
    nesterov = bool(optimizer and optimizer.kind == "sgd" and optimizer.nesterov)
    slowest = None
    if optimizer is not None and optimizer.kind in ("sgd", "manual") and low > 0:
        slowest = contraction(optimizer.lr, low, momentum, nesterov)
    standardized = standardized_problem(problem)
    z = np.clip(np.linalg.eigvalsh(hessian(standardized)), 0.0, None)
    z_low = z[z > z[-1] * z.size * np.finfo(float).eps * 10].min()
    return Curvature(
        eigenvalues=eigenvalues,
        condition=top / low if low > 0 else math.inf,
        stable_step=stable_step(top, momentum, nesterov),
        slowest_contraction=slowest,
        standardized_condition=float(z[-1] / z_low),
    )


def standardized_problem(problem: Problem) -> Problem:
    """Columns with mean 0 and spread 1 (constant ones dropped), and a bias."""
    if problem.moments is not None:  # streamed: the sums follow algebraically, and the sample
        mean, spread = problem.moments.column_statistics()
        keep = spread > 0
        z = (problem.features[:, keep] - mean[keep]) / spread[keep]
        moments = problem.moments.standardized(mean, spread, keep)
        return replace(problem, features=z, moments=moments, bias=True, init="linear", initial=None)
    x = problem.features
    spread = x.std(axis=0)
    keep = spread > 0
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / spread[keep]
    return replace(problem, features=z, bias=True, init="linear", initial=None)


def _to_original_units(problem: Problem, weights_z: np.ndarray, bias_z: np.ndarray):
    """Weights of the standardised problem as weights on the script's own columns."""
    if problem.moments is not None:  # the full data's mean and spread, from its sums
        mean, spread = problem.moments.column_statistics()
    else:
        x = problem.features
        spread = x.std(axis=0)
        mean = x.mean(axis=0)
    keep = spread > 0
    weights = np.zeros((problem.width, weights_z.shape[1]))
    weights[keep] = weights_z / spread[keep][:, None]
    bias = bias_z - mean[keep] @ weights[keep]
    return weights, bias


def _relative_excess(loss: np.ndarray, optimum: float, scale: float) -> np.ndarray:
    return (loss - optimum) / max(optimum, scale * 1e-12, 1e-300)


def _zero_loss(problem: Problem) -> float:
    """The loss of predicting zero: the problem's scale."""
    return float(Evaluator(problem).loss(np.zeros((problem.width + problem.bias, problem.outputs))))


def epochs_to_tolerance(
    problem: Problem, optimizer: Optimizer, optimum: float, start
) -> float | None:
    """Epochs until the loss is within TOLERANCE of the optimum (full-batch gradient descent,
    exactly, by search over the closed-form trajectory); None when it never gets there."""
    scale = _zero_loss(problem)

    def reached(epochs: int) -> bool:
        found = replay(problem, optimizer, steps=epochs, start=start)
        if found is None or found.diverged:
            return False
        return bool(np.all(_relative_excess(found.final, optimum, scale) <= TOLERANCE))

    high = 1
    while not reached(high):
        high *= 4
        if high > MAX_EPOCHS:
            return None
    low = high // 4
    while high - low > 1:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle
    return float(high)


def _simulated_epochs_needed(problem: Problem, run: Replay, optimum: float) -> float | None:
    scale = _zero_loss(problem)
    excess = _relative_excess(np.median(run.losses, axis=0), optimum, scale)
    below = np.nonzero(excess <= TOLERANCE)[0]
    return float(run.epochs[below[0]]) if below.size else None


def judge(problem: Problem, budget: float = 1.0) -> Verdict:
    """Solve, replay the script, explain, and prove a fix."""
    with np.errstate(all="ignore"):  # a diverged replay overflows on purpose
        return _judge(problem, budget)


def _judge(problem: Problem, budget: float) -> Verdict:
    optimum = solve(problem)
    shape = curvature(problem)
    optimizer = problem.optimizer
    run = None
    if optimizer is not None and optimizer.kind in REPLAYABLE:
        run = replay(problem, budget=budget)
    verdict = Verdict("unknown", problem, optimum, shape, run)
    if run is None:
        verdict.fixes = _fixes(problem, optimum, shape, budget)
        return verdict
    scale = _zero_loss(problem)
    finals = run.final
    verdict.final = float(np.median(finals))
    verdict.spread = (float(np.min(finals)), float(np.max(finals)))
    verdict.excess = verdict.final - optimum.loss
    verdict.excess_percent = 100.0 * verdict.excess / max(optimum.loss, 1e-300)
    theta = np.concatenate([run.weights, run.bias[:, None, :]], axis=1)
    target = optimum.stacked if problem.bias else optimum.weights
    if not problem.bias:
        theta = run.weights
    norm = max(float(np.linalg.norm(target)), 1e-300)
    errors = np.linalg.norm((theta - target[None]).reshape(theta.shape[0], -1), axis=1) / norm
    verdict.parameter_error = float(np.median(errors))
    verdict.slow_progress = _slow_progress(problem, run, target)
    explainable = max(_mean_loss(problem) - optimum.loss, 0.0)
    if run.diverged:
        verdict.status = "diverged"
    elif (
        _relative_excess(np.asarray(verdict.final), optimum.loss, scale) <= CONVERGED
        or verdict.excess <= EXPLAINED * explainable
    ):
        verdict.status = "converged"
    else:
        verdict.status = "not converged"
    verdict.observed_gap = _observed_gap(problem, run)
    if problem.loss.broadcast:
        fixed = replace(problem, loss=replace(problem.loss, broadcast=False))
        verdict.shape_fixed = replay(fixed, budget=budget / 2, label="target shape fixed")
    verdict.reasons = _reasons(verdict)
    if verdict.status == "not converged" and _batch_noise(problem, optimum.loss, scale):
        verdict.reasons = [r for r in verdict.reasons if r[0] != "too-few-steps"]
        lr = cast(Optimizer, optimizer).lr  # a replay ran: there is an optimizer
        verdict.reasons.append(
            (
                "mini-batch-noise",
                f"with batches of {problem.rows_per_step} the gradient is noisy: at lr "
                f"{figure(lr)} the loss settles on a floor above the optimum, where "
                f"the same lr on the full batch converges; decay the lr or grow the batch",
            )
        )
    if verdict.status != "converged":
        verdict.fixes = _fixes(problem, optimum, shape, budget)
    return verdict


def _batch_noise(problem: Problem, optimum: float, scale: float) -> bool:
    """Whether the same settings on the full batch would converge (so the batches' noise is
    what keeps the script from the optimum)."""
    optimizer = problem.optimizer
    if problem.rows_per_step >= problem.rows or optimizer is None:
        return False
    if optimizer.kind not in ("sgd", "manual") or optimizer.accumulate or problem.frozen:
        return False
    steps = problem.total_steps
    if not steps:
        return False
    epochs = max(1, steps // problem.steps_per_epoch)
    full = replace(problem, batch=None, loss=replace(problem.loss, broadcast=False))
    rows = problem.rows_per_step
    if problem.loss.mean is False:  # a summed batch loss: the full batch's step is rows/b larger
        full = replace(full, optimizer=optimizer.with_lr(optimizer.lr * rows / problem.rows))
    run = replay(full, steps=epochs * problem.steps_per_epoch)
    if run is None or run.diverged:
        return False
    return bool(np.all(_relative_excess(run.final, optimum, scale) <= CONVERGED))


def _observed_gap(problem: Problem, run: Replay) -> float | None:
    """How far the replay is from the loss curve the script produced (`--run`, full batch:
    the loss the script computes at step t is the replay's after t steps)."""
    observed = problem.observed_losses
    if observed is None or problem.init != "given" or problem.loss.broadcast:
        return None
    if problem.rows_per_step != problem.rows or run.losses.shape[0] != 1:
        return None
    observed = np.asarray(observed, dtype=float)
    steps = run.epochs.astype(int)  # full batch: one step an epoch
    shared = (steps < observed.size) & np.isfinite(observed[np.minimum(steps, observed.size - 1)])
    if not np.any(shared):
        return None
    mine, theirs = run.losses[0, shared], observed[steps[shared]]
    scale = np.maximum(np.abs(theirs), 1e-12 * max(float(np.max(np.abs(theirs))), 1e-300))
    return float(np.max(np.abs(mine - theirs) / scale))


def _mean_loss(problem: Problem) -> float:
    """The loss of the best constant prediction: the scale of what a model can explain."""
    if problem.moments is not None and problem.moments.scatter is not None:  # Σ(y - ȳ)²
        p = problem.moments.gram.shape[0] - 1
        total = float(np.trace(problem.moments.scatter[p:, p:]))
    elif problem.moments is not None:  # Σ(y - ȳ)² = Σy² - (Σy)²/n over all rows
        m = problem.moments
        total = float(np.sum(np.clip(m.target_square - m.target_sum**2 / m.rows, 0.0, None)))
    else:
        centred = problem.targets - problem.targets.mean(axis=0)
        total = float(np.sum(centred * centred))
    loss = problem.loss
    return (
        loss.factor * total / (problem.rows * problem.outputs) if loss.mean else loss.factor * total
    )


def _slow_progress(problem: Problem, run: Replay, target: np.ndarray) -> float | None:
    """How much of the starting error along the slowest direction the training removed."""
    from advisor.probe.replay import initial_parameters

    h = hessian(problem)
    eigenvalues, vectors = np.linalg.eigh(h)
    spanned = eigenvalues > eigenvalues[-1] * eigenvalues.size * np.finfo(float).eps * 10
    if not np.any(spanned):
        return None
    slow = vectors[:, np.argmax(spanned)]  # the smallest eigenvalue the data spans
    start = initial_parameters(problem)
    end = (
        np.concatenate([run.weights, run.bias[:, None, :]], axis=1) if problem.bias else run.weights
    )
    before = np.abs(np.einsum("i,rik->rk", slow, start - target[None])).sum(axis=1)
    after = np.abs(np.einsum("i,rik->rk", slow, end - target[None])).sum(axis=1)
    share = 1.0 - after / np.maximum(before, 1e-300)
    return float(np.median(share))


def _reasons(verdict: Verdict) -> list[tuple[str, str]]:
    from advisor.curvature import figure

    problem, shape = verdict.problem, verdict.curvature
    reasons: list[tuple[str, str]] = []
    optimizer = problem.optimizer
    if verdict.status == "converged" or optimizer is None:
        return reasons
    if optimizer.kind in ("sgd", "manual"):
        if optimizer.lr > shape.stable_step:
            reasons.append(
                (
                    HUGE_LEARNING_RATE.id,
                    f"lr {figure(optimizer.lr)} is above the stable step "
                    f"{figure(shape.stable_step)} of this loss",
                )
            )
        elif optimizer.lr * 10 <= shape.stable_step:
            per_step = 1.0 - (shape.slowest_contraction or 1.0)
            reasons.append(
                (
                    TINY_LEARNING_RATE.id,
                    f"lr {figure(optimizer.lr)} is {figure(shape.stable_step / optimizer.lr)}x "
                    f"below the stable step {figure(shape.stable_step)}: each step removes "
                    f"{figure(100 * per_step)}% of the error along the slowest direction",
                )
            )
    if shape.condition >= 1e3 and shape.condition >= 100 * shape.standardized_condition:
        reasons.append(
            (
                UNSCALED_FEATURES.id,
                f"the loss's condition number is {figure(shape.condition)}; standardised columns "
                f"with a bias give {figure(shape.standardized_condition)}",
            )
        )
    if problem.loss.broadcast and verdict.shape_fixed is not None:
        fixed = float(np.median(verdict.shape_fixed.final))
        final = cast(float, verdict.final)  # set with the replay, before the reasons
        effect = (
            f"with the shape fixed the same training ends at {figure(fixed)} instead of "
            f"{figure(final)}"
            if abs(fixed - final) > 1e-3 * max(abs(fixed), 1e-300)
            else f"at this lr it barely shows yet ({figure(fixed)} with either shape), but the "
            f"training is pulled towards the wrong answer"
        )
        reasons.append(
            (
                LOSS_SHAPE_BROADCAST.id,
                f"the (N,) target against the (N, 1) prediction trains towards each batch's "
                f"mean: {effect}",
            )
        )
    if optimizer.weight_decay:
        reasons.append(
            (
                "weight-decay",
                f"weight decay {figure(optimizer.weight_decay)} pulls the weights "
                "towards zero: the training converges to another point than lstsq's",
            )
        )
    if problem.frozen:
        reasons.append(
            (
                ZERO_GRAD_BEFORE_STEP.id,
                "the gradients are cleared before every update: the replayed weights never move",
            )
        )
    if optimizer.accumulate:
        reasons.append(
            (
                MISSING_ZERO_GRAD.id,
                "nothing clears .grad: every step uses the sum of all past gradients",
            )
        )
    if not reasons and verdict.status == "not converged":
        reasons.append(("too-few-steps", "the training is on its way but stops too early"))
    return reasons


# -- fixes ----------------------------------------------------------------------------------
def _fixes(problem: Problem, optimum: Optimum, shape: Curvature, budget: float) -> list[Candidate]:
    """Candidate changes, each replayed: keep the model with a better lr (full batch), and
    standardise the columns with a bias (full batch, the best fixed step 2/(λmin+λmax))."""
    candidates = []
    epochs = problem.epochs or (problem.total_steps or 0) // max(problem.steps_per_epoch, 1)
    base = replace(
        problem,
        loss=replace(problem.loss, broadcast=False),
        batch=None,
        shuffle=False,
        frozen=False,
        optimizer=None,
    )
    full = "" if problem.rows_per_step == problem.rows else "; full batch"
    options = [(f"keep the data and the model{full}, with the best fixed lr", base, True)]
    if shape.condition >= 10 * shape.standardized_condition:  # scaling would help
        bias = "" if problem.bias else " and add a bias"
        label = f"standardise the columns{bias}{full}, with the best fixed lr"
        options.append((label, standardized_problem(base), problem.bias))
    for label, fixed, keeps in options:
        candidate = _full_batch_candidate(label, problem, fixed, keeps, epochs)
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def _full_batch_candidate(label: str, original: Problem, fixed: Problem, keeps: bool, epochs: int):
    h = hessian(fixed)
    eigenvalues = np.clip(np.linalg.eigvalsh(h), 0.0, None)
    top = eigenvalues[-1]
    spanned = eigenvalues[eigenvalues > top * eigenvalues.size * np.finfo(float).eps * 10]
    if top <= 0 or not spanned.size:
        return None
    lr = 2.0 / (spanned.min() + top)  # the best fixed step of gradient descent
    optimizer = Optimizer("sgd", float(lr))
    fixed = replace(fixed, optimizer=optimizer, init="linear", initial=None)
    optimum = solve(fixed)
    from advisor.probe.replay import initial_parameters

    start = initial_parameters(fixed)
    needed = epochs_to_tolerance(fixed, optimizer, optimum.loss, start)
    steps = int(needed) if needed is not None else max(epochs, 1)
    run = replay(fixed, optimizer, steps=steps, label=label, start=start)
    weights, bias = optimum.weights, optimum.bias
    if fixed.features is not original.features:  # standardised: back to the script's units
        weights, bias = _to_original_units(original, optimum.weights, optimum.bias)
    return Candidate(
        label=f"{label} ({_lr_text(lr)})",
        problem=fixed,
        optimum=optimum,
        replay=run,
        epochs_needed=needed,
        keeps_model=keeps,
        weights=weights,
        bias=bias,
    )


def _lr_text(lr: float) -> str:
    from advisor.curvature import figure

    return f"lr {figure(lr)}"


__all__ = ["Verdict", "Candidate", "judge", "round_step", "Loss"]
