"""What data an expression holds: shapes, dtypes and, lazily, the numbers.

An abstract interpretation of the facts, never of running code. Literal arrays, `np.arange`,
files named next to the script and synthetic draws (`torch.normal(0, 1, (n, p))`) are followed
through conversions, arithmetic, slicing, reshaping, `TensorDataset`/`DataLoader` batches,
generators, helper functions and models (`nn.Linear`, `x @ w + b`).

This module is the interpreter: names, bindings, call sites, attributes, calls and methods,
models. The abstract values and their arithmetic are in `advisor.facts.arrays`, what calls
make in `advisor.facts.makers`, indexing and reshaping in `advisor.facts.shaping`, the tables
of names in `advisor.torchapi`.

Where an answer is not certain (a re-bound name in two branches, an unknown call), the result
is None, or a shape with unknown dimensions, and the rules that need it say nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import libcst as cst

from advisor.facts import values as v
from advisor.facts.arrays import (
    Abstract,
    Array,
    Items,
    Lazy,
    LinearModel,
    Loader,
    Prediction,
    arith,
    batched,
    broadcast,
    columns_of,
    count_of,
    data_shape,
    elementwise,
    literal,
    matmul,
    normalized_data,
    numel,
    pick,
    reshape_op,
    reshape_values,
    scales_down,
    shape_of,
    stacked,
    step_rows,
    transposed_shape,
)
from advisor.facts.evaluation import Argument, Context, DataCache
from advisor.facts.hyperparameters import arithmetic, constant, unpacked_element
from advisor.facts.makers import data_loader, factory, random_draw, requires_grad
from advisor.facts.model import NOTHING, Call, Expr, FileFacts, Function, Scope, Slice
from advisor.facts.shaping import concatenated, dropped_columns, indexed, reduced, shape_method
from advisor.torchapi import (
    ARITHMETIC_METHODS,
    ARRAY_MAKERS,
    ELEMENTWISE_FUNCTIONS,
    LOADERS,
    NORMALIZING_LAYERS,
    RANDOM_DRAWS,
    RANDOM_GENERATORS,
    REDUCTIONS,
    SAME_VALUE_ATTRIBUTES,
    SAME_VALUE_METHODS,
    SCALERS,
    SHAPE_KEEPING_LAYERS,
    SHAPE_METHODS,
)

# the interpreter's entry points, and the abstract values it returns (defined in arrays.py)
__all__ = [
    "Abstract",
    "Argument",
    "Array",
    "Context",
    "Interpreter",
    "Items",
    "Lazy",
    "LinearModel",
    "Loader",
    "Prediction",
    "apply_module",
    "bind_arguments",
    "broadcast",
    "callee",
    "data_of",
    "evaluate",
    "iteration_count",
    "number",
    "number_at",
    "numel",
    "reaching",
    "shape_of",
    "step_rows",
]

_MAX_DEPTH = 48
FILE_LIMIT = 20 * 1024 * 1024  # data files larger than this are not read

# Python's binary operators (libcst's names) as the symbols the arithmetic uses
OPERATOR_SYMBOLS = {
    "Add": "+",
    "Subtract": "-",
    "Multiply": "*",
    "Divide": "/",
    "Power": "**",
    "MatrixMultiply": "@",
    "FloorDivide": "//",
}


@dataclass(frozen=True)
class Interpreter:
    """This module as a `Reader` of one file's data, for the helpers it calls."""

    facts: FileFacts

    def data(self, expr: Expr | None, ctx: Context) -> Abstract | None:
        return evaluate(self.facts, expr, ctx)

    def number(self, expr: Expr | None, ctx: Context) -> object:
        return number_at(self.facts, expr, ctx)


# -- public entry points --------------------------------------------------------------------
def data_of(facts: FileFacts, expr: Expr | None, scope: Scope, before: int | None = None):
    """The abstract value of an expression: Array, Prediction, Items, Loader, or None."""
    if expr is None:
        return None
    return evaluate(facts, expr, Context(scope, {}, before))


