"""`--fix` and `--diff`: apply the fixes that keep the program's meaning.

A fix is applied only when it is `safe` (or `unsafe` with `--unsafe-fixes`), to a file that
parses, when no two edits overlap, and when the result parses again; the file is written
atomically (a temporary file in the same folder, then a rename), so an interrupted run never
leaves half a file. Everything else in the file, comments and formatting included, is kept.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from advisor.findings import Edit, Finding


@dataclass
class FixOutcome:
    """What `--fix` / `--diff` did to one file."""

    path: str
    applied: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)  # (finding, why)
    before: str = ""
    after: str = ""
    error: str | None = None  # why the whole file was left alone

    @property
    def changed(self) -> bool:
        return self.error is None and self.after != self.before

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=self.path if os.path.isabs(self.path) else f"a/{self.path}",
                tofile=self.path if os.path.isabs(self.path) else f"b/{self.path}",
            )
        )


def fixable(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    if fix is None or not fix.edits:
        return False
    return fix.applicability == "safe" or (unsafe and fix.applicability == "unsafe")


def plan(findings: Iterable[Finding], unsafe: bool = False) -> dict[str, list[Finding]]:
    """The findings whose fixes would be applied, by file (notebooks are left alone)."""
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.cell is None and finding.path != "-" and fixable(finding, unsafe):
            by_path.setdefault(finding.path, []).append(finding)
    return by_path


def _offsets(text: str) -> list[int]:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def _span(starts: list[int], text: str, edit: Edit) -> tuple[int, int]:
    def at(line: int, column: int) -> int:
        if not 1 <= line <= len(starts):
            raise ValueError("an edit outside the file")
        return starts[line - 1] + column - 1

    begin, end = at(edit.line, edit.column), at(edit.end_line, edit.end_column)
    if not 0 <= begin <= end <= len(text):
        raise ValueError("an edit outside the file")
    return begin, end


def apply_fixes(path: str, text: str, findings: list[Finding]) -> FixOutcome:
    """The new text of one file, its fixes applied one finding at a time (all of a finding's
    edits or none of them); a finding whose edits overlap an earlier one's waits for a later
    run, as ruff does."""
    import libcst as cst

    outcome = FixOutcome(path, before=text, after=text)
    try:
        cst.parse_module(text)
    except Exception:
        outcome.error = "the file does not parse: nothing was changed"
        return outcome
    newline = "\r\n" if "\r\n" in text else "\n"  # inserted lines end like the file's
    starts = _offsets(text)
    taken: list[tuple[int, int]] = []
    chosen: list[tuple[int, int, str]] = []
    for finding in sorted(findings, key=Finding.sort_key):
        try:
            spans = [
                (*_span(starts, text, e), e.content.replace("\n", newline))
                for e in finding.fix.edits
            ]
        except ValueError as error:
            outcome.skipped.append((finding, str(error)))
            continue
        if any(_overlap(a, b, x, y) for a, b, _ in spans for x, y in taken):
            outcome.skipped.append((finding, "overlaps another fix; run --fix again"))
            continue
        taken.extend((a, b) for a, b, _ in spans)
        chosen.extend(spans)
        outcome.applied.append(finding)
    new = text
    for begin, end, content in sorted(chosen, key=lambda s: (s[0], s[1]), reverse=True):
        new = new[:begin] + content + new[end:]
    try:
        cst.parse_module(new)
    except Exception:
        outcome.error = "the fixed file would not parse: nothing was changed (please report)"
        outcome.applied = []
        return outcome
    outcome.after = new
    return outcome


def _overlap(a: int, b: int, x: int, y: int) -> bool:
    if a == b or x == y:  # insertions clash only at the same point or inside a replacement
        return x < a < y or a < x < b or (a == x and b == y)
    return a < y and x < b


def write_atomically(path: str, text: str, encoding: str = "utf-8") -> None:
    """Replace a file's content through a temporary file and a rename (keeping its mode)."""
    target = Path(path)
    mode = target.stat().st_mode
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding=encoding, newline="") as stream:
            stream.write(text)
        os.chmod(temporary, mode & 0o7777)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
