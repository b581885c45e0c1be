"""Checking files: read, parse, extract the facts, run the rules, locate and filter findings.

`check_source` checks one text in this process; `check_paths` checks what the command line
names, with the configuration, the cache and, for many files, a pool of worker processes.
The expensive steps are skipped wherever possible: a file that never mentions torch is not
parsed, positions are computed only for files that have findings, and libcst and the rules
are imported only when a file actually has to be parsed.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.findings import Edit, FileError, Finding, Fix
from advisor.notebook import NotebookProgram, notebook_program
from advisor.source import STDIN, RawSource, decode_source, read_bytes, read_stdin, split_lines
from advisor.suppression import Suppressions

if TYPE_CHECKING:
    from advisor.rule import Rule

# A file that mentions none of these cannot hold a PyTorch training loop.
TORCH_WORDS = ("torch", "backward", "nn.", "optim")
# libcst and the rules take about 50 µs a syntax node: past this a check takes seconds, and a
# file this large (hand-written modules stay well under it) is generated code or inline data.
MAX_SYNTAX_NODES = 100_000


class UsageError(Exception):
    """A bad command line or configuration: exit code 2, and this message."""


@dataclass
class FileResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    parsed: bool = False  # False: empty, skipped by the pre-filter, or suppressed whole
    # Data files the check looked up (path, stat before reading; None: missing): the cache
    # keeps the result only while they stay as they were.
    depends: tuple[tuple[str, list[int] | None], ...] = ()


@dataclass
class RunOptions:
    select: Sequence[str] | None = None  # replaces the configured selection
    ignore: Sequence[str] = ()  # added to the configured ignores
    jobs: int | None = None  # None: every core
    use_cache: bool = True
    cache_dir: str | None = None  # default: .lr_advisor_cache in the current folder
    stdin_filename: str | None = None
    rules: Sequence[Rule] | None = None  # default: the whole catalogue
    probe: Any = None  # a probe.stage.ProbeOptions; None: static analysis only


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files: int = 0  # files named or found
    parsed: int = 0  # files that were parsed and checked (not cached, not pre-filtered)
    cached: int = 0
    walked: int = 0  # folders named on the command line
    probe: list = field(default_factory=list)  # probe.stage.ProbeReport, one a training loop
    _stdin: dict[str, bytes] = field(default_factory=dict, repr=False)
    _lines: dict[tuple[str, int | None], list[str]] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> bool:
        """Findings, or files that count as findings (syntax errors, undecodable bytes)."""
        return bool(self.findings) or any(e.is_finding for e in self.errors)

    @property
    def internal_errors(self) -> list[FileError]:
        return [e for e in self.errors if not e.is_finding]

    def source_lines(self, path: str, cell: int | None = None) -> list[str]:
        """The lines a finding points into (a notebook cell's own code), for code frames."""
        key = (path, cell)
        if key not in self._lines:
            self._lines[key] = self._read_lines(path, cell)
        return self._lines[key]

    def _read_lines(self, path: str, cell: int | None) -> list[str]:
        if path in self._stdin:
            data = self._stdin[path]
        else:
            raw = read_bytes(path)
            if isinstance(raw, FileError):
                return []
            data = raw.data
        if path.endswith(".ipynb"):
            program = notebook_program(data, path)
            if isinstance(program, NotebookProgram) and cell and cell <= len(program.cells):
                return program.cells[cell - 1]
            return []
        text = decode_source(data, path)
        if isinstance(text, FileError):
            return []
        return [line.rstrip("\r\n") for line in split_lines(text)]


def mentions_torch(text: str) -> bool:
    return any(word in text for word in TORCH_WORDS)


def _internal_error(path: str, what: str, error: BaseException) -> FileError:
    detail = f"{type(error).__name__}: {error}".strip().rstrip(":")
    return FileError(
        path,
        f"internal error in {what}: {detail} (please report this, with the file)",
        is_finding=False,
    )


def _python_check(text: str, path: str) -> FileError | None:
    """Python's own parser first: its messages and positions are the ones users know, and it
    refuses the pathological nesting (thousands of brackets or operators) on which libcst's
    native parser overflows its stack and kills the process instead of raising."""
    import ast
    import warnings

    if len(text) > PRECHECK_CHARS:
        at_least = syntax_nodes_at_least(text, MAX_SYNTAX_NODES)
        if at_least > MAX_SYNTAX_NODES:
            return FileError(
                path,
                f"too large to check (at least {at_least:,} syntax nodes > "
                f"{MAX_SYNTAX_NODES:,}), skipped",
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings are not ours to print
            tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        if "too many nested" in (error.msg or ""):
            return FileError(path, f"too deeply nested to check ({error.msg})", line=error.lineno)
        return FileError(
            path,
            f"SyntaxError: {error.msg}",
            line=error.lineno,
            column=error.offset if error.lineno and error.offset else None,  # 0: unknown
        )
    except (RecursionError, MemoryError):
        return FileError(path, "too deeply nested to check (Python's parser gives up on it)")
    except ValueError as error:  # null bytes, caught earlier; anything else of the kind
        return FileError(path, f"cannot parse: {error}")
    nodes = count_nodes(tree)
    if nodes > MAX_SYNTAX_NODES:
        return FileError(
            path, f"too large to check ({nodes:,} syntax nodes > {MAX_SYNTAX_NODES:,}), skipped"
        )
    return None


def count_nodes(tree: Any) -> int:
    """`sum(1 for _ in ast.walk(tree))`, in half the time (no generators, fields by class)."""
    import ast

    node_type, fields_of = ast.AST, _FIELDS
    count, stack = 0, [tree]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        count += 1
        cls = type(node)
        fields = fields_of.get(cls)
        if fields is None:
            fields = fields_of[cls] = cls._fields
        for field_name in fields:
            value = getattr(node, field_name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, node_type):
                        push(item)
            elif isinstance(value, node_type):
                push(value)
    return count


_FIELDS: dict[type, tuple[str, ...]] = {}


# -- size limits -----------------------------------------------------------------------------

# A file longer than this (in characters) is first tokenized to see whether it is certainly
# over MAX_SYNTAX_NODES before Python's parser builds its whole tree: a few MB of `-x` or of
# `f()()` make millions of nodes, gigabytes in a worker. Below it a tree stays within a few
# hundred MB whatever the file holds (about two nodes a character at most).
PRECHECK_CHARS = 512 * 1024
_MODE_WORDS = frozenset({"def", "class", "type", "import", "from", "global", "nonlocal", "case"})
_STATEMENT_WORDS = frozenset(
    {
        "def", "class", "if", "elif", "while", "for", "try", "with", "return", "pass",
        "break", "continue", "del", "assert", "raise", "global", "nonlocal", "import",
        "from", "async", "except",
    }
)  # fmt: skip
_EXPRESSION_WORDS = frozenset({"True", "False", "None", "lambda", "await", "yield"})
# Operators each of which is a node of its own: a unary or binary operation, a comparison
# operator, an augmented assignment, `:=`, `...` (a constant), a list or subscript, a dict or
# set (from Python 3.12 also an f-string's replacement field).
_OPERATOR_NODES = frozenset(
    {
        "-", "+", "~", "<", ">", "==", "!=", "<=", ">=", "<<", ">>", "&", "^", "%", "//",
        "|", ":=", "...", "+=", "-=", "*=", "/=", "//=", "%=", "@=", "&=", "|=", "^=",
        ">>=", "<<=", "**=", "[", "{",
    }
)  # fmt: skip


def syntax_nodes_at_least(text: str, limit: int) -> int:
    """A lower bound of the number of nodes `ast.walk` yields for `text`, counted from its
    tokens without building the tree, and given up as soon as it passes `limit`.

    Each counted token stands for a node no other counted token stands for: a number or a
    run of adjacent strings (a constant or f-string; in an f-string token without inner
    quotes, each `{` that is no `{{`: a replacement field, a dict or a set), a name that is
    an expression, an attribute, a parameter, a keyword argument or an alias, an operator
    that is an operation, `[` (a list or a subscript), `{`, the first `:` of a slice, the `(`
    of a call or of `()`, `lambda`, `await`, `yield`, `not` (but `is not`), `True`, `False`,
    `None`, and the keyword that opens a statement. Whatever may not be a node is left out:
    soft keywords, names that are strings in the tree (imported modules, `def` and `class`
    names, `as` targets, `global` names, a class pattern's keywords), type parameters.
    For text that does not parse the count means nothing, and nothing relies on it.
    """
    import io
    import keyword
    import tokenize

    name, number, op = tokenize.NAME, tokenize.NUMBER, tokenize.OP
    string_starts = {tokenize.STRING, getattr(tokenize, "FSTRING_START", -1)}
    string_ends = {tokenize.STRING, getattr(tokenize, "FSTRING_END", -1)}
    ignored = {tokenize.NL, tokenize.COMMENT}
    breaks = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}

    def expression_end(token: tokenize.TokenInfo | None) -> bool:
        if token is None:
            return False
        if token.type == name:
            return token.string not in ("match", "case") and (
                not keyword.iskeyword(token.string) or token.string in ("True", "False", "None")
            )
        return token.type in (number, *string_ends) or token.string in (")", "]", "}")

    count = 1  # the module
    previous: tokenize.TokenInfo | None = None  # in this logical line
    start, mode = True, ""  # at a statement's first token; the statement's first word
    frames: list[list[Any]] = []  # open brackets: [bracket, slices allowed, colon, lambda]
    current: tokenize.TokenInfo | None = None
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    try:
        while count <= limit:
            following = next(tokens, None)
            if following is not None and following.type in ignored:
                continue
            token, current = current, following
            if token is None:
                if following is None:
                    break
                continue
            kind, value = token.type, token.string
            if kind in breaks:
                previous, start, mode, frames = None, True, "", []
                continue
            first, start = start, False
            depth = len(frames)
            if kind == name:
                if first and value in _MODE_WORDS:
                    mode = value
                after = previous.string if previous is not None else ""
                if first and value in _STATEMENT_WORDS or value in _EXPRESSION_WORDS:
                    count += 1
                    if value == "lambda" and frames:
                        frames[-1][3] = True
                elif value == "not":
                    count += after != "is"
                elif keyword.iskeyword(value) or keyword.issoftkeyword(value):
                    pass
                elif mode in ("import", "from"):
                    count += after in ("import", ",", "(")  # an alias
                elif mode in ("global", "nonlocal") or after in ("def", "class", "as", "!"):
                    pass
                elif mode == "case" and (
                    after == "**" or (following is not None and following.string == "=")
                ):
                    pass  # `**rest`, `Point(x=0)`: strings in a pattern
                else:
                    count += 1
            elif kind == number:
                count += 1
            elif kind in string_starts:
                if previous is None or previous.type not in string_ends:
                    count += 1
                count += _replacement_fields(value) if kind == tokenize.STRING else 0
            elif kind == op:
                if value == "(":
                    frames.append(["(", False, False, False])
                    if not (mode == "class" and depth == 0) and (
                        expression_end(previous)
                        or (following is not None and following.string == ")")
                    ):
                        count += 1
                elif value in (")", "]", "}"):
                    if frames:
                        frames.pop()
                elif value == "[":
                    type_parameters = mode in ("def", "class", "type") and depth == 0
                    frames.append(["[", not type_parameters, False, False])
                    count += not type_parameters
                elif value == "{":
                    frames.append(["{", False, False, False])
                    count += 1
                elif value == ":":
                    if frames and frames[-1][1] and not frames[-1][2] and not frames[-1][3]:
                        frames[-1][2] = True
                        count += 1  # a slice
                elif value == ",":
                    if frames:
                        frames[-1][2] = frames[-1][3] = False
                elif value == ";":
                    if depth == 0:
                        start, mode = True, ""
                elif value == "|":
                    count += mode != "case"
                elif value in _OPERATOR_NODES:
                    count += 1
            previous = token
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return count


def _replacement_fields(token: str) -> int:
    """Before Python 3.12 an f-string is one token: its `{` that are no `{{`, when no quote
    inside it could hide a `{` in a string of its own."""
    quote = min((i for i in (token.find("'"), token.find('"')) if i >= 0), default=-1)
    if quote < 0 or "f" not in token[:quote].lower():
        return 0
    body = token[quote:].strip("'\"")
    if "'" in body or '"' in body:
        return 0
    return body.replace("{{", "").count("{")


def _libcst_error(path: str, error: Exception) -> FileError:
    """libcst refused what Python accepts (a gap in its grammar): say so, with its position."""
    line = getattr(error, "raw_line", None)
    column = getattr(error, "raw_column", None)
    message = getattr(error, "message", str(error)).splitlines()[0]
    return FileError(
        path,
        f"cannot parse (libcst): {message}",
        line=line,
        column=column + 1 if column is not None else None,
    )


def _locate(error: FileError, program: NotebookProgram | None) -> FileError:
    if program is not None and error.line is not None:
        error.cell, error.line = program.locate(error.line)
    return error


def check_source(
    text: str,
    path: str = "<string>",
    rules: Sequence[Rule] | None = None,
    notebook: NotebookProgram | None = None,
) -> FileResult:
    """Check one Python text (for a notebook: its program text, and the program itself)."""
    suppressions = Suppressions.parse(text)
    if suppressions.whole_file or not mentions_torch(text):
        return FileResult()
    if rules is None:
        from advisor.rules import ALL_RULES

        rules = ALL_RULES
    active = [rule for rule in rules if not suppressions.suppresses(rule, 0)]
    if not active:
        return FileResult()

    result = FileResult(parsed=True)
    problem = _python_check(text, path)
    if problem is not None:
        result.errors.append(_locate(problem, notebook))
        return result

    import libcst as cst

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        result.errors.append(_locate(_libcst_error(path, error), notebook))
        return result
    except Exception as error:  # the parser's own bugs must not stop the run
        result.errors.append(_internal_error(path, "the parser", error))
        return result

    from advisor.facts import extract_facts

    try:
        facts = extract_facts(module, path)
    except RecursionError:
        result.errors.append(_too_deep(path, "the facts pass"))
        return result
    except Exception as error:
        result.errors.append(_internal_error(path, "the facts pass", error))
        return result

    reported: list[tuple[Rule, Any]] = []
    for rule in active:
        if rule.probe:  # a ProbeRule has no check: the probe stage reports it
            continue
        try:
            diagnostics = list(rule.check(facts))  # all or nothing: a crash drops partial output
        except RecursionError:
            result.errors.append(_too_deep(path, f"rule {rule.id}"))
            continue
        except Exception as error:
            result.errors.append(_internal_error(path, f"rule {rule.id} ({rule.name})", error))
            continue
        reported.extend((rule, diagnostic) for diagnostic in diagnostics)
    if reported:
        try:
            result.findings = _findings(
                module, path, reported, suppressions, notebook, result.errors
            )
        except RecursionError:
            result.errors.append(_too_deep(path, "computing positions"))
    return result


def _too_deep(path: str, where: str) -> FileError:
    return FileError(path, f"too deeply nested to check (recursion limit in {where})")


def node_positions(module: Any) -> Mapping[Any, Any]:
    """Every node's CodeRange, as `MetadataWrapper(module).resolve(PositionProvider)` gives.

    `resolve` also walks the whole tree once more for batchable providers even when there
    are none, which doubles the cost; running the provider's own codegen pass directly
    gives the same mapping in half the time. Should libcst's internals change, this falls
    back to the public way (tests/test_runner.py checks that both agree).
    """
    from libcst.metadata import MetadataWrapper, PositionProvider

    provider = PositionProvider()
    try:
        provider._computed = {}
        provider._gen_impl(module)
        return provider._computed
    except (AttributeError, TypeError):
        return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)