def number(facts: FileFacts, expr: Expr | None, scope: Scope) -> object:
    """A constant through names, call sites, `len(x)` and `x.shape[i]`; NOTHING if unknown."""
    return number_at(facts, expr, Context(scope))


# -- evaluation -----------------------------------------------------------------------------
def evaluate(facts: FileFacts, expr: Expr | None, ctx: Context) -> Abstract | None:
    """The abstract value of an expression where `ctx` says it runs (cached per file when no
    call's arguments are being followed)."""
    if expr is None or ctx.depth > _MAX_DEPTH:
        return None
    if ctx.env:
        return _compute(facts, expr, ctx)
    cache = facts.derived.of(DataCache).values
    key = (expr, ctx.scope, ctx.before)
    if key not in cache:
        cache[key] = None  # a cycle back to this expression knows nothing
        cache[key] = _compute(facts, expr, ctx)
    return cache[key]


def _compute(facts: FileFacts, expr: Expr, ctx: Context):
    if expr.const is not NOTHING:
        return literal(expr)
    kind = expr.kind
    if kind == "name":
        return _name(facts, cast(str, expr.text), ctx)  # a name's text is its name
    if kind == "attr":
        return _attribute(facts, expr, ctx)
    if kind == "call":
        return _call(facts, expr, ctx)
    if kind == "subscript":
        return _subscript(facts, expr, ctx)
    if kind == "binop" and len(expr.operands) == 2:
        return _binop(facts, expr, ctx)
    if kind == "unary" and expr.operands:
        found = evaluate(facts, expr.operands[0], ctx.deeper())
        op = type(cast(cst.UnaryOperation, expr.node).operator).__name__
        if isinstance(found, Array) and op == "Minus":
            return reshape_op(found, found.shape, lambda np, x: -x)
        return found if op == "Plus" else None
    if kind in ("tuple", "list") and expr.elements and expr.const is NOTHING:
        return Items(tuple(evaluate(facts, e, ctx.deeper()) for e in expr.elements))
    return None


def _name(facts: FileFacts, name: str, ctx: Context):
    if name in ctx.env:
        return ctx.env[name].get(Interpreter(facts))
    binding, where = reaching(facts, name, ctx)
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
        return evaluate(facts, binding.value, inner)
    if kind == "aug" and binding.stmt is not None and binding.value is not None:
        old = _name(facts, name, inner)
        if isinstance(old, Array) and old.origin == "parameter":
            return old  # an update by hand: the same parameter
        right = _operand(facts, binding.value, inner)
        found = arith(binding.stmt.aug_op.rstrip("="), old, right, binding.value)
        if found is None and isinstance(old, Array):
            return replace(old, values=None)  # in place: the shape stays
        return found
    if kind in ("unpack", "for") and binding.position is not None:
        whole = evaluate(facts, binding.source, inner)
        if kind == "for":
            whole = _element(facts, whole, binding.source, inner)
        return pick(whole, binding.position)
    if kind == "param" and where is not None and where.function is not None:
        return _parameter(facts, where, name, ctx)
    return None


def _last_mutation(name: str, binding, where: Scope, ctx: Context):
    """The last in-place change of a name's data between its binding and the use."""
    changes = where.mutations.get(name) if where is not None else None
    if not changes:
        return None
    limit = ctx.before if where is ctx.scope and ctx.before is not None else math.inf
    found = [stmt for stmt in changes if binding.order < stmt.order < limit]
    return found[-1] if found else None


def _mutated(facts: FileFacts, name: str, stmt, ctx: Context):
    """A name's data after an in-place change; `ctx.before` is the change itself."""
    if stmt.op == "expr":
        found = evaluate(facts, stmt.value, ctx)
        if found is not None:
            return found
    old = _name(facts, name, ctx)
    if not isinstance(old, Array) or old.origin == "parameter":
        return old  # an update of a parameter by hand: still the parameter
    if stmt.op == "assign" and f"{name}.shape" in stmt.targets:
        return shape_method(Interpreter(facts), old, "reshape", [stmt.value], {}, ctx)
    return replace(old, values=None)  # `X[:, 0] = ...`, `X.clamp_(0, 1)`: the shape stays


