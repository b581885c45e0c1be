"""Replaying a script's training on its data, with PyTorch's optimizer semantics.

Full-batch gradient descent (momentum, Nesterov, weight decay) on a quadratic has a closed-form
trajectory: per eigen-direction of the Hessian the error and the velocity evolve by a 2x2
matrix, whose powers give the state after any number of steps at once. Everything else
(mini-batches, shuffling, Adam and kin) is simulated step by step, vectorised over several
initialisations, under a time budget; past the budget the rest is extrapolated from the
measured rate of convergence, and the result says so.

Data streamed from a file larger than memory leaves the full data's sums and a uniform sample
of its rows: full-batch training (closed form, or step by step on exact gradients) and every
loss come from the sums; mini-batch training takes the script's steps (its batch size, its
steps per epoch of the full data) on batches drawn from the sample, one shuffled pass of the
sample after another, and the result says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from advisor.probe.exact import design
from advisor.probe.problem import Optimizer, Problem

INITIALISATIONS = 5  # nn.Linear's random start: the outcome may depend on it
CHECKPOINTS = 400  # points of the loss curve kept for the report and the plot
DIVERGED = 1e12  # a loss this many times the starting loss has diverged


@dataclass
class Replay:
    """The training of one setting, from several initialisations."""

    label: str
    epochs: np.ndarray  # (T,) epochs at which the curve was recorded (0 = the start)
    losses: np.ndarray  # (R, T) the script's loss over the whole data, correctly shaped
    weights: np.ndarray  # (R, p, k) at the end
    bias: np.ndarray  # (R, k) at the end
    steps: int  # optimizer steps the setting takes
    simulated_steps: int  # steps actually replayed (the rest extrapolated)
    diverged: bool
    exact: bool  # closed form: no simulation, no sampling of batch orders
    seconds: float
    # mini-batch training of a streamed problem: the batches were drawn from this many rows
    # (a uniform sample of the full data's), not from all of them
    sample_rows: int | None = None

    @property
    def extrapolated(self) -> bool:
        return self.simulated_steps < self.steps and not self.exact

    @property
    def final(self) -> np.ndarray:
        """(R,) the loss at the end, per initialisation."""
        return self.losses[:, -1]


class Evaluator:
    """The script's loss of any parameters, from the data's moments (no pass over rows)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.moments = problem.full_moments()
        # streamed with centred sums and a bias: Σr² without the raw sums' cancellation
        self.centred = (
            problem.moments is not None and problem.bias and self.moments.scatter is not None
        )

    def loss(self, theta: np.ndarray) -> np.ndarray:
        """theta (..., d, k) -> the script's loss over all rows, (...)."""
        m = self.moments
        if self.centred:
            total = self._centred_total(theta)
        else:
            quadratic = np.einsum("...ij,ik,...kj->...", theta, m.gram, theta)
            linear = np.einsum("...ij,ij->...", theta, m.cross)
            total = m.target_square.sum() - 2 * linear + quadratic
        loss = self.problem.loss
        scale = loss.factor / (m.rows * self.problem.outputs) if loss.mean else loss.factor
        return np.clip(total, 0.0, None) * scale

    def _centred_total(self, theta: np.ndarray) -> np.ndarray:
        """Σ r² = Syy - 2 wᵀSxy + wᵀSxx w + n Σ_k (ȳ - mᵀw - b)², from the centred sums."""
        m = self.moments
        p = m.gram.shape[0] - 1
        weights, intercept = theta[..., :p, :], theta[..., p, :]
        scatter = m.scatter
        assert scatter is not None and m.mean is not None  # `self.centred`: both are there
        quadratic = np.einsum("...ij,ik,...kj->...", weights, scatter[:p, :p], weights)
        linear = np.einsum("...ij,ij->...", weights, scatter[:p, p:])
        offset = m.mean[p:] - np.einsum("i,...ij->...j", m.mean[:p], weights) - intercept
        return (
            np.trace(scatter[p:, p:])
            - 2 * linear
            + quadratic
            + m.rows * np.sum(offset * offset, axis=-1)
        )


def initial_parameters(problem: Problem, count: int = INITIALISATIONS) -> np.ndarray:
    """(R, d, k) starting parameters, the bias as the last row when the model has one."""
    p, k = problem.width, problem.outputs
    d = p + int(problem.bias)
    if problem.init == "given" and problem.initial is not None:
        weights, bias = problem.initial
        theta = np.asarray(weights, dtype=float).reshape(p, k)
        if problem.bias:
            theta = np.vstack([theta, np.asarray(bias, dtype=float).reshape(1, k)])
        return theta[None]
    if problem.init == "zeros":
        return np.zeros((1, d, k))
    bound = 1.0 / math.sqrt(p)  # nn.Linear: kaiming_uniform(a=sqrt(5)) and the bias alike
    return np.stack(
        [np.random.default_rng(seed).uniform(-bound, bound, (d, k)) for seed in range(count)]
    )


