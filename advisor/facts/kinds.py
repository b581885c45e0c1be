"""What kind of object an expression holds: a tensor, an array, a model's output, a module, an
optimizer, a loss, a number... one query for every rule.

Built on `values.values_of` (bindings, call sites, local classes) and the torch/numpy tables of
`advisor.torchapi`: a library call is a tensor only when its qualified name is known to return
one. What cannot be resolved is UNKNOWN, and a rule that needs to know says nothing.
"""

from __future__ import annotations

from enum import Enum

from advisor import torchapi
from advisor.facts import values as v
from advisor.facts.model import Call, Expr, FileFacts, Scope

_MAX_DEPTH = 4


class Kind(Enum):
    TENSOR = "tensor"
    ARRAY = "array"  # a NumPy array
    OUTPUT = "output"  # a model's forward result: a tensor, or a structure of tensors
    NUMBER = "number"
    MODULE = "module"  # an nn.Module instance
    MODEL_FUNCTION = "model-function"  # def model(x): return x @ w + b
    OPTIMIZER = "optimizer"
    SCHEDULER = "scheduler"
    LOSS = "loss"  # a loss function or loss module
    FUNCTION = "function"
    OTHER = "other"  # known, and none of the above: a list, a DataFrame, a string...
    UNKNOWN = "unknown"


# Kinds that hold numbers a tensor operation may run on.
DATA_KINDS = frozenset({Kind.TENSOR, Kind.ARRAY, Kind.OUTPUT})
MODEL_KINDS = frozenset({Kind.MODULE, Kind.MODEL_FUNCTION})

_BY_VALUE = {
    v.MODULE: Kind.MODULE,
    v.MODEL_FN: Kind.MODEL_FUNCTION,
    v.OPTIMIZER: Kind.OPTIMIZER,
    v.SCHEDULER: Kind.SCHEDULER,
    v.LOSS_FN: Kind.LOSS,
    v.FUNCTION: Kind.FUNCTION,
    v.UNDEFINED: Kind.UNKNOWN,
    v.COPY: Kind.UNKNOWN,
    v.LOADED: Kind.UNKNOWN,
}


def is_known_other(kind: Kind) -> bool:
    """Known to be something that is not data (a module, a list, a number...)."""
    return kind not in DATA_KINDS and kind is not Kind.UNKNOWN


def single(found: frozenset[Kind] | set[Kind]) -> Kind:
    """One kind for several possible ones: a known non-data kind outweighs the rest (OTHER
    where they differ), else the one kind they agree on, else UNKNOWN."""
    others = {kind for kind in found if is_known_other(kind)}
    if others:
        return others.pop() if len(found) == 1 else Kind.OTHER
    return next(iter(found)) if len(found) == 1 else Kind.UNKNOWN


def kind_of(facts: FileFacts, expr: Expr | None, scope: Scope) -> Kind:
    """The kind of object the expression holds, as one answer."""
    return single(kinds_of(facts, expr, scope))


def kinds_of(facts: FileFacts, expr: Expr | None, scope: Scope, depth: int = 0) -> frozenset[Kind]:
    """Every kind the expression may hold (one per value it may have)."""
    if expr is None or depth > _MAX_DEPTH:
        return frozenset({Kind.UNKNOWN})
    if expr.text:
        if expr.text in ("self", "cls"):
            return frozenset({Kind.OTHER})
        if "." in expr.text and facts.qualify(expr.text) is not None:  # `sys.stdout`
            return frozenset({Kind.OTHER})
    return frozenset(_kind(facts, value, scope, depth) for value in v.values_of(facts, expr, scope))


def _kind(facts: FileFacts, value: v.Value, scope: Scope, depth: int) -> Kind:
    scope = value.scope or scope
    expr = value.expr
    if value.kind == v.TENSOR:
        return _tensor_kind(facts, value, scope, depth)
    if value.kind == v.LITERAL:
        const = expr.const if expr is not None else None
        number = isinstance(const, (int, float)) and not isinstance(const, bool)
        return Kind.NUMBER if number else Kind.OTHER
    if value.kind != v.UNKNOWN:
        return _BY_VALUE.get(value.kind, Kind.OTHER)
    detail = value.detail
    if detail and detail != "parameter":
        if "." in detail:
            return _library(detail)
        if detail in facts.imports or detail in facts.imports.values():
            return Kind.OTHER
        return Kind.UNKNOWN
    if expr is None:
        return Kind.UNKNOWN
    if expr.kind == "call" and expr.call is not None:
        return _call_kind(facts, expr.call, scope, depth)
    if expr.kind in ("subscript", "attr") and expr.base is not None:
        if expr.base.text in ("self", "cls"):
            return Kind.UNKNOWN
        base = single(kinds_of(facts, expr.base, scope, depth + 1))
        if is_known_other(base):
            return Kind.OTHER
        if expr.kind == "subscript":
            return base if base is not Kind.OUTPUT else Kind.UNKNOWN
        attribute = getattr(getattr(expr.node, "attr", None), "value", None)
        if attribute in torchapi.TENSOR_ATTRIBUTE_NAMES and base in (Kind.TENSOR, Kind.ARRAY):
            return base
    return Kind.UNKNOWN


