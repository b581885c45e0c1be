"""Data too large for memory: a table read in independent pieces, summed in one pass.

Least squares needs only the sums XᵀX, Xᵀy, yᵀy (`exact.Moments`), and sums can be taken a
piece at a time and added up in any order. So a table (a `.npy` file, a CSV, a parquet file,
or a folder of them) is cut into `Partition`s: row ranges of a `.npy`, byte ranges of a CSV
that begin and end on line boundaries, row groups of a parquet file. Each partition is a small
picklable record that opens its own file, so the pieces can be read one after another here
(`stream`) or on the workers of a cluster (`advisor.probe.distributed`); memory holds one chunk
of rows at a time, whatever the number of rows. The same pass keeps a uniform random sample of
rows, for the replay of mini-batch training.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.probe.datafile import DataError, DataOption
from advisor.probe.datafile import _column as _column
from advisor.probe.exact import Moments

CHUNK_ROWS = 1 << 14  # rows a chunk holds: 16k rows x 100 float64 columns = 13 MB
PARTITION_BYTES = 64 << 20  # the size of a piece of work for one worker
SAMPLE_ROWS = 200_000  # rows kept for replaying mini-batch training
KINDS = {".npy": "npy", ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Table:
    """A data source opened for a streaming pass: which files, which columns."""

    kind: str  # npy, csv, parquet
    files: tuple[str, ...]
    names: tuple[str, ...]  # the columns of every file
    features: tuple[int, ...]  # column indices the model reads
    target: int
    rows: int | None  # None when unknown before the pass (CSV)
    nbytes: int
    delimiter: str = ","  # CSV only
    header: bool = False  # CSV only: the first line of each file holds the names


@dataclass(frozen=True)
class Partition:
    """One independent piece of a table: rows [start, stop) of a .npy, the lines that begin in
    bytes [start, stop) of a CSV, or row group `start` of a parquet file."""

    kind: str
    path: str
    start: int
    stop: int
    features: tuple[int, ...]
    target: int
    width: int  # columns in the file
    delimiter: str = ","
    header: bool = False
    names: tuple[str, ...] = ()

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(features (n, p), targets (n, 1)) in float64, `rows` rows at a time."""
        if self.kind == "npy":
            yield from self._npy(rows)
        elif self.kind == "csv":
            yield from self._csv(rows)
        else:
            yield from self._parquet(rows)

    def _split(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(block[:, list(self.features)], dtype=float)
        y = np.asarray(block[:, self.target : self.target + 1], dtype=float)
        return x, y

    def _npy(self, rows: int):
        table = np.load(self.path, mmap_mode="r", allow_pickle=False)
        table = table[:, None] if table.ndim == 1 else table
        for start in range(self.start, self.stop, rows):
            yield self._split(table[start : min(start + rows, self.stop)])

    def _csv(self, rows: int):
        with open(self.path, "rb") as stream:
            stream.seek(self.start)
            if self.start > 0:
                # the line that straddles the boundary belongs to the piece before
                stream.seek(self.start - 1)
                if stream.read(1) != b"\n":
                    stream.readline()
            elif self.header:
                stream.readline()
            lines: list[bytes] = []
            while stream.tell() < self.stop:
                line = stream.readline()
                if not line:
                    break
                if line.strip():
                    lines.append(line)
                if len(lines) >= rows:
                    yield self._parse(lines)
                    lines = []
            if lines:
                yield self._parse(lines)

    def _parse(self, lines: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        text = b"".join(lines).decode("utf-8", errors="replace")
        delimiter = None if self.delimiter == " " else self.delimiter
        try:
            block = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2, dtype=float)
        except ValueError as error:
            raise DataError(f"{self.path}: a cell is not a number ({error})") from None
        if block.shape[1] != self.width:
            raise DataError(f"{self.path}: rows of different lengths")
        return self._split(block)

    def _parquet(self, rows: int):
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(self.path)
        for batch in reader.iter_batches(
            batch_size=rows, row_groups=[self.start], columns=list(self.names)
        ):
            columns = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(self.width)]
            yield self._split(np.column_stack(columns).astype(float, copy=False))


