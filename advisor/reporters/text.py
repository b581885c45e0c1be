"""Plain-text pieces the concise and rich reporters share."""

from __future__ import annotations

from advisor.findings import FileError, Finding


def location(path: str, line: int | None, column: int | None, cell: int | None = None) -> str:
    """`path:line:col`, `path:cell 3:line:col` in a notebook; parts left out when unknown."""
    parts = [path]
    if cell is not None:
        parts.append(f"cell {cell}")
    if line is not None:
        parts.append(str(line))
        if column is not None:
            parts.append(str(column))
    return ":".join(parts)


def finding_line(finding: Finding) -> str:
    where = location(finding.path, finding.line, finding.column, finding.cell)
    return f"{where}: {finding.rule_id} [{finding.rule_name}] {finding.message}"


def error_line(error: FileError) -> str:
    return f"{location(error.path, error.line, error.column, error.cell)}: error: {error.message}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
