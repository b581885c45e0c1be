"""Running one fuzz input through lr-advisor and judging what comes back (used by the tests in
tests/fuzz/ and by benchmarks/fuzz.py).

The property, for every input: no exception escapes; no internal error (a FileError that is
not a finding); every error is one clear line; the check ends within `TIME_LIMIT` seconds.
Where Python's own parser refuses the bytes, lr-advisor must say so (an error, not silence);
where Python accepts them, the only errors allowed are lr-advisor's documented limits.
Through the command: exit code 0 or 1 and no traceback.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import signal
import subprocess
import sys
import time
import tokenize
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from generators import FuzzInput, ProbeCase, lines_of

from advisor.findings import FileError, Finding
from advisor.pipeline import TORCH_WORDS, check_bytes, python_check
from advisor.runner import RunOptions, RunResult, check_paths
from advisor.source import MAX_SOURCE_BYTES

TIME_LIMIT = 10.0  # seconds, per input
COMMAND = Path(sys.executable).with_name("lr-advisor")
PROBE_STATUSES = frozenset(
    {"converged", "not converged", "diverged", "unknown", "no data", "not applicable", "failed"}
)
# what lr-advisor may say about a file Python itself accepts
LIMITS = ("too deeply nested", "too large to check", "cannot parse (libcst)")


class Hang(BaseException):
    """The input took longer than the time limit (a BaseException: no `except Exception` in
    the engine may swallow it)."""


class FuzzFailure(AssertionError):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = TIME_LIMIT) -> Iterator[None]:
    """Raise Hang in this (main) thread once `seconds` have passed."""

    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def python_refuses(data: bytes) -> str | None:
    """What `python file.py` says of the bytes: None if it compiles them, else why not.

    Python reads a file as PEP 263 says (BOM, coding cookie, else UTF-8; strictly, comments
    included; only encodings that read ASCII as ASCII), then parses the text."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
        if b"import torch\n".decode(encoding) != "import torch\n":
            return f"undecodable: {encoding} is not ASCII-compatible"
    except (SyntaxError, UnicodeError, LookupError) as error:
        return f"undecodable: {error}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (SyntaxError, ValueError) as error:
        message = str(error) or type(error).__name__
        return f"undecodable: {message}" if "null bytes" in message else message
    except (RecursionError, MemoryError) as error:
        return f"too deep ({type(error).__name__})"
    return None


def error_problems(errors: Sequence[FileError]) -> list[str]:
    problems = []
    for error in errors:
        message = error.message
        if not error.is_finding:
            problems.append(f"internal error (not a finding): {message}")
        elif "internal error" in message or "Traceback" in message:
            problems.append(f"internal error: {message}")
        if not message.strip() or "\n" in message.strip():
            problems.append(f"not one clear line: {message!r}")
        if (error.line is not None and error.line < 1) or (
            error.column is not None and error.column < 1
        ):
            problems.append(f"error at line {error.line}, column {error.column}: {message}")
    return problems


def finding_problems(findings: Sequence[Finding], lines: int | None) -> list[str]:
    """Positions that cannot be right: before the start or past the end of the file."""
    problems = []
    for f in findings:
        if f.line < 1 or f.column < 1 or (f.end_line, f.end_column) < (f.line, f.column):
            problems.append(f"{f.rule_id} at {f.line}:{f.column}-{f.end_line}:{f.end_column}")
        elif lines is not None and f.cell is None and f.end_line > lines + 1:
            problems.append(f"{f.rule_id} at line {f.end_line} of a {lines}-line file")
    return problems


def _mentions_torch(data: bytes) -> bool:
    return any(word.encode() in data for word in TORCH_WORDS)


def judge_static(item: FuzzInput, errors: list[FileError], findings: list[Finding]) -> list[str]:
    """The property for one checked file (everything but time and exceptions)."""
    problems = error_problems(errors) + finding_problems(findings, _line_count(item))
    if item.path.endswith(".ipynb"):
        try:
            json.loads(item.data)
        except (ValueError, RecursionError):
            if item.data.strip() and not errors:
                problems.append("broken notebook JSON, and no error says so")
        return problems
    if len(item.data) > MAX_SOURCE_BYTES:
        if not any("too large" in e.message for e in errors):
            problems.append("a file over the size limit, and no error says so")
        return problems
    if errors and all(error.message.startswith(LIMITS) for error in errors):
        return problems  # one of lr-advisor's limits: right whatever Python says of it
    refused = python_refuses(item.data)
    if refused is not None:
        undecodable = refused.startswith("undecodable")  # reported before the pre-filter
        suppressed = b"ignore-file" in item.data
        if not errors and (undecodable or (_mentions_torch(item.data) and not suppressed)):
            problems.append(f"Python refuses it ({refused}), and no error says so")
    else:
        for error in errors:
            if not error.message.startswith(LIMITS):
                problems.append(f"Python accepts it, yet: {error.message}")
    return problems


def _line_count(item: FuzzInput) -> int | None:
    if item.path.endswith(".ipynb"):
        return None
    return len(lines_of(item.data.decode("utf-8", "replace")))


