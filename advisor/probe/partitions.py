"""Data too large for memory: a table read in independent pieces, summed in one pass.

Least squares needs only the sums XᵀX, Xᵀy, yᵀy (`exact.Moments`), and sums can be taken a
piece at a time and added up in any order. So a table (a `.npy` file, a CSV, a parquet file,
or a folder of them) is cut into `Partition`s: row ranges of a `.npy`, byte ranges of a CSV
that begin and end on line boundaries, row groups of a parquet file. Each partition is a small
picklable record that opens its own file, so the pieces can be read one after another here
(`stream`) or on the workers of a cluster (`advisor.probe.distributed`); memory holds one chunk
of rows at a time, whatever the number of rows. The same pass keeps a uniform random sample of
rows, for the replay of mini-batch training.

Both ways share one code path: `partial` reads one partition into a `Partial` (its sums, its
NaN/inf count and largest value, its sample), and `merge` adds two partials up, in any order
and any grouping (sequentially here, as a tree on a cluster). The sample is the rows with the
smallest random keys, and a row's key depends only on the seed, its file and its place in
the file, so the sample is the same whatever the partitioning and the order of the merges.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from advisor.probe.datasource import DataError, DataOption, column
from advisor.probe.moments import Moments

CHUNK_ROWS = 1 << 14  # rows a chunk holds: 16k rows x 100 float64 columns = 13 MB
PARTITION_BYTES = 64 << 20  # the size of a piece of work for one worker
SAMPLE_ROWS = 200_000  # rows kept for replaying mini-batch training
TableKind = Literal["npy", "csv", "parquet"]
KINDS: dict[str, TableKind] = {
    ".npy": "npy",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class Table:
    """A data source opened for a streaming pass: which files, which columns."""

    kind: TableKind
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

    kind: TableKind
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
        for x, y, _ in self.located(rows):
            yield x, y

    def located(
        self, rows: int = CHUNK_ROWS
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """`chunks` with each row's place in its file (int64): its row number in a .npy or a
        parquet file, the byte offset where its line begins in a CSV. Places grow with the
        file's row order and do not depend on how the file was cut into partitions."""
        for block, places in self.blocks(rows):
            yield (*self.split(block), places)

    def blocks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows of the file with all its columns, in the file's dtype (a memory-mapped .npy
        is not copied), their places): what `located` splits into features and targets."""
        if self.kind == "npy":
            yield from self._npy(rows)
        elif self.kind == "csv":
            yield from self._csv(rows)
        else:
            yield from self._parquet(rows)

    def split(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(block[:, list(self.features)], dtype=float)
        y = np.asarray(block[:, self.target : self.target + 1], dtype=float)
        return x, y

    def _npy(self, rows: int):
        table = np.load(self.path, mmap_mode="r", allow_pickle=False)
        table = table[:, None] if table.ndim == 1 else table
        for start in range(self.start, self.stop, rows):
            stop = min(start + rows, self.stop)
            yield table[start:stop], np.arange(start, stop, dtype=np.int64)

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
            places: list[int] = []
            while (place := stream.tell()) < self.stop:
                line = stream.readline()
                if not line:
                    break
                if line.strip():
                    lines.append(line)
                    places.append(place)
                if len(lines) >= rows:
                    yield self._parse(lines), np.array(places, dtype=np.int64)
                    lines, places = [], []
            if lines:
                yield self._parse(lines), np.array(places, dtype=np.int64)

    def _parse(self, lines: list[bytes]) -> np.ndarray:
        text = b"".join(lines).decode("utf-8", errors="replace")
        delimiter = None if self.delimiter == " " else self.delimiter
        try:
            block = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2, dtype=float)
        except ValueError as error:
            raise DataError(f"{self.path}: a cell is not a number ({error})") from None
        if block.shape[1] != self.width:
            raise DataError(f"{self.path}: rows of different lengths")
        return block

    def _parquet(self, rows: int):
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(self.path)
        place = sum(reader.metadata.row_group(g).num_rows for g in range(self.start))
        for batch in reader.iter_batches(
            batch_size=rows, row_groups=[self.start], columns=list(self.names)
        ):
            columns = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(self.width)]
            block = np.column_stack(columns).astype(float, copy=False)
            places = np.arange(place, place + block.shape[0], dtype=np.int64)
            place += block.shape[0]
            yield block, places


@dataclass
class Streamed:
    """What one pass over a table leaves: the full data's sums and a sample of its rows."""

    moments: Moments  # always with the bias column (the last); slice it off for a model without
    sample_x: np.ndarray  # (m, p) a uniform random sample of rows, in the table's order
    sample_y: np.ndarray  # (m, 1)
    rows: int
    nonfinite: int  # NaN or inf cells
    largest: float  # the largest |value| among the finite cells
    cluster: str | None = None  # where the sums were taken: None here, else the Dask cluster


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
    target = column(option.target, names, len(names) - 1, option.path)
    if option.features:
        features = tuple(column(f, names, None, option.path) for f in option.features)
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
    common: dict[str, Any] = dict(
        features=table.features, target=table.target, width=len(table.names)
    )
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
    bound = sample_bound(parts, sample_rows)
    total = _pass(parts, sample_rows, seed, bound)
    if total.moments is not None and total.sample.held < min(sample_rows, total.moments.rows):
        total = _pass(parts, sample_rows, seed, None)  # too few rows under the bound: again
    return finish(total, parts)


