"""Code frames for people at a terminal, in the style of ruff and rustc:

    train.py:7:5: LRA101 [missing-zero-grad] gradients are never cleared in this loop: ...
      |
    5 | for epoch in range(100):
    6 |     loss = F.mse_loss(model(X), y)
    7 |     loss.backward()
      |     ^^^^^^^^^^^^^^^
    8 |     opt.step()
      |
      = help: call optimizer.zero_grad() once per iteration, before backward()

Colour only on a terminal, never with NO_COLOR set (rich honours both).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.text import Text

from advisor.findings import Finding
from advisor.reporters.text import error_line, location, plural

if TYPE_CHECKING:
    from advisor.runner import RunResult

BEFORE, AFTER = 2, 1  # lines of context around the flagged line


def _display_column(line: str, column: int) -> int:
    """0-based display column of a 1-based character column (tabs expanded)."""
    return len(line[: max(0, column - 1)].expandtabs())


def frame(finding: Finding, lines: list[str]) -> Text:
    text = Text()
    severity_style = "bold red" if finding.severity == "error" else "bold yellow"
    text.append(location(finding.path, finding.line, finding.column, finding.cell), "bold")
    text.append(": ")
    text.append(finding.rule_id, severity_style)
    text.append(f" [{finding.rule_name}] ", "cyan")
    text.append(finding.message)
    if finding.confidence != "certain":
        text.append(f" ({finding.confidence})", "dim")
    text.append("\n")
    if 1 <= finding.line <= len(lines):
        first = max(1, finding.line - BEFORE)
        last = min(len(lines), finding.line + AFTER)
        width = len(str(last))
        bar = " " * width + " |"
        text.append(bar + "\n", "blue")
        for number in range(first, last + 1):
            line = lines[number - 1]
            text.append(f"{number:>{width}} | ", "blue")
            text.append(line.expandtabs() + "\n")
            if number == finding.line:
                start = _display_column(line, finding.column)
                if finding.end_line == finding.line:
                    end = _display_column(line, finding.end_column)
                else:
                    end = len(line.rstrip().expandtabs())
                text.append(bar, "blue")
                text.append(" " + " " * start + "^" * max(1, end - start) + "\n", severity_style)
        text.append(bar + "\n", "blue")
        if finding.fix is not None:
            text.append(" " * width + " = ", "blue")
            text.append("help", "bold")
            text.append(f": {finding.fix.description}\n")
    elif finding.fix is not None:
        text.append("  = ", "blue")
        text.append("help", "bold")
        text.append(f": {finding.fix.description}\n")
    return text


def summary(result: RunResult) -> Text:
    findings = result.findings
    problems = [e for e in result.errors if e.is_finding]
    text = Text()
    if findings:
        confidences = Counter(f.confidence for f in findings)
        detail = ", ".join(f"{count} {name}" for name, count in sorted(confidences.items()))
        files = len({f.path for f in findings})
        text.append(
            f"Found {plural(len(findings), 'finding')} ({detail}) in {plural(files, 'file')}.",
            "bold",
        )
    if problems:
        if findings:
            text.append(" ")
        text.append(f"{plural(len(problems), 'file')} could not be checked.", "bold red")
    if not findings and not problems:
        text.append(f"All checks passed! ({plural(result.files, 'file')} checked)", "bold green")
    return text


def console_for(stream: TextIO) -> Console:
    """No escape codes at all with NO_COLOR (not even bold), nor when not on a terminal."""
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=True,
        emoji=False,
        color_system=None if plain else "auto",
    )


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    console = console_for(out)
    for finding in result.findings:
        console.print(frame(finding, result.source_lines(finding.path, finding.cell)))
    for error in result.errors:
        if error.is_finding:
            console.print(Text(error_line(error), "red"))
    if result.internal_errors:
        errors = console_for(err)
        for error in result.internal_errors:
            errors.print(Text(error_line(error), "red"))
    if result.probe:
        from advisor.probe.report import panel

        for report in result.probe:
            if report.status != "not applicable":
                console.print(panel(report), soft_wrap=False)
    if result.files or result.findings or result.errors:
        console.print(summary(result))
