"""LRA403 reused-layer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from advisor.facts import values as v
from advisor.facts.model import Call, ClassInfo, Expr, FileFacts, Scope
from advisor.facts.training import PARAMETERISED_LAYERS
from advisor.findings import Diagnostic, Fix
from advisor.rule import WARNING, Rule

SHARING_WORDS = ("shared", "share", "tied", "tie", "common", "same", "reuse")


def _parameterised(facts: FileFacts, expr: Expr, scope: Scope) -> bool:
    for value in v.values_of(facts, expr, scope):
        if value.kind != v.MODULE:
            return False
        if value.detail in PARAMETERISED_LAYERS:
            continue
        info = facts.classes.get(value.detail)
        if info is None or not _has_parameters(facts, info):
            return False
    return True


def _has_parameters(facts: FileFacts, info: ClassInfo) -> bool:
    init = info.methods.get("__init__")
    if init is None:
        return False
    for values in info.attributes.values():
        for expr in values:
            for value in v.values_of(facts, expr, init.scope):
                if value.kind == v.MODULE or value.detail == "Parameter":
                    return True
    return False


def _layer_attrs(facts: FileFacts, info: ClassInfo) -> set[str]:
    init = info.methods.get("__init__")
    if init is None:
        return set()
    found = set()
    for attr, exprs in info.attributes.items():
        if any(word in attr.lower() for word in SHARING_WORDS):
            continue
        if exprs and all(_parameterised(facts, e, init.scope) for e in exprs):
            found.add(f"self.{attr}")
    return found


def _forward_chains(facts: FileFacts, info: ClassInfo) -> Iterator[Diagnostic]:
    forward = info.methods.get("forward")
    layers = _layer_attrs(facts, info)
    if forward is None or not layers:
        return
    derived: dict[str, frozenset[str]] = {}
    for stmt in facts.stmts:
        if stmt.scope is not forward.scope or stmt.loops or stmt.value is None:
            continue
        applied: dict[int, frozenset[str]] = {}

        def through(expr: Expr, applied=applied) -> frozenset[str]:
            found: frozenset[str] = frozenset()
            for name in expr.names:
                found |= derived.get(name, frozenset())
            for call in expr.calls:
                found |= applied.get(id(call), frozenset())
            return found

        for call in stmt.calls:  # innermost first: arguments are seen before their callers
            inputs = (
                frozenset().union(*(through(a) for a in call.args)) if call.args else frozenset()
            )
            if call.text in layers:
                if call.text in inputs:
                    yield _diagnostic(call)
                inputs = inputs | {call.text}
            applied[id(call)] = inputs
        result = through(stmt.value)
        for target in stmt.targets:
            if "." not in target:
                derived[target] = result


def _diagnostic(call: Call) -> Diagnostic:
    return Diagnostic(
        call.node,
        f"`{call.text}` is applied again to its own output: both applications share one "
        "set of weights, so the model computes w(wx + b) + b and its solution is not unique",
        fix=Fix(
            "create a second layer for the second application (or name it `shared_...` if "
            "sharing is intended)"
        ),
    )


def _multiplied_layers(facts: FileFacts, expr: Expr, scope: Scope) -> bool:
    """`[nn.Linear(d, d), nn.ReLU()] * 3`: the list holds the same layer objects three times."""
    if expr.kind != "binop" or "Multiply" not in expr.ops:
        return False
    lists = [operand for operand in expr.operands if operand.kind == "list"]
    return any(
        element.kind in ("call", "name") and _parameterised(facts, element, scope)
        for listed in lists
        for element in listed.elements
    )


def _list_repeats(facts: FileFacts) -> Iterator[Diagnostic]:
    for name in ("Sequential", "ModuleList"):
        for call, stmt in facts.calls.get(name, []):
            if facts.qualify(call.text) != f"torch.nn.{name}":
                continue
            for arg in (*call.args, *call.kwargs.values()):
                if _multiplied_layers(facts, arg, stmt.scope):
                    yield Diagnostic(
                        arg.node,
                        "multiplying a list repeats the same layer objects: every copy in "
                        f"this nn.{name} shares one set of weights",
                        fix=Fix(
                            "build one layer per position: [nn.Linear(d, d) for _ in range(n)]"
                        ),
                    )


def _sequential_repeats(facts: FileFacts) -> Iterator[Diagnostic]:
    yield from _list_repeats(facts)
    for call, stmt in facts.calls.get("Sequential", []):
        if facts.qualify(call.text) != "torch.nn.Sequential":
            continue
        seen: set[str] = set()
        for arg in call.args:
            if arg.kind != "name":
                continue
            text = cast(str, arg.text)  # a name has its text
            named_shared = any(word in text.lower() for word in SHARING_WORDS)
            if text in seen and not named_shared and _parameterised(facts, arg, stmt.scope):
                yield Diagnostic(
                    arg.node,
                    f"`{text}` appears twice in this nn.Sequential: both positions share "
                    "one set of weights",
                    fix=Fix("create a separate layer for each position"),
                )
            seen.add(text)


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    for info in facts.classes.values():
        if v.is_module_class(facts, info):
            yield from _forward_chains(facts, info)
    yield from _sequential_repeats(facts)


RULE = Rule(
    id="LRA403",
    name="reused-layer",
    summary="One layer with parameters is applied twice in a chain",
    severity=WARNING,
    what_it_does="""
