"""What indexing, reshaping, reductions, joins and dropped columns do to abstract data, with
the sizes and axes they are given read by the data interpreter (a `Reader`)."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from advisor.facts.arrays import (
    Array,
    Dim,
    Lazy,
    Shape,
    data_shape,
    need,
    numel,
    reshape_op,
    reshape_values,
    resolve_reshape,
    transposed_shape,
    weakest_origin,
)
from advisor.facts.evaluation import Context, Reader
from advisor.facts.model import Expr, Slice


def indexed(read: Reader, base: Array, slices, ctx: Context) -> Array | None:
    """`x[...]` of data: integers, slices, `None` and index tensors or masks for rows."""
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
            bounds = [read.number(b, ctx) if b is not None else None for b in parts]
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
        index = (*lead, *keys)
        values = base.values.then(lambda np, x: x[index])
    return replace(base, shape=tuple(out), values=values, batch=batch, columns=None)


def concatenated(
    read: Reader, parts: list, axis: int, ctx: Context, expr: Expr, columns: bool = False
):
    """`torch.cat`, `np.concatenate`, `np.hstack`, `np.c_`: parts joined along an axis."""
    found = [read.data(p, ctx.deeper()) if isinstance(p, Expr) else None for p in parts]
    if columns:  # np.column_stack / np.c_: flat arrays become columns
        found = [
            reshape_op(f, (*f.shape, 1), lambda np, x: x[..., None])
            if isinstance(f, Array) and f.shape is not None and len(f.shape) == 1
            else f
            for f in found
        ]
    if not found or not all(isinstance(f, Array) and f.shape for f in found):
        return None
    arrays = cast(list[Array], found)  # all data with a known, non-empty shape: checked above
    shapes = cast(list[Shape], [f.shape for f in arrays])
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes) or not -rank <= axis < rank:
        return None
    axis %= rank
    shape = list(shapes[0])
    sizes = [s[axis] for s in shapes]
    shape[axis] = sum(cast(list[int], sizes)) if None not in sizes else None
    lazies = [f.values for f in arrays]
    values = None
    if all(lazies) and all(f.batch == arrays[0].batch for f in arrays):
        lead = 1 if arrays[0].batch == "row" else 0
        known = cast(list[Lazy], lazies)  # all(lazies): none is None
        values = Lazy(lambda np: np.concatenate([need(x.get()) for x in known], axis + lead))
    return Array(
        tuple(shape),
        weakest_origin(arrays),
        values,
        batch=arrays[0].batch,
        where=expr,
        normalized=all(f.normalized for f in arrays),
        rows=arrays[0].rows,
    )


def dropped_columns(read: Reader, table: Array, call, ctx: Context):
    """`df.drop(columns=[...])` of a table read with its header."""
    names = call.kwargs.get("columns") or call.arg(0, "labels")
    axis = read.number(call.kwargs.get("axis"), ctx) if "axis" in call.kwargs else 0
    if "columns" not in call.kwargs and axis not in (1, "columns"):
        return None
    value = names.const if names is not None else None
    dropped = [value] if isinstance(value, str) else value
    header = cast(tuple[str, ...], table.columns)  # its caller passes only a table with a header
    if not isinstance(dropped, list) or any(d not in header for d in dropped):
        return None
    kept = [i for i, name in enumerate(header) if name not in dropped]
    return replace(
        table,
        shape=(cast(Shape, table.shape)[0], len(kept)),  # a table read from a file has a shape
        values=table.values.then(lambda np, x: x[:, kept]) if table.values else None,
        columns=tuple(header[i] for i in kept),
    )


def reduced(read: Reader, data: Array, name: str, call, ctx: Context, skip: int = 0):
    """`x.mean(0)`, `torch.sum(x, dim=1, keepdim=True)`: a reduction along one axis or all."""
    axis_arg = call.kwargs.get("dim") or call.kwargs.get("axis") or call.arg(skip)
    axis = read.number(axis_arg, ctx) if axis_arg is not None else None
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


def shape_method(read: Reader, data, method: str, args, kwargs, ctx: Context):
    """`reshape`, `view`, `unsqueeze`, `squeeze`, `flatten`, `t` and the like."""
    shape = data.shape
    if shape is None:
        return None
    if method in ("view_as", "reshape_as", "expand_as") and args:
        other = data_shape(read.data(args[0], ctx.deeper()))
        return reshape_op(data, other, reshape_values(other, data)) if other else None
    if method in ("reshape", "view"):
        sizes = [read.number(a, ctx) for a in args] or [read.number(kwargs.get("shape"), ctx)]
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
                other = data_shape(read.data(args[0].base, ctx.deeper()))
                return reshape_op(data, other, reshape_values(other, data)) if other else None
            return None
        new: Shape | None = resolve_reshape(shape, cast(list[int], sizes))  # ints: checked above
        return reshape_op(data, new, reshape_values(new, data))
    if method in ("unsqueeze",):
        dim = read.number(args[0] if args else kwargs.get("dim"), ctx)
        if not isinstance(dim, int) or not -len(shape) - 1 <= dim <= len(shape):
            return None
        dim %= len(shape) + 1
        new = (*shape[:dim], 1, *shape[dim:])
        lead = 1 if getattr(data, "batch", None) == "row" else 0
        # `dim` is an int here (checked above); the lambda does not keep mypy's narrowing
        return reshape_op(data, new, lambda np, x: np.expand_dims(x, cast(int, dim) + lead))
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
            return reshape_op(
                data,
                new,
                lambda np, x: (
                    x.reshape(x.shape[:lead] + tuple(d for d in x.shape[lead:] if d != 1))
                    if lead
                    else np.squeeze(x)
                ),
            )
        dim = read.number(dim_arg, ctx)
        if not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
            return None
        dim %= len(shape)
        if shape[dim] != 1:
            return data
        new = tuple(d for i, d in enumerate(shape) if i != dim)
        lead = 1 if getattr(data, "batch", None) == "row" else 0
        return reshape_op(data, new, lambda np, x: np.squeeze(x, dim + lead))
    if method in ("flatten", "ravel"):
        if args or kwargs:
            return None
        size = numel(shape)
        return reshape_op(data, (size,), reshape_values((size,), data))
    if method in ("t", "transpose"):
        if method == "transpose" and len(args) == 2 and len(shape) == 2:
            return reshape_op(data, transposed_shape(shape), lambda np, x: x.T)
        if method == "t" and len(shape) <= 2:
            return reshape_op(data, transposed_shape(shape), lambda np, x: x.T)
        return None
    return None
