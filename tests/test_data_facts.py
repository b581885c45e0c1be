"""The data facts on the ways scripts really load and change their data, checked with numpy."""

from __future__ import annotations

import math
from pathlib import Path

import libcst as cst
import numpy as np
import pytest

from advisor.curvature import contraction, stable_step, steps_needed
from advisor.facts import extract_facts
from advisor.facts.data import Array, data_of

HOUSES = (
    "area,bedrooms,age,price\n1725,1,13,299.6\n921,2,4,229.7\n1410,3,22,260.1\n2210,4,8,410.0\n"
)


def value_of(source: str, name: str, path: Path | str = "train.py"):
    """The data a module-level name holds at the end of the script."""
    facts = extract_facts(cst.parse_module(source), str(path))
    expr, order = _printed(facts, name)
    found = data_of(facts, expr, facts.scope, order)
    assert found is None or isinstance(found, Array)
    return found


def _printed(facts, name: str):
    """The expression `name` in the script's `print(name)`, and where that statement runs."""
    for stmt in reversed(facts.stmts):
        if stmt.value is not None and stmt.value.call is not None:
            args = stmt.value.call.args
            if args and args[0].text == name:
                return args[0], stmt.order
    raise AssertionError(f"no print({name}) in the script")


@pytest.fixture
def houses(tmp_path: Path) -> Path:
    (tmp_path / "houses.csv").write_text(HOUSES)
    return tmp_path / "train.py"


def test_pandas_header_columns_and_per_column_statistics(houses: Path) -> None:
    found = value_of(
        "import pandas as pd\n"
        "df = pd.read_csv('houses.csv')\n"
        "f = df[['area', 'age']]\n"
        "f = (f - f.mean()) / f.std()\n"
        "X = f.values\n"
        "print(X)\n",
        "X",
        houses,
    )
    raw = np.loadtxt(houses.parent / "houses.csv", delimiter=",", skiprows=1)[:, [0, 2]]
    expected = (raw - raw.mean(0)) / raw.std(0, ddof=1)
    assert found.shape == (4, 2) and found.normalized
    np.testing.assert_allclose(found.values.get(), expected)
    assert np.allclose(found.values.get().mean(0), 0.0)


def test_loadtxt_single_column_is_flat_unless_ndmin_2(houses: Path) -> None:
    source = (
        "import numpy as np\n"
        "y = np.loadtxt('houses.csv', delimiter=',', skiprows=1, usecols=3{extra})\n"
        "print(y)\n"
    )
    assert value_of(source.format(extra=""), "y", houses).shape == (4,)
    assert value_of(source.format(extra=", ndmin=2"), "y", houses).shape == (4, 1)
    found = value_of(source.format(extra=""), "y", houses)
    np.testing.assert_allclose(found.values.get(), [299.6, 229.7, 260.1, 410.0])


def test_npy_file(tmp_path: Path) -> None:
    data = np.arange(12.0).reshape(6, 2)
    np.save(tmp_path / "xy.npy", data)
    found = value_of(
        "import numpy as np\nd = np.load('xy.npy')\nX = d[:, :1]\nprint(X)\n",
        "X",
        tmp_path / "train.py",
    )
    assert found.shape == (6, 1) and found.exact
    np.testing.assert_array_equal(found.values.get(), data[:, :1])


def test_in_place_changes_are_followed(houses: Path) -> None:
    found = value_of(
        "import numpy as np\nimport torch\n"
        "d = np.loadtxt('houses.csv', delimiter=',', skiprows=1)\n"
        "X = torch.from_numpy(d[:, :3])\n"
        "X.sub_(X.mean(0)).div_(X.std(0))\n"
        "print(X)\n",
        "X",
        houses,
    )
    raw = np.loadtxt(houses.parent / "houses.csv", delimiter=",", skiprows=1)[:, :3]
    assert found.normalized
    np.testing.assert_allclose(found.values.get(), (raw - raw.mean(0)) / raw.std(0))


