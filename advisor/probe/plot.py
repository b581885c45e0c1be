"""`--plot FILE.png`: the loss curves of the script and of the proven fix against the optimum,
on a log scale (matplotlib is an optional extra)."""

from __future__ import annotations

import numpy as np


class PlotError(Exception):
    """The plot cannot be written: matplotlib missing, nothing to draw, an unwritable path."""


def write_plot(reports, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("--plot needs matplotlib (pip install 'lr-advisor[plot]')") from None
    judged = [r for r in reports if r.verdict is not None and r.verdict.replay is not None]
    if not judged:
        raise PlotError("--plot: no training was replayed, nothing to draw")
    figure, axes = plt.subplots(len(judged), 1, figsize=(7, 3.2 * len(judged)), squeeze=False)
    for axis, report in zip(axes[:, 0], judged, strict=True):
        verdict = report.verdict
        optimum = verdict.optimum.loss
        scale = max(optimum, 1e-300)
        run = verdict.replay
        excess = np.median(run.losses, axis=0) - optimum
        axis.semilogy(
            np.maximum(run.epochs, 1e-1), np.maximum(excess / scale, 1e-16), label="the script"
        )
        best = verdict.best
        if best is not None and best.replay is not None:
            fixed = np.median(best.replay.losses, axis=0) - best.optimum.loss
            axis.semilogy(
                np.maximum(best.replay.epochs, 1e-1),
                np.maximum(fixed / max(best.optimum.loss, 1e-300), 1e-16),
                label="proven fix",
            )
        axis.axhline(1e-6, color="grey", linestyle=":", label="1e-6 of the optimum")
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlim(left=0)
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss above the optimum (relative)")
        axis.set_title(f"{report.path}" + (f":{report.line}" if report.line else ""))
        axis.legend()
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as error:
        raise PlotError(f"--plot {path}: {error}") from None
    finally:
        plt.close(figure)
