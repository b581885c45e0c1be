"""LRA401 wrong-model-variable."""

from __future__ import annotations

from collections.abc import Iterator
from difflib import SequenceMatcher

from advisor.facts import values as v
from advisor.facts.flow import occurrences
from advisor.facts.model import Call, EventKind, FileFacts, Scope, Stmt
from advisor.facts.training import (
    MODEL_WORDS,
    PARAMETERISED_LAYERS,
    is_loss_call,
    is_model_call,
    is_update,
    optimizer_models,
    stepped_optimizer,
    training_loops,
)
from advisor.findings import CERTAIN, LIKELY, Diagnostic, Fix
from advisor.rule import ERROR, Rule

_MODEL_KINDS = frozenset({v.MODULE, v.MODEL_FN})


def _trained_names(facts: FileFacts) -> set[str]:
    """Every name, in any scope, that refers to a model some training loop updates."""
    names: set[str] = set()
    for loop, events in training_loops(facts):
        for stmt in facts.stmts:
            if loop not in stmt.loops:
                continue
            for call in stmt.calls:
                if call.text and is_model_call(facts, call, stmt.scope):
                    names.add(call.text)
                    names |= _arguments_for(facts, stmt.scope, call.text)
        for occurrence in events:
            if occurrence.kind is EventKind.STEP:
                optimizer = stepped_optimizer(facts, occurrence)
                for model in optimizer_models(facts, optimizer, occurrence.origin.scope):
                    names.add(model)
                    names |= _arguments_for(facts, occurrence.origin.scope, model)
    return names


def _arguments_for(facts: FileFacts, scope: Scope, name: str) -> set[str]:
    """The names callers pass for a parameter `name` of the function owning `scope`."""
    function = scope.function
    if function is None or name not in function.call_params:
        return set()
    index = function.call_params.index(name)
    found = set()
    for call, site in facts.calls.get(function.name, []):
        if v.find_function(facts, call.text, site.scope) is function:
            arg = call.arg(index, name)
            if arg is not None and arg.text:
                found.add(arg.text)
    return found


def _identities(facts: FileFacts, text: str, scope: Scope) -> set:
    out = set()
    for value in v.text_values(facts, text, scope):
        if value.kind in _MODEL_KINDS:
            out.add((value.kind, value.detail, id(value.expr.node) if value.expr else None))
    return out


def _training_span(facts: FileFacts, scope: Scope) -> tuple[int, int] | None:
    """Orders of the first and last statements of this scope that train (loops included)."""
    function = scope.function
    events = occurrences(facts, scope.body, stack=(function,) if function else ())
    if not any(o.kind is EventKind.BACKWARD for o in events):
        return None
    tops = [o.stmt for o in events if is_update(facts, o)]
    if not tops:
        return None
    starts = [s.loops[0].order if s.loops else s.order for s in tops]
    ends = [s.loops[0].end_order if s.loops else s.order for s in tops]
    return min(starts), max(ends)


def _in_loss_call(facts: FileFacts, call: Call, stmt: Stmt) -> bool:
    return any(
        other is not call
        and is_loss_call(facts, other, stmt.scope)
        and any(a.call is call for a in other.args)
        for other in stmt.calls
    )


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    trained: set[str] | None = None
    for scope in facts.scopes():
        span = _training_span(facts, scope)
        if span is None:
            continue
        if trained is None:
            trained = _trained_names(facts)
        start, end = span
        identities = set()
        for trained_name in trained:
            identities |= _identities(facts, trained_name, scope)
        after = [s for s in facts.stmts if s.scope is scope and s.order > end]
        suspects: list[tuple[Call, Stmt, str]] = []
        evaluated_trained = False
        for stmt in after:
            for call in stmt.calls:
                name = call.text
                if not name or ("." in name and not name.startswith("self.")):
                    continue
                if name in trained:
                    evaluated_trained = True
                    continue
                reason = _suspect(facts, call, stmt, name, start, identities, trained)
                if reason:
                    suspects.append((call, stmt, reason))
        if evaluated_trained:
            continue
        for call, _stmt, reason in suspects:
            yield Diagnostic(
                call.node.func,
                f"`{call.text}` is {reason}, but the loop above trained "
                f"{_names(trained)}: this evaluates a model that was not trained",
                confidence=LIKELY if reason.startswith("not defined") else CERTAIN,
                fix=Fix(f"call the trained model ({_names(trained)}) here"),
            )


def _misspelt(name: str, other: str) -> bool:
    """`linreg` for `lin_reg`, `modle` for `model`: the same name but for case, `_` or a typo."""
    a, b = name.lower().replace("_", ""), other.lower().replace("_", "")
    return a == b or (min(len(a), len(b)) >= 4 and SequenceMatcher(None, a, b).ratio() >= 0.8)


def _is_model(facts: FileFacts, value: v.Value) -> bool:
    """A module with parameters: a layer, a container, or a module class of this file."""
    if value.kind != v.MODULE:
        return False
    if value.detail in PARAMETERISED_LAYERS or value.detail in ("Sequential", "ModuleList"):
        return True
    return value.detail in facts.classes


def _names(trained: set[str]) -> str:
    shown = sorted(n for n in trained if "." not in n or n.startswith("self."))
    return " / ".join(f"`{n}`" for n in shown[:3]) or "another model"


