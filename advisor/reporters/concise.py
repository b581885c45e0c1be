"""One line a finding, `path:line:col: LRA101 [missing-zero-grad] message`, like ruff."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from advisor.reporters.text import error_line, finding_line, plural

if TYPE_CHECKING:
    from advisor.runner import RunResult


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    lines = [finding_line(f) for f in result.findings]
    problems = [e for e in result.errors if e.is_finding]
    lines.extend(error_line(e) for e in problems)
    for error in result.internal_errors:
        err.write(error_line(error) + "\n")
    if result.probe:
        from advisor.probe.report import concise_lines

        probed = concise_lines(result.probe)
        if probed:
            out.write("\n".join(probed) + "\n")
    if lines:
        out.write("\n".join(lines) + "\n")
        out.write(f"Found {plural(len(lines), 'error')}.\n")
    elif result.files:
        out.write("All checks passed!\n")
