"""LRA404 discarded-tensor-result."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from advisor.facts import values as v
from advisor.facts.data import Array, Prediction, data_of
from advisor.facts.model import Call, Expr, FileFacts, Scope, Stmt
from advisor.findings import CERTAIN, LIKELY, Diagnostic, Fix
from advisor.rule import WARNING, Rule

# What each out-of-place method leaves unchanged on the object it is called on.
SHAPE = frozenset(
    {
        "squeeze",
        "unsqueeze",
        "reshape",
        "view",
        "view_as",
        "reshape_as",
        "t",
        "transpose",
        "permute",
        "flatten",
        "unflatten",
        "ravel",
        "expand",
        "expand_as",
        "repeat",
        "repeat_interleave",
        "movedim",
        "swapaxes",
        "narrow",
        "flip",
        "roll",
        "expand_dims",
        "moveaxis",
    }
)
DTYPE = frozenset(
    {"float", "double", "half", "bfloat16", "long", "int", "short", "bool", "byte"}
    | {"type", "type_as", "astype"}
)
DEVICE = frozenset({"to", "cuda", "cpu", "pin_memory"})
VALUES = frozenset(
    {
        "clamp",
        "clip",
        "abs",
        "absolute",
        "neg",
        "sqrt",
        "exp",
        "log",
        "sigmoid",
        "tanh",
        "relu",
        "softmax",
        "log_softmax",
        "round",
        "floor",
        "ceil",
        "sign",
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "masked_fill",
        "nan_to_num",
        "normalize",
        "dropout",
        "leaky_relu",
        "gelu",
    }
)
CONVERSIONS = frozenset({"numpy", "tolist"})

# Methods of torch.Tensor that return a new tensor and leave the receiver as it is.
TENSOR_METHODS = (
    SHAPE | DTYPE | DEVICE | VALUES | CONVERSIONS | {"detach", "clone", "contiguous"}
) - {
    "astype",
    "expand_dims",
    "moveaxis",
    "absolute",
    "normalize",
    "dropout",
    "leaky_relu",
    "gelu",
}
# Methods of numpy.ndarray that return a new array (`sort`, `fill`, `resize` work in place).
ARRAY_METHODS = frozenset(
    {"reshape", "squeeze", "transpose", "flatten", "ravel", "swapaxes", "repeat", "view"}
    | {"astype", "clip", "round", "tolist"}
)
# Methods that only tensors have (or, elsewhere, only out of place): flagged, as likely, even
# where the receiver is not known, unless it is known to be something else. `float`, `to`,
# `cuda`... are not among them: an nn.Module has them too, and changes itself in place.
TENSOR_ONLY = frozenset(
    {
        "squeeze",
        "unsqueeze",
        "reshape",
        "view",
        "view_as",
        "reshape_as",
        "expand_as",
        "type_as",
        "t",
        "transpose",
        "permute",
        "flatten",
        "unflatten",
        "contiguous",
        "detach",
        "clone",
        "clamp",
        "masked_fill",
        "long",
        "int",
        "numpy",
        "tolist",
        "abs",
    }
)
NO_ARGUMENTS = frozenset({"t", "clone", "long", "int", "numpy", "tolist", "abs", "contiguous"})

# Functions whose first argument is the tensor (array) they return a changed copy of.
TORCH_FUNCTIONS = frozenset(
    {
        "squeeze",
        "unsqueeze",
        "reshape",
        "flatten",
        "unflatten",
        "transpose",
        "permute",
        "t",
        "movedim",
        "swapaxes",
        "narrow",
        "flip",
        "roll",
        "ravel",
        "clamp",
        "clip",
        "abs",
        "neg",
        "sqrt",
        "exp",
        "log",
        "sigmoid",
        "tanh",
        "relu",
        "softmax",
        "log_softmax",
        "round",
        "masked_fill",
        "nan_to_num",
        "detach",
        "clone",
    }
)
FUNCTIONAL = frozenset(
    {"relu", "softmax", "log_softmax", "sigmoid", "tanh", "normalize", "dropout"}
    | {"leaky_relu", "gelu"}
)
NUMPY_FUNCTIONS = frozenset(
    {
        "reshape",
        "squeeze",
        "expand_dims",
        "transpose",
        "swapaxes",
        "moveaxis",
        "ravel",
        "flip",
        "clip",
        "abs",
        "absolute",
        "round",
        "sqrt",
        "exp",
        "log",
    }
)
# Library calls known to return a tensor (array); any other library call is something else.
TORCH_RESULTS = (
    TORCH_FUNCTIONS
    | v.TENSOR_FACTORIES
    | {"matmul", "mm", "bmm", "einsum", "where", "sum", "mean", "std", "var", "norm"}
    | {"mul", "add", "sub", "div", "pow", "sin", "cos", "cumsum", "outer", "diag"}
    | {"tril", "triu", "maximum", "minimum", "gather", "full_like", "empty_like"}
    | {"randperm", "logspace", "masked_select", "as_strided", "bernoulli", "multinomial"}
)
NUMPY_RESULTS = (
    NUMPY_FUNCTIONS
    | v.TENSOR_FACTORIES
    | {"array", "asarray", "concatenate", "vstack", "hstack", "column_stack", "dot"}
    | {"matmul", "where", "loadtxt", "genfromtxt", "zeros_like", "ones_like", "full_like"}
    | {"random.rand", "random.randn", "random.normal", "random.uniform", "random.randint"}
    | {"random.random", "random.choice", "random.permutation"}
)
# How many positional arguments come before NumPy's positional `out`.
NUMPY_OUT_POSITION = {"clip": 3, "round": 2} | dict.fromkeys(
    ("abs", "absolute", "sqrt", "exp", "log"), 1
)
METHOD_OUT_POSITION = {"clip": 2, "round": 1}
CELL_MARKERS = ("# %%", "#%%", "# In[")

TENSOR, ARRAY, DATA, UNKNOWN, OTHER = "tensor", "array", "data", "unknown", "other"
OUTPUT = "output"  # what a model's forward call returns
TENSOR_ATTRIBUTES = frozenset({"T", "mT", "H", "data", "grad", "real", "imag"})
MODEL_NAME = re.compile(r"(\w+_)?(model|net|network|regressor|classifier|encoder|decoder)")
MODEL_BUILDERS = ("build_", "make_", "create_", "get_", "load_", "init_", "new_", "construct_")


# -- what the receiver is ------------------------------------------------------------------
def _library(qualified: str) -> str:
    """TENSOR/ARRAY for a torch/numpy call known to return one, OTHER for any other call."""
    if qualified.startswith("torch.nn.functional."):
        return TENSOR
    for prefix, known, flavour in (
        ("torch.", TORCH_RESULTS, TENSOR),
        ("numpy.", NUMPY_RESULTS, ARRAY),
    ):
        if qualified.startswith(prefix):
            return flavour if qualified[len(prefix) :] in known else OTHER
    return OTHER


def _flavours(facts: FileFacts, expr: Expr, scope: Scope, depth: int = 0) -> set[str]:
    """What the expression may hold: TENSOR, ARRAY, OUTPUT, UNKNOWN or OTHER (anything else)."""
    if depth > 4:
        return {UNKNOWN}
    if expr.text:
        if expr.text in ("self", "cls"):
            return {OTHER}
        if "." in expr.text and facts.qualify(expr.text) is not None:  # `sys.stdout`
            return {OTHER}
    return {_flavour(facts, value, scope, depth) for value in v.values_of(facts, expr, scope)}


def _flavour(facts: FileFacts, value: v.Value, scope: Scope, depth: int) -> str:
    scope = value.scope or scope
    expr = value.expr
    if value.kind == v.TENSOR:
        call = expr.call if expr is not None else None
        if call is None or value.detail == "Parameter":
            return TENSOR
        qualified = facts.qualify(call.text)
        if qualified:
            return ARRAY if qualified.startswith("numpy.") else TENSOR
        if value.detail in ("reshape", "view") and call.receiver is not None:
            return _single(_flavours(facts, call.receiver, scope, depth + 1))
        return TENSOR  # .detach(), .clone(), .float(), .double(), .t(): torch only
    if value.kind in (v.UNDEFINED, v.COPY, v.LOADED):
        return UNKNOWN
    if value.kind != v.UNKNOWN:
        return OTHER
    detail = value.detail
    if detail and detail != "parameter":
        if "." in detail:
            return _library(detail)
        if detail in facts.imports or detail in facts.imports.values():
            return OTHER
        return UNKNOWN
    if expr is None:
        return UNKNOWN
    if expr.kind == "call":
        return _call_result(facts, expr.call, scope, depth)
    if expr.kind in ("subscript", "attr") and expr.base is not None:
        if expr.base.text in ("self", "cls"):
            return UNKNOWN
        base = _single(_flavours(facts, expr.base, scope, depth + 1))
        if expr.kind == "subscript" or base == OTHER:
            return base if base != OUTPUT else UNKNOWN
        if expr.node.attr.value in TENSOR_ATTRIBUTES and base in (TENSOR, ARRAY):
            return base
    return UNKNOWN


def _single(found: set[str]) -> str:
    if OTHER in found:
        return OTHER
    return found.pop() if len(found) == 1 else UNKNOWN


def _call_result(facts: FileFacts, call: Call, scope: Scope, depth: int) -> str:
    """OUTPUT for a model's forward call; TENSOR for `x.squeeze(1)` of a tensor x."""
    if call.method is not None and call.receiver is not None:
        if call.method in TENSOR_METHODS - CONVERSIONS:
            inner = _single(_flavours(facts, call.receiver, scope, depth + 1))
            if inner in (TENSOR, OUTPUT):
                return TENSOR
        if call.receiver.text not in ("self", "super"):
            return UNKNOWN
    if _is_model(facts, call, scope):
        return OUTPUT
    return UNKNOWN


