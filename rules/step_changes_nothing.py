"""LRA502 step-changes-nothing: the probe reports it after running the script (`--run`)."""

from __future__ import annotations

from advisor.rule import ERROR, ProbeRule

RULE = ProbeRule(
    id="LRA502",
    name="step-changes-nothing",
    summary="(probe, with `--run`) optimizer steps leave every parameter unchanged",
    severity=ERROR,
    what_it_does="""
With `--run`, the probe records the parameters of the script's optimizer before its first step
and after its last. When the script took steps and not one parameter changed, it reports the
training loop: the steps read zero or missing gradients.
""",
    why_bad="""
Training that changes nothing produces a model identical to its random initialisation, while the
script prints a loss and looks like it ran. The usual causes are gradients cleared between
`backward()` and `step()`, parameters frozen with `requires_grad_(False)` whose loss still
backpropagates elsewhere, an optimizer built over another model's parameters than the one
trained, or a learning rate of zero.
""",
    example="""
model = nn.Linear(3, 1)
opt = torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=0.1)  # a fresh model's parameters
for epoch in range(100):
    opt.zero_grad()
    F.mse_loss(model(X), y).backward()
    opt.step()
""",
    use_instead="""
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    opt.zero_grad()
    F.mse_loss(model(X), y).backward()
    opt.step()
""",
    confirms="""
This rule is the probe's own measurement, from the parameters recorded while the script runs
under `--run` (optimizer step hooks): the report gives the number of steps taken.
""",
    references=("https://pytorch.org/docs/stable/optim.html#taking-an-optimization-step",),
    flag=(
        """
import torch
from torch import nn
X = torch.randn(64, 3)
y = X @ torch.tensor([[1.0], [2.0], [3.0]])
model = nn.Linear(3, 1)
opt = torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=0.1)
for epoch in range(20):  # expect: step-changes-nothing
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.randn(64, 3)
y = X @ torch.tensor([[1.0], [2.0], [3.0]])
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(20):  # expect: step-changes-nothing
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.zero_grad()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.randn(64, 3)
y = X @ torch.tensor([[1.0], [2.0], [3.0]])
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.0)
for epoch in range(20):  # expect: step-changes-nothing
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
    ),
    quiet=(
        """
import torch
from torch import nn
X = torch.randn(64, 3)
y = X @ torch.tensor([[1.0], [2.0], [3.0]])
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(20):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
from torch import nn
X = torch.randn(64, 3)
y = X @ torch.tensor([[1.0], [2.0], [3.0]])
model = nn.Linear(3, 1)
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(20):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
        """
import torch
X = torch.randn(64, 2)
y = X @ torch.tensor([[1.0], [-1.0]])
w = torch.zeros(2, 1, requires_grad=True)
for step in range(20):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
""",
        """
import torch
from torch import nn
X = torch.randn(64, 3)
y = X @ torch.tensor([[1.0], [2.0], [3.0]])
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(20):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
""",
    ),
)
