"""What a name or expression holds: an optimizer, a model, a loss, a one-shot iterator...

Resolved from the facts (bindings, imports, local definitions, call sites), never by running
anything. Where the answer is not known, the value is UNKNOWN and rules stay quiet.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from typing import cast

from advisor import torchapi
from advisor.facts.model import Binding, Call, ClassInfo, Expr, FileFacts, Function, Scope, Stmt

OPTIMIZER = "optimizer"
SCHEDULER = "scheduler"
MODULE = "module"  # an nn.Module instance (layer, Sequential, local subclass)
MODEL_FN = "model-function"  # def model(x): return x @ w.t() + b
LOSS_FN = "loss"
ITERATOR = "iterator"  # one-shot: generator, iter(), map/zip/filter, genexpr
DATALOADER = "dataloader"
DATASET = "dataset"
SEQUENCE = "sequence"
RANGE = "range"
TENSOR = "tensor"
COPY = "copy"
LOADED = "loaded"
FUNCTION = "function"
CLASS = "class"
INSTANCE = "instance"
LITERAL = "literal"
PARAMS = "parameters"  # model.parameters(), [w, b]
UNDEFINED = "undefined"
UNKNOWN = "unknown"

BUILTIN_NAMES = frozenset(dir(builtins)) | {"display", "get_ipython", "In", "Out", "__file__"}
ONE_SHOT_BUILTINS = frozenset({"iter", "map", "zip", "filter", "enumerate", "reversed"})
ENDLESS_ITERTOOLS = frozenset({"cycle", "count", "repeat"})
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Value:
    kind: str
    detail: str = ""  # class or function name: "SGD", "Linear", "mse_loss"
    expr: Expr | None = field(default=None, repr=False)  # the expression that made it
    source: str | None = None  # COPY: the copied name; PARAMS: the module whose parameters
    scope: Scope | None = field(default=None, repr=False)  # where `expr` is written


@dataclass(eq=False)
class ValueCache:
    """This module's answers for one file (`facts.derived.of(ValueCache)`), keyed by the
    facts' own records: they live as long as the facts, so a key is never reused."""

    functions: dict[tuple[str, Scope], Function | None] = field(default_factory=dict)
    classes: dict[tuple[str, Scope | None], ClassInfo | None] = field(default_factory=dict)
    values: dict[tuple[Expr, Scope, int], list[Value]] = field(default_factory=dict)
    bindings: dict[tuple[str, Scope, int], list[Value]] = field(default_factory=dict)


def lookup(facts: FileFacts, name: str, scope: Scope) -> tuple[list[Binding], Scope | None]:
    """Python's scoping: local if bound here, else enclosing functions, else module."""
    current: Scope | None = scope
    if name in scope.globals:
        current = facts.scope
    while current is not None:
        if current.kind != "class" or current is scope:
            found = current.bindings.get(name)
            if found:
                return found, current
        current = current.parent
    return [], None


def find_function(
    facts: FileFacts, text: str | None, scope: Scope, depth: int = 0
) -> Function | None:
    """The function or method defined in this file that a call's callee names."""
    if not text or depth > _MAX_DEPTH:
        return None
    if depth == 0:
        functions = facts.derived.of(ValueCache).functions
        key = (text, scope)
        if key not in functions:
            functions[key] = find_function(facts, text, scope, 1)
        return functions[key]
    if "." not in text:
        bindings, where = lookup(facts, text, scope)
        if where is None:
            return None
        for binding in reversed(bindings):
            if binding.kind == "def":
                prefix = ""
                if where.function is not None:
                    prefix = where.function.qualname + ".<locals>."
                return facts.functions.get(prefix + text)
            if binding.kind in ("assign", "param"):
                for value in values_of_binding(facts, binding, where, depth + 1):
                    if (
                        value.kind in (FUNCTION, MODEL_FN, LOSS_FN)
                        and value.detail in facts.functions
                    ):
                        return facts.functions[value.detail]
        return None
    owner, _, method = text.rpartition(".")
    info = class_of(facts, owner, scope)
    if info is not None:
        return find_method(facts, info, method)
    return None


def find_method(facts: FileFacts, info: ClassInfo, name: str) -> Function | None:
    seen: set[str] = set()
    current: ClassInfo | None = info
    while current is not None and current.name not in seen:
        seen.add(current.name)
        if name in current.methods:
            return current.methods[name]
        current = next(
            (facts.classes[b.text] for b in current.bases if b.text in facts.classes),
            None,
        )
    return None