def _pass(parts: list[Partition], sample_rows: int, seed: int, bound: int | None) -> Partial:
    files = file_numbers(parts)
    total = Partial.empty(sample_rows)
    jobs = min(_cores(), len(parts))
    if bound is not None and jobs > 1:
        # A thread per core: numpy and BLAS let go of the GIL on a block's conversion and
        # product, and pyarrow on its reads. Only with a bound, so that each partition sends
        # about its share of the sample (not a whole sample each) while they wait in order.
        with _one_blas_thread(), ThreadPoolExecutor(jobs) as pool:
            found = pool.map(
                lambda part: _partial(part, files[part.path], sample_rows, seed, bound), parts
            )
            for piece in found:
                total = merge(total, piece, tight=False)
        return total
    for part in parts:
        # rows whose keys are above the bound, or the sample's largest so far, cannot enter it
        limit = total.sample.limit
        below = bound if limit is None else (limit if bound is None else min(bound, limit))
        piece = partial(part, files[part.path], sample_rows, seed, below=below)
        total = merge(total, piece, tight=False)
    return total


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def sample_bound(parts: list[Partition], sample_rows: int) -> int | None:
    """A key below which, with overwhelming probability, at least `sample_rows` of the
    table's rows fall: each partition then sends only those of its rows (about its share of
    the sample) rather than up to `sample_rows`. None when the rows cannot be counted or
    estimated here (each partition then sends its own smallest keys). `stream` and
    `stream_on_dask` check the outcome and go again without a bound if too few rows fell
    below it."""
    rows = _expected_rows(parts)
    if not rows or sample_rows <= 0:
        return None
    share = (sample_rows + 8 * math.sqrt(sample_rows) + 16) / rows  # 8 standard deviations
    return int(share * KEYS) if share < 1 else None


def _expected_rows(parts: list[Partition]) -> int | None:
    """The table's rows (.npy, parquet), or a low estimate (CSV: bytes over twice the mean
    length of the first lines; a low estimate costs traffic, a high one a second pass)."""
    kinds = {p.kind for p in parts}
    try:
        if kinds == {"npy"}:
            return sum(p.stop - p.start for p in parts)
        if kinds == {"parquet"}:
            import pyarrow.parquet as pq

            meta = {path: pq.ParquetFile(path).metadata for path in {p.path for p in parts}}
            return sum(meta[p.path].row_group(p.start).num_rows for p in parts)
        if kinds == {"csv"}:
            with open(parts[0].path, "rb") as stream:
                head = [line for line in stream.read(1 << 16).splitlines() if line.strip()]
            head = head[1:] if parts[0].header else head
            if len(head) < 2:
                return None
            mean = sum(len(line) + 1 for line in head[:-1]) / (len(head) - 1)
            return int(sum(p.stop - p.start for p in parts) / (2 * mean))
    except (OSError, ValueError, ImportError):
        return None
    return None


@dataclass
class Partial:
    """What a pass over some of a table's partitions leaves: `partial` makes one from a
    partition, `merge` adds two up. Small (p x p sums and at most `sample.size` rows) and
    picklable, so partials travel between the workers of a cluster."""

    moments: Moments | None  # None: no rows yet
    nonfinite: int
    largest: float
    sample: Sample

    @classmethod
    def empty(cls, sample_rows: int) -> Partial:
        return cls(None, 0, 0.0, Sample(sample_rows))


