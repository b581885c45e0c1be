"""LRA501 not-converged: the probe reports it after replaying the training (advisor/probe/)."""

from __future__ import annotations

from advisor.rule import ERROR, ProbeRule

RULE = ProbeRule(
    id="LRA501",
    name="not-converged",
    summary="(probe) the script's own training ends far from the closed-form optimum",
    severity=ERROR,
    what_it_does="""
Replays the script's training on its data (from the script itself, `--data`, or `--run`) with
the script's optimizer, learning rate, batch size, loss and number of steps, from several
initialisations, and compares where it ends with the least-squares optimum computed in closed
form (float64, lstsq). Reports the loop when the final loss is more than 1 % above the optimum
(and more than 0.01 % of what the model can explain), or when the loss diverges, with the
final loss, its spread over initialisations, the distance of the weights from lstsq's, and a
fix that the probe has replayed to the optimum.
""",
    why_bad="""
A training that stops short of the optimum gives weights that depend on the initialisation and
on the number of epochs, not on the data: the model silently disagrees with numpy's `pinv`,
and any conclusion drawn from its coefficients is wrong.
""",
    example="""
X = torch.tensor([[1460.1, 1447.8, 1452.3], [1455.6, 1460.1, 1447.8], ...])
opt = torch.optim.SGD(model.parameters(), lr=1e-10)
for epoch in range(10000):
    ...
""",
    use_instead="""
X = (X - X.mean(0)) / X.std(0)           # and keep the bias
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for epoch in range(100):
    ...
""",
    confirms="""
This rule is the probe's own measurement: the replay's final loss against lstsq's optimum. Full
batch gradient descent is replayed exactly (closed form); mini-batches and Adam are simulated
under a time budget and extrapolated from the measured rate past it, which the report says.
""",
    references=(
        "https://numpy.org/doc/stable/reference/generated/numpy.linalg.lstsq.html",
        "https://d2l.ai/chapter_linear-regression/linear-regression-scratch.html",
    ),
    flag=(
        """
import torch
from torch import nn
X = torch.tensor(
    [[1460.1, 1447.8], [1455.6, 1460.1], [1449.2, 1455.6], [1463.7, 1449.2], [1458.4, 1463.7]]
)
y = torch.tensor([[1455.6], [1449.2], [1463.7], [1458.4], [1444.9]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=1e-9)
for epoch in range(1000):  # expect: not-converged
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
X = torch.normal(0, 1, (400, 3))
y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 3.0
w = torch.zeros(3, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for step in range(20):  # expect: not-converged
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad
        b -= 0.01 * b.grad
        w.grad.zero_()
        b.grad.zero_()
""",
        """
import torch
from torch import nn
X = torch.rand(200, 2) * 10
y = X @ torch.tensor([[3.0], [1.0]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for epoch in range(50):  # expect: not-converged
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
    ),
    quiet=(
        """
import torch
from torch import nn
X = torch.normal(0, 1, (400, 3))
y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 3.0
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(300):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch.utils.data import DataLoader, TensorDataset
features = torch.normal(0, 1, (1000, 2))
labels = features @ torch.tensor([[2.0], [-3.4]]) + 4.2 + torch.normal(0, 0.01, (1000, 1))
loader = DataLoader(TensorDataset(features, labels), batch_size=10, shuffle=True)
net = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.03)
for epoch in range(3):
    for xb, yb in loader:
        loss = torch.nn.functional.mse_loss(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
""",
        """
import torch
from torch import nn
X = torch.rand(200, 2) * 10
y = X @ torch.tensor([[3.0], [1.0]])
X = (X - X.mean(0)) / X.std(0)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for epoch in range(100):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.normal(0, 1, (300, 4))
y = X @ torch.tensor([[1.0], [2.0], [3.0], [4.0]])
model = nn.Linear(4, 1)
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for epoch in range(1500):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
    ),
)
