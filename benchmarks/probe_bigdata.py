"""The probe on data larger than memory: how fast is the one streaming pass of `--data`?

    .venv/bin/python benchmarks/probe_bigdata.py [--rows N] [--cols P] [--csv-rows N]
        [--parquet-rows N] [--widths 10,30] [--folder DIR]

In a temporary folder (removed at the end; `--folder` puts it elsewhere) it writes a float32
.npy table of N rows x P features and a target (default 5e6 x 100: 2 GB), the same for the
other widths, a CSV and a folder of parquet files (smaller), then measures in the same run:

1. the machine's memory bandwidth: bytes read per second by a sum over a 2 GiB float64 buffer
   (8x the L2 caches and beyond the L3 the system reports), with 1 thread and with a thread
   per core (the larger is "the bandwidth" below);
2. the product's pass (`partitions.stream` on what `--data` would read: sums, NaN/inf checks
   and the uniform sample) on the .npy, memory-mapped with the page cache warm (the file was
   just written and read once: these are memory, not disk, speeds), with OpenBLAS's default
   threads and with one, and on a local Dask cluster of a worker per core (`--scheduler
   local:N`, when dask is installed; its time includes starting the cluster); on the CSV and
   on the parquet folder: rows/s, GB/s of the file, the fraction of the bandwidth, the peak
   resident memory (VmHWM, memory-mapped file pages included) of the process that ran it;
3. the arithmetic alone (`moments.Moments.from_table`: the rows shifted by the first block's
   means and converted to float64 in one pass, one BᵀB (syrk) per block of 2048 rows), one
   process, then one process per core on slices of the rows, with single-threaded BLAS, the
   file mapped 64 MB at a time: the ceiling for the pass on this machine;
4. the accuracy: the optimum from the streamed sums against lstsq in float64 on the first
   rows (in memory), and, to show why the products are not taken in float32, the optimum from
   float32 products (sgemm) accumulated in float64.

It asserts nothing: timings never pass or fail tests. The machine may be shared: the load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# the product's pass in a process of its own: its time, rows, peak memory and its sums
STREAM = """
import json, sys, time
import numpy as np
from advisor.probe.datafile import DataOption, stream_any
from advisor.probe.partitions import open_table, partitions
path, target, out, scheduler = sys.argv[1], sys.argv[2] or None, sys.argv[3], sys.argv[4] or None
began = time.perf_counter()
found = stream_any(partitions(open_table(DataOption(path, target))), scheduler)
seconds = time.perf_counter() - began
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
m = found.moments
np.savez(out, gram=m.gram, cross=m.cross, square=m.target_square, sum=m.target_sum)
print(json.dumps({"seconds": seconds, "rows": found.rows, "peak": peak,
                  "sample": int(found.sample_x.shape[0]), "nonfinite": found.nonfinite}))
