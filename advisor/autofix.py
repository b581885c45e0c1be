"""`--fix` and `--diff`: apply the fixes that keep the program's meaning.

A fix is applied only when it is `safe` (or `unsafe` with `--unsafe-fixes`), to a file that
parses, when no two edits overlap, and when the result parses again; the file is written
atomically (a temporary file in the same folder, then a rename), so an interrupted run never
leaves half a file. Everything else in the file, comments and formatting included, is kept.

Notebooks are fixed cell by cell: an edit's positions are within one code cell, only the
`source` of the cells that change is rewritten (in the notebook's own JSON layout: a list of
lines or a string, its indentation, its escaping), and every other byte of the file, outputs
and metadata included, stays as it was. `--diff` shows a notebook's changes as a diff of the
changed cells' code (`a/nb.ipynb:cell 3`), which reads like the code the user wrote, not as a
diff of the JSON.

The second half of this module holds what the rules need to build their edits: where a
statement sits in its block, and its code.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import libcst as cst

from advisor.findings import Edit, Finding, Fix


@dataclass
class FixOutcome:
    """What `--fix` / `--diff` did to one file."""

    path: str
    applied: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)  # (finding, why)
    before: str = ""
    after: str = ""
    error: str | None = None  # why the whole file was left alone
    cells: list[tuple[int, str, str]] | None = (
        None  # a notebook's changed cells: code before, after
    )

    @property
    def changed(self) -> bool:
        return self.error is None and self.after != self.before

    def diff(self) -> str:
        old_name, new_name = (
            (self.path, self.path)
            if os.path.isabs(self.path)
            else (f"a/{self.path}", f"b/{self.path}")
        )
        if self.cells is None:
            pairs = [(_lines(self.before), _lines(self.after), old_name, new_name)]
        else:  # the cells' code, which is what the user reads and wrote, line by line
            pairs = [
                (_cell_lines(old), _cell_lines(new), f"{old_name}:cell {n}", f"{new_name}:cell {n}")
                for n, old, new in self.cells
            ]
        return "".join(
            line
            for old, new, before, after in pairs
            for line in difflib.unified_diff(old, new, fromfile=before, tofile=after)
        )


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _cell_lines(code: str) -> list[str]:
    """A cell's lines as the notebook shows them (a final newline makes an empty last line)."""
    return [line + "\n" for line in code.replace("\r\n", "\n").split("\n")]


