"""Notebooks: one program from the code cells, IPython syntax neutralised, findings in cells."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest
from toy_rules import BACKWARD, TOY_RULES

from advisor.findings import FileError
from advisor.notebook import NotebookProgram, notebook_program, rewrite_cell
from advisor.pipeline import check_bytes
from advisor.source import split_lines

COMMAND = Path(sys.executable).parent / "lr-advisor"


def notebook(*cells: tuple[str, str | list[str]], **extra) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": source, "outputs": []}
                for kind, source in cells
            ],
            "metadata": extra.get("metadata", {"language_info": {"name": "python"}}),
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


TRAINING = notebook(
    ("code", ["import torch\n", "import torch.nn.functional as F\n"]),
    ("markdown", "# Data\nSome *prose* with a backward() call in it.\n"),
    ("code", "%matplotlib inline\nX = torch.randn(10, 3)\ny = X.sum(1, keepdim=True)"),
    ("raw", "loss.backward()"),
    (
        "code",
        "model = torch.nn.Linear(3, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.01)\n",
    ),
    (
        "code",
        [
            "for epoch in range(100):\n",
            "    F.mse_loss(model(X), y).backward()\n",
            "    opt.step()\n",
        ],
    ),
)


def test_cell_numbers_count_code_cells_and_lines_are_cell_relative() -> None:
    result = check_bytes(TRAINING, "nb.ipynb", TOY_RULES)
    located = [(f.rule_id, f.cell, f.line, f.column) for f in result.findings]
    assert located == [("LRA901", 4, 2, 5), ("LRA902", 4, 3, 5)]
    assert result.findings[0].to_json()["cell"] == 4


def test_the_installed_command_reports_cell_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.ipynb"
    path.write_text(
        notebook(
            ("code", "import torch\nimport torch.nn.functional as F\n"),
            ("markdown", "text"),
            ("code", "X = torch.randn(10, 3)\ny = X.sum(1, keepdim=True)\n"),
            ("code", "model = torch.nn.Linear(3, 1)\nopt = torch.optim.SGD(model.parameters())\n"),
            (
                "code",
                "for epoch in range(100):\n"
                "    F.mse_loss(model(X), y).backward()\n"
                "    opt.step()\n",
            ),
        )
    )
    completed = subprocess.run(
        [str(COMMAND), "--static", "--no-cache", "--format", "json", str(path)],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1, completed.stderr
    findings = json.loads(completed.stdout)["findings"]
    assert [(f["id"], f["cell"], f["line"]) for f in findings] == [("LRA101", 4, 2)]
    concise = subprocess.run(
        [str(COMMAND), "--static", "--no-cache", "--format", "concise", str(path)],
        capture_output=True,
        text=True,
    )
    assert f"{path}:cell 4:2:5: LRA101 [missing-zero-grad]" in concise.stdout


def test_cell_three_line_two() -> None:
    text = notebook(
        ("code", "import torch"),
        ("code", "x = 1"),
        ("code", "for i in range(2):\n    loss.backward()\n"),
    )
    (finding,) = check_bytes(text, "nb.ipynb", (BACKWARD,)).findings
    assert (finding.cell, finding.line, finding.column) == (3, 2, 5)


def test_magics_shell_and_help_are_neutralised_line_for_line() -> None:
    cell = (
        "%load_ext autoreload\n"
        "%autoreload 2\n"
        "!pip install torch\n"
        "files = !ls\n"
        "timing = %timeit -o f()\n"
        "pip install numpy\n"
        "torch.nn.Linear?\n"
        "??torch.optim\n"
        "if True:\n"
        "    %time f()\n"
        "text = '''\n"
        "%this is inside a string\n"
        "'''\n"
        "call(\n"
        "    !not a shell line\n"
        ")\n"
        "x = 5 % 3\n"
        "x %= 2\n"
        "time = 3\n"
    )
    lines = split_lines(cell)
    out = rewrite_cell(lines)
    assert len(out) == len(lines)
    cst.parse_module("".join(out[:13]) + "".join(out[16:]))  # all but the bracket: Python now
    assert out[0] == "get_ipython().run_line_magic('load_ext', 'autoreload')\n"
    assert out[2] == "get_ipython().system('pip install torch')\n"
    assert out[3] == "files = get_ipython().getoutput('ls')\n"
    assert out[4] == "timing = get_ipython().run_line_magic('timeit', '-o f()')\n"
    assert out[5] == "get_ipython().run_line_magic('pip', 'install numpy')\n"
    assert out[6] == out[7] == "pass\n"
    assert out[9] == "    get_ipython().run_line_magic('time', 'f()')\n"
    assert out[11:] == lines[11:]  # strings, brackets and real operators are left alone


def test_non_python_cell_magic_blanks_the_body() -> None:
    lines = split_lines("%%bash\nfor f in *; do echo $f; done\nls -la\n")
    out = rewrite_cell(lines)
    assert out == ["get_ipython().run_cell_magic('bash', '', '')\n", "\n", "\n"]


def test_capture_and_time_cell_magics_keep_their_python_body() -> None:
    out = rewrite_cell(split_lines("%%capture output\nimport torch\n!ls\n"))
    assert out == [
        "output = get_ipython().run_cell_magic('capture', '', '')\n",
        "import torch\n",
        "get_ipython().system('ls')\n",
    ]
    text = notebook(("code", "import torch"), ("code", "%%time\nfor i in x:\n    l.backward()"))
    (finding,) = check_bytes(text, "nb.ipynb", (BACKWARD,)).findings
    assert (finding.cell, finding.line) == (2, 3)


def test_bash_cell_body_is_not_checked() -> None:
    text = notebook(("code", "import torch"), ("code", "%%bash\nloss.backward()\n"))
    result = check_bytes(text, "nb.ipynb", (BACKWARD,))
    assert result.findings == [] and result.errors == []


def test_source_as_string_or_list_gives_the_same_program() -> None:
    as_list = notebook(("code", ["a = 1\n", "b = 2"]), ("code", ["c = 3"]))
    as_text = notebook(("code", "a = 1\nb = 2"), ("code", "c = 3\n"))
    first = notebook_program(as_list, "n.ipynb")
    second = notebook_program(as_text, "n.ipynb")
    assert isinstance(first, NotebookProgram) and isinstance(second, NotebookProgram)
    assert first.text == second.text == "a = 1\nb = 2\nc = 3\n"
    assert first.line_map == [(1, 1), (1, 2), (2, 1)]
    assert first.cells == [["a = 1", "b = 2"], ["c = 3"]]


def test_syntax_error_in_a_cell_is_located_in_that_cell() -> None:
    text = notebook(("code", "import torch\n"), ("code", "x = 1\nfor i in :\n    pass\n"))
    result = check_bytes(text, "nb.ipynb", TOY_RULES)
    (error,) = result.errors
    assert (error.cell, error.line) == (2, 2)
    assert error.to_json()["cell"] == 2


def test_suppression_comment_inside_a_cell() -> None:
    text = notebook(
        ("code", "import torch"),
        ("code", "for i in x:\n    loss.backward()  # noqa: LRA901\n    loss.backward()\n"),
    )
    findings = check_bytes(text, "nb.ipynb", (BACKWARD,)).findings
    assert [(f.cell, f.line) for f in findings] == [(2, 3)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"cells": [', "broken JSON"),
        ("[1, 2]", "not an object"),
        ('{"metadata": {}}', "no `cells` list"),
        (b"\xff\xfe\x00garbage", "not a valid notebook"),
    ],
)
def test_broken_notebooks_give_one_line_errors(data: str | bytes, expected: str) -> None:
    result = check_bytes(data, "nb.ipynb", TOY_RULES)
    (error,) = result.errors
    assert isinstance(error, FileError) and error.is_finding
    assert expected in error.message and "\n" not in error.message


@pytest.mark.parametrize(
    "data",
    [
        notebook(),
        notebook(("markdown", "# only prose")),
        notebook(("code", ""), ("code", [])),
        notebook(
            ("code", "import torch\nloss.backward()"), metadata={"kernelspec": {"language": "R"}}
        ),
    ],
)
def test_notebooks_with_nothing_to_check(data: str) -> None:
    result = check_bytes(data, "nb.ipynb", TOY_RULES)
    assert result.findings == [] and result.errors == []


def test_nbformat_3_worksheets() -> None:
    data = json.dumps(
        {
            "worksheets": [
                {"cells": [{"cell_type": "code", "input": ["import torch\n", "l.backward()\n"]}]}
            ],
            "nbformat": 3,
        }
    )
    (finding,) = check_bytes(data, "old.ipynb", (BACKWARD,)).findings
    assert (finding.cell, finding.line) == (1, 2)


def test_locate_past_the_end_stays_in_the_last_cell() -> None:
    program = notebook_program(notebook(("code", "a = 1\nb = 2")), "n.ipynb")
    assert isinstance(program, NotebookProgram)
    assert program.locate(2) == (1, 2)
    assert program.locate(3) == (1, 3)
