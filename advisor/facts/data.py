"""What data an expression holds: shapes, dtypes and, lazily, the numbers.

An abstract interpretation of the facts, never of running code. Literal arrays, `np.arange`,
files named next to the script and synthetic draws (`torch.normal(0, 1, (n, p))`) are followed
through conversions, arithmetic, slicing, reshaping, `TensorDataset`/`DataLoader` batches,
generators, helper functions and models (`nn.Linear`, `x @ w + b`). Shapes are computed in
pure Python; the numbers are a `Lazy` that imports numpy only when a rule asks for them.

Where an answer is not certain (a re-bound name in two branches, an unknown call), the result
is None, or a shape with unknown dimensions, and the rules that need it say nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from advisor.facts import values as v
from advisor.facts.model import NOTHING, Expr, FileFacts, Scope, Slice

Dim = int | None
Shape = tuple[Dim, ...]
_MAX_DEPTH = 48
SYNTHETIC_ROWS = 20_000  # synthetic data larger than this is sampled to this many rows
FILE_LIMIT = 20 * 1024 * 1024  # data files larger than this are not read

ARRAY_MAKERS = frozenset(
    {
        "numpy.array",
        "numpy.asarray",
        "numpy.asanyarray",
        "numpy.ascontiguousarray",
        "torch.tensor",
        "torch.as_tensor",
        "torch.from_numpy",
        "torch.Tensor",
        "torch.FloatTensor",
        "torch.DoubleTensor",
        "torch.autograd.Variable",
        "torch.nn.Parameter",
        "torch.nn.parameter.Parameter",
    }
)
# Methods that keep the numbers and the shape (some change the dtype).
SAME_VALUE_METHODS = frozenset(
    {
        "float",
        "double",
        "half",
        "astype",
        "to",
        "cpu",
        "cuda",
        "clone",
        "detach",
        "numpy",
        "copy",
        "contiguous",
        "type",
        "to_numpy",
        "requires_grad_",
    }
)
SHAPE_METHODS = frozenset(
    {
        "reshape",
        "view",
        "unsqueeze",
        "squeeze",
        "flatten",
        "ravel",
        "t",
        "transpose",
        "view_as",
        "reshape_as",
        "expand_as",
    }
)
ARITHMETIC_METHODS = {"add": "+", "sub": "-", "subtract": "-", "mul": "*", "multiply": "*"}
ARITHMETIC_METHODS |= {"div": "/", "divide": "/", "true_divide": "/", "pow": "**"}
# Functions applied to each element: the shape stays; numpy has the same function for some.
ELEMENTWISE_FUNCTIONS = frozenset(
    {
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "gelu",
        "silu",
        "elu",
        "selu",
        "celu",
        "leaky_relu",
        "softplus",
        "mish",
        "hardtanh",
        "dropout",
        "exp",
        "log",
        "log1p",
        "abs",
        "sqrt",
        "sin",
        "cos",
        "square",
    }
)
NUMPY_ELEMENTWISE = frozenset(
    {"tanh", "exp", "log", "log1p", "abs", "sqrt", "sin", "cos", "square"}
)
LIKE_MAKERS = frozenset({"zeros_like", "ones_like", "full_like", "rand_like", "randn_like"})
RANDOM_DRAWS = frozenset({"randn", "rand", "normal", "uniform", "standard_normal", "random"})
RANDOM_GENERATORS = frozenset(
    {"numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.Generator"}
)
SAME_VALUE_ATTRIBUTES = frozenset({"values", "data", "array"})
REDUCTIONS = frozenset({"mean", "std", "var", "sum", "max", "min", "median", "norm"})
SCALERS = frozenset({"StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler"})
NORMALIZING_LAYERS = frozenset(
    {"BatchNorm1d", "LayerNorm", "InstanceNorm1d", "GroupNorm", "LazyBatchNorm1d"}
)
SHAPE_KEEPING_LAYERS = frozenset({"Identity", "Dropout", "AlphaDropout"})
LOADERS = frozenset(
    {
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.load",
        "pandas.read_csv",
        "pandas.read_table",
    }
)


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
        return Lazy(lambda np: function(np, _need(self.get())))


def _need(value):
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


@dataclass
class _Arg:
    """A parameter bound at a call being followed: evaluated on demand in the caller's context."""

    expr: Expr | None
    ctx: _Ctx | None
    value: object = NOTHING

    def get(self, facts: FileFacts):
        if self.value is NOTHING:
            self.value = _eval(facts, self.expr, self.ctx) if self.expr is not None else None
        return self.value


@dataclass(frozen=True)
class _Ctx:
    scope: Scope
    env: dict = field(default_factory=dict, hash=False)  # parameter name -> _Arg
    before: int | None = None  # statement order the expression runs at; None: after everything
    depth: int = 0

    def deeper(self, **changes) -> _Ctx:
        return replace(self, depth=self.depth + 1, **changes)


# -- public entry points --------------------------------------------------------------------
def data_of(facts: FileFacts, expr: Expr | None, scope: Scope, before: int | None = None):
    """The abstract value of an expression: Array, Prediction, Items, Loader, or None."""
    if expr is None:
        return None
    return _eval(facts, expr, _Ctx(scope, {}, before))


def step_rows(array: Array | Prediction) -> Dim:
    """Rows one step sees: the batch size, all rows, or None when unknown."""
    shape = array.shape
    if not shape:
        return None
    return shape[0]


def numel(shape: Shape | None) -> int | None:
    if shape is None or any(d is None for d in shape):
        return None
    return math.prod(shape)


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


def number(facts: FileFacts, expr: Expr | None, scope: Scope) -> object:
    """A constant through names, call sites, `len(x)` and `x.shape[i]`; NOTHING if unknown."""
    return _number(facts, expr, _Ctx(scope))


# -- evaluation -----------------------------------------------------------------------------
def _eval(facts: FileFacts, expr: Expr | None, ctx: _Ctx):
    if expr is None or ctx.depth > _MAX_DEPTH:
        return None
    if ctx.env:
        return _evaluate(facts, expr, ctx)
    key = ("data", id(expr), id(ctx.scope), ctx.before)
    if key not in facts.memo:
        facts.memo[key] = None  # a cycle back to this expression knows nothing
        facts.memo[key] = _evaluate(facts, expr, ctx)
    return facts.memo[key]


def _evaluate(facts: FileFacts, expr: Expr, ctx: _Ctx):
    if expr.const is not NOTHING:
        return _literal(expr)
    kind = expr.kind
    if kind == "name":
        return _name(facts, expr.text, ctx)
    if kind == "attr":
        return _attribute(facts, expr, ctx)
    if kind == "call":
        return _call(facts, expr, ctx)
    if kind == "subscript":
        return _subscript(facts, expr, ctx)
    if kind == "binop" and len(expr.operands) == 2:
        return _binop(facts, expr, ctx)
    if kind == "unary" and expr.operands:
        found = _eval(facts, expr.operands[0], ctx.deeper())
        op = type(expr.node.operator).__name__
        if isinstance(found, Array) and op == "Minus":
            return _reshape_op(found, found.shape, lambda np, x: -x)
        return found if op == "Plus" else None
    if kind in ("tuple", "list") and expr.elements and expr.const is NOTHING:
        return Items(tuple(_eval(facts, e, ctx.deeper()) for e in expr.elements))
    return None


