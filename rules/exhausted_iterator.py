"""LRA201 exhausted-iterator."""

from __future__ import annotations

from collections.abc import Iterator

from advisor.facts import values as v
from advisor.facts.hyperparameters import constant
from advisor.facts.model import Binding, Expr, FileFacts, Loop, Scope
from advisor.findings import Diagnostic, Fix
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
        expr.kind == "attr" and (expr.text or "").count(".") == 1 and expr.text.startswith("self.")
    )


def _attribute_iterator(facts: FileFacts, loop: Loop, name: str) -> Diagnostic | None:
    """`self.batches = self._batches()` set in __init__ only, iterated in every epoch."""
    epochs = _epoch_loops(loop, facts)
    function = loop.scope.function
    if not epochs or function is None or function.class_name is None:
        return None
    assigned = [s for s in facts.stmts if name in s.targets and s.scope.function is not None]
    if not assigned or any(s.scope.function.name != "__init__" for s in assigned):
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
                yield _diagnostic(loop, name, value, outer)
            continue
        if not epochs and all(b.kind == "param" for b in bindings) and loop.scope.function:
            yield from _through_parameter(facts, loop, name)


def _through_parameter(facts: FileFacts, loop: Loop, name: str) -> Iterator[Diagnostic]:
    """`def train_epoch(batches): for x in batches: ...` called in an epoch loop with one
    iterator made before that loop."""
    function = loop.scope.function
    if name not in function.call_params:
        return
    index = function.call_params.index(name)
    for call, site in facts.calls.get(function.name, []):
        if v.find_function(facts, call.text, site.scope) is not function or not site.loops:
            continue
        arg = call.arg(index, name)
        if arg is None or arg.kind != "name":
            continue
        bindings, where = v.lookup(facts, arg.text, site.scope)
        epochs = [outer for outer in site.loops if not _single_pass(outer, facts)]
        if not bindings or not epochs or where is not site.scope:
            continue
        if any(epochs[0] in b.loops for b in bindings):
            continue
        value = _one_shot(facts, bindings, where)
        if value is not None:
            yield _diagnostic(loop, arg.text, value, epochs[0])
            return


def _diagnostic(loop: Loop, name: str, value: v.Value, outer: Loop) -> Diagnostic:
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
        fix=Fix(f"create `{name}` anew inside the outer loop, or use a list or a DataLoader"),
    )


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
