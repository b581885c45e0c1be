"""`--fix` and `--diff`, end to end through the installed command, on real-style code."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from advisor.autofix import apply_fixes, plan
from advisor.pipeline import check_bytes

ROOT = Path(__file__).resolve().parent.parent
LR_ADVISOR = str(Path(sys.executable).with_name("lr-advisor"))

TRAINER = '''\
import torch
from torch import nn


class Trainer:
    """Keeps the model and its optimizer."""

    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        self.criterion = nn.MSELoss()

    def fit(self, loader, epochs):
        history = []
        for epoch in range(epochs):
            total = 0.0
            for xb, yb in loader:
                # forward, then backward
                loss = self.criterion(yb, self.model(xb))
                loss.backward()
                self.optimizer.step()
                total += loss
            history.append(total)
        return history
'''


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [LR_ADVISOR, "--no-cache", "--static", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_fix_applies_the_three_safe_fixes_and_keeps_everything_else(tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    os.chmod(script, 0o754)
    done = run("--fix", "trainer.py", cwd=tmp_path)
    assert "Fixed 3 findings." in done.stderr
    fixed = script.read_text()
    expected = (
        TRAINER.replace(
            "                # forward",
            "                self.optimizer.zero_grad()\n                # forward",
        )
        .replace("self.criterion(yb, self.model(xb))", "self.criterion(self.model(xb), yb)")
        .replace("total += loss\n", "total += loss.item()\n")
    )
    assert fixed == expected
    assert stat.S_IMODE(script.stat().st_mode) == 0o754
    assert done.returncode == 0 and "All checks passed!" in done.stdout
    again = run("--fix", "trainer.py", cwd=tmp_path)  # a second --fix changes nothing
    assert script.read_text() == expected and "Fixed" not in again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["trainer.py"]  # no temporary left behind


def test_diff_shows_the_fixes_and_writes_nothing(tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    done = run("--diff", "trainer.py", cwd=tmp_path)
    assert done.returncode == 1
    assert "+                self.optimizer.zero_grad()" in done.stdout
    assert "-                total += loss" in done.stdout
    assert "+                total += loss.item()" in done.stdout
    assert script.read_text() == TRAINER
    clean = run("--diff", "trainer.py", "--select", "LRA2", cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout == ""


def test_findings_that_remain_keep_exit_code_1(tmp_path: Path) -> None:
    shutil.copy(ROOT / "fixtures" / "demo" / "train_buggy.py", tmp_path / "train.py")
    done = run("--fix", "--format", "json", "train.py", cwd=tmp_path)
    assert done.returncode == 1
    remaining = {f["rule"] for f in json.loads(done.stdout)["findings"]}
    assert remaining == {"reused-layer", "wrong-model-variable"}
    fixed = (tmp_path / "train.py").read_text()
    assert "train_batches" not in fixed  # the generator is made in every epoch now
    assert "    for xb, yb in batches(X_train, y_train):  # expect: exhausted-iterator\n" in fixed


def test_hints_are_not_applied(tmp_path: Path) -> None:
    helper = tmp_path / "helper.py"
    source = (
        "import torch\n"
        "def step(model, opt, x, y):\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "model = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "x, y = torch.randn(8, 2), torch.randn(8, 1)\n"
        "for epoch in range(10):\n"
        "    step(model, opt, x, y)\n"
    )
    helper.write_text(source)
    done = run("--fix", "helper.py", cwd=tmp_path)
    assert helper.read_text() == source  # the step is in a helper: only a hint
    assert done.returncode == 1 and "LRA101" in done.stdout


def test_a_file_that_does_not_parse_is_never_written(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import torch\nfor x in range(3)\n    loss.backward()\n")
    before = script.read_bytes()
    done = run("--fix", "broken.py", cwd=tmp_path)
    assert script.read_bytes() == before and done.returncode == 1


def test_crlf_files_keep_their_line_endings(tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_bytes(TRAINER.replace("\n", "\r\n").encode())
    run("--fix", "trainer.py", cwd=tmp_path)
    data = script.read_bytes()
    assert b"self.optimizer.zero_grad()\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")


# -- the fixes of zero-grad-before-step, update-outside-no-grad and exhausted-iterator --------


def fix_text(source: str, path: str = "train.py") -> tuple[str, list[str]]:
    """The fixed text (in this process, as --fix computes it) and the rules it fixed."""
    result = check_bytes(source, path)
    findings = plan(result.findings).get(path, [])
    outcome = apply_fixes(path, source, findings)
    assert outcome.error is None
    return outcome.after, sorted(f.rule_name for f in outcome.applied)


def remaining(source: str, path: str = "train.py") -> list[tuple[str, bool]]:
    """The findings of a text: (rule, has an edit)."""
    return [(f.rule_name, bool(f.fix and f.fix.edits)) for f in check_bytes(source, path).findings]


def test_zero_grad_moves_before_the_forward_pass_with_its_comment() -> None:
    source = """\
