"""LRA302 huge-learning-rate."""

from __future__ import annotations

from collections.abc import Iterator

from advisor.curvature import analyse, figure, learning_rate_diagnostics, round_step, step_check
from advisor.facts.model import FileFacts
from advisor.facts.regression import Regression
from advisor.findings import CERTAIN, LIKELY, Diagnostic
from advisor.rule import ERROR, Rule

NO_DATA_LR = 10.0  # without data, only a plain gradient step at or above this is reported


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    return learning_rate_diagnostics(
        facts, (_with_data, _without_data), "use a learning rate of at most {lr}"
    )


def _with_data(regression: Regression):
    found = step_check(regression)
    if found is None or found.step <= found.bound:
        return None
    growth = found.growth
    safe = round_step(found.bound / 2)
    outcome = (
        "gradient clipping keeps the loss finite, but the weights oscillate and never settle at "
        "the optimum"
        if regression.clipped
        else "so the loss grows to inf/nan"
    )
    message = (
        f"{regression.describe_step(found.step)} is above the largest stable step "
        f"{figure(found.bound)} for this data (λmax = {figure(found.largest)}): each step "
        f"multiplies the error along the steepest direction by about {figure(growth)}, "
        f"{outcome}; use lr <= {figure(safe)}"
    )
    evidence = {
        "lr": found.step,
        "stable_step": found.bound,
        "lambda_max": found.largest,
        "growth_per_step": growth,
        "gradient_clipping": regression.clipped,
        "suggested_lr": safe,
    }
    return message, CERTAIN if found.exact else LIKELY, evidence, safe


def _without_data(regression: Regression):
    if regression.rule not in ("sgd", "manual") or not regression.step_size:
        return None
    if analyse(regression) is not None or regression.step_size < NO_DATA_LR:
        return None
    lr = regression.step_size
    message = (
        f"{regression.describe_step(lr)} is far above what gradient descent tolerates on features "
        f"of unit scale (the stable step is 2/λmax, about 1 or less for a mean squared error): "
        f"the loss will most likely diverge to inf/nan; standardise the features and use an "
        f"lr near 0.01-0.1"
    )
    return message, LIKELY, {"lr": lr}, None


RULE = Rule(
    id="LRA302",
    name="huge-learning-rate",
    summary="lr above the stable bound 2/λmax: the loss diverges to inf/nan",
    severity=ERROR,
    what_it_does="""
Computes the curvature of the script's own loss on its data (the Hessian of a linear model
under a squared loss, with the loss's reduction, 1/2 factors, bias column and batch size) and
reports a learning rate above the largest stable step of gradient descent, 2/λmax (2(1+μ)/λmax
with momentum μ, 2(1+μ)/((1+2μ)λmax) with Nesterov). Without data it reports only extreme
cases (a plain gradient step of 10 or more), as `likely`. Adam and its kin are not reported:
their step does not scale with the gradient. Nothing is said while a scheduler sets the lr.
""",
    why_bad="""
Along the steepest direction each step multiplies the error by |1 - lr·λmax|. Above 2/λmax that
factor exceeds 1: the loss oscillates with growing amplitude and overflows to inf, then nan,
usually within a few dozen steps. With mini-batches the bound is, if anything, lower. Gradient
clipping hides the blow-up but not the problem: the weights bounce around the optimum instead.
""",
    example="""
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6]])
opt = torch.optim.SGD(model.parameters(), lr=0.01)
""",
    use_instead="""
X = (X - X.mean(0)) / X.std(0)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
""",
    confirms="""
The probe replays the first steps with the script's settings and shows the loss growing by the
predicted factor per step, then replays the suggested learning rate.
""",
    references=(
        "https://en.wikipedia.org/wiki/Gradient_descent#Convergence",
        "https://pytorch.org/docs/stable/generated/torch.optim.SGD.html",
    ),
    flag=(
        """
import torch
from torch import nn
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2]])
y = torch.tensor([[1455.6], [1449.2], [1463.7], [1458.4]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)  # expect: huge-learning-rate
for epoch in range(100):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
X = torch.normal(0, 1, (500, 4))
y = X.sum(1, keepdim=True)
w = torch.zeros(4, 1, requires_grad=True)
for it in range(100):
    loss = ((X @ w - y) ** 2).sum()
    loss.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad  # expect: huge-learning-rate
        w.grad.zero_()
""",
        """
import torch
from torch import nn
model = nn.Linear(5, 1)
opt = torch.optim.SGD(model.parameters(), lr=50)  # expect: huge-learning-rate
for xb, yb in loader:
    opt.zero_grad()
    nn.MSELoss()(model(xb), yb).backward()
    opt.step()
""",
    ),
    quiet=(
        """
import torch
from torch import nn
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2]])
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor([[1455.6], [1449.2], [1463.7], [1458.4]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
X = torch.normal(0, 1, (500, 4))
y = X.sum(1, keepdim=True)
w = torch.zeros(4, 1, requires_grad=True)
for it in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
""",
        """
import torch
from torch import nn
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2]])
y = torch.tensor([[1455.6], [1449.2], [1463.7], [1458.4]])
model = nn.Linear(2, 1)
opt = torch.optim.Adam(model.parameters(), lr=0.5)
for epoch in range(100):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
model = nn.Linear(5, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for xb, yb in loader:
    opt.zero_grad()
    nn.MSELoss()(model(xb), yb).backward()
    opt.step()
""",
    ),
    check=check,
)
