"""`--data FILE --target COL [--features COLS]`: the data given on the command line.

A small file is read whole into memory (`load`). A file above `stream_bytes()` (256 MB, or
the environment's LR_ADVISOR_STREAM_BYTES) or a folder of files is streamed instead
(`partitions`): one pass accumulates the full data's sums and keeps a uniform sample of rows,
so memory does not grow with the number of rows (`given` picks the way).
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from advisor.probe.datasource import DataError, DataOption, column, one_line, setting
from advisor.probe.distributed import stream_on_dask
from advisor.probe.partitions import (
    SAMPLE_ROWS,
    Partition,
    Streamed,
    open_table,
    partitions,
    stream,
)

STREAM_BYTES = 256 << 20  # files above this are streamed, not read whole
STREAMABLE = (".npy", ".csv", ".tsv", ".txt", ".parquet")


def stream_bytes() -> int:
    """The size above which `--data` is streamed: LR_ADVISOR_STREAM_BYTES, or 256 MB."""
    return setting("LR_ADVISOR_STREAM_BYTES", STREAM_BYTES)


def streamed(option: DataOption, scheduler: str | None = None) -> bool:
    """Whether `--data` goes through one streaming pass rather than into memory whole: a
    folder, a file above `stream_bytes()`, or any file whose sums a cluster takes."""
    path = Path(option.path)
    if path.is_dir():
        return True
    if not path.is_file() or path.suffix.lower() not in STREAMABLE:
        return False
    return bool(scheduler) or path.stat().st_size > stream_bytes()


def given(option: DataOption, scheduler: str | None = None):
    """The data of `--data`: (features, targets) in memory for a small file, or, for a large
    file or a folder, what one streaming pass leaves (`partitions.Streamed`: the full data's
    sums, a uniform sample of rows, the NaN/inf count and the largest value), here or on the
    Dask cluster `scheduler` names (`--scheduler`)."""
    if not streamed(option, scheduler):
        x, y, _ = load(option)
        return x, y
    sample = setting("LR_ADVISOR_SAMPLE_ROWS", SAMPLE_ROWS)  # rows kept for mini-batch replay
    try:
        return stream_any(partitions(open_table(option)), scheduler, sample_rows=sample)
    except DataError as error:  # the streaming pass's own (or the cluster's), on one line
        raise type(error)(one_line(error)) from None
    except (ValueError, TypeError, OSError, EOFError, ImportError) as error:
        raise DataError(f"{option.path}: cannot read it ({one_line(error)})") from None


def stream_any(
    parts: list[Partition],
    scheduler: str | None = None,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> Streamed:
    """`partitions.stream` here, or on a Dask cluster when `scheduler` names one
    (`--scheduler`: an address such as tcp://host:8786, or local[:N]); the same answer
    either way."""
    if not scheduler:
        return stream(parts, sample_rows=sample_rows, seed=seed)
    return stream_on_dask(parts, scheduler, sample_rows=sample_rows, seed=seed)


def load(option: DataOption) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(features (n, p), targets (n, k), feature names) from a .csv, .npy, .npz or .parquet."""
    path = Path(option.path)
    if not path.is_file():
        raise DataError(f"{option.path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            table, names = _csv(path, "\t" if suffix == ".tsv" else None)
        elif suffix == ".npy":
            table = np.load(path, allow_pickle=False)
            names = tuple(str(i) for i in range(table.shape[1] if table.ndim == 2 else 1))
        elif suffix == ".npz":
            return _npz(path, option)
        elif suffix == ".parquet":
            table, names = _parquet(path)
        else:
            raise DataError(f"{option.path}: use a .csv, .npy, .npz or .parquet file")
        table = np.asarray(table, dtype=float)
    except (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{option.path}: cannot read it ({error})") from None  # a damaged file
    if table.ndim != 2 or table.shape[1] < 2:
        raise DataError(f"{option.path}: need a table of at least two columns, got {table.shape}")
    target = column(option.target, names, len(names) - 1, option.path)
    if option.features:
        chosen = [column(f, names, None, option.path) for f in option.features]
    else:
        chosen = [i for i in range(len(names)) if i != target]
    return table[:, chosen], table[:, [target]], tuple(names[i] for i in chosen)


def _csv(path: Path, delimiter: str | None):
    text = path.read_text(encoding="utf-8", errors="replace")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t ").delimiter
        except csv.Error:
            delimiter = ","
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if row]
    if not rows:
        raise DataError(f"{path}: empty")
    header = None
    try:
        [float(cell) for cell in rows[0]]
    except ValueError:
        header, rows = tuple(cell.strip() for cell in rows[0]), rows[1:]
    if not rows:
        raise DataError(f"{path}: no rows of numbers")
    if len({len(row) for row in rows}) > 1:
        raise DataError(f"{path}: rows of different lengths")
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=float)
    except ValueError as error:
        raise DataError(f"{path}: a cell is not a number ({error})") from None
    if table.ndim != 2:
        raise DataError(f"{path}: rows of different lengths")
    names = header or tuple(str(i) for i in range(table.shape[1]))
    return table, names


def _npz(path: Path, option: DataOption):
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        x_key = next((k for k in ("X", "x", "features", "inputs") if k in keys), None)
        y_key = option.target or next(
            (k for k in ("y", "Y", "targets", "labels") if k in keys), None
        )
        if x_key is None or y_key not in keys:
            raise DataError(f"{path}: name the arrays X and y (found: {', '.join(keys)})")
        x = np.asarray(archive[x_key], dtype=float)
        y = np.asarray(archive[y_key], dtype=float)
    x = x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)
    return x, y.reshape(y.shape[0], -1), tuple(str(i) for i in range(x.shape[1]))


def _parquet(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    table = pq.read_table(path)
    names = tuple(table.column_names)
    return np.column_stack([table.column(n).to_numpy() for n in names]).astype(float), names
