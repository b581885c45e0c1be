"""Child side of `--run`: run a training script under instrumentation and record its regression.

`python -m advisor.probe.instrument OUT SCRIPT [ARGS...]` runs SCRIPT as `__main__` (the way
`python SCRIPT ARGS` would) while watching, without changing anything it computes:

- a `TorchFunctionMode` sees every torch call: it tags tensors (by identity, through weak
  references) as a weight, a model's prediction, an error, a squared error or a batch taken from
  a larger tensor, so that at each `backward()` the loss tells which linear model, which inputs
  and which targets it came from, and how it was reduced;
- global optimizer step hooks give the optimizer, its hyperparameters, the weights before the
  first step and the number of steps; manual updates (`w -= lr * w.grad`) are measured by
  comparing the parameters after each backward with their values at the next one;
- DataLoader iterators are marked so that a batch leads back to its data set.

The result is an `advisor.probe.problem.Problem`, written to OUT (an `.npz` file: `meta` holds
JSON, the other entries are arrays) at the start, periodically while the script trains, and at
the end, including on SIGTERM and SIGXCPU, so that a killed run still leaves a partial capture.
Nothing here may raise into the user's script: recording errors switch recording off.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import runpy
import signal
import sys
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from advisor.probe.problem import Loss, Optimizer, Problem

STORE_BYTES = 64 << 20  # batch copies kept for finding the data set
STORE_RECORDS = 20_000  # backward records kept in full (later ones keep only the loss)
MATCH_ROWS = 50_000  # rows looked up in a candidate data set
CHECK_LOSSES = 3  # backward passes whose loss is recomputed to check the recognised formula
SPEC_RTOL = 1e-4

# torch calls by name (methods, torch.* functions and operators share the same names)
VIEWS = frozenset(
    [
        "view",
        "reshape",
        "squeeze",
        "unsqueeze",
        "flatten",
        "ravel",
        "view_as",
        "reshape_as",
        "contiguous",
        "clone",
        "detach",
        "float",
        "double",
        "half",
        "bfloat16",
        "to",
        "type",
        "type_as",
        "cpu",
        "cuda",
    ]
)
TRANSPOSES = frozenset(["t", "transpose", "permute", "swapaxes", "T.__get__", "mT.__get__"])
MATMULS = frozenset(["matmul", "__matmul__", "mm", "mv", "__rmatmul__"])
ADDS = frozenset(["add", "__add__", "__radd__"])
SUBS = frozenset(["sub", "__sub__", "__rsub__", "subtract"])
MULS = frozenset(["mul", "__mul__", "__rmul__", "multiply"])
DIVS = frozenset(["div", "__truediv__", "true_divide", "divide"])
POWS = frozenset(["pow", "__pow__", "square", "float_power"])
REDUCTIONS = frozenset(["mean", "sum"])
INDEXING = frozenset(["__getitem__", "index_select"])

OPTIMIZER_KINDS = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adamw",
    "RMSprop": "rmsprop",
    "Adagrad": "adagrad",
}
MEMORY_MARKERS = (
    "can't allocate memory",
    "Cannot allocate memory",
    "not enough memory",
    "out of memory",
    "bad_alloc",
)


# --- tags: what a tensor is, as far as the regression is concerned ---------------------------


@dataclass(eq=False)
class WeightView:
    """A trainable leaf, possibly transposed or reshaped: `transposed` says whether the matrix
    on the right of `x @ M` is the leaf's transpose."""

    leaf: Any
    transposed: bool


@dataclass(eq=False)
class Model:
    """One linear map: weights (p, k) = (leaf.T if transposed else leaf).reshape(p, k)."""

    weight: Any
    transposed: bool
    bias: Any | None
    p: int
    k: int
    lineage: int  # models that replace each other by rebinding (w = w - lr * g) share it

    def params(self) -> list[Any]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights (p, k), bias (k,)) as float64 copies of the current values."""
        w = _numpy(self.weight)
        w = (w.T if self.transposed else w).reshape(self.p, self.k)
        if self.bias is None:
            return w, np.zeros(self.k)
        b = _numpy(self.bias).reshape(-1)
        return w, np.broadcast_to(b, (self.k,)).copy()


@dataclass(eq=False)
class Pred:
    """The output of a model on inputs `x` (rows as the model sees them)."""

    model: Model
    x: Any
    deep: bool  # the inputs are computed by trainable layers before this one


@dataclass(eq=False)
class Diff:
    """prediction - target (either order)."""

    pred: Pred
    out: Any  # the prediction tensor as it enters the subtraction
    target: Any
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

    tensor: Any = None
    loader: LoaderInfo | None = None
    position: int = 0


@dataclass(eq=False)
class LoaderInfo:
    """What a DataLoader iterator says about batching."""

    dataset: Any
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
    x: Any = None  # detached clones, while under the store cap
    y: Any = None
    x_sources: list[Source] = field(default_factory=list)
    y_sources: list[Source] = field(default_factory=list)
    stepped: bool = False


@dataclass(eq=False)
class OptInfo:
    """An optimizer, as its step hooks see it."""

    kind: str
    params: list[Any]
    ids: set[int]
    initial: dict[int, np.ndarray]
    hyper: dict[str, Any]
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


@dataclass
class Analysis:
    """What the records add up to: a Problem, or the reason there is none."""

    problem: Problem | None
    reason: str
    steps: int
    step_kind: str


# --- helpers -------------------------------------------------------------------------------


def _numpy(t: Any) -> np.ndarray:
    """A float64 copy of a tensor's values (never a view of its memory)."""
    return np.array(t.detach().cpu().double().numpy(), dtype=np.float64, copy=True)


def _number(value: Any) -> float | None:
    """A Python or one-element (non-trainable) tensor number, else None."""
    import torch

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
        return float(value.detach().reshape(-1)[0])
    return None


def _func_name(func: Any, cache: dict[Any, str]) -> str:
    try:
        return cache[func]
    except (KeyError, TypeError):
        pass
    name = getattr(func, "__name__", "") or ""
    if name in ("__get__", "__set__"):
        owner = getattr(func, "__self__", None)
        name = f"{getattr(owner, '__name__', '')}.{name}"
    with contextlib.suppress(TypeError):
        cache[func] = name
    return name


def _describe_module(module: Any) -> str:
    name = type(module).__name__
    if name == "Linear":
        return f"Linear({module.in_features}→{module.out_features})"
    return name


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- the recorder ---------------------------------------------------------------------------


