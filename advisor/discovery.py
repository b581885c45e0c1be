"""Which files a run checks, from the paths on the command line.

A file named explicitly is always checked, whatever its extension (that is what pre-commit
passes). A folder is walked for `.py` and `.ipynb` files, skipping virtual environments, build
output, caches, hidden folders and whatever `.gitignore` ignores (asked of git once per work
tree, with every candidate on one `git check-ignore --stdin` call).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from advisor.source import STDIN

SUFFIXES = (".py", ".ipynb")
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        "build",
        "dist",
        "node_modules",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".lr_advisor_cache",
        "site-packages",
        "__pypackages__",
        ".ipynb_checkpoints",
    }
)


@dataclass(frozen=True)
class Target:
    """One thing to check: a file, or standard input shown under a name."""

    path: str  # as shown to the user
    stdin: bool = False


@dataclass
class Discovery:
    targets: list[Target] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # paths that do not exist
    walked: int = 0  # folders named on the command line


def _git_root(directory: str) -> str | None:
    """The work tree that holds this folder, found by looking for `.git` (no subprocess)."""
    current = os.path.abspath(directory)
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _walk(root: str, git_root: str | None, found: dict[str | None, list[str]]) -> None:
    """Collect the candidate files under `root`, grouped by the git work tree they are in."""
    stack = [(root, git_root, True)]
    while stack:
        directory, work_tree, is_root = stack.pop()
        try:
            with os.scandir(directory) as entries:
                listing = list(entries)
        except OSError:
            continue
        names = {entry.name for entry in listing}
        if not is_root and "pyvenv.cfg" in names:  # a virtual environment under another name
            continue
        if not is_root and ".git" in names:  # a nested repository: its own .gitignore
            work_tree = os.path.abspath(directory)
        for entry in listing:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name not in SKIPPED_DIRS and not name.startswith("."):
                        stack.append((entry.path, work_tree, False))
                elif name.endswith(SUFFIXES) and entry.is_file():
                    found.setdefault(work_tree, []).append(entry.path)
            except OSError:
                continue


def git_ignored(work_tree: str, paths: Sequence[str]) -> set[str]:
    """The paths that git ignores, in one `git check-ignore` call; empty without git."""
    if not paths:
        return set()
    relative = [os.path.relpath(os.path.abspath(p), work_tree) for p in paths]
    try:
        completed = subprocess.run(
            ["git", "-C", work_tree, "check-ignore", "--stdin", "-z"],
            input="\0".join(relative).encode("utf-8", "surrogateescape") + b"\0",
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    if completed.returncode not in (0, 1):  # 128: not a repository, dubious ownership, ...
        return set()
    ignored = set(completed.stdout.decode("utf-8", "surrogateescape").split("\0")) - {""}
    return {path for path, rel in zip(paths, relative, strict=True) if rel in ignored}


def _display(path: str) -> str:
    return os.path.normpath(path) if not os.path.isabs(path) else path


def discover(paths: Iterable[str], stdin_filename: str | None = None) -> Discovery:
    """The targets named by `paths`, in a stable order, without duplicates."""
    result = Discovery()
    explicit: list[str] = []
    walked: dict[str | None, list[str]] = {}
    for path in paths:
        if path == STDIN:
            result.targets.append(Target(stdin_filename or STDIN, stdin=True))
        elif os.path.isdir(path):
            result.walked += 1
            _walk(path, _git_root(path), walked)
        elif os.path.exists(path):
            explicit.append(path)
        else:
            result.missing.append(path)
    files = list(explicit)
    for work_tree, candidates in walked.items():
        ignored = git_ignored(work_tree, candidates) if work_tree else set()
        files.extend(sorted(p for p in candidates if p not in ignored))
    seen: set[str] = set()
    for path in files:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            result.targets.append(Target(_display(path)))
    return result
