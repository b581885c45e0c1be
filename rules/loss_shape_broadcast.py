"""LRA202 loss-shape-broadcast."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeGuard, cast

import libcst as cst

from advisor import torchapi
from advisor.facts import values as v
from advisor.facts.arrays import Shape
from advisor.facts.data import Array, Prediction, broadcast, numel
from advisor.facts.model import FileFacts
from advisor.facts.regression import ELEMENTWISE, loss_arguments, regressions
from advisor.findings import CERTAIN, Diagnostic, Fix
from advisor.rule import ERROR, Rule

# What a message calls each loss kind: its functional name (mse_loss).
NAMES = {loss.kind: loss.functional.rsplit(".", 1)[1] for loss in torchapi.LOSSES.values()}


def _pairs(facts: FileFacts):
    """(node, loss kind, prediction, target) for every elementwise loss the facts can read."""
    for stmt in facts.stmts:
        for call in stmt.calls:
            if call.arg(0, "input") is None or call.arg(1, "target") is None:
                continue
            kinds = {x.kind for x in v.values_of(facts, call.func, stmt.scope)}
            if v.LOSS_FN not in kinds:
                continue
            found = loss_arguments(facts, call, stmt.scope, stmt.order)
            if found is not None:
                kind, _, prediction, target = found
                yield call.node, kind, prediction, target
    for regression in regressions(facts):
        loss = regression.loss
        yield loss.node.node, loss.kind, loss.prediction, loss.target


def _known(shape: Shape | None) -> TypeGuard[tuple[int, ...]]:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _size(shape: Shape) -> int:
    """numel of a shape whose every dimension is known (then never None)."""
    return cast(int, numel(shape))


def _shape_text(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    seen: set[int] = set()
    for node, kind, prediction, target in _pairs(facts):
        if kind not in ELEMENTWISE or id(node) in seen:
            continue
        if not isinstance(prediction, Prediction) or not isinstance(target, Array):
            continue
        left, right = prediction.shape, target.shape
        if not (_known(left) and _known(right)) or left == right:
            continue
        merged = broadcast(left, right)
        # known shapes, so is their broadcast: each has a size
        if merged is None or _size(merged) <= max(_size(left), _size(right)):
            continue
        seen.add(id(node))
        if len(left) > len(right):
            remedy = "reshape the target to the prediction's shape (`y.view(-1, 1)`)"
        elif len(left) < len(right):
            remedy = "reshape one side: `y.squeeze(-1)` or `pred.unsqueeze(-1)`"
        else:
            remedy = "reshape one side to the other's shape (`y.view_as(pred)`)"
        # a call is `mse_loss(...)` or a loss module; otherwise the subtraction written by hand
        name = NAMES.get(kind, kind) if isinstance(node, cst.Call) else "the hand-written loss"
        message = (
            f"the prediction has shape {_shape_text(left)} and the target {_shape_text(right)}: "
            f"{name} broadcasts them to {_shape_text(merged)} and compares every prediction "
            f"with every target, so the model is trained towards the mean of the batch; "
            f"{remedy}"
        )
        yield Diagnostic(
            node,
            message,
            confidence=CERTAIN,
            fix=Fix(remedy),
            evidence={
                "prediction_shape": list(left),
                "target_shape": list(right),
                "broadcast_shape": list(merged),
            },
        )


RULE = Rule(
    id="LRA202",
    name="loss-shape-broadcast",
    summary="prediction and target shapes differ, so an elementwise loss broadcasts to (N, N)",
    severity=ERROR,
    what_it_does="""
Infers the shapes of the prediction and of the target that reach an elementwise loss
(`mse_loss`, `l1_loss`, `smooth_l1_loss`, `huber_loss`, their modules, or a hand-written
`(pred - y) ** 2`), following the data from where it is written or read through conversions,
slicing, reshapes, `TensorDataset`/`DataLoader` batches, helper functions and the model. Reports
the loss when the two shapes broadcast to a larger one, such as (N, 1) against (N,).
""",
    why_bad="""
`(N, 1) - (N,)` is an (N, N) matrix: every prediction is compared with every target. The loss
is still a number and still goes down, but its minimum is the model that predicts the batch
mean, and torch only prints a UserWarning once. The weights disagree with least squares and
nothing else says why.
""",
    example="""
X = torch.randn(100, 3)
y = X @ torch.tensor([1.0, 2.0, 3.0])  # shape (100,)
loss = F.mse_loss(model(X), y)  # (100, 1) against (100,)
""",
    use_instead="""
