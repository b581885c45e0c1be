"""Checking what the command line names: files, the configuration, the cache, a pool of
worker processes, and the hand-off to the probe.

Each file goes through `advisor.pipeline` (read, parse, facts, rules, findings). The expensive
steps are skipped wherever possible: a file whose stat is unchanged is served from the cache
without being read, the rules (hence libcst) are imported only when some file is not served
from it, and many files are checked in forked workers. With probe options, the files the probe
reads are checked here, one at a time, and the probe gets the pipeline's `CheckedFile`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from advisor.findings import FileError, Finding
from advisor.notebook import NotebookProgram, notebook_program
from advisor.pipeline import CheckedFile, check, internal_error, load
from advisor.source import STDIN, RawSource, decode_source, read_bytes, read_stdin, split_lines

if TYPE_CHECKING:
    from types import ModuleType

    from advisor.cache import Cache
    from advisor.config import Selectable
    from advisor.probe.stage import Probe, ProbeOptions, ProbeOutcome, ProbeReport
    from advisor.rule import Rule


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
    probe: ProbeOptions | None = None  # None: static analysis only


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files: int = 0  # files named or found
    parsed: int = 0  # files that were parsed and checked (not cached, not pre-filtered)
    cached: int = 0
    walked: int = 0  # folders named on the command line
    probe: list[ProbeReport] = field(default_factory=list)  # one a training loop
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


# -- many files ------------------------------------------------------------------------------

_WORKER_RULES: dict[str, Rule] = {}
Task = tuple[int, str, bytes, tuple[str, ...]]  # index, path, content, rule ids


def _check_task(task: Task) -> tuple[int, FileResult]:
    index, path, data, rule_ids = task
    rules = [_WORKER_RULES[rule_id] for rule_id in rule_ids]
    return index, _result(_check_file(path, data, rules))


def _check_file(
    path: str, source: bytes | CheckedFile, rules: Sequence[Rule]
) -> CheckedFile | FileError:
    """One file through the pipeline. A bug that escapes the pipeline's own containment is an
    internal error of the file: it never takes the pool (or the run) down."""
    # A check allocates hundreds of thousands of objects, nearly all freed by reference
    # counting; the cycle collector would traverse them again and again (10-30% of the
    # time). Off during a check, one young-generation pass after it frees what cycles remain.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return check(load(source, path) if isinstance(source, bytes) else source, rules)
    except Exception as error:
        return internal_error(path, "the runner", error)
    finally:
        if collecting:
            gc.enable()
            gc.collect(0)


def _result(checked: CheckedFile | FileError) -> FileResult:
    """What the cache keeps and a worker sends back of a check (no syntax tree, no facts)."""
    if isinstance(checked, FileError):
        return FileResult(errors=[checked])
    return FileResult(list(checked.findings), list(checked.errors), checked.parsed, checked.depends)


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
    rules: Sequence[Selectable], select: Sequence[str] | None, ignore: Sequence[str]
) -> None:
    from advisor.config import unknown_selectors

    unknown = unknown_selectors([*(select or ()), *ignore], rules)
    if unknown:
        raise UsageError(
            f"no rule matches {', '.join(repr(s) for s in unknown)} "
            "(rules are selected by id, name or id prefix: see `lr-advisor rules`)"
        )


class _RuleRef:
    """A rule known by its id and name only (the cache's catalogue): enough to select rules,
    so that a run served from the cache never imports the rules."""

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
    cache: Cache | None = None
    if options.use_cache and any(not target.stdin for target in discovery.targets):
        from advisor.cache import CACHE_DIR, Cache, content_digest, entry_key, ruleset_digest

        cache = Cache.open(options.cache_dir or CACHE_DIR)
    rules: Sequence[Rule | _RuleRef] | None = options.rules
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
    # out (and hash the selection for the cache key) once per distinct pair, not once a file.
    selections: dict[tuple[int, tuple[str, ...]], tuple[tuple[str, ...], str]] = {}
    use_stat = cache is not None and options.probe is None  # the probe needs every file's bytes
    stage = _probe_stage() if options.probe is not None else None
    probe: Probe | None = (
        stage.Probe(options.probe) if stage is not None and not isinstance(stage, str) else None
    )
    tasks: list[Task] = []
    probing: list[tuple[int, CheckedFile, tuple[str, ...]]] = []  # checked here, then probed
    read_any = False
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
        digest: str | None = None
        stat: os.stat_result | None = None
        here = False  # checked in this process, for the probe
        if use_stat and cached and rule_ids:
            try:
                stat = os.stat(target.path)  # before reading: a later write changes it
            except OSError:
                stat = None
            if stat is not None and cache is not None:  # use_stat: there is a cache
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
            read_any = True
            if probe is not None:
                loaded = load(raw.data, target.path)
                here = cast("ModuleType", stage).wants_probe(loaded)  # a probe: the stage loaded
                if here:
                    probing.append((index, loaded, rule_ids))
            if cached:
                digest = content_digest(raw.data)
                if stat is not None and cache is not None:  # cached: there is a cache
                    cache.remember(absolute, stat, digest)
        if cached and cache is not None:  # cached: there is a cache
            # known by its stat, or read and digested just above
            key = keys[index] = entry_key(cast(str, digest), target.path, ruleset)
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
        if not here:  # read above, or just now for a cache miss
            tasks.append((index, target.path, cast(RawSource, raw).data, rule_ids))

    if tasks or any(index not in outcomes for index, _, _ in probing):
        if any(isinstance(rule, _RuleRef) for rule in rules):
            rules = _all_rules()  # some file has to be checked after all
        _WORKER_RULES.clear()
        # no _RuleRef is left: replaced by the rules themselves just above
        _WORKER_RULES.update((rule.id, rule) for rule in cast("Sequence[Rule]", rules))
    for index, outcome in _run_tasks(tasks, options.jobs or default_jobs()):
        outcomes[index] = outcome
        result.parsed += outcome.parsed
        if cache is not None and index in keys:
            cache.put(keys[index], outcome.findings, outcome.errors, outcome.depends)
    # The files the probe reads: checked here, one at a time, and the checked file (its
    # facts) handed to the probe; static findings are cached before the probe confirms any.
    # Each file's tree and facts are let go once it is probed.
    probed: list[ProbeOutcome] = []
    probing.reverse()
    while probing:
        index, loaded, rule_ids = probing.pop()
        checked: CheckedFile | FileError = loaded
        if index not in outcomes:
            checked = _check_file(loaded.path, loaded, [_WORKER_RULES[i] for i in rule_ids])
            outcome = outcomes[index] = _result(checked)
            result.parsed += outcome.parsed
            if cache is not None and index in keys:
                cache.put(keys[index], outcome.findings, outcome.errors, outcome.depends)
        if isinstance(checked, CheckedFile):
            # only files the probe reads are in `probing`: there is a probe
            probed.append(cast("Probe", probe).check(checked, outcomes[index].findings, rule_ids))
    if cache is not None:
        cache.save()

    for index in sorted(outcomes):
        result.findings.extend(outcomes[index].findings)
        result.errors.extend(outcomes[index].errors)
    result.findings.sort(key=Finding.sort_key)
    for probe_outcome in probed:
        result.probe.extend(probe_outcome.reports)
        result.findings.extend(probe_outcome.findings)
        result.errors.extend(probe_outcome.errors)
    if probed:
        result.findings.sort(key=Finding.sort_key)
    if isinstance(stage, str) and read_any:
        result.errors.append(FileError("<probe>", stage, is_finding=False))
    result.errors.sort(key=lambda e: (e.path, e.cell or 0, e.line or 0))
    return result


def _probe_stage() -> ModuleType | str:
    """The probe's module, or why it cannot run (numpy missing: the probe is an extra)."""
    try:
        from advisor.probe import stage
    except ImportError as error:
        return f"the probe needs numpy ({error})"
    return stage
