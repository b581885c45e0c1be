"""Bad input gets one clear line and the run goes on: syntax errors, undecodable bytes, null
bytes, broken or empty notebooks, empty files, huge files, missing paths, empty folders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy_rules import TOY_RULES

from advisor.pipeline import check_bytes
from advisor.source import MAX_SOURCE_BYTES, decode_source

COMMAND = Path(sys.executable).parent / "lr-advisor"
BUGGY = (
    "import torch\n"
    "model = torch.nn.Linear(3, 1)\n"
    "opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
    "for epoch in range(100):\n"
    "    loss = torch.nn.functional.mse_loss(model(X), y)\n"
    "    loss.backward()\n"
    "    opt.step()\n"
)


def lint(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), "--static", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def report(cwd: Path, *args: str) -> tuple[int, dict]:
    completed = lint(cwd, "--format", "json", *args)
    return completed.returncode, json.loads(completed.stdout)


def test_syntax_error_is_reported_with_position_and_other_files_are_checked(
    tmp_path: Path,
) -> None:
    (tmp_path / "broken.py").write_text("import torch\n\nfor epoch in range(3)\n    pass\n")
    (tmp_path / "train.py").write_text(BUGGY)
    code, document = report(tmp_path, ".")
    assert code == 1
    (error,) = document["errors"]
    assert error["path"] == "broken.py"
    assert (error["line"], error["column"]) == (3, 22)
    assert error["message"].startswith("SyntaxError: expected ':'")
    assert [f["path"] for f in document["findings"]] == ["train.py"]
    concise = lint(tmp_path, "--format", "concise", ".")
    assert "broken.py:3:22: error: SyntaxError: expected ':'" in concise.stdout


def test_a_syntax_error_alone_exits_1(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\nx = (\n")
    assert lint(tmp_path, "broken.py").returncode == 1


def test_undecodable_bytes_are_one_line_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "binary.py").write_bytes(b"import torch\nx = '\xff\xfe'\n")
    (tmp_path / "train.py").write_text(BUGGY)
    code, document = report(tmp_path, ".")
    assert code == 1
    (error,) = document["errors"]
    assert error["path"] == "binary.py" and (error["line"], error["column"]) == (2, 6)
    assert "cannot decode as utf-8: invalid byte 0xff" in error["message"]
    assert len(document["findings"]) == 1
    completed = lint(tmp_path, "binary.py")
    assert "Traceback" not in completed.stderr
    assert completed.stdout.startswith("binary.py:2:6: error: cannot decode")


def test_coding_cookie_bom_and_bad_cookie() -> None:
    assert decode_source("# coding: latin-1\nx = 'é'\n".encode("latin-1"), "t.py") == (
        "# coding: latin-1\nx = 'é'\n"
    )
    assert decode_source(b"\xef\xbb\xbfx = 1\n", "t.py") == "x = 1\n"
    error = decode_source(b"# -*- coding: klingon -*-\nx = 1\n", "t.py")
    assert not isinstance(error, str) and "unknown encoding" in error.message


def test_null_byte_is_reported(tmp_path: Path) -> None:
    result = check_bytes(b"import torch\nx = 1\x00\n", "t.py", TOY_RULES)
    (error,) = result.errors
    assert "null byte" in error.message and (error.line, error.column) == (2, 6)


def test_empty_file_has_nothing_to_check(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "blank.py").write_text("\n\n   \n")
    completed = lint(tmp_path, "--format", "concise", ".")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "error" not in completed.stdout.lower()


def test_broken_notebook_is_an_error_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x"')
    (tmp_path / "train.py").write_text(BUGGY)
    code, document = report(tmp_path, ".")
    assert code == 1
    (error,) = document["errors"]
    assert error["path"] == "broken.ipynb"
    assert "not a valid notebook: broken JSON" in error["message"]
    assert [f["path"] for f in document["findings"]] == ["train.py"]


def test_empty_notebook_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4}')
    (tmp_path / "zero.ipynb").write_text("")
    completed = lint(tmp_path, ".")
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_huge_generated_file_gets_a_clear_message_fast(tmp_path: Path) -> None:
    line = "x_{0} = torch.zeros(3)  # generated\n"
    count = 10 * 1024 * 1024 // len(line.format(0)) + 1
    text = "import torch\n" + "".join(line.format(i) for i in range(count))
    assert len(text) > 10 * 1024 * 1024 > MAX_SOURCE_BYTES
    (tmp_path / "generated.py").write_text(text)
    (tmp_path / "train.py").write_text(BUGGY)
    started = time.perf_counter()
    completed = lint(tmp_path, "--format", "concise", "generated.py", "train.py", timeout=30)
    elapsed = time.perf_counter() - started
    assert elapsed < 10
    assert completed.returncode == 1
    assert re.search(
        r"^generated\.py: error: file too large \(1\d\.\d MB > 5 MB\), skipped$",
        completed.stdout,
        re.M,
    )
    assert "train.py:6:5: LRA101" in completed.stdout


def test_directory_without_python_files_warns_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1,2\n")
    completed = lint(tmp_path, "data")
    assert completed.returncode == 0
    assert "No Python files found" in completed.stderr


def test_missing_path_exits_2_and_still_checks_the_others(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(BUGGY)
    completed = lint(tmp_path, "--format", "concise", "nope.py", "train.py")
    assert completed.returncode == 2
    assert "nope.py: error: no such file or directory" in completed.stderr
    assert "train.py:6:5: LRA101" in completed.stdout
    alone = lint(tmp_path, "nope.py")
    assert alone.returncode == 2 and alone.stderr.count("\n") == 1


PATHOLOGICAL = {
    # each of these kills libcst's native parser with a stack overflow (a segfault)
    "brackets": "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "operators": "x = " + "+".join(["1"] * 100_000) + "\n",
    "elifs": "if a:\n    pass\n" + "".join(f"elif a == {i}:\n    pass\n" for i in range(10_000)),
    "calls": "x = a" + ".b()" * 20_000 + "\n",
    # these parse, but the syntax tree is too deep for Python-level recursion
    "nots": "x = " + "not " * 5000 + "a\n",
    "lambdas": "x = " + "lambda: " * 1000 + "1\nloss.backward()\n",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_nesting_is_an_error_not_a_crash(tmp_path: Path, name: str) -> None:
    (tmp_path / "deep.py").write_text("import torch\n" + PATHOLOGICAL[name])
    (tmp_path / "train.py").write_text(BUGGY)
    completed = lint(tmp_path, "--format", "concise", "--jobs", "2", ".", timeout=120)
    assert completed.returncode == 1, completed.stderr
    assert "deep.py" in completed.stdout and "too deeply nested" in completed.stdout
    assert "train.py:6:5: LRA101" in completed.stdout
    assert "Traceback" not in completed.stderr