"""

# the arithmetic alone on rows [start, stop) of a .npy, mapped 64 MB at a time (so that the
# file's pages do not pile up in the process's resident memory); waits for a common start
KERNEL = """
import json, sys, time
from dataclasses import replace
import numpy as np
from advisor.probe.moments import Moments, combine_centred
path, start, stop, width, at, out = sys.argv[1:7]
start, stop, width = int(start), int(stop), int(width)
window = max(1, (64 << 20) // (4 * (width + 1)))
while time.time() < float(at):
    time.sleep(0.001)
began = time.time()
m = None
for first in range(start, stop, window):
    table = np.load(path, mmap_mode="r")[first:min(first + window, stop)]
    found = Moments.from_table(table, range(width), width)
    if m is not None:
        mean, scatter = combine_centred(m, found)
        found = replace(m.merge(found), mean=mean, scatter=scatter)
    m = found
    del table
ended = time.time()
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
np.savez(out, gram=m.gram, cross=m.cross, square=m.target_square, sum=m.target_sum)
print(json.dumps({"began": began, "ended": ended, "rows": m.rows, "peak": peak}))
"""


def dask_installed() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def bandwidth() -> float:
    """Bytes read per second by a sum over 2 GiB (the best of 5), 1 thread and all cores."""
    buffer = np.empty(1 << 28)  # 2 GiB of float64
    buffer.fill(1.0)

    def best(run) -> float:
        times = []
        for _ in range(5):
            began = time.perf_counter()
            run()
            times.append(time.perf_counter() - began)
        return buffer.nbytes / min(times)

    one = best(buffer.sum)
    cores = os.cpu_count() or 1
    pieces = np.array_split(buffer, 4 * cores)
    with ThreadPoolExecutor(cores) as pool:  # numpy's sum releases the GIL
        every = best(lambda: list(pool.map(np.sum, pieces)))
    print(f"memory bandwidth (read, sum over 2 GiB): {one / 1e9:.2f} GB/s with 1 thread, ")
    print(f"  {every / 1e9:.2f} GB/s with {cores} threads: the bandwidth below is the larger")
    return max(one, every)


def write_npy(path: Path, rows: int, cols: int, seed: int = 0) -> None:
    """Features in raw units (means and spreads of several orders) and a noisy target."""
    rng = np.random.default_rng(seed)
    scale = np.geomspace(0.1, 100.0, cols).astype(np.float32)
    offset = rng.uniform(-50, 50, cols).astype(np.float32)
    weights = rng.normal(size=cols) / scale
    table = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols + 1))
    step = 1 << 18
    for start in range(0, rows, step):
        count = min(step, rows - start)
        block = rng.standard_normal((count, cols), dtype=np.float32) * scale + offset
        table[start : start + count, :cols] = block
        noise = rng.standard_normal(count, dtype=np.float32)
        table[start : start + count, cols] = block @ weights.astype(np.float32) + noise
    table.flush()
    del table


def warm(path: Path) -> float:
    """Read a .npy once through a memory map (into the page cache); bytes per second."""
    table = np.load(path, mmap_mode="r")
    began = time.perf_counter()
    for start in range(0, table.shape[0], 1 << 18):
        np.add.reduce(table[start : start + (1 << 18)], axis=None)
    return table.nbytes / (time.perf_counter() - began)


def run_stream(
    path: Path, work: Path, target: str = "", env: dict | None = None, scheduler: str = ""
) -> dict:
    out = work / "stream_sums.npz"
    done = subprocess.run(
        [sys.executable, "-c", STREAM, str(path), target, str(out), scheduler],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    found = json.loads(done.stdout)
    found["sums"] = dict(np.load(out))
    return found


def run_kernel(path: Path, work: Path, rows: int, cols: int, processes: int) -> dict:
    """`Moments.from_table` in `processes` processes on slices of the rows, all at once."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    at = time.time() + 2.0  # every process imports numpy first, then starts together
    bounds = np.linspace(0, rows, processes + 1).astype(int)
    running = []
    for i in range(processes):
        out = work / f"kernel{i}.npz"
        arguments = [str(path), str(bounds[i]), str(bounds[i + 1]), str(cols), str(at), str(out)]
        running.append(
            (
                subprocess.Popen(
                    [sys.executable, "-c", KERNEL, *arguments],
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                    env=env,
                ),
                out,
            )
        )
    results, sums = [], None
    for process, out in running:
        stdout, _ = process.communicate()
        results.append(json.loads(stdout))
        found = dict(np.load(out))
        sums = found if sums is None else {k: sums[k] + found[k] for k in sums}
    seconds = max(r["ended"] for r in results) - min(r["began"] for r in results)
    return {"seconds": seconds, "peak": max(r["peak"] for r in results), "sums": sums}


def optimum(sums: dict, rows: int) -> np.ndarray:
    from advisor.probe.exact import Moments, solve_moments
    from advisor.probe.problem import Loss

    moments = Moments(sums["gram"], sums["cross"], sums["square"], sums["sum"], rows)
    return solve_moments(moments, True, Loss()).stacked.ravel()


def relative(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(found - expected) / np.linalg.norm(expected))


def rate(label: str, rows: int, nbytes: int, seconds: float, bandwidth: float, peak=None) -> None:
    speed = nbytes / seconds
    memory = f", peak memory {peak / 2**20:.0f} MB" if peak is not None else ""
    print(
        f"  {label:<44} {seconds:7.2f} s  {rows / seconds / 1e6:6.2f} M rows/s  "
        f"{speed / 1e9:5.2f} GB/s  {100 * speed / bandwidth:5.1f}% of the bandwidth{memory}"
    )


def npy_section(work: Path, rows: int, cols: int, bandwidth: float) -> np.ndarray:
    path = work / f"table_{cols}.npy"
    began = time.perf_counter()
    write_npy(path, rows, cols)
    size = path.stat().st_size
    print(
        f"\n.npy, {rows:,} rows x {cols} features + target, float32: {size / 1e9:.2f} GB "
        f"(written in {time.perf_counter() - began:.1f} s; load average {load_average()})"
    )
    speed = warm(path)
    print(f"  plain read through the memory map (page cache warm): {speed / 1e9:.2f} GB/s")
    found = run_stream(path, work)
    rate(
        "the product's pass (stream: sums+checks+sample)",
        rows,
        size,
        found["seconds"],
        bandwidth,
        found["peak"],
    )
    one_thread = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    single = run_stream(path, work, env=one_thread)
    rate("  the same, BLAS on 1 thread", rows, size, single["seconds"], bandwidth, single["peak"])
    cores = os.cpu_count() or 1
    if dask_installed() and cores > 1:
        spread = run_stream(path, work, env=one_thread, scheduler=f"local:{cores}")
        label = f"  the same, --scheduler local:{cores}, 1 BLAS thread"
        rate(label, rows, size, spread["seconds"], bandwidth)
    one = run_kernel(path, work, rows, cols, 1)
    rate(
        "arithmetic alone (from_table), 1 process",
        rows,
        size,
        one["seconds"],
        bandwidth,
        one["peak"],
    )
    if cores > 1:
        every = run_kernel(path, work, rows, cols, cores)
        rate(
            f"arithmetic alone, {cores} processes",
            rows,
            size,
            every["seconds"],
            bandwidth,
            every["peak"],
        )
    flops = rows * (cols + 2) ** 2  # AᵀA of [x, y, 1]: n (p+2)² multiply-adds over 2
    print(
        f"  float64 rate of the arithmetic (1 process): {flops / one['seconds'] / 1e9:.1f} GFLOP/s"
    )
    streamed, kernel = optimum(found["sums"], rows), optimum(one["sums"], rows)
    print(f"  optimum, the pass against the arithmetic alone: {relative(streamed, kernel):.1e}")
    return path


def accuracy(path: Path, cols: int, subset: int) -> None:
    """The optimum from the sums against lstsq on the rows, in float64, on the first rows."""
    from advisor.probe.exact import Moments, solve_moments
    from advisor.probe.partitions import Partition, stream
    from advisor.probe.problem import Loss

    table = np.load(path, mmap_mode="r")
    subset = min(subset, table.shape[0])
    rows = np.asarray(table[:subset], dtype=np.float64)
    a = np.hstack([rows[:, :cols], np.ones((subset, 1))])
    expected = np.linalg.lstsq(a, rows[:, cols:], rcond=None)[0].ravel()
    features = tuple(range(cols))
    part = Partition("npy", str(path), 0, subset, features, cols, cols + 1)
    found = stream([part], sample_rows=1000).moments
    streamed = solve_moments(found, True, Loss())
    kernel = solve_moments(Moments.from_table(table[:subset], features, cols), True, Loss())
    single = table[:subset]
    gram32 = np.zeros((cols + 2, cols + 2))
    for start in range(0, subset, 2048):  # float32 products, each block's sum added in float64
        block = np.empty((min(2048, subset - start), cols + 2), dtype=np.float32)
        block[:, : cols + 1] = single[start : start + 2048]
        block[:, cols + 1] = 1.0
        gram32 += (block.T @ block).astype(np.float64)
    keep = [*range(cols), cols + 1]
    moments32 = Moments(
        gram32[np.ix_(keep, keep)],
        gram32[keep, cols : cols + 1],
        gram32[cols, cols : cols + 1],
        gram32[cols + 1, cols : cols + 1],
        subset,
    )
    float32 = solve_moments(moments32, True, Loss())
    print(f"\naccuracy on the first {subset:,} rows (lstsq in float64 on the rows: the reference)")
    print(f"  condition number of the data (with the bias column): {streamed.condition:.2e}")
    for label, found in (
        (f"the product's pass ({streamed.method})", streamed),
        (f"from_table ({kernel.method})", kernel),
        ("float32 products (sgemm), float64 sums", float32),
    ):
        print(f"  {label:<40} {relative(found.stacked.ravel(), expected):.1e} relative")


def csv_section(work: Path, npy: Path, rows: int, cols: int, bandwidth: float) -> None:
    from advisor.probe.datafile import DataOption, load

    table = np.load(npy, mmap_mode="r")
    rows = min(rows, table.shape[0])
    path = work / "table.csv"
    with open(path, "w") as stream:
        stream.write(",".join([f"x{i}" for i in range(cols)] + ["y"]) + "\n")
        for start in range(0, rows, 1 << 15):
            np.savetxt(
                stream, table[start : min(start + (1 << 15), rows)], delimiter=",", fmt="%.9g"
            )
    size = path.stat().st_size
    print(f"\nCSV, {rows:,} rows x {cols} features + target: {size / 1e9:.2f} GB")
    found = run_stream(path, work, "y")
    rate("the product's pass on the CSV", rows, size, found["seconds"], bandwidth, found["peak"])
    x, y, _ = load(DataOption(str(path), "y"))
    a = np.hstack([x, np.ones((rows, 1))])
    expected = np.linalg.lstsq(a, y, rcond=None)[0].ravel()
    error = relative(optimum(found["sums"], rows), expected)
    print(f"  optimum against lstsq on the CSV read whole: {error:.1e} relative")


def parquet_section(work: Path, npy: Path, rows: int, cols: int, bandwidth: float) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        print("\nparquet: pyarrow is not installed, skipped")
        return
    table = np.load(npy, mmap_mode="r")
    rows = min(rows, table.shape[0])
    folder = work / "parquet"
    folder.mkdir()
    names = [f"x{i}" for i in range(cols)] + ["y"]
    files = 4
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for i in range(files):
        part = np.asarray(table[bounds[i] : bounds[i + 1]])
        columns = {name: part[:, j] for j, name in enumerate(names)}
        pq.write_table(pa.table(columns), folder / f"part{i}.parquet", row_group_size=1 << 16)
    size = sum(f.stat().st_size for f in folder.iterdir())
    print(
        f"\nparquet folder, {files} files, {rows:,} rows x {cols} features + target, float32: "
        f"{size / 1e9:.2f} GB"
    )
    found = run_stream(folder, work, "y")
    rate("the product's pass on the folder", rows, size, found["seconds"], bandwidth, found["peak"])
    from advisor.probe.exact import Moments

    expected = optimum(_sums(Moments.from_table(table[:rows], range(cols), cols)), rows)
    error = relative(optimum(found["sums"], rows), expected)
    print(f"  optimum against the same rows from the .npy: {error:.1e} relative")


def _sums(m) -> dict:
    return {"gram": m.gram, "cross": m.cross, "square": m.target_square, "sum": m.target_sum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=5e6)
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--widths", default="10,30", help="other feature counts to time")
    parser.add_argument("--csv-rows", type=float, default=1e5)
    parser.add_argument("--parquet-rows", type=float, default=1e6)
    parser.add_argument("--subset", type=float, default=2e5, help="rows of the accuracy check")
    parser.add_argument("--folder", help="where to write the tables (default: a temporary one)")
    args = parser.parse_args()
    rows, cols = int(args.rows), args.cols
    widths = sorted({int(w) for w in args.widths.split(",") if w.strip()} - {cols})
    print(f"{os.cpu_count()} cores, numpy {np.__version__}, load average {load_average()}")
    measured = bandwidth()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        work = Path(folder)
        for width in widths:
            path = npy_section(work, rows, width, measured)
            path.unlink()
        npy = npy_section(work, rows, cols, measured)
        accuracy(npy, cols, int(args.subset))
        csv_section(work, npy, int(args.csv_rows), cols, measured)
        parquet_section(work, npy, int(args.parquet_rows), cols, measured)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
