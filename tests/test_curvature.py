"""Every figure the numeric rules compute, checked against numpy on the same data.

The data is read by lr-advisor from the script's own literals and files (never by running the
script); the expected values are computed here directly with numpy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import libcst as cst
import numpy as np
import pytest

from advisor.curvature import analyse, step_check
from advisor.facts import extract_facts
from advisor.facts.regression import regressions
from advisor.rules.loss_shape_broadcast import RULE as BROADCAST
from advisor.rules.tiny_learning_rate import RULE as TINY
from advisor.rules.unscaled_features import RULE as UNSCALED

DATA = Path(__file__).parent / "data"
SEED000 = np.loadtxt(DATA / "seed000.csv", delimiter=",")


def regression_of(source: str, path: Path | str = "train.py"):
    facts = extract_facts(cst.parse_module(source), str(path))
    (found,) = regressions(facts)
    return facts, found


def hessian_eigenvalues(design: np.ndarray, scale: float) -> np.ndarray:
    return np.linalg.eigvalsh(scale * design.T @ design)


@pytest.fixture
def seed000_dir(tmp_path: Path) -> Path:
    shutil.copy(DATA / "seed000.csv", tmp_path / "seed000.csv")
    return tmp_path


SEED000_SCRIPT = """\
import numpy as np
import torch
import torch.nn.functional as F
data = np.loadtxt("seed000.csv", delimiter=",")
A = torch.from_numpy(data[:, :3]).float()
b = torch.from_numpy(data[:, 3]).float()
model = torch.nn.Linear(3, 1, bias={bias})
opt = torch.optim.SGD(model.parameters(), lr=1e-10)
for epoch in range(10000):
    opt.zero_grad()
    loss = F.mse_loss(model(A), b.view(-1, 1){reduction})
    loss.backward()
    opt.step()
"""


def test_seed000_figures_from_a_data_file(seed000_dir: Path) -> None:
    source = SEED000_SCRIPT.format(bias=False, reduction="")
    facts, regression = regression_of(source, seed000_dir / "train.py")
    analysis = analyse(regression)
    features = SEED000[:, :3]
    expected = hessian_eigenvalues(features, 2 / len(features))
    np.testing.assert_allclose(analysis.spectrum.eigenvalues, expected, rtol=1e-9)
    # the figures quoted in the seeds' README
    assert analysis.spectrum.eigenvalues[0] == pytest.approx(466, rel=0.01)
    assert analysis.spectrum.eigenvalues[1] == pytest.approx(553, rel=0.01)
    assert analysis.spectrum.largest == pytest.approx(4.77e7, rel=0.01)
    assert analysis.spectrum.condition == pytest.approx(1.0e5, rel=0.05)
    check = step_check(regression)
    assert check.bound == pytest.approx(2 / expected[-1], rel=1e-9)
    assert check.bound == pytest.approx(4.2e-8, rel=0.01)
    assert check.ratio == pytest.approx(420, rel=0.01)
    assert check.steps == 10000
    # standardised with a bias column: about 1.3
    z = (features - features.mean(0)) / features.std(0)
    z1 = np.hstack([z, np.ones((10, 1))])
    standard = np.linalg.eigvalsh(z1.T @ z1)
    assert analysis.standardized.condition == pytest.approx(standard[-1] / standard[0], rel=1e-9)
    assert analysis.standardized.condition == pytest.approx(1.3, abs=0.1)
    # least squares without bias: the pinv weights
    np.testing.assert_allclose(
        analysis.solution[:, 0], np.linalg.pinv(features) @ SEED000[:, 3], rtol=1e-6
    )
    tiny = [d.evidence["ratio"] for d in TINY.check(facts)]
    assert tiny == [pytest.approx(check.ratio)]


def test_sum_reduction_and_bias_column(seed000_dir: Path) -> None:
    source = SEED000_SCRIPT.format(bias=True, reduction=", reduction='sum'")
    _, regression = regression_of(source, seed000_dir / "train.py")
    design = np.hstack([SEED000[:, :3], np.ones((10, 1))])
    np.testing.assert_allclose(
        analyse(regression).spectrum.eigenvalues, hessian_eigenvalues(design, 2.0), rtol=1e-9
    )


def test_mini_batches_with_a_sum_divided_by_the_batch() -> None:
    source = """\
import torch
from torch.utils.data import DataLoader, TensorDataset
X = torch.tensor([[1.0, 2.0], [2.0, 0.5], [3.0, 1.5], [0.5, 2.5], [2.0, 3.0], [1.5, 1.0]])
y = torch.tensor([[3.1], [2.9], [4.4], [2.8], [4.9], [2.6]])
loader = DataLoader(TensorDataset(X, y), batch_size=2, shuffle=True)
model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
for epoch in range(30):
    for xb, yb in loader:
        opt.zero_grad()
        loss = ((model(xb) - yb) ** 2).sum() / 2 / len(xb)
        loss.backward()
        opt.step()
