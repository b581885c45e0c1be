"""LRA103 update-outside-no-grad."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from advisor.autofix import (
    block_indent,
    fix_or_hint,
    multiline_string,
    placements,
    statement_code,
    stmts_by_node,
)
from advisor.facts import values as v
from advisor.facts.flow import loop_occurrences
from advisor.facts.model import Call, Event, EventKind, FileFacts, Loop, Stmt
from advisor.facts.training import protected_by_no_grad
from advisor.findings import CERTAIN, LIKELY, Diagnostic, Fix, NodeEdit
from advisor.rule import ERROR, Rule

_RELEAF_METHODS = frozenset({"requires_grad_", "retain_grad", "detach_"})


def _releafing(call: Call) -> bool:
    return call.method in _RELEAF_METHODS or "requires_grad" in call.kwargs


def _releafed(facts: FileFacts, stmt: Stmt, target: str | None) -> bool:
    """`w = (w - lr * w.grad).detach().requires_grad_()` or a later `w.requires_grad_()`."""
    value = stmt.value
    if value is not None and value.call is not None and _releafing(value.call):
        return True
    loop = stmt.loops[-1] if stmt.loops else None
    for other in facts.stmts:
        if other.scope is not stmt.scope or other is stmt:
            continue
        if loop is not None and loop not in other.loops:
            continue
        for call in other.calls:
            receiver = call.receiver.text if call.receiver is not None else None
            if receiver == target and call.method in _RELEAF_METHODS:
                return True
        later = target in other.targets and other.order > stmt.order
        if later and any(_releafing(c) for c in other.calls):
            return True
    return False


def _loop_variable(stmt: Stmt, target: str | None) -> Loop | None:
    for loop in reversed(stmt.loops):
        if target in loop.targets:
            return loop
    return None


def _trains(facts: FileFacts, loop: Loop) -> bool:
    return any(o.kind is EventKind.BACKWARD for o in loop_occurrences(facts, loop))


def _rebind(facts: FileFacts, stmt: Stmt, event: Event) -> Diagnostic | None:
    target = event.target
    loop = _loop_variable(stmt, target)
    if loop is not None:
        return Diagnostic(
            stmt.node,
            f"`{target} = ...` rebinds the loop variable: the parameter it named is not "
            "updated at all",
            fix=Fix(f"update in place under torch.no_grad(): `{target} -= ...`"),
        )
    if not stmt.loops or not any(_trains(facts, loop) for loop in stmt.loops):
        return None
    if _releafed(facts, stmt, target):
        return None
    return Diagnostic(
        stmt.node,
        f"`{target} = {target} - ...` makes a new tensor that is not a leaf: "
        f"`{target}.grad` is None after the next backward()",
        fix=Fix(f"update in place under torch.no_grad(): `{target} -= lr * {target}.grad`"),
    )


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    for stmt in facts.stmts:
        for event in stmt.events:
            if event.kind is not EventKind.UPDATE or event.how == "data":
                continue
            if event.how == "rebind":
                found = _rebind(facts, stmt, event)
                if found is not None:
                    yield found
                continue
            if event.value is None:
                continue
            own_grad = event.target in event.value.grad_of or _loop_variable(stmt, event.target)
            if not own_grad:
                continue
            protected = protected_by_no_grad(facts, stmt)
            if protected:
                continue
            yield Diagnostic(
                event.node,
                f"in-place update of `{event.target}` outside torch.no_grad(): autograd "
                "raises 'a leaf Variable that requires grad is being used in an in-place "
                "operation'",
                confidence=CERTAIN if protected is False else LIKELY,
                fix=fix_or_hint(Fix(_HINT), _wrap, facts, stmt),
            )


_HINT = "wrap the update in `with torch.no_grad():` (or update `.data`)"
_CLEARS = frozenset({"tensor", "assign", "zero_grad"})


def _own_grad_update(stmt: Stmt) -> bool:
    """A statement that is one in-place update of a tensor by its own gradient."""
    if stmt.no_grad or len(stmt.events) != 1:
        return False
    event = stmt.events[0]
    if event.kind is not EventKind.UPDATE or event.how not in ("inplace", "method"):
        return False
    value = event.value
    return value is not None and (
        event.target in value.grad_of or _loop_variable(stmt, event.target) is not None
    )


def _clearing(stmt: Stmt) -> bool:
    """`p.grad.zero_()`, `p.grad = None`, `opt.zero_grad()` as a statement of its own."""
    return bool(stmt.events) and all(
        e.kind is EventKind.ZERO and e.how in _CLEARS and e.clears for e in stmt.events
    )


def _kind(facts: FileFacts, line: cst.CSTNode) -> str | None:
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None
    stmt = stmts_by_node(facts).get(id(line.body[0]))
    if stmt is None:
        return None
    if _own_grad_update(stmt):
        return "update"
    return "clear" if _clearing(stmt) else None


def torch_alias(facts: FileFacts, stmt: Stmt) -> str | None:
    """The name under which the file imported torch itself (`import torch as T`), visible at
    the statement; None when only `from torch import ...` or nothing is there."""
    names = sorted(n for n, q in facts.imports.items() if q == "torch")
    for name in sorted(names, key=lambda n: n != "torch"):
        bindings, where = v.lookup(facts, name, stmt.scope)
        if not bindings or any(b.kind != "import" for b in bindings):
            continue
        if where is stmt.scope and not any(b.order < stmt.order for b in bindings):
            continue  # imported only after this statement
        return name
    return None


def _wrap(facts: FileFacts, stmt: Stmt) -> Fix:
    """`with torch.no_grad():` around the run of update statements this one belongs to (with
    the gradient clearings between and after them), with the file's alias of torch and its
    indentation. A hint where the update is not a statement of its own line, torch is not
    imported as a module, or the statements hold a string across lines."""
    hint = Fix(_HINT)
    placement = placements(facts).get(id(stmt.node))
    if placement is None or not placement.on_own_lines or not _own_grad_update(stmt):
        return hint
    if not isinstance(placement.statement, cst.SimpleStatementLine):
        return hint
    alias = torch_alias(facts, stmt)
    if alias is None:
        return hint
    body = placement.body
    first = last = placement.index
    while first > 0 and _kind(facts, body[first - 1]) is not None:
        first -= 1
    while last + 1 < len(body) and _kind(facts, body[last + 1]) is not None:
        last += 1
    while _kind(facts, body[first]) != "update":  # a clearing before the updates is not theirs
        first += 1
    lines = [statement_code(facts, body[first])]
    lines += [statement_code(facts, line, leading=True) for line in body[first + 1 : last + 1]]
    code = "\n".join(lines)
    if multiline_string(code):
        return hint
    indent = block_indent(facts, placement)
    inner = "".join(
        f"{indent}{part}" if part.strip() else part for part in code.splitlines(keepends=True)
    )
    count = sum(_kind(facts, line) == "update" for line in body[first : last + 1])
    what = "the update" if count == 1 else f"the {count} updates"
    return Fix(
        f"run {what} under `with {alias}.no_grad():`",
        "safe",
        node_edits=(
            NodeEdit(
                body[first], f"with {alias}.no_grad():\n{inner}", lines=True, end_node=body[last]
            ),
        ),
    )


RULE = Rule(
    id="LRA103",
    name="update-outside-no-grad",
    summary="A manual parameter update runs under autograd, or rebinds the parameter",
    severity=ERROR,
    what_it_does="""
