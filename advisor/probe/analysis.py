"""What the records of a `--run` add up to: the regression the script trained, or why not.

The unit that trained most (an optimizer, or a lineage of manual updates) is the one captured;
its backward passes give the loss's reduction, its hyperparameters (or the measured manual
step) the update rule, and `dataset` the rows.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np

from advisor.probe.dataset import training_data
from advisor.probe.problem import Loss, Optimizer, OptimizerKind, Problem
from advisor.probe.records import Backward, Manual, Model, OptInfo, number
from advisor.reporters.text import plural

OPTIMIZER_KINDS: dict[str, OptimizerKind] = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adamw",
    "RMSprop": "rmsprop",
    "Adagrad": "adagrad",
}

StepKind = Literal["optimizer", "manual"]


class Recorded(Protocol):
    """What `analyse` reads of the recorder: its records, optimizers and manual updates."""

    opts: dict[int, OptInfo]
    manual: dict[int, Manual]
    records: list[Backward]
    backwards: int
    notes: list[str]
    modules: dict[int, tuple[int, str]]
    kept_grads: set[int]


@dataclass
class Analysis:
    """What the records add up to: a Problem, or the reason there is none."""

    problem: Problem | None
    reason: str
    steps: int
    step_kind: StepKind


@dataclass
class Unit:
    """Something that trained: an optimizer or a lineage of manual updates."""

    label: str
    steps: int
    records: list[Backward | None]
    losses: list[float]
    opt: OptInfo | None = None
    manual: Manual | None = None


def analyse(rec: Recorded) -> Analysis:
    units: list[Unit] = []
    for info in rec.opts.values():
        units.append(Unit(info.kind, info.steps, info.records, info.losses, opt=info))
    for manual in rec.manual.values():
        units.append(
            Unit("manual updates", len(manual.losses), manual.records, manual.losses, manual=manual)
        )
    if not units:
        what = {r.what for r in rec.records if r.what}
        if rec.backwards:
            reason = (
                f"the script ran {plural(rec.backwards, 'backward pass')} but no optimizer "
                "step or manual parameter update was seen"
            )
        else:
            reason = "the script ran, but trained nothing (no backward pass, no optimizer step)"
        if what:
            reason += f" (losses: {', '.join(sorted(what))})"
        return Analysis(None, reason, 0, "optimizer")
    units.sort(key=lambda u: -u.steps)
    unit = units[0]
    step_kind: StepKind = "manual" if unit.manual is not None else "optimizer"
    notes = list(rec.notes)
    if len(units) > 1:
        others = ", ".join(f"{u.label} ({plural(u.steps, 'step')})" for u in units[1:])
        notes.append(f"the script trains more than one thing; captured {unit.label}, not {others}")
    records = [r for r in unit.records if r is not None and r.model is not None]
    if not records:
        seen = sorted({r.what for r in rec.records if r.what})
        losses = f" (the loss came from {', '.join(seen)})" if seen else ""
        reason = (
            f"saw {plural(unit.steps, 'step')} of {unit.label}, but no squared-error loss of "
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


def _layers_reason(rec: Recorded, info: OptInfo) -> str:
    layers: dict[int, str] = {}
    for p in info.params:
        owner = rec.modules.get(id(p))
        if owner is None:
            return (
                f"the optimizer trains {plural(len(info.params), 'parameter tensor')}, more "
                "than one linear layer's weight and bias: the probe handles one linear layer"
            )
        layers.setdefault(owner[0], owner[1])
    return (
        f"a model with {plural(len(layers), 'layer')} ({', '.join(layers.values())}): "
        "the probe handles one linear layer"
    )


def build_problem(
    rec: Recorded, unit: Unit, model: Model, records: list[Backward], notes: list[str]
) -> Problem:
    loss = _loss(records, notes)
    data = training_data(records, model, notes)
    steps = unit.steps
    losses = np.array(unit.losses, dtype=np.float64)
    if model.lineage in rec.kept_grads:
        notes.append(
            "the gradients are never cleared: each step uses the sum of all gradients so far"
        )
    if unit.opt is not None:
        optimizer = _optimizer(unit.opt, notes)
        initial_values = [unit.opt.initial[id(p)] for p in model.params()]
        initial = model.arrays(initial_values)
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
    settings: dict[str, Any] = {"kind": kind, "lr": lrs[0] if lrs else number(h.get("lr")) or 0.0}
    for key in ("momentum", "dampening", "weight_decay", "eps", "alpha"):
        value = number(h.get(key))
        if value is not None:
            settings[key] = value
    if "nesterov" in h:
        settings["nesterov"] = bool(h["nesterov"])
    if "betas" in h:
        betas = h["betas"]
        settings["betas"] = (float(number(betas[0]) or 0.0), float(number(betas[1]) or 0.0))
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