class Recorder:
    """Collects what the hooks and the function mode see, and writes the capture."""

    def __init__(self, out: Path, script: Path) -> None:
        self.out = out
        self.script = script
        self.pid = os.getpid()
        self.started = time.monotonic()
        self.enabled = True
        self.internal_error = ""
        self.tags: dict[int, tuple[weakref.ref, Any]] = {}
        self.tag_limit = 20_000
        self.names: dict[Any, str] = {}
        self.models: dict[tuple, Model] = {}
        self.lineages = 0
        self.backwards = 0
        self.records: list[Backward] = []
        self.last: Backward | None = None
        self.stored_bytes = 0
        self.checked = 0
        self.opts: dict[int, OptInfo] = {}
        self.opt_param_ids: set[int] = set()
        self.pending: Snapshot | None = None
        self.manual: dict[int, Manual] = {}
        self.modules: dict[int, tuple[int, str]] = {}  # id(param) -> (id(layer), layer)
        self.seen_modules: set[int] = set()
        self.notes: list[str] = []
        self.kept_grads: set[int] = set()  # lineages whose .grad is never cleared
        self.write_interval = 1.0
        self.last_write = 0.0
        self.end: dict[str, Any] = {"end": "running"}

    # tags
    def tag(self, tensor: Any) -> Any:
        entry = self.tags.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None

    def set_tag(self, tensor: Any, tag: Any) -> None:
        self.tags[id(tensor)] = (weakref.ref(tensor), tag)
        if len(self.tags) > self.tag_limit:
            self.tags = {k: v for k, v in self.tags.items() if v[0]() is not None}
            self.tag_limit = max(20_000, 2 * len(self.tags))

    def weight_view(self, tensor: Any) -> WeightView | None:
        import torch

        if not isinstance(tensor, torch.Tensor):
            return None
        tag = self.tag(tensor)
        if isinstance(tag, WeightView):
            return tag
        if tensor.requires_grad and tensor.is_leaf:
            return WeightView(tensor, False)
        return None

    def model_for(self, view: WeightView, bias: Any, p: int, k: int) -> Model:
        key = (id(view.leaf), view.transposed, id(bias) if bias is not None else None, p, k)
        model = self.models.get(key)
        if model is None:
            lineage = self.lineages
            for other in self.models.values():  # the same weight with or without its bias
                if other.weight is view.leaf:
                    lineage = other.lineage
                    break
            else:
                self.lineages += 1
            model = Model(view.leaf, view.transposed, bias, p, k, lineage)
            self.models[key] = model
        return model

    # the function mode's callback
    def observe(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        import torch

        name = _func_name(func, self.names)
        if not isinstance(out, torch.Tensor) or not args:
            return
        first = args[0]
        if name in VIEWS or name in TRANSPOSES:
            self.on_view(name, first, args, out)
        elif name in INDEXING:
            self.on_index(name, first, args, kwargs, out)
        elif name == "linear":
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            view = self.weight_view(weight)
            bias_view = self.weight_view(bias) if bias is not None else None
            if view is not None and self.weight_view(first) is None and (bias is None or bias_view):
                self.on_model(first, WeightView(view.leaf, not view.transposed), bias_view, out)
        elif name in MATMULS and len(args) > 1:
            x, w = (args[1], args[0]) if name == "__rmatmul__" else (args[0], args[1])
            view = self.weight_view(w)
            if view is not None and isinstance(x, torch.Tensor) and self.weight_view(x) is None:
                self.on_model(x, view, None, out)
        elif name in ADDS and len(args) > 1:
            self.on_add(args[0], args[1], kwargs, out)
        elif name in SUBS and len(args) > 1:
            self.on_sub(args[0], args[1], kwargs, out)
        elif name in MULS and len(args) > 1:
            self.on_mul(args[0], args[1], out)
        elif name in DIVS and len(args) > 1:
            tag = self.tag(first)
            divisor = _number(args[1])
            if isinstance(tag, SqErr) and divisor and kwargs.get("rounding_mode") is None:
                rows = _rows(tag.diff.out)
                self.set_tag(
                    out,
                    SqErr(
                        tag.diff,
                        tag.factor / divisor,
                        tag.divisor,
                        tag.per_row or divisor == rows,
                    ),
                )
        elif name in POWS:
            exponent = 2 if name == "square" else (args[1] if len(args) > 1 else None)
            tag = self.tag(first)
            if isinstance(tag, Diff) and _number(exponent) == 2.0:
                self.set_tag(out, SqErr(tag, 1.0, 1.0, False))
        elif name in REDUCTIONS:
            self.on_reduce(name, first, args, kwargs, out)
        elif name == "mse_loss":
            self.on_mse(args, kwargs, out)
        if name.endswith(("_loss", "cross_entropy", "_with_logits")) and self.tag(out) is None:
            self.set_tag(out, Foreign(name))

    def on_view(self, name: str, first: Any, args: tuple, out: Any) -> None:
        tag = self.tag(first)
        transposing = name in TRANSPOSES
        if transposing and name in ("transpose", "permute", "swapaxes") and first.dim() != 2:
            return
        if tag is None:
            view = self.weight_view(first) if name != "detach" else None
            if view is None:
                return
            tag = view
        if isinstance(tag, WeightView):
            self.set_tag(out, WeightView(tag.leaf, tag.transposed ^ transposing))
        elif not transposing and out.numel() == first.numel():
            self.set_tag(out, tag)

    def on_index(self, name: str, first: Any, args: tuple, kwargs: dict, out: Any) -> None:
        import torch

        if not isinstance(first, torch.Tensor) or first.dim() == 0 or out.dim() == 0:
            return
        tag = self.tag(first)
        if isinstance(tag, Pred):  # model(x)[:, 0] of a one-output model: the same prediction
            if out.numel() == first.numel():
                self.set_tag(out, tag)
            return
        if name == "__getitem__":
            index = args[1] if len(args) > 1 else None
            if isinstance(index, int) or index is None:
                return
            if isinstance(index, tuple) and (not index or isinstance(index[0], int)):
                return
        else:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if dim != 0:
                return
        if self.weight_view(first) is not None:
            return
        self.set_tag(out, Source(tensor=first))

    def on_model(self, x: Any, view: WeightView, bias: WeightView | None, out: Any) -> None:
        import torch

        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2) or out.dim() > 2:
            return
        p = int(x.shape[-1])
        k = int(out.shape[-1]) if out.dim() == x.dim() else 1
        if p * k != view.leaf.numel():
            return
        if out.dim() == 2 and x.dim() == 2 and out.shape[0] != x.shape[0]:
            return
        if bias is not None and (bias.transposed or bias.leaf.numel() not in (1, k)):
            return
        model = self.model_for(view, bias.leaf if bias is not None else None, p, k)
        deep = bool(x.requires_grad) or isinstance(self.tag(x), Pred)
        self.set_tag(out, Pred(model, x, deep))

    def on_scalar_model(self, leaf: Any, x: Any, out: Any) -> None:
        if (x.dim() == 2 and x.shape[1] != 1) or x.dim() > 2 or out.shape != x.shape:
            return
        model = self.model_for(WeightView(leaf, False), None, 1, 1)
        self.set_tag(out, Pred(model, x.reshape(-1, 1) if x.dim() == 1 else x, x.requires_grad))

    def on_add(self, a: Any, b: Any, kwargs: dict, out: Any) -> None:
        if kwargs.get("alpha", 1) != 1:
            return
        for pred_t, bias_t in ((a, b), (b, a)):
            tag = self.tag(pred_t)
            if isinstance(tag, Pred) and tag.model.bias is None:
                view = self.weight_view(bias_t)
                model = tag.model
                if (
                    view is not None
                    and not view.transposed
                    and view.leaf is not model.weight
                    and view.leaf.numel() in (1, model.k)
                    and out.shape == pred_t.shape
                ):
                    biased = self.model_for(
                        WeightView(model.weight, model.transposed), view.leaf, model.p, model.k
                    )
                    self.set_tag(out, Pred(biased, tag.x, tag.deep))
                return

    def on_sub(self, a: Any, b: Any, kwargs: dict, out: Any) -> None:
        import torch

        if kwargs.get("alpha", 1) != 1:
            return
        for pred_t, target in ((a, b), (b, a)):
            tag = self.tag(pred_t)
            if isinstance(tag, Pred) and isinstance(target, torch.Tensor):
                if isinstance(self.tag(target), Pred):
                    return
                numel = out.numel()
                broadcast = numel > max(pred_t.numel(), target.numel())
                self.set_tag(out, Diff(tag, pred_t, target, numel, broadcast))
                return

    def on_mul(self, a: Any, b: Any, out: Any) -> None:
        import torch

        tag_a, tag_b = self.tag(a), self.tag(b)
        if a is b and isinstance(tag_a, Diff):
            self.set_tag(out, SqErr(tag_a, 1.0, 1.0, False))
            return
        for tag, other in ((tag_a, b), (tag_b, a)):
            if isinstance(tag, SqErr):
                value = _number(other)
                if value is not None:
                    self.set_tag(out, SqErr(tag.diff, tag.factor * value, tag.divisor, tag.per_row))
                return
        for w, x in ((a, b), (b, a)):
            view = self.weight_view(w)
            if (
                view is not None
                and view.leaf.numel() == 1
                and isinstance(x, torch.Tensor)
                and x.numel() > 1
                and self.weight_view(x) is None
            ):
                self.on_scalar_model(view.leaf, x, out)
                return

    def on_reduce(self, name: str, first: Any, args: tuple, kwargs: dict, out: Any) -> None:
        tag = self.tag(first)
        if not isinstance(tag, SqErr):
            return
        dims = args[1] if len(args) > 1 and not isinstance(args[1], bool) else None
        dims = kwargs.get("dim", kwargs.get("axis", dims))
        if dims is None:
            reduced = first.numel()
        else:
            dims = [dims] if isinstance(dims, int) else list(dims)
            reduced = math.prod(int(first.shape[d]) for d in dims) if dims else first.numel()
        divisor = tag.divisor * reduced if name == "mean" else tag.divisor
        self.set_tag(out, SqErr(tag.diff, tag.factor, divisor, tag.per_row))

    def on_mse(self, args: tuple, kwargs: dict, out: Any) -> None:
        import torch

        inp = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not isinstance(inp, torch.Tensor) or not isinstance(target, torch.Tensor):
            return
        if kwargs.get("weight") is not None or (len(args) > 5 and args[5] is not None):
            return
        reduction = kwargs.get("reduction", args[4] if len(args) > 4 else "mean")
        size_average = kwargs.get("size_average", args[2] if len(args) > 2 else None)
        reduce = kwargs.get("reduce", args[3] if len(args) > 3 else None)
        if size_average is not None or reduce is not None:
            from torch.nn import _reduction

            reduction = _reduction.legacy_get_string(size_average, reduce, emit_warning=False)
        for pred_t, tgt in ((inp, target), (target, inp)):
            tag = self.tag(pred_t)
            if isinstance(tag, Pred) and not isinstance(self.tag(tgt), Pred):
                shape = torch.broadcast_shapes(pred_t.shape, tgt.shape)
                numel = math.prod(shape)
                broadcast = numel > max(pred_t.numel(), tgt.numel())
                diff = Diff(tag, pred_t, tgt, numel, broadcast)
                divisor = float(numel) if reduction == "mean" else 1.0
                self.set_tag(out, SqErr(diff, 1.0, divisor, False))
                return

    # backward
    def before_backward(self, loss: Any) -> Backward | None:
        import torch

        if not isinstance(loss, torch.Tensor):
            return None
        self.backwards += 1
        value = float(loss.detach().reshape(-1)[0]) if loss.numel() == 1 else math.nan
        record = Backward(value)
        tag = self.tag(loss)
        if isinstance(tag, SqErr) and loss.numel() == 1:
            diff = tag.diff
            model = diff.pred.model
            record.model = model
            record.deep = diff.pred.deep
            rows = _rows(diff.out)
            if tag.divisor == diff.numel:
                mean, factor = True, tag.factor
            else:
                mean, factor = False, tag.factor / tag.divisor
            per_row = tag.per_row or (not mean and tag.divisor == rows and rows > 1)
            record.spec = Spec(mean, factor, per_row, diff.broadcast, rows, diff.numel)
            if self.checked < CHECK_LOSSES:
                self.checked += 1
                record.spec.checked = _check_loss(record.spec, diff, value)
            self.store_batch(record, diff)
            self.check_manual(model)
            self.check_kept_grads(model)
        elif isinstance(tag, Foreign):
            record.what = tag.name
        else:
            grad_fn = getattr(loss, "grad_fn", None)
            record.what = type(grad_fn).__name__ if grad_fn is not None else "no graph"
        self.last = record
        if len(self.records) < STORE_RECORDS:
            self.records.append(record)
        return record

    def after_backward(self, record: Backward | None) -> None:
        if record is None or record.model is None:
            return
        model = record.model
        params = model.params()
        if any(id(p) in self.opt_param_ids for p in params):
            return
        grads = [None if p.grad is None else _numpy(p.grad) for p in params]
        self.pending = Snapshot(record, model, [_numpy(p) for p in params], grads)

    def store_batch(self, record: Backward, diff: Diff) -> None:
        x, y = diff.pred.x, diff.target
        size = x.numel() * x.element_size() + y.numel() * y.element_size()
        if self.stored_bytes + size <= STORE_BYTES or self.stored_bytes == 0:
            self.stored_bytes += size
            record.x = x.detach().clone()
            record.y = y.detach().clone()
            record.x_sources = self.sources(x)
            record.y_sources = self.sources(y)

    def sources(self, tensor: Any) -> list[Source]:
        tag = self.tag(tensor)
        return [tag] if isinstance(tag, Source) else []

    def check_kept_grads(self, model: Model) -> None:
        """Gradients left from an earlier step add to this one's (no zero_grad)."""
        if model.lineage in self.kept_grads or self.backwards > 50 or not self.records:
            return
        previous = self.records[-1]
        if previous.stepped and previous.model is not None:
            if previous.model.lineage != model.lineage:
                return
            for p in model.params():
                if p.grad is not None and bool(p.grad.detach().abs().sum() != 0):
                    self.kept_grads.add(model.lineage)
                    return

    # manual updates
    def check_manual(self, model: Model | None = None) -> None:
        import torch

        snap = self.pending
        if snap is None:
            return
        old = snap.model
        current = old.params()
        rebound = False
        if model is not None and model is not old and model.weight is not old.weight:
            same_shape = model.weight.shape == old.weight.shape and (
                (model.bias is None) == (old.bias is None)
                and (model.bias is None or model.bias.shape == old.bias.shape)
            )
            if not same_shape or model.lineage == old.lineage:
                self.pending = None
                return
            current = model.params()  # rebinding: w = (w - lr * w.grad).requires_grad_()
            rebound = True
        if any(id(p) in self.opt_param_ids for p in current):
            self.pending = None
            return
        values = [_numpy(p) for p in current]
        deltas = [v - s for v, s in zip(values, snap.values, strict=True)]
        if not any(np.any(d != 0) for d in deltas):
            if model is not None:
                self.pending = None  # a backward without an update (a gradient check)
            return
        self.pending = None
        if rebound and model is not None:
            model.lineage = old.lineage
            stale = [key for key, m in self.models.items() if m.weight is old.weight]
            for key in stale:  # the old tensors are gone from the script: do not keep them
                del self.models[key]
        update = None
        if not any(g is None for g in snap.grads):
            g = np.concatenate([x.reshape(-1) for x in snap.grads])  # type: ignore[union-attr]
            d = np.concatenate([x.reshape(-1) for x in deltas])
            w = np.concatenate([x.reshape(-1) for x in values])
            eps = max(float(torch.finfo(p.dtype).eps) for p in current)
            update = Update(float(d @ g), float(g @ g), float(d @ d), float(w @ w), eps)
        unit = self.manual.get(old.lineage)
        if unit is None:
            initial = _model_arrays(old, snap.values)
            unit = self.manual[old.lineage] = Manual(old, initial)
        if rebound and model is not None:
            unit.model = model
            unit.rebound = True
        unit.updates.append(update)
        snap.record.stepped = True
        unit.records.append(snap.record if len(unit.records) < STORE_RECORDS else None)
        unit.losses.append(snap.record.loss)
        self.maybe_write()

    # optimizer hooks
    def pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        info = self.opts.get(id(optimizer))
        if info is None:
            info = self.new_optimizer(optimizer)
        info.steps += 1
        lr = _number(optimizer.param_groups[0].get("lr")) if optimizer.param_groups else None
        info.lrs.append(math.nan if lr is None else lr)
        record = self.last
        if (
            record is not None
            and not record.stepped
            and record.model is not None
            and all(id(p) in info.ids for p in record.model.params())
        ):
            record.stepped = True
            info.records.append(record if len(info.records) < STORE_RECORDS else None)
            info.losses.append(record.loss)
        else:
            info.records.append(None)
            info.losses.append(math.nan)
        if self.pending is not None and any(id(p) in info.ids for p in self.pending.model.params()):
            self.pending = None

    def new_optimizer(self, optimizer: Any) -> OptInfo:
        cls = type(optimizer).__name__
        params = [p for group in optimizer.param_groups for p in group["params"]]
        notes: list[str] = []
        groups = optimizer.param_groups
        hyper = dict(groups[0]) if groups else {}
        hyper.pop("params", None)
        keys = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps", "alpha")
        for group in groups[1:]:
            if any(repr(group.get(key)) != repr(hyper.get(key)) for key in keys):
                notes.append(f"{cls}'s parameter groups have different hyperparameters")
                break
        info = OptInfo(
            kind=cls,
            params=params,
            ids={id(p) for p in params},
            initial={id(p): _numpy(p) for p in params},
            hyper=hyper,
            notes=notes,
        )
        self.opts[id(optimizer)] = info
        self.opt_param_ids |= info.ids
        return info

    def post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.maybe_write()

    def on_module(self, module: Any, inputs: Any, output: Any) -> None:
        if id(module) in self.seen_modules:
            return
        self.seen_modules.add(id(module))
        own = list(module.parameters(recurse=False))
        if own:
            label = _describe_module(module)
            for p in own:
                self.modules.setdefault(id(p), (id(module), label))

    def on_loader_batch(self, iterator: Any, batch: Any) -> None:
        import torch
        from torch.utils.data import RandomSampler

        sampler = getattr(iterator, "_index_sampler", None)
        info = LoaderInfo(
            dataset=getattr(iterator, "_dataset", None),
            batch_size=getattr(sampler, "batch_size", None),
            drop_last=bool(getattr(iterator, "_drop_last", False)),
            shuffle=isinstance(getattr(sampler, "sampler", None), RandomSampler),
        )
        items = batch if isinstance(batch, (list, tuple)) else [batch]
        for position, item in enumerate(items):
            if isinstance(item, torch.Tensor):
                self.set_tag(item, Source(loader=info, position=position))

    # writing
    def maybe_write(self) -> None:
        now = time.monotonic()
        if now - self.last_write >= self.write_interval:
            self.write()

    def write(self) -> None:
        """Write the capture so far (atomically: a failed write keeps the previous one)."""
        if os.getpid() != self.pid:
            return
        began = time.monotonic()
        try:
            self.check_manual()
            analysis = analyse(self)
            write_capture(self.out, self.meta(analysis), analysis.problem)
        except Exception:  # the capture must never break the run; keep the previous file
            self.internal_error = traceback.format_exc(limit=4)
        spent = time.monotonic() - began
        self.last_write = time.monotonic()
        self.write_interval = max(1.0, 10 * spent)

    def meta(self, analysis: Analysis) -> dict[str, Any]:
        meta = dict(self.end)
        meta.update(
            steps=analysis.steps,
            step_kind=analysis.step_kind,
            reason=analysis.reason,
            backwards=self.backwards,
            elapsed=time.monotonic() - self.started,
            optimizers=[self.movement(info) for info in self.opts.values()],
        )
        if self.internal_error:
            meta["internal_error"] = self.internal_error
        return meta

    @staticmethod
    def movement(info: OptInfo) -> dict[str, Any]:
        """An optimizer's steps, and whether any of its parameters has moved since the first."""
        changed = any(not np.array_equal(info.initial.get(id(p)), _numpy(p)) for p in info.params)
        return {"kind": info.kind, "steps": info.steps, "changed": changed}

    def stop(self, signum: int, frame: Any) -> None:
        """SIGTERM / SIGXCPU: write what there is and leave."""
        if os.getpid() != self.pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.enabled = False
        self.end = {"end": "signal", "signal": signal.Signals(signum).name}
        self.write()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)


