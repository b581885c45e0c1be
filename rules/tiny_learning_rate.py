"""LRA301 tiny-learning-rate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from advisor.curvature import (
    ADAM_STEP_BOUND,
    analyse,
    figure,
    learning_rate_diagnostics,
    round_step,
    step_check,
)
from advisor.facts.data import Array, LinearModel
from advisor.facts.model import FileFacts
from advisor.facts.regression import Regression
from advisor.findings import CERTAIN, LIKELY, Diagnostic
from advisor.numbers import step_count
from advisor.rule import WARNING, Rule

MIN_RATIO = 10.0  # at least an order of magnitude below the stable step
FAR_FROM_DONE = 10.0  # the steps needed exceed the steps run at least tenfold
NO_DATA_LR = 1e-6  # without data, only a plain-SGD lr at or below this is reported
NO_DATA_PROGRESS = 1e-2  # ... and only when lr * steps stays below this


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    finders = (_with_data, _adaptive, _without_data)
    return learning_rate_diagnostics(facts, finders, "use a learning rate near {lr}")


def _with_data(regression: Regression):
    found = step_check(regression)
    if found is None or found.ratio < MIN_RATIO or found.step > found.bound:
        return None
    steps = found.steps
    if steps is None:
        if found.ratio < 1000:
            return None  # without the number of steps, only a far-off step is reported
    elif found.needed <= FAR_FROM_DONE * steps:
        return None  # close enough, or a matter of a few more epochs
    better = round_step(found.bound / 2)
    runs = f"the script runs {steps}" if steps is not None else "the script does not say how many"
    message = (
        f"{regression.describe_step(found.step)} is {figure(found.ratio)}x below the largest "
        f"stable step {figure(found.bound)} for this data; shrinking the error along the slowest "
        f"direction 100-fold needs about {step_count(found.needed)} steps, {runs}"
    )
    at_better = found.needed_at(better)
    message += f". At {figure(better)} it would need about {step_count(at_better)}"
    if steps is not None and at_better > steps:
        message += " (still too many: the features' scale limits it, see unscaled-features)"
    evidence = {
        "lr": found.step,
        "stable_step": found.bound,
        "ratio": found.ratio,
        "lambda_max": found.largest,
        "lambda_min": found.smallest,
        "steps_needed": found.needed,
        "steps": steps,
        "suggested_lr": better,
        "steps_needed_at_suggested_lr": at_better,
    }
    confidence = CERTAIN if found.exact and steps is not None else LIKELY
    return message, confidence, evidence, better


def _adaptive(regression: Regression):
    """Adam and kin move each weight by about lr per step, whatever the gradient's scale."""
    if regression.rule != "adaptive" or not regression.step_size or regression.steps is None:
        return None
    analysis = analyse(regression)
    if analysis is None or analysis.solution is None:
        return None
    import numpy as np

    # analyse() answers only where the data and the model are known: the solution is an array
    solution = cast("np.ndarray", analysis.solution)
    distance = float(np.max(np.abs(solution)))
    inputs = cast(LinearModel, regression.model).inputs or solution.shape[0]
    start = 1.0 / inputs**0.5  # nn.Linear starts within ±1/sqrt(inputs)
    reach = ADAM_STEP_BOUND * regression.step_size * regression.steps + start
    if distance <= 10 * reach:
        return None
    lr = regression.step_size
    message = (
        f"lr={figure(lr)} with {regression.config.optimizer} moves each weight by at most "
        f"about {ADAM_STEP_BOUND}·lr per step (lr·(1-β1)/√(1-β2) with the default betas): "
        f"{regression.steps} steps from the start reach {figure(reach)} at most, but the "
        f"least-squares weights for this data go up to {figure(distance)}"
    )
    suggested = round_step(distance / regression.steps * 10)
    evidence = {
        "lr": lr,
        "steps": regression.steps,
        "largest_weight": distance,
        "reach": reach,
        "suggested_lr": suggested,
    }
    exact = cast(Array, regression.features).exact  # analysed: the features are known
    return message, CERTAIN if exact else LIKELY, evidence, suggested


def _without_data(regression: Regression):
    if regression.rule not in ("sgd", "manual") or not regression.step_size:
        return None
    if analyse(regression) is not None:
        return None  # the data is known and says the step is fine
    lr, steps = regression.step_size, regression.steps
    if lr > NO_DATA_LR or (steps is not None and lr * steps > NO_DATA_PROGRESS):
        return None
    message = (
        f"{regression.describe_step(lr)} is tiny for gradient descent: with features of unit scale "
        f"the weights move by about lr per step"
    )
    if steps is not None:
        message += f", {figure(lr * steps)} in the {steps} steps the script runs"
    message += (
        "; unless the features are in the thousands (check unscaled-features), "
        "standardise them and use an lr near 0.01-0.1"
    )
    return message, LIKELY, {"lr": lr, "steps": steps}, None


