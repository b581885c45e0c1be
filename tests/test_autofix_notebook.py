"""`--fix` and `--diff` on notebooks: the same fixes, applied to the code cells' sources, with
every other byte of the notebook (outputs, metadata, layout) kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from advisor.autofix import apply_fixes, plan
from advisor.findings import Edit, Finding, Fix
from advisor.fix_positions import in_cell
from advisor.notebook import notebook_program
from advisor.pipeline import check_bytes

ROOT = Path(__file__).resolve().parent.parent
LR_ADVISOR = str(Path(sys.executable).with_name("lr-advisor"))
FIXTURE = ROOT / "fixtures" / "fixes" / "d2l_scratch_and_builtin.ipynb"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [LR_ADVISOR, "--no-cache", "--static", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def nbformat_text(notebook: dict) -> str:
    """A notebook as Jupyter writes it: one-space indentation, sorted keys, UTF-8, newline."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def set_code(cell: dict, code: str) -> None:
    cell["source"] = code.splitlines(keepends=True) if isinstance(cell["source"], list) else code


def fix_notebook(text: str, path: str = "nb.ipynb"):
    result = check_bytes(text, path)
    return apply_fixes(path, text, plan(result.findings).get(path, []))


def test_the_fixture_is_fixed_cell_by_cell_and_nothing_else_changes(tmp_path: Path) -> None:
    notebook = tmp_path / "d2l.ipynb"
    shutil.copy(FIXTURE, notebook)
    before = notebook.read_text(encoding="utf-8")
    assert before == nbformat_text(json.loads(before))  # written as Jupyter writes it

    expected = json.loads(before)
    cells = code_cells(expected)
    data, loop, manual = cells[1], cells[3], cells[4]
    set_code(
        data,
        "".join(data["source"]).replace(
            "batches = data_iter(10, features, labels)  # one pass of shuffled minibatches",
            "# one pass of shuffled minibatches",
        ),
    )
    set_code(
        loop,
        "%%time\n"
        "for epoch in range(3):\n"
        "    for X, y in data_iter(10, features, labels):  # expect: exhausted-iterator\n"
        "        opt.zero_grad()  # expect: zero-grad-before-step\n"
        "        loss = F.mse_loss(model(X), y)\n"
        "        loss.backward()\n"
        "        # the update\n"
        "        opt.step()\n"
        '    print(f"epoch {epoch + 1}, loss {loss.item():f}")',
    )
    set_code(
        manual,
        "".join(manual["source"]).replace(
            "        w -= 0.03 * w.grad / 10  # expect: update-outside-no-grad\n"
            "        b -= 0.03 * b.grad / 10  # expect: update-outside-no-grad\n"
            "        w.grad.zero_()\n"
            "        b.grad.zero_()",
            "        with T.no_grad():\n"
            "            w -= 0.03 * w.grad / 10  # expect: update-outside-no-grad\n"
            "            b -= 0.03 * b.grad / 10  # expect: update-outside-no-grad\n"
            "            w.grad.zero_()\n"
            "            b.grad.zero_()",
        ),
    )

    done = run("--fix", "d2l.ipynb", cwd=tmp_path)
    assert "Fixed 4 findings." in done.stderr
    assert done.returncode == 0 and "All checks passed!" in done.stdout
    after = notebook.read_text(encoding="utf-8")
    assert after == nbformat_text(expected)  # byte for byte: outputs, ids, metadata, layout
    old, new = json.loads(before), json.loads(after)
    for cell_before, cell_after in zip(old["cells"], new["cells"], strict=True):
        assert {k: v for k, v in cell_before.items() if k != "source"} == {
            k: v for k, v in cell_after.items() if k != "source"
        }
    assert '"%matplotlib inline\\n",' in after and '"!nvidia-smi -L\\n",' in after  # kept

    again = run("--fix", "d2l.ipynb", cwd=tmp_path)
    assert notebook.read_text(encoding="utf-8") == after and "Fixed" not in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d2l.ipynb"]


