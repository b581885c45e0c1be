"""The recorder of `--run`: what the hooks and the function mode see, turned into records.

Each torch call the script makes is shown to `Recorder.observe`, which tags its output (by
identity, through weak references) as a weight, a prediction, an error or a squared error;
at each `backward()` the loss's tag says which linear model, inputs and targets it came from.
Optimizer hooks and comparisons of the parameters between backward passes give the updates.
The recorder writes the capture file now and then, and at the end.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
import traceback
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from advisor.probe.analysis import Analysis, analyse
from advisor.probe.capturefile import write_capture
from advisor.probe.records import (
    Backward,
    Diff,
    Foreign,
    LoaderInfo,
    Manual,
    Model,
    OptInfo,
    Pred,
    Snapshot,
    Source,
    Spec,
    SqErr,
    Tag,
    Update,
    WeightView,
    copy_values,
    number,
)
from advisor.torchapi import (
    DISPATCH_ADDS,
    DISPATCH_DIVS,
    DISPATCH_INDEXING,
    DISPATCH_MATMULS,
    DISPATCH_MULS,
    DISPATCH_POWS,
    DISPATCH_REDUCTIONS,
    DISPATCH_SUBS,
    DISPATCH_TRANSPOSES,
    DISPATCH_VIEWS,
)

if TYPE_CHECKING:  # torch is imported only when the script runs, in the child
    import torch

STORE_BYTES = 64 << 20  # batch copies kept for finding the data set
STORE_RECORDS = 20_000  # backward records kept in full (later ones keep only the loss)
CHECK_LOSSES = 3  # backward passes whose loss is recomputed to check the recognised formula
SPEC_RTOL = 1e-4


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


class Recorder:
    """Collects what the hooks and the function mode see, and writes the capture."""

    def __init__(self, out: Path, script: Path) -> None:
        self.out = out
        self.script = script
        self.pid = os.getpid()
        self.started = time.monotonic()
        self.enabled = True
        self.internal_error = ""
        self.tags: dict[int, tuple[weakref.ref[torch.Tensor], Tag]] = {}
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
    def tag(self, tensor: object) -> Tag | None:
        entry = self.tags.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None

    def set_tag(self, tensor: torch.Tensor, tag: Tag) -> None:
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
        if name in DISPATCH_VIEWS or name in DISPATCH_TRANSPOSES:
            self.on_view(name, first, args, out)
        elif name in DISPATCH_INDEXING:
            self.on_index(name, first, args, kwargs, out)
        elif name == "linear":
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            view = self.weight_view(weight)
            bias_view = self.weight_view(bias) if bias is not None else None
            if view is not None and self.weight_view(first) is None and (bias is None or bias_view):
                self.on_model(first, WeightView(view.leaf, not view.transposed), bias_view, out)
        elif name in DISPATCH_MATMULS and len(args) > 1:
            x, w = (args[1], args[0]) if name == "__rmatmul__" else (args[0], args[1])
            view = self.weight_view(w)
            if view is not None and isinstance(x, torch.Tensor) and self.weight_view(x) is None:
                self.on_model(x, view, None, out)
        elif name in DISPATCH_ADDS and len(args) > 1:
            self.on_add(args[0], args[1], kwargs, out)
        elif name in DISPATCH_SUBS and len(args) > 1:
            self.on_sub(args[0], args[1], kwargs, out)
        elif name in DISPATCH_MULS and len(args) > 1:
            self.on_mul(args[0], args[1], out)
        elif name in DISPATCH_DIVS and len(args) > 1:
            tag = self.tag(first)
            divisor = number(args[1])
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
        elif name in DISPATCH_POWS:
            exponent = 2 if name == "square" else (args[1] if len(args) > 1 else None)
            tag = self.tag(first)
            if isinstance(tag, Diff) and number(exponent) == 2.0:
                self.set_tag(out, SqErr(tag, 1.0, 1.0, False))
        elif name in DISPATCH_REDUCTIONS:
            self.on_reduce(name, first, args, kwargs, out)
        elif name == "mse_loss":
            self.on_mse(args, kwargs, out)
        if name.endswith(("_loss", "cross_entropy", "_with_logits")) and self.tag(out) is None:
            self.set_tag(out, Foreign(name))

    def on_view(self, name: str, first: Any, args: tuple, out: Any) -> None:
        tag = self.tag(first)
        transposing = name in DISPATCH_TRANSPOSES
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
                value = number(other)
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
        grads = [None if p.grad is None else copy_values(p.grad) for p in params]
        self.pending = Snapshot(record, model, [copy_values(p) for p in params], grads)

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
                and (
                    model.bias is None
                    or (old.bias is not None and model.bias.shape == old.bias.shape)
                )
            )
            if not same_shape or model.lineage == old.lineage:
                self.pending = None
                return
            current = model.params()  # rebinding: w = (w - lr * w.grad).requires_grad_()
            rebound = True
        if any(id(p) in self.opt_param_ids for p in current):
            self.pending = None
            return
        values = [copy_values(p) for p in current]
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
            initial = old.arrays(snap.values)
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
        lr = number(optimizer.param_groups[0].get("lr")) if optimizer.param_groups else None
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
            initial={id(p): copy_values(p) for p in params},
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
        changed = any(
            id(p) not in info.initial or not np.array_equal(info.initial[id(p)], copy_values(p))
            for p in info.params
        )
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


def _check_loss(spec: Spec, diff: Diff, value: float) -> bool:
    """Recompute the loss from the recognised formula, in float64."""
    pred = copy_values(diff.out)
    target = copy_values(diff.target)
    squares = (pred - target) ** 2
    total = squares.mean() if spec.mean else squares.sum()
    expected = spec.factor * float(total)
    return abs(expected - value) <= SPEC_RTOL * max(abs(expected), abs(value)) + 1e-7
