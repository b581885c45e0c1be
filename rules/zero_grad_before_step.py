"""LRA102 zero-grad-before-step."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from advisor.autofix import fix_or_hint, placements, statement_code, stmts_by_node
from advisor.facts import values as v
from advisor.facts.flow import Occurrence, occurrences, over_parameters
from advisor.facts.model import EventKind, FileFacts
from advisor.facts.training import (
    is_update,
    optimizer_models,
    optimizer_tensors,
    stepped_optimizer,
)
from advisor.findings import Diagnostic, Fix, NodeEdit
from advisor.rule import ERROR, Rule


def _clears_for(facts: FileFacts, zero: Occurrence, update: Occurrence) -> bool:
    """The clearing empties the gradients this update reads."""
    event = zero.event
    if not event.clears:
        return False
    if update.kind is EventKind.UPDATE:
        return event.how != "zero_grad" and event.target == update.event.target
    optimizer = stepped_optimizer(facts, update)
    scope = update.origin.scope
    if event.how == "zero_grad":
        if event.target == optimizer:
            return True
        kinds = {x.kind for x in v.text_values(facts, event.target, zero.origin.scope)}
        if v.OPTIMIZER in kinds:
            return False  # another optimizer (GAN-style): not ours
        return event.target in optimizer_models(facts, optimizer, scope)
    return event.target in optimizer_tensors(facts, optimizer, scope)


def _after_own_update(facts: FileFacts, between: list[Occurrence], zero: Occurrence) -> bool:
    """The clearing follows an update that already used these gradients: routine cleanup."""
    return any(is_update(facts, o) and _clears_for(facts, zero, o) for o in between)


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    reported: set[int] = set()
    for scope in facts.scopes():
        function = scope.function
        events = occurrences(
            facts,
            scope.body,
            no_grad=bool(function and function.no_grad),
            transparent_parameter_loops=True,
            stack=(function,) if function else (),
        )
        for start, backward in enumerate(events):
            if backward.kind is not EventKind.BACKWARD:
                continue
            first_zero = None
            for later in events[start + 1 :]:
                if later.kind is EventKind.BACKWARD:
                    break
                if not is_update(facts, later) or not later.compatible(backward):
                    continue
                for zero in events[start + 1 : later.index]:
                    if (
                        zero.kind is EventKind.ZERO
                        and zero.always_with(later)
                        and zero.compatible(backward)
                        and _clears_for(facts, zero, later)
                        and not _after_own_update(facts, events[start + 1 : zero.index], zero)
                    ):
                        if first_zero is None or zero.index < first_zero[0].index:
                            first_zero = (zero, later)
                        break
            if first_zero is None:
                continue
            zero, update = first_zero
            if id(zero.event.node) in reported:
                continue
            reported.add(id(zero.event.node))
            what = "optimizer.step()" if update.kind is EventKind.STEP else "the update"
            yield Diagnostic(
                zero.event.node,
                f"gradients are cleared after backward() and before {what}, "
                "so the update uses zeros and the parameters do not move",
                fix=fix_or_hint(Fix(_HINT), _fix, facts, events, backward, zero, update),
            )


_HINT = "clear the gradients after the update (or before backward()), not between"
_TRAINING = (EventKind.BACKWARD, EventKind.ZERO, EventKind.STEP, EventKind.UPDATE)


def _fix(
    facts: FileFacts,
    events: list[Occurrence],
    backward: Occurrence,
    zero: Occurrence,
    update: Occurrence,
) -> Fix:
    """Move the clearing statement to before the forward pass that leads to backward().

    Only where that is unambiguous: the clearing is a statement of its own (`zero_grad()`, or
    `p.grad = None`; not `p.grad.zero_()`, which fails while `.grad` is still None) in the
    same block as the backward() statement and the update, which runs unconditionally after
    it; no other training event comes between backward() and the update, and the iteration
    runs no other backward() and no clearing before this backward(). Otherwise a hint.
    """
    hint = Fix(_HINT)
    event = zero.event
    if backward.via or zero.via or update.via or not event.clears:
        return hint
    if event.how not in ("zero_grad", "assign"):
        return hint
    where = placements(facts)
    cleared = where.get(id(zero.origin.node))
    computed = where.get(id(backward.origin.node))
    if cleared is None or computed is None or not cleared.on_own_lines:
        return hint
    line = cleared.statement
    small = line.body[0] if isinstance(line, cst.SimpleStatementLine) else None
    if small is not zero.origin.node:
        return hint
    if event.how == "zero_grad" and not (isinstance(small, cst.Expr) and small.value is event.node):
        return hint  # `x = opt.zero_grad()`: keep it simple
    if event.how == "assign" and len(getattr(small, "targets", ())) != 1:
        return hint
    if computed.block is not cleared.block or computed.index >= cleared.index:
        return hint
    if not isinstance(computed.statement, cst.SimpleStatementLine):
        return hint
    if _unconditional_index(facts, where, update, cleared) is None:
        return hint
    between = events[backward.index + 1 : update.index]
    if any(o is not zero and o.kind in _TRAINING for o in between):
        return hint
    depth = len(backward.loops)
    before = [o for o in events[: backward.index] if o.loops[:depth] == backward.loops]
    if any(o.kind in (EventKind.ZERO, EventKind.BACKWARD) for o in before):
        # cleared before backward() already (only removing it would do), or another
        # backward() earlier in the iteration whose gradients the step may be meant to use
        return hint
    target = _forward_start(facts, computed, backward)
    code = statement_code(facts, line)
    return Fix(
        f"clear the gradients before backward(), not between it and the update: move "
        f"`{statement_code(facts, small)}` before the forward pass",
        "safe",
        node_edits=(
            NodeEdit(computed.body[target], code, insert_before=True),
            NodeEdit(line, "", lines=True),
        ),
    )


def _unconditional_index(facts: FileFacts, where, update: Occurrence, cleared) -> int | None:
    """The index in the clearing's block of the statement that runs the update, when it
    comes after the clearing and always runs the update (directly, in a `with`, or in a loop
    over the parameters)."""
    placement = where.get(id(update.origin.node))
    while placement is not None and placement.block is not cleared.block:
        enclosing = placement.enclosing
        if not isinstance(enclosing, (cst.With, cst.For)):
            return None
        if isinstance(enclosing, cst.For) and not any(
            loop.node is enclosing and over_parameters(loop) for loop in facts.loops
        ):
            return None
        placement = where.get(id(enclosing))
    if placement is None or placement.index <= cleared.index:
        return None
    return placement.index


def _forward_start(facts: FileFacts, computed, backward: Occurrence) -> int:
    """The first of the statements just before backward() that compute its loss: `out =
    model(x)`, `loss = criterion(out, y)`. Only plain assignments to names that feed the loss,
    without events and without any mention of gradients, are crossed."""
    stmts = stmts_by_node(facts)
    value = backward.event.value
    needed = set(value.names) if value is not None else set()
    index = computed.index
    body = computed.body
    while index > 0 and needed:
        line = body[index - 1]
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            break
        small = line.body[0]
        stmt = stmts.get(id(small))
        if not isinstance(small, (cst.Assign, cst.AnnAssign)) or stmt is None or stmt.value is None:
            break
        if stmt.events or any("." in t for t in stmt.targets) or not set(stmt.targets) & needed:
            break
        if "grad" in statement_code(facts, small):
            break
        needed |= set(stmt.value.names)
        index -= 1
    return index


RULE = Rule(
    id="LRA102",
    name="zero-grad-before-step",
    summary="Gradients are cleared between backward() and the update that needs them",
    severity=ERROR,
    what_it_does="""