RULE = Rule(
    id="LRA301",
    name="tiny-learning-rate",
    summary="lr far below what the data allows: the run cannot get near the optimum",
    severity=WARNING,
    what_it_does="""
Computes the curvature of the script's own loss on its data (the Hessian of a linear model
under a squared loss, with the loss's reduction, 1/2 factors, bias column and batch size) and
compares the learning rate with the largest stable step 2/λmax. Reports a learning rate at
least ten times below it when the steps the script runs cannot shrink the error along the
slowest direction 100-fold, and says how many steps that would take. For Adam, RMSprop and
Adagrad, whose steps are about lr in parameter units, it compares lr times the steps with the
least-squares weights. Without data it reports only extreme cases (plain SGD at lr <= 1e-6),
as `likely`.
""",
    why_bad="""
Gradient descent moves each direction of the weights by a factor (1 - lr·λ) per step. A
learning rate hundreds of times below the stable bound leaves the slow directions where the
random initialisation put them: the loss stops falling visibly, the weights disagree with
`np.linalg.pinv`, and more epochs do not help in any reasonable time.
""",
    example="""
opt = torch.optim.SGD(model.parameters(), lr=1e-10)
""",
    use_instead="""
X = (X - X.mean(0)) / X.std(0)  # then a step near 1/λmax is fast
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
    confirms="""
The probe replays the training with the script's optimizer and steps and reports the
distance to the least-squares optimum, then replays the suggested learning rate.
""",
    references=(
        "https://en.wikipedia.org/wiki/Gradient_descent#Convergence",
        "https://pytorch.org/docs/stable/generated/torch.optim.SGD.html",
    ),
    flag=(
        """
import numpy as np
import torch
from torch import nn
X = np.array([[1.5, 2.0], [2.5, 0.5], [3.0, 1.5], [0.5, 2.5], [2.0, 3.0]], dtype=np.float32)
y = np.array([[3.1], [2.9], [4.4], [2.8], [4.9]], dtype=np.float32)
inputs, targets = torch.from_numpy(X), torch.from_numpy(y)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=1e-5)  # expect: tiny-learning-rate
for epoch in range(500):
    opt.zero_grad()
    nn.functional.mse_loss(model(inputs), targets).backward()
    opt.step()
""",
        """
import torch
X = torch.randn(200, 3)
y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
w = torch.zeros(3, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for it in range(100):
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 1e-6 * w.grad  # expect: tiny-learning-rate
        b -= 1e-6 * b.grad
        w.grad.zero_()
        b.grad.zero_()
""",
        """
import torch
from torch import nn
X = torch.tensor([[10.0, 200.0], [12.0, 180.0], [9.0, 240.0], [14.0, 210.0]])
y = torch.tensor([[130.0], [121.0], [140.0], [150.0]])
net = nn.Linear(2, 1)
opt = torch.optim.Adam(net.parameters(), lr=1e-6)  # expect: tiny-learning-rate
for step in range(100):
    opt.zero_grad()
    nn.functional.mse_loss(net(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
model = nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=1e-9)  # expect: tiny-learning-rate
for epoch in range(100):
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.mse_loss(model(xb), yb).backward()
        opt.step()
""",
        """
import numpy as np
import torch
from torch import nn
rows = np.array([[1200.0, 3.0, 250.0], [1500.0, 4.0, 320.0], [900.0, 2.0, 180.0],
                 [2100.0, 5.0, 450.0], [1700.0, 3.0, 360.0], [1300.0, 2.0, 260.0]])
class Regressor:
    def __init__(self, n_features, lr):
        self.model = nn.Linear(n_features, 1)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)  # expect: tiny-learning-rate
        self.loss_fn = nn.MSELoss()
    def train(self, X, y, epochs=1000):
        X = torch.tensor(X, dtype=torch.float32)
        y = torch.tensor(y, dtype=torch.float32)
        for epoch in range(epochs):
            self.opt.zero_grad()
            self.loss_fn(self.model(X), y).backward()
            self.opt.step()
Regressor(2, lr=1e-9).train(rows[:, :2], rows[:, 2:])
""",
    ),
    quiet=(
        """
import numpy as np
import torch
from torch import nn
X = np.array([[1.5, 2.0], [2.5, 0.5], [3.0, 1.5], [0.5, 2.5], [2.0, 3.0]], dtype=np.float32)
y = np.array([[3.1], [2.9], [4.4], [2.8], [4.9]], dtype=np.float32)
inputs, targets = torch.from_numpy(X), torch.from_numpy(y)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(500):
    opt.zero_grad()
    nn.functional.mse_loss(model(inputs), targets).backward()
    opt.step()
""",
        """
import torch
def make_data(w, b, n):
    X = torch.normal(0, 1, (n, len(w)))
    y = torch.matmul(X, w) + b
    return X, y.reshape(-1, 1)
def batches(batch_size, X, y):
    for i in range(0, len(X), batch_size):
        yield X[i:i + batch_size], y[i:i + batch_size]
features, labels = make_data(torch.tensor([2.0, -3.4]), 4.2, 1000)
w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
lr, batch_size = 0.03, 10
for epoch in range(3):
    for X, y in batches(batch_size, features, labels):
        l = ((torch.matmul(X, w) + b - y) ** 2 / 2).sum()
        l.backward()
        with torch.no_grad():
            for p in (w, b):
                p -= lr * p.grad / batch_size
                p.grad.zero_()
""",
        """
import torch
from torch import nn
model = nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
for epoch in range(100):
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.mse_loss(model(xb), yb).backward()
        opt.step()
""",
        """
import torch
from torch import nn
X = torch.tensor([[10.0, 200.0], [12.0, 180.0], [9.0, 240.0], [14.0, 210.0]])
y = torch.tensor([[130.0], [121.0], [140.0], [150.0]])
net = nn.Linear(2, 1)
opt = torch.optim.Adam(net.parameters(), lr=0.5)
for step in range(2000):
    opt.zero_grad()
    nn.functional.mse_loss(net(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2]])
y = torch.tensor([[1455.6], [1449.2], [1463.7], [1458.4]])
model = nn.Linear(2, 1, bias=False)
opt = torch.optim.SGD(model.parameters(), lr=1e-7)
for epoch in range(100000):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
    ),
    check=check,
)