def class_of(facts: FileFacts, text: str, scope: Scope) -> ClassInfo | None:
    """The local class of `self` inside a method, or of a name bound to a local instance."""
    function = scope.function
    if text in ("self", "cls") and function is not None and function.class_name:
        return facts.classes.get(function.class_name)
    if "." in text:
        return None
    bindings, where = lookup(facts, text, scope)
    classes = facts.derived.of(ValueCache).classes
    key = (text, where)  # the same for every occurrence of the name: once
    if key not in classes:
        classes[key] = _instance_class(facts, bindings)
    return classes[key]


def _instance_class(facts: FileFacts, bindings: list[Binding]) -> ClassInfo | None:
    for binding in bindings:
        if binding.kind == "assign" and binding.value is not None and binding.value.call:
            callee = binding.value.call.text
            if callee in facts.classes:
                return facts.classes[callee]
    return None


def is_module_class(facts: FileFacts, info: ClassInfo, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    for base in info.bases:
        qualified = facts.qualify(base.text) or ""
        if qualified in torchapi.MODULE_BASES:
            return True
        if base.text in facts.classes and is_module_class(
            facts, facts.classes[base.text], depth + 1
        ):
            return True
    return False


def values_of_binding(facts: FileFacts, binding: Binding, scope: Scope, depth: int) -> list[Value]:
    if binding.kind in ("assign", "with") and binding.value is not None:
        return values_of(facts, binding.value, scope, depth + 1)
    if binding.kind == "def":
        prefix = scope.function.qualname + ".<locals>." if scope.function is not None else ""
        function = facts.functions.get(prefix + binding.name)
        if function is not None:
            return [function_value(facts, function)]
        return [Value(UNKNOWN)]
    if binding.kind == "class":
        return [Value(CLASS, binding.name)]
    if binding.kind == "import":
        return [Value(UNKNOWN, facts.imports.get(binding.name, binding.name))]
    if binding.kind == "param" and scope.function is not None:
        return param_values(facts, scope.function, binding.name, depth + 1)
    return [Value(UNKNOWN)]


def function_value(facts: FileFacts, function: Function) -> Value:
    """A local function as a value: a model function, a loss function or just a function."""
    lowered = function.name.lower()
    if any(word in lowered for word in ("loss", "mse", "criterion", "cost")):
        return Value(LOSS_FN, function.qualname)
    if not function.is_generator and any(_looks_like_forward(r) for r in function.returns):
        return Value(MODEL_FN, function.qualname)
    return Value(FUNCTION, function.qualname)


def _looks_like_forward(expr: Expr) -> bool:
    """`x @ w.t() + b`, `torch.matmul(X, w) + b`: a linear model's prediction."""
    if "MatrixMultiply" in expr.ops:
        return True
    return any((c.text or "").rsplit(".", 1)[-1] in ("matmul", "mm", "linear") for c in expr.calls)


def call_sites(
    facts: FileFacts, function: Function, depth: int = 0
) -> list[tuple[Call, Stmt]] | None:
    """Where this file calls the function: by its name, through an alias, on an instance
    (`trainer.fit(...)`), and for an `__init__` wherever its class (or a subclass that
    inherits it) is instantiated (`Trainer(model, lr=0.1)`). None when some call cannot be
    bound to its parameters (then nothing may be said of them)."""
    sites = [
        (call, stmt)
        for call, stmt in facts.calls.get(function.name, [])
        if (
            find_function(facts, call.text, stmt.scope, depth + 1)
            if call.text
            else _method_of_new_instance(facts, call, stmt.scope)
        )
        is function
    ]
    if function.name == "__init__" and function.class_name:
        more = _constructor_sites(facts, function)
        if more is None:
            return None  # `Base.__init__(self, ...)`: arguments shifted by one
        sites.extend(more)
    return sites


def _local_class(facts: FileFacts, name: str | None, scope: Scope) -> ClassInfo | None:
    """The class of this file that a name stands for where it is used, if only that."""
    if name not in facts.classes:
        return None
    bindings, _ = lookup(facts, name, scope)
    if not bindings or any(binding.kind != "class" for binding in bindings):
        return None
    return facts.classes[name]


def _constructor_sites(facts: FileFacts, init: Function) -> list[tuple[Call, Stmt]] | None:
    """Where instances run this `__init__`: `Trainer(...)` for its class or a subclass that
    inherits it, `super().__init__(...)` in a subclass's method. None where a subclass calls
    it as `Base.__init__(self, ...)`, whose arguments are shifted by one."""
    sites: list[tuple[Call, Stmt]] = []
    for name, info in facts.classes.items():
        if find_method(facts, info, "__init__") is init:
            sites.extend(
                (call, stmt)
                for call, stmt in facts.calls.get(name, [])
                if call.text == name and _local_class(facts, name, stmt.scope) is not None
            )
    for call, stmt in facts.calls.get("__init__", []):
        caller = stmt.scope.function
        caller_class = facts.classes.get(caller.class_name or "") if caller is not None else None
        if caller_class is None or not any(
            base.text in facts.classes
            and find_method(facts, facts.classes[base.text], "__init__") is init
            for base in caller_class.bases
        ):
            continue
        made = call.receiver.call if call.receiver is not None else None
        if call.text is None and made is not None and made.text == "super":
            sites.append((call, stmt))
        elif call.text and call.text.endswith(".__init__"):
            return None
    return sites


def _method_of_new_instance(facts: FileFacts, call: Call, scope: Scope) -> Function | None:
    """The method a call like `Trainer(model).fit(X, y)` runs: on an instance made in place."""
    made = call.receiver.call if call.receiver is not None else None
    info = _local_class(facts, made.text, scope) if made is not None else None
    if info is None or call.method is None:
        return None
    return find_method(facts, info, call.method)


def param_values(facts: FileFacts, function: Function, name: str, depth: int) -> list[Value]:
    """The values a parameter receives at the call sites of its function in this file."""
    if name not in function.call_params:
        return [Value(UNKNOWN)]
    index = function.call_params.index(name)
    values: list[Value] = []
    sites = call_sites(facts, function, depth)
    if sites is None:
        return [Value(UNKNOWN)]
    for call, stmt in sites:
        arg = call.arg(index, name)
        if arg is None:
            values.append(Value(UNKNOWN))
        else:
            values.extend(values_of(facts, arg, stmt.scope, depth + 1))
    return values or [Value(UNKNOWN, "parameter")]


def values_of(facts: FileFacts, expr: Expr, scope: Scope, depth: int = 0) -> list[Value]:
    """Every value the expression may hold (one per reaching binding or call site).

    Cached at every depth and without duplicates: a name re-bound from itself k times
    (`model = model.to(device)` in every cell) would otherwise cost k ** _MAX_DEPTH."""
    if depth > _MAX_DEPTH:
        return [Value(UNKNOWN)]
    depth = max(depth, 1)
    cache = facts.derived.of(ValueCache).values
    key = (expr, scope, depth)
    found = cache.get(key)
    if found is None:
        found = cache[key] = list(dict.fromkeys(_values(facts, expr, scope, depth)))
    return found


def _bindings_values(
    facts: FileFacts, name: str, bindings: list[Binding], where: Scope, depth: int
) -> list[Value]:
    """The values of every binding of a name in the scope that binds it: the same for each
    occurrence of the name, so computed once per depth (not once per occurrence)."""
    cache = facts.derived.of(ValueCache).bindings
    key = (name, where, depth)
    found = cache.get(key)
    if found is None:
        out: list[Value] = []
        for binding in bindings:
            out.extend(values_of_binding(facts, binding, where, depth))
        found = cache[key] = list(dict.fromkeys(out))
    return found


def _values(facts: FileFacts, expr: Expr, scope: Scope, depth: int) -> list[Value]:
    kind = expr.kind
    if kind == "name":
        name = cast(str, expr.text)  # a name's text is the name itself
        bindings, where = lookup(facts, name, scope)
        if not bindings:
            if name in BUILTIN_NAMES or name in facts.imports:
                return [Value(UNKNOWN, name)]
            if facts.star_imports or facts.dynamic_names:
                return [Value(UNKNOWN)]
            return [Value(UNDEFINED, name, expr)]
        # bindings were found, so in some scope
        return _bindings_values(facts, name, bindings, cast(Scope, where), depth)
    if kind == "attr":
        return _attribute_values(facts, expr, scope, depth)
    if kind == "call":
        return [
            value if value.scope is not None else replace(value, scope=scope)
            for value in _call_values(facts, expr, scope, depth)
        ]
    if kind == "genexpr":
        return [Value(ITERATOR, "generator expression", expr)]
    if kind in ("list", "tuple", "set", "dict"):
        return [Value(SEQUENCE, kind, expr)]
    if kind == "literal":
        return [Value(LITERAL, "", expr)]
    return [Value(UNKNOWN, "", expr)]


def _attribute_values(facts: FileFacts, expr: Expr, scope: Scope, depth: int) -> list[Value]:
    text = expr.text
    if text:
        qualified = facts.qualify(text)
        found = torchapi.loss(qualified)
        if found is not None and qualified == found.functional:
            return [Value(LOSS_FN, found.functional.rsplit(".", 1)[1], expr)]
        owner, _, attr = text.rpartition(".")
        if owner in ("self", "cls"):
            info = class_of(facts, owner, scope)
            if info is not None and attr in info.attributes:
                out: list[Value] = []
                for value in info.attributes[attr]:
                    method_scope = _init_scope(facts, info) or scope
                    out.extend(values_of(facts, value, method_scope, depth + 1))
                return out
    return [Value(UNKNOWN, "", expr)]


def _init_scope(facts: FileFacts, info: ClassInfo) -> Scope | None:
    init = info.methods.get("__init__")
    return init.scope if init is not None else None


def _call_values(facts: FileFacts, expr: Expr, scope: Scope, depth: int) -> list[Value]:
    call = cast(Call, expr.call)  # only for kind == "call", which always has its call
    text = call.text
    qualified = facts.qualify(text) or ""
    last = (text or "").rsplit(".", 1)[-1]
    if qualified:
        if torchapi.is_scheduler(qualified):
            return [Value(SCHEDULER, last, expr)]
        if torchapi.is_optimizer_class(qualified):
            return [Value(OPTIMIZER, last, expr)]
        found = torchapi.loss(qualified)
        if found is not None and qualified != found.functional:
            return [Value(LOSS_FN, last, expr)]
        if (
            qualified.startswith("torch.nn.")
            and last[:1].isupper()
            and ".functional" not in qualified
        ):
            if last == "Parameter":
                return [Value(TENSOR, last, expr)]
            return [Value(MODULE, last, expr)]
        if qualified == "torch.utils.data.DataLoader" or last == "DataLoader":
            return [Value(DATALOADER, last, expr)]
        if last.endswith("Dataset"):
            return [Value(DATASET, last, expr)]
        if qualified in ("copy.deepcopy", "copy.copy"):
            source = call.args[0].text if call.args else None
            return [Value(COPY, last, expr, source)]
        if qualified == "torch.load":
            return [Value(LOADED, last, expr)]
        if qualified.startswith("itertools."):
            return [Value(UNKNOWN if last in ENDLESS_ITERTOOLS else ITERATOR, last, expr)]
        if qualified in torchapi.FACTORIES:
            return [Value(TENSOR, last, expr)]
        return [Value(UNKNOWN, qualified, expr)]
    if text and "." not in text:
        bindings, _ = lookup(facts, text, scope)
        if not bindings:
            if text in ONE_SHOT_BUILTINS:
                return [Value(ITERATOR, text, expr)]
            if text == "range":
                return [Value(RANGE, text, expr)]
            if text in ("list", "tuple", "sorted", "set", "dict"):
                return [Value(SEQUENCE, text, expr)]
        if text in facts.classes:
            info = facts.classes[text]
            if is_module_class(facts, info):
                return [Value(MODULE, text, expr)]
            lowered = text.lower()
            if "loss" in lowered or "mse" in lowered or "criterion" in lowered:
                return [Value(LOSS_FN, text, expr)]
            if "dataset" in lowered:
                return [Value(DATASET, text, expr)]
            return [Value(INSTANCE, text, expr)]
    function = find_function(facts, text, scope, depth + 1)
    if function is not None:
        if function.is_generator:
            return [Value(ITERATOR, function.name, expr)]
        out: list[Value] = []
        for returned in function.returns:
            out.extend(values_of(facts, returned, function.scope, depth + 1))
        return out or [Value(UNKNOWN, "", expr)]
    method = call.method
    receiver = call.receiver
    if method and receiver is not None:
        if method == "parameters" or method == "named_parameters":
            return [Value(PARAMS, method, expr, receiver.text)]
        returns_self = torchapi.module_method(method)
        if returns_self is not None and (call.args or not returns_self.needs_argument):
            return values_of(facts, receiver, scope, depth + 1)
        if method in torchapi.TENSOR_RESULT_METHODS:
            return [Value(TENSOR, method, expr)]
    return [Value(UNKNOWN, "", expr)]


def kinds(facts: FileFacts, expr: Expr | None, scope: Scope) -> set[str]:
    if expr is None:
        return {UNKNOWN}
    return {value.kind for value in values_of(facts, expr, scope)}


def is_kind(facts: FileFacts, expr: Expr | None, scope: Scope, kind: str) -> bool:
    """True when every value the expression may hold is of this kind."""
    found = kinds(facts, expr, scope)
    return found == {kind}


def text_values(facts: FileFacts, text: str | None, scope: Scope) -> list[Value]:
    """Values of a dotted text such as `opt` or `self.optimizer`."""
    if not text:
        return [Value(UNKNOWN)]
    if "." not in text:
        bindings, where = lookup(facts, text, scope)
        if not bindings:
            return [Value(UNDEFINED if text not in BUILTIN_NAMES else UNKNOWN, text)]
        # bindings were found, so in some scope
        return _bindings_values(facts, text, bindings, cast(Scope, where), 0)
    owner, _, attr = text.rpartition(".")
    if owner in ("self", "cls"):
        info = class_of(facts, owner, scope)
        if info is not None and attr in info.attributes:
            out = []
            for value in info.attributes[attr]:
                out.extend(values_of(facts, value, _init_scope(facts, info) or scope, 1))
            return out
    return [Value(UNKNOWN)]