@dataclass
class Streamed:
    """What one pass over a table leaves: the full data's sums and a sample of its rows."""

    moments: Moments  # always with the bias column (the last); slice it off for a model without
    sample_x: np.ndarray  # (m, p) a uniform random sample of rows, in the table's order
    sample_y: np.ndarray  # (m, 1)
    rows: int
    nonfinite: int  # NaN or inf cells
    largest: float  # the largest |value| among the finite cells


def open_table(option: DataOption) -> Table:
    """The files and columns `--data` names: a file, or a folder of files of one kind."""
    path = Path(option.path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in KINDS)
        if not files:
            raise DataError(f"{option.path}: no .parquet, .csv or .npy files in the folder")
        kinds = {KINDS[p.suffix.lower()] for p in files}
        if len(kinds) > 1:
            raise DataError(f"{option.path}: the folder mixes {', '.join(sorted(kinds))} files")
    elif path.is_file():
        if path.suffix.lower() not in KINDS:
            raise DataError(f"{option.path}: use a .csv, .npy or .parquet file, or a folder")
        files = [path]
    else:
        raise DataError(f"{option.path}: no such file or folder")
    kind = KINDS[files[0].suffix.lower()]
    try:
        if kind == "npy":
            names, rows, extra = _npy_layout(files)
        elif kind == "csv":
            names, rows, extra = _csv_layout(files)
        else:
            names, rows, extra = _parquet_layout(files)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{option.path}: cannot read it ({error})") from None
    if len(names) < 2:
        raise DataError(f"{option.path}: need a table of at least two columns")
    target = _column(option.target, names, len(names) - 1, option.path)
    if option.features:
        features = tuple(_column(f, names, None, option.path) for f in option.features)
    else:
        features = tuple(i for i in range(len(names)) if i != target)
    return Table(
        kind,
        tuple(str(f) for f in files),
        names,
        features,
        target,
        rows,
        sum(f.stat().st_size for f in files),
        **extra,
    )


def partitions(table: Table, target_bytes: int = PARTITION_BYTES) -> list[Partition]:
    """Independent pieces of about `target_bytes` each, in the table's row order."""
    common = dict(features=table.features, target=table.target, width=len(table.names))
    pieces: list[Partition] = []
    for name in table.files:
        if table.kind == "npy":
            array = np.load(name, mmap_mode="r", allow_pickle=False)
            count = array.shape[0]
            step = max(1, target_bytes // max(1, array.itemsize * len(table.names)))
            for start in range(0, count, step):
                pieces.append(Partition("npy", name, start, min(count, start + step), **common))
        elif table.kind == "csv":
            size = Path(name).stat().st_size
            for start in range(0, max(size, 1), target_bytes):
                pieces.append(
                    Partition(
                        "csv",
                        name,
                        start,
                        min(size, start + target_bytes),
                        delimiter=table.delimiter,
                        header=table.header,
                        **common,
                    )
                )
        else:
            import pyarrow.parquet as pq

            groups = pq.ParquetFile(name).metadata.num_row_groups
            pieces.extend(
                Partition("parquet", name, g, g + 1, names=table.names, **common)
                for g in range(groups)
            )
    return pieces


def stream(parts: list[Partition], sample_rows: int = SAMPLE_ROWS, seed: int = 0) -> Streamed:
    """One pass over the pieces in order: the sums, the checks, and a uniform sample."""
    total: Moments | None = None
    sampler = _Sampler(sample_rows, seed)
    nonfinite, largest = 0, 0.0
    for part in parts:
        for x, y in part.chunks():
            moments, bad, big = chunk_moments(x, y)
            nonfinite += bad
            largest = max(largest, big)
            total = moments if total is None else total.merge(moments)
            sampler.offer(x, y)
    if total is None:
        raise DataError("the data has no rows")
    sample_x, sample_y = sampler.rows(parts)
    return Streamed(total, sample_x, sample_y, total.rows, nonfinite, largest)


def chunk_moments(x: np.ndarray, y: np.ndarray) -> tuple[Moments, int, float]:
    """A chunk's sums (with the bias column), its NaN/inf cells and its largest finite value."""
    moments = Moments.accumulate([(x, y)], bias=True)
    nonfinite, largest = 0, 0.0
    if x.size or y.size:
        finite = np.isfinite(moments.gram).all() and np.isfinite(moments.cross).all()
        if finite and np.isfinite(moments.target_square).all():
            largest = float(max(np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0)))
        else:  # rare: find the cells (an overflow of finite values counts as none)
            nonfinite = int(np.count_nonzero(~np.isfinite(x)) + np.count_nonzero(~np.isfinite(y)))
            both = np.concatenate([x.ravel(), y.ravel()])
            both = np.abs(both[np.isfinite(both)])
            largest = float(both.max(initial=0.0))
    return moments, nonfinite, largest