def gradient_scale(problem: Problem, rows: int) -> float:
    """c in: gradient of one step's loss = c * Aᵀ(Aθ - Y) over the step's rows."""
    loss = problem.loss
    scale = 2.0 * loss.factor
    if loss.mean:
        scale /= rows * problem.outputs
    elif loss.broadcast:
        scale *= rows  # Σ_ij (p_i - y_j)²: each prediction meets every target of the batch
    return scale


def replay(
    problem: Problem,
    optimizer: Optimizer | None = None,
    steps: int | None = None,
    label: str = "the script",
    budget: float = 1.0,
    start: np.ndarray | None = None,
) -> Replay | None:
    """Train the problem's model as the script would; None when the update rule is unknown."""
    optimizer = optimizer or problem.optimizer
    steps = problem.total_steps if steps is None else steps
    if optimizer is None or steps is None or steps < 0:
        return None
    theta = initial_parameters(problem) if start is None else start
    sample_rows = None
    began = time.perf_counter()
    evaluator = Evaluator(problem)
    full_batch = problem.rows_per_step == problem.rows
    closed = (
        full_batch
        and optimizer.kind in ("sgd", "manual")
        and optimizer.dampening == 0
        and not problem.loss.broadcast
        and not (optimizer.accumulate and optimizer.momentum)
    )
    if problem.frozen:  # every update sees a zero gradient: the parameters stay where they start
        epochs, thetas = np.array([0.0, steps / problem.steps_per_epoch]), np.stack([theta, theta])
        simulated, exact = steps, True
    elif closed:
        epochs, thetas = _closed_form(problem, optimizer, theta, steps)
        simulated, exact = steps, True
    else:
        epochs, thetas, simulated = _simulate(problem, optimizer, theta, steps, budget)
        exact = False
        if problem.sampled and not full_batch:
            sample_rows = problem.sample_rows
    losses = evaluator.loss(thetas)  # (T, R)
    losses = np.where(np.isfinite(losses), losses, np.inf).T
    diverged = bool(
        np.any(~np.isfinite(losses[:, -1]))
        or np.any(losses[:, -1] > DIVERGED * np.maximum(losses[:, 0], 1e-300))
    )
    if not exact and simulated < steps and not diverged:
        epochs, losses = _extrapolate(problem, epochs, losses, steps, evaluator)
    final = thetas[-1]
    p = problem.width
    return Replay(
        label=label,
        epochs=epochs,
        losses=losses,
        weights=final[:, :p, :],
        bias=final[:, p, :] if problem.bias else np.zeros((final.shape[0], problem.outputs)),
        steps=steps,
        simulated_steps=simulated,
        diverged=diverged,
        exact=exact,
        seconds=time.perf_counter() - began,
        sample_rows=sample_rows,
    )


# -- closed form ----------------------------------------------------------------------------
def transition(step: float, eigenvalues: np.ndarray, momentum: float, nesterov: bool):
    """(d, 2, 2): the map of (error, velocity) per eigen-direction for one SGD step."""
    h = step * eigenvalues
    m = np.zeros((eigenvalues.size, 2, 2))
    if nesterov:
        # v' = μv + λe ; e' = e - α(λe + μv') = (1 - αλ(1+μ)) e - αμ² v
        m[:, 0, 0] = 1.0 - h * (1.0 + momentum)
        m[:, 0, 1] = -step * momentum * momentum
    else:
        # v' = μv + λe ; e' = e - αv' = (1 - αλ) e - αμ v
        m[:, 0, 0] = 1.0 - h
        m[:, 0, 1] = -step * momentum
    m[:, 1, 0] = eigenvalues
    m[:, 1, 1] = momentum
    return m