def _findings(
    module: Any,
    path: str,
    reported: list[tuple[Rule, Any]],
    suppressions: Suppressions,
    notebook: NotebookProgram | None,
    errors: list[FileError],
) -> list[Finding]:
    """Positions (computed once, here), suppressions, notebook cells; sorted, no duplicates."""
    positions = node_positions(module)
    findings: dict[tuple, Finding] = {}
    for rule, diagnostic in reported:
        where = positions.get(diagnostic.node)
        if where is None:
            error = ValueError("reported a node that is not part of the checked module")
            errors.append(_internal_error(path, f"rule {rule.id} ({rule.name})", error))
            continue
        line, end_line = where.start.line, where.end.line
        if suppressions and suppressions.suppresses(rule, line):
            continue
        column, end_column = where.start.column + 1, where.end.column + 1
        cell = None
        if notebook is not None:
            cell, line = notebook.locate(line)
            end_cell, end_line = notebook.locate(end_line)
            if end_cell != cell:  # a node cannot really span cells; clamp to the first line
                end_line, end_column = line, column
        fix = diagnostic.fix
        if fix is not None and fix.node_edits:
            fix = _positioned(fix, positions, notebook, module)
        finding = Finding(
            path=path,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            rule_id=rule.id,
            rule_name=rule.name,
            message=diagnostic.message,
            severity=rule.severity,
            confidence=diagnostic.confidence,
            fix=fix,
            evidence=diagnostic.evidence,
            cell=cell,
        )
        findings.setdefault((cell, line, column, rule.id, diagnostic.message), finding)
    return sorted(findings.values(), key=Finding.sort_key)


