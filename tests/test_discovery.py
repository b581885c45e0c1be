"""Which files a run checks: folders walked, junk skipped, .gitignore honoured in one call."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from advisor import discovery
from advisor.discovery import discover

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("import torch\n")


def found(root: Path, *paths: str) -> list[str]:
    result = discover([str(root / p) if p else str(root) for p in paths or ("",)])
    return sorted(Path(t.path).relative_to(root).as_posix() for t in result.targets)


def test_walks_folders_for_python_files_and_notebooks(tmp_path: Path) -> None:
    touch(tmp_path, "a.py", "pkg/b.py", "pkg/deep/c.ipynb", "notes.txt", "stub.pyi", "d.pyc")
    assert found(tmp_path) == ["a.py", "pkg/b.py", "pkg/deep/c.ipynb"]


def test_skips_environments_caches_build_output_and_hidden_folders(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "keep.py",
        ".git/hooks/x.py",
        ".venv/lib/x.py",
        "venv/lib/x.py",
        "__pycache__/x.py",
        "build/lib/x.py",
        "dist/x.py",
        "node_modules/x.py",
        ".tox/x.py",
        ".mypy_cache/x.py",
        "lib/site-packages/x.py",
        ".hidden/x.py",
        "env/pyvenv.cfg",
        "env/lib/x.py",
        ".ipynb_checkpoints/x-checkpoint.ipynb",
    )
    assert found(tmp_path) == ["keep.py"]


def test_explicit_files_are_checked_whatever_their_extension(tmp_path: Path) -> None:
    touch(tmp_path, "script.txt", "build/gen.py", ".hidden/x.py")
    assert found(tmp_path, "script.txt", "build/gen.py", ".hidden/x.py") == [
        ".hidden/x.py",
        "build/gen.py",
        "script.txt",
    ]


def test_an_explicit_folder_is_walked_even_if_its_name_is_skipped(tmp_path: Path) -> None:
    touch(tmp_path, "build/gen.py")
    assert found(tmp_path, "build") == ["build/gen.py"]


def test_missing_paths_and_stdin(tmp_path: Path) -> None:
    touch(tmp_path, "a.py")
    result = discover([str(tmp_path / "nope.py"), "-", str(tmp_path / "a.py")], "x.py")
    assert result.missing == [str(tmp_path / "nope.py")]
    assert [(t.path, t.stdin) for t in result.targets] == [
        ("x.py", True),
        (str(tmp_path / "a.py"), False),
    ]
    assert discover(["-"]).targets[0].path == "-"


def test_duplicates_are_checked_once(tmp_path: Path) -> None:
    touch(tmp_path, "a.py")
    result = discover([str(tmp_path), str(tmp_path / "a.py"), str(tmp_path / "." / "a.py")])
    assert len(result.targets) == 1


def test_relative_paths_are_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path, "src/a.py")
    monkeypatch.chdir(tmp_path)
    assert [t.path for t in discover(["."]).targets] == ["src/a.py"]
    assert [t.path for t in discover(["src/"]).targets] == ["src/a.py"]


def test_an_empty_folder_finds_nothing(tmp_path: Path) -> None:
    touch(tmp_path, "README.md", "data/x.csv")
    result = discover([str(tmp_path)])
    assert result.targets == [] and result.missing == [] and result.walked == 1


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@needs_git
def test_gitignored_files_are_skipped_with_one_git_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("generated/\nscratch_*.py\n")
    touch(tmp_path, "a.py", "generated/g.py", "scratch_1.py", "pkg/scratch_2.py", "pkg/b.py")
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(command, *args, **kwargs):
        calls.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(discovery.subprocess, "run", counting_run)
    assert found(tmp_path) == ["a.py", "pkg/b.py"]
    assert len(calls) == 1 and "check-ignore" in calls[0]
    # a file named explicitly is checked even when ignored (that is what pre-commit passes)
    assert found(tmp_path, "generated/g.py") == ["generated/g.py"]


@needs_git
def test_gitignore_is_honoured_from_a_subfolder(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("*_out.py\n")
    touch(tmp_path, "sub/a.py", "sub/b_out.py")
    assert found(tmp_path, "sub") == ["sub/a.py"]


def test_without_git_nothing_breaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("b.py\n")
    touch(tmp_path, "a.py", "b.py")

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(discovery.subprocess, "run", no_git)
    assert found(tmp_path) == ["a.py", "b.py"]


def test_a_broken_repository_falls_back_to_no_ignores(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /nonexistent/place\n")
    (tmp_path / ".gitignore").write_text("b.py\n")
    touch(tmp_path, "a.py", "b.py")
    assert found(tmp_path) == ["a.py", "b.py"]
