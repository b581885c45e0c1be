"""The exact answer: least squares in float64 for the script's own model and loss.

The normal equations need only XᵀX, Xᵀy and yᵀy, accumulated in one pass over the rows, so
memory does not grow with the number of rows. Where the Gram matrix is too ill-conditioned to
trust (its condition number squares the data's), the solution comes from lstsq on the rows
when they are in memory, or from a pseudo-inverse of the Gram matrix with a relative cutoff.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from advisor.probe.problem import Loss, Problem

# Above this condition number of XᵀX, solving the normal equations loses more than half the
# digits of float64: use lstsq on the rows instead.
GRAM_TRUSTED = 1e8
# rows per block of `Moments.from_table`: 2048 x 100 float64 columns = 1.6 MB, within a core's
# L2 cache; larger blocks leave it and the product runs at memory speed, smaller ones pay
# Python's overhead per call
TABLE_ROWS = 2048


@dataclass
class Moments:
    """Sums over rows that determine every least-squares quantity of a linear model."""

    gram: np.ndarray  # AᵀA, A = [X, 1] with a bias column
    cross: np.ndarray  # AᵀY
    target_square: np.ndarray  # diag(YᵀY) per output
    target_sum: np.ndarray  # Σ y per output
    rows: int
    # optional, the centred sums: the means of the columns of [X, Y] and the scatter matrix
    # S = Σ (a - mean)(a - mean)ᵀ over the rows, combined chunk by chunk (Chan's update). They
    # keep the digits the raw sums lose to cancellation (XᵀX - n m mᵀ) when a column's mean is
    # large against its spread: the optimum with a bias, the columns' spreads and the
    # standardised problem come from them when there are no rows to go back to
    mean: np.ndarray | None = None
    scatter: np.ndarray | None = None

    @classmethod
    def accumulate(
        cls,
        chunks: Iterable[tuple[np.ndarray, np.ndarray]],
        bias: bool,
        centred: bool = False,
    ) -> Moments:
        """One pass over (features, targets) chunks; the bias column is never materialised.
        `centred`: also the centred sums (`mean`, `scatter`), one more product per chunk."""
        gram = cross = square = total = None
        rows = 0
        middle = None  # (rows, mean, scatter) of the chunks so far
        for features, targets in chunks:
            x = np.asarray(features, dtype=float)
            x = x[:, None] if x.ndim == 1 else x
            y = np.asarray(targets, dtype=float).reshape(x.shape[0], -1)
            if gram is None:
                width = x.shape[1] + int(bias)
                gram = np.zeros((width, width))
                cross = np.zeros((width, y.shape[1]))
                square = np.zeros(y.shape[1])
                total = np.zeros(y.shape[1])
            p = x.shape[1]
            gram[:p, :p] += x.T @ x
            cross[:p] += x.T @ y
            if bias:
                sums = x.sum(axis=0)
                gram[:p, p] += sums
                gram[p, :p] += sums
                gram[p, p] += x.shape[0]
                cross[p] += y.sum(axis=0)
            square += np.einsum("ij,ij->j", y, y)
            total += y.sum(axis=0)
            rows += x.shape[0]
            if centred and x.shape[0]:
                block = np.hstack([x, y])
                block_mean = block.mean(axis=0)
                block -= block_mean
                found = (x.shape[0], block_mean, block.T @ block)
                middle = found if middle is None else _chan(middle, found)
        if gram is None:
            raise ValueError("no rows")
        if middle is None:
            return cls(gram, cross, square, total, rows)
        return cls(gram, cross, square, total, rows, mean=middle[1], scatter=middle[2])

    def merge(self, other: Moments) -> Moments:
        """The sums over both sets of rows: partitions' moments add up (a tree reduction)."""
        if self.gram.shape != other.gram.shape or self.cross.shape != other.cross.shape:
            raise ValueError("moments of different widths")
        mean, scatter = combine_centred(self, other)
        return Moments(
            self.gram + other.gram,
            self.cross + other.cross,
            self.target_square + other.target_square,
            self.target_sum + other.target_sum,
            self.rows + other.rows,
            mean=mean,
            scatter=scatter,
        )

    @classmethod
    def from_table(
        cls, table: np.ndarray, features, target: int, rows: int = TABLE_ROWS
    ) -> Moments:
        """The sums (with the bias column, and the centred ones) of a raw table's rows:
        `table[:, features]` against `table[:, target]`, any numeric dtype, a memory-mapped
        .npy included. Each block of `rows` rows is converted and shifted by the first block's
        means c in one pass into a reused float64 buffer B = [x - c, y - c, 1] (small enough to
        stay in cache) and multiplied by itself in one BLAS call (BᵀB: syrk); the blocks' sums
        add up in float64. Sums about c ≈ the means do not cancel; the raw ones (XᵀX, Xᵀy,
        Σx, yᵀy, Σy, n) and the centred ones follow exactly from them at the end. float32 and
        integer inputs convert to float64 exactly, so every product is exact."""
        features = list(features)
        p = len(features)
        width = p + 1  # the features and the target
        count = int(table.shape[0])
        if count == 0:
            raise ValueError("no rows")
        columns = [*features, target]
        contiguous = columns == list(range(columns[0], columns[0] + width))
        first = np.asarray(table[: min(rows, count)], dtype=float)
        shift = first[:, columns].mean(axis=0)
        total = np.zeros((width + 1, width + 1))
        buffer = np.empty((min(rows, count), width + 1))
        buffer[:, width] = 1.0
        for start in range(0, count, rows):
            stop = min(start + rows, count)
            b = buffer[: stop - start]
            block = table[start:stop]
            block = block[:, columns[0] : columns[0] + width] if contiguous else block[:, columns]
            np.subtract(block, shift, out=b[:, :width])  # converts and shifts in one pass
            total += b.T @ b  # numpy calls syrk for a matrix times its own transpose
        about = total[:width, :width]  # Σ (a - c)(a - c)ᵀ
        offsets = total[:width, width]  # Σ (a - c)
        mean = shift + offsets / count
        scatter = about - np.outer(offsets, offsets) / count
        sums = mean * count
        raw = (
            about
            + np.outer(shift, offsets)
            + np.outer(offsets, shift)
            + count * np.outer(shift, shift)
        )
        gram = np.empty((width, width))  # [x, 1]: the features, then the bias column
        gram[:p, :p] = raw[:p, :p]
        gram[:p, p] = gram[p, :p] = sums[:p]
        gram[p, p] = count
        cross = np.append(raw[:p, p], sums[p])[:, None]
        return cls(
            gram=gram,
            cross=cross,
            target_square=raw[p, p : p + 1].copy(),
            target_sum=sums[p : p + 1].copy(),
            rows=count,
            mean=mean,
            scatter=(scatter + scatter.T) / 2,
        )

    def without_bias(self) -> Moments:
        """The sums of the model without a bias, from sums accumulated with one: a slice."""
        p = self.gram.shape[0] - 1
        return Moments(
            self.gram[:p, :p].copy(),
            self.cross[:p].copy(),
            self.target_square,
            self.target_sum,
            self.rows,
            mean=self.mean,
            scatter=self.scatter,
        )

    def column_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, population standard deviation) of each feature column over all rows, from
        the centred sums when there are some, else from sums accumulated with the bias column
        (E[x²] - E[x]²). A column whose variance is below 1e-12 of E[x²] (the rounding noise
        of that difference) counts as constant: spread 0."""
        p = self.gram.shape[0] - 1
        rows = max(self.rows, 1)
        if self.scatter is not None:  # no cancellation: the centred sums
            mean = self.mean[:p]
            variance = np.diag(self.scatter)[:p] / rows
            second = variance + mean * mean
        else:
            mean = self.gram[:p, p] / rows
            second = np.diag(self.gram)[:p] / rows
            variance = second - mean * mean
        variance = np.where(variance > 1e-12 * second, variance, 0.0)
        return mean, np.sqrt(variance)

    def standardized(self, mean: np.ndarray, spread: np.ndarray, keep: np.ndarray) -> Moments:
        """The sums of Z = (X[:, keep] - mean) / spread with a bias column, from those of X
        (with its bias column): ZᵀZ = D⁻¹(XᵀX - n m mᵀ)D⁻¹, Zᵀy = D⁻¹(Xᵀy - m Σy), Σz = 0;
        the centred terms straight from the centred sums when there are some."""
        p = self.gram.shape[0] - 1
        columns = np.nonzero(keep)[0]
        m, s = mean[columns], spread[columns]
        q = columns.size
        if self.scatter is not None:  # Σ(x - m)(x - m)ᵀ and Σ(x - m)(y - ȳ) as they were summed
            centred = self.scatter[np.ix_(columns, columns)]
            centred_cross = self.scatter[columns, p:]
        else:
            sums = self.gram[columns, p]
            centred = self.gram[np.ix_(columns, columns)] - np.outer(sums, m)
            centred = (centred + centred.T) / 2
            centred_cross = self.cross[columns] - np.outer(m, self.target_sum)
        gram = np.zeros((q + 1, q + 1))
        gram[:q, :q] = centred / np.outer(s, s)
        gram[q, q] = self.rows
        cross = np.zeros((q + 1, self.cross.shape[1]))
        cross[:q] = centred_cross / s[:, None]
        cross[q] = self.target_sum
        if self.scatter is None:
            return Moments(gram, cross, self.target_square, self.target_sum, self.rows)
        k = self.cross.shape[1]
        scatter = np.zeros((q + k, q + k))  # of [z, y]: z has mean 0 and ZᵀZ is centred
        scatter[:q, :q] = gram[:q, :q]
        scatter[:q, q:] = cross[:q]
        scatter[q:, :q] = cross[:q].T
        scatter[q:, q:] = self.scatter[p:, p:]
        means = np.concatenate([np.zeros(q), self.mean[p:]])
        return Moments(gram, cross, self.target_square, self.target_sum, self.rows, means, scatter)


@dataclass
class Optimum:
    """The least-squares solution of the script's model, and the loss it reaches."""

    weights: np.ndarray  # (p, k)
    bias: np.ndarray  # (k,), zeros without a bias
    loss: float  # the script's own loss (reduction, factor) over the whole data at the optimum
    mse: float  # mean squared error per element at the optimum
    residual_sum: float  # Σ residual² over rows and outputs
    rank: int
    condition: float  # of the data matrix A (with the bias column): sqrt of the Gram's
    method: str  # "normal equations", "lstsq", "pseudo-inverse"

    @property
    def stacked(self) -> np.ndarray:
        """(p [+1], k): the weights, then the bias row when there is one."""
        return np.vstack([self.weights, self.bias[None, :]])