def _literal(expr: Expr):
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
    inner = shapes.pop() if shapes else ()
    return (len(values), *inner)


def _name(facts: FileFacts, name: str, ctx: _Ctx):
    if name in ctx.env:
        return ctx.env[name].get(facts)
    binding, where = _reaching(facts, name, ctx)
    if binding is None:
        return None
    same = where is ctx.scope
    mutation = _last_mutation(name, binding, where, ctx)
    if mutation is not None:
        inner = ctx.deeper(scope=where, before=mutation.order, env=ctx.env if same else {})
        return _mutated(facts, name, mutation, inner)
    inner = ctx.deeper(scope=where, before=binding.order, env=ctx.env if same else {})
    kind = binding.kind
    if kind == "assign" and binding.value is not None:
        return _eval(facts, binding.value, inner)
    if kind == "aug" and binding.stmt is not None and binding.value is not None:
        old = _name(facts, name, inner)
        if isinstance(old, Array) and old.origin == "parameter":
            return old  # an update by hand: the same parameter
        right = _operand(facts, binding.value, inner)
        found = _arith(binding.stmt.aug_op.rstrip("="), old, right, binding.value)
        if found is None and isinstance(old, Array):
            return replace(old, values=None)  # in place: the shape stays
        return found
    if kind in ("unpack", "for") and binding.position is not None:
        whole = _eval(facts, binding.source, inner)
        if kind == "for":
            whole = _element(facts, whole, binding.source, inner)
        return _pick(whole, binding.position)
    if kind == "param" and where is not None and where.function is not None:
        return _parameter(facts, where, name, ctx)
    return None


def _last_mutation(name: str, binding, where: Scope, ctx: _Ctx):
    """The last in-place change of a name's data between its binding and the use."""
    changes = where.mutations.get(name) if where is not None else None
    if not changes:
        return None
    limit = ctx.before if where is ctx.scope and ctx.before is not None else math.inf
    found = [stmt for stmt in changes if binding.order < stmt.order < limit]
    return found[-1] if found else None


def _mutated(facts: FileFacts, name: str, stmt, ctx: _Ctx):
    """A name's data after an in-place change; `ctx.before` is the change itself."""
    if stmt.op == "expr":
        found = _eval(facts, stmt.value, ctx)
        if found is not None:
            return found
    old = _name(facts, name, ctx)
    if not isinstance(old, Array) or old.origin == "parameter":
        return old  # an update of a parameter by hand: still the parameter
    if stmt.op == "assign" and f"{name}.shape" in stmt.targets:
        return _shape_method(facts, old, "reshape", [stmt.value], {}, ctx)
    return replace(old, values=None)  # `X[:, 0] = ...`, `X.clamp_(0, 1)`: the shape stays


def _reaching(facts: FileFacts, name: str, ctx: _Ctx):
    """The binding of a name that reaches the expression (the last one before it)."""
    bindings, where = v.lookup(facts, name, ctx.scope)
    if not bindings:
        return None, None
    if where is ctx.scope and ctx.before is not None:
        bindings = [b for b in bindings if b.order < ctx.before] or bindings[:1]
        if bindings[-1].order >= ctx.before:
            return None, None
    return bindings[-1], where


def _parameter(facts: FileFacts, scope: Scope, name: str, ctx: _Ctx):
    """A parameter with no call being followed: the argument of the file's only call site."""
    function = scope.function
    if name not in function.call_params:
        return None
    index = function.call_params.index(name)
    sites = v.call_sites(facts, function)
    if sites is None or len(sites) != 1:
        return None
    call, site = sites[0]
    arg = call.arg(index, name)
    if arg is None:
        default = function.defaults.get(name)
        return _eval(facts, default, ctx.deeper(scope=scope.parent or scope, env={}))
    return _eval(facts, arg, ctx.deeper(scope=site.scope, before=site.order, env={}))


def _pick(whole, position: tuple[int, ...]):
    for index in position:
        if not isinstance(whole, Items) or index >= len(whole.items):
            return None
        whole = whole.items[index]
    return whole


def _operand(facts: FileFacts, expr: Expr, ctx: _Ctx):
    """An operand of arithmetic: data, or a plain number (as a float)."""
    found = _eval(facts, expr, ctx.deeper())
    if found is not None and not (isinstance(found, Array) and found.shape == ()):
        return found
    value = _number(facts, expr, ctx)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return found


# -- numbers (sizes, scales) ----------------------------------------------------------------
def _number(facts: FileFacts, expr: Expr | None, ctx: _Ctx) -> object:
    from advisor.facts.hyperparameters import arithmetic, constant, unpacked_element

    if expr is None or ctx.depth > _MAX_DEPTH:
        return NOTHING
    if expr.const is not NOTHING:
        return expr.const
    if expr.kind == "name" and expr.text in ctx.env:
        arg = ctx.env[expr.text]
        if arg.expr is None:
            return NOTHING
        return _number(facts, arg.expr, arg.ctx)
    if expr.kind == "binop" and len(expr.operands) == 2:
        left, right = (_number(facts, e, ctx.deeper()) for e in expr.operands)
        return arithmetic(expr, left, right)
    if expr.kind == "unary" and expr.operands:
        inner = _number(facts, expr.operands[0], ctx.deeper())
        if isinstance(inner, (int, float)) and type(expr.node.operator).__name__ == "Minus":
            return -inner
        return NOTHING
    if expr.kind in ("tuple", "list") and expr.elements:
        found = [_number(facts, e, ctx.deeper()) for e in expr.elements]
        return NOTHING if any(f is NOTHING for f in found) else tuple(found)
    if expr.kind == "call" and expr.call.text == "len" and len(expr.call.args) == 1:
        shape = _shape(_eval(facts, expr.call.args[0], ctx.deeper()))
        return shape[0] if shape and shape[0] is not None else NOTHING
    if expr.kind == "call" and expr.call.text in ("int", "float") and len(expr.call.args) == 1:
        inner = _number(facts, expr.call.args[0], ctx.deeper())
        if isinstance(inner, (int, float)) and math.isfinite(inner):  # int(inf) raises
            return int(inner) if expr.call.text == "int" else float(inner)
        return NOTHING
    if expr.kind == "call" and expr.call.text in ("min", "max") and len(expr.call.args) > 1:
        found = [_number(facts, e, ctx.deeper()) for e in expr.call.args]
        if all(isinstance(f, (int, float)) for f in found):
            return min(found) if expr.call.text == "min" else max(found)
        return NOTHING
    dims = _dims_of(facts, expr, ctx)
    if dims is not NOTHING:
        return dims
    if expr.kind == "name":
        binding, where = _reaching(facts, expr.text, ctx)
        if binding is None:
            return NOTHING
        env = ctx.env if where is ctx.scope else {}
        inner = ctx.deeper(scope=where, before=binding.order, env=env)
        if binding.kind == "assign":
            return _number(facts, binding.value, inner)
        if binding.kind == "unpack":
            element = unpacked_element(binding)
            return _number(facts, element, inner) if element is not None else NOTHING
        if binding.kind != "param":
            return NOTHING
    return constant(facts, expr, ctx.scope)


