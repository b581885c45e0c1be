"""Literal data written into a script: `np.array([[...]], dtype=...)`, `torch.tensor([...])`.

The values come from the facts pass (`Expr.const`), never from running code. They follow
`torch.from_numpy`, `torch.as_tensor`, `.float()`, `.astype(...)` and plain re-binding, so
that a rule can ask for the numbers a model is trained on. Pure Python: numpy is imported
only by the code that computes with the values.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.facts import values as v
from advisor.facts.model import NOTHING, Expr, FileFacts, Scope

# Calls that make an array of their first argument.
ARRAY_MAKERS = frozenset(
    {
        "numpy.array",
        "numpy.asarray",
        "numpy.asanyarray",
        "torch.tensor",
        "torch.as_tensor",
        "torch.from_numpy",
        "torch.Tensor",
        "torch.FloatTensor",
        "torch.DoubleTensor",
    }
)
# Methods that keep the values (and, but for dtype, the shape).
SAME_VALUE_METHODS = frozenset(
    {"float", "double", "astype", "to", "cpu", "clone", "detach", "numpy", "copy"}
)
_MAX_DEPTH = 6


@dataclass(frozen=True)
class LiteralArray:
    values: list | float | int  # nested Python lists, rows first
    shape: tuple[int, ...]
    dtype: str | None  # as written: "float32", "torch.float64"; None when not given
    expr: Expr  # where the literal values are written


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


def literal_array(
    facts: FileFacts, expr: Expr | None, scope: Scope, depth: int = 0
) -> LiteralArray | None:
    """The literal numbers an expression holds, or None when they are not written out."""
    if expr is None or depth > _MAX_DEPTH:
        return None
    if expr.const is not NOTHING:
        shape = shape_of(expr.const)
        return LiteralArray(expr.const, shape, None, expr) if shape is not None else None
    if expr.kind == "name":
        bindings, where = v.lookup(facts, expr.text, scope)
        assigned = [b for b in bindings if b.kind == "assign" and b.value is not None]
        if len(assigned) != 1 or len(bindings) != 1:
            return None  # re-bound or unknown: the numbers are not certain
        return literal_array(facts, assigned[0].value, where, depth + 1)
    call = expr.call
    if call is None:
        return None
    qualified = facts.qualify(call.text)
    if qualified in ARRAY_MAKERS:
        found = literal_array(facts, call.arg(0, "data"), scope, depth + 1)
        if found is None:
            return None
        dtype = call.kwargs.get("dtype")
        written = _dtype_text(dtype) if dtype is not None else found.dtype
        return LiteralArray(found.values, found.shape, written, found.expr)
    if call.method in SAME_VALUE_METHODS and call.receiver is not None:
        found = literal_array(facts, call.receiver, scope, depth + 1)
        if found is None:
            return None
        if call.method in ("float", "double"):
            return LiteralArray(found.values, found.shape, call.method, found.expr)
        if call.method == "astype" and call.args:
            return LiteralArray(found.values, found.shape, _dtype_text(call.args[0]), found.expr)
        return found
    return None


def _dtype_text(expr: Expr) -> str | None:
    if isinstance(expr.const, str):
        return expr.const
    return expr.text
