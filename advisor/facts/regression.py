"""The regression a training loop solves, as far as the facts tell: its loss, its model, the
data the model sees, how many rows a step takes, how many steps run, and the step size.

Rules about learning rates, scaling and shapes are queries over these records. Every field is
None where the script does not say it for certain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import libcst as cst

from advisor import torchapi
from advisor.facts import values as v
from advisor.facts.arrays import Array, LinearModel, Prediction
from advisor.facts.data import (
    bind_arguments,
    callee,
    evaluate,
    iteration_count,
    number_at,
    reaching,
)
from advisor.facts.evaluation import Context
from advisor.facts.flow import Occurrence, over_parameters
from advisor.facts.hyperparameters import TrainingConfig, training_configs
from advisor.facts.model import NOTHING, Call, EventKind, Expr, FileFacts, Loop
from advisor.facts.training import stepped_optimizer, training_loops

# The short names (Loss.kind) of the elementwise regression losses.
ELEMENTWISE = frozenset(loss.kind for loss in torchapi.LOSSES.values() if loss.elementwise)
_MAX_DEPTH = 10


@dataclass(eq=False)
class Loss:
    """`mse_loss(pred, y)`, `((pred - y) ** 2).mean()`, `squared_loss(y_hat, y).sum() / n`."""

    kind: str  # mse, l1, smooth_l1, huber
    mean: bool  # averaged over all elements (else summed)
    factor: float  # what multiplies the mean or the sum: 0.5 for `/ 2`
    prediction: Prediction
    target: Array | None
    node: Expr = field(repr=False)  # where prediction meets target: the call or the subtraction


@dataclass(eq=False)
class Regression:
    config: TrainingConfig
    loss: Loss
    model: LinearModel | None
    features: Array | None  # the data the model sees, as a whole
    rows: int | None  # rows of the whole data set
    batch: int | None  # rows per step
    steps: int | None  # optimizer steps the script runs
    step_size: float | None  # what multiplies the gradient of the loss in an update
    rule: str  # sgd, adaptive, manual, other
    lr_node: cst.CSTNode | None = field(default=None, repr=False)  # where the lr is written
    scheduled: bool = False  # the lr changes while training: a scheduler, `group["lr"] = ...`
    clipped: bool = False  # gradients are clipped: a too-large step oscillates, bounded
    # curvature.analyse's answer, once asked: its Analysis, or False for none
    _analysis: object = field(default=None, init=False, repr=False)

    def describe_step(self, step: float) -> str:
        """How a message names the step: `lr=1e-10`, or the update's step for a hand-written one."""
        from advisor.numbers import figure

        if self.rule == "manual":
            return f"the update's step {figure(step)}"
        return f"lr={figure(step)}"

    @property
    def outputs(self) -> int:
        if self.model is not None and self.model.outputs:
            return self.model.outputs
        return 1

    @property
    def curvature_scale(self) -> float | None:
        """c in: expected Hessian of one step's loss = c * AᵀA (A: the data, with bias column)."""
        rows, batch, loss = self.rows, self.batch, self.loss
        if rows is None or rows <= 0 or loss.kind != "mse":  # no rows (`randn(0, 3)`): no data
            return None
        if loss.mean:
            return 2.0 * loss.factor / (rows * self.outputs)
        if batch is None:
            return None
        return 2.0 * loss.factor * batch / rows


@dataclass(eq=False)
class RegressionCache:
    """This module's answers for one file (`facts.derived.of(RegressionCache)`)."""

    regressions: list[Regression] | None = None  # regressions(facts)
    losses: dict[tuple[Expr, object, int | None], Loss | None] = field(default_factory=dict)


# -- losses ---------------------------------------------------------------------------------
def loss_of(facts: FileFacts, expr: Expr | None, scope, before: int | None = None) -> Loss | None:
    """The loss an expression computes, when it is an elementwise regression loss."""
    if expr is None:
        return None
    losses = facts.derived.of(RegressionCache).losses
    key = (expr, scope, before)
    if key not in losses:
        losses[key] = _loss(facts, expr, Context(scope, {}, before), 1.0, 0)
    return losses[key]