def _tensor_kind(facts: FileFacts, value: v.Value, scope: Scope, depth: int) -> Kind:
    """TENSOR or ARRAY for a value the facts know to be one of them."""
    call = value.expr.call if value.expr is not None else None
    if call is None or value.detail == "Parameter":
        return Kind.TENSOR
    qualified = facts.qualify(call.text)
    if qualified:
        return Kind.ARRAY if qualified.startswith("numpy.") else Kind.TENSOR
    if value.detail in ("reshape", "view") and call.receiver is not None:
        return single(kinds_of(facts, call.receiver, scope, depth + 1))
    return Kind.TENSOR  # .detach(), .clone(), .float(), .double(), .t(): torch only


def _library(qualified: str) -> Kind:
    """TENSOR/ARRAY for a torch/numpy call known to return one, OTHER for any other call."""
    found = torchapi.returns(qualified)
    if found == "tensor":
        return Kind.TENSOR
    if found == "array":
        return Kind.ARRAY
    return Kind.OTHER


def _call_kind(facts: FileFacts, call: Call, scope: Scope, depth: int) -> Kind:
    """TENSOR for `x.squeeze(1)` of a tensor x; OUTPUT for a model's forward call."""
    if call.method is not None and call.receiver is not None:
        method = torchapi.tensor_method(call.method)
        if method is not None and method.changes != "conversion":
            inner = single(kinds_of(facts, call.receiver, scope, depth + 1))
            if inner in (Kind.TENSOR, Kind.OUTPUT):
                return Kind.TENSOR
        if call.receiver.text not in ("self", "super"):
            return Kind.UNKNOWN
    if is_model_call(facts, call, scope):
        return Kind.OUTPUT
    return Kind.UNKNOWN


def is_model_call(facts: FileFacts, call: Call, scope: Scope) -> bool:
    """`model(x)`, `self.net(x)`, `self(x)`: a forward call of a model, by construction or,
    where the construction is out of sight, by use (`self.model.eval()` elsewhere)."""
    if call.text in ("self", "super"):
        return call.text == "self"
    found = {value.kind for value in v.values_of(facts, call.func, scope)}
    if found <= {v.MODULE, v.MODEL_FN}:
        return bool(found)
    if not found <= {v.UNKNOWN, v.UNDEFINED} or not call.text:
        return False
    return used_as_module(facts, call.text, scope) or _named_as_model(call.text)


# Where nothing in the file resolves a callee (a parameter never bound, an undefined name),
# how a model's name reads: `model`, `self.net`, `value_network` (not `build_model`).
MODEL_NAMES = frozenset(
    {"model", "net", "network", "regressor", "classifier", "encoder", "decoder"}
)
MODEL_BUILDERS = ("build_", "make_", "create_", "get_", "load_", "init_", "new_", "construct_")


def _named_as_model(text: str) -> bool:
    name = text.rsplit(".", 1)[-1].lower()
    if name.startswith(MODEL_BUILDERS):
        return False
    return name in MODEL_NAMES or any(name.endswith("_" + word) for word in MODEL_NAMES)


def used_as_module(facts: FileFacts, text: str, scope: Scope) -> bool:
    """The object this name (`model`, `self.net`) holds is used as only an nn.Module is:
    `model.parameters()`, `self.net.eval()` (torchapi.MODULE_ONLY_METHODS), in the scope that
    binds the name, or anywhere in the class for an attribute of `self`."""
    owner = _owner(facts, text, scope)
    if owner is None:
        return False
    for method in torchapi.MODULE_ONLY_METHODS:
        for call, stmt in facts.calls.get(method, ()):
            receiver = call.receiver
            if call.method != method or receiver is None or receiver.text != text:
                continue
            if _owner(facts, text, stmt.scope) == owner:
                return True
    return False


def _owner(facts: FileFacts, text: str, scope: Scope) -> object:
    """What tells apart the objects a text may name: the class for `self.x`, the scope that
    binds a plain name; None where the text is neither."""
    root, _, rest = text.partition(".")
    if root == "self" and rest and "." not in rest:
        function = scope.function
        return ("class", function.class_name) if function is not None else None
    if rest:
        return None
    _, where = v.lookup(facts, text, scope)
    return ("scope", id(where)) if where is not None else None
