"""LRA203 unscaled-features."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from advisor.curvature import analyse, figure, round_step, stable_step
from advisor.facts.data import LinearModel
from advisor.facts.model import FileFacts
from advisor.facts.regression import regressions
from advisor.findings import CERTAIN, LIKELY, Diagnostic, Fix
from advisor.rule import WARNING, Rule

MIN_CONDITION = 1e3  # below this, gradient descent converges quickly enough anyway
MIN_GAIN = 100.0  # standardising must shrink the condition number by two orders of magnitude


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    seen: set[int] = set()
    for regression in regressions(facts):
        features = regression.features
        if features is None or features.normalized or features.where is None:
            continue
        analysis = analyse(regression)
        if analysis is None:
            continue
        condition = analysis.data_spectrum.condition
        standardized = analysis.standardized.condition
        if condition < MIN_CONDITION or condition < MIN_GAIN * standardized:
            continue
        if id(features.where) in seen:
            continue
        seen.add(id(features.where))
        columns = sum(1 for spread in analysis.column_spreads if spread > 0)
        constant = len(analysis.column_spreads) - columns  # a column of ones made by hand
        means = ", ".join(figure(m) for m in analysis.column_means[:6])
        spreads = ", ".join(figure(s) for s in analysis.column_spreads[:6])
        more = ", ..." if len(analysis.column_means) > 6 else ""
        model = cast(LinearModel, regression.model)  # analysed: the model is known
        has_bias = model.bias or constant > 0
        bias = "" if has_bias else " and add a bias"
        if constant and not model.bias:
            bias = " (keep the constant column: it is the bias)"
        scale = cast(float, regression.curvature_scale) * analysis.rows  # analysed: known
        lr = round_step(stable_step(analysis.standardized.largest * scale) / 2)
        message = (
            f"features reach the model unscaled (column means {means}{more}; spreads "
            f"{spreads}{more}): the curvature's condition number is {figure(condition)}, so "
            f"gradient descent needs about that many steps per decade of error. Standardise "
            f"the {columns} column{'s' if columns > 1 else ''}{bias}: condition number "
            f"{figure(condition)} -> {figure(standardized)}; then lr {figure(lr)} is stable"
        )
        yield Diagnostic(
            features.where.node,
            message,
            confidence=CERTAIN if features.exact else LIKELY,
            fix=Fix(
                "standardise the features: X = (X - X.mean(0)) / X.std(0), with a bias "
                "in the model (and map the weights back to the original units afterwards)"
            ),
            evidence={
                "condition_number": condition,
                "standardized_condition_number": standardized,
                "column_means": list(analysis.column_means),
                "column_spreads": list(analysis.column_spreads),
                "suggested_lr": lr,
                "bias": model.bias,
            },
        )


RULE = Rule(
    id="LRA203",
    name="unscaled-features",
    summary="features of large or very different magnitude fed to gradient descent unscaled",
    severity=WARNING,
    what_it_does="""
Computes, from the data the script writes down or reads, the condition number of the curvature
of the loss (the eigenvalues of AᵀA, A the features with a bias column where the model has
one) and compares it with what standardising the columns would give. Reports the data when
the condition number is large and standardising would shrink it by orders of magnitude, with
the column means and spreads.
""",
    why_bad="""
Gradient descent converges along each direction of the weights at a speed proportional to its
curvature, and the step size must stay below 2/λmax for the steepest one. With raw features
such as prices near 1450 that move by a few units, one direction (the sum of the weights) is
10⁵ times steeper than the others: a step small enough to be stable leaves the slow directions
where they started, and the run stops far from the least-squares answer that `np.linalg.pinv`
gives at once.
""",
    example="""
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2]])
y = torch.tensor([[1455.6], [1449.2], [1463.7], [1458.4]])
model = nn.Linear(2, 1)
""",
    use_instead="""
X = torch.tensor([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2]])
X = (X - X.mean(0)) / X.std(0)
model = nn.Linear(2, 1)
""",
    confirms="""
The probe replays the training on the raw and on the standardised data and reports the steps
each needs to reach the optimum, with the weights mapped back to the original units.
""",
    references=(
        "https://en.wikipedia.org/wiki/Condition_number",
        "https://scikit-learn.org/stable/modules/preprocessing.html#standardization-or-mean-removal-and-variance-scaling",
    ),
    flag=(
        """
import numpy as np
import torch
from torch import nn
X = np.array([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6],  # expect: unscaled-features
              [1463.7, 1449.2], [1458.4, 1463.7]], dtype=np.float32)
y = np.array([[1455.6], [1449.2], [1463.7], [1458.4], [1444.9]], dtype=np.float32)
inputs, targets = torch.from_numpy(X), torch.from_numpy(y)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=1e-6)
for epoch in range(100):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(inputs), targets)
    loss.backward()
    opt.step()
""",
        """
import torch
area = torch.tensor([[2104.0, 3.0], [1600.0, 3.0], [2400.0, 3.0],  # expect: unscaled-features
                     [1416.0, 2.0], [3000.0, 4.0], [1985.0, 4.0]])
price = torch.tensor([[399.9], [329.9], [369.0], [232.0], [539.9], [299.9]])
w = torch.zeros(2, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for step in range(1000):
    loss = ((area @ w + b - price) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 1e-8 * w.grad
        b -= 1e-8 * b.grad
        w.grad.zero_()
        b.grad.zero_()
""",
        """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
years = torch.arange(1990, 2020, dtype=torch.float32).reshape(-1, 1)  # expect: unscaled-features
sales = 3.0 * years - 5000.0
loader = DataLoader(TensorDataset(years, sales), batch_size=10, shuffle=True)
net = nn.Linear(1, 1)
opt = torch.optim.SGD(net.parameters(), lr=1e-7)
for epoch in range(50):
    for xb, yb in loader:
        opt.zero_grad()
        nn.MSELoss()(net(xb), yb).backward()
        opt.step()
""",
    ),
    quiet=(
        """
import numpy as np
import torch
from torch import nn
X = np.array([[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6],
              [1463.7, 1449.2], [1458.4, 1463.7]], dtype=np.float32)
X = (X - X.mean(axis=0)) / X.std(axis=0)
y = np.array([[1455.6], [1449.2], [1463.7], [1458.4], [1444.9]], dtype=np.float32)
inputs, targets = torch.from_numpy(X), torch.from_numpy(y)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(inputs), targets)
    loss.backward()
    opt.step()
""",
        """
import torch
X = torch.normal(0, 1, (1000, 3))
y = X @ torch.tensor([2.0, -3.4, 1.0]) + 4.2
w = torch.normal(0, 0.01, size=(3,), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for epoch in range(10):
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
from torch import nn
from sklearn.preprocessing import StandardScaler
raw = torch.tensor([[2104.0, 3.0], [1600.0, 3.0], [2400.0, 3.0], [1416.0, 2.0]])
X = torch.tensor(StandardScaler().fit_transform(raw), dtype=torch.float32)
y = torch.tensor([[399.9], [329.9], [369.0], [232.0]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for _ in range(200):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.tensor([[2104.0, 3.0], [1600.0, 3.0], [2400.0, 3.0], [1416.0, 2.0]])
y = torch.tensor([[399.9], [329.9], [369.0], [232.0]])
model = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for _ in range(200):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.tensor([[0.2, 1.1], [0.5, -0.3], [-1.0, 0.4], [0.7, 0.9]])
y = torch.tensor([[1.0], [0.1], [-0.6], [1.2]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(200):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
    ),
    check=check,
)