def _dims_of(facts: FileFacts, expr: Expr, ctx: _Ctx) -> object:
    """`x.shape`, `x.shape[1]`, `x.size(0)`, `x.shape[-1]`."""
    if expr.kind == "attr" and expr.text and expr.text.endswith(".shape"):
        shape = _shape(_eval(facts, expr.base, ctx.deeper()))
        return tuple(shape) if shape is not None and None not in shape else NOTHING
    base, index = None, None
    if expr.kind == "subscript" and expr.base is not None and len(expr.slices) == 1:
        if expr.base.kind == "attr" and (expr.base.text or "").endswith(".shape"):
            base = expr.base.base
            index = expr.slices[0]
    elif expr.kind == "call" and expr.call.method in ("numel", "nelement") and expr.call.receiver:
        size = numel(_shape(_eval(facts, expr.call.receiver, ctx.deeper())))
        return size if size is not None else NOTHING
    elif expr.kind == "call" and expr.call.method in ("size", "dim") and expr.call.receiver:
        shape = _shape(_eval(facts, expr.call.receiver, ctx.deeper()))
        if shape is None:
            return NOTHING
        if expr.call.method == "dim":
            return len(shape)
        if not expr.call.args:
            return tuple(shape) if None not in shape else NOTHING
        base, index = expr.call.receiver, expr.call.args[0]
    if base is None or not isinstance(index, Expr):
        return NOTHING
    shape = _shape(_eval(facts, base, ctx.deeper()))
    at = index.const
    if shape is None or not isinstance(at, int) or not -len(shape) <= at < len(shape):
        return NOTHING
    return shape[at] if shape[at] is not None else NOTHING


def _shape(found) -> Shape | None:
    return found.shape if isinstance(found, (Array, Prediction)) else None


# -- attributes, subscripts -----------------------------------------------------------------
def _attribute(facts: FileFacts, expr: Expr, ctx: _Ctx):
    attr = (expr.text or "").rsplit(".", 1)[-1] if expr.text else expr.node.attr.value
    if expr.text and expr.text.split(".", 1)[0] in ("self", "cls"):
        found = [x for x in v.values_of(facts, expr, ctx.scope) if x.expr is not None]
        if len(found) == 1 and found[0].expr is not expr:
            scope = found[0].scope or ctx.scope
            return _eval(facts, found[0].expr, ctx.deeper(scope=scope, env={}, before=None))
        return None
    base = _eval(facts, expr.base, ctx.deeper())
    if attr in SAME_VALUE_ATTRIBUTES and isinstance(base, Array):
        return replace(base, columns=None)  # `df.values`: a plain array from here on
    if attr in SAME_VALUE_ATTRIBUTES and isinstance(base, Prediction):
        return base
    if attr in ("T", "mT") and isinstance(base, (Array, Prediction)):
        return _reshape_op(base, _transpose_shape(base.shape), lambda np, x: x.T)
    return None


def _transpose_shape(shape: Shape | None) -> Shape | None:
    return tuple(reversed(shape)) if shape is not None else None


def _subscript(facts: FileFacts, expr: Expr, ctx: _Ctx):
    base_expr = expr.base
    if base_expr is not None and base_expr.kind == "attr" and base_expr.text:
        last = base_expr.text.rsplit(".", 1)[-1]
        if last in ("iloc", "loc") and base_expr.base is not None:
            base_expr = base_expr.base  # df.iloc[:, :-1] is positional indexing
        if facts.qualify(base_expr.text) in ("numpy.c_", "numpy.column_stack"):
            return _concatenate(facts, list(expr.slices), 1, ctx, expr, columns=True)
    base = _eval(facts, base_expr, ctx.deeper())
    if isinstance(base, Items):
        if len(expr.slices) == 1 and isinstance(expr.slices[0], Expr):
            at = _number(facts, expr.slices[0], ctx)
            if isinstance(at, int) and -len(base.items) <= at < len(base.items):
                return base.items[at]
        return None
    if not isinstance(base, Array):
        return None
    if base.columns is not None and len(expr.slices) == 1 and isinstance(expr.slices[0], Expr):
        picked = _columns(base, expr.slices[0])
        if picked is not None:
            return picked
    return _index(facts, base, expr.slices, ctx)


def _columns(base: Array, key: Expr) -> Array | None:
    """`df["price"]`, `df[["a", "b"]]` on a table read with its header."""
    names = key.const
    single = isinstance(names, str)
    wanted = [names] if single else names
    if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
        return None
    if any(n not in base.columns for n in wanted):
        return None
    indices = [base.columns.index(n) for n in wanted]
    rows = base.shape[0] if base.shape else None
    shape = (rows,) if single else (rows, len(indices))
    picked = indices[0] if single else indices
    return replace(
        base,
        shape=shape,
        values=base.values.then(lambda np, x: x[:, picked]) if base.values else None,
        columns=None if single else tuple(wanted),
    )


def _index(facts: FileFacts, base: Array, slices, ctx: _Ctx) -> Array | None:
    shape = base.shape
    if shape is None:
        return None
    keys: list[object] = []
    out: list[Dim] = []
    axis = 0
    batch = base.batch
    static = True
    for part in slices:
        if isinstance(part, Slice):
            parts = (part.lower, part.upper, part.step)
            bounds = [_number(facts, b, ctx) if b is not None else None for b in parts]
            if axis >= len(shape):
                return None
            size = shape[axis]
            if all(b is None or isinstance(b, int) for b in bounds):
                key = slice(*bounds)
                out.append(len(range(*key.indices(size))) if size is not None else None)
                keys.append(key)
            elif axis == 0:
                out.append(None)  # rows picked by a running index: a batch
                keys.append(slice(None))
                batch = "?" if batch is None else batch
            else:
                return None
            axis += 1
            continue
        value = part.const
        if value is None and part.kind == "literal":
            out.append(1)
            keys.append(None)
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            if axis >= len(shape):
                return None
            keys.append(value)
            axis += 1
            if axis == 1 and base.batch is not None:
                static = False  # one row of a batch: not the data set's rows
            continue
        if axis == 0:
            # rows chosen by a tensor of indices or a mask: some rows per step
            out.append(None)
            keys.append(slice(None))
            batch = "?" if batch in (None,) else batch
            axis += 1
            continue
        return None
    out.extend(shape[axis:])
    values = None
    if base.values is not None and static:
        lead = (slice(None),) if base.batch == "row" else ()
        key = (*lead, *keys)
        values = base.values.then(lambda np, x: x[key])
    return replace(base, shape=tuple(out), values=values, batch=batch, columns=None)


