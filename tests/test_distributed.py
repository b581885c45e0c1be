"""`--scheduler`: the streaming pass on a Dask cluster gives the local pass's answer.

A LocalCluster of 3 worker processes (one, shared by the module) reads tables cut into many
small partitions, so that the tree of merges has several levels; the sums, the checks and the
sample must be those of `partitions.stream`, and the optimum lstsq's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from reference import lstsq, relative  # noqa: E402

from advisor.probe import distributed as on_dask  # noqa: E402
from advisor.probe import partitions as tables  # noqa: E402
from advisor.probe.datafile import DataError, DataOption, stream_any  # noqa: E402
from advisor.probe.exact import solve_moments  # noqa: E402
from advisor.probe.partitions import (  # noqa: E402
    open_table,
    partial,
    partitions,
    stream,
)
from advisor.probe.problem import Loss  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LR_ADVISOR = str(Path(sys.executable).with_name("lr-advisor"))
EXACT = 1e-10  # the cluster's answers against the local pass's, relative
NAMES = ["area", "rooms", "age", "distance", "price"]


@pytest.fixture(scope="module")
def scheduler():
    """The address of a LocalCluster of 3 worker processes, for the whole module."""
    cluster = on_dask.local_cluster(3)  # processes, 1 thread each, no dashboard
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def houses(rows: int, seed: int = 3) -> np.ndarray:
    """Four features in different units and a noisy price."""
    rng = np.random.default_rng(seed)
    table = np.column_stack(
        [
            rng.uniform(500, 3000, rows),
            rng.integers(1, 6, rows),
            rng.uniform(0, 50, rows),
            rng.exponential(5.0, rows),
        ]
    )
    price = table @ [0.2, 10.0, -1.5, -3.0] + 50 + rng.normal(scale=20.0, size=rows)
    return np.column_stack([table, price])


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return houses(6000)


@pytest.fixture(scope="module")
def files(tmp_path_factory, table) -> dict[str, Path]:
    """The same table as a .npy, a CSV with a header and (with pyarrow) a parquet folder."""
    folder = tmp_path_factory.mktemp("tables")
    np.save(folder / "houses.npy", table)
    np.savetxt(
        folder / "houses.csv",
        table,
        delimiter=",",
        header=",".join(NAMES),
        comments="",
        fmt="%.17g",
    )
    made = {"npy": folder / "houses.npy", "csv": folder / "houses.csv"}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return made
    parquet = folder / "parquet"
    parquet.mkdir()
    for i, start in enumerate(range(0, len(table), 2000)):
        part = table[start : start + 2000]
        columns = {name: part[:, j] for j, name in enumerate(NAMES)}
        pq.write_table(pa.table(columns), parquet / f"part{i}.parquet", row_group_size=250)
    made["parquet"] = parquet
    return made


def cut(path: Path, target_bytes: int, **option) -> list:
    return partitions(open_table(DataOption(str(path), **option)), target_bytes)


def assert_same(found, expected) -> None:
    """The cluster's pass against the local one: sums to 1e-10, checks and sample equal."""
    for name in ("gram", "cross", "target_square", "target_sum"):
        assert relative(getattr(found.moments, name), getattr(expected.moments, name)) < EXACT
    assert found.rows == expected.rows == found.moments.rows
    assert found.nonfinite == expected.nonfinite
    assert found.largest == expected.largest
    np.testing.assert_array_equal(found.sample_x, expected.sample_x)
    np.testing.assert_array_equal(found.sample_y, expected.sample_y)
    a = solve_moments(found.moments, True, Loss())
    b = solve_moments(expected.moments, True, Loss())
    assert relative(a.stacked, b.stacked) < EXACT
    assert a.loss == pytest.approx(b.loss, rel=EXACT)


# -- the same answer as the local pass ------------------------------------------------------
@pytest.mark.parametrize("kind", ["npy", "csv", "parquet"])
def test_the_cluster_gives_the_local_answer(scheduler, files, table, kind) -> None:
    if kind not in files:
        pytest.skip("pyarrow is not installed")
    parts = cut(files[kind], 8 << 10, target="price" if kind != "npy" else None)
    assert len(parts) > 8 * 2  # the tree has three levels or more
    expected = stream(parts, sample_rows=700)
    found = on_dask.stream_on_dask(parts, scheduler, sample_rows=700)
    assert_same(found, expected)
    assert found.rows == len(table) and found.sample_x.shape == (700, 4)
    assert found.cluster is not None and "3 workers" in found.cluster
    optimum = solve_moments(found.moments, True, Loss())
    assert relative(optimum.stacked, lstsq(table[:, :-1], table[:, -1:], True)) < 1e-8
    # the sample is rows of the table, in the table's order
    rows = {tuple(r) for r in table[:, :4]}
    assert all(tuple(r) in rows for r in found.sample_x)