def reaching(facts: FileFacts, name: str, ctx: Context):
    """The binding of a name that reaches the expression (the last one before it)."""
    bindings, where = v.lookup(facts, name, ctx.scope)
    if not bindings:
        return None, None
    if where is ctx.scope and ctx.before is not None:
        bindings = [b for b in bindings if b.order < ctx.before] or bindings[:1]
        if bindings[-1].order >= ctx.before:
            return None, None
    return bindings[-1], where


def _parameter(facts: FileFacts, scope: Scope, name: str, ctx: Context):
    """A parameter with no call being followed: the argument of the file's only call site."""
    function = cast(Function, scope.function)  # a parameter's scope is its function's
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
        return evaluate(facts, default, ctx.deeper(scope=scope.parent or scope, env={}))
    return evaluate(facts, arg, ctx.deeper(scope=site.scope, before=site.order, env={}))


def _operand(facts: FileFacts, expr: Expr, ctx: Context):
    """An operand of arithmetic: data, or a plain number (as a float)."""
    found = evaluate(facts, expr, ctx.deeper())
    if found is not None and not (isinstance(found, Array) and found.shape == ()):
        return found
    value = number_at(facts, expr, ctx)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return found


# -- numbers (sizes, scales) ----------------------------------------------------------------
def number_at(facts: FileFacts, expr: Expr | None, ctx: Context) -> object:
    """`number` where `ctx` says the expression runs (through the arguments it follows)."""
    if expr is None or ctx.depth > _MAX_DEPTH:
        return NOTHING
    if expr.const is not NOTHING:
        return expr.const
    if expr.kind == "name" and expr.text in ctx.env:
        arg = ctx.env[expr.text]
        if arg.expr is None:
            return NOTHING
        return number_at(facts, arg.expr, arg.ctx)
    if expr.kind == "binop" and len(expr.operands) == 2:
        left, right = (number_at(facts, e, ctx.deeper()) for e in expr.operands)
        return arithmetic(expr, left, right)
    if expr.kind == "unary" and expr.operands:
        inner = number_at(facts, expr.operands[0], ctx.deeper())
        unary = cast(cst.UnaryOperation, expr.node)  # kind "unary"
        if isinstance(inner, (int, float)) and type(unary.operator).__name__ == "Minus":
            return -inner
        return NOTHING
    if expr.kind in ("tuple", "list") and expr.elements:
        found = [number_at(facts, e, ctx.deeper()) for e in expr.elements]
        return NOTHING if any(f is NOTHING for f in found) else tuple(found)
    call = cast(Call, expr.call)  # set for kind "call", the only kind that reads it below
    if expr.kind == "call" and call.text == "len" and len(call.args) == 1:
        shape = data_shape(evaluate(facts, call.args[0], ctx.deeper()))
        return shape[0] if shape and shape[0] is not None else NOTHING
    if expr.kind == "call" and call.text in ("int", "float") and len(call.args) == 1:
        inner = number_at(facts, call.args[0], ctx.deeper())
        if isinstance(inner, (int, float)) and math.isfinite(inner):  # int(inf) raises
            return int(inner) if call.text == "int" else float(inner)
        return NOTHING
    if expr.kind == "call" and call.text in ("min", "max") and len(call.args) > 1:
        found = [number_at(facts, e, ctx.deeper()) for e in call.args]
        if all(isinstance(f, (int, float)) for f in found):
            numbers = cast(list[float], found)  # all ints or floats: checked
            return min(numbers) if call.text == "min" else max(numbers)
        return NOTHING
    dims = _dims_of(facts, expr, ctx)
    if dims is not NOTHING:
        return dims
    if expr.kind == "name":
        binding, where = reaching(facts, cast(str, expr.text), ctx)  # a name's text
        if binding is None:
            return NOTHING
        env = ctx.env if where is ctx.scope else {}
        inner = ctx.deeper(scope=where, before=binding.order, env=env)
        if binding.kind == "assign":
            return number_at(facts, binding.value, inner)
        if binding.kind == "unpack":
            element = unpacked_element(binding)
            return number_at(facts, element, inner) if element is not None else NOTHING
        if binding.kind != "param":
            return NOTHING
    return constant(facts, expr, ctx.scope)