# -- calls ----------------------------------------------------------------------------------
def _call(facts: FileFacts, expr: Expr, ctx: _Ctx):
    call = expr.call
    qualified = facts.qualify(call.text) or ""
    last = call.method or (call.text or "").rsplit(".", 1)[-1]
    if qualified in ARRAY_MAKERS:
        found = _eval(facts, call.arg(0, "data"), ctx.deeper())
        if isinstance(found, Items):  # np.array([x1, x2]): arrays stacked on a new first axis
            found = _stacked(list(found.items), 0, expr)
        if isinstance(found, Array):
            origin = "parameter" if "Parameter" in qualified or _requires_grad(call) else None
            dtype = call.kwargs.get("dtype")
            return replace(
                found,
                origin=origin or found.origin,
                dtype=_dtype_text(dtype) if dtype is not None else found.dtype,
            )
        return found if isinstance(found, Prediction) else None
    if qualified.startswith(("torch.", "numpy.")):
        made = _factory(facts, qualified, call, expr, ctx)
        if made is not NOTHING:
            return made
    if qualified in LOADERS:
        return _load(facts, qualified, call, expr, ctx)
    if qualified in ("torch.utils.data.TensorDataset",) or last == "TensorDataset":
        return Items(tuple(_eval(facts, a, ctx.deeper()) for a in call.args))
    if qualified == "torch.utils.data.DataLoader" or last == "DataLoader":
        return _data_loader(facts, call, expr, ctx)
    if last in ("fit_transform", "transform") and call.receiver is not None and call.args:
        return _scaled(facts, call, ctx)
    if qualified.startswith("sklearn.preprocessing.") and last in ("scale", "normalize"):
        data = _eval(facts, call.arg(0), ctx.deeper())
        return _normalized(data, "standard" if last == "scale" else "rows")
    if last in RANDOM_DRAWS and call.receiver is not None and _generator(facts, call.receiver, ctx):
        return _random(facts, f"numpy.random.{last}", last, call, expr, ctx)
    if call.method is not None and call.receiver is not None:
        handled = _method(facts, call, expr, ctx)
        if handled is not NOTHING:
            return handled
    return _call_value(facts, call, expr, ctx)


def _generator(facts: FileFacts, receiver: Expr, ctx: _Ctx) -> bool:
    """`rng` in `rng.normal(...)` is numpy's `default_rng(...)` or a `RandomState(...)`."""
    if receiver.kind == "call":
        made = [receiver]
    else:
        made = [x.expr for x in v.values_of(facts, receiver, ctx.scope)]
    return bool(made) and all(
        e is not None and e.call is not None and facts.qualify(e.call.text) in RANDOM_GENERATORS
        for e in made
    )


def _requires_grad(call) -> bool:
    flag = call.kwargs.get("requires_grad")
    return flag is not None and flag.const is True


def _dtype_text(expr: Expr) -> str | None:
    if isinstance(expr.const, str):
        return expr.const
    return expr.text


def _size_args(facts: FileFacts, call, ctx: _Ctx, start: int = 0) -> Shape | None:
    """`randn(3, 4)`, `randn((3, 4))`, `zeros(size=(3, 4))`."""
    sized = call.kwargs.get("size") or call.kwargs.get("shape")
    args = [sized] if sized is not None else list(call.args[start:])
    if not args:
        return None
    dims: list[object] = []
    for arg in args:
        value = _number(facts, arg, ctx)
        if isinstance(value, (tuple, list)):
            dims.extend(value)
        else:
            dims.append(value)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        return None
    return tuple(dims)


def _factory(facts: FileFacts, qualified: str, call, expr: Expr, ctx: _Ctx):
    """Arrays made by torch/numpy from sizes: ranges, constants and random draws."""
    name = qualified.rsplit(".", 1)[-1]
    random = qualified.startswith(("numpy.random.", "torch.")) or ".random." in qualified
    numbers = [_number(facts, a, ctx) for a in call.args]
    if name in ("arange", "linspace"):
        if not numbers or not all(isinstance(n, (int, float)) for n in numbers):
            return None
        try:
            if name == "arange":
                bounds = [0, *numbers] if len(numbers) == 1 else list(numbers)
                start, stop, step = (*bounds, 1)[:3]
                count = max(0, math.ceil((stop - start) / step)) if step else None
            else:
                default = 50 if "numpy" in qualified else None
                count = int(numbers[2]) if len(numbers) > 2 else default
        except (OverflowError, ValueError):  # an infinite or NaN bound: no count
            count = None
        if count is None:
            return None

        def evenly(np):
            if name == "arange":
                return np.arange(*numbers, dtype=float)
            return np.linspace(numbers[0], numbers[1], count)

        return Array((count,), "literal", Lazy(evenly), where=expr, rows=count)
    if name in ("zeros", "ones", "full", "empty", "eye"):
        shape = _size_args(facts, call, ctx) if name != "full" else None
        if name == "full" and call.args:
            size = _number(facts, call.args[0], ctx)
            shape = (
                tuple(size)
                if isinstance(size, (tuple, list))
                else (size,)
                if isinstance(size, int)
                else None
            )
        if name == "eye" and shape is not None and len(shape) == 1:
            shape = (shape[0], shape[0])
        if shape is None:
            return None
        origin = "parameter" if _requires_grad(call) else "literal"
        fill = {"zeros": 0.0, "ones": 1.0, "empty": 0.0}.get(name)
        if name == "full":
            value = _number(facts, call.arg(1, "fill_value"), ctx)
            fill = float(value) if isinstance(value, (int, float)) else None

        def filled(np):
            return np.eye(*shape) if name == "eye" else np.full(shape, _need(fill))

        known = name == "eye" or fill is not None
        return Array(shape, origin, Lazy(filled) if known else None, where=expr, rows=_first(shape))
    if name in LIKE_MAKERS and call.args:  # `torch.ones_like(x)`: x's shape
        like = _eval(facts, call.args[0], ctx.deeper())
        shape = like.shape if isinstance(like, (Array, Prediction)) else None
        if shape is None or None in shape:
            return None
        fill = {"zeros_like": 0.0, "ones_like": 1.0}.get(name)
        values = Lazy(lambda np: np.full(shape, fill)) if fill is not None else None
        origin = "literal" if fill is not None else "derived"
        return Array(shape, origin, values, where=expr, rows=_first(shape))
    if name == "stack" and call.arg(0, "tensors") is not None:
        parts = call.arg(0, "tensors") or call.arg(0, "arrays")
        axis = _number(facts, call.kwargs.get("dim") or call.kwargs.get("axis") or call.arg(1), ctx)
        axis = 0 if axis is NOTHING else axis
        if not parts.elements or not isinstance(axis, int):
            return None
        return _stacked([_eval(facts, p, ctx.deeper()) for p in parts.elements], axis, expr)
    if random and name in RANDOM_DRAWS:
        return _random(facts, qualified, name, call, expr, ctx)
    if name in ("cat", "concatenate", "hstack", "column_stack", "stack", "vstack"):
        parts = call.arg(0, "tensors")
        axis = _number(facts, call.kwargs.get("dim") or call.kwargs.get("axis") or call.arg(1), ctx)
        if name in ("hstack", "column_stack"):
            axis = 1
        elif name == "vstack" or axis is NOTHING:
            axis = 0
        if parts is None or not parts.elements or name == "stack" or not isinstance(axis, int):
            return None
        columns = name == "column_stack"
        return _concatenate(facts, list(parts.elements), axis, ctx, expr, columns)
    if name in ("matmul", "mm", "mv", "dot") and len(call.args) == 2:
        left, right = (_eval(facts, a, ctx.deeper()) for a in call.args)
        return _matmul(left, right, expr)
    if name == "linear" and "functional" in qualified and len(call.args) >= 2:
        data = _eval(facts, call.args[0], ctx.deeper())
        weight = _eval(facts, call.args[1], ctx.deeper())
        bias = call.arg(2, "bias")
        product = _matmul(data, _transposed(weight), expr)
        if isinstance(product, Prediction) and product.model and bias is not None:
            return replace(product, model=replace(product.model, bias=bias.const is not None))
        return product
    if name in REDUCTIONS and call.args:
        data = _eval(facts, call.args[0], ctx.deeper())
        if isinstance(data, Array):
            return _reduce(facts, data, name, call, ctx, skip=1)
        return None
    if name in ELEMENTWISE_FUNCTIONS and call.args:
        return _elementwise_function(_eval(facts, call.args[0], ctx.deeper()), name)
    if name == "normalize" and "functional" in qualified and call.args:
        return _normalized(_eval(facts, call.args[0], ctx.deeper()), "rows")
    if name in ("squeeze", "unsqueeze", "reshape", "flatten", "transpose", "t") and call.args:
        data = _eval(facts, call.args[0], ctx.deeper())
        if isinstance(data, (Array, Prediction)):
            return _shape_method(facts, data, name, call.args[1:], call.kwargs, ctx)
        return None
    return NOTHING


