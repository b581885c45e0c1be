"""Reporters print a `RunResult`; they never analyse. Each is imported only when chosen, so
that `--format concise` never pays for importing rich."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from advisor.runner import RunResult

FORMATS = ("rich", "concise", "json", "github", "sarif", "junit")


def write_report(result: RunResult, fmt: str, out: TextIO, err: TextIO) -> None:
    """Findings and file errors on `out`; errors that are not findings on `err` (except in
    JSON, where everything is in the one document; SARIF and JUnit put them in theirs and
    repeat them on `err`, for the CI job's log)."""
    if fmt == "json":
        from advisor.reporters.json_ import write
    elif fmt == "sarif":
        from advisor.reporters.sarif import write
    elif fmt == "junit":
        from advisor.reporters.junit import write
    elif fmt == "github":
        from advisor.reporters.github import write
    elif fmt == "rich":
        from advisor.reporters.rich_ import write
    else:
        from advisor.reporters.concise import write
    write(result, out, err)