def _dims_of(facts: FileFacts, expr: Expr, ctx: Context) -> object:
    """`x.shape`, `x.shape[1]`, `x.size(0)`, `x.shape[-1]`."""
    if expr.kind == "attr" and expr.text and expr.text.endswith(".shape"):
        shape = data_shape(evaluate(facts, expr.base, ctx.deeper()))
        return tuple(shape) if shape is not None and None not in shape else NOTHING
    base: Expr | None = None
    index: Expr | Slice | None = None
    call = cast(Call, expr.call)  # set for kind "call", the only kind that reads it below
    if expr.kind == "subscript" and expr.base is not None and len(expr.slices) == 1:
        if expr.base.kind == "attr" and (expr.base.text or "").endswith(".shape"):
            base = expr.base.base
            index = expr.slices[0]
    elif expr.kind == "call" and call.method in ("numel", "nelement") and call.receiver:
        size = numel(data_shape(evaluate(facts, call.receiver, ctx.deeper())))
        return size if size is not None else NOTHING
    elif expr.kind == "call" and call.method in ("size", "dim") and call.receiver:
        shape = data_shape(evaluate(facts, call.receiver, ctx.deeper()))
        if shape is None:
            return NOTHING
        if call.method == "dim":
            return len(shape)
        if not call.args:
            return tuple(shape) if None not in shape else NOTHING
        base, index = call.receiver, call.args[0]
    if base is None or not isinstance(index, Expr):
        return NOTHING
    shape = data_shape(evaluate(facts, base, ctx.deeper()))
    at = index.const
    if shape is None or not isinstance(at, int) or not -len(shape) <= at < len(shape):
        return NOTHING
    return shape[at] if shape[at] is not None else NOTHING


# -- attributes, subscripts -----------------------------------------------------------------
def _attribute(facts: FileFacts, expr: Expr, ctx: Context):
    node = cast(cst.Attribute, expr.node)  # kind "attr"
    attr = (expr.text or "").rsplit(".", 1)[-1] if expr.text else node.attr.value
    if expr.text and expr.text.split(".", 1)[0] in ("self", "cls"):
        found = [x for x in v.values_of(facts, expr, ctx.scope) if x.expr is not None]
        if len(found) == 1 and found[0].expr is not expr:
            scope = found[0].scope or ctx.scope
            return evaluate(facts, found[0].expr, ctx.deeper(scope=scope, env={}, before=None))
        return None
    base = evaluate(facts, expr.base, ctx.deeper())
    if attr in SAME_VALUE_ATTRIBUTES and isinstance(base, Array):
        return replace(base, columns=None)  # `df.values`: a plain array from here on
    if attr in SAME_VALUE_ATTRIBUTES and isinstance(base, Prediction):
        return base
    if attr in ("T", "mT") and isinstance(base, (Array, Prediction)):
        return reshape_op(base, transposed_shape(base.shape), lambda np, x: x.T)
    return None


def _subscript(facts: FileFacts, expr: Expr, ctx: Context):
    base_expr = expr.base
    if base_expr is not None and base_expr.kind == "attr" and base_expr.text:
        last = base_expr.text.rsplit(".", 1)[-1]
        if last in ("iloc", "loc") and base_expr.base is not None:
            base_expr = base_expr.base  # df.iloc[:, :-1] is positional indexing
        if facts.qualify(base_expr.text) in ("numpy.c_", "numpy.column_stack"):
            return concatenated(Interpreter(facts), list(expr.slices), 1, ctx, expr, columns=True)
    base = evaluate(facts, base_expr, ctx.deeper())
    if isinstance(base, Items):
        if len(expr.slices) == 1 and isinstance(expr.slices[0], Expr):
            at = number_at(facts, expr.slices[0], ctx)
            if isinstance(at, int) and -len(base.items) <= at < len(base.items):
                return base.items[at]
        return None
    if not isinstance(base, Array):
        return None
    if base.columns is not None and len(expr.slices) == 1 and isinstance(expr.slices[0], Expr):
        picked = columns_of(base, expr.slices[0])
        if picked is not None:
            return picked
    return indexed(Interpreter(facts), base, expr.slices, ctx)


