"""The runner: positions, rule crashes, pre-filter, syntax errors, parallel runs and the cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from toy_rules import BACKWARD, CRASH, FOREIGN, STEP, TOY_RULES

from advisor import cache as cache_module
from advisor.pipeline import check_bytes, check_source, node_positions
from advisor.runner import RunOptions, check_paths

SCRIPT = """\
import torch

for epoch in range(3):
    loss = model(x).sum()
    loss.backward()
    opt.step()
"""


def options(**changes) -> RunOptions:
    base = {"rules": TOY_RULES, "use_cache": False, "jobs": 1}
    base.update(changes)
    return RunOptions(**base)


def test_positions_are_one_based_and_cover_the_node() -> None:
    result = check_source(SCRIPT, "t.py", TOY_RULES)
    assert [(f.rule_id, f.line, f.column, f.end_line, f.end_column) for f in result.findings] == [
        ("LRA901", 5, 5, 5, 20),
        ("LRA902", 6, 5, 6, 15),
    ]
    backward = result.findings[0]
    assert backward.rule_name == "every-backward" and backward.severity == "error"
    assert backward.fix is not None and backward.fix.description == "do not call backward()"
    assert result.findings[1].confidence == "likely"
    assert result.findings[1].severity == "warning"


def test_fast_positions_agree_with_the_metadata_wrapper() -> None:
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    text = Path(__file__).resolve().parents[1].joinpath("advisor", "runner.py").read_text()
    module = cst.parse_module(text + "\r\nx = 1\r\ny = 2\n")
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    assert dict(node_positions(module)) == dict(expected)


def test_a_crashing_rule_is_reported_and_the_others_still_run() -> None:
    result = check_source(SCRIPT, "t.py", (CRASH, BACKWARD))
    assert [f.rule_id for f in result.findings] == ["LRA901"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert not error.is_finding
    assert "LRA990" in error.message and "ZeroDivisionError: rule bug" in error.message


def test_a_node_outside_the_module_is_an_internal_error_not_a_crash() -> None:
    result = check_source(SCRIPT, "t.py", (FOREIGN, BACKWARD))
    assert [f.rule_id for f in result.findings] == ["LRA901"]
    assert "LRA991" in result.errors[0].message


def test_files_that_never_mention_torch_are_not_parsed() -> None:
    text = "def f(:\n"  # not even valid Python: it would be an error if it were parsed
    result = check_source(text, "t.py", TOY_RULES)
    assert not result.parsed and not result.findings and not result.errors
    assert check_source("import torch\n" + text, "t.py", TOY_RULES).errors


def test_syntax_error_has_python_line_and_column() -> None:
    result = check_source("import torch\nx = (1,\n    foo bar)\n", "t.py", TOY_RULES)
    (error,) = result.errors
    assert error.is_finding
    assert (error.line, error.column) == (3, 5)
    assert error.message.startswith("SyntaxError: ")


def test_check_bytes_decodes_with_the_coding_cookie() -> None:
    data = "# -*- coding: latin-1 -*-\nimport torch\nname = 'café'\nloss.backward()\n"
    result = check_bytes(data.encode("latin-1"), "t.py", TOY_RULES)
    assert [(f.line, f.column) for f in result.findings] == [(4, 1)]


def test_empty_rule_list_checks_nothing() -> None:
    assert check_source(SCRIPT, "t.py", ()).findings == []


def write_tree(root: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = root / f"pkg{index % 3}" / f"train_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SCRIPT + "\n" * index + "loss.backward()\n")
        paths.append(path)
    return paths


def _summary(result) -> list[tuple]:
    return [(f.path, f.line, f.column, f.rule_id) for f in result.findings]


def test_parallel_and_serial_runs_agree(tmp_path: Path) -> None:
    write_tree(tmp_path, 12)
    (tmp_path / "bad.py").write_text("import torch\ndef f(:\n")
    serial = check_paths([str(tmp_path)], options(jobs=1))
    parallel = check_paths([str(tmp_path)], options(jobs=3))
    assert _summary(serial) == _summary(parallel)
    assert len(serial.findings) == 12 * 3
    assert [e.path for e in parallel.errors] == [str(tmp_path / "bad.py")]
    assert serial.parsed == parallel.parsed == 13


def test_a_syntax_error_does_not_stop_the_other_files(tmp_path: Path) -> None:
    (tmp_path / "a_bad.py").write_text("import torch\nfor x in :\n")
    (tmp_path / "b_good.py").write_text(SCRIPT)
    result = check_paths([str(tmp_path)], options())
    assert [(e.path, e.line) for e in result.errors] == [(str(tmp_path / "a_bad.py"), 2)]
    assert {f.path for f in result.findings} == {str(tmp_path / "b_good.py")}
    assert result.failed


def test_cache_serves_unchanged_files_and_rechecks_changed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    paths = write_tree(tree, 5)
    monkeypatch.chdir(tmp_path)
    first = check_paths([str(tree)], options(use_cache=True))
    assert (first.cached, first.parsed) == (0, 5)
    assert (tmp_path / cache_module.CACHE_DIR).is_dir()
    second = check_paths([str(tree)], options(use_cache=True))
    assert (second.cached, second.parsed) == (5, 0)
    assert _summary(second) == _summary(first)
    assert second.findings[0].fix is not None  # findings survive the round trip whole
    assert [f.confidence for f in second.findings] == [f.confidence for f in first.findings]

    paths[0].write_text(SCRIPT)  # one file changes: only it is parsed again
    third = check_paths([str(tree)], options(use_cache=True))
    assert (third.cached, third.parsed) == (4, 1)
    # another rule selection is another cache entry
    fourth = check_paths([str(tree)], options(use_cache=True, select=["LRA901"]))
    assert fourth.parsed == 5
    assert {f.rule_id for f in fourth.findings} == {"LRA901"}


def test_an_unwritable_cache_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.py").write_text(SCRIPT)
    (tmp_path / cache_module.CACHE_DIR).write_text("a file where the folder should be")
    monkeypatch.chdir(tmp_path)
    result = check_paths(["t.py"], options(use_cache=True))
    assert len(result.findings) == 2 and not result.errors


def test_a_corrupt_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    check_paths(["t.py"], options(use_cache=True))
    cache_file = next((tmp_path / cache_module.CACHE_DIR).glob("*.json"))
    cache_file.write_text('{"fingerprint": ')
    result = check_paths(["t.py"], options(use_cache=True))
    assert len(result.findings) == 2 and result.parsed == 1


def test_internal_errors_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    check_paths(["t.py"], options(use_cache=True, rules=(CRASH,)))
    again = check_paths(["t.py"], options(use_cache=True, rules=(CRASH,)))
    assert again.parsed == 1 and again.internal_errors


def test_source_lines_for_code_frames(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text(SCRIPT)
    result = check_paths([str(path)], options())
    assert result.source_lines(str(path))[4] == "    loss.backward()"


def test_findings_are_sorted_by_path_then_position(tmp_path: Path) -> None:
    for name in ("b.py", "a.py"):
        (tmp_path / name).write_text(SCRIPT)
    result = check_paths([str(tmp_path / "b.py"), str(tmp_path / "a.py")], options(jobs=2))
    keys = [(os.path.basename(f.path), f.line) for f in result.findings]
    assert keys == sorted(keys)


def test_step_rule_alone(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(SCRIPT)
    result = check_paths([str(tmp_path)], options(rules=(STEP,)))
    assert [f.rule_id for f in result.findings] == ["LRA902"]


def test_a_worker_that_dies_costs_one_file_not_the_run(tmp_path: Path) -> None:
    from toy_rules import SEGFAULT

    write_tree(tmp_path, 9)
    (tmp_path / "pkg0" / "killer.py").write_text(SCRIPT + "KILL_ME = 1\n")
    result = check_paths([str(tmp_path)], options(jobs=2, rules=(SEGFAULT,)))
    assert len({f.path for f in result.findings}) == 9  # every other file still checked
    (error,) = result.errors
    assert error.path.endswith("killer.py") and not error.is_finding
    assert "process checking this file died" in error.message


REGRESSION = """\
import numpy as np
import torch

