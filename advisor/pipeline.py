"""One source through the check: read it, parse it, extract its facts once, run the rules,
locate what they report and drop what the author suppressed.

Every check goes through here: the runner's files (in its workers, or in the main process for
the files the probe reads too), `check_source` for one text, the probe (which reuses the
`CheckedFile` of the check that just ran: no second parse) and the rules' own examples in the
tests. The expensive steps are skipped wherever possible: a file that never mentions torch is
not parsed, positions are computed only for files that have findings, and libcst and the
rules are imported only when a file actually has to be parsed.

    checked = load(data, path)       # decode, or read the notebook: errors in checked.errors
    check(checked, rules)            # pre-filter, run_rules, locate: findings and errors
    analyse(checked)                 # parse + facts only, once (the probe after a cache hit)
    run_rules(checked, rules)        # analyse, then the static rules: (rule, Diagnostic) pairs
    locate(checked, reported)        # (rule, Diagnostic) pairs -> findings, errors
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from advisor.findings import FileError, Finding
from advisor.fix_positions import positioned_fix
from advisor.notebook import NotebookProgram, notebook_program
from advisor.source import decode_source, split_lines
from advisor.suppression import Suppressions
from advisor.syntax_size import (
    MAX_SYNTAX_NODES,
    PRECHECK_CHARS,
    count_nodes,
    syntax_nodes_at_least,
)

if TYPE_CHECKING:
    import libcst as cst

    from advisor.facts.files import DataFileLog
    from advisor.facts.model import FileFacts
    from advisor.findings import Diagnostic
    from advisor.rule import Rule

# A file that mentions none of these cannot hold a PyTorch training loop.
TORCH_WORDS = ("torch", "backward", "nn.", "optim")

Reported = Sequence[tuple["Rule", "Diagnostic"]]  # what rules (or the probe) said, unlocated


@dataclass(eq=False)
class CheckedFile:
    """One source on its way through the pipeline, and what became of it. Later stages (the
    probe) reuse its module, facts and positions instead of parsing the file again."""

    path: str
    text: str  # the program (a notebook's: its code cells, IPython syntax rewritten)
    notebook: NotebookProgram | None = None
    module: cst.Module | None = None  # None: not parsed (yet), or it does not parse
    facts: FileFacts | None = None
    data_files: DataFileLog | None = None  # the data files its facts pass looked up
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    parsed: bool = False  # the rules ran (False: empty, pre-filtered or suppressed whole)
    analysed: bool = False  # parsing and the facts pass were tried (see `analyse`)

    @cached_property
    def suppressions(self) -> Suppressions:
        return Suppressions.parse(self.text)

    @cached_property
    def positions(self) -> Mapping[Any, Any]:
        """Every node's CodeRange, computed on first use (only files with findings need it)."""
        return node_positions(self.module)

    @cached_property
    def program_lines(self) -> list[str]:
        # asked for by a located fix only: the module parsed
        return split_lines(cast("cst.Module", self.module).code)

    @property
    def depends(self) -> tuple[tuple[str, list[int] | None], ...]:
        """The data files the result depends on, with their stat before they were read."""
        return tuple(self.data_files.lookups) if self.data_files is not None else ()


def mentions_torch(text: str) -> bool:
    return any(word in text for word in TORCH_WORDS)


def load(data: bytes | str, path: str) -> CheckedFile:
    """A file's content as the program to check: decoded, or a notebook's code cells. An
    empty file (or a notebook without code) has empty text; one that cannot be read as
    either has its FileError in `errors`."""
    if path.endswith(".ipynb"):
        program = notebook_program(data, path)
        if program is None:
            return CheckedFile(path, "")
        if isinstance(program, FileError):
            return CheckedFile(path, "", errors=[program])
        return CheckedFile(path, program.text, program)
    text = data if isinstance(data, str) else decode_source(data, path)
    if isinstance(text, FileError):
        return CheckedFile(path, "", errors=[text])
    return CheckedFile(path, text if text.strip() else "")


def check_bytes(data: bytes | str, path: str, rules: Sequence[Rule] | None = None) -> CheckedFile:
    """Check one file's content: decode it (or read the notebook) and check the program."""
    return check(load(data, path), rules)


def check_source(
    text: str,
    path: str = "<string>",
    rules: Sequence[Rule] | None = None,
    notebook: NotebookProgram | None = None,
) -> CheckedFile:
    """Check one Python text (for a notebook: its program text, and the program itself)."""
    return check(CheckedFile(path, text, notebook), rules)


