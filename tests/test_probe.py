"""The probe on real numbers: the exact answer against numpy's lstsq, the replay against plain
torch training loops, and the seeds' verdicts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reference import lstsq

from advisor.probe.exact import Moments, solve, solve_moments
from advisor.probe.problem import Loss, Optimizer, Problem
from advisor.probe.replay import replay
from advisor.probe.verdict import judge
from advisor.rules.huge_learning_rate import RULE as HUGE_LEARNING_RATE
from advisor.rules.loss_shape_broadcast import RULE as LOSS_SHAPE_BROADCAST
from advisor.rules.tiny_learning_rate import RULE as TINY_LEARNING_RATE
from advisor.rules.unscaled_features import RULE as UNSCALED_FEATURES

ROOT = Path(__file__).resolve().parent.parent
SEED000 = np.loadtxt(ROOT / "tests" / "data" / "seed000.csv", delimiter=",")
LR_ADVISOR = str(Path(sys.executable).with_name("lr-advisor"))


def problem_of(x, y, bias=True, **settings) -> Problem:
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    loss = settings.pop("loss", Loss())
    optimizer = settings.pop("optimizer", None)
    return Problem(np.asarray(x, dtype=float), y, bias, loss, optimizer, **settings)


def random_problem(rows: int, width: int, outputs: int = 1, seed: int = 0, condition=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width))
    if condition is not None:  # columns scaled so that the data's condition number is this
        u, _, vt = np.linalg.svd(x, full_matrices=False)
        x = u @ np.diag(np.geomspace(1, 1 / condition, min(rows, width))) @ vt
    y = x @ rng.normal(size=(width, outputs)) + rng.normal(scale=0.1, size=(rows, outputs))
    return x, y


# -- the exact answer -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "width", "outputs", "condition"),
    [
        (200, 5, 1, None),  # tall
        (500, 3, 4, None),  # several outputs
        (8, 20, 1, None),  # wide: fewer rows than columns (lstsq's minimum-norm answer)
        (300, 6, 2, 1e7),  # ill-conditioned
    ],
)
@pytest.mark.parametrize("bias", [False, True])
def test_optimum_matches_lstsq(rows, width, outputs, condition, bias) -> None:
    x, y = random_problem(rows, width, outputs, condition=condition)
    found = solve(problem_of(x, y, bias))
    expected = lstsq(x, y, bias)
    np.testing.assert_allclose(found.stacked if bias else found.weights, expected, atol=1e-6)
    a = np.hstack([x, np.ones((rows, 1))]) if bias else x
    residual = a @ expected - y
    assert found.mse == pytest.approx(np.mean(residual**2), rel=1e-6, abs=1e-12)
    assert found.rank == np.linalg.matrix_rank(a)


def test_rank_deficient_columns_give_the_minimum_norm_answer() -> None:
    x, y = random_problem(100, 3)
    x = np.hstack([x, x[:, :1] + x[:, 1:2]])  # a fourth column that is the sum of two others
    found = solve(problem_of(x, y, bias=False))
    np.testing.assert_allclose(found.weights, np.linalg.pinv(x) @ y, atol=1e-8)
    assert found.rank == 3 and found.method == "lstsq"


def test_float32_input_is_solved_in_float64() -> None:
    x, y = random_problem(400, 4)
    found = solve(problem_of(x.astype(np.float32), y.astype(np.float32)))
    expected = lstsq(x.astype(np.float32).astype(float), y.astype(np.float32).astype(float), True)
    np.testing.assert_allclose(found.stacked, expected, rtol=1e-9, atol=1e-12)


def test_one_pass_over_chunks_equals_the_whole() -> None:
    x, y = random_problem(1000, 5, 2)
    chunks = [(x[i : i + 128], y[i : i + 128]) for i in range(0, 1000, 128)]
    moments = Moments.accumulate(chunks, bias=True)
    found = solve_moments(moments, True, Loss())  # no rows: from the sums alone
    np.testing.assert_allclose(found.stacked, lstsq(x, y, True), atol=1e-9)
    residual = np.hstack([x, np.ones((1000, 1))]) @ lstsq(x, y, True) - y
    assert found.residual_sum == pytest.approx(np.sum(residual**2), rel=1e-8)


def test_the_scripts_own_loss_definition() -> None:
    x, y = random_problem(50, 2)
    mean = solve(problem_of(x, y, loss=Loss(mean=True, factor=0.5)))
    total = solve(problem_of(x, y, loss=Loss(mean=False, factor=1.0)))
    assert total.loss == pytest.approx(2 * 50 * mean.loss)


def test_seed000_optimum() -> None:
    found = solve(problem_of(SEED000[:, :3], SEED000[:, 3], bias=False))
    assert found.loss == pytest.approx(364.128, abs=2e-3)
    np.testing.assert_allclose(found.weights.ravel(), [0.43197, 0.14436, 0.42414], atol=1e-4)
    assert solve(problem_of(SEED000[:, :3], SEED000[:, 3], bias=True)).loss == pytest.approx(
        274.44, abs=1e-2
    )


# -- the replay against torch ---------------------------------------------------------------
torch = pytest.importorskip("torch")


def torch_training(x, y, bias, optimizer, steps, batch=None, make=None, loss_fn=None):
    """A plain torch loop from the probe's own starting point; the final mean squared error."""
    torch.manual_seed(0)
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    model = torch.nn.Linear(x.shape[1], y.shape[1], bias=bias).double()
    start = replay_start(x.shape[1], y.shape[1], bias)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(start[0, : x.shape[1]].T))
        if bias:
            model.bias.copy_(torch.tensor(start[0, -1]))
    opt = make(model.parameters())
    rows = x.shape[0]
    size = batch or rows
    loss_fn = loss_fn or torch.nn.functional.mse_loss
    for step in range(steps):
        at = (step * size) % rows
        opt.zero_grad()
        loss_fn(model(xt[at : at + size]), yt[at : at + size]).backward()
        opt.step()
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(xt), yt))


