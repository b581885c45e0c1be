"""How the probe's verdicts are shown: a JSON section with every number, a rich panel per
training loop, and one line each for the concise format."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from advisor.numbers import figure


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _matrix(values) -> list:
    with np.errstate(all="ignore"):  # a diverged replay's weights may overflow the rounding
        rounded = np.asarray(values, dtype=float).round(12)
    return (
        [_number(x) for x in rounded.ravel()]
        if rounded.ndim == 1
        else [[_number(x) for x in np.ravel(row)] for row in rounded.reshape(rounded.shape[0], -1)]
    )


def verdict_json(verdict) -> dict:
    """Every number of a verdict, as plain JSON."""
    optimum, shape, run = verdict.optimum, verdict.curvature, verdict.replay
    problem = verdict.problem
    data: dict[str, Any] = {
        "problem": {
            "rows": problem.rows,
            "features": problem.width,
            "outputs": problem.outputs,
            "bias": problem.bias,
            "loss": {
                "mean": problem.loss.mean,
                "factor": _number(problem.loss.factor),
                "broadcast": problem.loss.broadcast,
            },
            "optimizer": None
            if problem.optimizer is None
            else {
                "kind": problem.optimizer.kind,
                "lr": _number(problem.optimizer.lr),  # inf: `lr=1e308 * 10`
                "momentum": _number(problem.optimizer.momentum),
                "nesterov": problem.optimizer.nesterov,
                "weight_decay": _number(problem.optimizer.weight_decay),
            },
            "rows_per_step": problem.rows_per_step,
            "steps": problem.total_steps,
        },
        "optimum": {
            "loss": _number(optimum.loss),
            "mse": _number(optimum.mse),
            "weights": _matrix(optimum.weights),
            "bias": _matrix(optimum.bias),
            "rank": optimum.rank,
            "condition": _number(optimum.condition),
            "method": optimum.method,
        },
        "curvature": {
            "eigenvalues": _matrix(shape.eigenvalues),
            "condition": _number(shape.condition),
            "stable_step": _number(shape.stable_step),
            "slowest_contraction": _number(shape.slowest_contraction),
            "standardized_condition": _number(shape.standardized_condition),
        },
        "reasons": [{"rule": reason_name(key), "why": why} for key, why in verdict.reasons],
    }
    if run is not None:
        data["script"] = {
            "final_loss": _number(verdict.final),
            "spread": None if verdict.spread is None else [_number(x) for x in verdict.spread],
            "excess": _number(verdict.excess),
            "excess_percent": _number(verdict.excess_percent),
            "parameter_error": _number(verdict.parameter_error),
            "slow_direction_progress": _number(verdict.slow_progress),
            "initialisations": int(run.final.size),
            "steps": run.steps,
            "simulated_steps": run.simulated_steps,
            "exact": run.exact,
            "extrapolated": run.extrapolated,
            "diverged": run.diverged,
            "sample_rows": run.sample_rows,
            "weights": _matrix(np.median(run.weights, axis=0)),
            "bias": _matrix(np.median(run.bias, axis=0)),
            "curve": {
                "epochs": _matrix(run.epochs),
                "loss": [_number(x) for x in np.median(run.losses, axis=0)],
            },
        }
    if verdict.observed_gap is not None:
        data["replay_vs_script_loss_gap"] = _number(verdict.observed_gap)
    if verdict.shape_fixed is not None:
        data["shape_fixed_final_loss"] = _number(np.median(verdict.shape_fixed.final))
    data["fixes"] = [_fix_json(fix) for fix in verdict.fixes]
    best = verdict.best
    data["best_fix"] = None if best is None else _fix_json(best)
    return data


def sampling_note(verdict) -> str | None:
    """What a replay of mini-batch training on a streamed file's sample stands for, or None
    when the replay used every row (or the closed form on the full data's sums)."""
    run, problem = verdict.replay, verdict.problem
    if run is None or run.sample_rows is None:
        return None
    text = (
        f"mini-batch training replayed on a uniform sample of {run.sample_rows:,} of "
        f"{problem.rows:,} rows; the steps are the script's ({problem.steps_per_epoch:,} per "
        f"epoch, batches of {problem.rows_per_step:,}, {run.steps:,} in all), each batch drawn "
        f"from the sample, and every loss is over all rows"
    )
    if run.extrapolated:
        text += f"; {run.simulated_steps:,} steps simulated, the rest extrapolated"
    return text


def _fix_json(fix) -> dict:
    return {
        "label": fix.label,
        "lr": fix.problem.optimizer.lr if fix.problem.optimizer else None,
        "epochs_to_optimum": _number(fix.epochs_needed),
        "optimum_loss": fix.optimum.loss,
        "final_loss": _number(np.median(fix.replay.final)) if fix.replay is not None else None,
        "keeps_model": fix.keeps_model,
        "weights": _matrix(fix.weights),
        "bias": _matrix(fix.bias),
    }


def concise_lines(reports) -> list[str]:
    """`path:line: probe: <summary>` per report."""
    lines = []
    for report in reports:
        if not report.judged and report.status != "failed":
            continue
        where = report.path
        if report.cell is not None:
            where += f":cell {report.cell}"
        if report.line is not None:
            where += f":{report.line}"
        lines.append(f"{where}: probe: {report.summary}")
    return lines


def panel(report):
    """A rich panel: the optimum against the script's result, weights side by side, the
    curvature, the reasons and the proven fix."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    where = report.path + (f":{report.line}" if report.line else "")
    verdict = report.verdict
    style = {"converged": "green", "not converged": "red", "diverged": "red"}.get(
        report.status, "yellow"
    )
    if verdict is None:
        return Text(f"probe · {where}: {report.summary}", style="dim")
    parts = [Text(report.summary, style="bold")]
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("lstsq optimum", justify="right")
    if verdict.replay is not None:
        table.add_column("the script", justify="right")
    best = verdict.best
    if best is not None:
        table.add_column("proven fix", justify="right")
    rows = _weight_rows(verdict, best)
    for row in rows:
        table.add_row(*row)
    parts.append(table)
    shape = verdict.curvature
    parts.append(
        Text(
            f"curvature: λ {figure(shape.eigenvalues[0])} … {figure(shape.eigenvalues[-1])}, "
            f"condition {figure(shape.condition)} (standardised: "
            f"{figure(shape.standardized_condition)}), stable lr < {figure(shape.stable_step)}",
            style="dim",
        )
    )
    for key, why in verdict.reasons:
        parts.append(Text.assemble(("why: ", "bold"), (f"[{reason_name(key)}] ", "cyan"), why))
    if best is not None:
        model = "" if best.keeps_model else " (adds a bias: a different, better model)"
        parts.append(
            Text.assemble(
                ("fix: ", "bold green"),
                f"{best.label}: the optimum {figure(best.optimum.loss)} within 1e-6 in "
                f"{int(best.epochs_needed)} epochs{model}; weights in your columns' units above",
            )
        )
    run = verdict.replay
    if run is not None:
        how = "exact (closed form)" if run.exact else "simulated"
        if run.sample_rows is not None:
            how += f" on a uniform sample of {run.sample_rows:,} of {verdict.problem.rows:,} rows"
        if run.extrapolated:
            how += f", {run.simulated_steps} of {run.steps} steps, the rest extrapolated"
        starts = f"{run.final.size} initialisations" if run.final.size > 1 else "the script's start"
        line = f"replay: {how}, {starts}"
        if verdict.observed_gap is not None:
            line += f"; matches the script's own loss curve to {figure(verdict.observed_gap)}"
        parts.append(Text(line, style="dim"))
    for note in report.notes:
        parts.append(Text(f"note: {note}", style="dim"))
    return Panel(Group(*parts), title=f"probe · {where}", title_align="left", border_style=style)


def _weight_rows(verdict, best) -> list[tuple[str, ...]]:
    optimum, run = verdict.optimum, verdict.replay
    rows: list[tuple[str, ...]] = [("loss", figure(optimum.loss))]
    if run is not None:
        rows[0] += (figure(verdict.final),)
    if best is not None:
        rows[0] += (figure(best.optimum.loss),)
    k = optimum.weights.shape[1]
    names = verdict.problem.feature_names
    for i in range(optimum.weights.shape[0]):
        for j in range(k):
            label = names[i] if names and i < len(names) else f"w[{i}]"
            if k > 1:
                label += f" → {j}"
            row: tuple[str, ...] = (label, figure(optimum.weights[i, j]))
            if run is not None:
                row += (figure(float(np.median(run.weights[:, i, j]))),)
            if best is not None:
                row += (figure(best.weights[i, j]),)
            rows.append(row)
    has_bias = verdict.problem.bias or (best is not None and not best.keeps_model)
    if has_bias:
        for j in range(k):
            row = ("bias" + (f" → {j}" if k > 1 else ""), figure(optimum.bias[j]))
            if run is not None:
                row += (figure(float(np.median(run.bias[:, j]))),)
            if best is not None:
                row += (figure(best.bias[j]),)
            rows.append(row)
    return rows


def reason_name(key: str) -> str:
    """A reason as users read it: its rule's name (reasons are keyed by rule ids), or the
    reason's own name where no rule stands for it."""
    from advisor.rules import find_rule

    rule = find_rule(key)
    return rule.name if rule is not None else key