def check(checked: CheckedFile, rules: Sequence[Rule] | None = None) -> CheckedFile:
    """Run the rules (default: the whole catalogue) on a loaded file: its findings, located
    and filtered, and its errors land in `checked`, which is returned."""
    if checked.errors:
        return checked
    text = checked.text
    suppressions = checked.suppressions
    if suppressions.whole_file or not mentions_torch(text):
        return checked
    if rules is None:
        from advisor.rules import ALL_RULES

        rules = ALL_RULES
    active = [rule for rule in rules if not suppressions.suppresses(rule, 0)]
    if not active:
        return checked
    checked.parsed = True
    reported = run_rules(checked, active)
    if reported:
        try:
            findings, errors = locate(checked, reported)
        except RecursionError:
            checked.errors.append(_too_deep(checked.path, "computing positions"))
        else:
            checked.findings = findings
            checked.errors.extend(errors)
    return checked


def run_rules(checked: CheckedFile, rules: Sequence[Rule]) -> list[tuple[Rule, Diagnostic]]:
    """What the static rules among `rules` report on the file's facts (analysed first if
    need be), not yet located. A rule that crashes is an error of the file (its partial
    output dropped); the other rules still run."""
    facts = analyse(checked)
    if facts is None:
        return []
    reported: list[tuple[Rule, Diagnostic]] = []
    for rule in rules:
        if rule.probe:  # found by the probe, which runs beside the rules
            continue
        try:
            diagnostics = list(rule.check(facts))
        except RecursionError:
            checked.errors.append(_too_deep(checked.path, f"rule {rule.id}"))
            continue
        except Exception as error:
            what = f"rule {rule.id} ({rule.name})"
            checked.errors.append(internal_error(checked.path, what, error))
            continue
        reported.extend((rule, diagnostic) for diagnostic in diagnostics)
    return reported


def analyse(checked: CheckedFile) -> FileFacts | None:
    """Parse the program and extract its facts, once: a second call returns the same facts.
    None when the file does not parse or the facts pass fails (the reason in `errors`)."""
    if checked.analysed:
        return checked.facts
    checked.analysed = True
    path, notebook = checked.path, checked.notebook
    problem = python_check(checked.text, path)
    if problem is not None:
        checked.errors.append(_in_cells(problem, notebook))
        return None

    import libcst as cst

    try:
        checked.module = cst.parse_module(checked.text)
    except cst.ParserSyntaxError as error:
        checked.errors.append(_in_cells(_libcst_error(path, error), notebook))
        return None
    except Exception as error:  # the parser's own bugs must not stop the run
        checked.errors.append(internal_error(path, "the parser", error))
        return None

    from advisor.facts import extract_facts
    from advisor.facts.files import DataFileLog

    checked.data_files = DataFileLog()
    try:
        checked.facts = extract_facts(checked.module, path, checked.data_files)
    except RecursionError:
        checked.errors.append(_too_deep(path, "the facts pass"))
    except Exception as error:
        checked.errors.append(internal_error(path, "the facts pass", error))
    return checked.facts


def locate(checked: CheckedFile, reported: Reported) -> tuple[list[Finding], list[FileError]]:
    """Findings of what the rules (or the probe) reported on `checked`'s module: positions
    (computed once per file), suppressions, notebook cells, fixes positioned; sorted, without
    duplicates. A node that is not part of the module is an internal error of its rule."""
    if not reported:
        return [], []  # no positions to compute
    positions = checked.positions
    suppressions, notebook, path = checked.suppressions, checked.notebook, checked.path
    findings: dict[tuple, Finding] = {}
    errors: list[FileError] = []
    for rule, diagnostic in reported:
        where = positions.get(diagnostic.node)
        if where is None:
            error = ValueError("reported a node that is not part of the checked module")
            errors.append(internal_error(path, f"rule {rule.id} ({rule.name})", error))
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
            fix = positioned_fix(fix, positions, notebook, lambda: checked.program_lines)
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
    return sorted(findings.values(), key=Finding.sort_key), errors


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


def python_check(text: str, path: str) -> FileError | None:
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


def internal_error(path: str, what: str, error: BaseException) -> FileError:
    """A bug of ours in `what` (a rule, the parser, the probe): reported, never fatal."""
    detail = f"{type(error).__name__}: {error}".strip().rstrip(":")
    return FileError(
        path,
        f"internal error in {what}: {detail} (please report this, with the file)",
        is_finding=False,
    )


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


def _in_cells(error: FileError, program: NotebookProgram | None) -> FileError:
    if program is not None and error.line is not None:
        error.cell, error.line = program.locate(error.line)
    return error


def _too_deep(path: str, where: str) -> FileError:
    return FileError(path, f"too deeply nested to check (recursion limit in {where})")
