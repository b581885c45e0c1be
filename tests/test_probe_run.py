"""`--run` capture, end to end: real scripts run in a limited child process under the recorder.

Each test writes a small training script, captures it with `capture_run`, and checks the
captured regression against the data it wrote and against what torch gives when the same
seeded script runs here, uninstrumented (the recorder must not change any result).
"""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from advisor.probe.capture import capture_run, copy_inputs  # noqa: E402
from advisor.probe.problem import Loss  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "probe"


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def run_here(script: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The script's globals after running it in this process, without the recorder."""
    monkeypatch.chdir(script.parent)
    monkeypatch.setattr("sys.argv", [str(script)])
    return runpy.run_path(str(script), run_name="__main__")


def linear_params(model) -> tuple[np.ndarray, np.ndarray]:
    weight = model.weight.detach().double().numpy().T
    bias = model.bias.detach().double().numpy()
    return weight, bias


def test_full_batch_linear_sgd_reading_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2)) * [3.0, 0.5] + [1.0, -2.0]
    y = X @ [1.5, -2.0] + 0.3 + 0.05 * rng.normal(size=30)
    np.savetxt(tmp_path / "data.csv", np.column_stack([X, y]), delimiter=",", header="a,b,y")
    script = write(
        tmp_path,
        "train.py",
        """
        import numpy as np
        import torch
        from torch import nn

        torch.manual_seed(0)
        data = np.loadtxt("data.csv", delimiter=",", dtype=np.float32)
        X = torch.from_numpy(data[:, :2])
        y = torch.from_numpy(data[:, 2:])
        model = nn.Linear(2, 1)
        initial = [model.weight.detach().clone(), model.bias.detach().clone()]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
        criterion = nn.MSELoss()
        history = []
        for epoch in range(20):
            optimizer.zero_grad()
            loss = criterion(model(X), y)
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        """,
    )
    result = capture_run(script)
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    assert problem is not None and problem.source == "run"
    data = np.loadtxt(tmp_path / "data.csv", delimiter=",", dtype=np.float32).astype(np.float64)
    np.testing.assert_array_equal(problem.features, data[:, :2])
    np.testing.assert_array_equal(problem.targets, data[:, 2:])
    assert problem.bias and problem.loss == Loss(mean=True, factor=1.0, broadcast=False)
    assert problem.optimizer is not None
    assert (problem.optimizer.kind, problem.optimizer.lr) == ("sgd", 0.05)
    assert problem.optimizer.momentum == 0.5 and not problem.optimizer.accumulate
    assert problem.batch is None and problem.steps == 20 and problem.epochs == 20
    assert result.steps_seen == 20

    here = run_here(script, monkeypatch)
    assert problem.init == "given" and problem.initial is not None
    np.testing.assert_array_equal(problem.initial[0], here["initial"][0].double().numpy().T)
    np.testing.assert_array_equal(problem.initial[1], here["initial"][1].double().numpy())
    final = linear_params(here["model"])
    np.testing.assert_array_equal(problem.final_params[0], final[0])
    np.testing.assert_array_equal(problem.final_params[1], final[1])
    np.testing.assert_array_equal(problem.observed_losses, np.array(here["history"]))


def test_dataloader_minibatches_with_shuffle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = write(
        tmp_path,
        "loader.py",
        """
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        torch.manual_seed(1)
        X = torch.randn(50, 3)
        y = X @ torch.tensor([[1.0], [2.0], [-1.0]]) + 0.5
        loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
        model = nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        history = []
        for epoch in range(3):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(xb), yb)
                loss.backward()
                optimizer.step()
                history.append(loss.item())
        """,
    )
    result = capture_run(script)
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    here = run_here(script, monkeypatch)
    np.testing.assert_array_equal(problem.features, here["X"].double().numpy())
    np.testing.assert_array_equal(problem.targets, here["y"].double().numpy())
    assert (problem.batch, problem.shuffle, problem.drop_last) == (8, True, False)
    assert problem.steps == 21 and problem.epochs == 3 and problem.steps_per_epoch == 7
    assert problem.notes == []
    np.testing.assert_array_equal(problem.observed_losses, np.array(here["history"]))
    final = linear_params(here["model"])
    np.testing.assert_array_equal(problem.final_params[0], final[0])
    np.testing.assert_array_equal(problem.final_params[1], final[1])


