"""The probe on data larger than memory: the full data's sums from one streaming pass, and a
sample of rows for mini-batch training, give the answers the rows in memory give."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from reference import lstsq, relative

from advisor.probe.datafile import DataError, DataOption, given, streamed
from advisor.probe.exact import Moments, solve, solve_moments
from advisor.probe.moments import combine_centred
from advisor.probe.partitions import open_table, partitions, stream
from advisor.probe.problem import Loss, Optimizer, Problem
from advisor.probe.replay import replay
from advisor.probe.report import sampling_note
from advisor.probe.verdict import (
    _to_original_units,
    curvature,
    judge,
    standardized_problem,
)

ROOT = Path(__file__).resolve().parent.parent
LR_ADVISOR = str(Path(sys.executable).with_name("lr-advisor"))
EXACT = 1e-10  # relative agreement of the streamed answers with the in-memory ones


def houses(rows: int, seed: int = 2) -> np.ndarray:
    """Columns in raw units (area, rooms, age) and a price: ill-conditioned, noisy enough that
    the optimum's loss is not a tiny difference of large sums."""
    rng = np.random.default_rng(seed)
    table = np.column_stack(
        [rng.uniform(500, 3000, rows), rng.integers(1, 5, rows), rng.uniform(0, 50, rows)]
    )
    price = table @ [0.2, 10.0, -1.5] + 50 + rng.normal(scale=20.0, size=rows)
    return np.column_stack([table, price])


def streamed_problem(path: Path, memory: Problem, sample_rows: int = 200_000, **option) -> Problem:
    """The in-memory problem's settings on the sums and sample of one pass over a file."""
    found = stream(partitions(open_table(DataOption(str(path), **option)), 16 << 10), sample_rows)
    return replace(
        memory,
        features=found.sample_x,
        targets=found.sample_y,
        moments=found.moments,
        total_rows=found.rows,
    )


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> tuple[Path, np.ndarray]:
    table = houses(3000)
    path = tmp_path_factory.mktemp("big") / "houses.npy"
    np.save(path, table)
    return path, table


# -- the full data's answers from its sums --------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_sums_give_the_in_memory_answers(table_file, bias: bool) -> None:
    path, table = table_file
    x, y = table[:, :3], table[:, 3:]
    memory = Problem(x, y, bias, Loss(), Optimizer("sgd", 1e-7), epochs=30)
    big = streamed_problem(path, memory, sample_rows=500)
    assert big.rows == 3000 and big.sample_rows == 500 and big.sampled
    assert len(partitions(open_table(DataOption(str(path))), 16 << 10)) > 4  # many pieces

    # the optimum: the same as the rows give, and lstsq's
    mine, theirs = solve(big), solve(memory)
    expected = lstsq(x, y, bias)
    stacked = mine.stacked if bias else mine.weights
    assert relative(stacked, expected) < EXACT
    assert relative(stacked, theirs.stacked if bias else theirs.weights) < EXACT
    assert mine.loss == pytest.approx(theirs.loss, rel=EXACT)
    assert mine.rank == theirs.rank

    # the curvature, and the standardised problem's
    bent, flat = curvature(big), curvature(memory)
    assert relative(bent.eigenvalues, flat.eigenvalues) < EXACT
    assert bent.stable_step == pytest.approx(flat.stable_step, rel=EXACT)
    assert bent.standardized_condition == pytest.approx(flat.standardized_condition, rel=EXACT)

    # full-batch gradient descent: the closed form on the sums, loss curve and weights
    start = np.zeros((1, 3 + bias, 1))
    run = replay(big, steps=40, start=start)
    rows_run = replay(memory, steps=40, start=start)
    assert run.exact and run.sample_rows is None
    assert relative(run.losses, rows_run.losses) < EXACT
    assert relative(run.weights, rows_run.weights) < EXACT

    # the standardised problem: its optimum, and the weights back in the script's units
    z_big, z_memory = standardized_problem(big), standardized_problem(memory)
    assert z_big.rows == 3000 and z_big.sample_rows == 500
    z_mine, z_theirs = solve(z_big), solve(z_memory)
    assert relative(z_mine.stacked, z_theirs.stacked) < EXACT
    weights, intercept = _to_original_units(big, z_mine.weights, z_mine.bias)
    assert relative(np.vstack([weights, intercept[None]]), lstsq(x, y, True)) < EXACT
    theirs_weights, theirs_intercept = _to_original_units(memory, z_theirs.weights, z_theirs.bias)
    assert relative(weights, theirs_weights) < EXACT
    assert relative(intercept, theirs_intercept) < EXACT


