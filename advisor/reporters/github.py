"""GitHub Actions workflow commands: findings appear as annotations on the pull request."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from advisor.reporters.text import location

if TYPE_CHECKING:
    from advisor.runner import RunResult


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    for finding in result.findings:
        level = "error" if finding.severity == "error" else "warning"
        props = [f"file={_property(finding.path)}"]
        message = finding.message
        if finding.cell is None:
            props += [
                f"line={finding.line}",
                f"col={finding.column}",
                f"endLine={finding.end_line}",
                f"endColumn={finding.end_column}",
            ]
        else:  # notebook lines do not map onto the file GitHub shows
            message = f"{location('', finding.line, finding.column, finding.cell)[1:]}: {message}"
        props.append(f"title={_property(f'{finding.rule_id} {finding.rule_name}')}")
        out.write(f"::{level} {','.join(props)}::{_data(message)}\n")
    for error in result.errors:
        props = [f"file={_property(error.path)}"]
        if error.line is not None and error.cell is None:
            props.append(f"line={error.line}")
        out.write(f"::error {','.join(props)},title=lr-advisor::{_data(error.message)}\n")
