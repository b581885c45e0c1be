"""Checking files: read, parse, extract the facts, run the rules, locate and filter findings.

`check_source` checks one text in this process; `check_paths` checks what the command line
names, with the configuration, the cache and, for many files, a pool of worker processes.
The expensive steps are skipped wherever possible: a file that never mentions torch is not
parsed, positions are computed only for files that have findings, and libcst and the rules
are imported only when a file actually has to be parsed.
"""

from __future__ import annotations

import os
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


@dataclass
class RunOptions:
    select: Sequence[str] | None = None  # replaces the configured selection
    ignore: Sequence[str] = ()  # added to the configured ignores
    jobs: int | None = None  # None: every core
    use_cache: bool = True
    cache_dir: str | None = None  # default: .lr-advisor-cache in the current folder
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
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_SYNTAX_NODES:
        return FileError(
            path, f"too large to check ({nodes:,} syntax nodes > {MAX_SYNTAX_NODES:,}), skipped"
        )
    return None


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
        from rules import ALL_RULES

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
            fix = _positioned(fix, positions, notebook is not None)
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


def _positioned(fix: Fix, positions: Mapping[Any, Any], notebook: bool) -> Fix:
    """A rule's node edits as positions in the file; none (a hint only) in a notebook, whose
    positions are in the cells' program, or where a node has no position."""
    edits = []
    for edit in () if notebook else fix.node_edits:
        where = positions.get(edit.node)
        if where is None:
            return replace(fix, applicability="display", node_edits=())
        start, end = where.start, where.end
        if edit.insert_before:  # above the statement's own comments, at its indentation
            line = start.line - len(getattr(edit.node, "leading_lines", ()))
            indent = " " * start.column
            edits.append(Edit(line, 1, line, 1, f"{indent}{edit.content}\n"))
        else:
            edits.append(Edit(start.line, start.column + 1, end.line, end.column + 1, edit.content))
    if not edits:
        return replace(fix, applicability="display", node_edits=())
    return replace(fix, edits=tuple(edits), node_edits=())


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
    try:
        return index, check_bytes(data, path, rules)
    except Exception as error:  # never let one file take the pool down
        return index, FileResult(errors=[_internal_error(path, "the runner", error)])


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


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

    size = max(1, len(tasks) // (jobs * 4))
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


def check_paths(paths: Sequence[str], options: RunOptions | None = None) -> RunResult:
    """Check every file the paths name; raises UsageError for a bad selection or config."""
    from advisor.config import ConfigError, ConfigFinder, select_rules
    from advisor.discovery import discover

    options = options or RunOptions()
    rules = options.rules
    if rules is None:
        from rules import ALL_RULES

        rules = ALL_RULES
    _check_selectors(rules, options.select, options.ignore)

    discovery = discover(paths, options.stdin_filename)
    result = RunResult(files=len(discovery.targets), walked=discovery.walked)
    for missing in discovery.missing:
        result.errors.append(FileError(missing, "no such file or directory", is_finding=False))

    cache = None
    if options.use_cache and any(not target.stdin for target in discovery.targets):
        from advisor.cache import CACHE_DIR, Cache

        cache = Cache.open(options.cache_dir or CACHE_DIR)

    finder = ConfigFinder(rules)
    by_id = {rule.id: rule for rule in rules}
    tasks: list[Task] = []
    probing: list[tuple[str, bytes, tuple[str, ...]]] = []
    keys: dict[int, str] = {}
    outcomes: dict[int, FileResult] = {}
    for index, target in enumerate(discovery.targets):
        config_path = Path("stdin.py" if target.path == STDIN else target.path)
        try:
            config = finder.for_file(config_path)
        except ConfigError as error:
            raise UsageError(str(error)) from None
        selected = select_rules(rules, config, options.select, options.ignore, config_path)
        raw: RawSource | FileError
        raw = read_stdin(target.path) if target.stdin else read_bytes(target.path)
        if isinstance(raw, FileError):
            outcomes[index] = FileResult(errors=[raw])
            continue
        if target.stdin:
            result._stdin[target.path] = raw.data
        if not raw.data.strip() or not selected:
            continue
        rule_ids = tuple(rule.id for rule in selected)
        probing.append((target.path, raw.data, rule_ids))
        if cache is not None and not target.stdin:
            settings = {rule.id: config.settings_for(rule) for rule in selected}
            key = keys[index] = _cache_key(raw, rule_ids, settings)
            hit = cache.get(key, target.path)
            if hit is not None:
                outcomes[index] = FileResult(findings=hit[0], errors=hit[1])
                result.cached += 1
                continue
        tasks.append((index, target.path, raw.data, rule_ids))

    _WORKER_RULES.clear()
    _WORKER_RULES.update(by_id)
    for index, outcome in _run_tasks(tasks, options.jobs or default_jobs()):
        outcomes[index] = outcome
        result.parsed += outcome.parsed
        if cache is not None and index in keys:
            cache.put(keys[index], outcome.findings, outcome.errors)
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


def _cache_key(raw: RawSource, rule_ids: tuple[str, ...], settings: dict) -> str:
    from advisor.cache import entry_key

    return entry_key(raw.data, raw.path, rule_ids, settings)