def test_d2l_scratch_generator_and_manual_sgd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = write(
        tmp_path,
        "scratch.py",
        """
        import random
        import torch

        random.seed(0)
        torch.manual_seed(0)

        def synthetic_data(w, b, num_examples):
            X = torch.normal(0, 1, (num_examples, len(w)))
            y = torch.matmul(X, w) + b
            y += torch.normal(0, 0.01, y.shape)
            return X, y.reshape((-1, 1))

        def data_iter(batch_size, features, labels):
            indices = list(range(len(features)))
            random.shuffle(indices)
            for i in range(0, len(features), batch_size):
                batch_indices = torch.tensor(indices[i: min(i + batch_size, len(features))])
                yield features[batch_indices], labels[batch_indices]

        def linreg(X, w, b):
            return torch.matmul(X, w) + b

        def squared_loss(y_hat, y):
            return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2

        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param -= lr * param.grad / batch_size
                    param.grad.zero_()

        features, labels = synthetic_data(torch.tensor([2, -3.4]), 4.2, 205)
        w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        w0, b0 = w.detach().clone(), b.detach().clone()
        history = []
        for epoch in range(3):
            for X, y in data_iter(10, features, labels):
                l = squared_loss(linreg(X, w, b), y)
                l.sum().backward()
                history.append(l.sum().item())
                sgd([w, b], 0.03, 10)
        """,
    )
    result = capture_run(script)
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    here = run_here(script, monkeypatch)
    np.testing.assert_array_equal(problem.features, here["features"].double().numpy())
    np.testing.assert_array_equal(problem.targets, here["labels"].double().numpy())
    assert problem.loss == Loss(mean=False, factor=0.5, broadcast=False)
    assert problem.optimizer is not None and problem.optimizer.kind == "manual"
    assert problem.optimizer.lr == pytest.approx(0.003, rel=1e-6)
    assert (problem.batch, problem.shuffle, problem.drop_last) == (10, True, False)
    assert problem.steps == 63 and problem.epochs == 3 and problem.steps_per_epoch == 21
    np.testing.assert_array_equal(problem.initial[0], here["w0"].double().numpy())
    np.testing.assert_array_equal(problem.initial[1], here["b0"].double().numpy())
    np.testing.assert_array_equal(problem.final_params[0], here["w"].detach().double().numpy())
    np.testing.assert_array_equal(problem.final_params[1], here["b"].detach().double().numpy())
    np.testing.assert_allclose(problem.observed_losses, here["history"], rtol=1e-6)


def test_flat_target_against_column_prediction_broadcasts(tmp_path: Path):
    script = write(
        tmp_path,
        "flat.py",
        """
        import torch
        import torch.nn.functional as F

        torch.manual_seed(0)
        X = torch.randn(40, 2)
        y = 3 * X[:, 0] - X[:, 1] + 1
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for step in range(6):
            optimizer.zero_grad()
            F.mse_loss(model(X), y).backward()
            optimizer.step()
        """,
    )
    result = capture_run(script)
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    assert problem.loss == Loss(mean=True, factor=1.0, broadcast=True)
    assert problem.targets.shape == (40, 1) and problem.features.shape == (40, 2)
    torch.manual_seed(0)
    X = torch.randn(40, 2)
    np.testing.assert_array_equal(problem.features, X.double().numpy())
    np.testing.assert_array_equal(problem.targets[:, 0], (3 * X[:, 0] - X[:, 1] + 1).double())


def test_adam_hyperparameters_and_hand_written_model(tmp_path: Path, monkeypatch):
    script = write(
        tmp_path,
        "adam.py",
        """
        import torch

        torch.manual_seed(3)
        X = torch.randn(32, 3)
        Y = X @ torch.randn(3, 2)
        W = torch.randn(2, 3, requires_grad=True)
        b = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.Adam([W, b], lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                                     weight_decay=0.01)
        for step in range(7):
            optimizer.zero_grad()
            loss = ((X @ W.t() + b - Y) ** 2).sum() / 2 / len(X)
            loss.backward()
            optimizer.step()
        """,
    )
    result = capture_run(script)
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    optimizer = problem.optimizer
    assert optimizer is not None and optimizer.kind == "adam"
    assert (optimizer.lr, optimizer.betas, optimizer.eps) == (0.02, (0.8, 0.99), 1e-6)
    assert optimizer.weight_decay == 0.01
    # sum / 2 / rows over 2 outputs: the mean over all 64 squared errors, times 2 / 2
    assert problem.loss == Loss(mean=True, factor=1.0, broadcast=False)
    assert problem.outputs == 2 and problem.bias and problem.steps == 7
    here = run_here(script, monkeypatch)
    np.testing.assert_array_equal(problem.final_params[0], here["W"].detach().double().T)
    np.testing.assert_array_equal(problem.final_params[1], here["b"].detach().double())


def test_script_that_raises_keeps_partial_capture(tmp_path: Path):
    script = write(
        tmp_path,
        "raises.py",
        """
        import torch

        X = torch.randn(20, 2)
        y = X.sum(1, keepdim=True)
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(10):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            optimizer.step()
            if step == 4:
                raise ValueError("loss exploded")
        """,
    )
    result = capture_run(script)
    assert result.status == "error"
    assert "ValueError: loss exploded" in result.message and "line 12" in result.message
    assert "after 5 optimizer steps" in result.message
    assert f'File "{script}", line 12' in result.stderr_tail
    assert "instrument.py" not in result.stderr_tail
    assert result.problem is not None and result.problem.steps == 5
    assert len(result.problem.observed_losses) == 5


