"""LRA101 missing-zero-grad."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from advisor.facts import values as v
from advisor.facts.flow import Occurrence
from advisor.facts.model import EventKind, FileFacts, Loop
from advisor.facts.training import is_update, report_node, stepped_optimizer, training_loops
from advisor.findings import Diagnostic, Fix, NodeEdit
from advisor.rule import ERROR, Rule

_FRESH_KINDS = frozenset({v.OPTIMIZER, v.MODULE})


def _innermost(loop: Loop, events: list[Occurrence]) -> bool:
    """No loop nested in this iteration runs both backward() and the update by itself."""
    for backward in (o for o in events if o.kind is EventKind.BACKWARD):
        if not backward.loops:
            return True
        inner = backward.loops[0]
        if not any(
            o.loops[:1] == (inner,) for o in events if o.kind in (EventKind.STEP, EventKind.UPDATE)
        ):
            return True
    return False


def _builds_fresh_parameters(facts: FileFacts, loop: Loop, events: list[Occurrence]) -> bool:
    """A new model, optimizer or leaf tensor each iteration: nothing accumulates."""
    if any(o.kind is EventKind.UPDATE and o.event.how == "rebind" for o in events):
        return True
    for stmt in facts.stmts:
        if loop not in stmt.loops or stmt.op != "assign" or stmt.value is None:
            continue
        value = stmt.value
        if value.call is not None and "requires_grad" in value.call.kwargs:
            return True
        if any(c.method == "requires_grad_" for c in value.calls):
            return True
        if {x.kind for x in v.values_of(facts, value, stmt.scope)} & _FRESH_KINDS:
            return True
    return False


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    seen: set[int] = set()
    for loop, events in training_loops(facts):
        if not _innermost(loop, events):
            continue
        if any(o.kind is EventKind.ZERO for o in events):
            continue
        if _builds_fresh_parameters(facts, loop, events):
            continue
        backward = next(o for o in events if o.kind is EventKind.BACKWARD)
        update = next(o for o in events if is_update(facts, o))
        node = report_node(backward)
        if id(node) in seen:
            continue
        seen.add(id(node))
        what = "optimizer.step()" if update.kind is EventKind.STEP else "the manual update"
        yield Diagnostic(
            node,
            "gradients are never cleared in this loop: backward() adds to .grad every "
            f"iteration, so {what} uses the sum of all past gradients",
            fix=_fix(facts, loop, update),
        )


def _fix(facts: FileFacts, loop: Loop, update: Occurrence) -> Fix:
    """`<optimizer>.zero_grad()` as the loop body's first statement, when the loop steps one
    optimizer known by name in the loop's own scope; otherwise a hint."""
    description = "clear the gradients once per iteration (optimizer.zero_grad() before backward())"
    if update.kind is not EventKind.STEP or update.origin.scope is not loop.scope:
        return Fix(description)
    optimizer = stepped_optimizer(facts, update)
    body = getattr(loop.node.body, "body", None)
    if not optimizer or not isinstance(loop.node.body, cst.IndentedBlock) or not body:
        return Fix(description)
    call = f"{optimizer}.zero_grad()"
    return Fix(
        f"clear the gradients at the start of each iteration: `{call}`",
        "safe",
        node_edits=(NodeEdit(body[0], call, insert_before=True),),
    )


RULE = Rule(
    id="LRA101",
    name="missing-zero-grad",
    summary="A training loop calls backward() and updates, but never clears the gradients",
    severity=ERROR,
    what_it_does="""
Checks every loop that calls `backward()` and then updates the parameters (an optimizer's
`step()` or a manual `w -= lr * w.grad`) for something that clears the gradients in the same
iteration: `optimizer.zero_grad()`, `model.zero_grad()`, `p.grad = None`, `p.grad.zero_()`,
also inside a helper the loop calls or an LBFGS closure. Deliberate accumulation (clearing
every k iterations) and loops that build a fresh model or optimizer each time are fine.
""",
    why_bad="""
`backward()` does not overwrite `.grad`, it adds to it. Without clearing, the gradient used by
the n-th update is the sum of the n gradients so far: the effective step grows with every
iteration, the loss oscillates or diverges, and the result disagrees with the closed-form
least-squares solution.
""",
    example="""
for epoch in range(100):
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
""",
    use_instead="""
for epoch in range(100):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
""",
    confirms="The probe runs the script's update with and without clearing and reports how far "
    "the accumulated-gradient run ends from the least-squares optimum.",
    references=(
        "https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.zero_grad.html",
        "https://pytorch.org/tutorials/recipes/recipes/zeroing_out_gradients.html",
    ),
    flag=(
        """
import torch
from torch import nn, optim

model = nn.Linear(3, 1)
opt = optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    loss = ((model(X) - y) ** 2).mean()
    loss.backward()  # expect: missing-zero-grad
    opt.step()
""",
        """
import torch

w = torch.zeros(3, 1, requires_grad=True)
for step in range(500):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()  # expect: missing-zero-grad
    with torch.no_grad():
        w -= 0.01 * w.grad
""",
        """
import torch

def train_step(model, opt, xb, yb):
    loss = torch.nn.functional.mse_loss(model(xb), yb)
    loss.backward()
    opt.step()
    return loss.item()

model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(10):
    for xb, yb in loader:
        train_step(model, opt, xb, yb)  # expect: missing-zero-grad
""",
        """
import torch

model = torch.nn.Linear(2, 1)
optimizer = torch.optim.Adam(model.parameters())
for epoch in range(10):
    optimizer.zero_grad()
    for xb, yb in loader:
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        loss.backward()  # expect: missing-zero-grad
        optimizer.step()
""",
    ),
    quiet=(
        """
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    loss = ((model(X) - y) ** 2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
""",
        """
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for i, (xb, yb) in enumerate(loader):
    loss = torch.nn.functional.mse_loss(model(xb), yb) / 4
    loss.backward()
    if (i + 1) % 4 == 0:
        opt.step()
        model.zero_grad(set_to_none=True)
""",
        """
import torch

def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()

for epoch in range(3):
    for X, y in data_iter(10, features, labels):
        l = ((X @ w + b - y) ** 2 / 2).sum()
        l.backward()
        sgd([w, b], 0.03, 10)
""",
        """
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.LBFGS(model.parameters())
for step in range(20):
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss
    opt.step(closure)
""",
        """
import torch
w = torch.zeros(3, requires_grad=True)
for step in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
    for p in [w]:
        p.grad = None
""",
        """
import torch
for trial in range(5):
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
""",
        """
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, 10)
for epoch in range(30):
    for xb, yb in loader:
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        loss.backward()
    opt.step()
    opt.zero_grad()
    sched.step()
""",
    ),
    check=check,
)