def _is_model(facts: FileFacts, call: Call, scope: Scope) -> bool:
    """`model(x)`, `self.net(x)`, `self(x)`: a model's forward call (not `build_model()`)."""
    if call.text in ("self", "super"):
        return call.text == "self"
    found = {value.kind for value in v.values_of(facts, call.func, scope)}
    if found <= {v.MODULE, v.MODEL_FN}:
        return bool(found)
    if not found <= {v.UNKNOWN, v.UNDEFINED} or not call.text:
        return False
    name = call.text.rsplit(".", 1)[-1].lower()
    return bool(MODEL_NAME.fullmatch(name)) and not name.startswith(MODEL_BUILDERS)


def _is_data(facts: FileFacts, expr: Expr, stmt: Stmt) -> bool:
    """The data flow says it is numbers: a batch of a DataLoader, a model's output..."""
    try:
        found = data_of(facts, expr, stmt.scope, stmt.order)
    except RecursionError:
        return False
    if isinstance(found, Array):
        return found.columns is None  # a table may be a pandas DataFrame
    return isinstance(found, Prediction)


def _receiver(facts: FileFacts, expr: Expr, stmt: Stmt) -> str:
    """TENSOR, ARRAY, DATA (a tensor or an array, it seems), UNKNOWN or OTHER."""
    found = _flavours(facts, expr, stmt.scope)
    if OTHER in found:
        return OTHER
    if found == {TENSOR}:
        return TENSOR
    if found == {ARRAY}:
        return ARRAY
    if UNKNOWN not in found or _is_data(facts, expr, stmt):
        return DATA
    return UNKNOWN