loss = F.mse_loss(model(X), y.view(-1, 1))
""",
    confirms="""
The probe trains with the script's shapes and with the target reshaped, and reports both final
losses against the least-squares optimum.
""",
    references=(
        "https://numpy.org/doc/stable/user/basics.broadcasting.html",
        "https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html",
    ),
    flag=(
        """
import torch
import torch.nn.functional as F
X = torch.randn(100, 3)
y = X @ torch.tensor([1.0, 2.0, 3.0])
model = torch.nn.Linear(3, 1)
loss = F.mse_loss(model(X), y)  # expect: loss-shape-broadcast
""",
        """
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
data = np.array([[1.0, 2.0, 3.5], [2.0, 1.0, 3.9], [3.0, 0.5, 4.2], [4.0, 2.5, 7.1]])
X = torch.tensor(data[:, :2], dtype=torch.float32)
y = torch.tensor(data[:, 2], dtype=torch.float32)
loader = DataLoader(TensorDataset(X, y), batch_size=2, shuffle=True)
net = nn.Linear(2, 1)
criterion = nn.MSELoss()
opt = torch.optim.SGD(net.parameters(), lr=0.01)
for epoch in range(10):
    for xb, yb in loader:
        opt.zero_grad()
        loss = criterion(net(xb), yb)  # expect: loss-shape-broadcast
        loss.backward()
        opt.step()
""",
        """
import torch
X = torch.rand(50, 2)
y = torch.rand(50)
w = torch.zeros(2, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
def predict(x):
    return x @ w + b
for step in range(100):
    loss = ((predict(X) - y) ** 2).mean()  # expect: loss-shape-broadcast
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
        w.grad = None
        b.grad = None
""",
        """
import torch
from torch import nn, optim
class Trainer:
    def __init__(self, model, lr=0.01):
        self.model = model
        self.opt = optim.SGD(model.parameters(), lr=lr)
        self.crit = nn.MSELoss()
    def fit(self, X, y, epochs):
        for _ in range(epochs):
            self.opt.zero_grad()
            loss = self.crit(self.model(X), y)  # expect: loss-shape-broadcast
            loss.backward()
            self.opt.step()
X = torch.randn(512, 4)
y = (X @ torch.randn(4, 1)).squeeze()
Trainer(nn.Linear(4, 1)).fit(X, y, 100)
""",
    ),
    quiet=(
        """
import torch
from torch import nn, optim
class Trainer:
    def __init__(self, model, lr=0.01):
        self.model = model
        self.opt = optim.SGD(model.parameters(), lr=lr)
        self.crit = nn.MSELoss()
    def fit(self, X, y, epochs):
        for _ in range(epochs):
            self.opt.zero_grad()
            loss = self.crit(self.model(X), y)
            loss.backward()
            self.opt.step()
X = torch.randn(512, 4)
y = X @ torch.randn(4, 1)
Trainer(nn.Linear(4, 1)).fit(X, y, 100)
""",
        """
import torch
import torch.nn.functional as F
X = torch.randn(100, 3)
y = X @ torch.tensor([1.0, 2.0, 3.0])
model = torch.nn.Linear(3, 1)
loss = F.mse_loss(model(X), y.view(-1, 1))
""",
        """
import torch
import torch.nn.functional as F
X = torch.randn(100, 3)
y = X @ torch.tensor([1.0, 2.0, 3.0])
model = torch.nn.Linear(3, 1)
loss = F.mse_loss(model(X).squeeze(-1), y)
""",
        """
import torch
X = torch.normal(0, 1, (1000, 2))
y = (X @ torch.tensor([2.0, -3.4]) + 4.2).reshape(-1, 1)
w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2
l = squared_loss(X @ w + b, y).sum()
""",
        """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
X = torch.randn(64, 4)
y = torch.randn(64)
loader = DataLoader(TensorDataset(X, y.unsqueeze(1)), batch_size=16)
net = nn.Linear(4, 1)
for xb, yb in loader:
    loss = nn.functional.l1_loss(net(xb), yb)
""",
        """
import torch
from torch import nn
x = torch.randn(3)
y = torch.randn(1)
net = nn.Linear(3, 1)
loss = nn.functional.mse_loss(net(x), y)
""",
        """
import torch
from torch import nn
X = torch.randn(10, 3)
y = torch.randint(0, 4, (10,))
net = nn.Linear(3, 4)
loss = nn.functional.cross_entropy(net(X), y)
""",
    ),
    check=check,
)