import torch as T
import torch.nn.functional as F

model = T.nn.Sequential(T.nn.Linear(6, 16), T.nn.Tanh(), T.nn.Linear(16, 1))
opt = T.optim.SGD(model.parameters(), lr=0.05)

for epoch in range(25):
    epoch_loss = 0.0
    for xb, yb in loader:
        xb = xb.float()
        pred = model(xb)
        loss = F.huber_loss(pred, yb)
        loss.backward()
        # clear, then clip and step
        opt.zero_grad(set_to_none=True)  # was here by mistake
        T.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        epoch_loss += loss.item()
    print(epoch, epoch_loss / len(loader))
"""
    expected = source.replace(
        "        opt.zero_grad(set_to_none=True)  # was here by mistake\n", ""
    ).replace(
        "        xb = xb.float()\n",
        "        opt.zero_grad(set_to_none=True)  # was here by mistake\n        xb = xb.float()\n",
    )
    fixed, rules = fix_text(source)
    assert rules == ["zero-grad-before-step"]
    assert fixed == expected  # the comment line above it stays where it was
    assert remaining(fixed) == [] and fix_text(fixed) == (fixed, [])


def test_zero_grad_of_a_trainer_model_moves_before_the_loss() -> None:
    source = """\
import torch
from torch import nn


class Trainer:
    def __init__(self, model, lr=0.01):
        self.model = model
        self.criterion = nn.MSELoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)

    def train_step(self, xb, yb):
        self.model.train()
        loss = self.criterion(self.model(xb), yb)
        loss.backward()
        self.model.zero_grad()
        self.optimizer.step()
        return loss.item()
"""
    fixed, rules = fix_text(source)
    assert rules == ["zero-grad-before-step"]
    assert fixed == source.replace("        self.model.zero_grad()\n", "").replace(
        "        loss = self.criterion",
        "        self.model.zero_grad()\n        loss = self.criterion",
    )


def test_zero_grad_stays_below_what_reads_the_gradients() -> None:
    source = """\
import torch

model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
step = 0
while step < 100:
    xb, yb = next_batch()
    loss = torch.nn.functional.mse_loss(model(xb), yb)
    print(model.weight.grad)
    loss.backward()
    opt.zero_grad()
    opt.step()
    step += 1
"""
    fixed, _ = fix_text(source)
    assert "    print(model.weight.grad)\n    opt.zero_grad()\n    loss.backward()\n" in fixed


def test_zero_grad_is_a_hint_where_moving_it_is_not_clear_cut() -> None:
    cases = [
        # gradient accumulation that clears before each step: clear after the step instead
        """\
import torch
for i, (xb, yb) in enumerate(loader):
    loss = criterion(model(xb), yb) / 8
    loss.backward()
    if (i + 1) % 8 == 0:
        optimizer.zero_grad()
        optimizer.step()
""",
        # p.grad.zero_() before backward would fail on the first iteration (.grad is None)
        """\
import torch
w = torch.randn(3, 1, requires_grad=True)
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w.grad.zero_()
    with torch.no_grad():
        w -= 0.1 * w.grad
""",
        # the step runs only every other epoch
        """\
