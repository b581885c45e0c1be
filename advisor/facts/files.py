"""Data files a script names by a literal path, read (never executed) under a size cap.

Only called when such a file exists next to the script, so importing numpy here is the lazy
import the static path allows: the numbers are about to be needed.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, eq=False)
class Table:
    shape: tuple[int, ...]
    values: object  # a float64 numpy array
    columns: tuple[str, ...] | None  # the header, for tables read with one


@dataclass
class DataFileLog:
    """Every data file one facts pass looked up, found or not, with its stat before it was
    read (None: missing): the cache keeps a result that depends on another file only while
    that file's stat is unchanged."""

    lookups: list[tuple[str, list[int] | None]] = field(default_factory=list)

    def record(self, path: str | Path) -> None:
        self.lookups.append((str(path), file_signature(path)))


def file_signature(path: str | Path) -> list[int] | None:
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def read_table(
    path: Path, loader: str, options: dict, limit: int, log: DataFileLog
) -> Table | None:
    """The numbers of a .csv/.txt/.npy file as `loader` would read them; None if unsure.
    The lookup is recorded in `log`, found or not."""
    log.record(path)
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
    # genfromtxt reads a text cell as nan; loadtxt raises
    reads_text = loader == "numpy.genfromtxt"
    return _parse(text, delimiter, skip + (1 if named else 0), named, options, False, reads_text)


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
    text: str,
    delimiter,
    skip: int,
    header: bool,
    options: dict,
    table: bool = False,
    loader_reads_text: bool = True,
) -> Table | None:
    """Rows of numbers; `table` for pandas, which keeps a frame's two dimensions."""

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
    values, text_columns = _numbers(body)
    if values is None:
        return None
    usecols = options.get("usecols")
    if isinstance(usecols, int):
        usecols = (usecols,)
    if isinstance(usecols, (tuple, list)) and names and all(c in names for c in usecols):
        usecols = [names.index(c) for c in usecols]  # pandas: columns by name
    if table and isinstance(usecols, (tuple, list)) and all(isinstance(c, int) for c in usecols):
        usecols = sorted(usecols)  # pandas keeps the file's order of the columns
    if isinstance(usecols, (tuple, list)) and all(isinstance(c, int) for c in usecols):
        if not all(-values.shape[1] <= c < values.shape[1] for c in usecols):
            return None
        values = values[:, list(usecols)]
        text_columns = [text_columns[c] for c in usecols]
        names = tuple(names[c] for c in usecols) if names else None
    elif usecols is not None:
        return None
    if any(text_columns) and loader_reads_text is False:
        return None  # np.loadtxt stops at a text cell: the script fails, nothing to follow
    if not table:  # numpy squeezes a single column to (N,) unless ndmin=2
        ndmin = options.get("ndmin", 0)
        if values.shape[1] == 1 and (not isinstance(ndmin, int) or ndmin < 2):
            values = values[:, 0]
        if options.get("unpack") is True:
            values = values.T
    return Table(tuple(values.shape), values, names)


def _numbers(body: list[list[str]]):
    """(values, which columns hold text): a text or empty cell is nan, as pandas and
    genfromtxt read it; a rule that needs those numbers then finds them not finite."""
    import numpy as np

    width = len(body[0])
    text = [False] * width
    values = np.empty((len(body), width))
    for i, row in enumerate(body):
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                values[i, j] = np.nan
                text[j] = text[j] or bool(cell.strip())
    return values, text
