"""Static analysis stays light: no torch, no numpy, and rich only for the rich format.

Decoy `torch` and `numpy` packages are put first on the path, so that an import of either is
seen even where the real ones are not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = Path(sys.executable).parent / "lr-advisor"
SCRIPT = """\
import numpy as np
import torch

model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    loss = torch.nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
"""
PROBE = """\
import json, sys
import advisor.cli
code = advisor.cli.main(sys.argv[1:])
heavy = ("torch", "numpy", "rich", "multiprocessing", "libcst.codemod")
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    decoys = tmp_path / "decoys"
    for name in ("torch", "numpy"):
        package = decoys / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            f"import pathlib\npathlib.Path({str(tmp_path / (name + '.imported'))!r}).touch()\n"
        )
    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "other.py").write_text(SCRIPT.replace("opt.step()", "opt.step()  # noqa"))
    return tmp_path


def _env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(workdir / "decoys"), "NO_COLOR": "1"}


def loaded_modules(workdir: Path, *args: str) -> tuple[int, set[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=_env(workdir),
    )
    last = completed.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert not (workdir / "torch.imported").exists()
    assert not (workdir / "numpy.imported").exists()
    return result["code"], set(result["loaded"])


def test_the_decoys_work(workdir: Path) -> None:
    subprocess.run([sys.executable, "-c", "import torch"], env=_env(workdir), check=True)
    assert (workdir / "torch.imported").exists()


def test_concise_imports_neither_torch_numpy_nor_rich(workdir: Path) -> None:
    code, loaded = loaded_modules(
        workdir, "--static", "--no-cache", "--format", "concise", "train.py"
    )
    assert code == 1
    assert loaded == set()  # no multiprocessing for one file, no libcst.codemod either


def test_json_and_cached_runs_stay_light(workdir: Path) -> None:
    for _ in range(2):  # the second run reads the cache
        code, loaded = loaded_modules(workdir, "--static", "--format", "json", "train.py")
        assert code == 1 and loaded == set()


def test_many_files_use_processes_but_still_no_torch(workdir: Path) -> None:
    code, loaded = loaded_modules(
        workdir, "--static", "--no-cache", "--jobs", "2", "--format", "concise", "."
    )
    assert code == 1 and loaded == {"multiprocessing"}


def test_rich_format_imports_rich_only_then(workdir: Path) -> None:
    code, loaded = loaded_modules(workdir, "--static", "--no-cache", "--format", "rich", "train.py")
    assert code == 1 and loaded == {"rich"}


def test_subcommands_stay_light_when_piped(workdir: Path) -> None:
    assert loaded_modules(workdir, "rules") == (0, set())
    assert loaded_modules(workdir, "explain", "LRA101") == (0, set())


def test_the_installed_command_per_importtime(workdir: Path) -> None:
    """The console script itself, as pre-commit runs it, under `-X importtime`."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", str(COMMAND), "--static", "--no-cache", "train.py"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=_env(workdir),
    )
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert "LRA101" in completed.stdout
    imported = {
        line.split("|")[-1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "advisor.cli" in imported and "libcst" in imported
    top_level = {name.split(".")[0] for name in imported}
    assert not top_level & {"torch", "numpy", "rich"}
    assert "libcst.codemod" not in imported