data = np.loadtxt("d.csv", delimiter=",")
x = torch.tensor(data[:, :1], dtype=torch.float32)
y = torch.tensor(data[:, 1:], dtype=torch.float32)
model = torch.nn.Linear(1, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(10):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
"""


def test_the_facts_record_the_data_files_they_read_in_their_log(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("".join(f"{i},{2 * i + 1}\n" for i in range(20)))
    checked = check_bytes(REGRESSION, str(tmp_path / "train.py"))
    assert checked.facts is not None and checked.facts.data_files is checked.data_files
    ((path, signature),) = checked.depends
    assert path == str(tmp_path / "d.csv") and signature is not None
    assert check_bytes(REGRESSION, str(tmp_path / "gone" / "train.py")).depends[0][1] is None


def test_the_probe_reads_the_facts_of_the_check_without_parsing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import libcst as cst

    from advisor.probe.stage import ProbeOptions

    (tmp_path / "d.csv").write_text("".join(f"{i},{2 * i + 1}\n" for i in range(20)))
    (tmp_path / "train.py").write_text(REGRESSION)
    (tmp_path / "static.py").write_text(SCRIPT)  # a training, but no regression: no report
    parses: list[int] = []
    real = cst.parse_module
    monkeypatch.setattr(cst, "parse_module", lambda text: parses.append(1) or real(text))
    probe = ProbeOptions(budget=0.05)
    result = check_paths([str(tmp_path)], RunOptions(use_cache=False, jobs=1, probe=probe))
    assert len(parses) == 2  # each file once: the probe reuses train.py's
    assert [report.path for report in result.probe] == [str(tmp_path / "train.py")]
    assert result.probe[0].line == 9 and result.probe[0].status != "failed"