def matrix_powers(matrix: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """(E, d, 2, 2): matrix (d, 2, 2) to each power, by repeated squaring (exact, stable)."""
    result = np.broadcast_to(np.eye(2), (exponents.size, matrix.shape[0], 2, 2)).copy()
    power = matrix.copy()
    remaining = exponents.astype(np.int64).copy()
    with np.errstate(all="ignore"):
        while np.any(remaining > 0):
            odd = (remaining & 1).astype(bool)
            if np.any(odd):
                result[odd] = result[odd] @ power
            remaining >>= 1
            power = power @ power
    return result


def _closed_form(problem: Problem, optimizer: Optimizer, theta0: np.ndarray, steps: int):
    """Full-batch SGD: (epochs, thetas (T, R, d, k)) at checkpoints, exactly."""
    moments = problem.full_moments()  # the Gram matrix and the cross terms only
    c = gradient_scale(problem, problem.rows)
    hessian = c * moments.gram + optimizer.weight_decay * np.eye(moments.gram.shape[0])
    eigenvalues, vectors = np.linalg.eigh(hessian)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    target = np.linalg.lstsq(hessian, c * moments.cross, rcond=None)[0]  # where it converges
    error0 = np.einsum("ji,rjk->rik", vectors, theta0 - target)  # (R, d, k) in the eigenbasis
    momentum = optimizer.momentum if optimizer.kind == "sgd" else 0.0
    nesterov = optimizer.nesterov and optimizer.kind == "sgd"
    if optimizer.accumulate:  # the sum of all gradients: a velocity that never forgets
        momentum, nesterov = 1.0, False
    matrix = transition(optimizer.lr, eigenvalues, momentum, nesterov)
    checkpoints = _checkpoints(steps)
    powers = matrix_powers(matrix, checkpoints)  # (T, d, 2, 2)
    # the velocity starts at zero: e_t = (M^t)[0, 0] e_0
    with np.errstate(all="ignore"):
        errors = powers[:, None, :, 0, 0, None] * error0[None]  # (T, R, d, k)
        thetas = target[None, None] + np.einsum("ij,trjk->trik", vectors, errors)
    return checkpoints.astype(float), thetas


def _checkpoints(steps: int) -> np.ndarray:
    if steps <= CHECKPOINTS:
        return np.arange(steps + 1)
    return np.unique(np.round(np.linspace(0, steps, CHECKPOINTS + 1)).astype(np.int64))


# -- simulation -----------------------------------------------------------------------------
def _simulate(problem: Problem, optimizer: Optimizer, theta0: np.ndarray, steps: int, budget):
    """Step by step, all initialisations at once: (epochs, thetas (T, R, d, k), steps done).

    A streamed problem (the full data's sums and a sample of its rows): on the full batch each
    step's gradient comes exactly from the sums; with mini-batches each of the script's steps
    takes its batch (as many rows as the script's batch at that step) from shuffled passes over
    the sample, the gradient scaled to the script's batch size. With the whole data as the
    sample, that is the same sequence of batches as the rows in memory give."""
    n, size = problem.rows, problem.rows_per_step
    per_epoch = problem.steps_per_epoch
    if problem.moments is not None and size >= n:
        gradient_of = _full_batch_gradient(problem)
    else:
        gradient_of = _batch_gradient(problem, _batches(problem))
    return _stepped(optimizer, theta0, steps, per_epoch, budget, gradient_of)


def _stepped(
    optimizer: Optimizer, theta0: np.ndarray, steps: int, per_epoch: int, budget, gradient_of
):
    """`steps` updates from theta0, the gradient of each from `gradient_of(theta)`, theta kept
    at CHECKPOINTS of them; stops early at a non-finite theta or past the time budget."""
    theta = theta0.copy()
    state = _State(theta.shape)
    record_every = max(1, steps // CHECKPOINTS)
    epochs, thetas = [0.0], [theta.copy()]
    deadline = time.perf_counter() + budget
    done = 0
    with np.errstate(all="ignore"):
        while done < steps:
            theta = _update(optimizer, theta, gradient_of(theta), state)
            done += 1
            if done % record_every == 0 or done == steps:
                epochs.append(done / per_epoch)
                thetas.append(theta.copy())
                if not np.all(np.isfinite(theta)):
                    break
                if time.perf_counter() > deadline and done < steps:
                    break
    return np.asarray(epochs), np.stack(thetas), done


def _batches(problem: Problem):
    """The rows of each step and its gradient's scale, step after step: the script's batches
    over the rows in memory, or batches of the script's size drawn from passes over a
    streamed problem's sample."""
    n, size = problem.rows, problem.rows_per_step
    per_epoch = problem.steps_per_epoch
    rng = np.random.default_rng(0)
    done = 0
    if problem.moments is None:
        order = np.arange(n)
        while True:
            if done % per_epoch == 0 and problem.shuffle and size < n:
                order = rng.permutation(n)
            at = (done % per_epoch) * size
            rows = order[at : at + size]
            yield rows, gradient_scale(problem, rows.size)
            done += 1
    sample = problem.sample_rows
    order, cursor = np.arange(sample), sample  # a new pass over the sample at the first step
    while True:
        wanted = min(size, n - (done % per_epoch) * size)  # the script's batch
        count = max(1, min(wanted, sample))
        if cursor + count > sample:
            order = rng.permutation(sample) if problem.shuffle else np.arange(sample)
            cursor = 0
        rows = order[cursor : cursor + count]
        cursor += count
        yield rows, gradient_scale(problem, wanted) * (wanted / count)
        done += 1


def _batch_gradient(problem: Problem, batches):
    a = design(problem.features, problem.bias)
    y = problem.targets

    def gradient_of(theta: np.ndarray) -> np.ndarray:
        rows, scale = next(batches)
        batch_a, batch_y = a[rows], y[rows]
        if problem.loss.broadcast:
            batch_y = np.broadcast_to(batch_y.mean(axis=0), batch_y.shape)
        residual = batch_a @ theta - batch_y  # (R, b, k)
        return scale * np.einsum("bi,rbk->rik", batch_a, residual)

    return gradient_of


def _full_batch_gradient(problem: Problem):
    """The exact full-batch gradient c (AᵀA θ - AᵀY) of a streamed problem, from the full
    data's sums (the target's mean for a broadcasting loss)."""
    moments = problem.full_moments()
    n = problem.rows
    c = gradient_scale(problem, n)
    cross = moments.cross
    if problem.loss.broadcast:  # Aᵀ(Aθ - 1 ȳᵀ): the column sums of A times the mean target
        assert problem.moments is not None  # a streamed problem carries its sums
        sums = problem.moments.gram[:, -1] if problem.bias else problem.moments.gram[:-1, -1]
        cross = np.outer(sums, moments.target_sum / n)
    return lambda theta: c * (np.einsum("ij,rjk->rik", moments.gram, theta) - cross[None])


class _State:
    """The optimizer's buffers, as PyTorch keeps them."""

    def __init__(self, shape) -> None:
        self.velocity: np.ndarray | None = None
        self.gradients: np.ndarray | None = None  # .grad when nothing clears it
        self.first = np.zeros(shape)
        self.second = np.zeros(shape)
        self.step = 0


def _update(optimizer: Optimizer, theta: np.ndarray, gradient: np.ndarray, state: _State):
    kind = optimizer.kind
    lr, decay = optimizer.lr, optimizer.weight_decay
    state.step += 1
    if optimizer.accumulate:  # backward() adds to .grad and nothing clears it
        state.gradients = gradient if state.gradients is None else state.gradients + gradient
        gradient = state.gradients
    if kind == "manual":
        return theta - lr * gradient
    if kind == "sgd":
        if decay:
            gradient = gradient + decay * theta
        if optimizer.momentum:
            if state.velocity is None:
                state.velocity = gradient.copy()
            else:
                state.velocity = (
                    optimizer.momentum * state.velocity + (1 - optimizer.dampening) * gradient
                )
            if optimizer.nesterov:
                gradient = gradient + optimizer.momentum * state.velocity
            else:
                gradient = state.velocity
        return theta - lr * gradient
    if kind in ("adam", "adamw"):
        beta1, beta2 = optimizer.betas
        if kind == "adamw":
            theta = theta * (1 - lr * decay)
        elif decay:
            gradient = gradient + decay * theta
        state.first = beta1 * state.first + (1 - beta1) * gradient
        state.second = beta2 * state.second + (1 - beta2) * gradient * gradient
        first = state.first / (1 - beta1**state.step)
        second = state.second / (1 - beta2**state.step)
        return theta - lr * first / (np.sqrt(second) + optimizer.eps)
    if kind == "rmsprop":
        if decay:
            gradient = gradient + decay * theta
        state.second = optimizer.alpha * state.second + (1 - optimizer.alpha) * gradient**2
        return theta - lr * gradient / (np.sqrt(state.second) + optimizer.eps)
    if kind == "adagrad":
        if decay:
            gradient = gradient + decay * theta
        state.second = state.second + gradient * gradient
        return theta - lr * gradient / (np.sqrt(state.second) + optimizer.eps)
    raise ValueError(f"no replay for optimizer {kind}")


REPLAYABLE = frozenset({"sgd", "manual", "adam", "adamw", "rmsprop", "adagrad"})


def _extrapolate(problem: Problem, epochs, losses, steps: int, evaluator: Evaluator):
    """Carry the curve to the last step at the rate measured over its last third."""
    from advisor.probe.exact import solve

    optimum = solve(problem).loss
    excess = np.maximum(losses - optimum, 1e-300)
    tail = max(2, len(epochs) // 3)
    span = epochs[-1] - epochs[-tail]
    if span <= 0:
        return epochs, losses
    rate = (
        np.log(excess[:, -1]) - np.log(excess[:, -tail])
    ) / span  # per epoch, <= 0 if converging
    rate = np.minimum(rate, 0.0)
    end = steps / problem.steps_per_epoch
    future = np.linspace(epochs[-1], end, 21)[1:]
    extra = optimum + excess[:, -1:] * np.exp(rate[:, None] * (future - epochs[-1])[None])
    return np.concatenate([epochs, future]), np.concatenate([losses, extra], axis=1)