def _loss(facts: FileFacts, expr: Expr, ctx: Context, factor: float, depth: int) -> Loss | None:
    if depth > _MAX_DEPTH or expr is None:
        return None
    if expr.kind == "name":
        expr, ctx = _resolve(facts, expr, ctx)
        return _loss(facts, expr, ctx, factor, depth + 1) if expr is not None else None
    if expr.kind == "binop" and len(expr.operands) == 2:
        op = _operator(expr)
        left, right = expr.operands
        if op in ("Divide", "Multiply"):
            scale = number_at(facts, right, ctx)
            if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale:
                scale = 1.0 / scale if op == "Divide" else float(scale)
                return _loss(facts, left, ctx, factor * scale, depth + 1)
            scale = number_at(facts, left, ctx)
            if op == "Multiply" and isinstance(scale, (int, float)) and scale:
                return _loss(facts, right, ctx, factor * float(scale), depth + 1)
        return None
    if expr.kind != "call":
        return None
    call = cast(Call, expr.call)  # a call's summary always has its call
    last = call.method or (call.text or "").rsplit(".", 1)[-1]
    qualified = facts.qualify(call.text) or ""
    if last in ("mean", "sum"):
        if qualified in ("torch.mean", "torch.sum", "numpy.mean", "numpy.sum"):
            inner_expr, extra = call.arg(0, "input"), call.args[1:]
        elif call.method and call.receiver is not None and not qualified:
            inner_expr, extra = call.receiver, call.args
        else:
            inner_expr, extra = None, ()
        if extra or any(key in call.kwargs for key in ("dim", "axis")):
            return None  # a reduction over some axes only
        term = _elementwise(facts, inner_expr, ctx, depth + 1) if inner_expr else None
        if term is None:
            return None
        kind, prediction, target, scale, node = term
        return Loss(kind, last == "mean", factor * scale, prediction, target, node)
    found = _loss_call(facts, call, expr, ctx, depth)
    if found is not None:
        kind, reduction, prediction, target = found
        if reduction == "none":
            return None
        return Loss(kind, reduction == "mean", factor, prediction, target, expr)
    function = callee(facts, call, ctx.scope)
    if function is not None and not function.is_generator and len(function.returns) == 1:
        env = bind_arguments(function, call, ctx)
        inner = ctx.deeper(scope=function.scope, env=env, before=None)
        return _loss(facts, function.returns[0], inner, factor, depth + 1)
    return None


def loss_arguments(facts: FileFacts, call, scope, before: int | None = None):
    """(kind, reduction, prediction, target) of a loss call; None unless a model's output."""
    return _loss_call(facts, call, None, Context(scope, {}, before), 0)


def _loss_call(facts: FileFacts, call, expr: Expr | None, ctx: Context, depth: int):
    """(kind, reduction, prediction, target) for `F.mse_loss(a, b)` or `criterion(a, b)`."""
    first, second = call.arg(0, "input"), call.arg(1, "target")
    if first is None or second is None:
        return None
    for value in v.values_of(facts, call.func, ctx.scope):
        if value.kind != v.LOSS_FN:
            continue
        known = torchapi.loss_named(value.detail)
        if known is None or not known.elementwise:
            return None
        kind = known.kind
        if value.detail == known.functional.rsplit(".", 1)[1]:
            reduction = number_at(facts, call.kwargs.get("reduction"), ctx)
        elif value.expr is not None and value.expr.call:
            where = ctx.deeper(scope=value.scope or ctx.scope, env={}, before=None)
            reduction = number_at(facts, value.expr.call.kwargs.get("reduction"), where)
        else:
            return None
        sides = _sides(facts, first, second, ctx)
        if sides is None:
            return None
        return kind, reduction if isinstance(reduction, str) else known.reduction, *sides
    return None