def partial(
    part: Partition,
    file: int,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
    below: int | None = None,
) -> Partial:
    """One partition's sums, checks and sample. `file`: the number of the partition's file in
    the table (`file_numbers`), part of each row's sampling key. `below`: keep only rows whose
    key is at most this (rows known to fall outside the whole table's sample)."""
    with _one_blas_thread():
        return _partial(part, file, sample_rows, seed, below)


def _one_blas_thread():
    """BLAS on one thread while blocks are summed: the products are small (a block of 2048
    rows), and OpenBLAS's threads cost more than they bring there (measured: 8.9 s against
    1.35 s for 2e6 x 100 rows on 2 cores). Without threadpoolctl, BLAS keeps its own."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _partial(part: Partition, file: int, sample_rows: int, seed: int, below: int | None):
    total: Moments | None = None
    nonfinite, largest = 0, 0.0
    sample = Sample(sample_rows)
    for block, places in part.blocks():
        moments, bad, big = block_moments(block, part)
        nonfinite += bad
        largest = max(largest, big)
        total = moments if total is None else total.merge(moments)
        keys = row_keys(seed, file, places)
        limit = sample.limit if below is None else below
        if sample.limit is not None and below is not None:
            limit = min(sample.limit, below)
        chosen = np.nonzero(keys <= limit)[0] if limit is not None else slice(None)
        x, y = part.split(block[chosen])  # only the rows that may enter the sample
        sample.offer(keys[chosen], file, places[chosen], x, y, below)
    sample.prune()
    return Partial(total, nonfinite, largest, sample)


def merge(first: Partial, second: Partial, tight: bool = True) -> Partial:
    """The partial of both sets of rows: sums added, checks combined, samples merged (neither
    is changed). `tight=False` lets the sample hold up to twice its size before it is cut
    down, which saves copies when many partials are merged one after another."""
    if first.moments is None:
        moments = second.moments
    elif second.moments is None:
        moments = first.moments
    else:
        moments = first.moments.merge(second.moments)
    return Partial(
        moments,
        first.nonfinite + second.nonfinite,
        max(first.largest, second.largest),
        first.sample.merge(second.sample, tight),
    )


def finish(total: Partial, parts: list[Partition]) -> Streamed:
    """The `Streamed` record of a whole table's partial."""
    if total.moments is None:
        raise DataError("the data has no rows")
    width = len(parts[0].features) if parts else 0
    sample_x, sample_y = total.sample.rows(width)
    moments = total.moments
    return Streamed(moments, sample_x, sample_y, moments.rows, total.nonfinite, total.largest)


def file_numbers(parts: list[Partition]) -> dict[str, int]:
    """Each file's number in the table: the order in which the partitions first name it."""
    numbers: dict[str, int] = {}
    for part in parts:
        numbers.setdefault(part.path, len(numbers))
    return numbers


def block_moments(block: np.ndarray, part: Partition) -> tuple[Moments, int, float]:
    """A block's sums (with the bias column, and the centred ones, which keep their digits
    when a column's mean is large against its spread), its NaN/inf cells and its largest
    finite value, straight from the file's rows (`Moments.from_table` converts as it goes)."""
    if not block.shape[0]:
        return Moments.accumulate([part.split(block)], bias=True), 0, 0.0
    moments = Moments.from_table(block, part.features, part.target)
    columns = [*part.features, part.target]
    nonfinite, largest = 0, 0.0
    sums = (moments.gram, moments.cross, moments.target_square)
    if all(np.isfinite(a).all() for a in sums):
        chosen = block[:, columns] if len(columns) != block.shape[1] else block
        highest = float(np.max(chosen))
        lowest = float(np.min(chosen))
        largest = max(abs(highest), abs(lowest))
    else:  # rare: find the cells (an overflow of finite values counts as none)
        values = np.asarray(block[:, columns], dtype=float)
        finite = np.isfinite(values)
        nonfinite = int(values.size - np.count_nonzero(finite))
        largest = float(np.abs(values[finite]).max(initial=0.0))
    return moments, nonfinite, largest


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASK = (1 << 64) - 1
KEYS = 1 << 63  # keys are integers in [0, KEYS)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 (wrapping arithmetic): a bijective hash."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def row_keys(seed: int, file: int, places: np.ndarray) -> np.ndarray:
    """Each row's sampling key (int64 in [0, 2⁶³)): a hash of (seed, file, place in file), so
    the same row gets the same key however the table is cut and wherever it is read."""
    salt = _mix(np.array([(seed * 0x2545F4914F6CDD1D + file) & _MASK], dtype=np.uint64))
    state = (np.asarray(places, dtype=np.int64).astype(np.uint64) + np.uint64(1)) * _GOLDEN
    return (_mix(state ^ salt) >> np.uint64(1)).astype(np.int64)


