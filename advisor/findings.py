"""The records that flow from rules to reporters.

A rule yields `Diagnostic`s that still point at syntax nodes; the runner turns them into
`Finding`s with 1-based lines and columns once, and only for files that have any, because
computing positions costs more than parsing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import libcst as cst

CERTAIN = "certain"
LIKELY = "likely"


@dataclass(frozen=True)
class Edit:
    """Replace the text between two 1-based positions (end exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True)
class NodeEdit:
    """An edit as a rule sees it: a syntax node to replace, or a statement to insert on a new
    line before the node's line (at its indentation). The runner turns it into an `Edit`."""

    node: cst.CSTNode
    content: str
    insert_before: bool = False


@dataclass(frozen=True)
class Fix:
    description: str
    applicability: str = "display"  # "safe", "unsafe" or "display" (a hint, nothing to apply)
    edits: tuple[Edit, ...] = ()
    node_edits: tuple[NodeEdit, ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "applicability": self.applicability,
            "edits": [asdict(edit) for edit in self.edits],
        }


@dataclass
class Diagnostic:
    """What a rule reports: a node of the file's syntax tree and what is wrong there."""

    node: cst.CSTNode
    message: str
    confidence: str = CERTAIN
    fix: Fix | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finding:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    rule_id: str
    rule_name: str
    message: str
    severity: str
    confidence: str
    fix: Fix | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    cell: int | None = None

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.rule_id)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "id": self.rule_id,
            "rule": self.rule_name,
            "message": self.message,
            "severity": self.severity,
            "confidence": self.confidence,
            "fix": self.fix.to_json() if self.fix else None,
            "evidence": self.evidence,
        }
        if self.cell is not None:
            data["cell"] = self.cell
        return data


@dataclass
class FileError:
    """A file that could not be read or parsed; reported, and the run goes on."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    cell: int | None = None
    # A syntax error is a finding (exit 1); an unreadable path is a usage error (exit 2).
    is_finding: bool = True

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }
        if self.cell is not None:
            data["cell"] = self.cell
        return data