def _suspect(
    facts, call: Call, stmt: Stmt, name: str, start: int, identities, trained
) -> str | None:
    values = v.text_values(facts, name, stmt.scope)
    kinds = {value.kind for value in values}
    if kinds == {v.UNDEFINED}:
        lowered = name.lower().rsplit(".", 1)[-1]
        if (
            _in_loss_call(facts, call, stmt)
            or lowered.startswith(MODEL_WORDS)
            or lowered.endswith(MODEL_WORDS)
        ):
            return "not defined anywhere in this file"
        if any(_misspelt(name, model) for model in trained):
            return "not defined anywhere in this file (a misspelling?)"
        return None
    bindings, _ = v.lookup(facts, name, stmt.scope)
    if any(b.order > start for b in bindings if b.kind != "param"):
        return None  # re-bound, loaded or copied during or after training
    for load in facts.calls.get("load_state_dict", []):
        receiver = load[0].receiver
        if receiver is not None and receiver.text == name:
            return None
    if any(value.kind == v.COPY and value.source in trained for value in values):
        return "a copy of the model taken before training"
    if kinds - _MODEL_KINDS or not kinds:
        return None
    if not all(_is_model(facts, value) for value in values):
        return None  # an activation, a ground-truth function...: not a model that trains
    own = {(x.kind, x.detail, id(x.expr.node) if x.expr else None) for x in values}
    if own & identities:
        return None
    return "another model"


RULE = Rule(
    id="LRA401",
    name="wrong-model-variable",
    summary="After training, the script evaluates a model other than the one it trained",
    severity=ERROR,
    what_it_does="""
Finds which model a training loop really updates (the model it calls forward on and whose
`parameters()` went to the stepped optimizer, followed through helper parameters), then looks
at the calls after the loop in the same function or module: a call of another model, of a
copy taken before training, or of a name that is defined nowhere is flagged. Re-binding,
loading or copying the trained model after training, and comparisons that evaluate the trained
model too, are fine.
""",
    why_bad="""
The reported loss or predictions belong to an untrained (or differently trained) model: they
disagree with the training log and with the closed-form solution, and it looks as if the
optimizer failed. Seed 000 trains `new_model` and reports `loss_fn(model(inputs), targets)`.
""",
    example="""
def fit(num_epochs, new_model, loss_fn, opt):
    for epoch in range(num_epochs):
        ...
    print(loss_fn(model(inputs), targets))
""",
    use_instead="""
def fit(num_epochs, new_model, loss_fn, opt):
    for epoch in range(num_epochs):
        ...
    print(loss_fn(new_model(inputs), targets))
""",
    confirms="The probe evaluates both models on the script's data and reports both losses "
    "against the least-squares optimum.",
    references=("https://pytorch.org/tutorials/beginner/saving_loading_models.html",),
    flag=(
        """
import torch
import torch.nn.functional as F

new_model = torch.nn.Linear(3, 1, bias=False)
opt = torch.optim.SGD(new_model.parameters(), lr=1e-5)

def fit(num_epochs, new_model, loss_fn, opt):
    for epoch in range(num_epochs):
        for xb, yb in train_dl:
            loss = loss_fn(new_model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
    print('Training loss:', loss_fn(model(inputs), targets))  # expect: wrong-model-variable

fit(100, new_model, F.mse_loss, opt)
""",
        """
import torch
from torch import nn

baseline = nn.Linear(2, 1)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
pred = baseline(X)  # expect: wrong-model-variable
""",
        """
import copy
import torch
model = torch.nn.Linear(2, 1)
snapshot = copy.deepcopy(model)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
print(torch.nn.functional.mse_loss(snapshot(X), y))  # expect: wrong-model-variable
""",
        """
import torch
lin_reg = torch.nn.Linear(1, 1)
opt = torch.optim.SGD(lin_reg.parameters(), lr=0.1)
for epoch in range(300):
    opt.zero_grad()
    torch.nn.functional.mse_loss(lin_reg(x), t).backward()
    opt.step()
fitted = linreg(x)  # expect: wrong-model-variable
""",
    ),
    quiet=(
        """
import copy
import torch
model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
best = copy.deepcopy(model)
print(best(X))
""",
        """
import torch
model = torch.nn.Linear(2, 1)
init = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
print(init(X), model(X))
""",
        """
import torch

def fit(epochs, net, opt):
    for epoch in range(epochs):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), y).backward()
        opt.step()
    print(torch.nn.functional.mse_loss(model(X), y))

model = torch.nn.Linear(2, 1)
fit(10, model, torch.optim.SGD(model.parameters(), lr=0.1))
""",
        """
import torch
model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
torch.save(model.state_dict(), "m.pt")
restored = torch.nn.Linear(2, 1)
restored.load_state_dict(torch.load("m.pt"))
print(restored(X))
""",
        """
import torch
model = torch.nn.Linear(2, 1)
softmax = torch.nn.Softmax(dim=1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
probs = softmax(logits)
""",
        """
import torch
w = torch.zeros(3, 1, requires_grad=True)
def linreg(X):
    return X @ w
net = linreg
for epoch in range(10):
    loss = ((net(X) - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
print(linreg(X))
""",
    ),
    check=check,
)