def _sides(facts: FileFacts, first: Expr, second: Expr, ctx: Context):
    """(prediction, target) of two operands, in either order; None unless one is a model's."""
    a, b = evaluate(facts, first, ctx.deeper()), evaluate(facts, second, ctx.deeper())
    if isinstance(a, Prediction) and isinstance(b, Array):
        return a, b
    if isinstance(b, Prediction) and isinstance(a, Array):
        return b, a
    if isinstance(a, Prediction) and b is None:
        return a, None
    if isinstance(b, Prediction) and a is None:
        return b, None
    return None


def _elementwise(facts: FileFacts, expr: Expr, ctx: Context, depth: int):
    """(kind, prediction, target, factor, node) of `(a - b) ** 2 / 2`, `(a - b).abs()`..."""
    if depth > _MAX_DEPTH or expr is None:
        return None
    if expr.kind == "name":
        expr, ctx = _resolve(facts, expr, ctx)
        return _elementwise(facts, expr, ctx, depth + 1) if expr is not None else None
    if expr.kind == "binop" and len(expr.operands) == 2:
        op = _operator(expr)
        left, right = expr.operands
        if op == "Power" and right.const == 2:
            return _difference(facts, left, ctx, "mse", 1.0)
        if op in ("Divide", "Multiply"):
            scale = number_at(facts, right, ctx)
            if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale:
                found = _elementwise(facts, left, ctx, depth + 1)
                if found is None:
                    return None
                kind, prediction, target, factor, node = found
                factor *= 1.0 / scale if op == "Divide" else float(scale)
                return kind, prediction, target, factor, node
            if op == "Multiply" and _same_text(left, right):
                return _difference(facts, left, ctx, "mse", 1.0)
        return None
    if expr.kind != "call":
        return None
    call = cast(Call, expr.call)  # a call's summary always has its call
    last = call.method or (call.text or "").rsplit(".", 1)[-1]
    if last in ("pow", "square", "abs"):
        inner = call.receiver if call.method and not facts.qualify(call.text) else call.arg(0)
        if last == "pow":
            exponent = call.args[-1] if call.args else None
            if exponent is None or exponent.const != 2:
                return None
        return _difference(facts, inner, ctx, "l1" if last == "abs" else "mse", 1.0)
    found = _loss_call(facts, call, expr, ctx, depth)
    if found is not None:
        kind, reduction, prediction, target = found
        return (kind, prediction, target, 1.0, expr) if reduction == "none" else None
    function = callee(facts, call, ctx.scope)
    if function is not None and not function.is_generator and len(function.returns) == 1:
        env = bind_arguments(function, call, ctx)
        inner_ctx = ctx.deeper(scope=function.scope, env=env, before=None)
        return _elementwise(facts, function.returns[0], inner_ctx, depth + 1)
    return None


def _operator(expr: Expr) -> str:
    """The operator of a binop summary: `Divide`, `Subtract`, `Power`..."""
    return type(cast(cst.BinaryOperation, expr.node).operator).__name__


def _same_text(left: Expr, right: Expr) -> bool:
    return left.node.deep_equals(right.node)


def _resolve(facts: FileFacts, expr: Expr, ctx: Context):
    """Follow a name to the expression assigned to it: (expr, its context), or (None, ctx)."""
    for _ in range(_MAX_DEPTH):
        if expr.kind != "name":
            return expr, ctx
        if expr.text in ctx.env:
            arg = ctx.env[expr.text]
            if arg.expr is None:
                return None, ctx
            expr, ctx = arg.expr, arg.ctx
            continue
        binding, where = reaching(facts, cast(str, expr.text), ctx)  # a name's text
        if binding is None or binding.kind != "assign" or binding.value is None:
            return None, ctx
        env = ctx.env if where is ctx.scope else {}
        expr, ctx = binding.value, ctx.deeper(scope=where, before=binding.order, env=env)
    return None, ctx


def _difference(facts: FileFacts, expr: Expr | None, ctx: Context, kind: str, factor: float):
    if expr is not None and expr.kind == "name":
        expr, ctx = _resolve(facts, expr, ctx)
    if expr is None or expr.kind != "binop" or len(expr.operands) != 2:
        return None
    if _operator(expr) != "Subtract":
        return None
    sides = _sides(facts, *expr.operands, ctx)
    if sides is None:
        return None
    return kind, sides[0], sides[1], factor, expr