def _rows(tensor: Any) -> int:
    return int(tensor.shape[0]) if tensor.dim() >= 1 else 1


def _model_arrays(model: Model, values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    w = values[0]
    w = (w.T if model.transposed else w).reshape(model.p, model.k)
    if model.bias is None:
        return w, np.zeros(model.k)
    return w, np.broadcast_to(values[1].reshape(-1), (model.k,)).copy()


def _check_loss(spec: Spec, diff: Diff, value: float) -> bool:
    """Recompute the loss from the recognised formula, in float64."""
    pred = _numpy(diff.out)
    target = _numpy(diff.target)
    squares = (pred - target) ** 2
    total = squares.mean() if spec.mean else squares.sum()
    expected = spec.factor * float(total)
    return abs(expected - value) <= SPEC_RTOL * max(abs(expected), abs(value)) + 1e-7


# --- analysis: from records to a Problem -----------------------------------------------------


@dataclass
class Unit:
    """Something that trained: an optimizer or a lineage of manual updates."""

    label: str
    steps: int
    records: list[Backward | None]
    losses: list[float]
    opt: OptInfo | None = None
    manual: Manual | None = None


def analyse(rec: Recorder) -> Analysis:
    units: list[Unit] = []
    for info in rec.opts.values():
        units.append(Unit(info.kind, info.steps, info.records, info.losses, opt=info))
    for unit in rec.manual.values():
        units.append(
            Unit("manual updates", len(unit.losses), unit.records, unit.losses, manual=unit)
        )
    if not units:
        what = {r.what for r in rec.records if r.what}
        if rec.backwards:
            reason = (
                f"the script ran {_plural(rec.backwards, 'backward pass')} but no optimizer "
                "step or manual parameter update was seen"
            )
        else:
            reason = "the script ran, but trained nothing (no backward pass, no optimizer step)"
        if what:
            reason += f" (losses: {', '.join(sorted(what))})"
        return Analysis(None, reason, 0, "optimizer")
    units.sort(key=lambda u: -u.steps)
    unit = units[0]
    step_kind = "manual" if unit.manual is not None else "optimizer"
    notes = list(rec.notes)
    if len(units) > 1:
        others = ", ".join(f"{u.label} ({_plural(u.steps, 'step')})" for u in units[1:])
        notes.append(f"the script trains more than one thing; captured {unit.label}, not {others}")
    records = [r for r in unit.records if r is not None and r.model is not None]
    if not records:
        seen = sorted({r.what for r in rec.records if r.what})
        losses = f" (the loss came from {', '.join(seen)})" if seen else ""
        reason = (
            f"saw {_plural(unit.steps, 'step')} of {unit.label}, but no squared-error loss of "
            f"one linear layer's output{losses}"
        )
        return Analysis(None, reason, unit.steps, step_kind)
    lineages = Counter(r.model.lineage for r in records)  # type: ignore[union-attr]
    lineage = lineages.most_common(1)[0][0]
    records = [r for r in records if r.model.lineage == lineage]  # type: ignore[union-attr]
    model = records[-1].model
    assert model is not None
    if unit.manual is not None:
        model = unit.manual.model
    if unit.opt is not None and unit.opt.ids - {id(p) for p in model.params()}:
        return Analysis(None, _layers_reason(rec, unit.opt), unit.steps, step_kind)
    if any(r.deep for r in records):
        reason = "the model's last linear layer takes inputs computed by trainable layers: "
        reason += "the probe handles one linear layer"
        return Analysis(None, reason, unit.steps, step_kind)
    try:
        problem = build_problem(rec, unit, model, records, notes)
    except ValueError as error:
        return Analysis(None, str(error), unit.steps, step_kind)
    return Analysis(problem, "", unit.steps, step_kind)


def _layers_reason(rec: Recorder, info: OptInfo) -> str:
    layers: dict[int, str] = {}
    for p in info.params:
        owner = rec.modules.get(id(p))
        if owner is None:
            return (
                f"the optimizer trains {_plural(len(info.params), 'parameter tensor')}, more "
                "than one linear layer's weight and bias: the probe handles one linear layer"
            )
        layers.setdefault(owner[0], owner[1])
    return (
        f"a model with {_plural(len(layers), 'layer')} ({', '.join(layers.values())}): "
        "the probe handles one linear layer"
    )


def build_problem(
    rec: Recorder, unit: Unit, model: Model, records: list[Backward], notes: list[str]
) -> Problem:
    loss = _loss(records, notes)
    data = _data(records, model, notes)
    steps = unit.steps
    losses = np.array(unit.losses, dtype=np.float64)
    if model.lineage in rec.kept_grads:
        notes.append(
            "the gradients are never cleared: each step uses the sum of all gradients so far"
        )
    if unit.opt is not None:
        optimizer = _optimizer(unit.opt, notes)
        initial_values = [unit.opt.initial[id(p)] for p in model.params()]
        initial = _model_arrays(model, initial_values)
    else:
        assert unit.manual is not None
        optimizer = _manual_optimizer(unit.manual, notes)
        initial = unit.manual.initial
        if unit.manual.rebound:
            notes.append(
                "the script re-creates its parameters at each update (w = w - lr * w.grad): "
                "an update after the last backward pass is not seen"
            )
    if optimizer is not None and model.lineage in rec.kept_grads:
        optimizer = replace(optimizer, accumulate=True)
    if model.bias is not None and model.bias.numel() == 1 and model.k > 1:
        notes.append(f"one bias value is shared by the {model.k} outputs")
    per_epoch = data.per_epoch(steps)
    return Problem(
        features=data.features,
        targets=data.targets,
        bias=model.bias is not None,
        loss=loss,
        optimizer=optimizer,
        batch=data.batch,
        shuffle=data.shuffle,
        drop_last=data.drop_last,
        epochs=per_epoch,
        steps=steps,
        init="given",
        initial=initial,
        source="run",
        notes=notes + data.notes,
        observed_losses=losses,
        final_params=model.weights(),
    )


def _loss(records: list[Backward], notes: list[str]) -> Loss:
    """One reduction for all steps; a sum divided by each batch's row count is a mean."""
    specs = [r.spec for r in records if r.spec is not None]
    if any(s.checked is False for s in specs):
        notes.append("the loss the script computed did not match the squared error recognised")
    broadcast = any(s.broadcast for s in specs)
    raw = Counter((s.mean, round(s.factor, 12)) for s in specs)
    as_mean = {round(s.factor if s.mean else s.factor * s.numel, 12) for s in specs}
    if len(raw) == 1:
        mean, factor = next(iter(raw))
        if not mean and all(s.per_row for s in specs) and len(as_mean) == 1:
            return Loss(mean=True, factor=next(iter(as_mean)), broadcast=broadcast)
        return Loss(mean=mean, factor=factor, broadcast=broadcast)
    if len(as_mean) == 1:
        return Loss(mean=True, factor=next(iter(as_mean)), broadcast=broadcast)
    (mean, factor), _ = raw.most_common(1)[0]
    notes.append("the loss's reduction changes between steps; the most common one is used")
    return Loss(mean=mean, factor=factor, broadcast=broadcast)


def _optimizer(info: OptInfo, notes: list[str]) -> Optimizer | None:
    notes.extend(info.notes)
    kind = OPTIMIZER_KINDS.get(info.kind)
    h = info.hyper
    if kind is None:
        notes.append(f"the optimizer {info.kind} is not one the probe replays")
        return None
    flags = []
    for key, default in (
        ("amsgrad", False),
        ("maximize", False),
        ("centered", False),
        ("lr_decay", 0),
        ("initial_accumulator_value", 0),
    ):
        if key in h and h[key] not in (default, None):
            flags.append(f"{key}={h[key]}")
    if flags:
        notes.append(f"{info.kind} with {', '.join(flags)} is not replayed")
        return None
    if info.notes:
        return None
    lrs = [x for x in info.lrs if not math.isnan(x)]
    if lrs and max(lrs) != min(lrs):
        notes.append(
            f"the learning rate changes during training (from {lrs[0]:g} to {lrs[-1]:g}); "
            "the first one is used"
        )
    settings: dict[str, Any] = {"kind": kind, "lr": lrs[0] if lrs else _number(h.get("lr")) or 0.0}
    for key in ("momentum", "dampening", "weight_decay", "eps", "alpha"):
        value = _number(h.get(key))
        if value is not None:
            settings[key] = value
    if "nesterov" in h:
        settings["nesterov"] = bool(h["nesterov"])
    if "betas" in h:
        betas = h["betas"]
        settings["betas"] = (float(_number(betas[0]) or 0.0), float(_number(betas[1]) or 0.0))
    return Optimizer(**settings)


def _manual_optimizer(unit: Manual, notes: list[str]) -> Optimizer | None:
    """lr = c when every update is -c times the gradient, up to rounding (c pooled over steps,
    so that the large early steps, measured most precisely, weigh most)."""
    updates = [u for u in unit.updates if u is not None and u.gg > 0]
    exact = len(updates) == len(unit.updates) and all(
        u.residual(u.own()) <= u.tolerance() for u in updates
    )
    if not updates or not exact:
        notes.append(
            "a manual update was not a constant times the gradient (momentum, weight decay or "
            "a per-parameter step): the update rule is unknown"
        )
        return None
    pooled = -sum(u.dg for u in updates) / sum(u.gg for u in updates)
    if all(u.residual(pooled) <= 2 * u.tolerance() for u in updates):
        return Optimizer(kind="manual", lr=_significant(pooled))
    first, last = updates[0].own(), updates[-1].own()
    notes.append(
        f"the manual step size changes during training (from {first:.6g} to {last:.6g}); "
        "the first one is used"
    )
    return Optimizer(kind="manual", lr=_significant(first))


def _significant(value: float) -> float:
    """A coefficient measured through float32 arithmetic, to the digits it carries."""
    return float(f"{value:.6g}")


# --- finding the whole data set ---------------------------------------------------------------


@dataclass
class Data:
    """The rows the model trains on, and how it walks through them."""

    features: np.ndarray
    targets: np.ndarray
    batch: int | None
    shuffle: bool
    drop_last: bool
    notes: list[str]
    full_batch: bool = False

    def per_epoch(self, steps: int) -> int | None:
        if self.full_batch:
            return steps
        rows = self.features.shape[0]
        size = rows if self.batch is None or self.batch >= rows else self.batch
        per_epoch = max(rows // size, 1) if self.drop_last else -(-rows // size)
        return steps // per_epoch if steps % per_epoch == 0 else None


def _data(records: list[Backward], model: Model, notes: list[str]) -> Data:
    stored = [r for r in records if r.x is not None]
    if not stored:
        raise ValueError("the training batches were too large to record")
    first = stored[0]
    k = model.k
    p = model.p
    if len(stored) >= 2 and all(
        r.x.shape == first.x.shape
        and r.y.shape == first.y.shape
        and bool((r.x == first.x).all())
        and bool((r.y == first.y).all())
        for r in stored[1:4]
    ):
        return _full(first, p, k, [])
    x_sources = [s for r in stored[:8] for s in r.x_sources]
    y_sources = [s for r in stored[:8] for s in r.y_sources]
    loader = next((s.loader for s in x_sources + y_sources if s.loader is not None), None)
    found = _match_sources(stored, x_sources, y_sources, p, k)
    if found is not None:
        features, targets, order = found
        if features.shape[0] <= first.x.reshape(-1, p).shape[0] and len(stored) == 1:
            return _full(first, p, k, [])
        if loader is not None and loader.batch_size is not None:
            return Data(features, targets, loader.batch_size, loader.shuffle, loader.drop_last, [])
        walk = _walk(order, features.shape[0])
        if walk.rows is not None:
            features, targets = features[walk.rows], targets[walk.rows]
        return Data(features, targets, walk.batch, walk.shuffle, walk.drop_last, walk.notes)
    if len(stored) == 1:
        return _full(first, p, k, [])
    return _union(stored, p, k, loader)


def _full(record: Backward, p: int, k: int, notes: list[str]) -> Data:
    x = _numpy(record.x).reshape(-1, p)
    y = _numpy(record.y).reshape(-1, k)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the inputs have {x.shape[0]} rows but the targets {y.shape[0]}")
    return Data(x, y, None, False, False, notes, full_batch=True)


def _candidates(sources: list[Source]) -> list[Any]:
    """Tensors or arrays a batch may come from, most specific first."""
    found: list[Any] = []
    for source in sources:
        if source.tensor is not None:
            found.append(source.tensor)
        elif source.loader is not None:
            found.extend(_dataset_arrays(source.loader.dataset, source.position))
    unique: dict[int, Any] = {}
    for item in found:
        unique.setdefault(id(item), item)
    return list(unique.values())


def _dataset_arrays(dataset: Any, position: int) -> list[Any]:
    """The columns of a data set: TensorDataset's tensors, a Subset's rows, tensor attributes."""
    import torch
    from torch.utils.data import Subset, TensorDataset

    if isinstance(dataset, TensorDataset):
        tensors = list(dataset.tensors)
        ordered = tensors[position : position + 1] + tensors
        return ordered
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        inner = _dataset_arrays(dataset.dataset, position)
        return [torch.as_tensor(a)[indices] for a in inner]
    try:
        length = len(dataset)
    except TypeError:
        return []
    arrays = []
    for value in vars(dataset).values() if hasattr(dataset, "__dict__") else []:
        is_array = isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim >= 1
        if is_array and value.shape[0] == length:
            arrays.append(value)
    return arrays


def _as_rows(candidate: Any, like: Any, width: int) -> np.ndarray | None:
    """A candidate as float64 rows of `width`, through the batch's dtype (float32 rounding)."""
    import torch

    tensor = torch.as_tensor(candidate).detach()
    if tensor.numel() == 0 or tensor.numel() % width or tensor.shape[0] * width != tensor.numel():
        return None
    return tensor.to(like.dtype).cpu().double().numpy().reshape(-1, width).copy()


def _match_sources(
    stored: list[Backward], x_sources: list[Source], y_sources: list[Source], p: int, k: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """The data set the batches are rows of, with the row indices of each batch."""
    xs = _candidates(x_sources)
    ys = _candidates(y_sources)
    if not xs:
        return None
    if not ys:
        ys = xs
    like_x, like_y = stored[0].x, stored[0].y
    for cx in xs:
        features = _as_rows(cx, like_x, p)
        if features is None:
            continue
        for cy in ys:
            if cy is cx and p != k:
                continue
            targets = _as_rows(cy, like_y, k)
            if targets is None or targets.shape[0] != features.shape[0]:
                continue
            order = _lookup(stored, features, targets, p, k)
            if order is not None:
                return features, targets, order
    return None


def _lookup(
    stored: list[Backward], features: np.ndarray, targets: np.ndarray, p: int, k: int
) -> list[np.ndarray] | None:
    index: dict[bytes, list[int]] = {}
    for row, values in enumerate(features):
        index.setdefault(values.tobytes(), []).append(row)
    order: list[np.ndarray] = []
    looked = 0
    for record in stored:
        xb = _numpy(record.x).reshape(-1, p)
        yb = _numpy(record.y).reshape(-1, k)
        if xb.shape[0] != yb.shape[0]:
            return None
        rows = np.empty(xb.shape[0], dtype=np.int64)
        for j in range(xb.shape[0]):
            matches = index.get(xb[j].tobytes())
            if not matches:
                return None
            hit = next((i for i in matches if np.array_equal(targets[i], yb[j])), None)
            if hit is None:
                return None
            rows[j] = hit
        order.append(rows)
        looked += xb.shape[0]
        if looked >= MATCH_ROWS:
            break
    return order


@dataclass
class Walk:
    """How a script goes through the rows of its data set, from the rows each step used."""

    batch: int
    shuffle: bool
    drop_last: bool
    rows: np.ndarray | None  # the data set's rows in the order the script visits them
    notes: list[str]


def _walk(order: list[np.ndarray], n: int) -> Walk:
    """Batch size, shuffling and dropping of the last batch, from the rows each step used.

    A script that goes through the rows in the same order every epoch (the data's own order,
    or a permutation drawn once) does not shuffle: the data set is reordered to that order.
    """
    batch = int(order[0].shape[0])
    epochs: list[list[int]] = [[]]
    seen: set[int] = set()
    for rows in order:
        values = [int(r) for r in rows]
        if len(seen) >= n or seen.intersection(values):
            epochs.append([])
            seen = set()
        epochs[-1].extend(values)
        seen.update(values)
    first = epochs[0]
    later = epochs[1:]
    if not later:  # the first epoch is not over: nothing to compare it with
        in_order = first == list(range(len(first)))
        return Walk(batch, not in_order, False, None, [])
    if not all(e == first[: len(e)] for e in later):
        return Walk(batch, True, len(first) < n, None, [])
    unseen = n - len(first)
    if unseen == 0:
        return Walk(batch, False, False, np.array(first), [])
    if unseen < batch and len(first) % batch == 0:
        rest = sorted(set(range(n)) - set(first))
        return Walk(batch, False, True, np.array(first + rest), [])
    note = f"the script trains on {len(first)} of the {n} rows of its data set, in a fixed order"
    return Walk(batch, False, False, np.array(first), [note])


def _union(stored: list[Backward], p: int, k: int, loader: LoaderInfo | None) -> Data:
    seen: dict[bytes, int] = {}
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    steps = 0
    for record in stored:
        xb = _numpy(record.x).reshape(-1, p)
        yb = _numpy(record.y).reshape(-1, k)
        if xb.shape[0] != yb.shape[0]:
            raise ValueError(f"the inputs have {xb.shape[0]} rows but the targets {yb.shape[0]}")
        fresh = False
        for j in range(xb.shape[0]):
            key = xb[j].tobytes() + yb[j].tobytes()
            if key not in seen:
                seen[key] = len(xs)
                xs.append(xb[j])
                ys.append(yb[j])
                fresh = True
        if not fresh and steps:
            break
        steps += 1
    batch = loader.batch_size if loader is not None and loader.batch_size else stored[0].x.shape[0]
    note = (
        f"the whole data set could not be traced: the probe uses the {len(xs)} distinct rows the "
        f"model saw in its first {_plural(steps, 'step')}"
    )
    return Data(
        np.array(xs),
        np.array(ys),
        int(batch),
        loader.shuffle if loader is not None else True,
        loader.drop_last if loader is not None else False,
        [note],
    )


# --- the capture file ------------------------------------------------------------------------


def write_capture(out: Path, meta: dict[str, Any], problem: Problem | None) -> None:
    """Write meta and problem to `out` atomically (a temporary file, then a rename)."""
    arrays: dict[str, np.ndarray] = {}
    if problem is not None:
        meta = dict(meta)
        meta["problem"] = {
            "bias": problem.bias,
            "loss": {
                "mean": problem.loss.mean,
                "factor": problem.loss.factor,
                "broadcast": problem.loss.broadcast,
            },
            "optimizer": None if problem.optimizer is None else _optimizer_json(problem.optimizer),
            "batch": problem.batch,
            "shuffle": problem.shuffle,
            "drop_last": problem.drop_last,
            "epochs": problem.epochs,
            "steps": problem.steps,
            "init": problem.init,
            "source": problem.source,
            "notes": problem.notes,
        }
        arrays["features"] = problem.features
        arrays["targets"] = problem.targets
        if problem.initial is not None:
            arrays["initial_w"], arrays["initial_b"] = problem.initial
        if problem.final_params is not None:
            arrays["final_w"], arrays["final_b"] = problem.final_params
        if problem.observed_losses is not None:
            arrays["observed_losses"] = problem.observed_losses
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_bytes(buffer.getvalue())
    os.replace(temporary, out)


def _optimizer_json(optimizer: Optimizer) -> dict[str, Any]:
    data = asdict(optimizer)
    data["betas"] = list(optimizer.betas)
    return data


def read_capture(path: Path) -> tuple[dict[str, Any], Problem | None]:
    """Read what `write_capture` wrote (no pickles: the file comes from a user's run)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        stored = meta.get("problem")
        if stored is None:
            return meta, None
        arrays = {name: np.array(data[name]) for name in data.files if name != "meta"}
    optimizer = stored["optimizer"]
    if optimizer is not None:
        known = {f.name for f in fields(Optimizer)}
        values = {key: value for key, value in optimizer.items() if key in known}
        values["betas"] = tuple(values.get("betas", (0.9, 0.999)))
        optimizer = Optimizer(**values)
    initial = (arrays["initial_w"], arrays["initial_b"]) if "initial_w" in arrays else None
    final = (arrays["final_w"], arrays["final_b"]) if "final_w" in arrays else None
    problem = Problem(
        features=arrays["features"],
        targets=arrays["targets"],
        bias=bool(stored["bias"]),
        loss=Loss(**stored["loss"]),
        optimizer=optimizer,
        batch=stored["batch"],
        shuffle=bool(stored["shuffle"]),
        drop_last=bool(stored["drop_last"]),
        epochs=stored["epochs"],
        steps=stored["steps"],
        init=stored["init"],
        initial=initial,
        source=stored["source"],
        notes=list(stored["notes"]),
        observed_losses=arrays.get("observed_losses"),
        final_params=final,
    )
    return meta, problem


# --- running the script ------------------------------------------------------------------------


def _install(rec: Recorder) -> list[Any]:
    """Hooks, the function mode and the DataLoader marker; returns what to undo."""
    from torch.nn.modules.module import register_module_forward_hook
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )
    from torch.overrides import TorchFunctionMode
    from torch.utils.data import dataloader

    def guarded(method: Any) -> Any:
        """Run a recording callback with recording off (its own torch calls are not the
        script's) and switch recording off for good if it fails."""

        def call(*args: Any) -> None:
            if not rec.enabled:
                return
            rec.enabled = False
            ok = False
            try:
                method(*args)
                ok = True
            except Exception:
                rec.internal_error = traceback.format_exc(limit=6)
            finally:
                rec.enabled = ok

        return call

    observe = guarded(rec.observe)

    class RecordingMode(TorchFunctionMode):
        """Sees every torch call; records around it, never changes it."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if rec.enabled and getattr(func, "__name__", "") == "backward" and args:
                loss = args[0]
                if isinstance(loss, (list, tuple)):
                    loss = loss[0] if len(loss) == 1 else None
                records: list[Backward | None] = []
                guarded(lambda: records.append(rec.before_backward(loss)))()
                out = func(*args, **kwargs)
                if records:
                    guarded(rec.after_backward)(records[0])
                return out
            out = func(*args, **kwargs)
            if rec.enabled:
                observe(func, args, kwargs, out)
            return out

    handles = [
        register_optimizer_step_pre_hook(guarded(rec.pre_step)),
        register_optimizer_step_post_hook(guarded(rec.post_step)),
        register_module_forward_hook(guarded(rec.on_module)),
    ]
    base = dataloader._BaseDataLoaderIter
    original_next = base.__next__
    mark = guarded(rec.on_loader_batch)

    def marked_next(self: Any) -> Any:
        batch = original_next(self)
        mark(self, batch)
        return batch

    base.__next__ = marked_next  # type: ignore[method-assign]
    mode = RecordingMode()
    mode.__enter__()
    undo: list[Any] = [lambda: mode.__exit__(None, None, None)]
    undo += [handle.remove for handle in handles]
    undo.append(lambda: setattr(base, "__next__", original_next))
    return undo


def _exception_line(error: BaseException, script: Path) -> dict[str, Any]:
    """The exception as one line, the script's own last frame and the formatted traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    line = None
    for frame in frames:
        if Path(frame.filename).resolve() == script.resolve():
            line = frame.lineno
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    memory = isinstance(error, MemoryError) or any(m in str(error) for m in MEMORY_MARKERS)
    return {
        "type": type(error).__name__,
        "message": message[:500],
        "line": line,
        "traceback": text[-4000:],
        "memory": memory,
    }


def _print_user_traceback(error: BaseException) -> None:
    """The traceback as `python SCRIPT` would print it: without runpy's and the recorder's
    frames."""
    here = str(Path(__file__).resolve())
    report = traceback.TracebackException.from_exception(error)
    kept = [f for f in report.stack if f.filename != here and "runpy" not in f.filename]
    report.stack = traceback.StackSummary.from_list(kept)
    print("".join(report.format()), end="", file=sys.stderr)


def run(out: Path, script: Path, args: Sequence[str]) -> int:
    """Run `script` as __main__ under the recorder; returns the process exit code."""
    rec = Recorder(out, script)
    rec.write()
    try:
        import torch  # noqa: F401
    except ImportError as error:
        rec.end = {"end": "no-torch", "message": str(error)}
        rec.write()
        return 3
    signal.signal(signal.SIGTERM, rec.stop)
    signal.signal(signal.SIGXCPU, rec.stop)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.parent))
    code = 0
    undo = _install(rec)
    try:
        runpy.run_path(str(script), run_name="__main__")
        rec.end = {"end": "ok"}
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        rec.end = {"end": "exit", "code": code}
    except BaseException as error:  # the script's own failure, reported to the parent
        memory = isinstance(error, MemoryError)
        try:
            rec.end = {"end": "exception", "exception": _exception_line(error, script)}
            _print_user_traceback(error)
        except MemoryError:
            rec.end = {"end": "exception", "exception": {"type": type(error).__name__}}
        rec.end["exception"]["memory"] = memory or rec.end["exception"].get("memory", False)
        traceback.clear_frames(error.__traceback__)
        del error
        code = 1
    finally:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()
    import gc

    gc.collect()
    rec.enabled = False
    rec.write()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) < 2:
        print("usage: python -m advisor.probe.instrument OUT SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    out, script = Path(arguments[0]).resolve(), Path(arguments[1]).resolve()
    return run(out, script, arguments[2:])


if __name__ == "__main__":
    sys.exit(main())
