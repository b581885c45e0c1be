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


@dataclass
class Moments:
    """Sums over rows that determine every least-squares quantity of a linear model."""

    gram: np.ndarray  # AᵀA, A = [X, 1] with a bias column
    cross: np.ndarray  # AᵀY
    target_square: np.ndarray  # diag(YᵀY) per output
    target_sum: np.ndarray  # Σ y per output
    rows: int

    @classmethod
    def accumulate(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], bias: bool) -> Moments:
        """One pass over (features, targets) chunks; the bias column is never materialised."""
        gram = cross = square = total = None
        rows = 0
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
        if gram is None:
            raise ValueError("no rows")
        return cls(gram, cross, square, total, rows)

    def merge(self, other: Moments) -> Moments:
        """The sums over both sets of rows: partitions' moments add up (a tree reduction)."""
        if self.gram.shape != other.gram.shape or self.cross.shape != other.cross.shape:
            raise ValueError("moments of different widths")
        return Moments(
            self.gram + other.gram,
            self.cross + other.cross,
            self.target_square + other.target_square,
            self.target_sum + other.target_sum,
            self.rows + other.rows,
        )


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
    """The optimum of the problem's model on its data (rows in memory)."""
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
    if rank == gram.shape[0] and gram_condition < GRAM_TRUSTED:
        solution = np.linalg.solve(gram, cross)
        method = "normal equations"
    elif features is not None and targets is not None:
        a = design(features, bias)
        y = np.asarray(targets, dtype=float).reshape(a.shape[0], -1)
        solution, _, rank, _ = np.linalg.lstsq(a, y, rcond=None)
        method = "lstsq"
    else:
        keep = eigenvalues > cutoff
        inverse = (vectors[:, keep] / eigenvalues[keep]) @ vectors[:, keep].T
        solution = inverse @ cross
        method = "pseudo-inverse"
    # Σ r² = yᵀy - 2 sᵀAᵀy + sᵀAᵀA s, per output; from the rows when they are here (exact)
    if features is not None and targets is not None:
        a = design(features, bias)
        residual = a @ solution - np.asarray(targets, dtype=float).reshape(a.shape[0], -1)
        residual_sum = float(np.sum(residual * residual))
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
