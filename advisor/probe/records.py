"""What the recorder of `--run` keeps: tags that say what a tensor is as far as the regression
is concerned (a weight, a prediction, an error, rows of a data set), and records of each
backward pass, optimizer and manual update. Plain records, filled in by `recorder` and read by
`analysis`; tensors are held as the script made them (torch is imported only where needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported only in the instrumented child, when it runs
    import torch

# --- tags: what a tensor is, as far as the regression is concerned ---------------------------


@dataclass(eq=False)
class WeightView:
    """A trainable leaf, possibly transposed or reshaped: `transposed` says whether the matrix
    on the right of `x @ M` is the leaf's transpose."""

    leaf: torch.Tensor
    transposed: bool


@dataclass(eq=False)
class Model:
    """One linear map: weights (p, k) = (leaf.T if transposed else leaf).reshape(p, k)."""

    weight: torch.Tensor
    transposed: bool
    bias: torch.Tensor | None
    p: int
    k: int
    lineage: int  # models that replace each other by rebinding (w = w - lr * g) share it

    def params(self) -> list[torch.Tensor]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights (p, k), bias (k,)) as float64 copies of the current values."""
        w = copy_values(self.weight)
        w = (w.T if self.transposed else w).reshape(self.p, self.k)
        if self.bias is None:
            return w, np.zeros(self.k)
        b = copy_values(self.bias).reshape(-1)
        return w, np.broadcast_to(b, (self.k,)).copy()

    def arrays(self, values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(weights (p, k), bias (k,)) from float64 copies of `params()` taken earlier."""
        w = values[0]
        w = (w.T if self.transposed else w).reshape(self.p, self.k)
        if self.bias is None:
            return w, np.zeros(self.k)
        return w, np.broadcast_to(values[1].reshape(-1), (self.k,)).copy()


@dataclass(eq=False)
class Pred:
    """The output of a model on inputs `x` (rows as the model sees them)."""

    model: Model
    x: torch.Tensor
    deep: bool  # the inputs are computed by trainable layers before this one


@dataclass(eq=False)
class Diff:
    """prediction - target (either order)."""

    pred: Pred
    out: torch.Tensor  # the prediction tensor as it enters the subtraction
    target: torch.Tensor
    numel: int  # elements after broadcasting
    broadcast: bool


@dataclass(eq=False)
class SqErr:
    """factor * (sum of squared errors) / divisor, possibly still elementwise."""

    diff: Diff
    factor: float
    divisor: float
    per_row: bool  # divided by the batch's row count


@dataclass(frozen=True)
class Foreign:
    """The output of a loss function that is not a squared error of a linear model."""

    name: str


@dataclass(eq=False)
class Source:
    """Rows taken from a larger collection: a tensor (`tensor[idx]`) or a DataLoader's data set."""

    tensor: torch.Tensor | None = None
    loader: LoaderInfo | None = None
    position: int = 0


@dataclass(eq=False)
class LoaderInfo:
    """What a DataLoader iterator says about batching."""

    dataset: Any  # the DataLoader's data set: any object with rows
    batch_size: int | None
    drop_last: bool
    shuffle: bool


# --- records -------------------------------------------------------------------------------


@dataclass(eq=False)
class Spec:
    """How one backward's loss relates to its squared errors."""

    mean: bool
    factor: float
    per_row: bool
    broadcast: bool
    rows: int
    numel: int  # squared errors summed (after broadcasting)
    checked: bool | None = None  # recomputed and matched (None: not checked)


@dataclass(eq=False)
class Backward:
    """One `backward()` of a recognised squared-error loss (or of something else: `what`)."""

    loss: float
    model: Model | None = None
    spec: Spec | None = None
    what: str = ""
    deep: bool = False
    # detached clones (torch.Tensor) of the batch, while under the store cap; Any, not
    # `Tensor | None`: read only where `dataset` has kept the records that hold them
    x: Any = None
    y: Any = None
    x_sources: list[Source] = field(default_factory=list)
    y_sources: list[Source] = field(default_factory=list)
    stepped: bool = False


@dataclass(eq=False)
class OptInfo:
    """An optimizer, as its step hooks see it."""

    kind: str
    params: list[torch.Tensor]
    ids: set[int]
    initial: dict[int, np.ndarray]
    hyper: dict[str, Any]  # the first parameter group's settings, as torch keeps them
    notes: list[str]
    steps: int = 0
    lrs: list[float] = field(default_factory=list)
    records: list[Backward | None] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


@dataclass(eq=False)
class Snapshot:
    """Parameters and gradients right after a backward, to measure a manual update."""

    record: Backward
    model: Model
    values: list[np.ndarray]
    grads: list[np.ndarray | None]


@dataclass(frozen=True)
class Update:
    """One manual update, as inner products of the change d, the gradient g and the weights w:
    enough to test d = -c g for any c, up to the rounding of the parameters' dtype."""

    dg: float
    gg: float
    dd: float
    ww: float
    eps: float

    def residual(self, c: float) -> float:
        return math.sqrt(max(self.dd + 2 * c * self.dg + c * c * self.gg, 0.0))

    def own(self) -> float:
        return -self.dg / self.gg if self.gg > 0 else math.nan

    def tolerance(self) -> float:
        return 4 * self.eps * (math.sqrt(self.dd) + math.sqrt(self.ww)) + 1e-30


@dataclass(eq=False)
class Manual:
    """Manual updates of one model lineage."""

    model: Model
    initial: tuple[np.ndarray, np.ndarray]
    updates: list[Update | None] = field(default_factory=list)
    rebound: bool = False  # parameters re-created at each update
    records: list[Backward | None] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def copy_values(t: torch.Tensor) -> np.ndarray:
    """A float64 copy of a tensor's values (never a view of its memory)."""
    return np.array(t.detach().cpu().double().numpy(), dtype=np.float64, copy=True)


def number(value: object) -> float | None:
    """A Python or one-element (non-trainable) tensor number, else None."""
    import torch

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
        return float(value.detach().reshape(-1)[0])
    return None


# what a tensor is, as far as the regression is concerned (`Recorder.tag`)
Tag = WeightView | Pred | Diff | SqErr | Foreign | Source
