"""The streaming pass here against the same pass on a local Dask cluster. Prints wall times and
the largest relative difference of the sums; asserts nothing.

    .venv/bin/python benchmarks/probe_dask.py [--rows N] [--columns P] [--workers W]
                                              [--partition-mb MB] [--folder DIR]

Writes a table (default 2·10^6 rows x 20 columns, float64) as one .npy and, with pyarrow, as a
folder of parquet files, then for each: `partitions.stream` (one process, one core), and
`distributed.stream_on_dask` on a LocalCluster of W worker processes (default 2), timed apart
from the cluster's start. The cluster's pass pays for starting tasks and moving partials
between processes; it wins when reading and summing dominate (many cores, or many machines
each reading its share of a shared filesystem).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from advisor.probe.datafile import DataOption
from advisor.probe.distributed import local_cluster, stream_on_dask
from advisor.probe.partitions import open_table, partitions, stream


def write(folder: Path, rows: int, columns: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(rows, columns))
    table[:, -1] = table[:, :-1] @ rng.normal(size=columns - 1) + rng.normal(size=rows)
    made = {"npy": folder / "table.npy"}
    np.save(made["npy"], table)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return made
    parquet = folder / "parquet"
    parquet.mkdir(exist_ok=True)
    names = [f"c{i}" for i in range(columns)]
    for i, start in enumerate(range(0, rows, max(rows // 8, 1))):
        part = table[start : start + max(rows // 8, 1)]
        columns_ = {name: part[:, j] for j, name in enumerate(names)}
        pq.write_table(pa.table(columns_), parquet / f"part{i}.parquet", row_group_size=250_000)
    made["parquet"] = parquet
    return made


def relative(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(found - expected)) / max(np.max(np.abs(expected)), 1e-300))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partition-mb", type=int, default=32)
    parser.add_argument("--folder", help="where to write the tables (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.folder or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        made = write(folder, args.rows, args.columns)
        size = args.rows * args.columns * 8 / 2**20
        print(f"table: {args.rows:,} x {args.columns} float64 = {size:,.0f} MB", end="")
        print(f" (written in {time.perf_counter() - began:.1f} s as {', '.join(made)})")
        began = time.perf_counter()
        cluster = local_cluster(args.workers)
        print(
            f"LocalCluster of {args.workers} workers started in {time.perf_counter() - began:.2f} s"
        )
        try:
            for kind, path in made.items():
                option = DataOption(str(path))  # the target: the last column
                parts = partitions(open_table(option), args.partition_mb << 20)
                began = time.perf_counter()
                here = stream(parts)
                local = time.perf_counter() - began
                times = []
                for _ in range(2):  # the first pass also imports lr-advisor on the workers
                    began = time.perf_counter()
                    there = stream_on_dask(parts, cluster.scheduler_address)
                    times.append(time.perf_counter() - began)
                difference = max(
                    relative(there.moments.gram, here.moments.gram),
                    relative(there.moments.cross, here.moments.cross),
                )
                same = np.array_equal(there.sample_x, here.sample_x)
                print(
                    f"{kind:8} {len(parts):4} partitions  local stream {local:6.2f} s  "
                    f"dask ({args.workers} workers) {times[0]:6.2f} s, again {times[1]:6.2f} s  "
                    f"max relative difference {difference:.1e}  same sample: {same}"
                )
            began = time.perf_counter()
            stream_on_dask(parts, f"local:{args.workers}")
            print(
                f"--scheduler local:{args.workers} on the {kind} (a cluster started and closed "
                f"with the pass): {time.perf_counter() - began:.2f} s"
            )
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
