"""LRA402 loss-argument-order."""

from __future__ import annotations

from collections.abc import Iterator

from advisor import torchapi
from advisor.facts import values as v
from advisor.facts.model import Call, FileFacts, Scope, Stmt
from advisor.facts.training import callee_kinds, model_derived
from advisor.findings import Diagnostic, Fix, NodeEdit
from advisor.rule import WARNING, Rule

PREDICTION_WORDS = frozenset(
    {
        "input",
        "inputs",
        "pred",
        "preds",
        "prediction",
        "predictions",
        "y_hat",
        "yhat",
        "y_pred",
        "ypred",
        "output",
        "outputs",
        "out",
        "logits",
        "y_hat_",
        "estimate",
        "fitted",
    }
)
TARGET_WORDS = frozenset(
    {
        "target",
        "targets",
        "y",
        "y_true",
        "ytrue",
        "label",
        "labels",
        "ground_truth",
        "gt",
        "truth",
        "actual",
        "y_target",
        "true",
    }
)


def _order(facts: FileFacts, call: Call, scope: Scope) -> tuple[str, bool] | None:
    """(loss name, True if the prediction comes first) for a loss call; None if unknown."""
    found: tuple[str, bool] | None = None
    for value in v.values_of(facts, call.func, scope):
        if value.kind != v.LOSS_FN:
            continue
        function = facts.functions.get(value.detail)
        if function is None and value.detail in facts.classes:
            function = v.find_method(facts, facts.classes[value.detail], "__call__")
            if function is None:
                function = v.find_method(facts, facts.classes[value.detail], "forward")
        if function is not None:
            params = function.call_params[:2]
            if len(params) < 2:
                return None
            first, second = (p.lower() for p in params)
            if first in PREDICTION_WORDS and second in TARGET_WORDS:
                this = (function.name, True)
            elif first in TARGET_WORDS and second in PREDICTION_WORDS:
                this = (function.name, False)
            else:
                return None
        else:
            this = (value.detail or "loss", True)
        if found is not None and found[1] != this[1]:
            return None
        found = this
    return found


def _pair(call: Call):
    prediction = call.arg(0, "input")
    target = call.arg(1, "target")
    return prediction, target


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    for stmt in facts.stmts:
        for call in stmt.calls:
            if len(call.args) + len(call.kwargs) < 2 or call.text in (None, "self"):
                continue
            found = _diagnose(facts, call, stmt)
            if found is not None:
                yield found


def _diagnose(facts: FileFacts, call: Call, stmt: Stmt) -> Diagnostic | None:
    if v.LOSS_FN not in callee_kinds(facts, call, stmt.scope):
        return None
    order = _order(facts, call, stmt.scope)
    if order is None:
        return None
    loss_name, prediction_first = order
    first, second = call.arg(0), call.arg(1)
    if first is None or second is None or call.kwargs:
        return None
    expected_pred, expected_target = (first, second) if prediction_first else (second, first)
    if expected_target.kind == "literal" or expected_pred.kind == "literal":
        return None
    target_from_model = model_derived(facts, expected_target, stmt.scope, stmt.order + 1)
    pred_from_model = model_derived(facts, expected_pred, stmt.scope, stmt.order + 1)
    if not target_from_model or pred_from_model:
        return None
    known = torchapi.loss_named(loss_name)
    symmetric = known is not None and known.symmetric
    consequence = (
        "the value is the same for this symmetric loss, but the shape check and any "
        "reduction or weighting read the arguments the wrong way round"
        if symmetric
        else "this loss is not symmetric: the value and the gradient are wrong"
    )
    return Diagnostic(
        call.node,
        f"the model's output is passed as the target of `{call.text}` and the target as the "
        f"prediction: {consequence}",
        fix=Fix(
            "pass the prediction first and the target second: loss(pred, target)",
            "safe",
            node_edits=(
                NodeEdit(first.node, facts.module.code_for_node(second.node)),
                NodeEdit(second.node, facts.module.code_for_node(first.node)),
            ),
        ),
        evidence={"loss": loss_name, "symmetric": symmetric},
    )


RULE = Rule(
    id="LRA402",
    name="loss-argument-order",
    summary="The target is passed where the loss expects the prediction",
    severity=WARNING,
    what_it_does="""
For every loss call (`F.mse_loss`, an `nn.*Loss` instance, a loss function of the file whose
parameters are named like `(y_hat, y)`), follows the data flow of both arguments: when the
argument in the target position comes from a model's forward call and the one in the
prediction position does not, the arguments are swapped. Where it cannot tell, it says nothing.
""",
    why_bad="""
PyTorch's losses take `(input, target)`. For cross-entropy, BCE, NLL or KL divergence swapped
arguments give a wrong value and a wrong gradient. Even for MSE, where the value happens to be
the same, the broadcasting warning names the wrong tensor, and the code breaks as soon as the
loss is changed or weighted.
""",
    example="""
pred = model(x)
loss = F.mse_loss(y, pred)
""",
    use_instead="""
pred = model(x)
loss = F.mse_loss(pred, y)
""",
    confirms="Not needed: the data flow decides it. For asymmetric losses the probe compares "
    "the loss value with both orders.",
    references=("https://pytorch.org/docs/stable/generated/torch.nn.functional.mse_loss.html",),
    flag=(
        """
import torch.nn.functional as F
pred = model(x)
loss = F.mse_loss(y, pred)  # expect: loss-argument-order
""",
        """
import torch
from torch import nn
model = nn.Linear(4, 3)
criterion = nn.CrossEntropyLoss()
for xb, labels in loader:
    loss = criterion(labels, model(xb))  # expect: loss-argument-order
""",
        """
import torch
def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2
def linreg(X, w, b):
    return torch.matmul(X, w) + b
for X, y in batches:
    l = squared_loss(y, linreg(X, w, b))  # expect: loss-argument-order
""",
    ),
    quiet=(
        """
import torch.nn.functional as F
pred = model(x)
loss = F.mse_loss(pred, y)
""",
        """
import torch.nn.functional as F
loss = F.mse_loss(a, b)
""",
        """
import torch
from torch import nn
teacher = nn.Linear(4, 1)
student = nn.Linear(4, 1)
loss = nn.MSELoss()(student(x), teacher(x))
""",
        """
import torch
def loss_fn(a, b):
    return ((a - b) ** 2).mean()
loss = loss_fn(y, model(x))
""",
        """
import torch.nn.functional as F
loss = F.kl_div(model(x).log_softmax(-1), target_probs, reduction="batchmean")
""",
    ),
    check=check,
)