def check_static(item: FuzzInput, limit: float = TIME_LIMIT) -> float:
    """check_bytes on the input, in this process; the seconds it took, or FuzzFailure."""
    began = time.perf_counter()
    try:
        with time_limit(limit):
            result = check_bytes(item.data, item.path)
    except Hang as hang:
        raise FuzzFailure(f"hang: {hang} on {item!r}") from None
    except Exception as error:
        raise FuzzFailure(f"crash: {type(error).__name__}: {error} on {item!r}") from error
    seconds = time.perf_counter() - began
    problems = judge_static(item, result.errors, result.findings)
    if problems:
        raise FuzzFailure(f"{'; '.join(problems)} on {item!r}")
    return seconds


def check_file(item: FuzzInput, directory: Path, limit: float = TIME_LIMIT) -> float:
    """The input as a file on disk, through check_paths (size limits, discovery, notebooks)."""
    path = directory / item.path
    path.write_bytes(item.data)
    began = time.perf_counter()
    try:
        with time_limit(limit):
            result = check_paths([str(path)], RunOptions(use_cache=False, jobs=1))
    except Hang as hang:
        raise FuzzFailure(f"hang: {hang} on {item!r}") from None
    except Exception as error:
        raise FuzzFailure(f"crash: {type(error).__name__}: {error} on {item!r}") from error
    seconds = time.perf_counter() - began
    problems = judge_static(item, result.errors, result.findings)
    problems += [f"internal error: {e.message}" for e in result.internal_errors]
    if problems:
        raise FuzzFailure(f"{'; '.join(sorted(set(problems)))} on {item!r}")
    return seconds


def write_case(case: ProbeCase, directory: Path) -> Path:
    for name, data in case.files.items():
        (directory / name).write_bytes(data)
    return directory / case.script


def probe_options(case: ProbeCase, directory: Path):
    from advisor.probe.datafile import DataOption
    from advisor.probe.stage import ProbeOptions

    data = DataOption(str(directory / case.data)) if case.data else None
    return ProbeOptions(data=data)


def judge_probe(case: ProbeCase, result: RunResult, script: Path) -> list[str]:
    problems = error_problems(result.errors)
    problems += [f"internal error: {e.message}" for e in result.internal_errors]
    if not result.probe and _regressions(script):
        problems.append("the facts see a regression, and the probe reported nothing")
    for report in result.probe:
        if report.status not in PROBE_STATUSES:
            problems.append(f"unknown probe status {report.status!r}")
        if not report.summary.strip() or "\n" in report.summary or "Traceback" in report.summary:
            problems.append(f"not one clear line: {report.summary!r}")
        try:
            json.dumps(report.to_json(), allow_nan=False)
        except (TypeError, ValueError) as error:
            problems.append(f"the report is not JSON ({error}): {report.to_json()}")
    return problems


def _regressions(script: Path) -> int:
    """How many regressions the facts see in the script (the probe reports on each)."""
    import libcst as cst

    from advisor.facts import extract_facts
    from advisor.facts.regression import regressions

    text = script.read_text(encoding="utf-8")
    if python_check(text, str(script)) is not None:  # libcst could crash on it
        return 0
    try:
        module = cst.parse_module(text)
        return len(regressions(extract_facts(module, str(script))))
    except Exception:  # what does not parse has no regression; the static stage says why
        return 0


def check_probe(case: ProbeCase, directory: Path, limit: float = TIME_LIMIT) -> float:
    """check_paths with the probe on a data fixture with damaged numbers."""
    script = write_case(case, directory)
    options = RunOptions(probe=probe_options(case, directory), use_cache=False, jobs=1)
    began = time.perf_counter()
    try:
        with time_limit(limit), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's own about empty files: not ours
            result = check_paths([str(script)], options)
    except Hang as hang:
        raise FuzzFailure(f"hang: {hang} on {case!r}") from None
    except Exception as error:
        raise FuzzFailure(f"crash: {type(error).__name__}: {error} on {case!r}") from error
    seconds = time.perf_counter() - began
    problems = judge_probe(case, result, script)
    if problems:
        raise FuzzFailure(f"{'; '.join(sorted(set(problems)))} on {case!r}")
    return seconds


def run_command(
    args: Sequence[str], cwd: Path, limit: float = TIME_LIMIT
) -> subprocess.CompletedProcess[str]:
    """The installed command, always with --no-cache: exit 0 or 1, no traceback, in time."""
    try:
        completed = subprocess.run(
            [str(COMMAND), "--no-cache", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        raise FuzzFailure(f"hang: lr-advisor {' '.join(args)} ran over {limit:g} s") from None
    output = completed.stdout + completed.stderr
    if (
        completed.returncode not in (0, 1)
        or "Traceback" in completed.stderr
        or "internal error" in output
    ):
        raise FuzzFailure(
            f"lr-advisor {' '.join(args)} exited {completed.returncode}:\n{output[-3000:]}"
        )
    return completed