# -- calls ----------------------------------------------------------------------------------
def _call(facts: FileFacts, expr: Expr, ctx: Context):
    call = cast(Call, expr.call)  # kind "call": the extraction pass always sets it
    qualified = facts.qualify(call.text) or ""
    last = call.method or (call.text or "").rsplit(".", 1)[-1]
    if qualified in ARRAY_MAKERS:
        found = evaluate(facts, call.arg(0, "data"), ctx.deeper())
        if isinstance(found, Items):  # np.array([x1, x2]): arrays stacked on a new first axis
            found = stacked(list(found.items), 0, expr)
        if isinstance(found, Array):
            origin = "parameter" if "Parameter" in qualified or requires_grad(call) else None
            dtype = call.kwargs.get("dtype")
            return replace(
                found,
                origin=origin or found.origin,
                dtype=_dtype_text(dtype) if dtype is not None else found.dtype,
            )
        return found if isinstance(found, Prediction) else None
    if qualified.startswith(("torch.", "numpy.")):
        made = factory(Interpreter(facts), qualified, call, expr, ctx)
        if made is not NOTHING:
            return made
    if qualified in LOADERS:
        return _load(facts, qualified, call, expr, ctx)
    if qualified in ("torch.utils.data.TensorDataset",) or last == "TensorDataset":
        return Items(tuple(evaluate(facts, a, ctx.deeper()) for a in call.args))
    if qualified == "torch.utils.data.DataLoader" or last == "DataLoader":
        return data_loader(Interpreter(facts), call, expr, ctx)
    if last in ("fit_transform", "transform") and call.receiver is not None and call.args:
        return _scaled(facts, call, ctx)
    if qualified.startswith("sklearn.preprocessing.") and last in ("scale", "normalize"):
        data = evaluate(facts, call.arg(0), ctx.deeper())
        return normalized_data(data, "standard" if last == "scale" else "rows")
    if last in RANDOM_DRAWS and call.receiver is not None and _generator(facts, call.receiver, ctx):
        return random_draw(Interpreter(facts), f"numpy.random.{last}", last, call, expr, ctx)
    if call.method is not None and call.receiver is not None:
        handled = _method(facts, call, expr, ctx)
        if handled is not NOTHING:
            return handled
    return _call_value(facts, call, expr, ctx)


def _generator(facts: FileFacts, receiver: Expr, ctx: Context) -> bool:
    """`rng` in `rng.normal(...)` is numpy's `default_rng(...)` or a `RandomState(...)`."""
    made: list[Expr | None]
    if receiver.kind == "call":
        made = [receiver]
    else:
        made = [x.expr for x in v.values_of(facts, receiver, ctx.scope)]
    return bool(made) and all(
        e is not None and e.call is not None and facts.qualify(e.call.text) in RANDOM_GENERATORS
        for e in made
    )


def _dtype_text(expr: Expr) -> str | None:
    if isinstance(expr.const, str):
        return expr.const
    return expr.text


def _load(facts: FileFacts, qualified: str, call, expr: Expr, ctx: Context):
    """A data file named by a literal path next to the script, read (never executed)."""
    from advisor.facts.files import read_table

    path_arg = call.arg(0, "fname") or call.kwargs.get("filepath_or_buffer")
    name = number_at(facts, path_arg, ctx)
    if not isinstance(name, str) or not facts.path:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = Path(facts.path).resolve().parent / path
    options = {key: number_at(facts, arg, ctx) for key, arg in call.kwargs.items()}
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


