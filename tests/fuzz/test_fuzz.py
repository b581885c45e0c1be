"""Fuzzing: no input may crash lr-advisor or hang it, and every problem with an input is one
clear error line (a FileError; exit 1 through the command), never a traceback or an internal
error. The inputs come from tests/fuzz/generators.py, the judging from tests/fuzz/harness.py;
benchmarks/fuzz.py runs the same for longer.

Bounded for CI: a fixed number of examples each, derandomized (the same inputs every run).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from generators import (
    LARGE,
    FuzzInput,
    ProbeCase,
    encodings,
    mutations,
    notebooks,
    probe_cases,
    programs,
)
from harness import TIME_LIMIT, check_file, check_probe, check_static, run_command, write_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # the harness has its own time limit per input
        derandomize=True,  # the same inputs on every run
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz(40)
@given(programs("grammar"))
def test_programs_from_the_grammar(item: FuzzInput) -> None:
    check_static(item)


@fuzz(12)
@given(programs("node"))
def test_programs_from_libcst_nodes(item: FuzzInput) -> None:
    check_static(item)


@fuzz(150)
@given(mutations())
def test_mutated_fixtures(item: FuzzInput) -> None:
    check_static(item)


@fuzz(150)
@given(encodings())
def test_bytes_and_encodings(item: FuzzInput) -> None:
    check_static(item)


@fuzz(120)
@given(notebooks())
def test_broken_notebooks(item: FuzzInput) -> None:
    check_static(item)


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_and_deep_inputs(name: str, tmp_path: Path) -> None:
    path, make = LARGE[name]
    # 5 MB takes Python's own parser alone 3 s here: room for a slower machine, still bounded
    check_file(FuzzInput("large", path, make(), name), tmp_path, limit=2 * TIME_LIMIT)


@fuzz(25)
@given(probe_cases())
def test_probe_on_damaged_data_and_mutated_fixtures(case: ProbeCase) -> None:
    with tempfile.TemporaryDirectory() as folder:
        check_probe(case, Path(folder))


# -- through the installed command -------------------------------------------------------------


@fuzz(4)
@given(st.one_of(mutations(), encodings(), notebooks()))
def test_command_on_generated_inputs(item: FuzzInput) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / item.path).write_bytes(item.data)
        run_command([item.path], Path(folder))


@fuzz(3)
@given(probe_cases())
def test_command_with_the_probe_on_damaged_data(case: ProbeCase) -> None:
    with tempfile.TemporaryDirectory() as folder:
        write_case(case, Path(folder))
        args = [case.script, "--format", "json"]
        if case.data:
            args += ["--data", case.data]
        run_command(args, Path(folder))


def test_command_on_a_folder_of_bad_inputs(tmp_path: Path) -> None:
    """One run over many bad files at once (worker processes, the probe on): exit 1, no
    traceback, and one error line for each file that cannot be checked."""
    bad = {
        "binary.py": bytes(range(256)),
        "nul.py": b"import torch\nx = 1\x00\n",
        "utf16.py": "import torch\nx = 1\n".encode("utf-16-le"),
        "cut.ipynb": b'{"cells": [{"cell_type": "code", "source": "import torch',
        "deep.py": b"import torch\nloss.backward()\nx = " + b"(" * 5000 + b")" * 5000 + b"\n",
        "indent.py": b"import torch\nif x:\n  a = 1\n    b = 2\n",
    }
    for name in ("5 MB + 1 byte", "list of 200k numbers", "1000 nested if blocks"):
        path, make = LARGE[name]
        bad[f"large_{path}"] = make()
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    run_command(["--jobs", "2", "."], tmp_path, limit=60)  # the probe on, worker processes
    completed = run_command(["--static", "--format", "json", "."], tmp_path, limit=60)
    assert completed.returncode == 1
    document = json.loads(completed.stdout)
    assert {error["path"] for error in document["errors"]} == set(bad)
    assert all(error["message"].strip() for error in document["errors"])
