"""The pre-commit hook, for real: `pre-commit try-repo` against this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"

BUGGY = """\
import torch

model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    loss = torch.nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
"""
FIXED = BUGGY.replace("    loss = torch", "    opt.zero_grad()\n    loss = torch")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.skipif(
    not PRE_COMMIT.exists() or not shutil.which("git"), reason="needs pre-commit and git"
)
@pytest.mark.parametrize("hook", ["lr-advisor", "lr-advisor-probe"])
def test_hook_fails_on_the_bug_then_passes_after_the_fix(tmp_path: Path, hook: str) -> None:
    repo = tmp_path / "user-repo"
    repo.mkdir()
    env = {
        **os.environ,
        # the probe hook is `language: system`: it runs the lr-advisor found on PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    _git(repo, "init", "-q")
    script = repo / "train.py"
    script.write_text(BUGGY)
    _git(repo, "add", "train.py")

    def run_hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "try-repo", str(ROOT), hook, "--files", "train.py"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    failed = run_hook()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "LRA101" in failed.stdout and "train.py:7" in failed.stdout, failed.stdout

    script.write_text(FIXED)
    _git(repo, "add", "train.py")
    passed = run_hook()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout
