"""LRA201 exhausted-iterator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import libcst as cst

from advisor.autofix import fix_or_hint, placements, statement_code
from advisor.facts import values as v
from advisor.facts.hyperparameters import constant
from advisor.facts.model import Binding, Expr, FileFacts, Function, Loop, Scope, Stmt
from advisor.findings import Diagnostic, Fix, NodeEdit
from advisor.rule import ERROR, Rule


def _single_pass(loop: Loop, facts: FileFacts) -> bool:
    """`for epoch in range(1)` (or a constant 1): the outer loop runs once, nothing to lose."""
    iterable = loop.iter
    if loop.kind != "for" or iterable is None or iterable.call is None:
        return False
    call = iterable.call
    if call.text != "range" or len(call.args) != 1:
        return False
    count = constant(facts, call.args[0], loop.scope)
    return isinstance(count, int) and count <= 1


def _one_shot(facts: FileFacts, bindings: list[Binding], where: Scope) -> v.Value | None:
    """Every binding makes a one-shot iterator; return one of them."""
    found = []
    for binding in bindings:
        values = v.values_of_binding(facts, binding, where, 0)
        if not values or any(value.kind != v.ITERATOR for value in values):
            return None
        found.extend(values)
    return found[0] if found else None


def _epoch_loops(inner: Loop, facts: FileFacts) -> list[Loop]:
    return [outer for outer in inner.loops if not _single_pass(outer, facts)]


# Calls that iterate their argument when they are iterated: `for i, b in enumerate(batches)`.
_WRAPPERS = frozenset({"enumerate", "zip", "tqdm", "trange", "iter", "list", "tuple", "sorted"})


def _iterated_name(loop: Loop) -> str | None:
    """The name a for loop consumes, directly or through enumerate()/tqdm()/zip()."""
    iterable = loop.iter
    if loop.kind != "for":
        return None
    while iterable is not None and iterable.kind != "name" and not _self_attribute(iterable):
        call = iterable.call
        if call is None or (call.text or "").rsplit(".", 1)[-1] not in _WRAPPERS:
            return None
        inner = [arg for arg in call.args if arg.kind in ("name", "call")]
        iterable = inner[0] if len(inner) == 1 else None
    return iterable.text if iterable is not None else None  # a name or `self.<attr>`


def _self_attribute(expr: Expr) -> bool:
    return (
        expr.kind == "attr"
        and (expr.text or "").count(".") == 1
        and cast(str, expr.text).startswith("self.")  # it has a dot: there is a text
    )


def _attribute_iterator(facts: FileFacts, loop: Loop, name: str) -> Diagnostic | None:
    """`self.batches = self._batches()` set in __init__ only, iterated in every epoch."""
    epochs = _epoch_loops(loop, facts)
    function = loop.scope.function
    if not epochs or function is None or function.class_name is None:
        return None
    assigned = [s for s in facts.stmts if name in s.targets and s.scope.function is not None]
    # each of them is in a function (filtered just above)
    if not assigned or any(cast(Function, s.scope.function).name != "__init__" for s in assigned):
        return None
    values = v.text_values(facts, name, loop.scope)
    if values and all(value.kind == v.ITERATOR for value in values):
        return _diagnostic(loop, name, values[0], epochs[0])
    return None


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    for loop in facts.loops:
        name = _iterated_name(loop)
        if name is None:
            continue
        if name.startswith("self."):
            found = _attribute_iterator(facts, loop, name)
            if found is not None:
                yield found
            continue
        bindings, where = v.lookup(facts, name, loop.scope)
        if not bindings:
            continue
        epochs = _epoch_loops(loop, facts)
        if epochs and where is loop.scope:
            outer = epochs[0]
            if any(outer in b.loops for b in bindings):
                continue
            value = _one_shot(facts, bindings, where)
            if value is not None:
                use = _only_name(cast(cst.For, loop.node).iter, name)  # a name a for loop iterates
                fix = fix_or_hint(_hint(name), _recreate, facts, name, bindings, use, loop, outer)
                yield _diagnostic(loop, name, value, outer, fix)
            continue
        if not epochs and all(b.kind == "param" for b in bindings) and loop.scope.function:
            yield from _through_parameter(facts, loop, name)


def _through_parameter(facts: FileFacts, loop: Loop, name: str) -> Iterator[Diagnostic]:
    """`def train_epoch(batches): for x in batches: ...` called in an epoch loop with one
    iterator made before that loop."""
    function = cast(Function, loop.scope.function)  # check(): the loop is in a function
    if name not in function.call_params:
        return
    index = function.call_params.index(name)
    for call, site in facts.calls.get(function.name, []):
        if v.find_function(facts, call.text, site.scope) is not function or not site.loops:
            continue
        arg = call.arg(index, name)
        if arg is None or arg.kind != "name":
            continue
        arg_name = cast(str, arg.text)  # a name has its text
        bindings, where = v.lookup(facts, arg_name, site.scope)
        epochs = [outer for outer in site.loops if not _single_pass(outer, facts)]
        if not bindings or not epochs or where is not site.scope:
            continue
        if any(epochs[0] in b.loops for b in bindings):
            continue
        value = _one_shot(facts, bindings, where)
        if value is not None:
            use = arg.node if site.loops[-1] is epochs[0] else None
            fix = fix_or_hint(
                _hint(arg_name), _recreate, facts, arg_name, bindings, use, loop, epochs[0]
            )
            yield _diagnostic(loop, arg_name, value, epochs[0], fix)
            return


def _diagnostic(
    loop: Loop, name: str, value: v.Value, outer: Loop, fix: Fix | None = None
) -> Diagnostic:
    what = value.detail or "iterator"
    if what not in (
        "generator expression",
        "iter",
        "map",
        "zip",
        "filter",
        "enumerate",
        "reversed",
    ):
        what = f"generator `{what}()`" if what.isidentifier() else what
    else:
        what = f"`{what}(...)` iterator" if what != "generator expression" else what
    return Diagnostic(
        loop.iter.node if loop.iter is not None else loop.node,
        f"`{name}` is a {what} created once, outside the enclosing loop: it is exhausted "
        "after the first pass, so every later pass sees no data",
        fix=fix or _hint(name),
    )


def _hint(name: str) -> Fix:
    return Fix(f"create `{name}` anew inside the outer loop, or use a list or a DataLoader")


# -- the fix: the creating expression where the iterator is consumed --------------------------

# Builtins that build a lazy iterator from their arguments, doing nothing else.
_LAZY_BUILTINS = frozenset({"iter", "zip", "map", "filter", "enumerate", "reversed"})
# Tensor methods that split without copying or side effects.
_SPLITTING_METHODS = frozenset({"split", "chunk", "unbind"})


def _only_name(node: cst.CSTNode | None, name: str) -> cst.Name | None:
    """The one `Name` node spelling `name` inside `node` (None if there are none or several)."""
    if node is None:
        return None
    found = [n for n in _names(node) if n.value == name]
    return found[0] if len(found) == 1 else None


def _names(node: cst.CSTNode) -> Iterator[cst.Name]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            yield current
        stack.extend(current.children)


def _recreate(
    facts: FileFacts,
    name: str,
    bindings: list[Binding],
    use: cst.CSTNode | None,
    consumer: Loop,
    outer: Loop,
) -> Fix:
    """Replace the one use of `name` inside the epoch loop by the expression that created it
    (`for xb, yb in data_iter(bs, X, y):`) and delete the creation, so a fresh iterator is
    made in every epoch and the name is gone.

    Only when that keeps the program's meaning: the name is bound once, by `name = <expr>`,
    in the block that holds the epoch loop, and spelt nowhere else in the file; the epoch loop
    directly holds the use; the consuming loop never leaves early (`break`, `return`, ...: it
    may take a batch at a time on purpose); and evaluating the expression later and once per
    epoch does the same as before: lazy builtins, generator functions of this file,
    DataLoader, tensor splits and generator expressions over names that nothing rebinds after
    the creation. Otherwise a hint.
    """
    hint = _hint(name)
    if use is None or len(bindings) != 1 or bindings[0].kind != "assign":
        return hint
    creation = bindings[0].stmt
    if creation is None or not isinstance(creation.node, cst.Assign):
        return hint
    assign = creation.node
    if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
        return hint
    where = placements(facts)
    made = where.get(id(assign))
    epoch = where.get(id(outer.node))
    if made is None or epoch is None or not made.on_own_lines:
        return hint
    if epoch.block is not made.block or epoch.index <= made.index:
        return hint
    if consumer.loops[-1:] != (outer,) and consumer.scope is outer.scope:
        return hint  # another loop between the epoch loop and the consuming one
    if _leaves_early(consumer.node.body):
        return hint
    if _spelt(facts, name) != 2 and _name_nodes(facts, name) != 2:
        return hint  # used elsewhere (next(it), a second loop, a closure)
    value = assign.value
    code = statement_code(facts, value)
    if "\n" in code or not _lazy(facts, value, creation):
        return hint
    # the placement of a small statement: its SimpleStatementLine's
    comment = cast(cst.SimpleStatementLine, made.statement).trailing_whitespace.comment
    return Fix(
        f"create the iterator in every epoch: iterate `{code}` itself and drop `{name}`",
        "safe",
        node_edits=(
            NodeEdit(use, code),
            NodeEdit(made.statement, comment.value if comment else "", lines=True),
        ),
    )


def _leaves_early(node: cst.CSTNode) -> bool:
    """A `break` of this loop, or a `return`, `yield` or `raise` anywhere in its body."""
    stack = [(node, False)]
    while stack:
        current, nested = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(current, (cst.Return, cst.Raise, cst.Yield)):
            return True
        if isinstance(current, cst.Break) and not nested:
            return True
        inner = nested or isinstance(current, (cst.For, cst.While))
        stack.extend((child, inner) for child in current.children)
    return False


def _lazy(facts: FileFacts, node: cst.BaseExpression, creation: Stmt) -> bool:
    """Evaluating `node` later, once per epoch, does what evaluating it once did."""
    reads: list[str] = []
    if not _lazy_expression(facts, node, creation, reads):
        return False
    if facts.dynamic_names or facts.star_imports:
        return False
    return all(_stable(facts, read, creation) for read in reads)


def _lazy_expression(facts: FileFacts, node, creation: Stmt, reads: list[str]) -> bool:
    if isinstance(node, cst.GeneratorExp):  # only the first iterable is evaluated at once
        return node.for_in.asynchronous is None and _operand(
            facts, node.for_in.iter, creation, reads
        )
    if not isinstance(node, cst.Call):
        return False
    if any(arg.star for arg in node.args):
        return False
    func = node.func
    if isinstance(func, cst.Name):
        function = v.find_function(facts, func.value, creation.scope)
        bindings, _ = v.lookup(facts, func.value, creation.scope)
        if function is not None:
            if not function.is_generator or function.is_method:
                return False
        elif (bindings or func.value not in _LAZY_BUILTINS) and facts.qualify(
            func.value
        ) != "torch.utils.data.DataLoader":
            return False
        reads.append(func.value)
    elif isinstance(func, cst.Attribute):
        text = statement_code(facts, func)
        if func.attr.value in _SPLITTING_METHODS:
            if not _operand(facts, func.value, creation, reads):
                return False
        elif facts.qualify(text) == "torch.utils.data.DataLoader":
            reads.append(text.split(".", 1)[0])
        else:
            return False
    else:
        return False
    return all(_operand(facts, arg.value, creation, reads) for arg in node.args)


def _operand(facts: FileFacts, node, creation: Stmt, reads: list[str]) -> bool:
    """Names, attributes of names, constants, and the lazy expressions above."""
    if isinstance(node, cst.Name):
        reads.append(node.value)
        return True
    if isinstance(node, cst.Attribute):
        return _operand(facts, node.value, creation, reads)
    if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
        return True
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return isinstance(node.expression, (cst.Integer, cst.Float))
    return _lazy_expression(facts, node, creation, reads)


def _stable(facts: FileFacts, name: str, creation: Stmt) -> bool:
    """Nothing binds or deletes `name` after the creation (where the expression reads it)."""
    if name in ("True", "False", "None"):
        return True
    bindings, where = v.lookup(facts, name, creation.scope)
    if any(b.order > creation.order for b in bindings):
        return False
    if where is facts.scope and any(
        name in scope.globals for scope in facts.scopes() if scope is not facts.scope
    ):
        return False
    if any(s.op == "del" and name in s.targets for s in facts.stmts if s.order > creation.order):
        return False
    return not _spelt(facts, name, walrus=True)


class _NameCounter(cst.CSTVisitor):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def visit_Name(self, node: cst.Name) -> None:
        self.counts[node.value] = self.counts.get(node.value, 0) + 1


@dataclass(eq=False)
class _Spelling:
    """This rule's answers for one file (`facts.derived.of(_Spelling)`)."""

    names: dict[str, int] | None = None  # Name nodes by the name they spell
    code: str | None = None  # the file's code


