"""The training configuration read from the facts: optimizer, lr, loss, batch size, epochs."""

from __future__ import annotations

import libcst as cst
import pytest

from advisor.facts import extract_facts
from advisor.facts.hyperparameters import training_configs


def configs(source: str) -> list[dict]:
    facts = extract_facts(cst.parse_module(source), "t.py")
    return [{k: v for k, v in vars(c).items() if k != "loop"} for c in training_configs(facts)]


def test_seed_000_style_through_a_fit_function_and_aliases() -> None:
    (found,) = configs(
        "import torch as to\n"
        "import torch.nn.functional as F\n"
        "from torch.utils.data import DataLoader, TensorDataset\n"
        "from tqdm.notebook import tnrange\n"
        "batch_size = 5\n"
        "train_dl = DataLoader(TensorDataset(x, y), batch_size, shuffle=True)\n"
        "model = to.nn.Linear(3, 1, bias=False)\n"
        "opt = to.optim.SGD(model.parameters(), lr=1e-10)\n"
        "def fit(num_epochs, model, loss_fn, opt):\n"
        "    for epoch in tnrange(num_epochs, desc='epoch'):\n"
        "        for xb, yb in train_dl:\n"
        "            loss = loss_fn(model(xb), yb)\n"
        "            loss.backward()\n"
        "            opt.step()\n"
        "            opt.zero_grad()\n"
        "fit(10000, model, F.mse_loss, opt)\n"
    )
    assert found == {
        "optimizer": "SGD",
        "lr": 1e-10,
        "momentum": None,
        "weight_decay": None,
        "nesterov": False,
        "dampening": 0.0,
        "loss": "mse",
        "reduction": "mean",
        "batch_size": 5,
        "epochs": 10000,
    }


def test_positional_lr_defaults_and_sum_reduction() -> None:
    (found,) = configs(
        "import torch\n"
        "LR = 3e-3 * 10\n"
        "def train(model, loader, epochs=20, lr=LR):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr, 0.9)\n"
        "    crit = torch.nn.MSELoss(reduction='sum')\n"
        "    for epoch in range(epochs):\n"
        "        for xb, yb in enumerate(loader):\n"
        "            opt.zero_grad()\n"
        "            loss = crit(model(xb), yb)\n"
        "            loss.backward()\n"
        "            opt.step()\n"
        "train(net, torch.utils.data.DataLoader(ds, batch_size=64))\n"
    )
    assert found["lr"] == 0.03 and found["momentum"] == 0.9
    assert (found["loss"], found["reduction"]) == ("mse", "sum")
    assert found["epochs"] == 20 and found["batch_size"] == 64


def test_unknown_numbers_stay_unknown() -> None:
    (found,) = configs(
        "import torch\n"
        "def train(model, lr):\n"
        "    opt = torch.optim.Adam(model.parameters(), lr=lr)\n"
        "    for epoch in range(n_epochs):\n"
        "        opt.zero_grad()\n"
        "        ((model(x) - y) ** 2).mean().backward()\n"
        "        opt.step()\n"
        "train(m, 0.1)\n"
        "train(m, 0.01)\n"
    )
    assert found["optimizer"] == "Adam"
    assert found["lr"] is None and found["epochs"] is None and found["loss"] is None


TRAINER = """
import torch
from torch import nn
class Base:
    def __init__(self, model, lr=0.5):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=lr)
    def fit(self, X, y, epochs):
        for _ in range(epochs):
            self.opt.zero_grad()
            nn.functional.mse_loss(self.model(X), y).backward()
            self.opt.step()
class Fast(Base):
{fast}
{use}
"""
OWN_INIT = "    def __init__(self, model):\n        {}"


@pytest.mark.parametrize(
    ("fast", "use", "lr", "epochs"),
    [
        ("    pass", "Base(nn.Linear(3, 1), lr=1e-9).fit(X, y, 40)", 1e-9, 40),
        ("    pass", "t = Base(nn.Linear(3, 1))\nt.fit(X, y, epochs=7)", 0.5, 7),
        ("    pass", "Fast(nn.Linear(3, 1), 0.2).fit(X, y, 3)", 0.2, 3),
        (
            OWN_INIT.format("super().__init__(model, lr=1e-12)"),
            "Fast(nn.Linear(3, 1)).fit(X, y, 5)",
            1e-12,
            5,
        ),
        # arguments shifted by `self`: not read, rather than read wrong
        (
            OWN_INIT.format("Base.__init__(self, model, lr=1e-12)"),
            "Fast(nn.Linear(3, 1)).fit(X, y, 5)",
            None,
            5,
        ),
        # two constructions with different settings: the lr is not one number
        ("    pass", "Base(nn.Linear(3, 1), lr=0.1)\nBase(nn.Linear(3, 1), lr=1.0)", None, None),
    ],
    ids=["in-place", "bound", "inherited", "super", "explicit-base-init", "two-sites"],
)
def test_settings_reach_a_trainer_class_through_its_constructor(
    fast: str, use: str, lr: float | None, epochs: int | None
) -> None:
    (found,) = configs(TRAINER.format(fast=fast, use=use))
    assert found["optimizer"] == "SGD"
    assert found["lr"] == lr and found["epochs"] == epochs
