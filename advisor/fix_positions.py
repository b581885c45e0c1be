"""A rule's fix as positions: its node edits become line and column edits of the file, or
of one notebook cell, with whole-line edits at their block's indentation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from advisor.findings import Edit, Fix
from advisor.source import split_lines

if TYPE_CHECKING:
    from advisor.notebook import NotebookProgram


def positioned_fix(
    fix: Fix,
    positions: Mapping[Any, Any],
    notebook: NotebookProgram | None,
    program_lines: Callable[[], list[str]],
) -> Fix:
    """A rule's node edits as positions in the file, or in a notebook's cells. The fix
    becomes a hint only (no edits) where a node has no position, where an edit would touch a
    line that IPython syntax rewrote (magics, shell lines) or span two cells.
    `program_lines`: the checked program's lines, asked for only by edits of whole lines."""
    hint = replace(fix, applicability="display", node_edits=())
    lines: list[str] = []
    edits = []
    for edit in fix.node_edits:
        where = positions.get(edit.node)
        last = positions.get(edit.end_node) if edit.end_node is not None else where
        if where is None or last is None:
            return hint
        start, end = where.start, where.end
        if not (edit.insert_before or edit.lines):
            edits.append(Edit(start.line, start.column + 1, end.line, end.column + 1, edit.content))
            continue
        lines = lines or program_lines()
        indent = _indentation(lines, start.line, start.column)
        if indent is None:
            return hint
        if edit.insert_before:  # above the statement's own comments, at its indentation
            line = start.line - len(getattr(edit.node, "leading_lines", ()))
            if notebook is not None:  # comment lines at the end of the cell before stay there
                line = max(line, start.line - notebook.locate(start.line)[1] + 1)
            edits.append(Edit(line, 1, line, 1, _indented(edit.content, indent)))
            continue
        rest = lines[last.end.line - 1][last.end.column :] if last.end.line <= len(lines) else ""
        if rest.strip() and not rest.strip().startswith("#"):
            return hint  # another statement on the same line
        content = _indented(edit.content, indent) if edit.content else ""
        edits.append(Edit(start.line, 1, last.end.line + 1, 1, content))
    if notebook is not None:
        lines = lines or program_lines()
        located = [in_cell(edit, notebook, lines) for edit in edits]
        if any(edit is None for edit in located):
            return hint
        edits = cast("list[Edit]", located)  # no None among them: checked just above
    if not edits:
        return hint
    return replace(fix, edits=tuple(edits), node_edits=())


def _indentation(lines: list[str], line: int, column: int) -> str | None:
    """The whitespace before a statement that starts a line (None if it does not)."""
    if not 1 <= line <= len(lines):
        return None
    indent = lines[line - 1][:column]
    return indent if not indent.strip() else None


def _indented(content: str, indent: str) -> str:
    """Lines of code at a block's indentation (blank lines stay empty), ending in a newline."""
    out = [indent + part if part.strip() else part for part in split_lines(content)]
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"


def in_cell(edit: Edit, notebook: NotebookProgram, lines: list[str]) -> Edit | None:
    """A program edit as positions in one cell; None when it spans cells or touches a line
    that is not the cell's own text."""
    cell, line = notebook.locate(edit.line)
    end_cell, end_line = notebook.locate(edit.end_line)
    if end_cell != cell and edit.end_column == 1 and edit.end_line > edit.line:
        before_cell, before = notebook.locate(edit.end_line - 1)  # up to the cell's end
        if before_cell == cell:
            end_cell, end_line = cell, before + 1
    if cell is None or end_cell != cell:
        return None
    last = edit.end_line if edit.end_column > 1 else edit.end_line - 1
    for number in range(edit.line, last + 1):
        at_cell, at_line = notebook.locate(number)
        own = notebook.cells[at_cell - 1] if at_cell and at_cell <= len(notebook.cells) else []
        text = lines[number - 1].rstrip("\r\n") if number <= len(lines) else None
        if not 1 <= at_line <= len(own) or own[at_line - 1] != text:
            return None
    return replace(edit, line=line, end_line=end_line, cell=cell)
