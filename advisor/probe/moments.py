"""The sums over a table's rows that determine every least-squares quantity of a linear model.

XᵀX, Xᵀy and yᵀy (and, optionally, the centred sums) are accumulated a chunk at a time and
add up in any order, so the exact answer (`exact`), the problem (`problem`) and the streaming
pass (`partitions`) all read a table through them, whatever its number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

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
        sums: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        rows = 0
        middle = None  # (rows, mean, scatter) of the chunks so far
        for features, targets in chunks:
            x = np.asarray(features, dtype=float)
            x = x[:, None] if x.ndim == 1 else x
            y = np.asarray(targets, dtype=float).reshape(x.shape[0], -1)
            if sums is None:
                width = x.shape[1] + int(bias)
                sums = (
                    np.zeros((width, width)),
                    np.zeros((width, y.shape[1])),
                    np.zeros(y.shape[1]),
                    np.zeros(y.shape[1]),
                )
            gram, cross, square, total = sums
            p = x.shape[1]
            gram[:p, :p] += x.T @ x
            cross[:p] += x.T @ y
            if bias:
                column_sums = x.sum(axis=0)
                gram[:p, p] += column_sums
                gram[p, :p] += column_sums
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
        if sums is None:
            raise ValueError("no rows")
        if middle is None:
            return cls(*sums, rows)
        return cls(*sums, rows, mean=middle[1], scatter=middle[2])

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
        if self.scatter is not None and self.mean is not None:  # the centred sums: no cancellation
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
        if self.scatter is None or self.mean is None:
            return Moments(gram, cross, self.target_square, self.target_sum, self.rows)
        k = self.cross.shape[1]
        scatter = np.zeros((q + k, q + k))  # of [z, y]: z has mean 0 and ZᵀZ is centred
        scatter[:q, :q] = gram[:q, :q]
        scatter[:q, q:] = cross[:q]
        scatter[q:, :q] = cross[:q].T
        scatter[q:, q:] = self.scatter[p:, p:]
        means = np.concatenate([np.zeros(q), self.mean[p:]])
        return Moments(gram, cross, self.target_square, self.target_sum, self.rows, means, scatter)


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