def replay_start(width, outputs, bias):
    from advisor.probe.replay import initial_parameters

    problem = problem_of(np.zeros((2, width)), np.zeros((2, outputs)), bias)
    return initial_parameters(problem, count=1)


@pytest.mark.parametrize(
    ("kind", "settings", "make"),
    [
        ("sgd", {}, lambda p: torch.optim.SGD(p, lr=0.05)),
        ("sgd", {"momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
        (
            "sgd",
            {"momentum": 0.8, "nesterov": True},
            lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True),
        ),
        ("sgd", {"weight_decay": 0.1}, lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.1)),
        ("adam", {}, lambda p: torch.optim.Adam(p, lr=0.05)),
        (
            "adamw",
            {"weight_decay": 0.05},
            lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.05),
        ),
        ("rmsprop", {}, lambda p: torch.optim.RMSprop(p, lr=0.01)),
    ],
)
def test_full_batch_replay_matches_torch(kind, settings, make) -> None:
    x, y = random_problem(60, 3, 2, seed=3)
    x = x * [1.0, 3.0, 0.5] + [2.0, 0.0, -1.0]
    lr = make([torch.zeros(1, requires_grad=True)]).defaults["lr"]
    problem = problem_of(x, y, True, optimizer=Optimizer(kind, lr, **settings), steps=150)
    start = replay_start(3, 2, True)
    found = replay(problem, start=start, budget=10)
    expected = torch_training(x, y, True, None, 150, make=make)
    assert float(found.final[0]) == pytest.approx(expected, rel=1e-6)


def test_mini_batch_replay_matches_torch_in_the_same_order() -> None:
    x, y = random_problem(40, 2, 1, seed=5)
    problem = problem_of(
        x, y, True, optimizer=Optimizer("sgd", 0.1, momentum=0.5), batch=8, shuffle=False, epochs=30
    )
    found = replay(problem, start=replay_start(2, 1, True), budget=10)
    make = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5)  # noqa: E731
    expected = torch_training(x, y, True, None, 30 * 5, batch=8, make=make)
    assert not found.exact and float(found.final[0]) == pytest.approx(expected, rel=1e-6)