def test_diff_shows_the_changed_cells_code_and_writes_nothing(tmp_path: Path) -> None:
    notebook = tmp_path / "d2l.ipynb"
    shutil.copy(FIXTURE, notebook)
    before = notebook.read_bytes()
    done = run("--diff", "d2l.ipynb", cwd=tmp_path)
    assert done.returncode == 1 and notebook.read_bytes() == before
    assert "Would apply 4 fixes to 1 file(s)." in done.stderr
    diff = done.stdout
    headers = [line for line in diff.splitlines() if line.startswith(("--- ", "+++ "))]
    assert headers == [
        "--- a/d2l.ipynb:cell 2",
        "+++ b/d2l.ipynb:cell 2",
        "--- a/d2l.ipynb:cell 4",
        "+++ b/d2l.ipynb:cell 4",
        "--- a/d2l.ipynb:cell 5",
        "+++ b/d2l.ipynb:cell 5",
    ]
    assert "-batches = data_iter(10, features, labels)  # one pass" in diff
    assert "+        opt.zero_grad()  # expect: zero-grad-before-step\n" in diff
    assert "+        with T.no_grad():\n" in diff
    assert '"source"' not in diff and "outputs" not in diff  # code, not JSON


TRAINING = (
    "for epoch in range(100):\n"
    "    loss = F.mse_loss(model(X), y)\n"
    "    loss.backward()\n"
    "    opt.step()"
)


def test_a_string_source_stays_a_string_in_the_notebooks_own_layout() -> None:
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"language_info": {"name": "python"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "Température, µ, λ"},
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "import torch\nimport torch.nn.functional as F\n# données: µ = 0",
            },
            {
                "cell_type": "code",
                "metadata": {"collapsed": False},
                "execution_count": 7,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "ok\n"}],
                "source": TRAINING,
            },
        ],
    }
    text = json.dumps(notebook, indent=2)  # unsorted keys, ASCII escapes, no final newline
    outcome = fix_notebook(text)
    assert [f.rule_name for f in outcome.applied] == ["missing-zero-grad"]
    code = TRAINING.replace("    loss =", "    opt.zero_grad()\n    loss =")
    notebook["cells"][2]["source"] = code
    assert outcome.after == json.dumps(notebook, indent=2)
    assert "\\u00b5" in outcome.after and "µ" not in outcome.after
    assert outcome.cells == [(2, TRAINING, code)]


def test_a_list_source_keeps_its_unchanged_lines_as_they_were_written() -> None:
    lines = ["import torch\n", "import torch.nn.functional as F\n", "\n"] + [
        line for line in TRAINING.splitlines(keepends=True)
    ]
    text = (
        '{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": [\n'
        + ",\n".join("    " + json.dumps(line) for line in lines)
        + '\n  ]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
    ).replace('"import torch\\n"', '"import \\u0074orch\\n"')  # a token JSON allows
    outcome = fix_notebook(text)
    assert outcome.changed
    assert '    "import \\u0074orch\\n",\n' in outcome.after  # reused as written
    assert ',\n    "    opt.zero_grad()\\n",\n    "    loss = ' in outcome.after
    assert outcome.after.endswith('\n  ]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')


def test_an_edit_never_touches_a_line_that_ipython_syntax_rewrote() -> None:
    text = json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "metadata": {},
                    "source": "%time x = 1\ny = 2\n!ls\nz = 3",
                }
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    program = notebook_program(text, "nb.ipynb")
    lines = program.text.splitlines(keepends=True)
    assert in_cell(Edit(1, 1, 2, 1, ""), program, lines) is None  # the %time line
    assert in_cell(Edit(3, 1, 3, 4, "pwd"), program, lines) is None  # the !ls line
    assert in_cell(Edit(2, 1, 3, 1, ""), program, lines) == Edit(2, 1, 3, 1, "", cell=1)
    assert in_cell(Edit(4, 1, 5, 1, ""), program, lines) == Edit(4, 1, 5, 1, "", cell=1)
    assert in_cell(Edit(3, 1, 3, 1, "w = 0\n"), program, lines) is not None  # insertion


