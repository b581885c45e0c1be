"""LRA404 discarded-tensor-result."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from advisor import torchapi
from advisor.facts.data import Array, Prediction, data_of
from advisor.facts.kinds import Kind, is_known_other, kinds_of
from advisor.facts.model import Call, Expr, FileFacts, Scope, Stmt
from advisor.findings import CERTAIN, LIKELY, Confidence, Diagnostic, Fix
from advisor.rule import WARNING, Rule

CELL_MARKERS = ("# %%", "#%%", "# In[")
TENSOR, ARRAY, UNKNOWN = Kind.TENSOR.value, Kind.ARRAY.value, Kind.UNKNOWN.value
OTHER = Kind.OTHER.value
DATA = "data"  # the receiver holds numbers, it seems: a tensor or an array


# -- what the receiver is ------------------------------------------------------------------
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
    found = kinds_of(facts, expr, stmt.scope)
    if any(is_known_other(kind) for kind in found):
        return OTHER
    if found in ({Kind.TENSOR}, {Kind.ARRAY}):
        return next(iter(found)).value
    if Kind.UNKNOWN not in found or _is_data(facts, expr, stmt):
        return DATA
    return UNKNOWN


# -- which calls discard their result --------------------------------------------------------
def _writes_in_place(call: Call, out_position: int | None) -> bool:
    """`out=`, `inplace=True` (or an `inplace` that is not literally False), and NumPy's
    positional `out`: `np.clip(a, 0, 1, a)`, `np.exp(a, a)`, `a.clip(0, 1, a)`."""
    if "out" in call.kwargs or (out_position is not None and len(call.args) > out_position):
        return True
    flag = call.kwargs.get("inplace")
    return flag is not None and flag.const is not False


def _plausible(call: Call, op: torchapi.Operation) -> bool:
    """Arguments a tensor's method takes, where the receiver is not known."""
    if op.no_arguments:
        return not call.args
    if op.name == "view":  # numpy/torch `x.view(-1, 1)`; a viewer's `.view(scene)` is not
        return any(isinstance(arg.const, int) for arg in call.args) or any(
            (arg.text or "").startswith("torch.") for arg in call.args
        )
    if op.name in ("reshape", "permute", "unflatten", "masked_fill", "type_as"):
        return bool(call.args)
    return True


def _method_call(facts: FileFacts, call: Call, stmt: Stmt) -> tuple[str, Confidence] | None:
    """(what the receiver is, confidence) when this method call's result is thrown away."""
    method, receiver = call.method, call.receiver
    if method is None or receiver is None or method.endswith("_"):
        return None
    tensor, array = torchapi.tensor_method(method), torchapi.array_method(method)
    op = tensor or array
    if op is None or _writes_in_place(call, op.method_out):
        return None
    if method == "type" and not (call.args or call.kwargs):
        return None  # `x.type()` returns the type's name
    kind = _receiver(facts, receiver, stmt)
    if kind == TENSOR and tensor is not None:
        return TENSOR, CERTAIN
    if kind == ARRAY and array is not None:
        return ARRAY, CERTAIN
    if kind == DATA and tensor is not None:
        return TENSOR, LIKELY
    if kind == UNKNOWN and tensor is not None and tensor.tensor_only and _plausible(call, tensor):
        return UNKNOWN, LIKELY
    return None


def _function_call(facts: FileFacts, call: Call) -> str | None:
    """TENSOR/ARRAY for `torch.squeeze(x)`, `np.reshape(a, ...)`, `F.relu(x)` discarded."""
    found = torchapi.function(facts.qualify(call.text))
    if found is None or found.copies is None or not call.args:
        return None
    if _writes_in_place(call, found.out_position):
        return None
    return TENSOR if found.returns == "tensor" else ARRAY


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
_KEPT = {
    "shape": "keeps its shape",
    "dtype": "keeps its dtype",
    "device": "stays where it is",
    "graph": "stays attached to the autograd graph",
    "layout": "keeps its memory layout",
    "conversion": "is still a tensor",
    "copy": "is not copied",
    "values": "keeps its values",
}


def _kept(method: str, name: str) -> str:
    if method == "to":
        return f"{name} keeps its device and dtype"
    return f"{name} {_KEPT[torchapi.OPERATIONS[method].changes]}"


def _short(facts: FileFacts, node: cst.CSTNode, fallback: str) -> str:
    code = facts.module.code_for_node(node)
    return code if "\n" not in code and len(code) <= 60 else fallback


def _diagnostic(
    facts: FileFacts, call: Call, subject: Expr, method: str, kind: str, confidence: Confidence
) -> Diagnostic:
    fallback = f"{call.text}(...)" if call.text else f"<expression>.{method}(...)"
    code = _short(facts, call.node, fallback)
    op = torchapi.OPERATIONS[method]
    noun = "array" if kind == ARRAY else "tensor"
    if kind == UNKNOWN and op.array_method:
        noun = "tensor (or array)"
    if method == "numpy":
        noun = "NumPy array"
    elif method == "tolist":
        noun = "list"
    name = subject.text
    if name and subject.kind in ("name", "attr"):
        target = name
        if op.changes == "conversion":
            target = f"{name.rsplit('.', 1)[-1]}_{'list' if method == 'tolist' else 'np'}"
        assignment = f"{target} = {code}"
        effect = _kept(method, name)
        how = f"Assign it: `{assignment}`"
        fix = Fix(f"assign the result: `{assignment}`")
        in_place = code.replace(f"{name}.{method}(", f"{name}.{method}_(", 1)
        if op.in_place_twin and in_place != code:
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
        if call is None:
            continue
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
        if call.receiver is not None and call.method is not None:  # as _method_call checked
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