def _elementwise_function(data, name: str):
    """`torch.relu(h)`, `F.gelu(h)`, `np.log(x)`, `x.exp()`: the same shape."""
    if isinstance(data, Prediction):
        return Prediction(data.shape, None, data.features)
    if not isinstance(data, Array):
        return None
    values = None
    if data.values is not None and name in NUMPY_ELEMENTWISE:
        values = data.values.then(lambda np, x: getattr(np, name)(x))
    return replace(data, origin="derived" if not data.exact else data.origin, values=values)


def _first(shape: Shape | None) -> Dim:
    return shape[0] if shape else None


def _random(facts: FileFacts, qualified: str, name: str, call, expr: Expr, ctx: _Ctx):
    """A random draw with a known distribution: a seeded sample stands for it."""
    if name == "normal":
        if qualified.startswith("torch."):
            loc, scale = (_number(facts, call.arg(i, k), ctx) for i, k in ((0, "mean"), (1, "std")))
            shape = _size_args(facts, call, ctx, start=2)
        else:
            loc = _number(facts, call.arg(0, "loc"), ctx) if call.arg(0, "loc") else 0.0
            scale = _number(facts, call.arg(1, "scale"), ctx) if call.arg(1, "scale") else 1.0
            shape = (
                _size_args(facts, call, ctx, start=2)
                if len(call.args) > 2 or "size" in call.kwargs
                else ()
            )
        kind = "normal"
    elif name == "uniform":
        loc = _number(facts, call.arg(0, "low"), ctx) if call.arg(0, "low") else 0.0
        scale = _number(facts, call.arg(1, "high"), ctx) if call.arg(1, "high") else 1.0
        shape = (
            _size_args(facts, call, ctx, start=2)
            if len(call.args) > 2 or "size" in call.kwargs
            else ()
        )
        kind = "uniform"
    else:
        loc, scale = 0.0, 1.0
        shape = _size_args(facts, call, ctx)
        kind = "normal" if name in ("randn", "standard_normal") else "uniform"
    if shape is None or not all(isinstance(x, (int, float)) for x in (loc, scale)):
        return None
    origin = "parameter" if _requires_grad(call) else "synthetic"
    sample = (min(shape[0], SYNTHETIC_ROWS), *shape[1:]) if shape else ()
    seed = _draw_seed(facts, expr, ctx)

    def draw(np):
        generator = np.random.default_rng(seed)
        if kind == "normal":
            return generator.normal(loc, scale, sample)
        return generator.uniform(loc, scale, sample)

    return Array(shape, origin, Lazy(draw), where=expr, rows=_first(shape))


def _draw_seed(facts: FileFacts, expr: Expr, ctx: _Ctx) -> int:
    """One seed per draw in the program, so that independent draws are independent samples.

    The same draw reached twice (through two uses of one variable, or one call site of a helper
    evaluated again) gets the same seed, so the data it makes stays one data set.
    """
    sites = tuple(id(arg.expr) for arg in ctx.env.values())
    seeds = facts.memo.setdefault("draw seeds", {})
    return seeds.setdefault((id(expr), sites), len(seeds))


def _stacked(found: list, axis: int, expr: Expr):
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
        values = Lazy(lambda np: np.stack([_need(x.get()) for x in lazies], axis))
    return Array(new, _weakest(found), values, where=expr, rows=_first(new))


def _concatenate(
    facts: FileFacts, parts: list, axis: int, ctx: _Ctx, expr: Expr, columns: bool = False
):
    found = [_eval(facts, p, ctx.deeper()) if isinstance(p, Expr) else None for p in parts]
    if columns:  # np.column_stack / np.c_: flat arrays become columns
        found = [
            _reshape_op(f, (*f.shape, 1), lambda np, x: x[..., None])
            if isinstance(f, Array) and f.shape is not None and len(f.shape) == 1
            else f
            for f in found
        ]
    if not found or not all(isinstance(f, Array) and f.shape for f in found):
        return None
    rank = len(found[0].shape)
    if any(len(f.shape) != rank for f in found) or not -rank <= axis < rank:
        return None
    axis %= rank
    shape = list(found[0].shape)
    sizes = [f.shape[axis] for f in found]
    shape[axis] = sum(sizes) if None not in sizes else None
    lazies = [f.values for f in found]
    values = None
    if all(lazies) and all(f.batch == found[0].batch for f in found):
        lead = 1 if found[0].batch == "row" else 0
        values = Lazy(lambda np: np.concatenate([_need(x.get()) for x in lazies], axis + lead))
    return Array(
        tuple(shape),
        _weakest(found),
        values,
        batch=found[0].batch,
        where=expr,
        normalized=all(f.normalized for f in found),
        rows=found[0].rows,
    )


def _weakest(found: list[Array]) -> str:
    origins = {f.origin for f in found}
    for origin in ("derived", "parameter", "synthetic", "file", "literal"):
        if origin in origins:
            return origin
    return "derived"


