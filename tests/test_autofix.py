"""`--fix` and `--diff`, end to end through the installed command, on real-style code."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

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
    assert remaining == {"reused-layer", "exhausted-iterator", "wrong-model-variable"}


def test_hints_are_not_applied_and_notebooks_are_left_alone(tmp_path: Path) -> None:
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
    notebook = tmp_path / "nb.ipynb"
    shutil.copy(
        ROOT / "fixtures" / "rules" / "missing-zero-grad" / "bad_notebook_fuel_efficiency.ipynb",
        notebook,
    )
    before = notebook.read_bytes()
    done = run("--fix", "helper.py", "nb.ipynb", cwd=tmp_path)
    assert helper.read_text() == source  # the step is in a helper: only a hint
    assert notebook.read_bytes() == before
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