# -- which calls discard their result --------------------------------------------------------
def _writes_in_place(call: Call, name: str, limits: dict[str, int]) -> bool:
    """`out=`, `inplace=True` (or an `inplace` that is not literally False), and NumPy's
    positional `out`: `np.clip(a, 0, 1, a)`, `np.exp(a, a)`, `a.clip(0, 1, a)`."""
    if "out" in call.kwargs or len(call.args) > limits.get(name, len(call.args)):
        return True
    flag = call.kwargs.get("inplace")
    return flag is not None and flag.const is not False


def _plausible(call: Call, method: str) -> bool:
    """Arguments a tensor's method takes, where the receiver is not known."""
    if method in NO_ARGUMENTS:
        return not call.args
    if method == "view":  # numpy/torch `x.view(-1, 1)`; a viewer's `.view(scene)` is not
        return any(isinstance(arg.const, int) for arg in call.args) or any(
            (arg.text or "").startswith("torch.") for arg in call.args
        )
    if method in ("reshape", "permute", "unflatten", "masked_fill", "type_as"):
        return bool(call.args)
    return True


def _method_call(facts: FileFacts, call: Call, stmt: Stmt) -> tuple[str, str] | None:
    """(what the receiver is, confidence) when this method call's result is thrown away."""
    method = call.method
    receiver = call.receiver
    if method is None or receiver is None or method.endswith("_"):
        return None
    if _writes_in_place(call, method, METHOD_OUT_POSITION):
        return None
    if method not in TENSOR_METHODS and method not in ARRAY_METHODS:
        return None
    if method == "type" and not (call.args or call.kwargs):
        return None  # `x.type()` returns the type's name
    kind = _receiver(facts, receiver, stmt)
    if kind == TENSOR and method in TENSOR_METHODS:
        return TENSOR, CERTAIN
    if kind == ARRAY and method in ARRAY_METHODS:
        return ARRAY, CERTAIN
    if kind == DATA and method in TENSOR_METHODS:
        return TENSOR, LIKELY
    if kind == UNKNOWN and method in TENSOR_ONLY and _plausible(call, method):
        return UNKNOWN, LIKELY
    return None