import torch
net = torch.nn.Linear(4, 1)
optimizer = torch.optim.Adam(net.parameters())
for epoch in range(10):
    loss = ((net(X) - y) ** 2).mean()
    loss.backward()
    net.zero_grad()
    if epoch % 2 == 0:
        optimizer.step()
""",
        # two losses: the step may be meant to use both gradients
        """\
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    out = model(xb)
    torch.nn.functional.mse_loss(out, yb).backward(retain_graph=True)
    loss = out.abs().mean()
    loss.backward()
    opt.zero_grad()
    opt.step()
""",
        # already cleared before backward(): only deleting the second one would do
        """\
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(xb), yb)
    loss.backward()
    opt.zero_grad()
    opt.step()
""",
    ]
    for source in cases:
        assert ("zero-grad-before-step", False) in remaining(source), source
        assert fix_text(source) == (source, [])


def test_code_that_clears_correctly_is_never_touched() -> None:
    cases = [
        # accumulation: step and clear every k iterations
        """\
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for i, (xb, yb) in enumerate(loader):
    loss = torch.nn.functional.mse_loss(model(xb), yb) / 4
    loss.backward()
    if (i + 1) % 4 == 0:
        opt.step()
        model.zero_grad(set_to_none=True)
""",
        # LBFGS: the closure clears, backwards and is stepped
        """\
import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.LBFGS(model.parameters())
for step in range(20):
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss
    opt.step(closure)
""",
    ]
    for source in cases:
        assert remaining(source) == []
        assert fix_text(source) == (source, [])


def test_updates_are_wrapped_in_no_grad_with_the_files_alias() -> None:
    source = """\
import torch as T

torch_like = None
slope = T.randn(1, requires_grad=True)
intercept = T.zeros(1, requires_grad=True)
for epoch in range(400):
    pred = slope * x + intercept
    loss = ((pred - score) ** 2).mean()
    loss.backward()
    slope -= lr * slope.grad  # gradient step
    intercept -= lr * intercept.grad

    # reset for the next epoch
    slope.grad.zero_()
    intercept.grad.zero_()
    print(loss.item())
"""
    expected = source.replace(
        """\
    slope -= lr * slope.grad  # gradient step
    intercept -= lr * intercept.grad

    # reset for the next epoch
    slope.grad.zero_()
    intercept.grad.zero_()
""",
        """\
    with T.no_grad():
        slope -= lr * slope.grad  # gradient step
        intercept -= lr * intercept.grad

        # reset for the next epoch
        slope.grad.zero_()
        intercept.grad.zero_()
""",
    )
    fixed, rules = fix_text(source)
    assert rules == ["update-outside-no-grad"] * 2  # one edit fixes both updates
    assert fixed == expected
    assert remaining(fixed) == [] and fix_text(fixed) == (fixed, [])


def test_the_wrapped_block_is_indented_in_the_files_own_style() -> None:
    tabs = (
        "import torch\n"
        "w = torch.zeros(3, requires_grad=True)\n"
        "for step in range(10):\n"
        "\tloss = (w ** 2).sum()\n"
        "\tloss.backward()\n"
        "\tw -= 0.1 * w.grad\n"
        "\tw.grad = None\n"
    )
    fixed, _ = fix_text(tabs)
    assert fixed.endswith("\twith torch.no_grad():\n\t\tw -= 0.1 * w.grad\n\t\tw.grad = None\n")
    two = (
        "import torch\n"
        "def sgd(params, lr):\n"
        "  for p in params:\n"
        "    p.sub_(lr * p.grad)\n"
        "    p.grad.zero_()\n"
        "for epoch in range(10):\n"
        "  loss = ((X @ w - y) ** 2).mean()\n"
        "  loss.backward()\n"
        "  sgd([w], 0.1)\n"
    )
    fixed, rules = fix_text(two)
    assert rules == ["update-outside-no-grad"]
    assert (
        "  for p in params:\n"
        "    with torch.no_grad():\n"
        "      p.sub_(lr * p.grad)\n"
        "      p.grad.zero_()\n"
    ) in fixed


def test_an_update_stays_a_hint_without_torch_itself_or_when_it_rebinds() -> None:
    only_names = """\