def test_the_verdict_and_its_proven_fix_from_the_sums(table_file) -> None:
    path, table = table_file
    memory = Problem(table[:, :3], table[:, 3:], False, Loss(), Optimizer("sgd", 1e-9), epochs=50)
    big = streamed_problem(path, memory, sample_rows=300)
    mine, theirs = judge(big), judge(memory)
    assert mine.status == theirs.status == "not converged"
    assert mine.final == pytest.approx(theirs.final, rel=1e-8)  # full batch: exact on the sums
    assert {r for r, _ in mine.reasons} == {r for r, _ in theirs.reasons}
    best, expected = mine.best, theirs.best
    assert best.label == expected.label and best.epochs_needed == expected.epochs_needed
    assert not best.keeps_model  # standardise and add a bias
    fitted = np.append(best.weights.ravel(), best.bias)
    assert relative(fitted, lstsq(table[:, :3], table[:, 3:], True).ravel()) < EXACT
    assert relative(fitted, np.append(expected.weights.ravel(), expected.bias)) < EXACT
    assert sampling_note(mine) is None  # full batch: every row through the sums


def test_moments_without_bias_are_a_slice_of_those_with() -> None:
    table = houses(500)
    chunks = [(table[i : i + 64, :3], table[i : i + 64, 3:]) for i in range(0, 500, 64)]
    with_bias = Moments.accumulate(chunks, bias=True)
    without = Moments.accumulate(chunks, bias=False)
    sliced = with_bias.without_bias()
    np.testing.assert_array_equal(sliced.gram, without.gram)
    np.testing.assert_array_equal(sliced.cross, without.cross)
    mean, spread = with_bias.column_statistics()
    np.testing.assert_allclose(mean, table[:, :3].mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(spread, table[:, :3].std(axis=0), rtol=1e-10)


def test_a_constant_column_is_dropped_from_the_standardised_sums() -> None:
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.normal(size=800), np.full(800, 0.1), rng.normal(3, 2, 800)])
    y = x[:, :1] - 2 * x[:, 2:] + 1.0 + rng.normal(scale=0.5, size=(800, 1))
    memory = Problem(x, y, False, Loss(), Optimizer("sgd", 0.01), epochs=5)
    chunks = [(x[i : i + 100], y[i : i + 100]) for i in range(0, 800, 100)]
    moments = Moments.accumulate(chunks, bias=True)
    big = replace(memory, features=x[:50], targets=y[:50], moments=moments, total_rows=800)
    z = standardized_problem(big)
    assert z.width == 2 and z.rows == 800  # 0.1 summed 800 times is not exactly 80: still 0
    z_mine, z_theirs = solve(z), solve(standardized_problem(memory))
    weights, intercept = _to_original_units(big, z_mine.weights, z_mine.bias)
    found = np.vstack([weights, intercept[None]])
    expected = lstsq(x[:, [0, 2]], y, True)  # the constant column's weight 0, in the bias
    assert relative(found, np.insert(expected, 1, 0.0, axis=0)) < EXACT
    assert z_mine.loss == pytest.approx(z_theirs.loss, rel=EXACT)


def offset_table(rows: int = 20_000, seed: int = 9) -> np.ndarray:
    """float32 columns whose means are 10⁴ times their spreads (a timestamp, a latitude): the
    raw sums XᵀX cancel to about 8 digits when centred, the centred sums do not."""
    rng = np.random.default_rng(seed)
    spread = np.array([0.1, 1.0, 5.0])
    x = rng.normal(size=(rows, 3)) * spread + spread * 1e4
    y = x @ [[3.0], [-1.0], [0.2]] + rng.normal(scale=0.5, size=(rows, 1))
    return np.hstack([x, y]).astype(np.float32)


