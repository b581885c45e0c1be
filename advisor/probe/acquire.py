"""The probe's problem from the facts: the data and settings a script writes down, with no
code of the user's run.

A regression is probed from the facts when the data the model sees and the targets are
known numbers (literal, read from a file next to the script, or a seeded stand-in for a
synthetic draw) and the loss is a squared error. Otherwise the report says what is missing
and how to give it (`--data`, `--run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from advisor.facts.regression import Regression
from advisor.probe.problem import Loss, Optimizer, OptimizerKind, Problem, ProblemSource

# torch's defaults where a script leaves the lr out
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2, "adagrad": 1e-2}
DEFAULT_DECAY = {"adamw": 1e-2}


@dataclass
class Acquired:
    """A problem, or why there is none."""

    problem: Problem | None
    missing: str | None = None  # what the facts do not tell, in a phrase
    applies: bool = True  # False: not a linear least-squares regression (no data would help)


def optimizer_of(regression: Regression) -> Optimizer | None:
    """The update rule of a regression, with torch's defaults where the script omits them."""
    config = regression.config
    if regression.rule == "manual" and regression.step_size:
        return Optimizer("manual", float(regression.step_size))
    name = (config.optimizer or "").lower()
    if regression.rule == "sgd" and regression.step_size:
        return Optimizer(
            "sgd",
            float(regression.step_size),
            momentum=float(config.momentum or 0.0),
            dampening=float(config.dampening or 0.0),
            nesterov=bool(config.nesterov),
            weight_decay=float(config.weight_decay or 0.0),
        )
    if name in DEFAULT_LR:
        lr = regression.step_size or DEFAULT_LR[name]
        decay = config.weight_decay
        return Optimizer(
            cast(OptimizerKind, name),  # a key of DEFAULT_LR: adam, adamw, rmsprop, adagrad
            float(lr),
            weight_decay=float(DEFAULT_DECAY.get(name, 0.0) if decay is None else decay),
        )
    return None


def from_regression(regression: Regression, data=None) -> Acquired:
    """The problem a regression of the facts trains: its own data when the facts know the
    numbers, else `data` given on the command line: (features, targets), or what one streaming
    pass over a file larger than memory left (`partitions.Streamed`: the full data's sums and a
    uniform sample of its rows; the problem then carries the sums)."""
    loss, model, features = regression.loss, regression.model, regression.features
    if loss.kind != "mse":
        return Acquired(None, f"the loss is {loss.kind}, not a squared error", applies=False)
    if model is None:
        return Acquired(None, "the model is not a single linear layer", applies=False)
    notes: list[str] = []
    streamed = None
    source: ProblemSource
    if data is not None and hasattr(data, "moments"):  # a file streamed in one pass
        streamed = data
        x, y = data.sample_x, data.sample_y
        where = f" on {data.cluster}" if getattr(data, "cluster", None) else ""
        notes.append(
            f"the data given with --data, streamed in one pass{where}: {data.rows:,} rows "
            f"summed (XᵀX, Xᵀy), a uniform sample of {x.shape[0]:,} of them kept in memory"
        )
        source = "data file"
    elif data is not None:
        x, y = data
        notes.append("the data given with --data")
        source = "data file"
    else:
        found = _script_data(regression)
        if isinstance(found, str):
            return Acquired(None, found)
        x, y = found
        source = "facts"
        target = loss.target
        if (features is not None and features.origin == "synthetic") or (
            target is not None and target.origin == "synthetic"
        ):
            notes.append("synthetic data, re-created with a fixed seed")
            if regression.rows and regression.rows > x.shape[0]:
                notes.append(f"a sample of {x.shape[0]} of its {regression.rows} rows")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if streamed is not None:
        return _from_streamed(regression, streamed, x, y, notes)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] == 0 or y.size == 0:
        return Acquired(None, "the data has no rows")  # `torch.randn(0, 2)`
    x = x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)
    if y.shape[0] != x.shape[0]:
        return Acquired(
            None,
            f"the targets {tuple(y.shape)} and the data {tuple(x.shape)} have different numbers "
            f"of rows",
        )
    y = y.reshape(y.shape[0], -1)
    mismatch = _widths(model, x, y)
    if mismatch:
        return Acquired(None, mismatch)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return Acquired(None, "the data holds NaN or inf")
    largest = max(np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0))
    if largest > np.sqrt(np.finfo(float).max / (x.size + y.size + 1)):  # sums of squares: inf
        return Acquired(None, f"the data holds numbers too large to square ({largest:.3g})")
    return Acquired(_problem(regression, x, y, data, notes, source))