class Sample:
    """A uniform random sample of at most `size` rows: the rows with the smallest keys (a
    bottom-k sample), ties broken by the row's place. Two samples merge into the sample of
    the rows of both, so the result does not depend on how the rows were grouped."""

    def __init__(self, size: int) -> None:
        self.size = max(int(size), 0)
        self.keys: list[np.ndarray] = []
        self.files: list[np.ndarray] = []
        self.places: list[np.ndarray] = []
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.held = 0
        self.limit: int | None = None  # the largest key held once full: larger ones are out

    def offer(self, keys, file: int, places, x, y, below: int | None = None) -> None:
        """Rows of one file with their keys; `below` (or the sample's own threshold once it
        is full) leaves out the rows whose keys are larger."""
        limit = self.limit if below is None else below
        if self.limit is not None and below is not None:
            limit = min(self.limit, below)
        chosen = np.nonzero(keys <= limit)[0] if limit is not None else np.arange(keys.size)
        if chosen.size and self.size:
            self._add(
                keys[chosen],
                np.full(chosen.size, file, dtype=np.int64),
                places[chosen],
                x[chosen],
                y[chosen],
            )
        if self.held > 2 * self.size:
            self.prune()

    def _add(self, keys, files, places, x, y) -> None:
        self.keys.append(keys)
        self.files.append(files)
        self.places.append(places)
        self.x.append(x)
        self.y.append(y)
        self.held += keys.size

    def _joined(self) -> tuple[np.ndarray, ...]:
        if len(self.keys) != 1:
            for name in ("keys", "files", "places", "x", "y"):
                setattr(self, name, [np.concatenate(getattr(self, name))])
        return self.keys[0], self.files[0], self.places[0], self.x[0], self.y[0]

    def prune(self) -> None:
        """Keep the `size` rows with the smallest (key, file, place)."""
        if not self.keys:
            return
        keys, files, places, x, y = self._joined()
        if keys.size > self.size:
            keep = _bottom(keys, files, places, self.size)
            self.keys, self.files, self.places = [keys[keep]], [files[keep]], [places[keep]]
            self.x, self.y = [x[keep]], [y[keep]]
            self.held = keep.size
        if self.held >= self.size and self.held:
            self.limit = int(self.keys[0].max())

    def merge(self, other: Sample, tight: bool = True) -> Sample:
        """The sample of the rows of both (neither is changed; arrays are shared, never
        written to). Cut down to `size` rows now when `tight`, else at twice the size."""
        merged = Sample(max(self.size, other.size))
        for sample in (self, other):
            for piece in zip(
                sample.keys, sample.files, sample.places, sample.x, sample.y, strict=True
            ):
                merged._add(*piece)
        limits = [s.limit for s in (self, other) if s.limit is not None]
        merged.limit = min(limits) if limits else None
        if tight or merged.held > 2 * merged.size:
            merged.prune()
        return merged

    def rows(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the sample, in the table's row order."""
        if not self.keys:
            return np.zeros((0, width)), np.zeros((0, 1))
        self.prune()
        _, files, places, x, y = self._joined()
        order = np.lexsort((places, files))
        return x[order], y[order]

    def __getstate__(self) -> dict:
        if self.keys:
            self._joined()  # one array each: fewer, larger pieces to pickle
        return self.__dict__


def _bottom(keys: np.ndarray, files: np.ndarray, places: np.ndarray, size: int) -> np.ndarray:
    """The indices of the `size` smallest (key, file, place): linear time, ties by place."""
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(keys, size - 1)[size - 1]
    below = np.nonzero(keys < kth)[0]
    tied = np.nonzero(keys == kth)[0]
    if tied.size > size - below.size:
        tied = tied[np.lexsort((places[tied], files[tied]))[: size - below.size]]
    return np.concatenate([below, tied])


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
    return tuple(str(i) for i in range(width or 0)), rows, {}


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