from torch import no_grad, zeros

w = zeros(3, requires_grad=True)
for step in range(10):
    loss = (w ** 2).sum()
    loss.backward()
    w -= 0.1 * w.grad
"""
    rebinding = """\
import torch
w = torch.zeros(3, requires_grad=True)
for epoch in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w = w - 0.01 * w.grad
"""
    for source in (only_names, rebinding):
        assert ("update-outside-no-grad", False) in remaining(source)
        assert fix_text(source) == (source, [])


D2L_ONCE = """\
import random

import torch


def data_iter(batch_size, features, labels):
    indices = list(range(len(features)))
    random.shuffle(indices)
    for i in range(0, len(indices), batch_size):
        j = torch.tensor(indices[i:i + batch_size])
        yield features[j], labels[j]


features = torch.normal(0, 1, (1000, 2))
labels = features @ torch.tensor([[2.0], [-3.4]]) + 4.2
w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
lr, num_epochs, batch_size = 0.03, 3, 10
batches = data_iter(batch_size, features, labels)  # made once

for epoch in range(num_epochs):
    for X, y in batches:
        l = ((X @ w + b - y) ** 2 / 2).sum()
        l.backward()
        with torch.no_grad():
            for param in (w, b):
                param -= lr * param.grad / batch_size
                param.grad.zero_()
    print(f"epoch {epoch + 1}")
"""


def test_an_exhausted_generator_is_made_in_every_epoch() -> None:
    fixed, rules = fix_text(D2L_ONCE)
    assert rules == ["exhausted-iterator"]
    assert fixed == D2L_ONCE.replace(
        "batches = data_iter(batch_size, features, labels)  # made once\n", "# made once\n"
    ).replace(
        "    for X, y in batches:\n",
        "    for X, y in data_iter(batch_size, features, labels):\n",
    )
    assert remaining(fixed) == [] and fix_text(fixed) == (fixed, [])


def test_an_iterator_passed_to_a_helper_is_made_at_the_call() -> None:
    source = """\
import torch

def train_epoch(model, batches, opt):
    for xb, yb in batches:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(xb), yb).backward()
        opt.step()

stream = iter(loader)
for epoch in range(20):
    train_epoch(model, stream, opt)
"""
    fixed, rules = fix_text(source)
    assert rules == ["exhausted-iterator"]
    assert "stream" not in fixed and "    train_epoch(model, iter(loader), opt)\n" in fixed


def test_an_exhausted_iterator_stays_a_hint_when_recreating_it_could_change_things() -> None:
    cases = [
        # one batch per step, on purpose: the loop leaves after the first item
        """\
it = iter(loader)
for step in range(1000):
    for xb, yb in it:
        train(xb, yb)
        break
""",
        # the inner loop rebinds X: the generator would read the last batch
        D2L_ONCE.replace("data_iter(batch_size, features, labels)  #", "data_iter(10, X, y)  #"),
        # the name is used elsewhere too
        D2L_ONCE.replace('    print(f"epoch {epoch + 1}")', "    print(next(batches, None))"),
        # the generator expression's source is a plain function that runs at once
        """\
batches = (b for b in make_batches(X, y))
for epoch in range(3):
    for xb in batches:
        pass
""",
        # a generator kept on the object
        """\
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
""",
    ]
    for source in cases:
        source = "import torch\n" + source if "import torch" not in source else source
        assert ("exhausted-iterator", False) in remaining(source), source
        assert fix_text(source) == (source, [])


REAL_SCRIPT = """\
\"\"\"House prices: a linear model in a hand-written loop.\"\"\"
import torch as T
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        x = T.relu(self.hidden(x))
        x = T.relu(self.hidden(x))  # expect: reused-layer
        return self.out(x)


def batches(X, y, size=32):
    perm = T.randperm(len(X))
    for i in range(0, len(X), size):
        idx = perm[i:i + size]
        yield X[idx], y[idx]