@pytest.mark.parametrize(
    ("change", "shape"),
    [
        ("y.unsqueeze_(1)", (50, 1)),
        ("y.shape = (-1, 1)", (50, 1)),
        ("y.squeeze_()", (50,)),
        ("y[y > 1] = 1.0", (50,)),
        ("y.clamp_(0, 1)", (50,)),
    ],
)
def test_in_place_shape_changes(change: str, shape: tuple) -> None:
    found = value_of(f"import torch\ny = torch.rand(50)\n{change}\nprint(y)\n", "y")
    assert found.shape == shape


def test_a_change_after_the_use_does_not_count() -> None:
    found = value_of("import torch\ny = torch.rand(50)\nprint(y)\ny.unsqueeze_(1)\n", "y")
    assert found.shape == (50,)


def test_independent_draws_are_independent_samples() -> None:
    found = value_of(
        "import torch\n"
        "a = torch.randn(5000, 1)\n"
        "b = torch.randn(5000, 1)\n"
        "X = torch.cat([a, b], dim=1)\n"
        "print(X)\n",
        "X",
    )
    correlation = np.corrcoef(found.values.get().T)[0, 1]
    assert abs(correlation) < 0.1


def test_one_draw_used_twice_is_one_sample() -> None:
    found = value_of("import torch\na = torch.randn(300, 1)\nd = a - a\nprint(d)\n", "d")
    assert np.all(found.values.get() == 0.0)


def test_numpy_generator_draws_have_their_scale() -> None:
    found = value_of(
        "import numpy as np\n"
        "rng = np.random.default_rng(42)\n"
        "X = rng.normal(50.0, 10.0, size=(4000, 2))\n"
        "print(X)\n",
        "X",
    )
    assert found.shape == (4000, 2) and found.origin == "synthetic"
    assert abs(found.values.get().mean() - 50.0) < 1.0
    assert abs(found.values.get().std() - 10.0) < 1.0


def _simulated_rate(step: float, eigenvalue: float, momentum: float, nesterov: bool) -> float:
    """The error's shrink factor per step of PyTorch's SGD on f(w) = eigenvalue * w² / 2."""
    w, velocity = 1.0, 0.0
    errors = []
    for _ in range(400):
        gradient = eigenvalue * w
        velocity = momentum * velocity + gradient
        w -= step * (gradient + momentum * velocity if nesterov else velocity)
        errors.append(abs(w))
    if errors[-1] == 0 or not math.isfinite(errors[-1]):
        return 0.0 if errors[-1] == 0 else math.inf
    return (errors[-1] / errors[-101]) ** (1 / 100)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("h", [0.001, 0.05, 0.5, 1.0, 1.5, 1.9])
def test_contraction_matches_pytorch_sgd_on_a_quadratic(h, momentum, nesterov) -> None:
    predicted = contraction(h, 1.0, momentum, nesterov)
    simulated = _simulated_rate(h, 1.0, momentum, nesterov)
    if predicted < 0.5:
        return  # fast enough that 400 steps underflow the comparison
    assert simulated == pytest.approx(predicted, rel=0.03)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_stable_step_is_where_the_contraction_reaches_one(momentum, nesterov) -> None:
    bound = stable_step(4.0, momentum, nesterov)
    assert contraction(bound * 0.99, 4.0, momentum, nesterov) < 1.0
    assert contraction(bound * 1.01, 4.0, momentum, nesterov) > 1.0


def test_momentum_makes_large_steps_converge() -> None:
    # h = 1.5 contracts by 0.5 per step without momentum and by sqrt(0.9) with heavy ball 0.9
    assert steps_needed(1.5, 1.0) == pytest.approx(math.log(100) / math.log(2))
    assert math.isfinite(steps_needed(0.15 / 0.1 * 1.0, 1.0, 0.9))