def test_broadcast_loss_replay_matches_torch() -> None:
    x, y = random_problem(30, 2, 1, seed=7)
    problem = problem_of(
        x,
        y,
        True,
        optimizer=Optimizer("sgd", 0.05),
        batch=10,
        shuffle=False,
        epochs=20,
        loss=Loss(broadcast=True),
    )
    found = replay(problem, start=replay_start(2, 1, True), budget=10)

    def flat_target_loss(prediction, target):
        return torch.nn.functional.mse_loss(prediction, target.view(-1))  # (B, 1) vs (B,)

    make = lambda p: torch.optim.SGD(p, lr=0.05)  # noqa: E731
    with pytest.warns(UserWarning, match="target size"):
        expected = torch_training(x, y, True, None, 60, 10, make, flat_target_loss)
    assert float(found.final[0]) == pytest.approx(expected, rel=1e-6)


# -- verdicts -------------------------------------------------------------------------------
def test_seed000_verdict() -> None:
    problem = problem_of(
        SEED000[:, :3],
        SEED000[:, 3],
        bias=False,
        optimizer=Optimizer("sgd", 1e-10),
        batch=5,
        epochs=10000,
        loss=Loss(broadcast=True),
    )
    verdict = judge(problem)
    assert verdict.optimum.loss == pytest.approx(364.128, abs=2e-3)
    assert verdict.status == "not converged"
    assert 364.2 < verdict.final < 600  # "the script ends near 500"; it depends on the start
    assert verdict.spread[0] < verdict.final < verdict.spread[1]
    assert verdict.slow_progress < 0.01  # the slow directions hardly move
    rules = {rule for rule, _ in verdict.reasons}
    assert {TINY_LEARNING_RATE.id, UNSCALED_FEATURES.id, LOSS_SHAPE_BROADCAST.id} <= rules
    best = verdict.best
    assert best is not None and not best.keeps_model
    assert best.optimum.loss == pytest.approx(274.44, abs=1e-2)
    assert best.epochs_needed <= 10
    # the fix's weights, in the script's units, are lstsq's with a bias
    np.testing.assert_allclose(
        np.append(best.weights.ravel(), best.bias),
        lstsq(SEED000[:, :3], SEED000[:, 3:], True).ravel(),
        rtol=1e-6,
    )
    assert float(np.median(best.replay.final)) == pytest.approx(274.44, abs=1e-2)


def test_d2l_style_training_converges_to_the_noise_level() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 2))
    y = x @ [2.0, -3.4] + 4.2 + rng.normal(scale=0.01, size=1000)
    problem = problem_of(
        x,
        y,
        bias=True,
        optimizer=Optimizer("manual", 0.03 / 10),
        batch=10,
        epochs=3,
        loss=Loss(mean=False, factor=0.5),
        init="zeros",
    )
    verdict = judge(problem)
    assert verdict.status == "converged"
    assert verdict.optimum.mse == pytest.approx(1e-4, rel=0.2)
    assert verdict.reasons == [] and verdict.fixes == []


def test_divergence_is_reported() -> None:
    x, y = random_problem(100, 3)
    problem = problem_of(x * 10, y, optimizer=Optimizer("sgd", 0.5), steps=100)
    verdict = judge(problem)
    assert verdict.status == "diverged"
    assert verdict.reasons[0][0] == HUGE_LEARNING_RATE.id