def _function_call(facts: FileFacts, call: Call) -> str | None:
    """TENSOR/ARRAY for `torch.squeeze(x)`, `np.reshape(a, ...)`, `F.relu(x)` discarded."""
    qualified = facts.qualify(call.text)
    if not qualified or not call.args:
        return None
    module, _, name = qualified.rpartition(".")
    if _writes_in_place(call, name, NUMPY_OUT_POSITION if module == "numpy" else {}):
        return None
    if module == "torch" and name in TORCH_FUNCTIONS:
        return TENSOR
    if module == "torch.nn.functional" and name in FUNCTIONAL:
        return TENSOR
    if module == "numpy" and name in NUMPY_FUNCTIONS:
        return ARRAY
    return None


# -- where a statement is meant for its effect or its display --------------------------------
CHECKS = ("raises", "Raises", "warns", "Warns", "errstate", "catch_warnings")


class _Guarded(cst.CSTVisitor):
    """Statements run for their error: in a `try` body or under `pytest.raises(...)`.

    `try: torch.zeros(1).cuda()` checks that CUDA works; `with pytest.raises(RuntimeError):
    x.view(3, 5)` tests that the shape is refused. (Tests as a whole are left alone too: see
    `_in_test`.)
    """

    def __init__(self) -> None:
        self.found: set[int] = set()

    def _add(self, body: cst.BaseSuite) -> None:
        for statement in getattr(body, "body", ()):
            if isinstance(statement, cst.SimpleStatementLine):
                self.found.update(id(small) for small in statement.body)
        if isinstance(body, cst.SimpleStatementSuite):
            self.found.update(id(small) for small in body.body)

    def visit_Try(self, node: cst.Try) -> None:
        self._add(node.body)

    def visit_TryStar(self, node: cst.TryStar) -> None:
        self._add(node.body)

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            func = call.func if isinstance(call, cst.Call) else None
            name = getattr(func, "attr", func)
            if isinstance(name, cst.Name) and any(word in name.value for word in CHECKS):
                self._add(node.body)


@dataclass(eq=False)
class _Exempt:
    """This rule's answer for one file (`facts.derived.of(_Exempt)`)."""

    statements: set[int] | None = None  # _exempt(facts)


def _exempt(facts: FileFacts) -> set[int]:
    """Expression statements whose value is shown or which run to see them fail."""
    cache = facts.derived.of(_Exempt)
    if cache.statements is None:
        guarded = _Guarded()
        facts.module.visit(guarded)
        cache.statements = guarded.found | _displayed(facts)
    return cache.statements


def _in_test(facts: FileFacts, stmt: Stmt) -> bool:
    """A test calls operations to see that they run: `def test_shapes(): x.view(2, 3)`."""
    name = facts.path.replace("\\", "/").rsplit("/", 1)[-1]
    if name.startswith("test_") or name.endswith("_test.py"):
        return True
    scope: Scope | None = stmt.scope
    while scope is not None:
        if scope.function is not None and scope.function.name.startswith("test"):
            return True
        scope = scope.parent
    return False


def _displayed(facts: FileFacts) -> set[int]:
    """Statements whose value is shown: a notebook cell's last line, `# %%` cells' too.

    Cell boundaries are not in the facts: in a notebook every top-level expression may end a
    cell, so none is reported; in a script with `# %%` cells, the last one of each cell.
    """
    shown: set[int] = set()
    body = facts.module.body
    notebook = facts.path.endswith(".ipynb")
    cells = not notebook and any(_starts_cell(statement) for statement in body)
    if notebook or cells:
        for index, statement in enumerate(body):
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            following = body[index + 1] if index + 1 < len(body) else None
            if notebook or following is None or _starts_cell(following):
                shown.update(id(small) for small in statement.body)
    return shown


def _starts_cell(statement: cst.CSTNode) -> bool:
    lines = getattr(statement, "leading_lines", ())
    return any(
        line.comment is not None and line.comment.value.startswith(CELL_MARKERS) for line in lines
    )