def test_centred_sums_keep_the_digits_the_raw_sums_lose() -> None:
    table = offset_table()
    rows = table.astype(float)
    expected = lstsq(rows[:, :3], rows[:, 3:], True)
    a = np.hstack([rows[:, :3], np.ones((len(rows), 1))])
    residual = float(np.sum((a @ expected - rows[:, 3:]) ** 2))
    blocks = Moments.from_table(table, range(3), 3, rows=1000)  # float32 read as it is
    chunks = [(rows[i : i + 3000, :3], rows[i : i + 3000, 3:]) for i in range(0, 20_000, 3000)]
    summed = Moments.accumulate(chunks, bias=True, centred=True)
    halves = [
        Moments.accumulate(chunks[:3], True, True),
        Moments.accumulate(chunks[3:], True, True),
    ]
    mean, scatter = combine_centred(*halves)
    merged = replace(halves[0].merge(halves[1]), mean=mean, scatter=scatter)
    for moments in (blocks, summed, merged):
        found = solve_moments(moments, True, Loss())
        assert found.method == "normal equations (centred)"
        assert relative(found.stacked, expected) < EXACT
        assert found.residual_sum == pytest.approx(residual, rel=1e-9)
        np.testing.assert_allclose(moments.gram, summed.gram, rtol=1e-13)
        np.testing.assert_allclose(moments.cross, summed.cross, rtol=1e-13)
    raw = replace(blocks, mean=None, scatter=None)  # the raw sums alone lose digits here
    assert relative(solve_moments(raw, True, Loss()).stacked, expected) > 100 * EXACT
    # the columns' spreads, the standardised fix and its weights in the script's units
    problem = Problem(rows[:500, :3], rows[:500, 3:], True, Loss(), Optimizer("sgd", 1e-9))
    big = replace(problem, moments=blocks, total_rows=20_000, epochs=3)
    mean, spread = blocks.column_statistics()
    np.testing.assert_allclose(spread, rows[:, :3].std(axis=0), rtol=1e-9)
    z = standardized_problem(big)
    np.testing.assert_allclose(np.diag(z.moments.gram)[:3], 20_000, rtol=1e-12)
    fixed = solve(z)
    weights, intercept = _to_original_units(big, fixed.weights, fixed.bias)
    assert relative(np.vstack([weights, intercept[None]]), expected) < EXACT
    # the verdict: every loss from the centred sums, the fix proven on them
    verdict = judge(replace(big, optimizer=Optimizer("adam", 0.01), batch=32), budget=0.3)
    assert verdict.optimum.loss == pytest.approx(residual / 20_000, rel=1e-9)
    assert verdict.final > verdict.optimum.loss and verdict.replay.sample_rows == 500
    best = verdict.best
    assert best.epochs_needed is not None
    assert relative(np.vstack([best.weights, best.bias[None]]), expected) < EXACT


def test_from_table_reads_any_columns_of_any_dtype() -> None:
    table = offset_table(3000)
    for features, target in ((range(3), 3), ([2, 0], 1), ([3], 0)):
        found = Moments.from_table(table, features, target, rows=700)
        x = table[:, list(features)].astype(float)
        y = table[:, [target]].astype(float)
        expected = Moments.accumulate([(x, y)], bias=True, centred=True)
        for name in ("gram", "cross", "target_square", "target_sum", "mean", "scatter"):
            np.testing.assert_allclose(getattr(found, name), getattr(expected, name), rtol=1e-12)
        assert found.rows == 3000


# -- mini-batch training on a sample --------------------------------------------------------
def test_a_sample_that_holds_every_row_replays_the_same_batches(table_file) -> None:
    path, table = table_file
    optimizer = Optimizer("sgd", 2e-7, momentum=0.5)
    memory = Problem(table[:, :3], table[:, 3:], True, Loss(), optimizer, batch=64, epochs=3)
    big = streamed_problem(path, memory)  # the sample keeps all 3000 rows, in the file's order
    assert big.sample_rows == big.rows and not big.sampled
    start = np.zeros((1, 4, 1))
    mine, theirs = replay(big, start=start, budget=10), replay(memory, start=start, budget=10)
    assert mine.steps == theirs.steps == 3 * 47 and mine.sample_rows is None
    assert relative(mine.losses, theirs.losses) < 1e-9
    assert relative(mine.weights, theirs.weights) < 1e-9


