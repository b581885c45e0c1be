"""Data that torch and numpy calls make from sizes and numbers: ranges, constants, stacks and
concatenations, random draws (a seeded sample stands for each), and DataLoader batches."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import cast

from advisor.facts.arrays import (
    Array,
    Items,
    Lazy,
    Loader,
    Prediction,
    Shape,
    elementwise,
    first_dim,
    matmul,
    need,
    normalized_data,
    stacked,
    transposed,
)
from advisor.facts.evaluation import Context, DataCache, Reader
from advisor.facts.model import NOTHING, Expr
from advisor.facts.shaping import concatenated, reduced, shape_method
from advisor.torchapi import (
    ELEMENTWISE_FUNCTIONS,
    LIKE_MAKERS,
    RANDOM_DRAWS,
    REDUCTIONS,
)

SYNTHETIC_ROWS = 20_000  # synthetic data larger than this is sampled to this many rows


def _size_args(read: Reader, call, ctx: Context, start: int = 0) -> tuple[int, ...] | None:
    """`randn(3, 4)`, `randn((3, 4))`, `zeros(size=(3, 4))`."""
    sized = call.kwargs.get("size") or call.kwargs.get("shape")
    args = [sized] if sized is not None else list(call.args[start:])
    if not args:
        return None
    dims: list[object] = []
    for arg in args:
        value = read.number(arg, ctx)
        if isinstance(value, (tuple, list)):
            dims.extend(value)
        else:
            dims.append(value)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        return None
    return cast(tuple[int, ...], tuple(dims))  # all sizes are ints: checked above


def requires_grad(call) -> bool:
    """`requires_grad=True` is written: the tensor is a parameter."""
    flag = call.kwargs.get("requires_grad")
    return flag is not None and flag.const is True


def factory(read: Reader, qualified: str, call, expr: Expr, ctx: Context):
    """Arrays made by torch/numpy from sizes: ranges, constants and random draws."""
    name = qualified.rsplit(".", 1)[-1]
    random = qualified.startswith(("numpy.random.", "torch.")) or ".random." in qualified
    numbers = [read.number(a, ctx) for a in call.args]
    if name in ("arange", "linspace"):
        if not numbers or not all(isinstance(n, (int, float)) for n in numbers):
            return None
        given = cast(list[float], numbers)  # all ints or floats: checked above
        try:
            if name == "arange":
                bounds = [0, *given] if len(given) == 1 else list(given)
                start, stop, step = (*bounds, 1)[:3]
                count = max(0, math.ceil((stop - start) / step)) if step else None
            else:
                default = 50 if "numpy" in qualified else None
                count = int(given[2]) if len(given) > 2 else default
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
        shape: Shape | None = _size_args(read, call, ctx) if name != "full" else None
        if name == "full" and call.args:
            size = read.number(call.args[0], ctx)
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
        origin = "parameter" if requires_grad(call) else "literal"
        fill = {"zeros": 0.0, "ones": 1.0, "empty": 0.0}.get(name)
        if name == "full":
            value = read.number(call.arg(1, "fill_value"), ctx)
            fill = float(value) if isinstance(value, (int, float)) else None

        def filled(np):
            return np.eye(*shape) if name == "eye" else np.full(shape, need(fill))

        known = name == "eye" or fill is not None
        values = Lazy(filled) if known else None
        return Array(shape, origin, values, where=expr, rows=first_dim(shape))
    if name in LIKE_MAKERS and call.args:  # `torch.ones_like(x)`: x's shape
        like = read.data(call.args[0], ctx.deeper())
        shape = like.shape if isinstance(like, (Array, Prediction)) else None
        if shape is None or None in shape:
            return None
        fill = {"zeros_like": 0.0, "ones_like": 1.0}.get(name)
        values = Lazy(lambda np: np.full(shape, fill)) if fill is not None else None
        origin = "literal" if fill is not None else "derived"
        return Array(shape, origin, values, where=expr, rows=first_dim(shape))
    if name == "stack" and call.arg(0, "tensors") is not None:
        parts = call.arg(0, "tensors") or call.arg(0, "arrays")
        axis = read.number(call.kwargs.get("dim") or call.kwargs.get("axis") or call.arg(1), ctx)
        axis = 0 if axis is NOTHING else axis
        if not parts.elements or not isinstance(axis, int):
            return None
        return stacked([read.data(p, ctx.deeper()) for p in parts.elements], axis, expr)
    if random and name in RANDOM_DRAWS:
        return random_draw(read, qualified, name, call, expr, ctx)
    if name in ("cat", "concatenate", "hstack", "column_stack", "stack", "vstack"):
        parts = call.arg(0, "tensors")
        axis = read.number(call.kwargs.get("dim") or call.kwargs.get("axis") or call.arg(1), ctx)
        if name in ("hstack", "column_stack"):
            axis = 1
        elif name == "vstack" or axis is NOTHING:
            axis = 0
        if parts is None or not parts.elements or name == "stack" or not isinstance(axis, int):
            return None
        columns = name == "column_stack"
        return concatenated(read, list(parts.elements), axis, ctx, expr, columns)
    if name in ("matmul", "mm", "mv", "dot") and len(call.args) == 2:
        left, right = (read.data(a, ctx.deeper()) for a in call.args)
        return matmul(left, right, expr)
    if name == "linear" and "functional" in qualified and len(call.args) >= 2:
        data = read.data(call.args[0], ctx.deeper())
        weight = read.data(call.args[1], ctx.deeper())
        bias = call.arg(2, "bias")
        product = matmul(data, transposed(weight), expr)
        if isinstance(product, Prediction) and product.model and bias is not None:
            return replace(product, model=replace(product.model, bias=bias.const is not None))
        return product
    if name in REDUCTIONS and call.args:
        data = read.data(call.args[0], ctx.deeper())
        if isinstance(data, Array):
            return reduced(read, data, name, call, ctx, skip=1)
        return None
    if name in ELEMENTWISE_FUNCTIONS and call.args:
        return elementwise(read.data(call.args[0], ctx.deeper()), name)
    if name == "normalize" and "functional" in qualified and call.args:
        return normalized_data(read.data(call.args[0], ctx.deeper()), "rows")
    if name in ("squeeze", "unsqueeze", "reshape", "flatten", "transpose", "t") and call.args:
        data = read.data(call.args[0], ctx.deeper())
        if isinstance(data, (Array, Prediction)):
            return shape_method(read, data, name, call.args[1:], call.kwargs, ctx)
        return None
    return NOTHING


def random_draw(read: Reader, qualified: str, name: str, call, expr: Expr, ctx: Context):
    """A random draw with a known distribution: a seeded sample stands for it."""
    if name == "normal":
        if qualified.startswith("torch."):
            loc, scale = (read.number(call.arg(i, k), ctx) for i, k in ((0, "mean"), (1, "std")))
            shape = _size_args(read, call, ctx, start=2)
        else:
            loc = read.number(call.arg(0, "loc"), ctx) if call.arg(0, "loc") else 0.0
            scale = read.number(call.arg(1, "scale"), ctx) if call.arg(1, "scale") else 1.0
            shape = (
                _size_args(read, call, ctx, start=2)
                if len(call.args) > 2 or "size" in call.kwargs
                else ()
            )
        kind = "normal"
    elif name == "uniform":
        loc = read.number(call.arg(0, "low"), ctx) if call.arg(0, "low") else 0.0
        scale = read.number(call.arg(1, "high"), ctx) if call.arg(1, "high") else 1.0
        shape = (
            _size_args(read, call, ctx, start=2)
            if len(call.args) > 2 or "size" in call.kwargs
            else ()
        )
        kind = "uniform"
    else:
        loc, scale = 0.0, 1.0
        shape = _size_args(read, call, ctx)
        kind = "normal" if name in ("randn", "standard_normal") else "uniform"
    if shape is None or not all(isinstance(x, (int, float)) for x in (loc, scale)):
        return None
    origin = "parameter" if requires_grad(call) else "synthetic"
    sample = (min(shape[0], SYNTHETIC_ROWS), *shape[1:]) if shape else ()
    seed = _draw_seed(read, expr, ctx)

    def draw(np):
        generator = np.random.default_rng(seed)
        if kind == "normal":
            return generator.normal(loc, scale, sample)
        return generator.uniform(loc, scale, sample)

    return Array(shape, origin, Lazy(draw), where=expr, rows=first_dim(shape))


def _draw_seed(read: Reader, expr: Expr, ctx: Context) -> int:
    """One seed per draw in the program, so that independent draws are independent samples.

    The same draw reached twice (through two uses of one variable, or one call site of a helper
    evaluated again) gets the same seed, so the data it makes stays one data set.
    """
    sites = tuple(arg.expr for arg in ctx.env.values())
    seeds = read.facts.derived.of(DataCache).draw_seeds
    return seeds.setdefault((expr, sites), len(seeds))


def data_loader(read: Reader, call, expr: Expr, ctx: Context):
    """`DataLoader(dataset, batch_size=..., shuffle=..., drop_last=...)`."""
    dataset = read.data(call.arg(0, "dataset"), ctx.deeper())
    if not isinstance(dataset, Items):
        return None
    size_arg = call.arg(1, "batch_size")
    size = read.number(size_arg, ctx) if size_arg is not None else 1
    shuffle = read.number(call.arg(2, "shuffle"), ctx) if call.arg(2, "shuffle") else False
    drop = read.number(call.kwargs.get("drop_last"), ctx) if "drop_last" in call.kwargs else False
    if size is None:
        return None  # batch_size=None: samples one at a time, without a batch axis
    return Loader(
        dataset,
        size if isinstance(size, int) and not isinstance(size, bool) else None,
        shuffle if isinstance(shuffle, bool) else None,
        drop is True,
        expr,
    )
