"""The `lr-advisor` command: check paths, list the rules, explain one.

    lr-advisor [PATH ...]          check files and folders (`-` reads standard input)
    lr-advisor rules               the catalogue
    lr-advisor explain RULE        one rule's documentation and examples

`rules` and `explain` are subcommands only as the first argument, as in ruff; a folder of
that name is checked with `lr-advisor ./rules`. Exit codes: 0 nothing found, 1 findings (or a
file that does not parse), 2 usage or internal error.

Startup time matters (this runs in pre-commit hooks on every commit), so everything heavy is
imported only where it is needed: libcst when a file is parsed, rich for the rich format.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from advisor import __version__

if TYPE_CHECKING:
    from advisor.probe.stage import ProbeOptions

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SUBCOMMANDS = ("rules", "explain")


def _selectors(values: list[str] | None) -> list[str] | None:
    """`--select A,B --select C` -> [A, B, C]; None when the option was not given."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _jobs(value: str) -> int:
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError("must be 0 (every core) or more")
    return jobs


def _check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lr-advisor",
        description="A diagnostic linter for PyTorch training scripts.",
        epilog="Subcommands (as the first argument): `lr-advisor rules`, "
        "`lr-advisor explain RULE`. Exit codes: 0 nothing found, 1 findings, 2 error.",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files, folders, or - for standard input"
    )
    parser.add_argument(
        "--static", action="store_true", help="static analysis only (no probe; the hook's mode)"
    )
    parser.add_argument(
        "--select", action="append", metavar="RULES", help="rules to check: ids, names, prefixes"
    )
    parser.add_argument(
        "--ignore", action="append", metavar="RULES", help="rules to skip: ids, names, prefixes"
    )
    parser.add_argument(
        "--format",
        choices=("rich", "concise", "json", "github", "sarif", "junit"),
        help="output format (default: rich on a terminal, concise otherwise); for CI: github "
        "(annotations), sarif (code scanning), junit (test reports)",
    )
    probe = parser.add_argument_group("probe (replays the regression on the script's data)")
    probe.add_argument(
        "--run",
        action="store_true",
        help="allow the probe to run the script (separate process, time and memory limits)",
    )
    probe.add_argument(
        "--data", metavar="PATH", help="the data: .csv, .npy, .npz or .parquet, or a folder"
    )
    probe.add_argument("--target", metavar="COL", help="--data's target column (default: last)")
    probe.add_argument(
        "--features", metavar="COLS", help="--data's feature columns, comma-separated"
    )
    probe.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="compute the data's sums on a Dask cluster: an address such as tcp://host:8786, "
        "or local[:N] for a local cluster; needs --data",
    )
    probe.add_argument(
        "--budget",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="replay time per training setting before extrapolating (default: 1)",
    )
    probe.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="--run's wall-clock limit"
    )
    probe.add_argument("--plot", metavar="FILE.png", help="loss curves against the optimum")
    fixing = parser.add_argument_group("fixes")
    fixing.add_argument("--fix", action="store_true", help="apply the safe fixes to the files")
    fixing.add_argument(
        "--diff", action="store_true", help="print the safe fixes as a diff; change nothing"
    )
    fixing.add_argument(
        "--unsafe-fixes", action="store_true", help="with --fix/--diff, also the unsafe fixes"
    )
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    parser.add_argument(
        "--jobs", type=_jobs, default=0, metavar="N", help="worker processes (default: all cores)"
    )
    parser.add_argument(
        "--stdin-filename", metavar="NAME", help="the name to report standard input under"
    )
    parser.add_argument("--version", action="version", version=f"lr-advisor {__version__}")
    return parser