def test_full_batch_adam_steps_on_the_exact_gradient(table_file) -> None:
    path, table = table_file
    memory = Problem(table[:, :3], table[:, 3:], True, Loss(), Optimizer("adam", 0.5), steps=200)
    big = streamed_problem(path, memory, sample_rows=100)
    mine, theirs = replay(big, budget=10), replay(memory, budget=10)
    assert not mine.exact and mine.sample_rows is None  # the sums give the whole gradient
    assert relative(mine.losses, theirs.losses) < 1e-8


def test_mini_batch_training_on_a_sample_states_it_and_lands_near(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20_000, 3)) * [1.0, 2.0, 0.5]
    y = x @ [[1.5], [-0.7], [3.0]] + 2.0 + rng.normal(scale=0.3, size=(20_000, 1))
    np.save(tmp_path / "wide.npy", np.hstack([x, y]))
    memory = Problem(x, y, True, Loss(), Optimizer("sgd", 2e-4), batch=32, epochs=2)
    big = streamed_problem(tmp_path / "wide.npy", memory, sample_rows=2_000)
    assert big.sampled and big.steps_per_epoch == 625 and big.total_steps == 1250
    verdict, reference = judge(big, budget=5), judge(memory, budget=5)
    run = verdict.replay
    assert run.sample_rows == 2_000 and run.steps == 1250 and not run.exact
    # the sample's batches have the full data's gradient in expectation: the same way down
    assert verdict.final == pytest.approx(reference.final, rel=0.05)
    assert verdict.optimum.loss == pytest.approx(reference.optimum.loss, rel=EXACT)
    note = sampling_note(verdict)
    assert "uniform sample of 2,000 of 20,000 rows" in note and "625 per epoch" in note
    short = judge(replace(big, epochs=400), budget=0.05)  # cut short: the rest extrapolated
    assert short.replay.extrapolated and "extrapolated" in sampling_note(short)


# -- `--data` end to end --------------------------------------------------------------------
SCRIPT = (
    "import torch\n"
    "from my_project import load_houses\n"
    "X, y = load_houses()\n"
    "model = torch.nn.Linear(3, 1)\n"
    "opt = torch.optim.SGD(model.parameters(), lr=1e-9)\n"
    "data = torch.utils.data.TensorDataset(X, y)\n"
    "loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)\n"
    "for epoch in range(3):\n"
    "    for xb, yb in loader:\n"
    "        opt.zero_grad()\n"
    "        torch.nn.functional.mse_loss(model(xb), yb).backward()\n"
    "        opt.step()\n"
)