def test_endless_training_times_out_with_partial_capture(tmp_path: Path):
    script = write(
        tmp_path,
        "forever.py",
        """
        import torch

        X = torch.randn(20, 2)
        y = X.sum(1, keepdim=True)
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        while True:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            optimizer.step()
        """,
    )
    result = capture_run(script, timeout=8)
    assert result.status == "timeout"
    assert "8 s wall-clock limit" in result.message
    assert 8 <= result.elapsed < 14
    assert result.steps_seen > 10
    problem = result.problem
    assert problem is not None and problem.steps >= 10
    assert problem.features.shape == (20, 2)
    assert len(problem.observed_losses) == problem.steps


def test_memory_hog_is_stopped(tmp_path: Path):
    script = write(
        tmp_path,
        "hog.py",
        """
        import torch

        chunks = []
        while True:
            chunks.append(torch.ones(25_000_000))
        """,
    )
    result = capture_run(script, memory_mb=1024, timeout=30)
    assert result.status == "memory", result.message
    assert "1024 MB memory limit" in result.message
    assert result.elapsed < 20


def test_writes_go_to_the_copy_not_the_users_folder(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("keep me\n")
    script = write(
        tmp_path,
        "writer.py",
        """
        from pathlib import Path

        Path(__file__).with_name("model.pt").write_text("weights")
        Path("notes.txt").write_text("overwritten")
        print("wrote", sorted(p.name for p in Path(".").iterdir()))
        """,
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    result = capture_run(script)
    assert result.status == "no-regression", result.message
    assert "trained nothing" in result.message
    assert "model.pt" in result.stdout_tail and "notes.txt" in result.stdout_tail
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


def test_two_layer_model_is_not_a_regression(tmp_path: Path):
    script = write(
        tmp_path,
        "mlp.py",
        """
        import torch

        X = torch.randn(20, 2)
        y = X.sum(1, keepdim=True)
        model = torch.nn.Sequential(
            torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for step in range(3):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            optimizer.step()
        """,
    )
    result = capture_run(script)
    assert result.status == "no-regression"
    assert "2 layers" in result.message and "one linear layer" in result.message
    assert result.problem is None and result.steps_seen == 3


def test_gradients_never_cleared_are_recorded(tmp_path: Path):
    script = write(
        tmp_path,
        "nozero.py",
        """
        import torch

        X = torch.randn(20, 2)
        y = X.sum(1, keepdim=True)
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for step in range(5):
            torch.nn.functional.mse_loss(model(X), y).backward()
            optimizer.step()
        """,
    )
    result = capture_run(script)
    assert result.status == "ok", result.message
    assert result.problem.optimizer.accumulate
    assert any("never cleared" in note for note in result.problem.notes)


def test_fixture_reading_csv(monkeypatch: pytest.MonkeyPatch):
    script = FIXTURES / "run_reads_csv.py"
    result = capture_run(script)
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    data = np.loadtxt(FIXTURES / "houses_small.csv", delimiter=",", skiprows=1, dtype=np.float32)
    raw = data[:, :4]
    scaled = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_array_equal(problem.features, scaled.astype(np.float64))
    np.testing.assert_array_equal(problem.targets, data[:, 4:].astype(np.float64))
    assert problem.rows == 40 and problem.optimizer.kind == "sgd" and problem.steps == 300
    here = run_here(script, monkeypatch)
    final = linear_params(here["model"])
    np.testing.assert_array_equal(problem.final_params[0], final[0])
    np.testing.assert_array_equal(problem.final_params[1], final[1])


def test_fixture_generated_data():
    result = capture_run(FIXTURES / "run_generated_data.py")
    assert result.status == "ok", result.message + result.stderr_tail
    problem = result.problem
    assert problem.features.shape == (1000, 2) and problem.targets.shape == (1000, 1)
    assert problem.loss == Loss(mean=False, factor=0.5, broadcast=False)
    assert problem.optimizer.kind == "manual"
    assert problem.optimizer.lr == pytest.approx(0.003, rel=1e-6)
    assert (problem.batch, problem.shuffle, problem.epochs, problem.steps) == (10, True, 3, 300)
    assert len(problem.observed_losses) == 300
    design = np.column_stack([problem.features, np.ones(1000)])
    solution = np.linalg.lstsq(design, problem.targets[:, 0], rcond=None)[0]
    np.testing.assert_allclose(solution, [2.0, -3.4, 4.2], atol=0.01)
    np.testing.assert_allclose(problem.final_params[0][:, 0], solution[:2], atol=0.01)


def test_copy_inputs_skips_hidden_venv_and_over_cap(tmp_path: Path):
    source = tmp_path / "project"
    (source / "data").mkdir(parents=True)
    (source / ".git").mkdir()
    (source / "venv").mkdir()
    (source / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (source / ".git" / "HEAD").write_text("ref\n")
    (source / "train.py").write_text("print('hi')\n")
    (source / "small.csv").write_text("1,2\n")
    (source / "data" / "rows.csv").write_text("3,4\n")
    (source / "big.bin").write_bytes(b"x" * 4096)
    work = tmp_path / "work"
    work.mkdir()
    report = copy_inputs(source / "train.py", work, cap=1024)
    copied = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    assert copied == ["data/rows.csv", "small.csv", "train.py"]
    assert report.skipped == ["big.bin"]