def test_a_deep_tree_and_stream_any(scheduler, files) -> None:
    parts = cut(files["npy"], 4 << 10)  # 6000 rows of 40 bytes: 59 partitions
    expected = stream(parts, sample_rows=500)
    deep = on_dask.stream_on_dask(parts, scheduler, sample_rows=500, fan_in=2)  # 6 levels
    assert_same(deep, expected)
    assert_same(stream_any(parts, scheduler, sample_rows=500), expected)
    assert stream_any(parts, None, sample_rows=500).cluster is None  # here: `stream` itself


def test_the_sample_does_not_depend_on_the_partitioning(scheduler, files, table) -> None:
    """Keys come from (seed, file, place in the file): any cut, here or there, same rows."""
    samples = [stream(cut(files["csv"], size, target="price"), 400) for size in (1 << 30, 5000)]
    samples.append(on_dask.stream_on_dask(cut(files["csv"], 3000, target="price"), scheduler, 400))
    for other in samples[1:]:
        np.testing.assert_array_equal(other.sample_x, samples[0].sample_x)
    npy = stream(cut(files["npy"], 1 << 12), 400)  # another file kind: other places, other keys
    assert not np.array_equal(npy.sample_x, samples[0].sample_x)
    other_seed = stream(cut(files["csv"], 1 << 30, target="price"), 400, seed=1)
    assert not np.array_equal(other_seed.sample_x, samples[0].sample_x)
    # uniform: the chosen rows spread evenly over the table (each tenth expects 40 +- 6)
    index = {tuple(r): i for i, r in enumerate(table[:, :4])}
    chosen = np.array([index[tuple(r)] for r in samples[0].sample_x])
    assert np.all(np.diff(chosen) > 0)  # in the table's order, no row twice
    counts = np.histogram(chosen, bins=10, range=(0, len(table)))[0]
    assert counts.min() > 15 and counts.max() < 65, counts


def test_nan_cells_are_counted_the_same(scheduler, tmp_path) -> None:
    table = houses(900, seed=8)
    table[[3, 400, 401, 899], [0, 2, 4, 1]] = np.nan
    table[10, 3] = np.inf
    path = tmp_path / "holes.csv"
    np.savetxt(path, table, delimiter=",", header=",".join(NAMES), comments="", fmt="%.17g")
    parts = cut(path, 2000, target="price")
    expected = stream(parts, sample_rows=100)
    found = on_dask.stream_on_dask(parts, scheduler, sample_rows=100)
    assert found.nonfinite == expected.nonfinite == 5
    assert found.largest == expected.largest == np.nanmax(np.abs(table[np.isfinite(table)]))
    assert found.rows == 900 and np.array_equal(found.sample_x, expected.sample_x, equal_nan=True)