"""
    _, regression = regression_of(source)
    X = np.array([[1.0, 2.0], [2.0, 0.5], [3.0, 1.5], [0.5, 2.5], [2.0, 3.0], [1.5, 1.0]])
    design = np.hstack([X, np.ones((6, 1))])
    # per step: (1/2B) sum over B rows; expected over batches: (1/n) AᵀA
    expected = hessian_eigenvalues(design, 1 / 6)
    np.testing.assert_allclose(analyse(regression).spectrum.eigenvalues, expected, rtol=1e-9)
    assert regression.batch == 2 and regression.steps == 90
    check = step_check(regression)
    assert check.momentum == 0.9
    assert check.bound == pytest.approx(2 * 1.9 / expected[-1], rel=1e-9)


def test_multi_output_by_hand_like_seed001() -> None:
    source = """\
import torch
X = torch.tensor([[61.0, 14.0, 38.0], [74.0, 31.0, 52.0], [55.0, 9.0, 71.0],
                  [88.0, 42.0, 29.0], [67.0, 25.0, 64.0]])
Y = torch.tensor([[29.0, 50.4], [34.1, 76.0], [43.2, 34.2], [20.2, 106.5], [38.9, 58.4]])
W = torch.randn(2, 3, requires_grad=True)
b = torch.randn(2, requires_grad=True)
for it in range(5000):
    loss = ((X @ W.t() + b - Y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        W -= 1e-5 * W.grad
        b -= 1e-5 * b.grad
        W.grad.zero_()
        b.grad.zero_()
"""
    facts, regression = regression_of(source)
    assert regression.model.inputs == 3 and regression.model.outputs == 2
    assert regression.model.bias and regression.rule == "manual"
    assert regression.step_size == 1e-5
    X = np.array([[61, 14, 38], [74, 31, 52], [55, 9, 71], [88, 42, 29], [67, 25, 64]], float)
    design = np.hstack([X, np.ones((5, 1))])
    expected = hessian_eigenvalues(design, 2 / (5 * 2))  # the mean runs over 5 x 2 elements
    analysis = analyse(regression)
    np.testing.assert_allclose(analysis.spectrum.eigenvalues, expected, rtol=1e-9)
    Y = np.array([[29.0, 50.4], [34.1, 76.0], [43.2, 34.2], [20.2, 106.5], [38.9, 58.4]])
    solution, *_ = np.linalg.lstsq(design, Y, rcond=None)
    np.testing.assert_allclose(analysis.solution, solution, rtol=1e-6)
    (finding,) = UNSCALED.check(facts)
    data_eigen = np.linalg.eigvalsh(design.T @ design / 5)
    assert finding.evidence["condition_number"] == pytest.approx(data_eigen[-1] / data_eigen[0])


def test_rank_deficient_data_uses_the_directions_it_spans() -> None:
    source = """\
import torch
X = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 1.0], [3.0, 6.0, 2.0], [4.0, 8.0, 5.0]])
y = torch.tensor([[1.0], [2.0], [2.5], [4.0]])
model = torch.nn.Linear(3, 1, bias=False)
opt = torch.optim.SGD(model.parameters(), lr=0.001)
for epoch in range(100):
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
"""
    _, regression = regression_of(source)
    X = np.array([[1, 2, 3], [2, 4, 1], [3, 6, 2], [4, 8, 5]], float)  # column 2 = 2 x column 1
    expected = hessian_eigenvalues(X, 2 / 4)
    spectrum = analyse(regression).spectrum
    assert spectrum.rank == np.linalg.matrix_rank(X) == 2
    assert spectrum.smallest == pytest.approx(expected[1], rel=1e-9)
    assert spectrum.condition == pytest.approx(expected[2] / expected[1], rel=1e-9)


def test_synthetic_standard_normal_data_is_well_conditioned() -> None:
    source = """\
import torch
X = torch.normal(0, 1, (1000, 2))
y = torch.matmul(X, torch.tensor([2.0, -3.4])) + 4.2
w = torch.normal(0, 0.01, size=(2,), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for epoch in range(100):
    l = ((torch.matmul(X, w) + b - y) ** 2 / 2).mean()
    l.backward()
    with torch.no_grad():
        w -= 0.03 * w.grad
        b -= 0.03 * b.grad
        w.grad.zero_()
        b.grad.zero_()
"""
    facts, regression = regression_of(source)
    analysis = analyse(regression)
    # E[AᵀA/n] = I for N(0, 1) columns and a bias column: the sample is close to it
    np.testing.assert_allclose(analysis.data_spectrum.eigenvalues, [1, 1, 1], atol=0.15)
    assert not regression.features.exact
    assert list(UNSCALED.check(facts)) == []


def test_broadcast_shapes_follow_the_data_loader() -> None:
    source = """\
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
table = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.5], [3.0, 0.0, 4.0], [4.0, 1.0, 6.0]])
ds = TensorDataset(torch.from_numpy(table[:, :2]), torch.from_numpy(table[:, -1]))
loader = DataLoader(ds, batch_size=3)
model = torch.nn.Linear(2, 1).double()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(20):
    for xb, yb in loader:
        opt.zero_grad()
        loss = torch.nn.MSELoss()(model(xb), yb)
        loss.backward()
        opt.step()
"""
    facts, _ = regression_of(source)
    (finding,) = BROADCAST.check(facts)
    assert finding.evidence == {
        "prediction_shape": [3, 1],
        "target_shape": [3],
        "broadcast_shape": [3, 3],
    }