class _Sampler:
    """A uniform random sample of at most `size` rows of a stream of unknown length: each row
    gets a random key and the rows with the smallest keys are kept (a bottom-k sample)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.random = np.random.default_rng(seed)
        self.threshold = 1.0
        self.keys: list[np.ndarray] = []
        self.order: list[np.ndarray] = []
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.held = 0
        self.seen = 0

    def offer(self, x: np.ndarray, y: np.ndarray) -> None:
        keys = self.random.random(x.shape[0])
        chosen = np.nonzero(keys < self.threshold)[0]
        if chosen.size:
            self.keys.append(keys[chosen])
            self.order.append(self.seen + chosen)
            self.x.append(x[chosen])
            self.y.append(y[chosen])
            self.held += chosen.size
        self.seen += x.shape[0]
        if self.held > 2 * self.size:
            self._prune()

    def _prune(self) -> None:
        keys = np.concatenate(self.keys)
        keep = np.argpartition(keys, self.size - 1)[: self.size] if keys.size > self.size else None
        if keep is None:
            return
        self.keys = [keys[keep]]
        self.order = [np.concatenate(self.order)[keep]]
        self.x = [np.concatenate(self.x)[keep]]
        self.y = [np.concatenate(self.y)[keep]]
        self.held = self.size
        self.threshold = float(self.keys[0].max())

    def rows(self, parts: list[Partition]) -> tuple[np.ndarray, np.ndarray]:
        if not self.x:
            width = len(parts[0].features) if parts else 0
            return np.zeros((0, width)), np.zeros((0, 1))
        self._prune()
        order = np.argsort(np.concatenate(self.order), kind="stable")
        return np.concatenate(self.x)[order], np.concatenate(self.y)[order]


def _npy_layout(files: list[Path]):
    rows, width = 0, None
    for name in files:
        array = np.load(name, mmap_mode="r", allow_pickle=False)
        if array.ndim != 2 or array.dtype.kind not in "fiub":
            raise ValueError(f"{name.name} is not a 2-D numeric table: {array.shape}")
        if width is not None and array.shape[1] != width:
            raise ValueError(f"{name.name} has {array.shape[1]} columns, not {width}")
        width = array.shape[1]
        rows += array.shape[0]
    return tuple(str(i) for i in range(width)), rows, {}


def _csv_layout(files: list[Path]):
    first = files[0]
    with open(first, "rb") as stream:
        head = stream.read(1 << 16).decode("utf-8", errors="replace")
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{first.name} is empty")
    delimiter = "\t" if first.suffix.lower() == ".tsv" else None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",; \t").delimiter
        except csv.Error:
            delimiter = ","
    cells = next(csv.reader([lines[0]], delimiter=delimiter))
    cells = [c for c in cells if c.strip()] if delimiter == " " else cells
    try:
        [float(cell) for cell in cells]
        header = False
        names = tuple(str(i) for i in range(len(cells)))
    except ValueError:
        header = True
        names = tuple(cell.strip() for cell in cells)
    return names, None, {"delimiter": delimiter, "header": header}


def _parquet_layout(files: list[Path]):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{files[0]}: reading parquet needs pyarrow (pip install pyarrow)"
        ) from None
    names, rows = None, 0
    for name in files:
        meta = pq.ParquetFile(name)
        these = tuple(meta.schema_arrow.names)
        if names is not None and these != names:
            raise ValueError(f"{name.name} has other columns than {files[0].name}")
        names = these
        rows += meta.metadata.num_rows
    return names, rows, {}
