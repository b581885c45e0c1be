"""The probe as a stage beside the rules: for each file that trains a regression, get its
problem (facts, `--data` or `--run`), judge it, and report.

The runner hands over the pipeline's `CheckedFile` of the check that just ran: the probe reads
its facts, never parses the file again. The probe's findings (LRA501 not-converged, LRA502
step-changes-nothing) are located like the others; a static finding the probe reproduces
becomes `confirmed`, with the probe's numbers.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from advisor.findings import CONFIRMED, Diagnostic, FileError, Finding
from advisor.numbers import figure
from advisor.pipeline import CheckedFile, analyse, internal_error, locate, mentions_torch

if TYPE_CHECKING:
    import libcst as cst

    from advisor.facts.regression import Regression
    from advisor.probe.datafile import DataOption
    from advisor.probe.verdict import Verdict
    from advisor.rule import Rule


ProbeStatus = Literal[
    "converged", "not converged", "diverged", "unknown", "no data", "not applicable", "failed"
]


@dataclass(frozen=True)
class ProbeOptions:
    data: DataOption | None = None  # --data (with --target, --features)
    run: bool = False
    budget: float = 1.0  # seconds of replay per setting
    timeout: float = 60.0  # --run: wall clock
    memory_mb: int = 4096  # --run: address space
    scheduler: str | None = None  # --scheduler: streamed --data's sums on a Dask cluster


@dataclass
class ProbeReport:
    """What the probe found for one training loop of one file."""

    path: str
    line: int | None
    status: ProbeStatus

    @property
    def judged(self) -> bool:
        """A verdict with numbers (what the concise format and the plot show)."""
        return self.verdict is not None

    source: str | None  # facts, data file, run
    summary: str
    verdict: Verdict | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cell: int | None = None
    node: cst.CSTNode | None = field(default=None, repr=False)  # the loop's, for the line

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


@dataclass
class FileProbe:
    """What the probe found in one file, not yet located: a report a training loop, the
    probe's own diagnostics, and the static rules it confirms (by id, with its evidence)."""

    reports: list[ProbeReport] = field(default_factory=list)
    diagnostics: list[tuple[Rule, Diagnostic]] = field(default_factory=list)
    confirmations: dict[str, dict] = field(default_factory=dict)


