"""`--data FILE --target COL [--features COLS]`: the data given on the command line."""

from __future__ import annotations

import csv
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