Finds hand-written gradient-descent updates that cannot work: an in-place update of a leaf
tensor that requires grad (`w -= lr * w.grad`, `w.sub_(lr * w.grad)`) while autograd is
recording, and a rebinding `w = w - lr * w.grad` inside a training loop, which replaces the
leaf by a computed tensor. Updates through `.data`, inside `torch.no_grad()` or
`torch.inference_mode()`, in a helper decorated with `@torch.no_grad()` or called only under
it, and rebindings that make a new leaf (`.detach().requires_grad_()`) are fine.

`--fix` wraps the in-place updates, and the gradient clearings right after them, in
`with torch.no_grad():`, spelt with the file's own alias of torch (`import torch as T`:
`T.no_grad()`) and indented in the file's style. A rebinding, or a file that imports only
names from torch (`from torch import ...`), keeps the hint.
""",
    why_bad="""
The in-place form fails at run time with "a leaf Variable that requires grad is being used in
an in-place operation". The rebinding form runs, but the new `w` is the output of an operation:
after the next `backward()` its `.grad` is `None` (PyTorch warns about accessing `.grad` of a
non-leaf), and the graph grows with every step. Rebinding a loop variable (`for p in params:
p = p - lr * p.grad`) silently updates nothing.
""",
    example="""
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w = w - lr * w.grad
""",
    use_instead="""
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        w.grad.zero_()
""",
    confirms="The probe runs one update as written and reports the autograd error or the "
    "`None` gradient it produces.",
    references=(
        "https://pytorch.org/docs/stable/notes/autograd.html#in-place-operations-with-autograd",
        "https://pytorch.org/docs/stable/generated/torch.no_grad.html",
    ),
    flag=(
        """
import torch
w = torch.randn(3, 1, requires_grad=True)
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w -= 0.01 * w.grad  # expect: update-outside-no-grad
    w.grad.zero_()
""",
        """
import torch
w = torch.randn(3, 1, requires_grad=True)
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w = w - 0.01 * w.grad  # expect: update-outside-no-grad
""",
        """
import torch

def sgd(params, lr):
    for p in params:
        p.sub_(lr * p.grad)  # expect: update-outside-no-grad
        p.grad.zero_()

for epoch in range(10):
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    sgd([w, b], 0.1)
""",
        """
import torch

def sgd(params, lr):
    with torch.no_grad():
        for p in params:
            p = p - lr * p.grad  # expect: update-outside-no-grad
""",
    ),
    quiet=(
        """
import torch
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad
        w.grad.zero_()
""",
        """
import torch
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w.data -= 0.01 * w.grad.data
    w.grad.data.zero_()
""",
        """
import torch

@torch.no_grad()
def sgd(params, lr):
    for p in params:
        p -= lr * p.grad
        p.grad = None
""",
        """
import torch

def sgd(params, lr, batch_size):
    for param in params:
        param -= lr * param.grad / batch_size
        param.grad.zero_()

for epoch in range(3):
    l = loss(net(X, w, b), y)
    l.sum().backward()
    with torch.no_grad():
        sgd([w, b], 0.03, 10)
""",
        """
import torch
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w = (w - 0.01 * w.grad).detach().requires_grad_()
""",
        """
import torch
with torch.inference_mode():
    w -= 0.1 * w.grad
""",
    ),
    check=check,
)
