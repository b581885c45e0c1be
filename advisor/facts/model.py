"""Records of the training facts of one file.

The extraction pass (`advisor.facts.extract`) fills these in one walk over the syntax tree;
rules only read them. Nodes are kept so that findings can be located later, but nothing here
needs positions: they are computed only for files that have findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar, cast

import libcst as cst

from advisor.facts.files import DataFileLog


class _Nothing:
    """No constant value: the expression is not made of literals only."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()


@dataclass(eq=False)
class Call:
    """A call expression: `opt.step()`, `F.mse_loss(pred, y)`, `model(x)`."""

    node: cst.Call = field(repr=False)
    func: Expr
    args: tuple[Expr, ...]
    kwargs: dict[str, Expr]

    @property
    def text(self) -> str | None:
        """The callee as a dotted name (`self.linear`), or None for `f()()` and the like."""
        return self.func.text

    @property
    def method(self) -> str | None:
        """The attribute called, for method calls: `step` in `opt.step()`."""
        node = self.node.func
        return node.attr.value if isinstance(node, cst.Attribute) else None

    @property
    def receiver(self) -> Expr | None:
        """What a method is called on: `opt` in `opt.step()`."""
        return self.func.base

    def arg(self, index: int, keyword: str | None = None) -> Expr | None:
        if keyword is not None and keyword in self.kwargs:
            return self.kwargs[keyword]
        return self.args[index] if index < len(self.args) else None


@dataclass(frozen=True, eq=False)
class Slice:
    """One `lower:upper:step` element of a subscript."""

    lower: Expr | None = None
    upper: Expr | None = None
    step: Expr | None = None


@dataclass(eq=False)
class Expr:
    """A summary of an expression, computed once, bottom-up, by the extraction pass."""

    node: cst.BaseExpression = field(repr=False)
    kind: str  # name, attr, call, literal, list, tuple, dict, set, genexpr, comp, lambda, other
    text: str | None = None  # dotted text of a Name/Attribute chain: "self.model.weight"
    names: frozenset[str] = frozenset()  # root names read anywhere inside
    live: frozenset[str] = frozenset()  # root names read outside .item()/.detach()/float()/...
    grad_of: frozenset[str] = frozenset()  # dotted texts whose `.grad` is read
    calls: tuple[Call, ...] = ()  # every call inside, innermost first
    ops: frozenset[str] = frozenset()  # binary operators inside: "MatrixMultiply", "Add", ...
    base: Expr | None = None  # for attributes: the object (`opt` of `opt.step`)
    call: Call | None = None  # for kind == "call": the call itself
    elements: tuple[Expr, ...] = ()  # for list/tuple/set literals
    operands: tuple[Expr, ...] = ()  # for binary operations: left, right
    const: object = NOTHING  # the value of a literal: 3, -1.5, "x", None, [[1, 2], [3, 4]]
    slices: tuple[Expr | Slice, ...] = ()  # for subscripts: `x[:, 0]` -> (Slice(), Expr 0)

    def derives_from(self, names: frozenset[str] | set[str]) -> bool:
        return bool(self.names & names)


class EventKind(Enum):
    BACKWARD = "backward"  # loss.backward(), torch.autograd.backward(loss)
    ZERO = "zero"  # opt.zero_grad(), model.zero_grad(), p.grad.zero_(), p.grad = None
    STEP = "step"  # opt.step(), opt.step(closure), scaler.step(opt)
    UPDATE = "update"  # w -= lr * w.grad, p.sub_(lr * p.grad), w = w - lr * w.grad
    ACCUMULATE = "accumulate"  # total += x, total = total + x, values.append(x)


@dataclass(eq=False)
class Event:
    kind: EventKind
    node: cst.CSTNode = field(repr=False)
    target: str | None = None  # loss / optimizer / module / tensor as dotted text
    how: str = ""  # ZERO: zero_grad|tensor|none|assign; UPDATE: inplace|method|data|rebind
    value: Expr | None = None  # BACKWARD: the loss; UPDATE/ACCUMULATE: the right-hand side
    call: Call | None = None
    clears: bool = True  # ZERO: sets the gradient to zero/None (not to some other value)


@dataclass(eq=False)
class Stmt:
    """One simple statement (or a compound statement's header expression)."""

    node: cst.CSTNode = field(repr=False)
    op: str  # assign, aug, expr, return, del, test, iter, with, import, other
    order: int
    scope: Scope = field(repr=False)
    targets: tuple[str, ...] = ()  # dotted texts assigned ("w", "self.fc", "w.grad")
    value: Expr | None = None
    aug_op: str | None = None  # for op == "aug": "-=", "+=", ...
    no_grad: bool = False
    events: tuple[Event, ...] = ()
    loops: tuple[Loop, ...] = ()  # enclosing loops of this scope, outermost first

    @property
    def calls(self) -> tuple[Call, ...]:
        return self.value.calls if self.value is not None else ()


