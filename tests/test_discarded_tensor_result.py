"""LRA404 discarded-tensor-result beyond its own examples: confidence, messages, fixes, and
the places where an expression statement is not a discarded result (notebook cells, tests)."""

from __future__ import annotations

import json
import textwrap

import libcst as cst
import pytest

from advisor.facts import extract_facts
from advisor.findings import CERTAIN, LIKELY
from advisor.pipeline import check_bytes, node_positions
from advisor.rules.discarded_tensor_result import RULE


def diagnostics(source: str, path: str = "train.py") -> list[tuple[int, object]]:
    module = cst.parse_module(textwrap.dedent(source))
    found = list(RULE.check(extract_facts(module, path)))
    positions = node_positions(module)
    return sorted(((positions[d.node].start.line, d) for d in found), key=lambda x: x[0])


def lines(source: str, path: str = "train.py") -> list[int]:
    return [line for line, _ in diagnostics(source, path)]


TENSORS = """\
import torch
x = torch.randn(8, 3)
y = torch.randn(8)
"""


@pytest.mark.parametrize(
    "statement",
    [
        "y.squeeze()",
        "y.unsqueeze(1)",
        "x.float()",
        "x.double()",
        "x.half()",
        "x.to('cuda')",
        "x.cuda()",
        "x.cpu()",
        "x.reshape(-1, 1)",
        "x.view(-1, 1)",
        "x.t()",
        "x.transpose(0, 1)",
        "x.permute(1, 0)",
        "x.flatten()",
        "x.detach()",
        "x.clone()",
        "x.clamp(0, 1)",
        "x.abs()",
        "x.type(torch.float32)",
        "x.type_as(y)",
        "x.contiguous()",
        "x.numpy()",
        "x.tolist()",
        "x.masked_fill(x > 0, 0.0)",
        "torch.squeeze(x)",
        "torch.unsqueeze(y, 1)",
        "torch.clamp(x, 0, 1)",
        "torch.randn(3).float()",
        "x.squeeze(1).float()",
    ],
)
def test_known_tensor_is_certain(statement: str) -> None:
    found = diagnostics(TENSORS + statement + "\n")
    assert [line for line, _ in found] == [4]
    assert found[0][1].confidence == CERTAIN


@pytest.mark.parametrize(
    "statement",
    [
        "y.squeeze_()",
        "x.clamp_(0, 1)",
        "x.unsqueeze_(0)",
        "x.requires_grad_()",
        "x = x.float()",
        "z = x.view(-1)",
        "print(x.float())",
        "x.type()",
        "torch.clamp(x, 0, 1, out=x)",
        "torch.nn.functional.relu(x, inplace=True)",
        "x.backward(torch.ones_like(x))",
        "x.item()",
    ],
)
def test_in_place_or_used_is_quiet(statement: str) -> None:
    assert lines(TENSORS + statement + "\n") == []


def test_modules_change_themselves() -> None:
    source = """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 1)

        def half_precision(self):
            self.half()
            self.fc.float()

    def build_model():
        return Net()

    model = Net()
    model.to("cuda")
    model.float()
    model.double()
    model.cuda()
    model.cpu()
    model.train()
    other = build_model()
    other.float()
    other.to("cuda")
    loaded = torch.load("model.pt")
    loaded.float()
    loaded.to("cuda")
    copied = get_model()
    copied.to("cuda")
    copied.float()
    """
    assert lines(source) == []


def test_unknown_receivers() -> None:
    source = """
    import torch
    import pandas as pd
    import sys

    def step(batch, target):
        target.unsqueeze(1)
        batch.float()
        batch.to("cuda")
        target.view(-1, 1)
        target.view(viewer)
        target.t()
        target.t("key")
        target.clone("dest")
        target.expand(3, 4)
        target.repeat(2)
        return batch

    frame = pd.read_csv("data.csv")
    frame.astype(float)
    frame.squeeze()
    frame["price"].squeeze()
    frame.values.reshape(-1, 1)
    names = ["a", "b"]
    names.copy()
    names[0].strip()
    sys.stdout.detach()
    """
    found = diagnostics(source)
    assert [line for line, _ in found] == [7, 10, 12]
    assert all(d.confidence == LIKELY for _, d in found)


def test_model_outputs_and_loader_batches_are_likely() -> None:
    source = """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Trainer:
        def __init__(self, model):
            self.model = model

        def predict(self, x):
            out = self.model(x)
            out.cpu()
            return out

    X, y = torch.randn(64, 3), torch.randn(64)
    loader = DataLoader(TensorDataset(X, y), batch_size=8)
    for xb, yb in loader:
        yb.float()
        xb.to("cuda")
    """
    found = diagnostics(source)
    assert [line for line, _ in found] == [11, 17, 18]
    assert all(d.confidence == LIKELY for _, d in found)


def test_numpy_arrays() -> None:
    source = """
    import numpy as np
    import torch
    a = np.random.rand(10, 2)
    a.reshape(-1)
    a.astype(np.float32)
    a.sort()
    a.resize((5, 4))
    a.fill(0.0)
    a.clip(0, 1, a)
    np.clip(a, 0, 1, a)
    np.exp(a, a)
    np.squeeze(a)
    np.clip(a, 0, 1)
    """
    assert lines(source) == [5, 6, 13, 14]


def test_message_and_fix() -> None:
    (_, found), *_ = diagnostics(TENSORS + "y.squeeze()\n")
    assert found.message == (
        "`y.squeeze()` returns a new tensor that is thrown away; y keeps its shape. "
        "Assign it: `y = y.squeeze()`, or change y itself: `y.squeeze_()`"
    )
    assert found.fix.description == (
        "assign the result (`y = y.squeeze()`) or change it in place (`y.squeeze_()`)"
    )
    assert found.fix.applicability == "display"
    (_, found), *_ = diagnostics(TENSORS + "x.numpy()\n")
    assert "`x_np = x.numpy()`" in found.message and "itself" not in found.message
    (_, found), *_ = diagnostics(TENSORS + "x[0].unsqueeze(0)\n")
    assert "`x[0]` keeps its shape" in found.message
    assert "Assign it to a name" in found.message


def test_checks_and_tests_are_left_alone() -> None:
    source = """
    import pytest
    import torch
    x = torch.randn(3, 4)
    try:
        torch.zeros(1).cuda()
    except RuntimeError:
        pass
    with pytest.raises(RuntimeError):
        x.view(5, 7)

    def test_view_keeps_storage():
        x.view(-1)
    """
    assert lines(source) == []
    assert lines(TENSORS + "x.float()\n", path="tests/test_shapes.py") == []


def test_percent_cells_display_their_last_expression() -> None:
    source = """\
    # %%
    import torch
    x = torch.randn(3, 4)
    x.t()
    x.float()

    # %%
    x.squeeze()
    print(x)
    """
    assert lines(source) == [4, 8]  # not x.float(), the cell's last line


def _notebook(*cells: str) -> bytes:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "outputs": [], "source": cell}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    ).encode()


def test_notebook_top_level_expressions_are_displayed() -> None:
    data = _notebook(
        "import torch\nx = torch.randn(4, 3)\nx.float()",
        "x.t()\nfor step in range(3):\n    x.unsqueeze(0)\n",
    )
    result = check_bytes(data, "explore.ipynb", [RULE])
    assert [(f.cell, f.line) for f in result.findings] == [(2, 3)]