def _positioned(
    fix: Fix, positions: Mapping[Any, Any], notebook: NotebookProgram | None, module: Any
) -> Fix:
    """A rule's node edits as positions in the file, or in a notebook's cells. The fix
    becomes a hint only (no edits) where a node has no position, where an edit would touch a
    line that IPython syntax rewrote (magics, shell lines) or span two cells."""
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
        lines = lines or _program_lines(module)
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
        lines = lines or _program_lines(module)
        located = [_in_cell(edit, notebook, lines) for edit in edits]
        if any(edit is None for edit in located):
            return hint
        edits = located
    if not edits:
        return hint
    return replace(fix, edits=tuple(edits), node_edits=())


_LINES: list = [None, []]  # the last module whose lines were split, and its lines


def _program_lines(module: Any) -> list[str]:
    if _LINES[0] is not module:
        _LINES[:] = [module, split_lines(module.code)]
    return _LINES[1]


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


def _in_cell(edit: Edit, notebook: NotebookProgram, lines: list[str]) -> Edit | None:
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


def check_bytes(data: bytes | str, path: str, rules: Sequence[Rule] | None = None) -> FileResult:
    """Check one file's content: decode it (or read the notebook) and check the program."""
    if path.endswith(".ipynb"):
        program = notebook_program(data, path)
        if program is None:
            return FileResult()
        if isinstance(program, FileError):
            return FileResult(errors=[program])
        return check_source(program.text, path, rules, notebook=program)
    text = data if isinstance(data, str) else decode_source(data, path)
    if isinstance(text, FileError):
        return FileResult(errors=[text])
    if not text.strip():
        return FileResult()
    return check_source(text, path, rules)