# -- the regression of a training loop ------------------------------------------------------
def regressions(facts: FileFacts) -> list[Regression]:
    """One record per training loop whose loss is an elementwise loss of a model's output."""
    cache = facts.derived.of(RegressionCache)
    if cache.regressions is not None:
        return cache.regressions
    found: list[Regression] = []
    events = dict((id(loop), occurrences) for loop, occurrences in training_loops(facts))
    for config in training_configs(facts):
        occurrences = events.get(id(config.loop), [])
        backward = next((o for o in occurrences if o.kind is EventKind.BACKWARD), None)
        if backward is None:
            continue
        loss = loss_of(facts, backward.event.value, backward.origin.scope, backward.origin.order)
        if loss is None:
            continue
        found.append(_regression(facts, config, loss, occurrences))
    cache.regressions = found
    return found


def _regression(facts: FileFacts, config: TrainingConfig, loss: Loss, occurrences) -> Regression:
    prediction = loss.prediction
    features = prediction.features
    rows = features.rows if features is not None else None
    if rows is None and features is not None and features.batch is None and features.shape:
        rows = features.shape[0]
    update = next((o for o in occurrences if o.kind in (EventKind.STEP, EventKind.UPDATE)), None)
    steps, inner_count = _steps(facts, config.loop, update)
    batch = _batch(features, rows, inner_count)
    rule, step_size, lr_node = _step_size(facts, config, update)
    return Regression(
        config,
        loss,
        prediction.model,
        features,
        rows,
        batch,
        steps,
        step_size,
        rule,
        lr_node,
        scheduled=_lr_scheduled(facts),
        clipped=_clipped(facts),
    )


def _clipped(facts: FileFacts) -> bool:
    """torch.nn.utils.clip_grad_norm_(...) and the like, or a function or method of the same
    name elsewhere (accelerate's `accelerator.clip_grad_norm_`): gradients are clipped."""
    return any(name in facts.calls for name in torchapi.GRADIENT_CLIPPER_NAMES)


def _lr_scheduled(facts: FileFacts) -> bool:
    """Whether anything in the file changes a learning rate while training.

    File-wide on purpose: a scheduler made in a helper still changes the loop's lr, and a rule
    that cannot tell which lr is in force says nothing. A scheduler is a call resolved to one
    (torchapi.SCHEDULERS) or a call of an imported object the tables do not know that is handed
    the optimizer (`WarmupScheduler(opt, ...)` from some library): a local class called `LR`
    is not one.
    """
    for sites in facts.calls.values():
        for call, stmt in sites:
            qualified = facts.qualify(call.text)
            if qualified is None:
                continue
            if torchapi.is_scheduler(qualified) or _handed_optimizer(facts, call, stmt, qualified):
                return True
    return any(_sets_lr(stmt) for stmt in facts.stmts if stmt.op in ("assign", "aug"))


def _handed_optimizer(facts: FileFacts, call, stmt, qualified: str) -> bool:
    """A call of an unknown library's callable that receives an optimizer: it may change the lr."""
    if qualified.split(".", 1)[0] in ("torch", "numpy"):
        return False
    arguments = (*call.args, *call.kwargs.values())
    return any(v.is_kind(facts, arg, stmt.scope, v.OPTIMIZER) for arg in arguments)


def _sets_lr(stmt) -> bool:
    """`group["lr"] = ...`, `opt.param_groups[0]["lr"] *= 0.1`."""
    node = stmt.node
    targets = [t.target for t in node.targets] if hasattr(node, "targets") else [node.target]
    for target in targets:
        if isinstance(target, cst.Subscript) and len(target.slice) == 1:
            key = getattr(target.slice[0].slice, "value", None)
            if isinstance(key, cst.SimpleString) and key.evaluated_value in ("lr", "learning_rate"):
                return True
    return False


def _batch(features: Array | None, rows: int | None, inner_count: int | None) -> int | None:
    if features is None:
        return None
    batch = features.batch
    if batch is None:
        return rows
    if batch == "row":
        return 1
    if isinstance(batch, int):
        return min(batch, rows) if rows else batch
    if rows and inner_count:
        return math.ceil(rows / inner_count)
    return None


