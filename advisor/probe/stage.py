"""The probe as a stage of a check: after the static rules, for each file that trains a
regression, get its problem (facts, `--data` or `--run`), judge it, and report.

The probe's findings (LRA501 not-converged, LRA502 step-changes-nothing) are findings like the
others; a static finding the probe reproduces becomes `confirmed`, with the probe's numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from advisor.curvature import figure
from advisor.findings import Diagnostic, FileError, Finding

CONFIRMED = "confirmed"


@dataclass(frozen=True)
class ProbeOptions:
    data: Any = None  # a datafile.DataOption
    run: bool = False
    budget: float = 1.0  # seconds of replay per setting
    timeout: float = 60.0  # --run: wall clock
    memory_mb: int = 4096  # --run: address space


@dataclass
class ProbeReport:
    """What the probe found for one training loop of one file."""

    path: str
    line: int | None
    status: str  # converged, not converged, diverged, unknown, no data, not applicable, failed

    @property
    def judged(self) -> bool:
        """A verdict with numbers (what the concise format and the plot show)."""
        return self.verdict is not None

    source: str | None  # facts, data file, run
    summary: str
    verdict: Any = None  # verdict.Verdict
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cell: int | None = None
    node: Any = field(default=None, repr=False)  # the training loop's iterable, for the line

    def to_json(self) -> dict:
        from advisor.probe.report import verdict_json

        data = {
            "path": self.path,
            "line": self.line,
            "status": self.status,
            "source": self.source,
            "summary": self.summary,
            "notes": self.notes,
            "seconds": round(self.seconds, 4),
        }
        if self.cell is not None:
            data["cell"] = self.cell
        if self.verdict is not None:
            data.update(verdict_json(self.verdict))
        return data


def probe_file(
    path: str, text: str, options: ProbeOptions, notebook=None, static: frozenset = frozenset()
):
    """(module, reports, diagnostics as (rule, Diagnostic), confirmations {rule: evidence}).

    `static`: the names of the rules the static pass found in the file; the replay follows
    what they say the training does (gradients never cleared, an iterator spent after one
    epoch), so that it replays the script as written, not as intended."""
    import libcst as cst

    from advisor.facts import extract_facts
    from advisor.facts.regression import regressions

    try:
        module = cst.parse_module(text)
        facts = extract_facts(module, path)
        found = _distinct(regressions(facts))
    except Exception:  # the static stage has reported what is wrong with the file
        return None, [], [], {}
    reports, diagnostics, confirmations = [], [], {}
    data = _given_data(options) if options.data is not None and found else None
    captured = None
    for regression in found:
        began = time.perf_counter()
        report, diagnostic, confirmed = _probe_one(
            path, regression, options, data, captured, static
        )
        report.seconds = time.perf_counter() - began
        loop = regression.config.loop
        report.node = loop.iter.node if loop.iter is not None else loop.node
        reports.append(report)
        if diagnostic is not None:
            diagnostics.append(diagnostic)
        confirmations.update(confirmed)
    return module, reports, diagnostics, confirmations


def _distinct(found: list) -> list:
    """One regression per loss: a helper's loop and the loop that calls it train one model;
    the one that knows more steps (the outer) tells the whole training."""
    best: dict[int, object] = {}
    for regression in found:
        key = id(regression.loss.node)
        other = best.get(key)
        if other is None or (regression.steps or 0) > (other.steps or 0):
            best[key] = regression
    return [r for r in found if best[id(r.loss.node)] is r]


def _given_data(options: ProbeOptions):
    from advisor.probe.datafile import load

    x, y, _ = load(options.data)
    return x, y


def _probe_one(path, regression, options, data, captured, static):
    from advisor.probe.acquire import from_regression
    from advisor.probe.verdict import judge

    line = None  # set by _locate
    acquired = from_regression(regression, data)
    if acquired.problem is None:
        if not acquired.applies:
            report = ProbeReport(
                path, line, "not applicable", None, f"not probed: {acquired.missing}"
            )
            return report, None, {}
        hint = "; give it with --data FILE --target COL, or allow --run" if not options.run else ""
        report = ProbeReport(path, line, "no data", None, f"not probed: {acquired.missing}{hint}")
        return report, None, {}
    problem = acquired.problem
    if "update-outside-no-grad" in static:
        why = "not probed: the script fails at its first update (see update-outside-no-grad)"
        return ProbeReport(path, line, "not applicable", problem.source, why), None, {}
    as_written(problem, static)
    try:
        verdict = judge(problem, budget=options.budget)
    except (ValueError, FloatingPointError, ArithmeticError) as error:
        report = ProbeReport(path, line, "failed", problem.source, f"the probe failed: {error}")
        return report, None, {}
    report = ProbeReport(
        path, line, verdict.status, problem.source, summary(verdict), verdict, problem.notes
    )
    return report, _not_converged(regression, verdict), _confirmations(verdict)


def as_written(problem, static: frozenset) -> None:
    """The training as the static findings say the script runs it."""
    from dataclasses import replace

    if "missing-zero-grad" in static and problem.optimizer is not None:
        problem.optimizer = replace(problem.optimizer, accumulate=True)
        problem.notes.append("gradients are never cleared: each step uses the sum of all of them")
    if "zero-grad-before-step" in static:
        problem.frozen = True
        problem.notes.append("the gradients are cleared before each update: nothing moves")
    if "exhausted-iterator" in static and problem.total_steps:
        problem.steps = problem.steps_per_epoch
        problem.notes.append("the batches run out after the first epoch")


def summary(verdict) -> str:
    """One line: the verdict with its main numbers."""
    optimum = verdict.optimum
    if verdict.replay is None:
        return f"optimum loss {figure(optimum.loss)} (lstsq); the update rule cannot be replayed"
    starts = verdict.replay.final.size
    spread = ""
    if starts > 1 and verdict.spread is not None:
        low, high = (figure(x) for x in verdict.spread)
        spread = f" (median of {starts} starts, {low} to {high})"
    if verdict.status == "diverged":
        return f"the training diverges: the loss overflows; the optimum is {figure(optimum.loss)}"
    exact_fit = optimum.loss <= 1e-12 * max(verdict.final, 1e-300)
    above = (
        "an exact fit (lstsq's loss is 0)"
        if exact_fit
        else f"the optimum {optimum.loss:.6g} (lstsq): {figure(verdict.excess_percent)}% above it"
    )
    text = (
        f"training ends at loss {figure(verdict.final)}{spread} against {above}, the weights "
        f"{figure(100 * verdict.parameter_error)}% away from lstsq's"
    )
    if verdict.status == "converged":
        text = (
            f"converges: loss {figure(verdict.final)}{spread}, the optimum is "
            f"{optimum.loss:.6g} (lstsq)"
        )
    return text


def _not_converged(regression, verdict):
    """LRA501 at the training loop, when the replay does not reach the optimum."""
    if verdict.status not in ("not converged", "diverged"):
        return None
    from rules.not_converged import RULE

    loop = regression.config.loop
    node = loop.iter.node if loop.iter is not None else loop.node
    message = summary(verdict)
    best = verdict.best
    if best is not None:
        message += (
            f". Proven on the data: {best.label} reaches its optimum "
            f"{best.optimum.loss:.6g} within 1e-6 in {int(best.epochs_needed)} epochs"
        )
    evidence = {
        "status": verdict.status,
        "final_loss": verdict.final,
        "optimum_loss": verdict.optimum.loss,
        "excess_percent": verdict.excess_percent,
        "parameter_error": verdict.parameter_error,
    }
    return RULE, Diagnostic(node, message, CONFIRMED, None, evidence)


def _confirmations(verdict) -> dict[str, dict]:
    """Static rules the replay reproduces, with the probe's reason."""
    if verdict.status == "converged":
        return {}
    confirmed = {}
    for rule, why in verdict.reasons:
        confirmed[rule] = {"probe": why, "probe_status": verdict.status}
    return confirmed


