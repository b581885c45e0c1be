"""The installed `lr-advisor` command, end to end: exit codes, selection, formats, stdin,
subcommands. Uses the real rule catalogue on scripts whose bugs are beyond doubt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from toy_rules import TOY_RULES

import advisor.rules as rules
from advisor import __version__
from advisor import cache as cache_module
from advisor.cli import main

COMMAND = Path(sys.executable).parent / "lr-advisor"

# LRA402 at 9:12, LRA101 at 10:5, LRA104 at 12:5
BUGGY = """\
import torch
import torch.nn.functional as F

model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
total = 0
for epoch in range(100):
    pred = model(X)
    loss = F.mse_loss(y, pred)
    loss.backward()
    opt.step()
    total += loss
"""
CLEAN = """\
import torch
import torch.nn.functional as F

model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    opt.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    opt.step()
"""

FINDING_SCHEMA = {
    "type": "object",
    "required": [
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "id",
        "rule",
        "message",
        "severity",
        "confidence",
        "fix",
        "evidence",
    ],
    "properties": {
        "path": {"type": "string"},
        "line": {"type": "integer", "minimum": 1},
        "column": {"type": "integer", "minimum": 1},
        "end_line": {"type": "integer", "minimum": 1},
        "end_column": {"type": "integer", "minimum": 1},
        "id": {"type": "string", "pattern": "^LRA[0-9]{3}$"},
        "rule": {"type": "string", "pattern": "^[a-z]+(-[a-z]+)+$"},
        "message": {"type": "string", "minLength": 1},
        "severity": {"enum": ["error", "warning"]},
        "confidence": {"enum": ["certain", "likely", "confirmed"]},
        "fix": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["description", "applicability", "edits"],
                    "properties": {
                        "description": {"type": "string"},
                        "applicability": {"enum": ["safe", "unsafe", "display"]},
                        "edits": {"type": "array"},
                    },
                },
            ]
        },
        "evidence": {"type": "object"},
        "cell": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["path", "line", "column", "message"],
    "properties": {
        "path": {"type": "string"},
        "line": {"type": ["integer", "null"]},
        "column": {"type": ["integer", "null"]},
        "message": {"type": "string"},
        "cell": {"type": "integer"},
    },
    "additionalProperties": False,
}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["version", "findings", "probe", "errors"],
    "properties": {
        "version": {"const": __version__},
        "findings": {"type": "array", "items": FINDING_SCHEMA},
        "probe": {"type": "array"},
        "errors": {"type": "array", "items": ERROR_SCHEMA},
    },
    "additionalProperties": False,
}


def lint(cwd: Path, *args: str, stdin: str | None = None, env: dict | None = None):
    return subprocess.run(
        [str(COMMAND), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "buggy.py").write_text(BUGGY)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def rule_ids(completed: subprocess.CompletedProcess[str]) -> list[str]:
    return [f["id"] for f in json.loads(completed.stdout)["findings"]]


def test_exit_codes(project: Path) -> None:
    assert lint(project, "--static", "--no-cache", "clean.py").returncode == 0
    assert lint(project, "--static", "--no-cache", "buggy.py").returncode == 1
    assert lint(project, "--static", "--no-cache", "--exit-zero", "buggy.py").returncode == 0
    assert lint(project, "--static", "--no-cache", "missing.py").returncode == 2
    assert lint(project, "--static", "--bogus-option").returncode == 2
    assert lint(project, "--jobs", "-1", "buggy.py").returncode == 2


def test_exit_zero_still_fails_on_usage_errors(project: Path) -> None:
    completed = lint(project, "--exit-zero", "--no-cache", "missing.py", "buggy.py")
    assert completed.returncode == 2


def test_default_path_is_the_current_folder(project: Path) -> None:
    completed = lint(project, "--static", "--no-cache", "--format", "json")
    assert {f["path"] for f in json.loads(completed.stdout)["findings"]} == {"buggy.py"}


def test_json_report_matches_the_schema(project: Path) -> None:
    (project / "broken.py").write_text("import torch\ndef f(:\n")
    completed = lint(project, "--static", "--no-cache", "--format", "json", ".")
    assert completed.returncode == 1
    document = json.loads(completed.stdout)
    jsonschema.validate(document, REPORT_SCHEMA)
    located = [(f["id"], f["rule"], f["line"], f["column"]) for f in document["findings"]]
    assert located == [
        ("LRA402", "loss-argument-order", 9, 12),
        ("LRA101", "missing-zero-grad", 10, 5),
        ("LRA104", "accumulated-loss-tensor", 12, 5),
    ]
    assert [(e["path"], e["line"]) for e in document["errors"]] == [("broken.py", 2)]
    assert completed.stderr == ""


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--select", "LRA101"], ["LRA101"]),
        (["--select", "missing-zero-grad"], ["LRA101"]),
        (["--select", "LRA1"], ["LRA101", "LRA104"]),
        (["--select", "LRA101,loss-argument-order"], ["LRA402", "LRA101"]),
        (["--select", "LRA101", "--select", "LRA104"], ["LRA101", "LRA104"]),
        (["--ignore", "LRA101"], ["LRA402", "LRA104"]),
        (["--ignore", "accumulated-loss-tensor"], ["LRA402", "LRA101"]),
        (["--ignore", "LRA1"], ["LRA402"]),
        (["--select", "LRA1", "--ignore", "LRA104"], ["LRA101"]),
        (["--select", "ALL", "--ignore", "LRA4,LRA1"], []),
    ],
)
def test_select_and_ignore(project: Path, option: list[str], expected: list[str]) -> None:
    completed = lint(project, "--static", "--no-cache", "--format", "json", *option, "buggy.py")
    assert rule_ids(completed) == expected


@pytest.mark.parametrize("option", ["--select", "--ignore"])
def test_an_unknown_selector_is_a_usage_error(project: Path, option: str) -> None:
    completed = lint(project, "--static", option, "LRA101,no-such-rule", "buggy.py")
    assert completed.returncode == 2
    assert "no rule matches 'no-such-rule'" in completed.stderr
    assert completed.stdout == ""


def test_concise_format(project: Path) -> None:
    completed = lint(project, "--static", "--no-cache", "--format", "concise", "buggy.py")
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("buggy.py:9:12: LRA402 [loss-argument-order] ")
    assert lines[1].startswith("buggy.py:10:5: LRA101 [missing-zero-grad] gradients are never")
    assert lines[2].startswith("buggy.py:12:5: LRA104 [accumulated-loss-tensor] ")
    assert lines[3] == "Found 3 errors."
    clean = lint(project, "--static", "--no-cache", "--format", "concise", "clean.py")
    assert clean.stdout == "All checks passed!\n"


def test_piped_output_defaults_to_concise(project: Path) -> None:
    completed = lint(project, "--static", "--no-cache", "buggy.py")
    assert completed.stdout.splitlines()[-1] == "Found 3 errors."


def test_rich_format_with_no_color_has_no_escape_codes(project: Path) -> None:
    args = ("--static", "--no-cache", "--format", "rich", "buggy.py")
    completed = lint(project, *args, env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert "\x1b" not in completed.stdout
    out = completed.stdout
    assert "buggy.py:10:5: LRA101 [missing-zero-grad] gradients are never cleared" in out
    assert "10 |     loss.backward()\n   |     ^^^^^^^^^^^^^^^\n" in out
    assert " 9 |     loss = F.mse_loss(y, pred)\n10 |     loss.backward()\n" in out  # context
    assert "= help: clear the gradients at the start of each iteration" in out
    assert out.rstrip().endswith("Found 3 findings (3 certain) in 1 file.")
    # and the control: forced colour without NO_COLOR does colour
    coloured = lint(project, *args, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in coloured.stdout
    os_env_plain = lint(project, *args)  # not a terminal: plain as well
    assert "\x1b" not in os_env_plain.stdout


def test_rich_format_for_a_clean_file(project: Path) -> None:
    completed = lint(project, "--static", "--no-cache", "--format", "rich", "clean.py")
    assert completed.stdout.strip() == "All checks passed! (1 file checked)"


def test_github_format(project: Path) -> None:
    completed = lint(project, "--static", "--no-cache", "--format", "github", "buggy.py")
    second = completed.stdout.splitlines()[1]
    assert second.startswith("::error file=buggy.py,line=10,col=5,endLine=10,endColumn=20,")
    assert "title=LRA101 missing-zero-grad::gradients are never cleared" in second


def test_stdin(project: Path) -> None:
    completed = lint(project, "--static", "--format", "json", "-", stdin=BUGGY)
    document = json.loads(completed.stdout)
    assert completed.returncode == 1
    assert {f["path"] for f in document["findings"]} == {"-"}
    named = lint(
        project, "--static", "--format", "concise", "--stdin-filename", "train.py", stdin=BUGGY
    )
    assert "train.py:10:5: LRA101" in named.stdout
    named_rich = lint(project, "--format", "rich", "--stdin-filename", "t.py", "-", stdin=BUGGY)
    assert "10 |     loss.backward()" in named_rich.stdout  # the frame comes from stdin's text
    notebook = json.dumps({"cells": [{"cell_type": "code", "source": BUGGY}]})
    from_nb = lint(project, "--format", "json", "--stdin-filename", "t.ipynb", stdin=notebook)
    assert [(f["cell"], f["line"]) for f in json.loads(from_nb.stdout)["findings"]][1] == (1, 10)
    assert lint(project, "--static", "-", stdin=CLEAN).returncode == 0


def test_rules_subcommand(project: Path) -> None:
    completed = lint(project, "rules")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert len(lines) == len(rules.ALL_RULES)
    assert lines[0].split()[:2] == ["LRA101", "missing-zero-grad"]
    catalogue = json.loads(lint(project, "rules", "--format", "json").stdout)
    by_id = {entry["id"]: entry for entry in catalogue}
    assert {"id": "LRA402", "name": "loss-argument-order"}.items() <= by_id["LRA402"].items()
    assert all(entry["summary"] for entry in catalogue)


def test_explain_subcommand(project: Path) -> None:
    by_id = lint(project, "explain", "LRA101")
    by_name = lint(project, "explain", "missing-zero-grad")
    assert by_id.returncode == by_name.returncode == 0
    assert by_id.stdout == by_name.stdout
    text = by_id.stdout
    rule = rules.find_rule("LRA101")
    for section in ("## What it does", "## Why is this bad?", "## How lr-advisor confirms it"):
        assert section in text
    assert rule.flag[0].strip() in text and rule.quiet[0].strip() in text
    assert "\x1b" not in text  # piped: plain Markdown
    unknown = lint(project, "explain", "LRA999")
    assert unknown.returncode == 2 and "unknown rule 'LRA999'" in unknown.stderr


def test_subcommand_names_are_paths_after_the_first_argument(project: Path) -> None:
    folder = project / "rules"
    folder.mkdir()
    (folder / "train.py").write_text(BUGGY)
    completed = lint(project, "--static", "--no-cache", "--format", "concise", "./rules")
    assert "rules/train.py:10:5: LRA101" in completed.stdout
    completed = lint(project, "--no-cache", "--format", "concise", "clean.py", "rules")
    assert "rules/train.py:10:5: LRA101" in completed.stdout


def test_version(project: Path) -> None:
    completed = lint(project, "--version")
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"lr-advisor {__version__}" == "lr-advisor 0.1.0"


def test_python_dash_m_advisor(project: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "advisor", "--no-cache", "buggy.py"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1 and "Found 3 errors." in completed.stdout


def test_cache_makes_the_second_run_agree(project: Path) -> None:
    first = lint(project, "--static", "--format", "json", ".")
    assert (project / cache_module.CACHE_DIR).is_dir()
    second = lint(project, "--static", "--format", "json", ".")
    assert first.stdout == second.stdout


def test_main_in_process_with_test_rules(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(rules, "ALL_RULES", TOY_RULES)
    monkeypatch.chdir(project)
    code = main(["--no-cache", "--format", "concise", "--select", "every-step", "buggy.py"])
    assert code == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "buggy.py:11:5: LRA902 [every-step] a step() call",
        "Found 1 error.",
    ]
    assert main(["--select", "LRA101", "buggy.py"]) == 2  # not in this catalogue


def test_internal_error_exits_2(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from toy_rules import CRASH

    monkeypatch.setattr(rules, "ALL_RULES", (*TOY_RULES, CRASH))
    monkeypatch.chdir(project)
    assert main(["--no-cache", "--format", "concise", "buggy.py"]) == 2
    captured = capsys.readouterr()
    assert "LRA901" in captured.out  # the other rules still reported
    assert "internal error in rule LRA990 (always-crashes)" in captured.err