# -- end to end -----------------------------------------------------------------------------
def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LR_ADVISOR, "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_probes_the_seed000_fixture_without_running_it() -> None:
    done = run_cli("--format", "json", "fixtures/probe/seed000_closes_from_csv.py")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    (report,) = document["probe"]
    assert report["status"] == "not converged" and report["source"] == "facts"
    assert report["optimum"]["loss"] == pytest.approx(364.128, abs=2e-3)
    assert report["best_fix"]["optimum_loss"] == pytest.approx(274.44, abs=1e-2)
    by_id = {f["id"]: f for f in document["findings"]}
    assert by_id["LRA501"]["line"] == 16
    assert by_id["LRA301"]["confidence"] == "confirmed"
    assert "probe" in by_id["LRA203"]["evidence"]


SCHEDULED = """
import torch
from torch import nn
X = torch.randn(300, 3)
y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
{schedule}
for epoch in range(100):
    opt.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    opt.step()
    {step}
"""


@pytest.mark.parametrize(
    ("schedule", "step", "why"),
    [
        (
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.5)",
            "sched.step()",
            "(a scheduler changes the lr while training)",
        ),
        ("", "nn.utils.clip_grad_norm_(model.parameters(), 1.0)", "(the gradients are clipped)"),
    ],
    ids=["scheduler", "clipping"],
)
def test_a_training_that_cannot_be_replayed_says_why(
    tmp_path: Path, schedule: str, step: str, why: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCHEDULED.format(schedule=schedule, step=step))
    done = run_cli("--format", "json", str(script), cwd=tmp_path)
    (report,) = json.loads(done.stdout)["probe"]
    assert report["summary"].endswith("the update rule cannot be replayed " + why), report


def test_cli_static_skips_the_probe() -> None:
    done = run_cli("--static", "--format", "json", "fixtures/probe/seed000_closes_from_csv.py")
    document = json.loads(done.stdout)
    assert document["probe"] == [] and "LRA501" not in {f["id"] for f in document["findings"]}


def test_cli_data_option_gives_the_data(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import torch\n"
        "from my_project import load_houses\n"
        "X, y = load_houses()\n"
        "model = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=1e-9)\n"
        "for epoch in range(100):\n"
        "    opt.zero_grad()\n"
        "    loss = torch.nn.functional.mse_loss(model(X), y)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
    )
    rng = np.random.default_rng(2)
    table = np.column_stack(
        [rng.uniform(500, 3000, 80), rng.integers(1, 5, 80), rng.uniform(0, 50, 80)]
    )
    price = table @ [0.2, 10.0, -1.5] + 50 + rng.normal(size=80)
    csv = tmp_path / "houses.csv"
    np.savetxt(
        csv,
        np.column_stack([table, price]),
        delimiter=",",
        header="area,rooms,age,price",
        comments="",
    )
    quiet = run_cli("--format", "json", str(script))
    assert json.loads(quiet.stdout)["probe"][0]["status"] == "no data"
    done = run_cli("--format", "json", "--data", str(csv), "--target", "price", str(script))
    (report,) = json.loads(done.stdout)["probe"]
    assert report["source"] == "data file" and report["status"] == "not converged"
    expected = lstsq(table, price[:, None], True)
    np.testing.assert_allclose(
        np.append(np.ravel(report["optimum"]["weights"]), report["optimum"]["bias"]),
        expected.ravel(),
        rtol=1e-6,
    )
    assert run_cli("--target", "price", str(script)).returncode == 2


def test_rich_report_shows_the_panel(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "fixtures" / "probe", tmp_path / "probe", ignore=shutil.ignore_patterns("run_*")
    )
    done = run_cli("--format", "rich", str(tmp_path / "probe" / "seed000_closes_from_csv.py"))
    assert "lstsq optimum" in done.stdout and "proven fix" in done.stdout
    assert "274" in done.stdout