def test_too_few_rows_under_the_bound_goes_again(scheduler, files, monkeypatch) -> None:
    """The bound that spares the network most rows is checked: too low, a second pass."""
    parts = cut(files["npy"], 8 << 10)
    expected = stream(parts, sample_rows=600)
    passes = []
    tree = on_dask._tree

    def counted(client, tasks, sample_rows, seed, bound, fan_in):
        passes.append(bound)
        return tree(client, tasks, sample_rows, seed, bound, fan_in)

    monkeypatch.setattr(on_dask, "_tree", counted)
    assert_same(on_dask.stream_on_dask(parts, scheduler, sample_rows=600), expected)
    assert len(passes) == 1 and passes[0] is not None  # the table's rows are known: one pass
    monkeypatch.setattr(on_dask, "sample_bound", lambda parts, rows: tables.KEYS // 100)
    assert_same(on_dask.stream_on_dask(parts, scheduler, sample_rows=600), expected)
    assert passes[1:] == [tables.KEYS // 100, None]  # 1% of 6000 rows is not 600: again
    monkeypatch.undo()
    # the real bound: each partition sends about its share of the sample, not 600 rows
    bound = on_dask.sample_bound(parts, 600)
    assert bound > tables.KEYS * 600 // 6000
    held = [partial(p, 0, 600, 0, bound).sample.held for p in parts]
    assert sum(held) < 1.5 * 600 and max(held) < 100, held
    assert max(partial(p, 0, 600, 0).sample.held for p in parts) == 204  # without: every row
    csv = cut(files["csv"], 8 << 10, target="price")
    assert 1000 < tables._expected_rows(csv) <= 6000  # a CSV's rows: estimated low


def test_the_local_pass_goes_again_when_too_few_rows_fall_under_the_bound(
    files, monkeypatch
) -> None:
    parts = cut(files["npy"], 8 << 10)
    expected = stream(parts, sample_rows=600)
    monkeypatch.setattr(tables, "sample_bound", lambda parts, rows: tables.KEYS // 100)
    assert_same(stream(parts, sample_rows=600), expected)


def test_a_file_the_workers_cannot_open_is_one_line(scheduler, tmp_path) -> None:
    path = tmp_path / "gone.npy"
    np.save(path, houses(300))
    parts = cut(path, 4000)
    path.unlink()  # here when cut, not there when read: as on a worker without the share
    with pytest.raises(DataError) as error:
        on_dask.stream_on_dask(parts, scheduler, sample_rows=50)
    message = str(error.value)
    assert "\n" not in message and "gone.npy" in message
    assert "same path on every worker" in message


def test_scheduler_values() -> None:
    assert on_dask.parse_scheduler("local:3") == ("local", 3)
    assert on_dask.parse_scheduler("local")[0] == "local"
    assert on_dask.parse_scheduler("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert on_dask.parse_scheduler("scheduler:8786") == ("address", "scheduler:8786")
    for bad in ("local:0", "local:x", "cluster", ""):
        with pytest.raises(ValueError):
            on_dask.parse_scheduler(bad)
    with pytest.raises(on_dask.SchedulerError, match="cannot reach a Dask scheduler"):
        on_dask.stream_on_dask([], "tcp://127.0.0.1:1", seconds=1)


# -- the command line -----------------------------------------------------------------------
SCRIPT = (
    "import torch\n"
    "from my_project import load_houses\n"
    "X, y = load_houses()\n"
    "model = torch.nn.Linear(4, 1)\n"
    "opt = torch.optim.SGD(model.parameters(), lr=1e-9)\n"
    "data = torch.utils.data.TensorDataset(X, y)\n"
    "loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)\n"
    "for epoch in range(3):\n"
    "    for xb, yb in loader:\n"
    "        opt.zero_grad()\n"
    "        torch.nn.functional.mse_loss(model(xb), yb).backward()\n"
    "        opt.step()\n"
)


def lr_advisor(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 120):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LR_ADVISOR_")}
    return subprocess.run(
        [LR_ADVISOR, "--no-cache", "--format", "json", *args, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
    )


def test_usage_errors_are_one_line_and_exit_2(tmp_path, files) -> None:
    data = str(files["npy"])
    cases = {
        ("--scheduler", "local:2"): "--scheduler computes the sums of --data FILE",
        ("--data", data, "--scheduler", "cluster"): "use an address such as tcp://host:8786",
        ("--data", data, "--scheduler", "tcp://127.0.0.1:1"): "cannot reach a Dask scheduler",
    }
    for args, expected in cases.items():
        done = lr_advisor(tmp_path, *args, env={"LR_ADVISOR_SCHEDULER_TIMEOUT": "1"})
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("lr-advisor: error: ") and expected in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stdout == ""


def test_without_dask_the_option_says_what_to_install(tmp_path, files) -> None:
    hide = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('dask', 'distributed'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from advisor.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide, "--data", str(files["npy"]), "--scheduler", "local:2"]
        + [str(tmp_path / "train.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert (
        done.stderr == "lr-advisor: error: --scheduler needs dask: pip install 'lr-advisor[dask]'\n"
    )


@pytest.mark.parametrize("where", ["local:2", "address"])
def test_scheduler_end_to_end(tmp_path, files, table, scheduler, where) -> None:
    """`--scheduler` through the installed command: the data, small as it is, is streamed on
    a cluster (started for the pass, or the module's at its address); lstsq's optimum."""
    folder = files.get("parquet")
    data = str(folder) if folder is not None else str(files["npy"])
    address = scheduler if where == "address" else where
    done = lr_advisor(
        tmp_path,
        "--budget",
        "0.3",
        "--data",
        data,
        "--scheduler",
        address,
        env={"LR_ADVISOR_SAMPLE_ROWS": "1000"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and done.stderr == "", done.stderr  # findings, nothing else
    (report,) = json.loads(done.stdout)["probe"]
    assert report["problem"]["rows"] == len(table)
    cluster = "a local Dask cluster (2 workers)"
    if where == "address":
        cluster = f"the Dask cluster at {scheduler} (3 workers)"
    assert any(f"streamed in one pass on {cluster}" in n for n in report["notes"]), report["notes"]
    fitted = np.append(np.ravel(report["optimum"]["weights"]), report["optimum"]["bias"])
    assert (
        relative(fitted, lstsq(table[:, :-1], table[:, -1:], True).ravel()) < 1e-9
    )  # the JSON rounds to 12 digits