# -- many files ------------------------------------------------------------------------------

_WORKER_RULES: dict[str, Rule] = {}
Task = tuple[int, str, bytes, tuple[str, ...]]  # index, path, content, rule ids


def _check_task(task: Task) -> tuple[int, FileResult]:
    index, path, data, rule_ids = task
    rules = [_WORKER_RULES[rule_id] for rule_id in rule_ids]
    files = sys.modules.get("advisor.facts.files")
    if files is not None:
        files.LOOKUPS.clear()
    # A check allocates hundreds of thousands of objects, nearly all freed by reference
    # counting; the cycle collector would traverse them again and again (10-30% of the
    # time). Off during a check, one young-generation pass after it frees what cycles remain.
    collecting = gc.isenabled()
    gc.disable()
    try:
        result = check_bytes(data, path, rules)
    except Exception as error:  # never let one file take the pool down
        return index, FileResult(errors=[_internal_error(path, "the runner", error)])
    finally:
        if collecting:
            gc.enable()
            gc.collect(0)
    files = sys.modules.get("advisor.facts.files")  # loaded once a script names a data file
    if files is not None and files.LOOKUPS:
        result.depends = tuple(files.LOOKUPS)  # its findings depend on those files too
        files.LOOKUPS.clear()
    return index, result


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_CHUNK_FILES = 16  # files per message to a worker, at most