def run_probe(inputs, result, options: ProbeOptions) -> None:
    """The probe stage of `check_paths`: adds reports, findings and confirmations to result.

    `inputs`: (path, content, ids of the rules selected for that file)."""
    from advisor.notebook import NotebookProgram, notebook_program
    from advisor.runner import _findings, _internal_error, mentions_torch
    from advisor.source import decode_source
    from advisor.suppression import Suppressions

    for path, data, selected in inputs:
        notebook = None
        if path.endswith(".ipynb"):
            program = notebook_program(data, path)
            if not isinstance(program, NotebookProgram):
                continue
            notebook, text = program, program.text
        else:
            text = decode_source(data, path)
            if isinstance(text, FileError):
                continue
        if not mentions_torch(text) or "backward" not in text:
            continue
        static = frozenset(f.rule_name for f in result.findings if f.path == path)
        try:
            module, reports, diagnostics, confirmations = probe_file(
                path, text, options, notebook, static
            )
        except Exception as error:  # a bug of ours: reported, and the other files go on
            result.errors.append(_internal_error(path, "the probe", error))
            continue
        if module is None:
            continue
        diagnostics = [(rule, d) for rule, d in diagnostics if rule.id in selected]
        _locate(module, reports, notebook)
        result.probe.extend(reports)
        if diagnostics:
            errors: list[FileError] = []
            result.findings.extend(
                _findings(module, path, diagnostics, Suppressions.parse(text), notebook, errors)
            )
            result.errors.extend(errors)
        for finding in result.findings:
            if finding.path == path and finding.rule_name in confirmations:
                finding.confidence = CONFIRMED
                finding.evidence = {**finding.evidence, **confirmations[finding.rule_name]}
    result.findings.sort(key=Finding.sort_key)


def _locate(module, reports, notebook) -> None:
    """The line of each report: its training loop's."""
    from advisor.runner import node_positions

    if not reports:
        return
    positions = node_positions(module)
    for report in reports:
        where = positions.get(report.node)
        if where is None:
            continue
        line = where.start.line
        if notebook is not None:
            report.cell, line = notebook.locate(line)
        report.line = line


__all__ = ["ProbeOptions", "ProbeReport", "run_probe"]