# -- the diagnostic ------------------------------------------------------------------------------
def _kept(method: str, name: str) -> str:
    if method in SHAPE:
        return f"{name} keeps its shape"
    if method in DTYPE:
        return f"{name} keeps its dtype"
    if method == "to":
        return f"{name} keeps its device and dtype"
    if method in DEVICE:
        return f"{name} stays where it is"
    if method == "detach":
        return f"{name} stays attached to the autograd graph"
    if method == "contiguous":
        return f"{name} keeps its memory layout"
    if method in CONVERSIONS:
        return f"{name} is still a tensor"
    if method == "clone":
        return f"{name} is not copied"
    return f"{name} keeps its values"


# Tensor methods with an in-place twin (`clamp_`): the fix for a parameter or a buffer that
# must stay the same object.
HAS_IN_PLACE = frozenset(
    {
        "clamp",
        "clip",
        "add",
        "sub",
        "mul",
        "div",
        "abs",
        "neg",
        "exp",
        "log",
        "sqrt",
        "pow",
        "sigmoid",
        "tanh",
        "relu",
        "squeeze",
        "unsqueeze",
        "t",
        "transpose",
        "round",
        "floor",
        "ceil",
        "fill",
        "zero",
        "masked_fill",
        "normal",
        "uniform",
    }
)


def _short(facts: FileFacts, node: cst.CSTNode, fallback: str) -> str:
    code = facts.module.code_for_node(node)
    return code if "\n" not in code and len(code) <= 60 else fallback


def _diagnostic(
    facts: FileFacts, call: Call, subject: Expr, method: str, kind: str, confidence: str
) -> Diagnostic:
    fallback = f"{call.text}(...)" if call.text else f"<expression>.{method}(...)"
    code = _short(facts, call.node, fallback)
    noun = "array" if kind == ARRAY else "tensor"
    if kind == UNKNOWN and method in ARRAY_METHODS:
        noun = "tensor (or array)"
    if method == "numpy":
        noun = "NumPy array"
    elif method == "tolist":
        noun = "list"
    name = subject.text
    if name and subject.kind in ("name", "attr"):
        target = name
        if method in CONVERSIONS:
            target = f"{name.rsplit('.', 1)[-1]}_{'list' if method == 'tolist' else 'np'}"
        assignment = f"{target} = {code}"
        effect = _kept(method, name)
        how = f"Assign it: `{assignment}`"
        fix = Fix(f"assign the result: `{assignment}`")
        in_place = code.replace(f"{name}.{method}(", f"{name}.{method}_(", 1)
        if method in HAS_IN_PLACE and in_place != code:
            # a parameter re-bound to a new tensor stops being the trained leaf
            how += f", or change {name} itself: `{in_place}`"
            fix = Fix(f"assign the result (`{assignment}`) or change it in place (`{in_place}`)")
    else:
        shown = _short(facts, subject.node, "")
        if subject.kind == "subscript" and shown:
            effect = _kept(method, f"`{shown}`")  # `xb[0]` keeps its shape
        else:
            effect = "nothing uses it"
        how = "Assign it to a name and use that name afterwards"
        fix = Fix("assign the result to a name and use it, or delete the line")
    return Diagnostic(
        call.node,
        f"`{code}` returns a new {noun} that is thrown away; {effect}. {how}",
        confidence=confidence,
        fix=fix,
        evidence={"method": method, "receiver": kind},
    )


def check(facts: FileFacts) -> Iterator[Diagnostic]:
    for stmt in facts.stmts:
        if stmt.op != "expr" or stmt.value is None or stmt.value.kind != "call":
            continue
        call = stmt.value.call
        if call.text and call.text.split(".", 1)[0] in facts.imports:
            kind = _function_call(facts, call)
            if kind is None or id(stmt.node) in _exempt(facts) or _in_test(facts, stmt):
                continue
            method = (call.text or "").rsplit(".", 1)[-1]
            yield _diagnostic(facts, call, call.args[0], method, kind, CERTAIN)
            continue
        found = _method_call(facts, call, stmt)
        if found is None or id(stmt.node) in _exempt(facts) or _in_test(facts, stmt):
            continue
        kind, confidence = found
        yield _diagnostic(facts, call, call.receiver, call.method, kind, confidence)