# -- loops (one iteration's data, how many run), arguments of followed calls ----------------
def _element(facts: FileFacts, iterable, source: Expr | None, ctx: Context):
    """What one iteration of a for loop receives."""
    if source is not None and source.kind == "call":
        call = cast(Call, source.call)  # kind "call": the extraction pass always sets it
        text = call.text or ""
        if text in ("enumerate",) and call.args:
            inner = evaluate(facts, call.args[0], ctx.deeper())
            return Items((None, _element(facts, inner, call.args[0], ctx.deeper())))
        if text.rsplit(".", 1)[-1] in ("tqdm", "tnrange", "trange", "iter") and call.args:
            inner = evaluate(facts, call.args[0], ctx.deeper())
            return _element(facts, inner, call.args[0], ctx.deeper())
        if text == "zip" and call.args:
            parts = [evaluate(facts, a, ctx.deeper()) for a in call.args]
            return Items(
                tuple(
                    _element(facts, p, a, ctx.deeper())
                    for p, a in zip(parts, call.args, strict=True)
                )
            )
        function = callee(facts, call, ctx.scope)
        if function is not None and function.is_generator and len(function.yields) == 1:
            env = bind_arguments(function, call, ctx)
            where = ctx.deeper(scope=function.scope, env=env, before=None)
            return evaluate(facts, function.yields[0], where)
    if isinstance(iterable, Loader):
        return Items(tuple(batched(item, iterable) for item in iterable.dataset.items))
    if isinstance(iterable, Items) and iterable.loader is None:
        return None
    if isinstance(iterable, Array) and iterable.shape and iterable.batch is None:
        return replace(iterable, shape=iterable.shape[1:], batch="row")
    return None


def iteration_count(facts: FileFacts, source: Expr | None, scope: Scope) -> int | None:
    """How many times a for loop over this iterable runs; None when unknown."""
    return _count(facts, source, Context(scope))


def _count(facts: FileFacts, source: Expr | None, ctx: Context) -> int | None:
    if source is None or source.kind != "call" or ctx.depth > _MAX_DEPTH:
        found = evaluate(facts, source, ctx) if source is not None else None
        return count_of(found)
    call = cast(Call, source.call)  # kind "call": the extraction pass always sets it
    last = call.method or (call.text or "").rsplit(".", 1)[-1]
    if last in ("enumerate", "tqdm", "iter") and call.args:
        return _count(facts, call.args[0], ctx.deeper())
    if last in ("range", "trange", "tnrange"):
        bounds = [number_at(facts, a, ctx) for a in call.args]
        if bounds and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            try:
                return len(range(*cast(list[int], bounds)))  # ints: checked above
            except (ValueError, OverflowError):  # step 0; past sys.maxsize (range(2**63))
                return None
        return None
    if last == "zip" and call.args:
        counts = [_count(facts, a, ctx.deeper()) for a in call.args]
        return min(cast(list[int], counts)) if None not in counts else None
    function = callee(facts, call, ctx.scope)
    if function is not None and function.is_generator:
        loops = [loop for loop in facts.loops if loop.scope is function.scope]
        if len(loops) == 1 and loops[0].kind == "for":
            env = bind_arguments(function, call, ctx)
            return _count(facts, loops[0].iter, ctx.deeper(scope=function.scope, env=env))
        return None
    return count_of(evaluate(facts, source, ctx))


def bind_arguments(function, call, ctx: Context) -> dict:
    """The arguments of a call, bound to the callee's parameter names."""
    env: dict[str, Argument] = {}
    params = function.call_params
    for index, name in enumerate(params):
        arg = call.arg(index, name)
        if arg is not None:
            env[name] = Argument(arg, ctx.deeper())
        elif name in function.defaults:
            parent = function.scope.parent or function.scope
            env[name] = Argument(function.defaults[name], Context(parent, {}, None, ctx.depth + 1))
    return env


# -- scalers, methods and operators ---------------------------------------------------------
def _scaled(facts: FileFacts, call, ctx: Context):
    """`StandardScaler().fit_transform(X)`, `scaler.transform(X)`."""
    scalers = [
        x.expr.call
        for x in v.values_of(facts, call.receiver, ctx.scope)
        if x.expr is not None and x.expr.call is not None
    ]
    kinds = {(made.text or "").rsplit(".", 1)[-1] for made in scalers}
    if call.receiver.kind == "call":
        kinds = {(call.receiver.call.text or "").rsplit(".", 1)[-1]}
    if len(kinds) != 1 or not kinds <= SCALERS:
        return None
    data = evaluate(facts, call.args[0], ctx.deeper())
    (kind,) = kinds
    return normalized_data(data, "standard" if kind == "StandardScaler" else "range")


