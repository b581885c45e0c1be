"""How fast is the probe? Prints wall times, peak memory and ratios measured in one run.

    .venv/bin/python benchmarks/probe_speed.py [--rows N] [--columns P] [--skip-torch]

1. Seed 000's verdict from the script alone (`lr-advisor` on fixtures/probe/seed000_closes_from_
   csv.py: static pass, closed form, curvature, replay of all 10000 epochs from 5 starts, the
   fix proven), against running that script with torch (what its author waited for).
2. The exact answer on a large .npy table (default 10^6 x 100, float32, written to a temporary
   folder): one memory-mapped pass accumulating XᵀX and Xᵀy, its speed against the memory
   bandwidth of a plain `table.sum()` over the same file, and the peak memory of the process.
It asserts nothing: timings never pass or fail tests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "probe" / "seed000_closes_from_csv.py"
COMMAND = Path(sys.executable).parent / "lr-advisor"


def timed(command: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def seed000(runs: int, skip_torch: bool) -> None:
    probe = timed([str(COMMAND), "--no-cache", "--format", "json", SEED.name], SEED.parent, runs)
    static = timed([str(COMMAND), "--no-cache", "--static", SEED.name], SEED.parent, runs)
    print(f"seed 000 verdict, lr-advisor (static + probe): {probe:.3f} s (median of {runs})")
    print(f"  of which the static pass alone:               {static:.3f} s")
    if skip_torch:
        return
    script = timed([sys.executable, SEED.name], SEED.parent, 1)
    print(f"running the script itself with torch:          {script:.2f} s")
    print(f"ratio: the verdict is {script / probe:.0f}x faster than running the script")


ACCUMULATE = """
import sys, time
from advisor.probe.exact import Moments, npy_chunks, solve_moments
from advisor.probe.problem import Loss
began = time.perf_counter()
moments = Moments.accumulate(npy_chunks(sys.argv[1]), bias=True)
optimum = solve_moments(moments, True, Loss())
seconds = time.perf_counter() - began
# VmHWM: this process's own peak (ru_maxrss may carry the forking parent's over exec)
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
peak = int(status) / 1024
print(seconds, peak, optimum.rank, optimum.method.replace(" ", "-"), *optimum.weights.ravel()[:3])
"""


def write_table(path: Path, rows: int, columns: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (rows, columns + 1)
    table = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    weights = rng.normal(size=columns)
    for start in range(0, rows, 1 << 16):
        block = rng.normal(size=(min(1 << 16, rows - start), columns)).astype(np.float32)
        table[start : start + block.shape[0], :columns] = block
        table[start : start + block.shape[0], columns] = block @ weights + 0.1
    table.flush()
    return weights


def large_table(rows: int, columns: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for count in (rows // 10, rows):
            path = Path(folder) / f"table{count}.npy"
            weights = write_table(path, count, columns)
            size = path.stat().st_size
            began = time.perf_counter()
            with open(path, "rb") as stream:  # the plain read: the floor of any one pass
                while stream.read(1 << 24):
                    pass
            read = time.perf_counter() - began
            done = subprocess.run(
                [sys.executable, "-c", ACCUMULATE, str(path)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            seconds, peak, rank, method, *first = done.stdout.split()
            seconds, peak = float(seconds), float(peak)
            error = max(abs(float(a) - b) for a, b in zip(first, weights[:3], strict=True))
            megabytes = size / 1e6
            print(f"exact answer on {count} x {columns} float32 ({megabytes:.0f} MB .npy):")
            rate = size / read / 1e9
            print(f"  plain read of the file:              {read:.2f} s ({rate:.2f} GB/s)")
            print(
                f"  one pass XᵀX, Xᵀy + solve:           {seconds:.2f} s "
                f"({size / seconds / 1e9:.2f} GB/s, {seconds / read:.2f}x the plain read)"
            )
            print(f"  peak memory of that process:         {peak:.0f} MB")
            print(f"  weights recovered to {error:.1e} ({method} {rank})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--skip-torch", action="store_true", help="do not run the script itself")
    args = parser.parse_args()
    seed000(args.runs, args.skip_torch)
    large_table(args.rows, args.columns)


if __name__ == "__main__":
    main()
