"""LRA104 accumulated-loss-tensor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from advisor.facts import values as v
from advisor.facts.model import Call, Event, EventKind, Expr, FileFacts, Loop, Scope, Stmt
from advisor.facts.training import is_loss_call, protected_by_no_grad
from advisor.findings import Diagnostic, Fix, NodeEdit
from advisor.rule import WARNING, Rule
from advisor.torchapi import DETACHING_BUILTINS, DETACHING_METHODS


def _backwarded(facts: FileFacts, scope: Scope) -> set[str]:
    """Names on which backward() is called in this scope (the graph-carrying losses)."""
    names: set[str] = set()
    for stmt in facts.stmts:
        if stmt.scope is scope:
            for event in stmt.events:
                if event.kind is EventKind.BACKWARD and event.value is not None:
                    names |= event.value.live
    return names


def _graph_loss(facts: FileFacts, name: str, stmt: Stmt, backwarded: set[str]) -> bool:
    """`name` holds a loss tensor with its graph: backward() is called on it, or it is the
    result of a loss function computed with autograd on."""
    if name in backwarded:
        return True
    bindings = [b for b in stmt.scope.bindings.get(name, []) if b.kind == "assign"]
    for binding in bindings:
        value = binding.value
        if value is None or value.call is None or binding.stmt is None:
            continue
        if binding.stmt.no_grad or value.live == frozenset():
            continue
        if is_loss_call(facts, value.call, stmt.scope):
            return True
    return False


def _inline_loss_call(facts: FileFacts, value: Expr, stmt: Stmt) -> Call | None:
    """`total += criterion(out, y)`: a loss call whose result is not detached on the way."""
    if stmt.no_grad:
        return None
    detaching = [c for c in value.calls if _detaches(c)]
    for call in value.calls:
        if _detaches(call) or not is_loss_call(facts, call, stmt.scope):
            continue
        inside = (c for d in detaching for part in (d.func, *d.args) for c in part.calls)
        if not any(c is call for c in inside):
            return call
    return None


def _detaches(call: Call) -> bool:
    return call.method in DETACHING_METHODS or (
        call.method is None and call.text in DETACHING_BUILTINS
    )


def _created_outside(stmt: Stmt, target: str, loop: Loop) -> bool:
    root = target.split(".", 1)[0]
    if root == "self":
        return True
    bindings = stmt.scope.bindings.get(root, [])
    inside = [b for b in bindings if loop in b.loops and b.kind in ("assign", "unpack", "for")]
    if any(b.order < stmt.order for b in inside):
        return False
    return any(loop not in b.loops for b in bindings) or root in stmt.scope.globals


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    cache: dict[int, set[str]] = {}
    for stmt in facts.stmts:
        if not stmt.loops:
            continue
        for event in stmt.events:
            if (
                event.kind is not EventKind.ACCUMULATE
                or event.value is None
                or event.target is None
            ):
                continue
            found = _diagnose(facts, stmt, event, cache)
            if found is not None:
                yield found


def _diagnose(facts: FileFacts, stmt: Stmt, event: Event, cache) -> Diagnostic | None:
    # check() passes only events with a target and a value
    target, value = cast(str, event.target), cast(Expr, event.value)
    loop = stmt.loops[-1]
    if not _created_outside(stmt, target, loop):
        return None
    key = id(stmt.scope)
    if key not in cache:
        cache[key] = _backwarded(facts, stmt.scope)
    backwarded = cache[key]
    losses = [n for n in value.live if n != target and _graph_loss(facts, n, stmt, backwarded)]
    inline = _inline_loss_call(facts, value, stmt)
    if not losses and inline is None:
        return None
    if target in backwarded or protected_by_no_grad(facts, stmt):
        return None
    if {x.kind for x in v.text_values(facts, target, stmt.scope)} & {v.TENSOR}:
        return None
    name = losses[0] if losses else f"{cast(Call, inline).text}(...)"  # no losses: an inline call
    description = f"accumulate a number: `{name}.item()` (or `{name}.detach()`)"
    whole = (losses and value.kind == "name" and value.text == losses[0]) or (
        inline is not None and value.kind == "call" and value.call is inline
    )
    fix = Fix(description)
    if whole:  # `total += loss`: the added value is the loss itself
        code = facts.module.code_for_node(value.node)
        fix = Fix(description, "safe", node_edits=(NodeEdit(value.node, f"{code}.item()"),))
    return Diagnostic(
        event.node,
        f"`{name}` is accumulated across iterations as a tensor: every iteration's autograd "
        "graph stays alive and memory grows",
        fix=fix,
    )


RULE = Rule(
    id="LRA104",
    name="accumulated-loss-tensor",
    summary="A loss tensor is summed or collected across iterations without .item()",
    severity=WARNING,
    what_it_does="""