def fixable(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    if fix is None or not fix.edits:
        return False
    return fix.applicability == "safe" or (unsafe and fix.applicability == "unsafe")


def plan(findings: Iterable[Finding], unsafe: bool = False) -> dict[str, list[Finding]]:
    """The findings whose fixes would be applied, by file (standard input is never fixed)."""
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.path == "-" or not fixable(finding, unsafe):
            continue
        fix = cast(Fix, finding.fix)  # fixable(): it has one
        in_cells = all(edit.cell is not None for edit in fix.edits)
        if (finding.cell is not None or finding.path.endswith(".ipynb")) != in_cells:
            continue  # edits that do not say where they go in this kind of file
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


def _apply(
    texts: dict[Any, str], findings: list[Finding], outcome: FixOutcome, cells: bool = False
) -> dict[Any, str]:
    """Apply the findings' edits to texts keyed by cell (None: the whole file), one finding at
    a time, all of its edits or none. A finding whose edits overlap an earlier one's waits
    for a later run, as ruff does; one whose edits are exactly edits already taken (several
    updates fixed by one `with torch.no_grad():`) is fixed by them. A text that did not end
    with a newline still does not (a notebook cell: nor with blank lines, once its last
    statement is gone)."""
    prepared: dict[Any, tuple[str, list[int], str, bool]] = {}
    for key, text in texts.items():
        newline = "\r\n" if "\r\n" in text else "\n"  # inserted lines end like the text's
        missing = bool(text) and not text.endswith("\n")  # edits may reach the end of its last line
        full = text + newline if missing else text
        prepared[key] = (full, _offsets(full), newline, missing)
    taken: dict[Any, list[tuple[int, int, str]]] = {key: [] for key in texts}
    for finding in sorted(findings, key=Finding.sort_key):
        try:
            spans = []
            for edit in cast(Fix, finding.fix).edits:  # plan() kept only findings with a fix
                if edit.cell not in prepared:
                    raise ValueError("an edit outside the file")
                full, starts, newline, _ = prepared[edit.cell]
                begin, end = _span(starts, full, edit)
                content = edit.content.replace("\r\n", "\n").replace("\n", newline)
                spans.append((edit.cell, begin, end, content))
        except ValueError as error:
            outcome.skipped.append((finding, str(error)))
            continue
        if all((a, b, c) in taken[key] for key, a, b, c in spans):
            outcome.applied.append(finding)  # the same edits as a finding fixed already
            continue
        if any(
            _overlap(a, b, x, y) for key, a, b, _ in spans for x, y, _ in taken[key]
        ) or _self_overlap(spans):
            outcome.skipped.append((finding, "overlaps another fix; run --fix again"))
            continue
        for key, a, b, c in spans:
            taken[key].append((a, b, c))
        outcome.applied.append(finding)
    result = {}
    for key, (full, _, newline, missing) in prepared.items():
        new = full
        for begin, end, content in sorted(taken[key], key=lambda s: (s[0], s[1]), reverse=True):
            new = new[:begin] + content + new[end:]
        if missing and new.endswith(newline):
            new = new.rstrip("\r\n") if cells else new[: -len(newline)]
        result[key] = new if taken[key] else texts[key]
    return result


def _self_overlap(spans: list[tuple[Any, int, int, str]]) -> bool:
    return any(
        i < j and k == key and _overlap(a, b, x, y)
        for i, (k, a, b, _) in enumerate(spans)
        for j, (key, x, y, _) in enumerate(spans)
    )


def apply_fixes(path: str, text: str, findings: list[Finding]) -> FixOutcome:
    """The new text of one file (a notebook's JSON for .ipynb), its fixes applied."""
    if path.endswith(".ipynb"):
        return apply_notebook_fixes(path, text, findings)
    outcome = FixOutcome(path, before=text, after=text)
    try:
        cst.parse_module(text)
    except Exception:
        outcome.error = "the file does not parse: nothing was changed"
        return outcome
    new = _apply({None: text}, findings, outcome)[None]
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


# -- notebooks -------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_SCALAR = re.compile(r"-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|Infinity)|true|false|null|NaN")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _space_end(text: str, index: int) -> int:
    """Where the white space at `index` ends (`_JSON_SPACE` matches everywhere)."""
    return cast(re.Match[str], _JSON_SPACE.match(text, index)).end()


@dataclass
class _Node:
    """A JSON value and where its text is: `text[start:end]`."""

    kind: str  # object, array, string, scalar
    start: int
    end: int
    items: list = field(default_factory=list)  # array: nodes; object: (key, node) pairs


def _scan(text: str, index: int) -> _Node:
    """The JSON value at `index` with its span (json.loads has already accepted the text)."""
    index = _space_end(text, index)
    char = text[index]
    if char == '"':
        match = _JSON_STRING.match(text, index)  # json.loads accepted the string: it matches
        return _Node("string", index, cast(re.Match[str], match).end())
    if char not in "[{":
        match = _JSON_SCALAR.match(text, index)
        if match is None:
            raise ValueError(f"unexpected JSON at offset {index}")
        return _Node("scalar", index, match.end())
    node = _Node("array" if char == "[" else "object", index, index)
    closing = "]" if char == "[" else "}"
    index += 1
    while True:
        index = _space_end(text, index)
        if text[index] == closing:
            node.end = index + 1
            return node
        if node.items:
            if text[index] != ",":
                raise ValueError(f"unexpected JSON at offset {index}")
            index += 1
        if node.kind == "array":
            item = _scan(text, index)
            node.items.append(item)
        else:
            key = _scan(text, index)
            index = _space_end(text, key.end)
            if key.kind != "string" or text[index] != ":":
                raise ValueError(f"unexpected JSON at offset {index}")
            item = _scan(text, index + 1)
            node.items.append((json.loads(text[key.start : key.end]), item))
        index = item.end


def _member(node: _Node, key: str) -> _Node | None:
    if node.kind != "object":
        return None
    found = None
    for name, value in node.items:  # json.loads keeps the last of duplicate keys
        if name == key:
            found = value
    return found


def _code_sources(text: str, root: _Node) -> list[_Node | None] | None:
    """The `source` nodes of the code cells, in the order `advisor.notebook` numbers them."""
    cells = _member(root, "cells")
    key = "source"
    if cells is None:
        worksheets = _member(root, "worksheets")
        if worksheets is None or worksheets.kind != "array":
            return None
        cells = _Node("array", 0, 0)
        for sheet in worksheets.items:
            found = _member(sheet, "cells")
            if found is not None and found.kind == "array":
                cells.items.extend(found.items)
        key = "input"
    if cells.kind != "array":
        return None
    sources = []
    for cell in cells.items:
        kind = _member(cell, "cell_type")
        if kind is None or kind.kind != "string":
            continue
        if json.loads(text[kind.start : kind.end]) == "code":
            sources.append(_member(cell, key))
    return sources


def _cell_text(text: str, node: _Node) -> str | None:
    if node.kind == "string":
        return json.loads(text[node.start : node.end])
    if node.kind == "array" and all(item.kind == "string" for item in node.items):
        return "".join(json.loads(text[i.start : i.end]) for i in node.items)
    return None


def _source_json(text: str, node: _Node, new: str, ascii_only: bool) -> str:
    """The JSON of a cell's new code, laid out as its old `source` was."""
    if node.kind == "string":
        return json.dumps(new, ensure_ascii=ascii_only)
    raw = {json.loads(text[i.start : i.end]): text[i.start : i.end] for i in node.items}
    lines = re.findall(r"[^\n]*\n|[^\n]+$", new)
    tokens = [raw.get(line) or json.dumps(line, ensure_ascii=ascii_only) for line in lines]
    if not tokens:
        return "[]"
    if not node.items:
        return "[" + ", ".join(tokens) + "]"
    items = node.items
    opening = text[node.start + 1 : items[0].start]
    closing = text[items[-1].end : node.end - 1]
    separator = text[items[0].end : items[1].start] if len(items) > 1 else "," + opening
    return "[" + opening + separator.join(tokens) + closing + "]"


def _parses_alone(code: str) -> bool:
    from advisor.notebook import rewrite_cell
    from advisor.source import split_lines

    lines = split_lines(code)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    try:
        cst.parse_module("".join(rewrite_cell(lines)))
    except Exception:
        return False
    return True


def _notebook_parses(text: str, path: str) -> bool:
    from advisor.notebook import NotebookProgram, notebook_program

    program = notebook_program(text, path)
    if not isinstance(program, NotebookProgram):
        return program is None
    try:
        cst.parse_module(program.text)
    except Exception:
        return False
    return True


def apply_notebook_fixes(path: str, text: str, findings: list[Finding]) -> FixOutcome:
    """The notebook's JSON with the fixes applied to its code cells, every other byte kept."""
    outcome = FixOutcome(path, before=text, after=text, cells=[])
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    try:
        json.loads(text[len(bom) :])
        root = _scan(text, len(bom))
        sources = _code_sources(text, root)
    except (ValueError, RecursionError, IndexError):
        sources = None
    if sources is None or not _notebook_parses(text[len(bom) :], path):
        outcome.error = "the notebook does not parse: nothing was changed"
        return outcome
    # plan() kept only findings with a fix
    wanted = {edit.cell for finding in findings for edit in cast(Fix, finding.fix).edits}
    texts: dict[Any, str] = {}
    for number in sorted(c for c in wanted if c is not None):
        node = sources[number - 1] if 1 <= number <= len(sources) else None
        code = _cell_text(text, node) if node is not None else None
        if code is not None and "\r" not in code.replace("\r\n", ""):
            texts[number] = code
    new_texts = _apply(texts, findings, outcome, cells=True)
    ascii_only = text.isascii()  # escapes everything else: go on escaping
    new = text
    changed = [(n, texts[n], new_texts[n]) for n in sorted(texts) if new_texts[n] != texts[n]]
    for number, _, code in sorted(changed, reverse=True):  # from the end: spans stay valid
        node = sources[number - 1]
        new = new[: node.start] + _source_json(text, node, code, ascii_only) + new[node.end :]
    broken = [n for n, old, code in changed if _parses_alone(old) and not _parses_alone(code)]
    if broken or not _notebook_parses(new[len(bom) :], path):
        outcome.error = "the fixed notebook would not parse: nothing was changed (please report)"
        outcome.applied = []
        return outcome
    outcome.after = new
    outcome.cells = changed
    return outcome


# -- for the rules: where a statement sits, and its code ---------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a statement is: the block holding it and its index there, and the compound
    statement around that block (None at module level)."""

    block: cst.Module | cst.BaseSuite  # IndentedBlock, or SimpleStatementSuite (a one-line body)
    index: int
    statement: cst.CSTNode  # the SimpleStatementLine or compound statement itself
    enclosing: cst.CSTNode | None

    @property
    def body(self) -> tuple:
        return tuple(self.block.body)

    @property
    def on_own_lines(self) -> bool:
        """A statement alone on its lines in an indented block (or at module level)."""
        if not isinstance(self.block, (cst.Module, cst.IndentedBlock)):
            return False
        statement = self.statement
        return not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) == 1


def fix_or_hint(hint: Fix, build: Callable[..., Fix], *args: Any) -> Fix:
    """The fix `build(*args)` makes, or the hint where building it fails on code it did not
    foresee: a fix is a bonus, it must never cost the finding."""
    try:
        return build(*args)
    except Exception:
        return hint


@dataclass(eq=False)
class PlacementCache:
    """This module's answers for one file (`facts.derived.of(PlacementCache)`)."""

    placements: dict[int, Placement] | None = None  # placements(facts)
    stmts: dict[int, Any] | None = None  # stmts_by_node(facts)


def placements(facts: Any) -> dict[int, Placement]:
    """Every statement of the file by `id()`: SimpleStatementLines, the small statements in
    them (the nodes the facts record), and compound statements. Computed once per file."""
    cache = facts.derived.of(PlacementCache)
    if cache.placements is None:
        cache.placements = {}
        _place(facts.module, facts.module.body, None, cache.placements)
    return cache.placements


def _place(block: cst.Module | cst.BaseSuite, body, enclosing, found: dict[int, Placement]) -> None:
    for index, statement in enumerate(body):
        placement = Placement(block, index, statement, enclosing)
        found[id(statement)] = placement
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                found[id(small)] = placement
            continue
        if isinstance(statement, cst.BaseSmallStatement):  # in a one-line suite
            continue
        for inner in _inner_blocks(statement):
            _place(inner, inner.body, statement, found)


def _inner_blocks(statement: cst.CSTNode) -> list[cst.BaseSuite]:
    blocks: list[cst.BaseSuite] = []
    for name in ("body", "orelse", "finalbody"):
        part = getattr(statement, name, None)
        if isinstance(part, (cst.IndentedBlock, cst.SimpleStatementSuite)):
            blocks.append(part)
        elif isinstance(part, (cst.Else, cst.Finally)):
            blocks.append(part.body)
        elif isinstance(part, cst.If):  # elif
            blocks.extend(_inner_blocks(part))
    for part in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
        blocks.append(part.body)
    return [block for block in blocks if hasattr(block, "body")]


def stmts_by_node(facts: Any) -> dict[int, Any]:
    """The facts' statement records by the `id()` of their syntax node (the first one)."""
    cache = facts.derived.of(PlacementCache)
    if cache.stmts is None:
        cache.stmts = {}
        for stmt in facts.stmts:
            cache.stmts.setdefault(id(stmt.node), stmt)
    return cache.stmts


def statement_code(facts: Any, statement: cst.CSTNode, leading: bool = False) -> str:
    """A statement's code as written, at indentation 0 (nested blocks keep their relative
    indentation), with its trailing comment, without the final newline; with `leading`, the
    comment and blank lines above it too."""
    if not leading and hasattr(statement, "leading_lines"):
        statement = statement.with_changes(leading_lines=())
    code = facts.module.code_for_node(statement).replace("\r\n", "\n")
    return code[:-1] if code.endswith("\n") else code


def block_indent(facts: Any, placement: Placement) -> str:
    """One more level of indentation in the file's own style (spaces or tabs, how many)."""
    block = placement.block
    if isinstance(block, cst.IndentedBlock) and block.indent is not None:
        return block.indent
    return facts.module.default_indent


def multiline_string(code: str) -> bool:
    """Code whose lines cannot be re-indented without changing a string's value."""
    return '"""' in code or "'''" in code or "\\\n" in code


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