Follows the order of events in each function and loop iteration, into helpers of the same
file, and finds a clearing of the gradients (`optimizer.zero_grad()`, `model.zero_grad()`,
`w.grad.zero_()`, `w.grad = None`) that always runs after `backward()` and before the
optimizer step or manual update that was meant to use those gradients.

`--fix` moves a misplaced `zero_grad()` (or `p.grad = None`) statement, with its trailing
comment, to just before the statements that compute the loss, when the clearing, backward()
and the update are statements of one block and the update always runs. A `p.grad.zero_()`
(which fails while `.grad` is still None), a step under a condition (accumulation?) or a
clearing inside a helper stay hints: move the clearing after the update yourself.
""",
    why_bad="""
The step then reads zeros (or `None`): the parameters do not move at all, or only momentum
moves them. The loss stays flat, and nothing raises an error.
""",
    example="""
for xb, yb in loader:
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()

loss.backward()
w.grad.zero_()
with torch.no_grad():
    w -= lr * w.grad
""",
    use_instead="""
for xb, yb in loader:
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()

loss.backward()
with torch.no_grad():
    w -= lr * w.grad
w.grad.zero_()
""",
    confirms="The probe checks that a step with the script's order leaves every parameter "
    "unchanged (LRA502) and shows that moving the clearing makes the loss decrease.",
    references=("https://pytorch.org/docs/stable/optim.html#taking-an-optimization-step",),
    flag=(
        """
import torch
w = torch.randn(2, 3, requires_grad=True)
loss = ((X @ w.t() - Y) ** 2).mean()
loss.backward()
w.grad.zero_()  # expect: zero-grad-before-step
with torch.no_grad():
    w -= 1e-5 * w.grad
""",
        """
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for xb, yb in loader:
    loss = torch.nn.functional.mse_loss(model(xb), yb)
    loss.backward()
    opt.zero_grad()  # expect: zero-grad-before-step
    opt.step()
""",
        """
import torch

def update(params, lr):
    with torch.no_grad():
        for p in params:
            p.grad.zero_()  # expect: zero-grad-before-step
            p -= lr * p.grad

for epoch in range(10):
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    update([w, b], 0.1)
""",
        """
import torch
net = torch.nn.Sequential(torch.nn.Linear(4, 1))
optimizer = torch.optim.Adam(net.parameters())
for epoch in range(10):
    out = net(X)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    net.zero_grad()  # expect: zero-grad-before-step
    if epoch % 2 == 0:
        optimizer.step()
""",
    ),
    quiet=(
        """
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for xb, yb in loader:
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(xb), yb)
    loss.backward()
    opt.step()
""",
        """
import torch
for real in loader:
    d_loss = d_loss_fn(D(real), D(G(noise)))
    d_loss.backward()
    g_opt.zero_grad()
    d_opt.step()
    d_opt.zero_grad()
""",
        """
import torch
for step in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    if loss.item() < 1e-3:
        w.grad.zero_()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
""",
        """
import torch
for epoch in range(5):
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
    w.grad.zero_()
    b.grad.zero_()
""",
        """
import torch
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    loss = loss_fn(model(xb), yb)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
""",
        """
import torch
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loss = loss_fn(model(X), y)
loss.backward()
opt.step()
opt.zero_grad()
if extra_step:
    opt.step()
""",
    ),
    check=check,
)