def test_plot_writes_the_loss_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "curves.png"
    done = run_cli("--plot", str(target), "fixtures/probe/seed000_closes_from_csv.py")
    assert done.returncode == 1, done.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_option_reads_npz_and_explains_bad_files(tmp_path: Path) -> None:
    from advisor.probe.datafile import DataError, DataOption, load

    x, y = random_problem(30, 2)
    np.savez(tmp_path / "xy.npz", X=x, y=y)
    features, targets, _ = load(DataOption(str(tmp_path / "xy.npz")))
    np.testing.assert_array_equal(features, x)
    np.testing.assert_array_equal(targets, y)
    (tmp_path / "bad.csv").write_text("a,b\n1,x\n")
    with pytest.raises(DataError, match="not a number"):
        load(DataOption(str(tmp_path / "bad.csv")))
    (tmp_path / "ok.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="no column 'd'"):
        load(DataOption(str(tmp_path / "ok.csv"), target="d"))


def test_cli_run_probes_a_csv_read_at_run_time() -> None:
    pytest.importorskip("torch")
    quiet = run_cli("--format", "json", "fixtures/probe/run_reads_csv_raw_units.py")
    assert json.loads(quiet.stdout)["probe"][0]["status"] == "no data"
    done = run_cli("--run", "--format", "json", "fixtures/probe/run_reads_csv_raw_units.py")
    document = json.loads(done.stdout)
    (report,) = document["probe"]
    assert report["source"] == "run" and report["status"] == "not converged"
    table = np.loadtxt(ROOT / "fixtures" / "probe" / "houses_small.csv", delimiter=",", skiprows=1)
    expected = lstsq(table[:, :4], table[:, 4:], True)
    found = np.append(np.ravel(report["optimum"]["weights"]), report["optimum"]["bias"])
    np.testing.assert_allclose(found, expected.ravel(), rtol=1e-5)
    assert report["replay_vs_script_loss_gap"] < 1e-4  # the replay follows the script's curve
    assert "LRA501" in {f["id"] for f in document["findings"]}
    assert report["best_fix"]["epochs_to_optimum"] is not None


def test_cli_run_probes_data_generated_at_run_time() -> None:
    pytest.importorskip("torch")
    done = run_cli("--run", "--format", "json", "fixtures/probe/run_generated_in_helper.py")
    (report,) = json.loads(done.stdout)["probe"]
    assert report["source"] == "run" and report["status"] == "not converged"
    assert report["problem"]["optimizer"]["kind"] == "manual"
    assert report["problem"]["optimizer"]["lr"] == pytest.approx(3e-5)
    assert report["problem"]["rows_per_step"] == 10 and report["problem"]["steps"] == 300
    assert report["optimum"]["mse"] == pytest.approx(1e-4, rel=0.2)  # the noise level
    converged = run_cli("--run", "--format", "json", "fixtures/probe/run_generated_data.py")
    assert json.loads(converged.stdout)["probe"][0]["status"] == "converged"


@pytest.mark.parametrize(
    "case", ["constant column", "n < p", "duplicated rows", "float16", "flat target", "3 targets"]
)
def test_awkward_data_gets_a_correct_answer(case: str) -> None:
    x, y = random_problem(40, 3, seed=11)
    if case == "constant column":
        x = np.hstack([x, np.full((40, 1), 5.0)])  # with the bias: rank-deficient
    elif case == "n < p":
        x, y = x[:2], y[:2]
    elif case == "duplicated rows":
        x, y = np.vstack([x, x[:10]]), np.vstack([y, y[:10]])
    elif case == "float16":
        x, y = x.astype(np.float16), y.astype(np.float16)
    elif case == "flat target":
        y = y[:, 0]
    elif case == "3 targets":
        y = np.hstack([y, 2 * y, -y])
    problem = problem_of(x, y, bias=True, optimizer=Optimizer("sgd", 0.05), steps=200)
    verdict = judge(problem)
    x64 = np.asarray(x, dtype=float)
    y64 = np.asarray(y, dtype=float).reshape(len(x64), -1)
    expected = np.linalg.pinv(np.hstack([x64, np.ones((len(x64), 1))])) @ y64  # minimum norm
    np.testing.assert_allclose(verdict.optimum.stacked, expected, atol=1e-6)
    assert verdict.status in ("converged", "not converged", "diverged")
    assert verdict.status == "diverged" or np.isfinite(verdict.final)
    if verdict.status == "diverged":  # a constant 5 column with the bias: λmax 52, 2/λmax < 0.05
        assert verdict.curvature.stable_step < 0.05


def test_data_with_nan_or_inf_gets_a_clear_message(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np\nimport torch\n"
        "d = np.loadtxt('d.csv', delimiter=',')\n"
        "X, y = torch.from_numpy(d[:, :2]).float(), torch.from_numpy(d[:, 2:]).float()\n"
        "model = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for epoch in range(10):\n"
        "    opt.zero_grad()\n"
        "    torch.nn.functional.mse_loss(model(X), y).backward()\n"
        "    opt.step()\n"
    )
    (tmp_path / "d.csv").write_text("1,2,3\n4,nan,6\n7,8,9\n1,inf,2\n")
    done = run_cli("--format", "json", str(script))
    (report,) = json.loads(done.stdout)["probe"]
    assert report["status"] == "no data" and "NaN or inf" in report["summary"]
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr


def test_json_output_is_strict_for_a_diverging_script() -> None:
    done = run_cli("--format", "json", "fixtures/rules/huge-learning-rate/bad_raw_closes_sgd.py")

    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    document = json.loads(done.stdout, parse_constant=refuse)
    (report,) = document["probe"]
    assert report["status"] == "diverged"
    by_id = {f["id"]: f for f in document["findings"]}
    assert by_id["LRA501"]["evidence"]["final_loss"] is None  # inf in the replay: null here


DATA_SCRIPT = """
import torch
X, y = load()
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(200):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
"""


@pytest.mark.parametrize(
    "case, expected",
    [
        ("float16 table", None),
        ("float32 table", None),
        ("float64 table", None),
        ("flat target", None),
        ("column target", None),
        ("two targets", "the model gives 1 output, the data has 2 targets"),
        ("target as a row", "the targets (1, 60) and the data (60, 3) have different numbers"),
        ("a NaN cell", "the data holds NaN or inf"),
    ],
)
def test_data_of_every_dtype_and_target_shape(tmp_path: Path, case: str, expected) -> None:
    """--data in any float width and target shape: the lstsq answer, or a one-line reason,
    never a crash or another regression than the script's (one output)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 3))
    y = x @ [1.0, -2.0, 0.5] + 0.3 + 0.01 * rng.normal(size=60)
    script = tmp_path / "train.py"
    script.write_text(DATA_SCRIPT)
    if case.endswith("table"):
        data = tmp_path / "d.npy"
        np.save(data, np.column_stack([x, y]).astype(case.split()[0]))
    elif case == "a NaN cell":
        data = tmp_path / "d.npy"
        x[7, 2] = np.nan
        np.save(data, np.column_stack([x, y]))
    else:
        target = {
            "flat target": y,
            "column target": y[:, None],
            "two targets": np.column_stack([y, -y]),
            "target as a row": y[None, :],
        }[case]
        data = tmp_path / "d.npz"
        np.savez(data, X=x, y=target)
    done = run_cli("--format", "json", "--data", str(data), str(script))
    assert "Traceback" not in done.stderr and done.returncode in (0, 1), done.stderr
    (report,) = json.loads(done.stdout)["probe"]
    if expected is not None:
        assert report["status"] == "failed" and expected in report["summary"], report
        assert str(data.name) in report["summary"]
        return
    stored = np.load(data).astype(float) if data.suffix == ".npy" else None
    rows = stored if stored is not None else np.column_stack([x, y])
    design_ = np.column_stack([rows[:, :3], np.ones(60)])
    reference = np.linalg.lstsq(design_, rows[:, 3], rcond=None)[0]
    weights = np.ravel(report["optimum"]["weights"])
    np.testing.assert_allclose(weights, reference[:3], rtol=1e-6, atol=1e-9)
    assert report["status"] == "converged"