In the `forward` of an `nn.Module` subclass, follows the data from one layer call to the next
and flags a layer with parameters (`nn.Linear`, convolutions, embeddings, recurrent layers, or
a module of the file that has parameters) applied to its own output. Also flags the same layer
object listed twice in `nn.Sequential`. Recurrent loops over time steps, activations and other
parameterless modules, a layer applied to two different inputs (siamese), and attributes named
as shared (`shared`, `tied`) are fine.
""",
    why_bad="""
`x = self.linear(x); x = self.linear(x)` does not make a deeper model: both applications use
the same weight and bias, so the model is `w(wx + b) + b`. For a linear regression the fitted
coefficients are no longer unique (both signs of w can fit), depend on the random seed, and
disagree with the closed-form solution.
""",
    example="""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        x = self.linear(x)
        return self.linear(x)
""",
    use_instead="""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(1, 1)
        self.linear2 = nn.Linear(1, 1)

    def forward(self, x):
        return self.linear2(self.linear1(x))
""",
    confirms="The probe fits the model from several seeds and reports the spread of the "
    "parameters it ends at.",
    references=("https://pytorch.org/docs/stable/notes/modules.html",),
    flag=(
        """
import torch.nn as nn
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        x = self.linear(x)
        x = self.linear(x)  # expect: reused-layer
        return x
""",
        """
from torch import nn
class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.fc(self.act(self.fc(x)))  # expect: reused-layer
""",
        """
import torch
hidden = torch.nn.Linear(8, 8)
model = torch.nn.Sequential(hidden, torch.nn.ReLU(), hidden)  # expect: reused-layer
""",
        """
from torch import nn
body = nn.Sequential(*[nn.Linear(16, 16), nn.ReLU()] * 3)  # expect: reused-layer
""",
    ),
    quiet=(
        """
import torch.nn as nn
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        x = self.act(self.fc1(x))
        x = self.act(x)
        return self.fc2(x)
""",
        """
import torch.nn as nn
class Siamese(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(16, 4)

    def forward(self, a, b):
        za = self.encoder(a)
        zb = self.encoder(b)
        return (za - zb).norm(dim=1)
""",
        """
import torch.nn as nn
class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def forward(self, xs, h):
        for t in range(xs.shape[0]):
            h = self.cell(xs[t], h)
        return h
""",
        """
from torch import nn
body = nn.Sequential(*[nn.ReLU()] * 3, *[nn.Linear(16, 16) for _ in range(3)])
blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
""",
        """
import torch.nn as nn
class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(8, 8)

    def forward(self, x):
        return self.shared(self.shared(x))
""",
    ),
    check=check,
)
