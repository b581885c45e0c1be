"""Bottom-up summaries of expressions: which names they read, which `.grad`s, which calls.

Each expression node is summarised once, from the summaries of its children, so the facts
pass stays a single walk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import libcst as cst

from advisor.facts.model import NOTHING, Call, Expr, Slice
from advisor.torchapi import DETACHING_ATTRIBUTES, DETACHING_BUILTINS, DETACHING_METHODS

_EMPTY: frozenset[str] = frozenset()


def _merge(parts: Iterable[Expr]) -> dict:
    """The fields an expression inherits from its parts."""
    names: set[str] = set()
    live: set[str] = set()
    grads: set[str] = set()
    ops: set[str] = set()
    calls: list[Call] = []
    for part in parts:
        names |= part.names
        live |= part.live
        grads |= part.grad_of
        ops |= part.ops
        calls.extend(part.calls)
    return {
        "names": frozenset(names),
        "live": frozenset(live),
        "grad_of": frozenset(grads),
        "ops": frozenset(ops),
        "calls": tuple(calls),
    }


class ExpressionSummarizer:
    """Summarises expressions; reports `yield` and calls to the extraction pass."""

    def __init__(self, on_yield: Callable[[Expr | None], None]):
        self._on_yield = on_yield

    def summarize(self, node: cst.BaseExpression) -> Expr:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is not None:
            return method(node)
        return self._generic(node, "other")

    # -- leaves -----------------------------------------------------------------------------
    def _Name(self, node: cst.Name) -> Expr:
        if node.value in ("None", "True", "False"):
            return Expr(
                node, "literal", const={"None": None, "True": True, "False": False}[node.value]
            )
        names = frozenset((node.value,))
        return Expr(node, "name", text=node.value, names=names, live=names)

    def _literal(self, node: cst.BaseExpression) -> Expr:
        return Expr(node, "literal")

    _Imaginary = _Ellipsis = _literal

    def _Integer(self, node: cst.Integer) -> Expr:
        value = int(node.value.replace("_", ""), 0)  # 0xfff...: no bound on hex digits
        return Expr(node, "literal", const=value if value.bit_length() <= 1023 else NOTHING)

    def _Float(self, node: cst.Float) -> Expr:
        return Expr(node, "literal", const=float(node.value.replace("_", "")))

    def _SimpleString(self, node: cst.SimpleString) -> Expr:
        value: object  # the string's value, or NOTHING
        try:
            value = node.evaluated_value
        except Exception:  # an escape Python itself would reject: no constant
            value = NOTHING
        return Expr(node, "literal", const=value)

    def _ConcatenatedString(self, node: cst.ConcatenatedString) -> Expr:
        return self._generic(node, "literal")

    def _FormattedString(self, node: cst.FormattedString) -> Expr:
        parts = [
            self.summarize(part.expression)
            for part in node.parts
            if isinstance(part, cst.FormattedStringExpression)
        ]
        return self._combine(node, "literal", parts)

    # -- compound ---------------------------------------------------------------------------
    def _Attribute(self, node: cst.Attribute) -> Expr:
        base = self.summarize(node.value)
        attr = node.attr.value
        fields = _merge([base])
        if attr == "grad" and base.text:
            fields["grad_of"] |= {base.text}
        if attr in DETACHING_ATTRIBUTES:
            fields["live"] = _EMPTY
        text = f"{base.text}.{attr}" if base.text else None
        return Expr(node, "attr", text=text, base=base, **fields)

    def _Call(self, node: cst.Call) -> Expr:
        func = self.summarize(node.func)
        args: list[Expr] = []
        kwargs: dict[str, Expr] = {}
        for arg in node.args:
            summary = self.summarize(arg.value)
            if arg.keyword is not None:
                kwargs[arg.keyword.value] = summary
            elif not arg.star:
                args.append(summary)
            else:
                kwargs["*" + arg.star] = summary
        call = Call(node, func, tuple(args), kwargs)
        fields = _merge([func, *args, *kwargs.values()])
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else None
        if method in DETACHING_METHODS or (
            isinstance(node.func, cst.Name) and node.func.value in DETACHING_BUILTINS
        ):
            fields["live"] = _EMPTY
        fields["calls"] = (*fields["calls"], call)
        return Expr(node, "call", call=call, **fields)

    def _sequence(self, node: cst.List | cst.Tuple | cst.Set, kind: str) -> Expr:
        elements = tuple(self.summarize(element.value) for element in node.elements)
        summary = Expr(node, kind, elements=elements, **_merge(elements))
        starred = any(isinstance(element, cst.StarredElement) for element in node.elements)
        if kind != "set" and not starred and all(e.const is not NOTHING for e in elements):
            summary.const = [e.const for e in elements]
        return summary

    def _List(self, node: cst.List) -> Expr:
        return self._sequence(node, "list")

    def _Tuple(self, node: cst.Tuple) -> Expr:
        return self._sequence(node, "tuple")

    def _Set(self, node: cst.Set) -> Expr:
        return self._sequence(node, "set")

    def _Dict(self, node: cst.Dict) -> Expr:
        parts: list[Expr] = []
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                parts.append(self.summarize(element.key))
            parts.append(self.summarize(element.value))
        return self._combine(node, "dict", parts)

    def _comprehension(self, node, kind: str) -> Expr:
        parts: list[Expr] = []
        bound: set[str] = set()
        for_in = node.for_in
        while for_in is not None:
            parts.append(self.summarize(for_in.iter))
            bound |= target_names(for_in.target)
            parts.extend(self.summarize(cond.test) for cond in for_in.ifs)
            for_in = for_in.inner_for_in
        if isinstance(node, cst.DictComp):
            parts.append(self.summarize(node.key))
            parts.append(self.summarize(node.value))
        else:
            parts.append(self.summarize(node.elt))
        fields = _merge(parts)
        fields["names"] -= bound
        fields["live"] -= bound
        return Expr(node, kind, **fields)

    def _GeneratorExp(self, node: cst.GeneratorExp) -> Expr:
        return self._comprehension(node, "genexpr")

    def _ListComp(self, node: cst.ListComp) -> Expr:
        return self._comprehension(node, "list")

    def _SetComp(self, node: cst.SetComp) -> Expr:
        return self._comprehension(node, "set")

    def _DictComp(self, node: cst.DictComp) -> Expr:
        return self._comprehension(node, "dict")

    def _Lambda(self, node: cst.Lambda) -> Expr:
        body = self.summarize(node.body)
        params = {param.name.value for param in node.params.params}
        fields = _merge([body])
        fields["names"] -= params
        fields["live"] -= params
        return Expr(node, "lambda", **fields)

    def _Yield(self, node: cst.Yield) -> Expr:
        value = node.value
        if value is None:
            self._on_yield(None)
            return Expr(node, "other")
        if isinstance(value, cst.From):
            self._on_yield(None)
            return self._combine(node, "other", [self.summarize(value.item)])
        yielded = self.summarize(value)
        self._on_yield(yielded)
        return self._combine(node, "other", [yielded])

    def _BinaryOperation(self, node: cst.BinaryOperation) -> Expr:
        operands = (self.summarize(node.left), self.summarize(node.right))
        summary = self._combine(node, "binop", list(operands))
        summary.ops = summary.ops | {type(node.operator).__name__}
        summary.operands = operands
        return summary

    def _UnaryOperation(self, node: cst.UnaryOperation) -> Expr:
        operand = self.summarize(node.expression)
        summary = self._combine(node, "unary", [operand])
        summary.operands = (operand,)
        value = operand.const
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(node.operator, cst.Minus):
                summary.const = -value
            elif isinstance(node.operator, cst.Plus):
                summary.const = value
        return summary

    def _BooleanOperation(self, node: cst.BooleanOperation) -> Expr:
        return self._combine(node, "other", [self.summarize(node.left), self.summarize(node.right)])

    def _Comparison(self, node: cst.Comparison) -> Expr:
        parts = [self.summarize(node.left)]
        parts.extend(self.summarize(target.comparator) for target in node.comparisons)
        return self._combine(node, "other", parts)

    def _IfExp(self, node: cst.IfExp) -> Expr:
        parts = [self.summarize(node.test), self.summarize(node.body), self.summarize(node.orelse)]
        return self._combine(node, "other", parts)

    def _Subscript(self, node: cst.Subscript) -> Expr:
        value = self.summarize(node.value)
        parts = [value]
        slices: list[Expr | Slice] = []
        for element in node.slice:
            inner = element.slice
            if isinstance(inner, cst.Index):
                index = self.summarize(inner.value)
                parts.append(index)
                slices.append(index)
            elif isinstance(inner, cst.Slice):
                bounds = [
                    self.summarize(x) if x else None for x in (inner.lower, inner.upper, inner.step)
                ]
                parts.extend(x for x in bounds if x is not None)
                slices.append(Slice(*bounds))
        summary = self._combine(node, "subscript", parts)
        summary.base = value
        summary.slices = tuple(slices)
        return summary

    def _NamedExpr(self, node: cst.NamedExpr) -> Expr:
        return self._combine(node, "other", [self.summarize(node.value)])

    def _Await(self, node: cst.Await) -> Expr:
        return self._combine(node, "other", [self.summarize(node.expression)])

    def _StarredElement(self, node: cst.StarredElement) -> Expr:
        return self.summarize(node.value)

    def _combine(self, node: cst.BaseExpression, kind: str, parts: list[Expr]) -> Expr:
        return Expr(node, kind, **_merge(parts))

    def _generic(self, node: cst.BaseExpression, kind: str) -> Expr:
        parts = [
            self.summarize(child)
            for child in node.children
            if isinstance(child, cst.BaseExpression)
        ]
        return self._combine(node, kind, parts)


def target_names(node: cst.CSTNode) -> set[str]:
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, (cst.Tuple, cst.List)):
        names: set[str] = set()
        for element in node.elements:
            names |= target_names(element.value)
        return names
    if isinstance(node, cst.StarredElement):
        return target_names(node.value)
    return set()