@dataclass
class ProbeOutcome:
    """The probe's contribution to a run's result for one file, located."""

    reports: list[ProbeReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


def wants_probe(checked: CheckedFile) -> bool:
    """Whether a file may train anything the probe can replay (it calls `backward`)."""
    return mentions_torch(checked.text) and "backward" in checked.text


class Probe:
    """The probe for one run: `--data` is read once, however many files use it."""

    def __init__(self, options: ProbeOptions) -> None:
        self.options = options
        self._data: Any = None
        self._data_read = False

    def data(self) -> Any:
        """`--data`: (features, targets) of a small file, or one streaming pass over a large
        file or a folder. Raises DataError (each time it is asked) for a file it cannot use."""
        if not self._data_read:
            from advisor.probe.datafile import given

            # asked for only where there is a --data option
            self._data = given(cast("DataOption", self.options.data), self.options.scheduler)
            self._data_read = True
        return self._data

    def check(
        self, checked: CheckedFile, findings: list[Finding], selected: Collection[str]
    ) -> ProbeOutcome:
        """The probe stage of a run for one checked file: its reports, the probe's findings
        of the rules in `selected` (ids), and `findings` (the file's static findings) marked
        confirmed where the replay reproduces them. A bug of ours is an error of the file."""
        static = frozenset(finding.rule_id for finding in findings)
        try:
            found = self.probe_file(checked, static)
            if found is None:
                return ProbeOutcome()
            diagnostics = [(rule, d) for rule, d in found.diagnostics if rule.id in selected]
            outcome = ProbeOutcome(found.reports)
            _locate_reports(checked, found.reports)
            if diagnostics:
                outcome.findings, outcome.errors = locate(checked, diagnostics)
        except Exception as error:  # a bug of ours: reported, and the other files go on
            return ProbeOutcome(errors=[internal_error(checked.path, "the probe", error)])
        for finding in findings:
            if finding.rule_id in found.confirmations:
                finding.confidence = CONFIRMED
                finding.evidence = {**finding.evidence, **found.confirmations[finding.rule_id]}
        return outcome

    def probe_file(self, checked: CheckedFile, static: frozenset[str]) -> FileProbe | None:
        """What the probe finds in a checked file (its facts: extracted now if the check did
        not need them); None when the file has no facts (it does not parse).

        `static`: the ids of the rules the static pass found in the file; the replay follows
        what they say the training does (gradients never cleared, an iterator spent after one
        epoch), so that it replays the script as written, not as intended."""
        from advisor.facts.regression import regressions

        facts = analyse(checked)
        if facts is None:  # the static stage has reported what is wrong with the file
            return None
        path, options = checked.path, self.options
        found = _distinct(regressions(facts))
        probed = FileProbe()
        data, unusable = None, None
        if options.data is not None and found:
            from advisor.probe.datafile import DataError

            try:
                data = self.data()
            except DataError as error:  # the user's file, not our bug: said in each report
                unusable = f"not probed: --data {error}"
        runner = _Runner(path, options)
        for regression in found:
            began = time.perf_counter()
            if unusable is not None:
                report, found_diagnostics, confirmed = (
                    ProbeReport(path, None, "failed", "data file", unusable),
                    [],
                    {},
                )
            else:
                report, found_diagnostics, confirmed = _probe_one(
                    path, regression, options, data, runner, static
                )
            report.seconds = time.perf_counter() - began
            loop = regression.config.loop
            report.node = loop.iter.node if loop.iter is not None else loop.node
            probed.reports.append(report)
            probed.diagnostics.extend(found_diagnostics)
            probed.confirmations.update(confirmed)
        if not found and options.run and runner.runnable:
            # the facts see no regression (a model built elsewhere): the run may still show one
            began = time.perf_counter()
            report, _, _ = _judged(path, runner.problem(), None, static, options, runner)
            report.seconds = time.perf_counter() - began
            if report.status != "no data":
                probed.reports.append(report)
        return probed


class _Runner:
    """`--run`: the script runs at most once per file, on the first regression that needs it."""

    def __init__(self, path: str, options: ProbeOptions) -> None:
        self.path = path
        self.options = options
        self.result = None

    @property
    def runnable(self) -> bool:
        return self.options.run and Path(self.path).is_file()

    def capture(self):
        if self.result is None:
            from advisor.probe.capture import capture_run

            self.result = capture_run(
                Path(self.path),
                timeout=self.options.timeout,
                memory_mb=self.options.memory_mb,
            )
        return self.result

    def problem(self):
        return self.capture().problem if self.runnable else None


def _distinct(found: list[Regression]) -> list[Regression]:
    """One regression per loss: a helper's loop and the loop that calls it train one model;
    the one that knows more steps (the outer) tells the whole training."""
    best: dict[int, Regression] = {}
    for regression in found:
        key = id(regression.loss.node)
        other = best.get(key)
        if other is None or (regression.steps or 0) > (other.steps or 0):
            best[key] = regression
    return [r for r in found if best[id(r.loss.node)] is r]


def _probe_one(path, regression, options, data, runner, static):
    """The facts' problem (or `--data`'s); with `--run`, the script runs once too: its capture
    stands in for synthetic or missing data, and shows whether steps change anything."""
    from advisor.probe.acquire import from_regression

    acquired = from_regression(regression, data)
    if not acquired.applies:
        report = ProbeReport(path, None, "not applicable", None, f"not probed: {acquired.missing}")
        return report, [], {}
    problem = acquired.problem
    captured = runner.problem() if runner.runnable and data is None else None
    if captured is not None and (problem is None or "synthetic" in " ".join(problem.notes)):
        problem = captured
    if problem is None and data is not None:  # the user's data, which does not fit the script
        why = f"not probed: --data {options.data.path}: {acquired.missing}"
        return ProbeReport(path, None, "failed", "data file", why), [], {}
    if problem is None and not runner.runnable:
        hint = "; give it with --data FILE --target COL, or allow --run" if not options.run else ""
        report = ProbeReport(path, None, "no data", None, f"not probed: {acquired.missing}{hint}")
        return report, [], {}
    report, diagnostics, confirmed = _judged(path, problem, regression, static, options, runner)
    if runner.runnable:
        unchanged = _step_changes_nothing(regression, runner.capture())
        if unchanged is not None:
            diagnostics.append(unchanged)
    return report, diagnostics, confirmed


def _judged(path, problem, regression, static, options, runner):
    """(report, diagnostics, confirmations) for a problem, or why there is none."""
    from advisor.probe.verdict import judge
    from advisor.rules.update_outside_no_grad import RULE as UPDATE_OUTSIDE_NO_GRAD

    if problem is None:
        capture = runner.capture() if runner is not None else None
        status = "failed" if capture is not None and capture.status != "ok" else "no data"
        message = capture.message if capture is not None else "no regression was seen"
        return ProbeReport(path, None, status, "run", f"not probed: {message}"), [], {}
    if UPDATE_OUTSIDE_NO_GRAD.id in static:
        why = "not probed: the script fails at its first update (see update-outside-no-grad)"
        return ProbeReport(path, None, "not applicable", problem.source, why), [], {}
    if problem.source != "run":
        as_written(problem, static)  # a run shows what the script did; the facts need telling
    try:
        verdict = judge(problem, budget=options.budget)
    except (ValueError, FloatingPointError, ArithmeticError) as error:
        report = ProbeReport(path, None, "failed", problem.source, f"the probe failed: {error}")
        return report, [], {}
    notes = list(problem.notes)
    from advisor.probe.report import sampling_note

    sampled = sampling_note(verdict)
    if sampled is not None:
        notes.append(sampled)
    if runner is not None and runner.result is not None:
        if runner.result.status != "ok":
            notes.append(runner.result.message)
        if runner.result.sandbox:
            notes.append("sandbox: " + "; ".join(runner.result.sandbox))
    why = next((note.split(":")[0] for note in problem.notes if "no replay" in note), None)
    report = ProbeReport(
        path, None, verdict.status, problem.source, summary(verdict, why), verdict, notes
    )
    diagnostics = []
    if regression is not None:
        found = _not_converged(regression, verdict)
        if found is not None:
            diagnostics.append(found)
    return report, diagnostics, _confirmations(verdict)


def _step_changes_nothing(regression, capture):
    """LRA502: the script ran, stepped an optimizer, and none of its parameters moved."""
    if capture is None or not capture.unmoved:
        return None
    from advisor.rules.step_changes_nothing import RULE

    kind, steps = capture.unmoved[0]
    loop = regression.config.loop
    node = loop.iter.node if loop.iter is not None else loop.node
    message = (
        f"the script took {steps} {kind} step{'s' if steps != 1 else ''} and not one of its "
        f"parameters changed: the gradients the step reads are zero or missing (cleared before "
        f"the step, frozen parameters, an optimizer over another model's parameters, lr 0)"
    )
    return RULE, Diagnostic(node, message, CONFIRMED, None, {"steps": steps, "optimizer": kind})


def as_written(problem, static: frozenset[str]) -> None:
    """The training as the static findings (`static`: rule ids) say the script runs it."""
    from dataclasses import replace

    from advisor.rules.exhausted_iterator import RULE as EXHAUSTED_ITERATOR
    from advisor.rules.missing_zero_grad import RULE as MISSING_ZERO_GRAD
    from advisor.rules.zero_grad_before_step import RULE as ZERO_GRAD_BEFORE_STEP

    if MISSING_ZERO_GRAD.id in static and problem.optimizer is not None:
        problem.optimizer = replace(problem.optimizer, accumulate=True)
        problem.notes.append("gradients are never cleared: each step uses the sum of all of them")
    if ZERO_GRAD_BEFORE_STEP.id in static:
        problem.frozen = True
        problem.notes.append("the gradients are cleared before each update: nothing moves")
    if EXHAUSTED_ITERATOR.id in static and problem.total_steps:
        problem.steps = problem.steps_per_epoch
        problem.notes.append("the batches run out after the first epoch")


def summary(verdict, why_no_replay: str | None = None) -> str:
    """One line: the verdict with its main numbers (and why there is no replay, if known)."""
    optimum = verdict.optimum
    if verdict.replay is None:
        because = f" ({why_no_replay})" if why_no_replay else ""
        return (
            f"optimum loss {figure(optimum.loss)} (lstsq); the update rule cannot be "
            f"replayed{because}"
        )
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
    from advisor.rules.not_converged import RULE

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
    """Static rules the replay reproduces (by id), with the probe's reason."""
    if verdict.status == "converged":
        return {}
    confirmed = {}
    for rule_id, why in verdict.reasons:
        confirmed[rule_id] = {"probe": why, "probe_status": verdict.status}
    return confirmed


def _locate_reports(checked: CheckedFile, reports: list[ProbeReport]) -> None:
    """The line of each report: its training loop's."""
    if not reports:
        return
    positions = checked.positions
    for report in reports:
        where = positions.get(report.node)
        if where is None:
            continue
        line = where.start.line
        if checked.notebook is not None:
            report.cell, line = checked.notebook.locate(line)
        report.line = line


__all__ = ["Probe", "ProbeOptions", "ProbeOutcome", "ProbeReport", "wants_probe"]
