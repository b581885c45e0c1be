"""The facts pass: aliases, events in order, autograd context, values, call expansion."""

from __future__ import annotations

import libcst as cst

from advisor.facts import extract_facts
from advisor.facts import values as v
from advisor.facts.flow import loop_occurrences, occurrences
from advisor.facts.model import EventKind


def facts_of(source: str):
    return extract_facts(cst.parse_module(source), "t.py")


def test_import_aliases_resolve():
    facts = facts_of(
        "import torch as to\n"
        "import torch.nn.functional as F\n"
        "from torch import nn, optim\n"
        "from torch.optim import SGD as Plain\n"
        "import torch.utils.data\n"
    )
    assert facts.qualify("to.optim.SGD") == "torch.optim.SGD"
    assert facts.qualify("F.mse_loss") == "torch.nn.functional.mse_loss"
    assert facts.qualify("nn.Linear") == "torch.nn.Linear"
    assert facts.qualify("optim.Adam") == "torch.optim.Adam"
    assert facts.qualify("Plain") == "torch.optim.SGD"
    assert facts.qualify("torch.utils.data.DataLoader") == "torch.utils.data.DataLoader"
    assert facts.qualify("np.array") is None


def test_events_in_order_with_no_grad_context():
    facts = facts_of(
        "for i in range(3):\n"
        "    loss.backward()\n"
        "    with torch.no_grad():\n"
        "        w -= lr * w.grad\n"
        "    w.grad.zero_()\n"
        "    opt.step()\n"
    )
    (loop,) = facts.loops
    events = loop_occurrences(facts, loop)
    assert [o.kind for o in events] == [
        EventKind.BACKWARD,
        EventKind.UPDATE,
        EventKind.ZERO,
        EventKind.STEP,
    ]
    assert [o.no_grad for o in events] == [False, True, False, False]
    assert events[1].event.target == "w" and events[1].event.how == "inplace"
    assert events[2].event.target == "w"


def test_update_forms():
    facts = facts_of(
        "w.data -= lr * w.grad\n"
        "p.sub_(lr * p.grad)\n"
        "w = w - lr * w.grad\n"
        "p.grad = None\n"
        "del q.grad\n"
        "total += loss\n"
        "losses.append(loss)\n"
    )
    found = [(e.kind, e.target, e.how) for s in facts.stmts for e in s.events]
    assert found == [
        (EventKind.UPDATE, "w", "data"),
        (EventKind.UPDATE, "p", "method"),
        (EventKind.UPDATE, "w", "rebind"),
        (EventKind.ZERO, "p", "assign"),
        (EventKind.ZERO, "q", "none"),
        (EventKind.ACCUMULATE, "total", "aug"),
        (EventKind.ACCUMULATE, "losses", "append"),
    ]


def test_calls_into_helpers_are_followed():
    facts = facts_of(
        "def clear(opt):\n"
        "    opt.zero_grad()\n"
        "class T:\n"
        "    def step(self):\n"
        "        self.loss.backward()\n"
        "        clear(self.opt)\n"
        "    def fit(self):\n"
        "        for b in self.loader:\n"
        "            self.step()\n"
    )
    loop = facts.loops[0]
    events = loop_occurrences(facts, loop)
    assert [o.kind for o in events] == [EventKind.BACKWARD, EventKind.ZERO]
    assert all(o.via for o in events)


def test_decorated_helper_is_no_grad():
    facts = facts_of(
        "@torch.no_grad()\n"
        "def sgd(params):\n"
        "    for p in params:\n"
        "        p -= 0.1 * p.grad\n"
        "sgd([w])\n"
    )
    events = occurrences(facts, facts.scope.body)
    assert [(o.kind, o.no_grad) for o in events] == [(EventKind.UPDATE, True)]


def test_values_follow_bindings_and_call_sites():
    facts = facts_of(
        "import torch as to\n"
        "from torch import nn\n"
        "def gen():\n"
        "    yield 1\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(1, 1)\n"
        "model = Net().to('cpu')\n"
        "opt = to.optim.SGD(model.parameters(), lr=0.1)\n"
        "it = gen()\n"
        "dl = to.utils.data.DataLoader(ds)\n"
        "loss_fn = nn.functional.mse_loss\n"
        "def fit(m, o, batches):\n"
        "    pass\n"
        "fit(model, opt, it)\n"
    )
    scope = facts.scope
    fit = facts.functions["fit"].scope

    def kinds(text, where=scope):
        return {value.kind for value in v.text_values(facts, text, where)}

    assert kinds("model") == {v.MODULE}
    assert kinds("opt") == {v.OPTIMIZER}
    assert kinds("it") == {v.ITERATOR}
    assert kinds("dl") == {v.DATALOADER}
    assert kinds("loss_fn") == {v.LOSS_FN}
    assert kinds("m", fit) == {v.MODULE}
    assert kinds("o", fit) == {v.OPTIMIZER}
    assert kinds("batches", fit) == {v.ITERATOR}
    assert kinds("nowhere") == {v.UNDEFINED}
    assert kinds("self.fc", facts.classes["Net"].methods["__init__"].scope) == {v.MODULE}


def test_generator_detection_ignores_nested_functions():
    facts = facts_of("def outer():\n    def inner():\n        yield 1\n    return [1]\n")
    assert not facts.functions["outer"].is_generator
    assert facts.functions["outer.<locals>.inner"].is_generator


def test_literal_constants_are_summarised():
    facts = facts_of("a = [[1, -2.5], [3, 4e1]]\nb = (1, *rest)\nc = 'f4'\nd = -x\n")
    values = [stmt.value.const for stmt in facts.stmts]
    assert values[0] == [[1, -2.5], [3, 40.0]]
    assert values[2] == "f4"
    assert repr(values[1]) == repr(values[3]) == "NOTHING"


def test_literal_arrays_follow_conversions():
    from advisor.facts.data import data_of

    facts = facts_of(
        "import numpy as np\n"
        "import torch as to\n"
        "A = np.array([[2822.48, 2808.48, 2810.92], [2832.94, 2822.48, 2808.48]],\n"
        "             dtype=np.float32)\n"
        "b = np.array([2832.94, 2832.57], dtype='float32')\n"
        "inputs = to.from_numpy(A)\n"
        "targets = to.from_numpy(b).float()\n"
        "ragged = to.tensor([[1, 2], [3]])\n"
        "twice = to.tensor([1.0])\n"
        "twice = to.tensor([2.0])\n"
        "use = twice\n"
    )
    found = {s.targets[0]: s for s in facts.stmts if s.op == "assign"}

    def data(name):
        stmt = found[name]
        return data_of(facts, stmt.value, stmt.scope, stmt.order)

    inputs = data("inputs")
    assert inputs.shape == (2, 3) and inputs.dtype == "np.float32" and inputs.exact
    assert inputs.values.get()[1][0] == 2832.94
    assert data("targets").shape == (2,)
    assert data("ragged") is None
    assert data("use").values.get().tolist() == [2.0]  # the binding that reaches the use