def probe_json(tmp_path: Path, data: Path, stream_bytes: int | None, *extra: str) -> dict:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LR_ADVISOR_")}
    if stream_bytes is not None:
        env["LR_ADVISOR_STREAM_BYTES"] = str(stream_bytes)
        env["LR_ADVISOR_SAMPLE_ROWS"] = "1000"
    done = subprocess.run(
        [LR_ADVISOR, "--no-cache", "--format", "json", "--budget", "0.3", "--data", str(data)]
        + [*extra, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "Traceback" not in done.stderr, done.stderr
    (report,) = json.loads(done.stdout)["probe"]
    return report


def fitted(report: dict) -> np.ndarray:
    return np.append(np.ravel(report["optimum"]["weights"]), report["optimum"]["bias"])


@pytest.fixture(scope="module")
def houses_table() -> np.ndarray:
    return houses(4000, seed=5)


@pytest.mark.parametrize("kind", ["npy", "csv"])
def test_cli_streams_a_large_file_to_the_same_optimum(
    tmp_path, houses_table, kind, monkeypatch
) -> None:
    path = tmp_path / f"houses.{kind}"
    if kind == "npy":
        np.save(path, houses_table)
    else:
        np.savetxt(path, houses_table, delimiter=",", header="area,rooms,age,price", comments="")
    assert not streamed(DataOption(str(path)))  # small: read whole ...
    with monkeypatch.context() as patched:
        patched.setenv("LR_ADVISOR_STREAM_BYTES", "1")
        assert streamed(DataOption(str(path)))  # ... unless above the threshold
    whole = probe_json(tmp_path, path, None)
    big = probe_json(tmp_path, path, 1)
    expected = lstsq(houses_table[:, :3], houses_table[:, 3:], True).ravel()
    assert relative(fitted(whole), expected) < 1e-9  # the JSON rounds to 12 digits
    assert relative(fitted(big), fitted(whole)) < 1e-9
    assert big["optimum"]["loss"] == pytest.approx(whole["optimum"]["loss"], rel=EXACT)
    assert big["problem"]["rows"] == whole["problem"]["rows"] == 4000
    assert big["status"] == whole["status"] == "not converged"
    assert any("streamed in one pass: 4,000 rows" in note for note in big["notes"])
    assert any("uniform sample of 1,000 of 4,000 rows" in note for note in big["notes"])
    assert big["script"]["sample_rows"] == 1000 and whole["script"]["sample_rows"] is None
    assert big["script"]["final_loss"] == pytest.approx(whole["script"]["final_loss"], rel=0.1)


def test_a_folder_of_parquet_files_gives_the_same_optimum(tmp_path, houses_table) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")

    folder = tmp_path / "houses"
    folder.mkdir()
    names = ["area", "rooms", "age", "price"]
    for i, start in enumerate(range(0, 4000, 1500)):
        part = houses_table[start : start + 1500]
        columns = {name: part[:, j] for j, name in enumerate(names)}
        pq.write_table(pa.table(columns), folder / f"part{i}.parquet", row_group_size=400)
    assert streamed(DataOption(str(folder)))  # a folder is always streamed
    report = probe_json(tmp_path, folder, None, "--target", "price")
    assert report["source"] == "data file" and report["problem"]["rows"] == 4000
    expected = lstsq(houses_table[:, :3], houses_table[:, 3:], True).ravel()
    assert relative(fitted(report), expected) < 1e-9
    whole = houses_table.copy()
    np.save(tmp_path / "whole.npy", whole)
    assert (
        relative(fitted(report), fitted(probe_json(tmp_path, tmp_path / "whole.npy", None))) < 1e-9
    )
    assert any("streamed in one pass: 4,000 rows" in note for note in report["notes"])


def test_bad_large_files_get_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LR_ADVISOR_STREAM_BYTES", "1")
    (tmp_path / "nan.csv").write_text("a,b,c\n1,2,3\n4,nan,6\n7,8,9\n1,inf,2\n")
    found = given(DataOption(str(tmp_path / "nan.csv")))
    assert found.nonfinite == 2 and found.rows == 4
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY not really")
    for name in ("bad.csv", "empty", "broken.npy"):
        with pytest.raises(DataError) as error:
            given(DataOption(str(tmp_path / name)))
        assert "\n" not in str(error.value) and name in str(error.value)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.replace("Linear(3, 1)", "Linear(2, 1)"))
    done = subprocess.run(
        [LR_ADVISOR, "--no-cache", "--format", "json", "--data", str(tmp_path / "nan.csv")]
        + [str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LR_ADVISOR_STREAM_BYTES": "1"},
    )
    (report,) = json.loads(done.stdout)["probe"]
    assert report["status"] == "failed" and "NaN or inf (2 cells)" in report["summary"]


# -- memory ---------------------------------------------------------------------------------
PASS = """
import sys
from advisor.probe.datafile import DataOption
from advisor.probe.partitions import open_table, partitions, stream
found = stream(partitions(open_table(DataOption(sys.argv[1])), 4 << 20), sample_rows=1000)
peak = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]  # this process's own
print(found.rows, int(peak) / 1024)
"""


def test_memory_does_not_grow_with_the_rows(tmp_path: Path) -> None:
    peaks = {}
    rng = np.random.default_rng(0)
    block = rng.normal(size=(100_000, 11))
    for rows in (100_000, 1_000_000):
        path = tmp_path / f"t{rows}.npy"
        table = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, 11))
        for start in range(0, rows, 100_000):
            table[start : start + 100_000] = block
        table.flush()
        del table
        done = subprocess.run(
            [sys.executable, "-c", PASS, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=60,
        )
        counted, peak = done.stdout.split()
        assert int(counted) == rows
        peaks[rows] = float(peak)
        path.unlink()
    # 88 MB of rows against 8.8 MB: the peak is one chunk and one piece, not the file
    assert peaks[1_000_000] - peaks[100_000] < 16, peaks
