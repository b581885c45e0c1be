"""The training configuration a script writes down: optimizer and its learning rate, loss and
its reduction, batch size, number of epochs, model widths.

Numbers are followed through module constants and through the parameters of helper functions
(`lr = 0.03` passed to `train(..., lr)`), never guessed: an unknown stays None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from advisor import torchapi
from advisor.facts import values as v
from advisor.facts.flow import Occurrence
from advisor.facts.model import NOTHING, EventKind, Expr, FileFacts, Function, Loop, Scope
from advisor.facts.training import stepped_optimizer, training_loops

_MAX_DEPTH = 6


def constant(facts: FileFacts, expr: Expr | None, scope: Scope, depth: int = 0) -> object:
    """The literal value of an expression, through names and call sites; NOTHING if unknown."""
    if expr is None or depth > _MAX_DEPTH:
        return NOTHING
    if expr.const is not NOTHING:
        return expr.const
    if expr.kind == "binop" and len(expr.operands) == 2:
        left, right = (constant(facts, e, scope, depth + 1) for e in expr.operands)
        return arithmetic(expr, left, right)
    if expr.kind != "name":
        return NOTHING
    bindings, where = v.lookup(facts, cast(str, expr.text), scope)  # a name's text is the name
    found = set()
    for binding in bindings:
        bound_in = cast(Scope, where)  # a binding was found, so in some scope
        if binding.kind == "assign" and binding.value is not None:
            found.add(_hashable(constant(facts, binding.value, bound_in, depth + 1)))
        elif binding.kind == "unpack" and unpacked_element(binding) is not None:
            found.add(_hashable(constant(facts, unpacked_element(binding), bound_in, depth + 1)))
        elif binding.kind == "param" and where is not None and where.function is not None:
            found |= _param_constants(facts, where, binding.name, depth + 1)
        else:
            return NOTHING
    if len(found) != 1:
        return NOTHING
    value = found.pop()
    return NOTHING if value is NOTHING else value


def unpacked_element(binding) -> Expr | None:
    """The element a name takes in `lr, epochs = 0.03, 10`; None for anything less plain."""
    source, position = binding.source, binding.position
    if source is None or not position or len(position) != 1:
        return None
    if source.kind not in ("tuple", "list") or position[0] >= len(source.elements):
        return None
    return source.elements[position[0]]


def _param_constants(facts: FileFacts, scope: Scope, name: str, depth: int) -> set:
    function = cast(Function, scope.function)  # the caller checks: a function's scope
    if name not in function.call_params:
        return {NOTHING}
    index = function.call_params.index(name)
    found = set()
    default = function.defaults.get(name)
    sites = v.call_sites(facts, function, depth)
    if sites is None:
        return {NOTHING}
    for call, site in sites:
        arg = call.arg(index, name)
        if arg is not None:
            found.add(_hashable(constant(facts, arg, site.scope, depth)))
        elif any(key.startswith("*") for key in call.kwargs):
            found.add(NOTHING)  # f(*args, **kwargs): cannot tell
        else:
            found.add(_hashable(constant(facts, default, scope.parent or scope, depth)))
    if not found and default is not None:
        found.add(_hashable(constant(facts, default, scope.parent or scope, depth)))
    return found or {NOTHING}


def _hashable(value: object) -> object:
    return NOTHING if isinstance(value, list) else value


def _huge_power(left: object, right: object) -> bool:
    """`10**10**12`: hours to compute, and no size, count or rate is that large."""
    if not (isinstance(left, int) and isinstance(right, int)) or abs(left) < 2:
        return False
    return right * left.bit_length() > 4096


def arithmetic(expr: Expr, left: object, right: object) -> object:
    """`left <op> right` for two numbers, NOTHING for anything else."""
    numbers = (int, float)
    if not (isinstance(left, numbers) and isinstance(right, numbers)):
        return NOTHING
    ops = {type(getattr(expr.node, "operator", None)).__name__}
    try:
        if ops == {"Multiply"}:
            return as_number(left * right)
        if ops == {"Divide"}:
            return as_number(left / right)
        if ops == {"Add"}:
            return as_number(left + right)
        if ops == {"Subtract"}:
            return as_number(left - right)
        if ops == {"Power"}:
            return NOTHING if _huge_power(left, right) else as_number(left**right)
        if ops == {"FloorDivide"}:
            return as_number(left // right)
    except (ZeroDivisionError, OverflowError):
        return NOTHING
    return NOTHING


def as_number(value: object) -> object:
    """A number a float can hold (as rates, sizes and counts are), else NOTHING: neither the
    complex `(-1) ** 0.5` nor an integer past 1e308, which float() refuses."""
    if isinstance(value, int) and value.bit_length() > 1023:
        return NOTHING
    return value if isinstance(value, (int, float)) else NOTHING


@dataclass
class TrainingConfig:
    loop: Loop
    optimizer: str | None = None  # "SGD", "Adam"...
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    nesterov: bool = False
    dampening: float | None = None
    loss: str | None = None  # "mse", "l1"...
    reduction: str | None = None  # "mean", "sum", "none"
    batch_size: int | None = None
    epochs: int | None = None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _optimizer_settings(facts: FileFacts, occurrence: Occurrence, config: TrainingConfig) -> None:
    text = stepped_optimizer(facts, occurrence)
    scope = occurrence.origin.scope
    for value in v.text_values(facts, text, scope):
        if value.kind != v.OPTIMIZER or value.expr is None or value.expr.call is None:
            continue
        call = value.expr.call
        where = value.scope or scope
        config.optimizer = value.detail
        known = torchapi.optimizer_named(value.detail)
        for name in ("lr", "momentum", "weight_decay"):
            position = known.position(name) if known is not None else None
            if position is None and name == "lr":
                position = 1  # every optimizer takes its lr right after the parameters
            arg = call.arg(position, name) if position is not None else call.kwargs.get(name)
            setattr(config, name, _number(constant(facts, arg, where)))
        if known is not None and "dampening" in known.positions:
            # SGD, the one optimizer with dampening, takes both positionally; its default 0.0
            nesterov = call.arg(cast(int, known.position("nesterov")), "nesterov")
            config.nesterov = constant(facts, nesterov, where) is True
            dampening = call.arg(cast(int, known.position("dampening")), "dampening")
            config.dampening = (
                cast(float, known.defaults["dampening"])
                if dampening is None
                else _number(constant(facts, dampening, where))
            )
        return


def _loss_settings(facts: FileFacts, occurrence: Occurrence, config: TrainingConfig) -> None:
    loss = occurrence.event.value
    scope = occurrence.origin.scope
    if loss is not None and loss.kind == "name":
        bindings, where = v.lookup(facts, cast(str, loss.text), scope)  # a name's text
        assigned = [b.value for b in bindings if b.kind == "assign" and b.value is not None]
        if len(assigned) == 1:
            loss, scope = assigned[0], cast(Scope, where)  # bound, so in some scope
    if loss is None or loss.call is None:
        return
    call = loss.call
    for value in v.values_of(facts, call.func, scope):
        known = torchapi.loss_named(value.detail) if value.kind == v.LOSS_FN else None
        if known is None or not known.elementwise:
            continue
        if value.detail == known.functional.rsplit(".", 1)[1]:
            reduction = constant(facts, call.kwargs.get("reduction"), scope)
        elif value.expr is not None and value.expr.call:
            reduction = constant(facts, value.expr.call.kwargs.get("reduction"), scope)
        else:
            continue
        config.loss = known.kind
        config.reduction = reduction if isinstance(reduction, str) else known.reduction
        return


def _batch_and_epochs(facts: FileFacts, loop: Loop, config: TrainingConfig) -> None:
    for current in (*loop.loops, loop, *_inner_loops(facts, loop)):
        iterable = current.iter
        if current.kind != "for" or iterable is None:
            continue
        while iterable.call is not None and iterable.call.text in _WRAPPERS and iterable.call.args:
            iterable = iterable.call.args[0]  # tqdm(range(n)), enumerate(loader)
        call = iterable.call
        if call is not None and _last(call.text) in _COUNTERS and len(call.args) == 1:
            count = _number(constant(facts, call.args[0], current.scope))
            if isinstance(count, int) and config.epochs is None:
                config.epochs = count
            continue
        for value in v.values_of(facts, iterable, current.scope):
            if value.kind == v.DATALOADER and value.expr is not None and value.expr.call:
                loader = value.expr.call
                size = _number(constant(facts, loader.arg(1, "batch_size"), current.scope))
                if isinstance(size, int):
                    config.batch_size = size


_COUNTERS = frozenset({"range", "trange", "tnrange"})
_WRAPPERS = frozenset({"tqdm", "enumerate", "tqdm.tqdm", "notebook.tqdm"})


def _last(text: str | None) -> str:
    return (text or "").rsplit(".", 1)[-1]


def _inner_loops(facts: FileFacts, loop: Loop) -> list[Loop]:
    return [other for other in facts.loops if loop in other.loops]


def training_configs(facts: FileFacts) -> list[TrainingConfig]:
    """One configuration per outermost training loop."""
    loops = training_loops(facts)
    training = {id(loop) for loop, _ in loops}
    configs = []
    for loop, events in loops:
        if any(id(outer) in training for outer in loop.loops):
            continue
        config = TrainingConfig(loop)
        for occurrence in events:
            if occurrence.kind is EventKind.STEP and config.optimizer is None:
                _optimizer_settings(facts, occurrence, config)
            elif occurrence.kind is EventKind.BACKWARD and config.loss is None:
                _loss_settings(facts, occurrence, config)
        _batch_and_epochs(facts, loop, config)
        configs.append(config)
    return configs
