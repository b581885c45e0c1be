"""Data files a script names by a literal path, read (never executed) under a size cap.

Only called when such a file exists next to the script, so importing numpy here is the lazy
import the static path allows: the numbers are about to be needed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, eq=False)
class Table:
    shape: tuple[int, ...]
    values: object  # a float64 numpy array
    columns: tuple[str, ...] | None  # the header, for tables read with one


def read_table(path: Path, loader: str, options: dict, limit: int) -> Table | None:
    """The numbers of a .csv/.txt/.npy file as `loader` would read them; None if unsure."""
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        if loader == "numpy.load":
            return _npy(path) if path.suffix == ".npy" else None
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if loader.startswith("pandas."):
        delimiter = options.get("sep", options.get("delimiter", "\t" if "table" in loader else ","))
        header = options.get("header", 0)
        return _parse(text, delimiter, 1 if header == 0 else 0, header == 0, options, table=True)
    delimiter = options.get("delimiter")
    skip = options.get("skiprows", options.get("skip_header", 0))
    if not isinstance(skip, int):
        return None
    named = loader == "numpy.genfromtxt" and options.get("names") is True
    return _parse(text, delimiter, skip + (1 if named else 0), named, options)


def _npy(path: Path) -> Table | None:
    import numpy as np

    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if values.dtype.kind not in "fiub":
        return None
    return Table(tuple(values.shape), values.astype(float), None)


def _parse(
    text: str, delimiter, skip: int, header: bool, options: dict, table: bool = False
) -> Table | None:
    """Rows of numbers; `table` for pandas, which keeps a frame's two dimensions."""
    import numpy as np

    if delimiter is not None and not isinstance(delimiter, str):
        return None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        return None
    if delimiter is None or delimiter.strip() == "":
        rows = [line.split() for line in lines]
    else:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    names = tuple(cell.strip() for cell in rows[skip - 1]) if header and skip else None
    body = rows[skip:]
    if not body or len({len(row) for row in body}) != 1:
        return None
    try:
        values = np.array([[float(cell) for cell in row] for row in body], dtype=float)
    except ValueError:
        return None  # text columns: not a numeric table lr-advisor can reason about
    usecols = options.get("usecols")
    if isinstance(usecols, int):
        usecols = (usecols,)
    if isinstance(usecols, (tuple, list)) and names and all(c in names for c in usecols):
        usecols = [names.index(c) for c in usecols]  # pandas: columns by name
    if table and isinstance(usecols, (tuple, list)) and all(isinstance(c, int) for c in usecols):
        usecols = sorted(usecols)  # pandas keeps the file's order of the columns
    if isinstance(usecols, (tuple, list)) and all(isinstance(c, int) for c in usecols):
        values = values[:, list(usecols)]
        names = tuple(names[c] for c in usecols) if names else None
    elif usecols is not None:
        return None
    if not table:  # numpy squeezes a single column to (N,) unless ndmin=2
        ndmin = options.get("ndmin", 0)
        if values.shape[1] == 1 and (not isinstance(ndmin, int) or ndmin < 2):
            values = values[:, 0]
        if options.get("unpack") is True:
            values = values.T
    return Table(tuple(values.shape), values, names)