def _load(facts: FileFacts, qualified: str, call, expr: Expr, ctx: _Ctx):
    """A data file named by a literal path next to the script, read (never executed)."""
    from advisor.facts.files import read_table

    path_arg = call.arg(0, "fname") or call.kwargs.get("filepath_or_buffer")
    name = _number(facts, path_arg, ctx)
    if not isinstance(name, str) or not facts.path:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = Path(facts.path).resolve().parent / path
    options = {key: _number(facts, arg, ctx) for key, arg in call.kwargs.items()}
    table = read_table(path, qualified, options, FILE_LIMIT, facts.data_files)
    if table is None:
        return None
    return Array(
        table.shape,
        "file",
        Lazy(lambda np: table.values),
        where=expr,
        columns=table.columns,
        rows=table.shape[0] if table.shape else None,
    )


def _data_loader(facts: FileFacts, call, expr: Expr, ctx: _Ctx):
    dataset = _eval(facts, call.arg(0, "dataset"), ctx.deeper())
    if not isinstance(dataset, Items):
        return None
    size_arg = call.arg(1, "batch_size")
    size = _number(facts, size_arg, ctx) if size_arg is not None else 1
    shuffle = _number(facts, call.arg(2, "shuffle"), ctx) if call.arg(2, "shuffle") else False
    drop = (
        _number(facts, call.kwargs.get("drop_last"), ctx) if "drop_last" in call.kwargs else False
    )
    if size is None:
        return None  # batch_size=None: samples one at a time, without a batch axis
    return Loader(
        dataset,
        size if isinstance(size, int) and not isinstance(size, bool) else None,
        shuffle if isinstance(shuffle, bool) else None,
        drop is True,
        expr,
    )


def _element(facts: FileFacts, iterable, source: Expr | None, ctx: _Ctx):
    """What one iteration of a for loop receives."""
    if source is not None and source.kind == "call":
        call = source.call
        text = call.text or ""
        if text in ("enumerate",) and call.args:
            inner = _eval(facts, call.args[0], ctx.deeper())
            return Items((None, _element(facts, inner, call.args[0], ctx.deeper())))
        if text.rsplit(".", 1)[-1] in ("tqdm", "tnrange", "trange", "iter") and call.args:
            inner = _eval(facts, call.args[0], ctx.deeper())
            return _element(facts, inner, call.args[0], ctx.deeper())
        if text == "zip" and call.args:
            parts = [_eval(facts, a, ctx.deeper()) for a in call.args]
            return Items(
                tuple(
                    _element(facts, p, a, ctx.deeper())
                    for p, a in zip(parts, call.args, strict=True)
                )
            )
        function = callee(facts, call, ctx.scope)
        if function is not None and function.is_generator and len(function.yields) == 1:
            env = _bind(function, call, ctx)
            inner = ctx.deeper(scope=function.scope, env=env, before=None)
            return _eval(facts, function.yields[0], inner)
    if isinstance(iterable, Loader):
        return Items(tuple(_batched(item, iterable) for item in iterable.dataset.items))
    if isinstance(iterable, Items) and iterable.loader is None:
        return None
    if isinstance(iterable, Array) and iterable.shape and iterable.batch is None:
        return replace(iterable, shape=iterable.shape[1:], batch="row")
    return None


def _batched(item, loader: Loader):
    if not isinstance(item, Array) or not item.shape or item.batch is not None:
        return None
    rows = item.shape[0]
    size = loader.batch_size
    step = min(size, rows) if size is not None and rows is not None else size
    return replace(item, shape=(step, *item.shape[1:]), batch=size if size else "?", rows=rows)


def iteration_count(facts: FileFacts, source: Expr | None, scope: Scope) -> int | None:
    """How many times a for loop over this iterable runs; None when unknown."""
    return _count(facts, source, _Ctx(scope))


def _count(facts: FileFacts, source: Expr | None, ctx: _Ctx) -> int | None:
    if source is None or source.kind != "call" or ctx.depth > _MAX_DEPTH:
        found = _eval(facts, source, ctx) if source is not None else None
        return _count_of(found)
    call = source.call
    last = call.method or (call.text or "").rsplit(".", 1)[-1]
    if last in ("enumerate", "tqdm", "iter") and call.args:
        return _count(facts, call.args[0], ctx.deeper())
    if last in ("range", "trange", "tnrange"):
        bounds = [_number(facts, a, ctx) for a in call.args]
        if bounds and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            try:
                return len(range(*bounds))
            except (ValueError, OverflowError):  # step 0; past sys.maxsize (range(2**63))
                return None
        return None
    if last == "zip" and call.args:
        counts = [_count(facts, a, ctx.deeper()) for a in call.args]
        return min(counts) if None not in counts else None
    function = callee(facts, call, ctx.scope)
    if function is not None and function.is_generator:
        loops = [loop for loop in facts.loops if loop.scope is function.scope]
        if len(loops) == 1 and loops[0].kind == "for":
            env = _bind(function, call, ctx)
            return _count(facts, loops[0].iter, ctx.deeper(scope=function.scope, env=env))
        return None
    return _count_of(_eval(facts, source, ctx))


def _count_of(found) -> int | None:
    if isinstance(found, Loader):
        rows = _rows_of(found.dataset)
        size = found.batch_size
        if rows is None or size is None:
            return None
        return rows // size if found.drop_last else -(-rows // size)
    if isinstance(found, Array) and found.shape and found.batch is None:
        return found.shape[0]
    return None


def _rows_of(dataset: Items) -> int | None:
    for item in dataset.items:
        if isinstance(item, Array) and item.shape and item.shape[0] is not None:
            return item.shape[0]
    return None


def _bind(function, call, ctx: _Ctx) -> dict:
    """The arguments of a call, bound to the callee's parameter names."""
    env: dict[str, _Arg] = {}
    params = function.call_params
    for index, name in enumerate(params):
        arg = call.arg(index, name)
        if arg is not None:
            env[name] = _Arg(arg, ctx.deeper())
        elif name in function.defaults:
            parent = function.scope.parent or function.scope
            env[name] = _Arg(function.defaults[name], _Ctx(parent, {}, None, ctx.depth + 1))
    return env


def _scaled(facts: FileFacts, call, ctx: _Ctx):
    """`StandardScaler().fit_transform(X)`, `scaler.transform(X)`."""
    scalers = [
        x
        for x in v.values_of(facts, call.receiver, ctx.scope)
        if x.expr is not None and x.expr.call is not None
    ]
    kinds = {(x.expr.call.text or "").rsplit(".", 1)[-1] for x in scalers}
    if call.receiver.kind == "call":
        kinds = {(call.receiver.call.text or "").rsplit(".", 1)[-1]}
    if len(kinds) != 1 or not kinds <= SCALERS:
        return None
    data = _eval(facts, call.args[0], ctx.deeper())
    (kind,) = kinds
    return _normalized(data, "standard" if kind == "StandardScaler" else "range")


def _normalized(data, how: str):
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


