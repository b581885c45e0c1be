"""Training-loop questions that several rules ask: is this an update, which loops train,
which model does an optimizer own, does an expression come from a model call."""

from __future__ import annotations

from dataclasses import dataclass

from advisor import torchapi
from advisor.facts import values as v
from advisor.facts.flow import Occurrence, loop_occurrences
from advisor.facts.kinds import used_as_module
from advisor.facts.model import Call, EventKind, Expr, FileFacts, Function, Loop, Scope, Stmt

# torch.nn layers with parameters of their own, by the class name values record.
PARAMETERISED_LAYERS = frozenset(q.rsplit(".", 1)[1] for q in torchapi.PARAMETERISED_LAYERS)
MODEL_KINDS = frozenset({v.MODULE, v.MODEL_FN})


@dataclass(eq=False)
class TrainingCache:
    """This module's answers for one file (`facts.derived.of(TrainingCache)`)."""

    loops: list[tuple[Loop, list[Occurrence]]] | None = None  # training_loops(facts)


def _last(text: str | None) -> str:
    return (text or "").rsplit(".", 1)[-1].lower()


def is_optimizer(facts: FileFacts, text: str | None, scope: Scope) -> bool:
    """An optimizer by construction, or by name where its construction is out of sight."""
    if not text:
        return False
    found = {value.kind for value in v.text_values(facts, text, scope)}
    if v.OPTIMIZER in found:
        return True
    if found - {v.UNKNOWN, v.UNDEFINED}:
        return False
    name = _last(text)
    return ("opt" in name or "solver" in name) and "sched" not in name


def stepped_optimizer(facts: FileFacts, occurrence: Occurrence) -> str | None:
    """The optimizer a STEP event steps: `opt` of `opt.step()` or of `scaler.step(opt)`."""
    event = occurrence.event
    scope = occurrence.origin.scope
    if is_optimizer(facts, event.target, scope):
        return event.target
    call = event.call
    if call is not None and call.args and "scaler" in _last(event.target):
        candidate = call.args[0].text
        if is_optimizer(facts, candidate, scope):
            return candidate
    return None


def is_update(facts: FileFacts, occurrence: Occurrence) -> bool:
    if occurrence.kind is EventKind.UPDATE:
        return True
    return occurrence.kind is EventKind.STEP and stepped_optimizer(facts, occurrence) is not None


def training_loops(facts: FileFacts) -> list[tuple[Loop, list[Occurrence]]]:
    """Loops whose iteration runs backward() and an update, with their events."""
    cache = facts.derived.of(TrainingCache)
    if cache.loops is not None:
        return cache.loops
    found = []
    for loop in facts.loops:
        events = loop_occurrences(facts, loop)
        has_backward = any(o.kind is EventKind.BACKWARD for o in events)
        if has_backward and any(is_update(facts, o) for o in events):
            found.append((loop, events))
    cache.loops = found
    return found


def optimizer_models(facts: FileFacts, text: str | None, scope: Scope) -> set[str]:
    """Names of the models whose `.parameters()` an optimizer received."""
    models: set[str] = set()
    for value in v.text_values(facts, text, scope):
        if value.kind != v.OPTIMIZER or value.expr is None or value.expr.call is None:
            continue
        params = value.expr.call.arg(0, "params")
        if params is None:
            continue
        for item in params.elements or (params,):
            for call in item.calls:
                if call.method in ("parameters", "named_parameters") and call.receiver is not None:
                    models.add(call.receiver.text or "")
    models.discard("")
    return models


def optimizer_tensors(facts: FileFacts, text: str | None, scope: Scope) -> set[str]:
    """Names of the tensors an optimizer received as a literal list: `SGD([w, b], ...)`."""
    tensors: set[str] = set()
    for value in v.text_values(facts, text, scope):
        if value.kind == v.OPTIMIZER and value.expr is not None and value.expr.call is not None:
            params = value.expr.call.arg(0, "params")
            if params is not None:
                tensors.update(e.text for e in params.elements if e.text)
    return tensors


def callee_kinds(facts: FileFacts, call: Call, scope: Scope) -> set[str]:
    """What is being called: a model, a loss, a local function..."""
    text = call.text
    if text in ("self", "super"):
        return {v.UNKNOWN}
    found = {value.kind for value in v.values_of(facts, call.func, scope)}
    if found == {v.UNKNOWN} and text and "." not in text:
        function = v.find_function(facts, text, scope)
        if function is not None:
            found = {v.function_value(facts, function).kind}
    return found


# How a model reads where nothing in the file resolves it (a snippet's undefined `model`).
MODEL_WORDS = ("model", "net", "network", "regressor")


def is_model_call(facts: FileFacts, call: Call, scope: Scope) -> bool:
    """A call of a model: by construction, by use where the construction is out of sight
    (kinds.used_as_module), else by name."""
    if call.text == "self":
        return True
    found = callee_kinds(facts, call, scope)
    if found & MODEL_KINDS:
        return True
    if found - {v.UNKNOWN, v.UNDEFINED} or not call.text:
        return False
    if used_as_module(facts, call.text, scope):
        return True
    name = _last(call.text)
    return name.startswith(MODEL_WORDS) or name.endswith(MODEL_WORDS)


def is_loss_call(facts: FileFacts, call: Call, scope: Scope) -> bool:
    return v.LOSS_FN in callee_kinds(facts, call, scope)


def model_derived(facts: FileFacts, expr: Expr, scope: Scope, before: int, depth: int = 0) -> bool:
    """The expression's value comes from a model's forward call (through local assignments)."""
    if depth > 4:
        return False
    if any(is_model_call(facts, call, scope) for call in expr.calls):
        return True
    for name in expr.names:
        bindings = scope.bindings.get(name, [])
        earlier = [b for b in bindings if b.order < before and b.kind in ("assign", "aug")]
        if earlier:
            last = earlier[-1]
            if last.value is not None and model_derived(
                facts, last.value, scope, last.order, depth + 1
            ):
                return True
    return False


def protected_by_no_grad(
    facts: FileFacts, stmt: Stmt, seen: frozenset = frozenset()
) -> bool | None:
    """Autograd is off at this statement: directly, by decorator, or at every call site.

    None when the statement's function is never called in this file (cannot tell).
    """
    if stmt.no_grad:
        return True
    function: Function | None = stmt.scope.function
    if function is None:
        return False
    if function.no_grad:
        return True
    if function in seen:
        return False
    sites = [site for _, site in v.call_sites(facts, function) or ()]
    if not sites:
        return None
    return all(protected_by_no_grad(facts, site, seen | {function}) for site in sites)


def report_node(occurrence: Occurrence):
    """The node to point at: the event itself, or the call in the walked block leading to it."""
    return occurrence.event.node if not occurrence.via else occurrence.stmt.node