@dataclass(eq=False)
class Loop:
    node: cst.For | cst.While = field(repr=False)
    kind: str  # for, while
    order: int
    end_order: int
    scope: Scope = field(repr=False)
    targets: tuple[str, ...]  # names bound by `for <targets> in ...`
    iter: Expr | None  # the iterable of a for loop, the test of a while loop
    header: Stmt  # the loop's own header statement (its calls run every iteration)
    body: Block
    no_grad: bool = False
    loops: tuple[Loop, ...] = ()  # enclosing loops, outermost first


@dataclass(eq=False)
class Branch:
    """if/elif/else, try/except and match: arms of which at most one runs."""

    node: cst.CSTNode = field(repr=False)
    arms: tuple[Block, ...]
    test: Stmt | None = None


Item = Stmt | Loop | Branch


@dataclass(eq=False)
class Block:
    items: list[Item] = field(default_factory=list)


@dataclass(eq=False)
class Binding:
    """A name bound in a scope: by assignment, parameter, loop target, import, def or class."""

    name: str
    kind: str  # assign, aug, unpack, param, for, with, import, def, class, global
    order: int
    value: Expr | None = None
    stmt: Stmt | None = field(default=None, repr=False)
    loops: tuple[Loop, ...] = ()
    # unpacking (`x, y = pair`, `for xb, yb in loader`): where the name sits in the target
    # and the whole right-hand side or iterable
    position: tuple[int, ...] | None = None
    source: Expr | None = None


@dataclass(eq=False)
class Scope:
    kind: str  # module, function, class
    name: str
    parent: Scope | None
    body: Block = field(default_factory=Block)
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    function: Function | None = None
    # statements that change a name's data in place without re-binding it: `X.sub_(m)`,
    # `y.unsqueeze_(1)`, `y.shape = (-1, 1)`, `X[:, 0] = ...`, `X[mask] /= 2`
    mutations: dict[str, list[Stmt]] = field(default_factory=dict, repr=False)

    def bind(self, binding: Binding) -> None:
        self.bindings.setdefault(binding.name, []).append(binding)

    def mutate(self, name: str, stmt: Stmt) -> None:
        self.mutations.setdefault(name, []).append(stmt)


@dataclass(eq=False)
class Function:
    name: str
    qualname: str  # "fit", "Trainer.train_step", "main.<locals>.closure"
    node: cst.FunctionDef | cst.Lambda = field(repr=False)
    params: tuple[str, ...]
    scope: Scope
    class_name: str | None = None
    decorators: tuple[Expr, ...] = ()
    is_generator: bool = False
    no_grad: bool = False  # decorated with @torch.no_grad() / @torch.inference_mode()
    returns: list[Expr] = field(default_factory=list)
    yields: list[Expr] = field(default_factory=list)
    defaults: dict[str, Expr] = field(default_factory=dict)  # evaluated in the parent scope

    @property
    def is_method(self) -> bool:
        return self.class_name is not None

    @property
    def call_params(self) -> tuple[str, ...]:
        """Parameters as a caller fills them (without `self`/`cls` for methods)."""
        if self.is_method and self.params and self.params[0] in ("self", "cls"):
            return self.params[1:]
        return self.params


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: cst.ClassDef = field(repr=False)
    bases: tuple[Expr, ...]
    methods: dict[str, Function] = field(default_factory=dict)
    attributes: dict[str, list[Expr]] = field(default_factory=dict)  # self.<attr> = <value>


Record = TypeVar("Record")


@dataclass(eq=False)
class Derived:
    """The answers of the queries over one file's facts, each computed once.

    Every query module keeps its answers in a typed record of its own (`values.ValueCache`,
    `training.TrainingCache`, `regression.RegressionCache`, `evaluation.DataCache`,
    `autofix.PlacementCache`), made empty on first use and filled by that module only. The
    records are held by their class, so this module, which every query module imports, needs
    none of theirs.
    """

    _records: dict[type, object] = field(default_factory=dict)

    def of(self, record: type[Record]) -> Record:
        """This file's record of that class (a new, empty one the first time)."""
        found = self._records.get(record)
        if found is None:
            found = self._records[record] = record()
        return cast(Record, found)


@dataclass(eq=False)
class FileFacts:
    path: str
    module: cst.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: bool = False
    dynamic_names: bool = False  # exec(), globals()[...] or %run: names may come from anywhere
    scope: Scope | None = None  # the module scope
    functions: dict[str, Function] = field(default_factory=dict)  # by qualname
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    calls: dict[str, list[tuple[Call, Stmt]]] = field(default_factory=dict)  # by last name
    loops: list[Loop] = field(default_factory=list)  # every loop of every scope
    stmts: list[Stmt] = field(default_factory=list)  # every statement, in file order
    derived: Derived = field(default_factory=Derived, repr=False)  # the queries' answers
    data_files: DataFileLog = field(default_factory=DataFileLog)  # the data files it read

    def scopes(self) -> list[Scope]:
        """The module scope and every function's scope."""
        # the extraction pass sets the module scope before any query runs
        module_scope = cast(Scope, self.scope)
        return [module_scope, *(function.scope for function in self.functions.values())]

    def qualify(self, text: str | None) -> str | None:
        """`to.optim.SGD` -> `torch.optim.SGD` through the file's imports; None if not imported."""
        if not text:
            return None
        root, _, rest = text.partition(".")
        target = self.imports.get(root)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target