# -- methods --------------------------------------------------------------------------------
def _method(facts: FileFacts, call, expr: Expr, ctx: _Ctx):
    method = call.method
    receiver = _eval(facts, call.receiver, ctx.deeper())
    if not isinstance(receiver, (Array, Prediction)):
        return NOTHING
    if method in SAME_VALUE_METHODS:
        if method == "requires_grad_" and isinstance(receiver, Array):
            return replace(receiver, origin="parameter")
        if method == "to_numpy" and isinstance(receiver, Array):
            return replace(receiver, columns=None)
        return receiver
    if method.endswith("_") and method[:-1] in SHAPE_METHODS:
        method = method[:-1]  # `y.unsqueeze_(1)` changes y as `y.unsqueeze(1)` would return it
    if method.rstrip("_") in ARITHMETIC_METHODS and call.args:
        right = _operand(facts, call.args[0], ctx)
        found = _arith(ARITHMETIC_METHODS[method.rstrip("_")], receiver, right, expr)
        if "alpha" in call.kwargs:
            found = None
        if found is None and method.endswith("_") and isinstance(receiver, Array):
            return receiver if receiver.origin == "parameter" else replace(receiver, values=None)
        if isinstance(found, Array) and method.rstrip("_") == "div":
            found = replace(found, normalized=found.normalized or _scales_down(call.args[0]))
        return found
    if method in REDUCTIONS and isinstance(receiver, Array):
        return _reduce(facts, receiver, method, call, ctx)
    if method == "drop" and isinstance(receiver, Array) and receiver.columns is not None:
        return _drop_columns(facts, receiver, call, ctx)
    if method in SHAPE_METHODS:
        return _shape_method(facts, receiver, method, call.args, call.kwargs, ctx)
    if method in ELEMENTWISE_FUNCTIONS:
        return _elementwise_function(receiver, method)
    if method.endswith("_") and isinstance(receiver, Array):
        # any other in-place change (`clamp_`, `normal_`, `fill_`): the shape stays
        return receiver if receiver.origin == "parameter" else replace(receiver, values=None)
    return None


def _drop_columns(facts: FileFacts, table: Array, call, ctx: _Ctx):
    names = call.kwargs.get("columns") or call.arg(0, "labels")
    axis = _number(facts, call.kwargs.get("axis"), ctx) if "axis" in call.kwargs else 0
    if "columns" not in call.kwargs and axis not in (1, "columns"):
        return None
    value = names.const if names is not None else None
    dropped = [value] if isinstance(value, str) else value
    if not isinstance(dropped, list) or any(d not in table.columns for d in dropped):
        return None
    kept = [i for i, name in enumerate(table.columns) if name not in dropped]
    return replace(
        table,
        shape=(table.shape[0], len(kept)),
        values=table.values.then(lambda np, x: x[:, kept]) if table.values else None,
        columns=tuple(table.columns[i] for i in kept),
    )


def _reduce(facts: FileFacts, data: Array, name: str, call, ctx: _Ctx, skip: int = 0):
    axis_arg = call.kwargs.get("dim") or call.kwargs.get("axis") or call.arg(skip)
    axis = _number(facts, axis_arg, ctx) if axis_arg is not None else None
    keep_arg = call.kwargs.get("keepdim") or call.kwargs.get("keepdims")
    keep = keep_arg is not None and keep_arg.const is True
    if axis_arg is None and skip == 0 and data.columns is not None:
        axis = 0  # `df.mean()` of a pandas table: one number per column
    shape = data.shape
    if shape is None or (axis is not None and not isinstance(axis, int)):
        return None
    if axis is None:
        out: Shape = ()
    elif -len(shape) <= axis < len(shape):
        axis %= len(shape)
        out = (
            tuple(1 if i == axis else d for i, d in enumerate(shape))
            if keep
            else tuple(d for i, d in enumerate(shape) if i != axis)
        )
    else:
        return None
    if data.batch is not None and (axis is None or axis == 0):
        return Array(out, "derived", None, where=data.where)
    lead = 1 if data.batch == "row" else 0
    numpy_name = "linalg.norm" if name == "norm" else name
    # pandas' std/var divide by n - 1; numpy's by n (torch's by n - 1 too, a small difference
    # the data facts, which do not know a tensor from an array, leave aside)
    options = {"ddof": 1} if name in ("std", "var") and data.columns is not None else {}

    def reduce(np, x):
        function = np.linalg.norm if numpy_name == "linalg.norm" else getattr(np, numpy_name)
        if axis is None:
            return np.asarray(function(x, **options))
        return function(x, axis=axis + lead, keepdims=keep, **options)

    values = data.values.then(reduce) if data.values is not None else None
    return replace(data, shape=out, values=values, columns=None, rows=None)


def _shape_method(facts: FileFacts, data, method: str, args, kwargs, ctx: _Ctx):
    shape = data.shape
    if shape is None:
        return None
    if method in ("view_as", "reshape_as", "expand_as") and args:
        other = _shape(_eval(facts, args[0], ctx.deeper()))
        return _reshape_op(data, other, _reshape_values(other, data)) if other else None
    if method in ("reshape", "view"):
        sizes = [_number(facts, a, ctx) for a in args] or [_number(facts, kwargs.get("shape"), ctx)]
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = list(sizes[0])
        if not args and not kwargs:
            return None
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
            # reshape(y_hat.shape) of a prediction with unknown rows
            if (
                len(args) == 1
                and args[0].kind == "attr"
                and (args[0].text or "").endswith(".shape")
            ):
                other = _shape(_eval(facts, args[0].base, ctx.deeper()))
                return _reshape_op(data, other, _reshape_values(other, data)) if other else None
            return None
        new = _resolve_reshape(shape, sizes)
        return _reshape_op(data, new, _reshape_values(new, data))
    if method in ("unsqueeze",):
        dim = _number(facts, args[0] if args else kwargs.get("dim"), ctx)
        if not isinstance(dim, int) or not -len(shape) - 1 <= dim <= len(shape):
            return None
        dim %= len(shape) + 1
        new = (*shape[:dim], 1, *shape[dim:])
        lead = 1 if getattr(data, "batch", None) == "row" else 0
        return _reshape_op(data, new, lambda np, x: np.expand_dims(x, dim + lead))
    if method == "squeeze":
        dim_arg = args[0] if args else kwargs.get("dim") or kwargs.get("axis")
        if dim_arg is None:
            if None in shape:
                new = tuple(d for d in shape if d != 1)  # an unknown size may also be 1
                if any(d is None for d in new):
                    new = None
            else:
                new = tuple(d for d in shape if d != 1)
            lead = 1 if getattr(data, "batch", None) == "row" else 0
            return _reshape_op(
                data,
                new,
                lambda np, x: (
                    x.reshape(x.shape[:lead] + tuple(d for d in x.shape[lead:] if d != 1))
                    if lead
                    else np.squeeze(x)
                ),
            )
        dim = _number(facts, dim_arg, ctx)
        if not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
            return None
        dim %= len(shape)
        if shape[dim] != 1:
            return data
        new = tuple(d for i, d in enumerate(shape) if i != dim)
        lead = 1 if getattr(data, "batch", None) == "row" else 0
        return _reshape_op(data, new, lambda np, x: np.squeeze(x, dim + lead))
    if method in ("flatten", "ravel"):
        if args or kwargs:
            return None
        size = numel(shape)
        return _reshape_op(data, (size,), _reshape_values((size,), data))
    if method in ("t", "transpose"):
        if method == "transpose" and len(args) == 2 and len(shape) == 2:
            return _reshape_op(data, _transpose_shape(shape), lambda np, x: x.T)
        if method == "t" and len(shape) <= 2:
            return _reshape_op(data, _transpose_shape(shape), lambda np, x: x.T)
        return None
    return None


