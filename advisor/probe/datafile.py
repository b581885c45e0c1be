"""`--data FILE --target COL [--features COLS]`: the data given on the command line.

A small file is read whole into memory (`load`). A file above `stream_bytes()` (256 MB, or
the environment's LR_ADVISOR_STREAM_BYTES) or a folder of files is streamed instead
(`partitions`): one pass accumulates the full data's sums and keeps a uniform sample of rows,
so memory does not grow with the number of rows (`given` picks the way).
"""

from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(Exception):
    """A data file that cannot be used: the message says why, in one line."""


@dataclass(frozen=True)
class DataOption:
    path: str
    target: str | None = None  # a column name or a 0-based index; default the last column
    features: tuple[str, ...] | None = None  # default every other column


STREAM_BYTES = 256 << 20  # files above this are streamed, not read whole
STREAMABLE = (".npy", ".csv", ".tsv", ".txt", ".parquet")


def _setting(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return max(int(value), 1) if value else default
    except ValueError:
        return default


def stream_bytes() -> int:
    """The size above which `--data` is streamed: LR_ADVISOR_STREAM_BYTES, or 256 MB."""
    return _setting("LR_ADVISOR_STREAM_BYTES", STREAM_BYTES)


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
    from advisor.probe.partitions import SAMPLE_ROWS, open_table, partitions, stream_any

    sample = _setting("LR_ADVISOR_SAMPLE_ROWS", SAMPLE_ROWS)  # rows kept for mini-batch replay
    try:
        return stream_any(partitions(open_table(option)), scheduler, sample_rows=sample)
    except DataError as error:  # the streaming pass's own (or the cluster's), on one line
        raise type(error)(_one_line(error)) from None
    except (ValueError, TypeError, OSError, EOFError, ImportError) as error:
        raise DataError(f"{option.path}: cannot read it ({_one_line(error)})") from None


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
    target = _column(option.target, names, len(names) - 1, option.path)
    if option.features:
        chosen = [_column(f, names, None, option.path) for f in option.features]
    else:
        chosen = [i for i in range(len(names)) if i != target]
    return table[:, chosen], table[:, [target]], tuple(names[i] for i in chosen)


def _column(key: str | None, names: tuple[str, ...], default: int | None, path: str) -> int:
    if key is None:
        return default
    if key in names:
        return names.index(key)
    if key.lstrip("-").isdigit() and -len(names) <= int(key) < len(names):
        return int(key) % len(names)
    raise DataError(f"{path}: no column {key!r} (columns: {', '.join(names)})")


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
