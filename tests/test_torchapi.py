"""The one table of the torch API (advisor.torchapi) and the one kind query (facts.kinds):
both forms of a loss agree, and meaning comes from resolved names, never from how a local
name looks (a model class called `LR` is not a learning-rate scheduler)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from advisor import torchapi
from advisor.facts import extract_facts
from advisor.facts.kinds import Kind, kind_of
from advisor.facts.regression import regressions

LR_ADVISOR = Path(sys.executable).parent / "lr-advisor"


def facts_of(source: str):
    return extract_facts(cst.parse_module(textwrap.dedent(source)), "train.py")


@pytest.mark.parametrize(
    ("functional", "module", "kind"),
    [
        ("mse_loss", "MSELoss", "mse"),
        ("l1_loss", "L1Loss", "l1"),
        ("smooth_l1_loss", "SmoothL1Loss", "smooth_l1"),
        ("huber_loss", "HuberLoss", "huber"),
    ],
)
def test_both_forms_of_a_regression_loss_are_one_record(
    functional: str, module: str, kind: str
) -> None:
    found = torchapi.loss("torch.nn.functional." + functional)
    assert found is torchapi.loss("torch.nn." + module) is torchapi.loss_named(functional)
    assert found is not None and found.kind == kind and found.symmetric and found.elementwise
    assert found.reduction == "mean" and found.target == "same-shape"


def test_losses_that_are_not_symmetric_say_what_their_target_is() -> None:
    cross_entropy = torchapi.loss("torch.nn.CrossEntropyLoss")
    assert cross_entropy is not None and not cross_entropy.symmetric
    assert cross_entropy.target == "class-indices"
    assert torchapi.loss("torch.nn.functional.binary_cross_entropy").target == "probabilities"


def test_huber_loss_is_a_regression_loss_in_both_forms() -> None:
    """HuberLoss was known where F.huber_loss was not: the configuration reads either."""
    for call in ("F.huber_loss(model(X), y)", "nn.HuberLoss()(model(X), y)"):
        facts = facts_of(
            f"""
            import torch
            import torch.nn.functional as F
            from torch import nn
            X = torch.randn(64, 3)
            y = torch.randn(64, 1)
            model = nn.Linear(3, 1)
            opt = torch.optim.SGD(model.parameters(), 0.1, 0.9)
            for epoch in range(10):
                opt.zero_grad()
                loss = {call}
                loss.backward()
                opt.step()
            """
        )
        (regression,) = regressions(facts)
        assert regression.loss.kind == "huber"
        assert (regression.config.loss, regression.config.lr) == ("huber", 0.1)
        assert regression.config.momentum == 0.9  # SGD's positional order from the table


def test_optimizers_keep_their_positional_order_and_defaults() -> None:
    sgd = torchapi.optimizer("torch.optim.SGD")
    assert sgd is not None and sgd.position("lr") == 1 and sgd.position("weight_decay") == 4
    assert sgd.defaults["dampening"] == 0.0 and not sgd.adaptive
    assert "torch.optim.Adam" in torchapi.ADAPTIVE_OPTIMIZERS


def test_schedulers_by_qualified_name() -> None:
    assert torchapi.is_scheduler("torch.optim.lr_scheduler.OneCycleLR")
    assert torchapi.is_scheduler("transformers.get_linear_schedule_with_warmup")
    assert not torchapi.is_scheduler("mymodels.LR")
    assert not torchapi.is_scheduler(None)


def test_module_methods_that_return_the_module() -> None:
    for name in ("to", "cuda", "cpu", "train", "eval", "float", "half", "requires_grad_", "apply"):
        assert torchapi.module_method(name) is not None, name
    assert torchapi.module_method("forward") is None


def test_kind_of_an_expression() -> None:
    facts = facts_of(
        """
        import numpy as np
        import torch
        from torch import nn
        x = torch.randn(4, 3)
        a = np.zeros((4, 3))
        model = nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        criterion = nn.MSELoss()
        n = 3
        names = ["a"]
        out = model(x)
        z = x.squeeze(1)
        """
    )
    expected = {
        "x": Kind.TENSOR,
        "a": Kind.ARRAY,
        "model": Kind.MODULE,
        "opt": Kind.OPTIMIZER,
        "criterion": Kind.LOSS,
        "n": Kind.NUMBER,
        "names": Kind.OTHER,
        "out": Kind.OUTPUT,
        "z": Kind.TENSOR,
    }
    module = facts.scope
    for name, kind in expected.items():
        (binding,) = module.bindings[name]
        assert kind_of(facts, binding.value, module) is kind, name


LR_MODEL = """
import torch
from torch import nn

X = torch.tensor([[0.5, 1.0], [1.5, -0.5], [2.0, 0.3], [-1.0, 0.8], [0.2, -1.2], [1.1, 0.4]])
y = torch.tensor([[1.0], [2.5], [3.1], [-1.4], [0.9], [1.8]])


class LR(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        return self.linear(x)


model = LR()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(200):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
"""


def test_a_model_class_called_lr_is_not_a_scheduler(tmp_path: Path) -> None:
    """A regular expression on called names took `LR()` for a learning-rate scheduler and
    switched the probe's replay off ("a scheduler changes the lr")."""
    script = tmp_path / "train.py"
    script.write_text(LR_MODEL)
    done = subprocess.run(
        [LR_ADVISOR, "--no-cache", "--format", "json", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (report,) = json.loads(done.stdout)["probe"]
    said = " ".join([report["summary"], *report["notes"]])
    assert "scheduler" not in said and "cannot be replayed" not in said, report
    assert report["problem"]["optimizer"]["kind"] == "sgd", report


def test_an_unknown_library_handed_the_optimizer_may_change_the_lr() -> None:
    """Where a callee cannot be resolved, the analysis says less: it may schedule the lr."""
    facts = facts_of(
        LR_MODEL.replace("for epoch", "warm = WarmupLR(opt, 10)\nfor epoch").replace(
            "from torch import nn", "from torch import nn\nfrom mylib import WarmupLR"
        )
    )
    (regression,) = regressions(facts)
    assert regression.scheduled
    (plain,) = regressions(facts_of(LR_MODEL))
    assert not plain.scheduled
