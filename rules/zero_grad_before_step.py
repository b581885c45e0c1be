"""LRA102 zero-grad-before-step."""

from __future__ import annotations

from collections.abc import Iterator

from advisor.facts import values as v
from advisor.facts.flow import Occurrence, occurrences
from advisor.facts.model import EventKind, FileFacts
from advisor.facts.training import (
    is_update,
    optimizer_models,
    optimizer_tensors,
    stepped_optimizer,
)
from advisor.findings import Diagnostic, Fix
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
                fix=Fix("clear the gradients after the update (or before backward()), not between"),
            )


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
""",
    why_bad="""
The step then reads zeros (or `None`): the parameters do not move at all, or only momentum
moves them. The loss stays flat, and nothing raises an error.
""",
    example="""
loss.backward()
w.grad.zero_()
with torch.no_grad():
    w -= lr * w.grad
""",
    use_instead="""
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