def _widths(model, x: np.ndarray, y: np.ndarray) -> str | None:
    """Why the model cannot be fitted to these columns, if it cannot: the probe would
    otherwise solve another regression than the script trains."""
    if model.inputs is not None and x.shape[1] != model.inputs:
        return f"the model takes {model.inputs} columns, the data has {x.shape[1]}"
    if model.outputs is not None and y.shape[1] != model.outputs:
        plural = "s" if model.outputs != 1 else ""
        return f"the model gives {model.outputs} output{plural}, the data has {y.shape[1]} targets"
    return None


def _from_streamed(regression: Regression, streamed, x, y, notes: list[str]) -> Acquired:
    """The checks of the rows in memory, on what the streaming pass counted over all rows."""
    model = regression.model
    rows = int(streamed.rows)
    if rows == 0 or x.ndim != 2 or y.ndim != 2:
        return Acquired(None, "the data has no rows")
    mismatch = _widths(model, x, y)
    if mismatch:
        return Acquired(None, mismatch)
    if streamed.nonfinite:
        return Acquired(None, f"the data holds NaN or inf ({streamed.nonfinite:,} cells)")
    largest = float(streamed.largest)
    cells = rows * (x.shape[1] + y.shape[1])
    if largest > np.sqrt(np.finfo(float).max / (cells + 1)):  # sums of squares: inf
        return Acquired(None, f"the data holds numbers too large to square ({largest:.3g})")
    problem = _problem(regression, x, y, streamed, notes, "data file")
    problem.moments, problem.total_rows = streamed.moments, rows
    return Acquired(problem)


def _problem(
    regression: Regression, x, y, data, notes: list[str], source: ProblemSource
) -> Problem:
    """The problem of a regression on checked data (all rows, or a streamed file's sample)."""
    loss, model = regression.loss, regression.model
    assert model is not None  # from_regression has returned without a model
    optimizer = optimizer_of(regression)
    if regression.scheduled:
        optimizer = None
        notes.append("a scheduler changes the lr while training: no replay of it")
    elif regression.clipped:
        optimizer = None
        notes.append("the gradients are clipped: no replay of it")
    elif optimizer is None:
        notes.append(f"no replay of {regression.config.optimizer or 'this update'}")
    start = _manual_start(model, x.shape[1], y.shape[1]) if regression.rule == "manual" else None
    if regression.rule == "manual" and start is None:
        notes.append("hand-made parameters started at zero")
    if regression.steps is None:
        notes.append("the number of steps is not in the script")
    problem = Problem(
        features=x,
        targets=y,
        bias=bool(model.bias),
        loss=Loss(mean=loss.mean, factor=loss.factor, broadcast=_broadcasts(regression)),
        optimizer=optimizer,
        batch=regression.batch if data is None else _batch_for(regression),
        shuffle=True,
        steps=regression.steps if data is None else None,
        epochs=None if data is None else _epochs_of(regression),
        init="given" if start is not None else "linear" if regression.rule != "manual" else "zeros",
        initial=start,
        source=source,
        notes=notes,
    )
    return problem


def _manual_start(model, width: int, outputs: int):
    """(weights, bias) a hand-made model starts from: `torch.normal(0, 0.01, (p, 1))`, zeros."""
    weights = model.weights.values.get() if model.weights and model.weights.values else None
    if weights is None or np.size(weights) != width * outputs:
        return None
    bias = np.zeros(outputs)
    offset = model.offset
    if model.bias and offset is not None and offset.values is not None:
        found = offset.values.get()
        if found is None or np.size(found) not in (1, outputs):
            return None
        bias = np.broadcast_to(np.asarray(found, dtype=float).ravel(), (outputs,)).copy()
    elif model.bias:
        return None
    return np.asarray(weights, dtype=float).reshape(width, outputs), bias


def _script_data(regression: Regression):
    """(features, targets) as numbers, or a phrase saying what is missing."""
    features, target = regression.features, regression.loss.target
    if features is None or features.values is None:
        return "the data is not in the script (it is made or loaded at run time)"
    if target is None or target.values is None:
        return "the targets are not in the script"
    x, y = features.values.get(), target.values.get()
    if x is None or y is None:
        return "the data could not be computed"
    return x, y


def _batch_for(regression: Regression) -> int | None:
    """The script's batch size applied to other data: a DataLoader's, not all rows."""
    config = regression.config
    return config.batch_size if config.batch_size else None


def _epochs_of(regression: Regression) -> int | None:
    return regression.config.epochs


def _broadcasts(regression: Regression) -> bool:
    """(B, 1) against (B,) or the reverse: the loss compares every prediction with every
    target of the batch."""
    prediction = regression.loss.prediction.shape
    target = regression.loss.target.shape if regression.loss.target is not None else None
    if not prediction or not target:
        return False
    column = {len(prediction): prediction, len(target): target}
    if sorted(column) != [1, 2] or len(prediction) == len(target):
        return False
    flat, tall = column[1], column[2]
    return tall[1] == 1 and flat[0] != 1