def design(features: np.ndarray, bias: bool) -> np.ndarray:
    a = np.asarray(features, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if bias:
        a = np.hstack([a, np.ones((a.shape[0], 1))])
    return a


def script_loss(sum_squares: float, rows: int, outputs: int, loss: Loss) -> float:
    """The loss a script reports over all its rows, from the sum of squared residuals."""
    if loss.mean:
        return loss.factor * sum_squares / (rows * outputs)
    return loss.factor * sum_squares


def solve(problem: Problem) -> Optimum:
    """The optimum of the problem's model on its data: from the rows in memory, or from the
    full data's sums when the problem was streamed (its rows are only a sample)."""
    if problem.moments is not None:
        return solve_moments(problem.full_moments(), problem.bias, problem.loss)
    moments = Moments.accumulate([(problem.features, problem.targets)], problem.bias)
    return solve_moments(moments, problem.bias, problem.loss, problem.features, problem.targets)


def solve_moments(
    moments: Moments,
    bias: bool,
    loss: Loss,
    features: np.ndarray | None = None,
    targets: np.ndarray | None = None,
) -> Optimum:
    """From the accumulated sums; with the rows too when the Gram matrix cannot be trusted."""
    gram, cross = moments.gram, moments.cross
    eigenvalues, vectors = np.linalg.eigh(gram)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    top = eigenvalues[-1] if eigenvalues.size else 0.0
    cutoff = top * gram.shape[0] * np.finfo(float).eps * 10
    rank = int(np.count_nonzero(eigenvalues > cutoff))
    low = eigenvalues[eigenvalues > cutoff].min() if rank else 0.0
    gram_condition = top / low if low > 0 else np.inf
    rows_here = features is not None and targets is not None
    centred = _centred_solution(moments) if bias and not rows_here else None
    if centred is not None:  # no rows, the centred sums: what cancels in the raw ones is kept
        solution, rank, method = centred, gram.shape[0], "normal equations (centred)"
    elif rank == gram.shape[0] and gram_condition < GRAM_TRUSTED:
        solution = np.linalg.solve(gram, cross)
        method = "normal equations"
    elif features is not None and targets is not None:
        a = design(features, bias)
        y = np.asarray(targets, dtype=float).reshape(a.shape[0], -1)
        solution, _, rank, _ = np.linalg.lstsq(a, y, rcond=None)
        method = "lstsq"
    elif (scaled := _scaled_solution(gram, cross)) is not None:
        # no rows, a full-rank Gram matrix ill-conditioned by the columns' scales only
        solution, rank, method = scaled, gram.shape[0], "normal equations (scaled)"
    else:
        keep = eigenvalues > cutoff
        inverse = (vectors[:, keep] / eigenvalues[keep]) @ vectors[:, keep].T
        solution = inverse @ cross
        method = "pseudo-inverse"
    # Σ r² = yᵀy - 2 sᵀAᵀy + sᵀAᵀA s, per output; from the rows when they are here (exact)
    if rows_here:
        a = design(features, bias)
        residual = a @ solution - np.asarray(targets, dtype=float).reshape(a.shape[0], -1)
        residual_sum = float(np.sum(residual * residual))
    elif centred is not None:  # Σ r² = Syy - 2 wᵀSxy + wᵀSxx w: the centred sums, per output
        p = gram.shape[0] - 1
        w, scatter = solution[:p], moments.scatter
        per_output = (
            np.diag(scatter)[p:]
            - 2 * np.einsum("ij,ij->j", w, scatter[:p, p:])
            + np.einsum("ij,ik,kj->j", w, scatter[:p, :p], w)
        )
        residual_sum = float(np.clip(per_output, 0.0, None).sum())
    else:
        per_output = (
            moments.target_square
            - 2 * np.einsum("ij,ij->j", solution, cross)
            + np.einsum("ij,ik,kj->j", solution, gram, solution)
        )
        residual_sum = float(np.clip(per_output, 0.0, None).sum())
    outputs = cross.shape[1]
    weights = solution[:-1] if bias else solution
    intercept = solution[-1] if bias else np.zeros(outputs)
    return Optimum(
        weights=np.asarray(weights),
        bias=np.asarray(intercept),
        loss=script_loss(residual_sum, moments.rows, outputs, loss),
        mse=residual_sum / (moments.rows * outputs),
        residual_sum=residual_sum,
        rank=int(rank),
        condition=float(np.sqrt(gram_condition)),
        method=method,
    )


def _chan(first: tuple, second: tuple) -> tuple:
    """(rows, mean, scatter) of two sets of rows from each one's (Chan, Golub and LeVeque's
    pairwise update: no sum of squares about zero is ever formed)."""
    n1, mean1, scatter1 = first
    n2, mean2, scatter2 = second
    n = n1 + n2
    if n1 == 0 or n2 == 0:
        return first if n2 == 0 else second
    delta = mean2 - mean1
    return n, mean1 + delta * (n2 / n), scatter1 + scatter2 + np.outer(delta, delta) * (n1 * n2 / n)


def combine_centred(first: Moments, second: Moments):
    """(mean, scatter) of both sets of rows, for `Moments.merge`; (None, None) unless both
    carry centred sums."""
    if first.scatter is None or second.scatter is None:
        return None, None
    found = _chan(
        (first.rows, first.mean, first.scatter), (second.rows, second.mean, second.scatter)
    )
    return found[1], found[2]


def _centred_solution(moments: Moments) -> np.ndarray | None:
    """The optimum with a bias from the centred sums: w from the scatter of the features (its
    diagonal scaled to 1), b = ȳ - mᵀw. None without centred sums, or when a column is
    constant or the scaled scatter is ill-conditioned (the other ways then answer)."""
    if moments.scatter is None:
        return None
    p = moments.gram.shape[0] - 1
    if p == 0 or not np.all(np.isfinite(moments.scatter)):
        return None
    weights = _scaled_solution(moments.scatter[:p, :p], moments.scatter[:p, p:])
    if weights is None:
        return None
    intercept = moments.mean[p:] - moments.mean[:p] @ weights
    return np.vstack([weights, intercept[None]])


def _scaled_solution(gram: np.ndarray, cross: np.ndarray) -> np.ndarray | None:
    """The normal equations with the Gram matrix scaled to a unit diagonal (D⁻¹GD⁻¹), when that
    makes them trustworthy: columns of very different scales (raw units) make the Gram matrix
    ill-conditioned without making the problem so. None when the scaled matrix is still
    ill-conditioned or singular (the pseudo-inverse then gives the minimum-norm answer)."""
    diagonal = np.diag(gram)
    if gram.size == 0 or not np.all(diagonal > 0) or not np.all(np.isfinite(gram)):
        return None
    scale = np.sqrt(diagonal)
    scaled = gram / np.outer(scale, scale)
    eigenvalues = np.linalg.eigvalsh(scaled)
    if eigenvalues[0] <= 0 or eigenvalues[-1] / eigenvalues[0] >= GRAM_TRUSTED:
        return None
    return np.linalg.solve(scaled, cross / scale[:, None]) / scale[:, None]


def npy_chunks(path, target: int = -1, rows: int = 1 << 14):
    """(features, targets) chunks of a 2-D .npy table, read block by block from the file (not
    memory-mapped, so the process's memory does not grow with the number of rows)."""
    with open(path, "rb") as stream:
        major, _ = np.lib.format.read_magic(stream)
        read_header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(stream)
        if len(shape) != 2 or shape[1] < 2 or fortran or dtype.hasobject:
            raise ValueError(f"{path}: need a 2-D C-ordered numeric table of two columns or more")
        width = shape[1]
        target %= width
        keep = [i for i in range(width) if i != target]
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            block = np.fromfile(stream, dtype=dtype, count=count * width).reshape(count, width)
            block = block.astype(float, copy=False)
            yield block[:, keep], block[:, target : target + 1]