def _steps(facts: FileFacts, loop: Loop, update: Occurrence | None):
    """(optimizer steps in the whole run, iterations of the innermost loop) or None."""
    if update is None:
        return None, None
    loops = [current for current in (loop, *update.loops) if not over_parameters(current)]
    if any(branch not in {id(x) for x in (loop, *update.loops)} for branch, _ in update.path):
        return None, None  # a step under a condition: gradient accumulation, early stop...
    total = 1
    inner = None
    for current in loops:
        if current.kind != "for":
            return None, None
        count = iteration_count(facts, current.iter, current.scope)
        if count is None:
            return None, None
        total *= count
        inner = count
    return total, inner if len(loops) > 1 else None


def _step_size(facts: FileFacts, config: TrainingConfig, update: Occurrence | None):
    """(rule, what multiplies the gradient, where the lr is written)."""
    if update is None:
        return "other", None, None
    if update.kind is EventKind.STEP:
        name = config.optimizer
        expr, scope, written = _lr_node(facts, update)
        node = expr.node if expr is not None else None
        lr = config.lr
        if lr is None and written:  # `lr=0.1 / len(X)`: through the data's sizes
            found = number_at(facts, expr, Context(scope))
            lr = float(found) if isinstance(found, (int, float)) and found > 0 else None
        if name in ("SGD",):
            return "sgd", lr, node
        if f"torch.optim.{name}" in torchapi.ADAPTIVE_OPTIMIZERS:
            return "adaptive", lr, node
        return "other", None, node
    ctx = Context(update.origin.scope, {}, update.origin.order)
    event = update.event
    value = event.value
    if event.how == "rebind" and value is not None and value.kind == "binop":
        value = value.operands[1] if len(value.operands) == 2 else None
    scale = _gradient_coefficient(facts, value, ctx, 0)
    if event.how in ("method", "data") and event.call is not None:
        alpha = event.call.kwargs.get("alpha")
        if alpha is not None and scale is not None:
            number = number_at(facts, alpha, ctx)
            scale = scale * abs(number) if isinstance(number, (int, float)) else None
    return "manual", scale, event.node


def _gradient_coefficient(facts: FileFacts, expr: Expr | None, ctx: Context, depth: int):
    """c where the expression is ±c * (a gradient); None when it is not that simple."""
    if expr is None or depth > _MAX_DEPTH:
        return None
    text = expr.text or ""
    if text.endswith((".grad", ".grad.data")):
        return 1.0
    if expr.kind == "unary" and expr.operands:
        return _gradient_coefficient(facts, expr.operands[0], ctx, depth + 1)
    if expr.kind != "binop" or len(expr.operands) != 2:
        return None
    op = _operator(expr)
    left, right = expr.operands
    if op == "Multiply":
        for term, other in ((left, right), (right, left)):
            if term.grad_of:
                scale = _gradient_coefficient(facts, term, ctx, depth + 1)
                number = number_at(facts, other, ctx)
                if scale is None or not isinstance(number, (int, float)):
                    return None
                return scale * abs(float(number))
        return None
    if op == "Divide" and left.grad_of and not right.grad_of:
        scale = _gradient_coefficient(facts, left, ctx, depth + 1)
        number = number_at(facts, right, ctx)
        if scale is None or not isinstance(number, (int, float)) or not number:
            return None
        return scale / abs(float(number))
    return None


def _lr_node(facts: FileFacts, update: Occurrence):
    """(the lr argument or else the optimizer's construction, its scope, whether lr is written)."""
    text = stepped_optimizer(facts, update)
    for value in v.text_values(facts, text, update.origin.scope):
        if value.kind == v.OPTIMIZER and value.expr is not None and value.expr.call is not None:
            call = value.expr.call
            lr = call.kwargs.get("lr") or call.arg(1)
            return lr or value.expr, value.scope or update.origin.scope, lr is not None
    return None, None, False


__all__ = ["Loss", "Regression", "loss_of", "regressions", "NOTHING"]
