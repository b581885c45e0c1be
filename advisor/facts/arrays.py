"""Abstract data: shapes, dtypes and lazily computed numbers, and what arithmetic, reshaping,
stacking and matrix products make of them.

Pure functions of the abstract values: nothing here reads the facts of a file (the data
interpreter, `advisor.facts.data`, does, and hands its results to these). Shapes are computed
in pure Python; the numbers are a `Lazy` that imports numpy only when a rule asks for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import cast

from advisor.facts.model import Expr
from advisor.torchapi import NUMPY_ELEMENTWISE

Dim = int | None
Shape = tuple[Dim, ...]


# -- lazy numbers ---------------------------------------------------------------------------
class Lazy:
    """Numbers computed on first use, with numpy; None when they cannot be computed."""

    __slots__ = ("_compute", "_value", "_done")

    def __init__(self, compute: Callable) -> None:
        self._compute = compute
        self._value = None
        self._done = False

    def get(self):
        if not self._done:
            self._done = True
            try:
                import numpy as np

                with np.errstate(all="ignore"):
                    self._value = self._compute(np)
            except Exception:  # any failure: the numbers are not known
                self._value = None
            self._compute = None
        return self._value

    def then(self, function: Callable) -> Lazy:
        """A new Lazy: `function(np, numbers)` of these numbers."""
        return Lazy(lambda np: function(np, need(self.get())))


def need(value):
    """The numbers of a Lazy, or a failure that makes the Lazy computing with them None."""
    if value is None:
        raise ValueError("unknown numbers")
    return value


# -- abstract values ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Array:
    """Data the script computes with.

    `shape` is what one training step sees (a batch's rows for a DataLoader item); `values`
    hold the whole data set, rows first, with one extra leading axis when `batch == "row"`.
    """

    shape: Shape | None
    origin: str  # literal, file, synthetic, parameter, derived
    values: Lazy | None = None
    dtype: str | None = None
    batch: object = None  # None: all rows; int: rows per step; "?": some rows; "row": one row
    where: Expr | None = field(default=None, repr=False)  # where the data is made
    normalized: bool = False  # standardised, scaled or normalised on the way
    columns: tuple[str, ...] | None = None  # a table's header
    rows: int | None = None  # rows of the whole data set

    @property
    def exact(self) -> bool:
        """The numbers are the script's own (written out or read), not a sample."""
        return self.origin in ("literal", "file")


@dataclass(frozen=True)
class LinearModel:
    """A single affine map of the data: `nn.Linear`, or `x @ w + b` by hand."""

    inputs: int | None
    outputs: int | None
    bias: bool
    where: Expr | None = field(default=None, repr=False)
    # hand-made parameters: their starting values, where the facts know them
    weights: Array | None = field(default=None, repr=False)
    offset: Array | None = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class Prediction:
    """What a model returns: its shape, and the affine model when it is one."""

    shape: Shape | None
    model: LinearModel | None
    features: Array | None


@dataclass(frozen=True, eq=False)
class Items:
    """A tuple of values: `return X, y`, `yield xb, yb`, a TensorDataset, a DataLoader item."""

    items: tuple
    loader: Loader | None = None


@dataclass(frozen=True, eq=False)
class Loader:
    """`DataLoader(dataset, batch_size=..., shuffle=...)`."""

    dataset: Items
    batch_size: int | None
    shuffle: bool | None
    drop_last: bool
    where: Expr


Abstract = Array | Prediction | Items | Loader


# -- shapes ---------------------------------------------------------------------------------
def step_rows(array: Array | Prediction) -> Dim:
    """Rows one step sees: the batch size, all rows, or None when unknown."""
    shape = array.shape
    if not shape:
        return None
    return shape[0]


def numel(shape: Shape | None) -> int | None:
    if shape is None or any(d is None for d in shape):
        return None
    return math.prod(cast(tuple[int, ...], shape))  # no unknown dimension: checked above


def broadcast(left: Shape | None, right: Shape | None) -> Shape | None:
    """numpy's broadcasting of two shapes; None where they cannot broadcast or are unknown."""
    if left is None or right is None:
        return None
    out: list[Dim] = []
    for index in range(1, max(len(left), len(right)) + 1):
        a = left[-index] if index <= len(left) else 1
        b = right[-index] if index <= len(right) else 1
        if a == 1:
            out.append(b)
        elif b == 1 or a == b:
            out.append(a)
        elif a is None or b is None:
            out.append(a if b is None else b)
        else:
            return None
    return tuple(reversed(out))


def literal(expr: Expr):
    """A literal number or nested list of numbers as data."""
    value = expr.const
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        return None
    shape = shape_of(value)
    if shape is None:
        return None
    rows = shape[0] if shape else None
    return Array(
        shape,
        "literal",
        Lazy(lambda np: np.asarray(value, dtype=float)),
        where=expr,
        rows=rows,
    )


def shape_of(values: object) -> tuple[int, ...] | None:
    """The shape of a rectangular nested list of numbers; None if ragged or not numeric."""
    if isinstance(values, bool) or values is None:
        return None
    if isinstance(values, (int, float)):
        return ()
    if not isinstance(values, list):
        return None
    shapes = {shape_of(item) for item in values}
    if len(shapes) > 1 or None in shapes:
        return None
    inner = cast(tuple[int, ...], shapes.pop()) if shapes else ()  # None: returned above
    return (len(values), *inner)


def pick(whole, position: tuple[int, ...]):
    """The element of nested Items at an unpacking position (`x, (y, z) = ...`)."""
    for index in position:
        if not isinstance(whole, Items) or index >= len(whole.items):
            return None
        whole = whole.items[index]
    return whole


def data_shape(found) -> Shape | None:
    """The shape of data or of a prediction; None for anything else."""
    return found.shape if isinstance(found, (Array, Prediction)) else None


def transposed_shape(shape: Shape | None) -> Shape | None:
    """The shape reversed, as `.T` reverses it."""
    return tuple(reversed(shape)) if shape is not None else None


def columns_of(base: Array, key: Expr) -> Array | None:
    """`df["price"]`, `df[["a", "b"]]` on a table read with its header."""
    names = key.const
    single = isinstance(names, str)
    wanted = [names] if single else names
    if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
        return None
    header = cast(tuple[str, ...], base.columns)  # its caller passes only a table with a header
    if any(n not in header for n in wanted):
        return None
    indices = [header.index(n) for n in wanted]
    rows = base.shape[0] if base.shape else None
    shape = (rows,) if single else (rows, len(indices))
    picked = indices[0] if single else indices
    return replace(
        base,
        shape=shape,
        values=base.values.then(lambda np, x: x[:, picked]) if base.values else None,
        columns=None if single else tuple(wanted),
    )


# -- data from data: elementwise, stacked, batched, normalised ------------------------------
def elementwise(data, name: str):
    """`torch.relu(h)`, `F.gelu(h)`, `np.log(x)`, `x.exp()`: the same shape."""
    if isinstance(data, Prediction):
        return Prediction(data.shape, None, data.features)
    if not isinstance(data, Array):
        return None
    values = None
    if data.values is not None and name in NUMPY_ELEMENTWISE:
        values = data.values.then(lambda np, x: getattr(np, name)(x))
    return replace(data, origin="derived" if not data.exact else data.origin, values=values)


def first_dim(shape: Shape | None) -> Dim:
    """The leading dimension (the rows), None for a scalar or an unknown shape."""
    return shape[0] if shape else None


def stacked(found: list, axis: int, expr: Expr):
    """`np.stack([a, b], axis=1)`, `np.array([a, b])`: equal shapes along a new axis."""
    if not found or not all(isinstance(f, Array) and f.shape is not None for f in found):
        return None
    shape = found[0].shape
    if any(f.shape != shape for f in found) or not -len(shape) - 1 <= axis <= len(shape):
        return None
    if any(f.batch is not None for f in found):
        return None
    axis %= len(shape) + 1
    new = (*shape[:axis], len(found), *shape[axis:])
    lazies = [f.values for f in found]
    values = None
    if all(lazies):
        values = Lazy(lambda np: np.stack([need(x.get()) for x in lazies], axis))
    return Array(new, weakest_origin(found), values, where=expr, rows=first_dim(new))


def weakest_origin(found: list[Array]) -> str:
    """The origin of data combined from several: the least certain of theirs."""
    origins = {f.origin for f in found}
    for origin in ("derived", "parameter", "synthetic", "file", "literal"):
        if origin in origins:
            return origin
    return "derived"


def batched(item, loader: Loader):
    """One DataLoader batch of a dataset's tensor: `batch_size` rows per step."""
    if not isinstance(item, Array) or not item.shape or item.batch is not None:
        return None
    rows = item.shape[0]
    size = loader.batch_size
    step = min(size, rows) if size is not None and rows is not None else size
    return replace(item, shape=(step, *item.shape[1:]), batch=size if size else "?", rows=rows)


def count_of(found) -> int | None:
    """How many items one pass over a loader or an array gives; None when unknown."""
    if isinstance(found, Loader):
        rows = rows_of(found.dataset)
        size = found.batch_size
        if rows is None or size is None:
            return None
        return rows // size if found.drop_last else -(-rows // size)
    if isinstance(found, Array) and found.shape and found.batch is None:
        return found.shape[0]
    return None


def rows_of(dataset: Items) -> int | None:
    """The rows of a dataset: those of its first tensor with a known first dimension."""
    for item in dataset.items:
        if isinstance(item, Array) and item.shape and item.shape[0] is not None:
            return item.shape[0]
    return None


def normalized_data(data, how: str):
    """Data scaled by rows, standardised or min-max scaled (`how`)."""
    if not isinstance(data, Array):
        return None

    def scale(np, x):
        axis = 1 if data.batch == "row" else 0
        if how == "rows":
            norms = np.linalg.norm(x, axis=-1, keepdims=True)
            return x / np.where(norms > 0, norms, 1.0)
        if how == "standard":
            spread = x.std(axis=axis, keepdims=True)
            return (x - x.mean(axis=axis, keepdims=True)) / np.where(spread > 0, spread, 1.0)
        low, high = x.min(axis=axis, keepdims=True), x.max(axis=axis, keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        return (x - low) / span

    values = data.values.then(scale) if data.values is not None else None
    return replace(
        data, values=values, normalized=True, origin="derived" if not data.exact else data.origin
    )


# -- reshaping ------------------------------------------------------------------------------
def resolve_reshape(shape: Shape, sizes: list[int]) -> Shape:
    """The shape `reshape(*sizes)` gives, a -1 filled in where the size is known."""
    total = numel(shape)
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if total is not None and known:
            return tuple(total // known if s == -1 else s for s in sizes)
        if shape and sizes.index(-1) == 0 and shape[0] is None:
            return tuple(None if s == -1 else s for s in sizes)
        return tuple(None if s == -1 else s for s in sizes)
    return tuple(sizes)


def reshape_values(new: Shape | None, data) -> Callable:
    """Reshape the data set's numbers as the step's shape is reshaped: rows stay rows."""
    batched = getattr(data, "batch", None)

    def reshape(np, x):
        if new is None:
            raise ValueError("unknown shape")
        if batched == "row":
            return x.reshape((x.shape[0], *[-1 if d is None else d for d in new]))
        if batched is not None:
            return x.reshape((-1, *[-1 if d is None else d for d in new[1:]]))
        return x.reshape(tuple(-1 if d is None else d for d in new))

    return reshape


def reshape_op(data, new: Shape | None, op: Callable):
    """Data with a new shape, its numbers changed by `op` (dropped where rows mix)."""
    if isinstance(data, Prediction):
        return replace(data, shape=new)
    if (
        data.batch is not None
        and data.batch != "row"
        and new is not None
        and new[:1] != data.shape[:1]
    ):
        return replace(data, shape=new, values=None)  # the rows were mixed up
    values = data.values.then(op) if data.values is not None else None
    return replace(data, shape=new, values=values, columns=None)


def transposed(weight):
    """A weight matrix transposed (`F.linear` multiplies by its transpose)."""
    if isinstance(weight, Array) and weight.shape is not None:
        return reshape_op(weight, transposed_shape(weight.shape), lambda np, x: x.T)
    return weight


# -- arithmetic -----------------------------------------------------------------------------
def scales_down(denominator: Expr) -> bool:
    """`/ X.std(0)`, `/ np.linalg.norm(X)`, `/ (X.max() - X.min())`: a normalisation."""
    words = ("std", "var", "norm", "max", "ptp", "sqrt", "amax")
    return any((c.text or "").rsplit(".", 1)[-1] in words for c in denominator.calls)


def arith(op: str, left, right, expr: Expr):
    """`left <op> right` of data and numbers (predictions keep track of a bias)."""
    numbers = (int, float)
    if isinstance(left, Prediction) or isinstance(right, Prediction):
        return _prediction_arith(op, left, right)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return None
    if not all(isinstance(x, (Array, float, int)) for x in (left, right)):
        return None
    arrays = [x for x in (left, right) if isinstance(x, Array)]
    shape = arrays[0].shape
    if len(arrays) == 2:
        shape = broadcast(left.shape, right.shape)
        if shape is None:
            return None
        batches = {a.batch for a in arrays if a.shape and len(a.shape) == len(shape)}
        batch = batches.pop() if len(batches) == 1 else None
    else:
        batch = arrays[0].batch
    lazies = [x.values if isinstance(x, Array) else x for x in (left, right)]
    values = None
    if all(x is not None for x in lazies) and _aligned(arrays):
        values = Lazy(lambda np: _apply(np, op, *(_value_of(x) for x in lazies)))
    tables = [a.columns for a in arrays if a.columns is not None and a.shape == shape]
    return Array(
        shape,
        weakest_origin(arrays),
        values,
        batch=batch,
        where=arrays[0].where,
        normalized=any(a.normalized for a in arrays),
        columns=tables[0] if tables else None,  # `df - df.mean()` is still a table
        rows=arrays[0].rows,
    )


def _aligned(arrays: list[Array]) -> bool:
    """Numbers of the whole data set combine only where no batch is involved on one side."""
    batches = {a.batch for a in arrays if a.shape}
    return len(batches) <= 1 or batches == {None}


def _value_of(x):
    return need(x.get()) if isinstance(x, Lazy) else x


def _apply(np, op: str, a, b):
    if op == "+":
        return np.add(a, b)
    if op == "-":
        return np.subtract(a, b)
    if op == "*":
        return np.multiply(a, b)
    if op == "/":
        return np.divide(a, b)
    if op == "**":
        return np.power(a, b)
    if op == "//":
        return np.floor_divide(a, b)
    raise ValueError(op)


def _prediction_arith(op: str, left, right):
    prediction = left if isinstance(left, Prediction) else right
    other = right if prediction is left else left
    if isinstance(other, Prediction):
        return Prediction(broadcast(left.shape, right.shape), None, prediction.features)
    other_shape = other.shape if isinstance(other, Array) else ()
    shape = broadcast(prediction.shape, other_shape)
    model = prediction.model
    if (
        op == "+"
        and isinstance(other, Array)
        and other.origin == "parameter"
        and model is not None
        and not model.bias
    ):
        return Prediction(shape, replace(model, bias=True, offset=other), prediction.features)
    return Prediction(shape, None, prediction.features)


def matmul(left, right, expr: Expr):
    """`left @ right`: data times a parameter is a linear model's prediction."""
    if not isinstance(left, (Array, Prediction)) or not isinstance(right, (Array, Prediction)):
        return None
    shape = _matmul_shape(left.shape, right.shape)
    if isinstance(left, Array) and isinstance(right, Array):
        if right.origin == "parameter" and left.origin != "parameter":
            outputs = right.shape[-1] if right.shape and len(right.shape) == 2 else 1
            inputs = right.shape[0] if right.shape else None
            model = LinearModel(inputs, outputs, False, right.where, weights=right)
            return Prediction(shape, model, left)
        if left.origin == "parameter" or right.origin == "parameter":
            return Prediction(shape, None, None)
        values = None
        if left.values and right.values and right.batch is None:
            lazies = (left.values, right.values)
            values = Lazy(lambda np: np.matmul(need(lazies[0].get()), need(lazies[1].get())))
        return Array(
            shape,
            weakest_origin([left, right]),
            values,
            batch=left.batch,
            where=left.where,
            rows=left.rows,
        )
    features = left.features if isinstance(left, Prediction) else None
    return Prediction(shape, None, features)


def _matmul_shape(left: Shape | None, right: Shape | None) -> Shape | None:
    if not left or not right:
        return None
    if len(right) == 1:
        return left[:-1]
    if len(left) == 1:
        return right[1:]
    return (*left[:-1], right[-1])