def _method(facts: FileFacts, call, expr: Expr, ctx: Context):
    method = call.method
    receiver = evaluate(facts, call.receiver, ctx.deeper())
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
        found = arith(ARITHMETIC_METHODS[method.rstrip("_")], receiver, right, expr)
        if "alpha" in call.kwargs:
            found = None
        if found is None and method.endswith("_") and isinstance(receiver, Array):
            return receiver if receiver.origin == "parameter" else replace(receiver, values=None)
        if isinstance(found, Array) and method.rstrip("_") == "div":
            found = replace(found, normalized=found.normalized or scales_down(call.args[0]))
        return found
    if method in REDUCTIONS and isinstance(receiver, Array):
        return reduced(Interpreter(facts), receiver, method, call, ctx)
    if method == "drop" and isinstance(receiver, Array) and receiver.columns is not None:
        return dropped_columns(Interpreter(facts), receiver, call, ctx)
    if method in SHAPE_METHODS:
        return shape_method(Interpreter(facts), receiver, method, call.args, call.kwargs, ctx)
    if method in ELEMENTWISE_FUNCTIONS:
        return elementwise(receiver, method)
    if method.endswith("_") and isinstance(receiver, Array):
        # any other in-place change (`clamp_`, `normal_`, `fill_`): the shape stays
        return receiver if receiver.origin == "parameter" else replace(receiver, values=None)
    return None


def _binop(facts: FileFacts, expr: Expr, ctx: Context):
    node = cast(cst.BinaryOperation, expr.node)  # kind "binop"
    op = OPERATOR_SYMBOLS.get(type(node.operator).__name__)
    if op is None:
        return None
    left, right = (_operand(facts, e, ctx) for e in expr.operands)
    if op == "@":
        return matmul(left, right, expr)
    found = arith(op, left, right, expr)
    if isinstance(found, Array) and op == "/" and scales_down(expr.operands[1]):
        found = replace(found, normalized=True)
    return found


# -- models ---------------------------------------------------------------------------------
def _call_value(facts: FileFacts, call, expr: Expr, ctx: Context):
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
        data = evaluate(facts, call.args[0], ctx.deeper())
        return apply_module(facts, modules[0], data, ctx)
    function = callee(facts, call, ctx.scope)
    if function is None or function.is_generator or len(function.returns) != 1:
        return None
    env = bind_arguments(function, call, ctx)
    inner = ctx.deeper(scope=function.scope, env=env, before=None)
    return evaluate(facts, function.returns[0], inner)


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


def apply_module(facts: FileFacts, module: v.Value, data, ctx: Context):
    """What a module returns for this input."""
    detail = module.detail
    call = module.expr.call if module.expr is not None else None
    scope = module.scope or ctx.scope
    if detail in facts.classes:
        info = facts.classes[detail]
        forward = v.find_method(facts, info, "forward")
        if forward is None or len(forward.returns) != 1 or not forward.call_params:
            return None
        env = {forward.call_params[0]: Argument(None, None, data)}
        inner = ctx.deeper(scope=forward.scope, env=env, before=None)
        return evaluate(facts, forward.returns[0], inner)
    if call is None:
        return None
    if detail == "Linear":
        inputs = number_at(facts, call.arg(0, "in_features"), ctx.deeper(scope=scope, env={}))
        outputs = number_at(facts, call.arg(1, "out_features"), ctx.deeper(scope=scope, env={}))
        bias_arg = call.arg(2, "bias")
        where = ctx.deeper(scope=scope, env={})
        bias = True if bias_arg is None else number_at(facts, bias_arg, where)
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
        return normalized_data(replace(data, origin="derived"), "standard")
    if detail == "Flatten" and isinstance(data, (Array, Prediction)) and data.shape:
        return reshape_op(data, (data.shape[0], numel(data.shape[1:])), reshape_values(None, data))
    if isinstance(data, Prediction):
        return Prediction(data.shape, None, data.features)  # an activation after a layer
    if isinstance(data, Array):
        return Array(data.shape, "derived", None, batch=data.batch, where=data.where)
    return None