def _resolve_reshape(shape: Shape, sizes: list[int]) -> Shape:
    total = numel(shape)
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if total is not None and known:
            return tuple(total // known if s == -1 else s for s in sizes)
        if shape and sizes.index(-1) == 0 and shape[0] is None:
            return tuple(None if s == -1 else s for s in sizes)
        return tuple(None if s == -1 else s for s in sizes)
    return tuple(sizes)


def _reshape_values(new: Shape | None, data) -> Callable:
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


def _reshape_op(data, new: Shape | None, op: Callable):
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


def _transposed(weight):
    if isinstance(weight, Array) and weight.shape is not None:
        return _reshape_op(weight, _transpose_shape(weight.shape), lambda np, x: x.T)
    return weight


# -- arithmetic -----------------------------------------------------------------------------
_SYMBOLS = {
    "Add": "+",
    "Subtract": "-",
    "Multiply": "*",
    "Divide": "/",
    "Power": "**",
    "MatrixMultiply": "@",
    "FloorDivide": "//",
}


def _binop(facts: FileFacts, expr: Expr, ctx: _Ctx):
    op = _SYMBOLS.get(type(expr.node.operator).__name__)
    if op is None:
        return None
    left, right = (_operand(facts, e, ctx) for e in expr.operands)
    if op == "@":
        return _matmul(left, right, expr)
    found = _arith(op, left, right, expr)
    if isinstance(found, Array) and op == "/" and _scales_down(expr.operands[1]):
        found = replace(found, normalized=True)
    return found


def _scales_down(denominator: Expr) -> bool:
    """`/ X.std(0)`, `/ np.linalg.norm(X)`, `/ (X.max() - X.min())`: a normalisation."""
    words = ("std", "var", "norm", "max", "ptp", "sqrt", "amax")
    return any((c.text or "").rsplit(".", 1)[-1] in words for c in denominator.calls)


def _arith(op: str, left, right, expr: Expr):
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
        _weakest(arrays),
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
    return _need(x.get()) if isinstance(x, Lazy) else x


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


def _matmul(left, right, expr: Expr):
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
            values = Lazy(lambda np: np.matmul(_need(lazies[0].get()), _need(lazies[1].get())))
        return Array(
            shape,
            _weakest([left, right]),
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


# -- models ---------------------------------------------------------------------------------
def _call_value(facts: FileFacts, call, expr: Expr, ctx: _Ctx):
    """A call of something defined in the file, or of a model."""
    found = [
        x
        for x in v.values_of(facts, call.func, ctx.scope)
        if x.kind in (v.MODULE, v.MODEL_FN, v.FUNCTION, v.LOSS_FN) or x.kind == v.UNKNOWN
    ]
    modules = [x for x in found if x.kind == v.MODULE]
    if modules and len(modules) == len(found) and call.args:
        if len({id(x.expr) for x in modules}) != 1:
            return None
        data = _eval(facts, call.args[0], ctx.deeper())
        return apply_module(facts, modules[0], data, ctx)
    function = callee(facts, call, ctx.scope)
    if function is None or function.is_generator or len(function.returns) != 1:
        return None
    env = _bind(function, call, ctx)
    return _eval(facts, function.returns[0], ctx.deeper(scope=function.scope, env=env, before=None))


def callee(facts: FileFacts, call, scope: Scope):
    """The function of this file a call runs: by name, or through an alias (`net = linear`)."""
    function = v.find_function(facts, call.text, scope)
    if function is not None:
        return function
    found = {
        x.detail
        for x in v.values_of(facts, call.func, scope)
        if x.kind in (v.FUNCTION, v.LOSS_FN, v.MODEL_FN, v.ITERATOR)
    }
    if len(found) == 1:
        return facts.functions.get(found.pop())
    return None


def apply_module(facts: FileFacts, module: v.Value, data, ctx: _Ctx):
    """What a module returns for this input."""
    detail = module.detail
    call = module.expr.call if module.expr is not None else None
    scope = module.scope or ctx.scope
    if detail in facts.classes:
        info = facts.classes[detail]
        forward = v.find_method(facts, info, "forward")
        if forward is None or len(forward.returns) != 1 or not forward.call_params:
            return None
        env = {forward.call_params[0]: _Arg(None, None, data)}
        inner = ctx.deeper(scope=forward.scope, env=env, before=None)
        return _eval(facts, forward.returns[0], inner)
    if call is None:
        return None
    if detail == "Linear":
        inputs = _number(facts, call.arg(0, "in_features"), ctx.deeper(scope=scope, env={}))
        outputs = _number(facts, call.arg(1, "out_features"), ctx.deeper(scope=scope, env={}))
        bias_arg = call.arg(2, "bias")
        bias = (
            True if bias_arg is None else _number(facts, bias_arg, ctx.deeper(scope=scope, env={}))
        )
        if not isinstance(bias, bool):
            return None
        inputs = inputs if isinstance(inputs, int) else None
        outputs = outputs if isinstance(outputs, int) else None
        in_shape = data.shape if isinstance(data, (Array, Prediction)) else None
        shape = (*in_shape[:-1], outputs) if in_shape else None
        if isinstance(data, Array) or data is None:  # unknown data: still the model it is
            return Prediction(shape, LinearModel(inputs, outputs, bias, module.expr), data)
        features = data.features if isinstance(data, Prediction) else None
        return Prediction(shape, None, features)
    if detail == "Sequential":
        current = data
        for layer in call.args:
            layers = v.values_of(facts, layer, scope)
            if len(layers) != 1 or layers[0].kind != v.MODULE:
                return None
            current = apply_module(facts, layers[0], current, ctx.deeper())
            if current is None:
                return None
        return current
    if detail in SHAPE_KEEPING_LAYERS:
        return data
    if detail in NORMALIZING_LAYERS and isinstance(data, Array):
        return _normalized(replace(data, origin="derived"), "standard")
    if detail == "Flatten" and isinstance(data, (Array, Prediction)) and data.shape:
        return _reshape_op(
            data, (data.shape[0], numel(data.shape[1:])), _reshape_values(None, data)
        )
    if isinstance(data, Prediction):
        return Prediction(data.shape, None, data.features)  # an activation after a layer
    if isinstance(data, Array):
        return Array(data.shape, "derived", None, batch=data.batch, where=data.where)
    return None
