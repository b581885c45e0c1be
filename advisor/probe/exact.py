"""The exact answer: least squares in float64 for the script's own model and loss.

The normal equations need only XᵀX, Xᵀy and yᵀy, accumulated in one pass over the rows, so
memory does not grow with the number of rows. Where the Gram matrix is too ill-conditioned to
trust (its condition number squares the data's), the solution comes from lstsq on the rows
when they are in memory, or from a pseudo-inverse of the Gram matrix with a relative cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from advisor.probe.moments import Moments
from advisor.probe.problem import Loss, Problem

# how the optimum was found: from the raw, centred or column-scaled sums, from the rows, or
# as the minimum-norm answer of a rank-deficient problem
SolveMethod = Literal[
    "normal equations",
    "normal equations (centred)",
    "normal equations (scaled)",
    "lstsq",
    "pseudo-inverse",
]

# Above this condition number of XᵀX, solving the normal equations loses more than half the
# digits of float64: use lstsq on the rows instead.
GRAM_TRUSTED = 1e8


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
    method: SolveMethod

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
    method: SolveMethod
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
    if features is not None and targets is not None:  # the rows are here
        a = design(features, bias)
        residual = a @ solution - np.asarray(targets, dtype=float).reshape(a.shape[0], -1)
        residual_sum = float(np.sum(residual * residual))
    elif centred is not None and moments.scatter is not None:  # Σ r² = Syy - 2 wᵀSxy + wᵀSxx w
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


def _centred_solution(moments: Moments) -> np.ndarray | None:
    """The optimum with a bias from the centred sums: w from the scatter of the features (its
    diagonal scaled to 1), b = ȳ - mᵀw. None without centred sums, or when a column is
    constant or the scaled scatter is ill-conditioned (the other ways then answer)."""
    if moments.scatter is None or moments.mean is None:
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