def _check(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    args = _check_parser().parse_args(argv)
    from advisor.runner import RunOptions, UsageError, check_paths

    paths = args.paths or (["-"] if args.stdin_filename else ["."])
    probe = None
    if not args.static:
        problem = _probe_usage(args)
        if problem:
            err.write(f"lr-advisor: error: {problem}\n")
            return EXIT_ERROR
        probe = _probe_options(args)
    options = RunOptions(
        select=_selectors(args.select),
        ignore=_selectors(args.ignore) or (),
        jobs=args.jobs or None,
        use_cache=not args.no_cache,
        stdin_filename=args.stdin_filename,
        probe=probe,
    )
    try:
        with _progress(err, enabled=probe is not None):
            result = check_paths(paths, options)
    except UsageError as error:
        err.write(f"lr-advisor: error: {error}\n")
        return EXIT_ERROR

    if args.diff:
        return _diff(result, args, out, err)
    if args.fix:
        fixed = _fix(result, args, err)
        if fixed:
            with _progress(err, enabled=probe is not None):
                result = check_paths(paths, options)  # what remains
            noun = "finding" if fixed == 1 else "findings"
            err.write(f"Fixed {fixed} {noun}.\n")

    fmt = args.format or ("rich" if out.isatty() else "concise")
    from advisor.reporters import write_report

    write_report(result, fmt, out, err)
    if args.plot and result.probe:
        from advisor.probe.plot import PlotError, write_plot

        try:
            write_plot(result.probe, args.plot)
        except PlotError as error:
            err.write(f"lr-advisor: warning: {error}\n")
    if not result.files and not result.errors:
        err.write("warning: No Python files found under the given path(s)\n")
    if result.internal_errors:
        return EXIT_ERROR
    if result.failed and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK


def _fix_outcomes(result, args, err: TextIO) -> list:
    """The planned fixes applied in memory, file by file."""
    from advisor.autofix import apply_fixes, plan

    outcomes = []
    for path, findings in sorted(plan(result.findings, args.unsafe_fixes).items()):
        try:
            with open(path, encoding="utf-8", newline="") as stream:
                text = stream.read()
        except (OSError, UnicodeDecodeError) as error:
            err.write(f"lr-advisor: {path}: not fixed: {error}\n")
            continue
        if "\r" in text.replace("\r\n", ""):
            err.write(f"lr-advisor: {path}: not fixed: old Mac line endings (\\r)\n")
            continue
        outcome = apply_fixes(path, text, findings)
        if outcome.error:
            err.write(f"lr-advisor: {path}: {outcome.error}\n")
        outcomes.append(outcome)
    return outcomes


def _diff(result, args, out: TextIO, err: TextIO) -> int:
    """`--diff`: the fixes as a unified diff; exit 1 when there is anything to fix."""
    outcomes = [o for o in _fix_outcomes(result, args, err) if o.changed]
    for outcome in outcomes:
        out.write(outcome.diff())
    count = sum(len(o.applied) for o in outcomes)
    if count:
        noun = "fix" if count == 1 else "fixes"
        err.write(f"Would apply {count} {noun} to {len(outcomes)} file(s).\n")
    return EXIT_FINDINGS if outcomes and not args.exit_zero else EXIT_OK


def _fix(result, args, err: TextIO) -> int:
    """`--fix`: write the fixed files (atomically); the number of findings fixed."""
    from advisor.autofix import write_atomically

    fixed = 0
    for outcome in _fix_outcomes(result, args, err):
        if not outcome.changed:
            continue
        try:
            write_atomically(outcome.path, outcome.after)
        except OSError as error:
            err.write(f"lr-advisor: {outcome.path}: not fixed: {error}\n")
            continue
        fixed += len(outcome.applied)
    return fixed


@contextlib.contextmanager
def _progress(err: TextIO, enabled: bool):
    """A spinner on a terminal's stderr when a check with the probe takes more than a second."""
    if not enabled or not err.isatty() or os.environ.get("NO_COLOR") or os.environ.get("CI"):
        yield
        return
    import threading

    from rich.console import Console

    status = Console(file=err).status("lr-advisor: replaying the training on the data…")
    timer = threading.Timer(1.0, status.start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        status.stop()


def _probe_usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the probe's options, if anything."""
    if (args.target or args.features) and not args.data:
        return "--target and --features describe --data FILE: give the file too"
    if args.data and not os.path.exists(args.data):  # a file, or a folder of files
        return f"--data {args.data}: no such file or folder"
    if args.budget <= 0 or args.timeout <= 0:
        return "--budget and --timeout must be positive"
    if args.scheduler is not None:
        if not args.data:
            return "--scheduler computes the sums of --data FILE on a cluster: give the data too"
        from advisor.probe.distributed import SchedulerError, check_scheduler

        try:
            check_scheduler(args.scheduler)  # dask installed, the address answers
        except SchedulerError as error:
            return str(error)
    return None


def _probe_options(args: argparse.Namespace) -> ProbeOptions:
    from advisor.probe.stage import ProbeOptions

    data = None
    if args.data:
        from advisor.probe.datafile import DataOption

        features = tuple(f.strip() for f in args.features.split(",")) if args.features else None
        data = DataOption(args.data, args.target, features)
    return ProbeOptions(
        data=data,
        run=args.run,
        budget=args.budget,
        timeout=args.timeout,
        scheduler=args.scheduler,
    )


def _rules(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    parser = argparse.ArgumentParser(
        prog="lr-advisor rules", description="List every rule: id, name and summary."
    )
    parser.add_argument("--format", choices=("text", "concise", "json"), default="text")
    args = parser.parse_args(argv)
    from advisor.rules import ALL_RULES

    if args.format == "json":
        import json

        catalogue = [
            {"id": r.id, "name": r.name, "severity": r.severity, "summary": r.summary}
            for r in ALL_RULES
        ]
        json.dump(catalogue, out, indent=2)
        out.write("\n")
        return EXIT_OK
    width = max((len(rule.name) for rule in ALL_RULES), default=0)
    for rule in ALL_RULES:
        out.write(f"{rule.id}  {rule.name:<{width}}  {rule.summary}\n")
    return EXIT_OK


def explanation(rule) -> str:
    """The rule's documentation plus its must-flag and must-not-flag examples, as Markdown."""
    parts = [rule.documentation().rstrip(), ""]
    for title, snippets in (
        ("Flagged (these examples are the rule's tests)", rule.flag),
        ("Not flagged", rule.quiet),
    ):
        if snippets:
            parts.append(f"## {title}")
            parts.extend(f"```python\n{snippet.strip()}\n```" for snippet in snippets)
            parts.append("")
    return "\n".join(parts)


def _explain(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    parser = argparse.ArgumentParser(
        prog="lr-advisor explain", description="Print one rule's documentation and examples."
    )
    parser.add_argument("rule", metavar="RULE", help="a rule id (LRA101) or name")
    args = parser.parse_args(argv)
    from advisor.rules import ALL_RULES, find_rule

    rule = find_rule(args.rule.strip())
    if rule is None:
        known = ", ".join(r.id for r in ALL_RULES)
        err.write(f"lr-advisor: error: unknown rule {args.rule!r} (known: {known})\n")
        return EXIT_ERROR
    text = explanation(rule)
    if out.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        plain = bool(os.environ.get("NO_COLOR"))
        console = Console(file=out, color_system=None if plain else "auto")
        console.print(Markdown(text, code_theme="ansi_dark"))
    else:
        out.write(text)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out, err = sys.stdout, sys.stderr
    try:
        if argv and argv[0] == "rules":
            return _rules(argv[1:], out, err)
        if argv and argv[0] == "explain":
            return _explain(argv[1:], out, err)
        return _check(argv, out, err)
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lr-advisor . | head`: the reader left; not our error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FINDINGS
    except Exception:  # a bug of ours: say so, with the traceback, and exit 2 (not 1)
        import traceback

        traceback.print_exc(file=err)
        err.write(f"lr-advisor {__version__}: internal error (please report this)\n")
        return EXIT_ERROR