Finds `total += loss`, `total = total + loss` and `losses.append(loss)` inside a loop, with an
accumulator created outside it, where `loss` still carries its autograd graph (it is the tensor
`backward()` is called on, or the result of a loss function computed with autograd on).
""",
    why_bad="""
A loss tensor keeps a reference to the whole graph that produced it. Summing such tensors keeps
every iteration's graph (and its saved activations) alive until the total is dropped: memory
grows with the number of iterations, and on a GPU the run ends in an out-of-memory error.
""",
    example="""
running = 0.0
for xb, yb in loader:
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()
    opt.zero_grad()
    running += loss
""",
    use_instead="""
running = 0.0
for xb, yb in loader:
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()
    opt.zero_grad()
    running += loss.item()
""",
    confirms="Not measured by the probe: the cost is memory, not the optimum.",
    references=(
        "https://pytorch.org/docs/stable/notes/faq.html#my-model-reports-cuda-runtime-error-2-out-of-memory",
    ),
    flag=(
        """
import torch
total = 0.0
for xb, yb in loader:
    opt.zero_grad()
    loss = criterion(model(xb), yb)
    loss.backward()
    opt.step()
    total += loss  # expect: accumulated-loss-tensor
""",
        """
import torch
import torch.nn.functional as F
history = []
for epoch in range(100):
    pred = model(X)
    loss = F.mse_loss(pred, y)
    history.append(loss)  # expect: accumulated-loss-tensor
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
        """
import torch
class Trainer:
    def train_epoch(self, loader):
        epoch_loss = 0
        for xb, yb in loader:
            self.opt.zero_grad()
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            epoch_loss = epoch_loss + loss  # expect: accumulated-loss-tensor
        return epoch_loss / len(loader)
""",
        """
import torch
from torch import nn
criterion = nn.MSELoss()
def evaluate(model, loader):
    model.eval()
    val_loss = 0.0
    for xb, yb in loader:
        val_loss += criterion(model(xb), yb)  # expect: accumulated-loss-tensor
    return val_loss / len(loader)
""",
    ),
    quiet=(
        """
import torch
total = 0.0
for xb, yb in loader:
    opt.zero_grad()
    loss = criterion(model(xb), yb)
    loss.backward()
    opt.step()
    total += loss.item()
""",
        """
import torch
total = 0.0
for xb, yb in loader:
    total += criterion(model(xb), yb).item()
""",
        """
import torch
total = 0.0
with torch.no_grad():
    for xb, yb in val_loader:
        loss = criterion(model(xb), yb)
        total += loss
""",
        """
import torch
total = 0
for x, y in zip(xs, ys):
    total = total + criterion(model(x), y)
total.backward()
optimizer.step()
""",
        """
import torch
losses = []
for xb, yb in loader:
    loss = criterion(model(xb), yb)
    loss.backward()
    losses.append(float(loss))
    losses.append(loss.detach())
""",
        """
import torch
for epoch in range(10):
    batch_loss = 0
    for xb, yb in loader:
        loss = criterion(model(xb), yb)
        batch_loss += loss
    batch_loss.backward()
    opt.step()
""",
    ),
    check=check,
)