def test_edits_across_cells_are_mapped_to_each_cell() -> None:
    text = json.dumps(
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "source": ["import torch\n", "a = 1"]},
                {"cell_type": "markdown", "metadata": {}, "source": ["# b"]},
                {"cell_type": "code", "metadata": {}, "source": ["b = 2\n", "c = 3\n"]},
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    program = notebook_program(text, "nb.ipynb")
    lines = program.text.splitlines(keepends=True)
    assert in_cell(Edit(2, 1, 3, 1, ""), program, lines) == Edit(2, 1, 3, 1, "", cell=1)
    assert in_cell(Edit(3, 1, 4, 1, ""), program, lines) == Edit(1, 1, 2, 1, "", cell=2)
    assert in_cell(Edit(2, 1, 4, 1, ""), program, lines) is None  # spans two cells


def test_a_fix_that_would_break_a_cell_changes_nothing() -> None:
    text = json.dumps(
        {
            "cells": [{"cell_type": "code", "metadata": {}, "source": ["import torch\n", "x = 1"]}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    broken = Finding(
        "nb.ipynb", 2, 1, 2, 6, "LRA999", "test", "m", "error", "certain",
        fix=Fix("break it", "safe", (Edit(2, 1, 2, 1, "def (", cell=1),)),
        cell=1,
    )  # fmt: skip
    outcome = apply_fixes("nb.ipynb", text, [broken])
    assert outcome.error and outcome.after == text and not outcome.changed


def test_notebook_findings_carry_their_edits_in_cell_positions() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    result = check_bytes(text, "d2l.ipynb")
    by_rule = {f.rule_name: f.to_json() for f in result.findings}
    edits = by_rule["exhausted-iterator"]["fix"]["edits"]
    assert {e["cell"] for e in edits} == {2, 4}
    where = {k: v for k, v in edits[0].items() if k != "content"}
    assert where == {"line": 3, "column": 17, "end_line": 3, "end_column": 24, "cell": 4}
    script = check_bytes(TRAINING_SCRIPT, "t.py").findings
    assert all("cell" not in e for f in script for e in f.to_json()["fix"]["edits"])


TRAINING_SCRIPT = "import torch\nimport torch.nn.functional as F\n" + TRAINING + "\n"


def test_an_insertion_stays_in_the_cell_of_the_statement_it_precedes() -> None:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": [
                    "import torch\n",
                    "model = torch.nn.Linear(3, 1)\n",
                    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
                    "# next: one step by hand",
                ],
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": [
                    "loss = torch.nn.functional.mse_loss(model(X), y)\n",
                    "loss.backward()\n",
                    "opt.zero_grad()\n",
                    "opt.step()",
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    text = json.dumps(notebook, indent=1)
    outcome = fix_notebook(text)
    assert [f.rule_name for f in outcome.applied] == ["zero-grad-before-step"]
    notebook["cells"][1]["source"] = [
        "opt.zero_grad()\n",
        "loss = torch.nn.functional.mse_loss(model(X), y)\n",
        "loss.backward()\n",
        "opt.step()",
    ]
    assert outcome.after == json.dumps(notebook, indent=1)  # the first cell is untouched


def test_an_nbformat_3_notebook_is_fixed_in_its_input_lines() -> None:
    notebook = {
        "metadata": {"name": "old"},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "heading", "level": 1, "source": ["Old notebook"]},
                    {
                        "cell_type": "code",
                        "input": ["import torch\n", "import torch.nn.functional as F"],
                        "language": "python",
                        "outputs": [],
                    },
                    {
                        "cell_type": "code",
                        "input": TRAINING.splitlines(keepends=True),
                        "language": "python",
                        "outputs": [],
                    },
                ]
            }
        ],
    }
    text = json.dumps(notebook, indent=1)
    outcome = fix_notebook(text)
    assert [f.rule_name for f in outcome.applied] == ["missing-zero-grad"]
    code = TRAINING.replace("    loss =", "    opt.zero_grad()\n    loss =")
    notebook["worksheets"][0]["cells"][2]["input"] = code.splitlines(keepends=True)
    assert outcome.after == json.dumps(notebook, indent=1)