def _check_chunk(chunk: list[Task]) -> list[tuple[int, FileResult]]:
    return [_check_task(task) for task in chunk]


def _run_tasks(tasks: list[Task], jobs: int) -> list[tuple[int, FileResult]]:
    """In this process for one file (or one job); forked worker processes otherwise."""
    jobs = min(jobs, len(tasks))
    if jobs > 1:
        import multiprocessing

        if "fork" in multiprocessing.get_all_start_methods():
            return _run_in_workers(tasks, jobs, multiprocessing.get_context("fork"))
    return [_check_task(task) for task in tasks]


def _run_in_workers(tasks: list[Task], jobs: int, context: Any) -> list[tuple[int, FileResult]]:
    """Chunks of files in a pool of forked workers (they inherit the rules, nothing to
    pickle but the bytes). A worker that dies (a crash in native code) must not hang or
    sink the run: the files of its chunk are re-run one process each, to find the culprit."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Largest files first, in small chunks: no worker is left with a long tail while the
    # others idle (results are put back in order by their index).
    tasks = sorted(tasks, key=lambda task: len(task[2]), reverse=True)
    size = max(1, min(_CHUNK_FILES, len(tasks) // (jobs * 4)))
    chunks = [tasks[start : start + size] for start in range(0, len(tasks), size)]
    results: list[tuple[int, FileResult]] = []
    lost: list[Task] = []
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [(pool.submit(_check_chunk, chunk), chunk) for chunk in chunks]
        for future, chunk in futures:
            try:
                results.extend(future.result())
            except BrokenProcessPool:
                lost.extend(chunk)
    for task in lost:
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            try:
                results.append(pool.submit(_check_task, task).result())
            except BrokenProcessPool:
                error = FileError(
                    task[1],
                    "internal error: the process checking this file died (a crash in native "
                    "code, e.g. libcst's parser); please report this, with the file",
                    is_finding=False,
                )
                results.append((task[0], FileResult(errors=[error])))
    return results


def _check_selectors(
    rules: Sequence[Rule], select: Sequence[str] | None, ignore: Sequence[str]
) -> None:
    from advisor.config import unknown_selectors

    unknown = unknown_selectors([*(select or ()), *ignore], rules)
    if unknown:
        raise UsageError(
            f"no rule matches {', '.join(repr(s) for s in unknown)} "
            "(rules are selected by id, name or id prefix: see `lr-advisor rules`)"
        )


class _RuleRef:
    """A rule known by its id and name only (the cache's catalogue): enough to select rules
    and find their settings, so that a run served from the cache never imports the rules."""

    __slots__ = ("id", "name")

    def __init__(self, rule_id: str, name: str) -> None:
        self.id = rule_id
        self.name = name

    def matches(self, selector: str) -> bool:
        from advisor.rule import Rule

        return Rule.matches(self, selector)  # type: ignore[arg-type]


def _all_rules() -> Sequence[Rule]:
    from advisor.rules import ALL_RULES

    return ALL_RULES


def check_paths(paths: Sequence[str], options: RunOptions | None = None) -> RunResult:
    """Check every file the paths name; raises UsageError for a bad selection or config.

    With the cache, a file whose stat is unchanged since it was last read is not read again
    (see advisor/cache.py), and the rules (hence libcst) are imported only when some file
    is not served from the cache."""
    from advisor.config import ConfigError, ConfigFinder, select_rules
    from advisor.discovery import discover

    options = options or RunOptions()
    discovery = discover(paths, options.stdin_filename)
    cache = None
    if options.use_cache and any(not target.stdin for target in discovery.targets):
        from advisor.cache import CACHE_DIR, Cache, content_digest, entry_key, ruleset_digest

        cache = Cache.open(options.cache_dir or CACHE_DIR)
    rules = options.rules
    if rules is None:
        if cache is not None and cache.catalogue:
            rules = [_RuleRef(rule_id, name) for rule_id, name in cache.catalogue]
        else:
            rules = _all_rules()
            if cache is not None:
                cache.set_catalogue([(rule.id, rule.name) for rule in rules])
    _check_selectors(rules, options.select, options.ignore)

    result = RunResult(files=len(discovery.targets), walked=discovery.walked)
    for missing in discovery.missing:
        result.errors.append(FileError(missing, "no such file or directory", is_finding=False))

    finder = ConfigFinder(rules)
    # The rules a file gets depend only on its config and its per-file-ignores: work them
    # out (and hash their settings for the cache) once per distinct pair, not once a file.
    selections: dict[tuple[int, tuple[str, ...]], tuple[tuple[str, ...], str]] = {}
    use_stat = cache is not None and options.probe is None  # the probe needs every file's bytes
    tasks: list[Task] = []
    probing: list[tuple[str, bytes, tuple[str, ...]]] = []
    keys: dict[int, str] = {}
    outcomes: dict[int, FileResult] = {}
    for index, target in enumerate(discovery.targets):
        config_file = "stdin.py" if target.path == STDIN else target.path
        absolute = os.path.abspath(config_file)
        try:
            config = finder.for_dir(os.path.dirname(absolute))
        except ConfigError as error:
            raise UsageError(str(error)) from None
        extra = config.ignores_for(Path(config_file)) if config.per_file_ignores else ()
        selection = selections.get((id(config), extra))
        if selection is None:
            selected = select_rules(
                rules, config, options.select, options.ignore, Path(config_file)
            )
            rule_ids = tuple(rule.id for rule in selected)
            ruleset = ""
            if cache is not None:
                ruleset = ruleset_digest(rule_ids)
            selection = selections[(id(config), extra)] = (rule_ids, ruleset)
        rule_ids, ruleset = selection
        cached = cache is not None and not target.stdin

        raw: RawSource | FileError | None = None
        digest = stat = None
        if use_stat and cached and rule_ids:
            try:
                stat = os.stat(target.path)  # before reading: a later write changes it
            except OSError:
                stat = None
            if stat is not None:
                digest = cache.digest_for(absolute, stat)
        if digest is None:
            raw = read_stdin(target.path) if target.stdin else read_bytes(target.path)
            if isinstance(raw, FileError):
                outcomes[index] = FileResult(errors=[raw])
                continue
            if target.stdin:
                result._stdin[target.path] = raw.data
            if not raw.data.strip() or not rule_ids:
                continue
            probing.append((target.path, raw.data, rule_ids))
            if cached:
                digest = content_digest(raw.data)
                if stat is not None:
                    cache.remember(absolute, stat, digest)
        if cached:
            key = keys[index] = entry_key(digest, target.path, ruleset)
            hit = cache.get(key, target.path)
            if hit is not None:
                outcomes[index] = FileResult(findings=hit[0], errors=hit[1])
                result.cached += 1
                continue
            if raw is None:  # known by its stat, but not with these rules: read it now
                raw = read_bytes(target.path)
                if isinstance(raw, FileError):
                    outcomes[index] = FileResult(errors=[raw])
                    continue
                keys[index] = entry_key(content_digest(raw.data), target.path, ruleset)
        tasks.append((index, target.path, raw.data, rule_ids))

    if tasks:
        if any(isinstance(rule, _RuleRef) for rule in rules):
            rules = _all_rules()  # some file has to be checked after all
        _WORKER_RULES.clear()
        _WORKER_RULES.update((rule.id, rule) for rule in rules)
    for index, outcome in _run_tasks(tasks, options.jobs or default_jobs()):
        outcomes[index] = outcome
        result.parsed += outcome.parsed
        if cache is not None and index in keys:
            cache.put(keys[index], outcome.findings, outcome.errors, outcome.depends)
    if cache is not None:
        cache.save()

    for index in sorted(outcomes):
        result.findings.extend(outcomes[index].findings)
        result.errors.extend(outcomes[index].errors)
    result.findings.sort(key=Finding.sort_key)
    if options.probe is not None and probing:
        _probe(probing, result, options.probe)
    result.errors.sort(key=lambda e: (e.path, e.cell or 0, e.line or 0))
    return result


def _probe(inputs: list[tuple[str, bytes, tuple[str, ...]]], result: RunResult, options) -> None:
    """The probe stage; a failure of the probe is an internal error, never a lost report."""
    try:
        from advisor.probe.stage import run_probe
    except ImportError as error:  # numpy missing: the probe is an extra
        result.errors.append(
            FileError("<probe>", f"the probe needs numpy ({error})", is_finding=False)
        )
        return
    run_probe(inputs, result, options)