X = T.randn(512, 3)   # three   standardised   features
y = X.sum(dim=1, keepdim=True)
model = Net()
opt = T.optim.SGD(model.parameters(), lr=0.05)
train = batches(X, y)
for epoch in range(20):
    for xb, yb in train:  # expect: exhausted-iterator
        loss = ((model(xb) - yb) ** 2).mean()
        loss.backward()
        opt.zero_grad()  # expect: zero-grad-before-step
        opt.step()

w = T.zeros(3, 1, requires_grad=True)
for step in range(100):
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    w -= 0.1 * w.grad  # expect: update-outside-no-grad
    w.grad.zero_()
"""


def test_fix_and_diff_from_the_command_line(tmp_path: Path) -> None:
    script = tmp_path / "houses.py"
    script.write_text(REAL_SCRIPT)
    diff = run("--diff", "houses.py", cwd=tmp_path)
    assert diff.returncode == 1 and script.read_text() == REAL_SCRIPT  # --diff writes nothing
    assert "Would apply 3 fixes to 1 file(s)." in diff.stderr
    assert "+    with T.no_grad():\n+        w -= 0.1 * w.grad" in diff.stdout
    done = run("--fix", "--format", "json", "houses.py", cwd=tmp_path)
    assert "Fixed 3 findings." in done.stderr
    assert done.returncode == 1  # the reused layer has no automatic fix
    assert [f["rule"] for f in json.loads(done.stdout)["findings"]] == ["reused-layer"]
    fixed = script.read_text()
    assert "X = T.randn(512, 3)   # three   standardised   features\n" in fixed  # untouched
    assert fixed.count("\n") == REAL_SCRIPT.count("\n")  # -1 creation, +1 with, moved zero_grad
    assert (
        "    for xb, yb in batches(X, y):  # expect: exhausted-iterator\n"
        "        opt.zero_grad()  # expect: zero-grad-before-step\n"
        "        loss = ((model(xb) - yb) ** 2).mean()\n"
        "        loss.backward()\n"
        "        opt.step()\n"
    ) in fixed
    again = run("--fix", "houses.py", cwd=tmp_path)
    assert script.read_text() == fixed and "Fixed" not in again.stderr
    assert again.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["houses.py"]


def test_the_safe_fixes_keep_the_rule_examples_parsing_and_quiet() -> None:
    """Every must-flag example of the three rules, fixed: it still parses, and the rule no
    longer flags what was fixed (hints stay)."""
    from advisor.rules import find_rule

    for name in ("zero-grad-before-step", "update-outside-no-grad", "exhausted-iterator"):
        for example in find_rule(name).flag:
            fixed, rules = fix_text(example)
            left = [r for r, _ in remaining(fixed) if r == name]
            assert len(left) == len([r for r, _ in remaining(example) if r == name]) - len(rules)
            assert fix_text(fixed) == (fixed, [])


def test_moves_and_wraps_keep_crlf_and_a_missing_final_newline() -> None:
    source = (
        "import torch\n"
        "model = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for xb, yb in loader:\n"
        "    loss = torch.nn.functional.mse_loss(model(xb), yb)\n"
        "    loss.backward()\n"
        "    opt.zero_grad()\n"
        "    opt.step()\n"
        "w = torch.zeros(3, requires_grad=True)\n"
        "for s in range(3):\n"
        "    l = (w ** 2).sum()\n"
        "    l.backward()\n"
        "    w -= 0.1 * w.grad\n"
        "    w.grad.zero_()"
    ).replace("\n", "\r\n")
    fixed, rules = fix_text(source)
    assert rules == ["update-outside-no-grad", "zero-grad-before-step"]
    assert fixed == (
        "import torch\n"
        "model = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for xb, yb in loader:\n"
        "    opt.zero_grad()\n"
        "    loss = torch.nn.functional.mse_loss(model(xb), yb)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "w = torch.zeros(3, requires_grad=True)\n"
        "for s in range(3):\n"
        "    l = (w ** 2).sum()\n"
        "    l.backward()\n"
        "    with torch.no_grad():\n"
        "        w -= 0.1 * w.grad\n"
        "        w.grad.zero_()"
    ).replace("\n", "\r\n")