RULE = Rule(
    id="LRA404",
    name="discarded-tensor-result",
    summary="An out-of-place tensor operation whose result is thrown away",
    severity=WARNING,
    what_it_does="""
Flags an expression statement that calls an out-of-place tensor operation and does nothing
with the result: `y.squeeze()`, `x.float()`, `x.to(device)`, `x.reshape(-1, 1)`, `x.detach()`,
`torch.squeeze(x)`, `np.reshape(a, ...)`. It is certain where the receiver is known to be a
tensor or a NumPy array (made by a torch/numpy function, or from one). It is likely where the
data flow says the receiver holds data (a DataLoader batch, a model's output) and, for the
methods only tensors have (`unsqueeze`, `view`, `permute`, `detach`...), where the receiver is
not known at all.

In-place methods (`x.squeeze_()`), calls with `out=` or `inplace=True`, and `model.to(device)`,
`model.float()`, `model.cuda()` on an `nn.Module` (which changes itself and returns itself) are
fine; so is any receiver that is, or may be, something else (a model not built in the file, a
DataFrame, a list, a tokenizer's batch). Statements that run to be displayed or to fail are
left alone: top-level expressions of a notebook (a cell shows its last one), the last line of
a `# %%` cell, `try` bodies (`torch.zeros(1).cuda()` probes for a GPU), `pytest.raises`
blocks and tests.
""",
    why_bad="""
Tensor methods without a trailing underscore return a new tensor and leave the original as it
was. `y.unsqueeze(1)` on a line of its own changes nothing: `y` keeps its shape `(n,)`, and
`loss(pred, y)` against a `(n, 1)` prediction broadcasts to an `(n, n)` matrix, so the model
learns the mean. `x.float()` leaves a double tensor double, `x.to(device)` leaves it on the
CPU, `loss.detach()` keeps the graph alive.
""",
    example="""
y = torch.tensor(targets)
y.unsqueeze(1)
loss = F.mse_loss(model(X), y)
""",
    use_instead="""
y = torch.tensor(targets)
y = y.unsqueeze(1)
loss = F.mse_loss(model(X), y)
""",
    confirms="Not measured by the probe: the statement itself shows it.",
    references=(
        "https://pytorch.org/docs/stable/tensor_view.html",
        "https://pytorch.org/docs/stable/generated/torch.Tensor.unsqueeze.html",
    ),
    flag=(
        """
import torch
X = torch.randn(100, 3)
y = torch.randn(100)
y.unsqueeze(1)  # expect: discarded-tensor-result
X.double()  # expect: discarded-tensor-result
""",
        """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
X, y = torch.randn(64, 3), torch.randn(64)
loader = DataLoader(TensorDataset(X, y), batch_size=16)
model = nn.Linear(3, 1)
device = "cuda" if torch.cuda.is_available() else "cpu"
model.to(device)
for xb, yb in loader:
    xb.to(device)  # expect: discarded-tensor-result
    yb.view(-1, 1)  # expect: discarded-tensor-result
""",
        """
import torch
def train_step(model, opt, x, y):
    opt.zero_grad()
    pred = model(x)
    pred.squeeze()  # expect: discarded-tensor-result
    loss = ((pred - y) ** 2).mean()
    loss.backward()
    opt.step()
    loss.detach()  # expect: discarded-tensor-result
    return loss
""",
        """
import numpy as np
import torch
features = np.loadtxt("data.csv", delimiter=",")
torch.squeeze(labels)  # expect: discarded-tensor-result
features.reshape(-1, 1)  # expect: discarded-tensor-result
""",
    ),
    quiet=(
        """
import torch
y = torch.randn(100)
y.unsqueeze_(1)
y.clamp_(0, 1)
y = y.squeeze()
print(y.float())
""",
        """
import torch
from torch import nn
model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
model.to("cuda")
model.float()
model.double()
model.cuda()
model.train()
""",
        """
import pandas as pd
import torch
df = pd.read_csv("data.csv")
df.astype("float32")
df.squeeze()
names = ["a", "b"]
names.copy()
title = " a "
title.strip()
""",
        """
import torch
import torchvision
net = torchvision.models.resnet18()
net.float()
net.to("cuda")
batch = tokenizer(texts, return_tensors="pt")
batch.to("cuda")
""",
        """
import torch
import torch.nn.functional as F
x = torch.randn(4, 3)
torch.clamp(x, 0, 1, out=x)
F.relu(x, inplace=True)
x.type()
""",
    ),
    check=check,
)