def _name_nodes(facts: FileFacts, name: str) -> int:
    """How many `Name` nodes spell `name` (a walk of the file, once: where the text alone,
    comments and strings included, mentions the name more than twice)."""
    cache = facts.derived.of(_Spelling)
    if cache.names is None:
        counter = _NameCounter()
        facts.module.visit(counter)
        cache.names = counter.counts
    return cache.names.get(name, 0)


def _spelt(facts: FileFacts, name: str, walrus: bool = False) -> int:
    """How many times `name` is spelt as a word anywhere in the file, strings and comments
    included (at least as often as it is used); with `walrus`, how often `name :=` is."""
    cache = facts.derived.of(_Spelling)
    if cache.code is None:  # one code generation (cheaper than a visitor walk), once per file
        cache.code = facts.module.code
    code = cache.code
    pattern = rf"(?<!\w){re.escape(name)}(?!\w)" + (r"\s*:=" if walrus else "")
    return len(re.findall(pattern, code))


RULE = Rule(
    id="LRA201",
    name="exhausted-iterator",
    summary="A one-shot iterator made once is consumed in every epoch",
    severity=ERROR,
    what_it_does="""
Finds a `for` loop inside an epoch loop that iterates a name bound, once and outside that
epoch loop, to a one-shot iterator: the result of a generator function, `iter(...)`,
`map`/`zip`/`filter`/`enumerate`/`reversed`, an `itertools` iterator or a generator
expression. It follows the name into helpers called from the epoch loop. DataLoaders, lists,
tuples, tensors, `range` and datasets can be iterated again and are fine, as is an iterator
re-created inside the epoch loop.

`--fix` puts the creating expression where the name is iterated (`for X, y in
data_iter(...)`) and deletes the creation, when the name is used nowhere else and making the
iterator anew in every epoch changes nothing else: `iter()`, `zip()`, `map()` and the like,
generator functions of the file, DataLoader, tensor splits or generator expressions, over
names that nothing rebinds later, consumed by a loop that never stops early. Otherwise, and
for an iterator kept on `self`, the hint stays.
""",
    why_bad="""
A generator runs once. The first epoch consumes it; every later epoch's inner loop runs zero
times, silently: training stops after one epoch while the script goes on printing epochs,
and the final parameters are far from the optimum.
""",
    example="""
batches = data_iter(batch_size, features, labels)
for epoch in range(num_epochs):
    for X, y in batches:
        ...
""",
    use_instead="""
for epoch in range(num_epochs):
    for X, y in data_iter(batch_size, features, labels):
        ...
""",
    confirms="The probe counts the updates each epoch really makes with the script's iterator.",
    references=("https://docs.python.org/3/glossary.html#term-generator-iterator",),
    flag=(
        """
import random
import torch

def data_iter(batch_size, features, labels):
    indices = list(range(len(features)))
    random.shuffle(indices)
    for i in range(0, len(indices), batch_size):
        j = torch.tensor(indices[i:i + batch_size])
        yield features[j], labels[j]

batches = data_iter(10, features, labels)
for epoch in range(3):
    for X, y in batches:  # expect: exhausted-iterator
        l = ((X @ w + b - y) ** 2).sum()
        l.backward()
""",
        """
import torch
pairs = zip(xs, ys)
for epoch in range(10):
    for x, y in pairs:  # expect: exhausted-iterator
        loss = (model(x) - y).pow(2).mean()
""",
        """
class Trainer:
    def __init__(self, data):
        self.data = data
        self.batches = self.make_batches()

    def make_batches(self):
        for i in range(0, len(self.data), 8):
            yield self.data[i:i + 8]

    def fit(self, epochs):
        for epoch in range(epochs):
            for batch in self.batches:  # expect: exhausted-iterator
                self.step(batch)
""",
        """
from tqdm import tqdm
batches = map(to_tensors, raw_batches)
epoch = 0
while epoch < 50:
    for step, (xb, yb) in enumerate(tqdm(batches)):  # expect: exhausted-iterator
        pass
    epoch += 1
""",
        """
import torch

def train_epoch(model, batches, opt):
    for xb, yb in batches:  # expect: exhausted-iterator
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(xb), yb).backward()
        opt.step()

stream = (batch for batch in make_batches(X, Y))
for epoch in range(20):
    train_epoch(model, stream, opt)
""",
    ),
    quiet=(
        """
from torch.utils.data import DataLoader, TensorDataset
loader = DataLoader(TensorDataset(X, Y), batch_size=10, shuffle=True)
for epoch in range(3):
    for xb, yb in loader:
        pass
""",
        """
def data_iter(batch_size, features, labels):
    for i in range(0, len(features), batch_size):
        yield features[i:i + batch_size], labels[i:i + batch_size]

for epoch in range(3):
    batches = data_iter(10, features, labels)
    for X, y in batches:
        pass
""",
        """
batches = list(zip(xs, ys))
for epoch in range(10):
    for x, y in batches:
        pass
""",
        """
def gen():
    yield 1

it = gen()
for epoch in range(1):
    for x in it:
        pass
""",
        """
class Trainer:
    def __init__(self, data):
        self.data = data
        self.batches = self.make_batches()

    def make_batches(self):
        for i in range(0, len(self.data), 8):
            yield self.data[i:i + 8]

    def fit(self, epochs):
        for epoch in range(epochs):
            for batch in self.batches:
                self.step(batch)
            self.batches = self.make_batches()
""",
        """
it = iter(loader)
for step in range(1000):
    for x in it:
        break
    it = iter(loader)
""",
    ),
    check=check,
)
