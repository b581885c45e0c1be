"""The records that flow from rules to reporters.

A rule yields `Diagnostic`s that still point at syntax nodes; the runner turns them into
`Finding`s with 1-based lines and columns once, and only for files that have any, because
computing positions costs more than parsing.

A finding's confidence is `certain` or `likely` from a rule, `confirmed` once the probe has
reproduced it; a fix's applicability says whether `--fix` may apply it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

if TYPE_CHECKING:
    import libcst as cst

Confidence: TypeAlias = Literal["certain", "likely", "confirmed"]
CERTAIN: Final[Confidence] = "certain"
LIKELY: Final[Confidence] = "likely"
CONFIRMED: Final[Confidence] = "confirmed"  # the probe reproduced it

# "safe": `--fix` applies it; "unsafe": only with `--unsafe-fixes`; "display": a hint
Applicability: TypeAlias = Literal["safe", "unsafe", "display"]
Severity: TypeAlias = Literal["error", "warning"]  # a rule's (advisor/rule.py re-exports it)


@dataclass(frozen=True)
class Edit:
    """Replace the text between two 1-based positions (end exclusive). In a notebook the
    positions are within one code cell (`cell`, 1-based among the code cells), like a
    finding's."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str
    cell: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.cell is None:
            del data["cell"]
        return data


@dataclass(frozen=True)
class NodeEdit:
    """An edit as a rule sees it; the runner turns it into an `Edit`. Three kinds:

    - replace: the text of `node` becomes `content`;
    - `insert_before`: `content` (one or more lines, without indentation) goes on new lines
      before the statement `node` (above its own comment lines), at its indentation;
    - `lines`: the whole lines of the statements `node` through `end_node` (default: `node`
      alone), trailing comments included, become `content` (lines without the block's
      indentation, which the runner adds; empty content deletes them). The comment lines
      above `node` stay where they are.
    """

    node: cst.CSTNode
    content: str
    insert_before: bool = False
    lines: bool = False
    end_node: cst.CSTNode | None = None


@dataclass(frozen=True)
class Fix:
    description: str
    applicability: Applicability = "display"
    edits: tuple[Edit, ...] = ()
    node_edits: tuple[NodeEdit, ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "applicability": self.applicability,
            "edits": [edit.to_json() for edit in self.edits],
        }


@dataclass
class Diagnostic:
    """What a rule reports: a node of the file's syntax tree and what is wrong there."""

    node: cst.CSTNode
    message: str
    confidence: Confidence = CERTAIN
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
    severity: Severity
    confidence: Confidence
    fix: Fix | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    cell: int | None = None

    def sort_key(self) -> tuple[str, int, int, int, str]:
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
