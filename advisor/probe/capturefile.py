"""The capture file of `--run`: what the instrumented child writes and the parent reads.

An `.npz` file: `meta` holds JSON (how the run ended, its steps, the problem's settings), the
other entries are the problem's arrays. Written atomically, read without pickles (the file
comes from a user's run).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from advisor.probe.problem import Loss, Optimizer, Problem

# words in an error's message that say the run ran out of memory (the child's and the parent's)
MEMORY_MARKERS = (
    "can't allocate memory",
    "Cannot allocate memory",
    "not enough memory",
    "out of memory",
    "bad_alloc",
)


def write_capture(out: Path, meta: dict[str, Any], problem: Problem | None) -> None:
    """Write meta and problem to `out` atomically (a temporary file, then a rename)."""
    arrays: dict[str, np.ndarray] = {}
    if problem is not None:
        meta = dict(meta)
        meta["problem"] = {
            "bias": problem.bias,
            "loss": {
                "mean": problem.loss.mean,
                "factor": problem.loss.factor,
                "broadcast": problem.loss.broadcast,
            },
            "optimizer": None if problem.optimizer is None else _optimizer_json(problem.optimizer),
            "batch": problem.batch,
            "shuffle": problem.shuffle,
            "drop_last": problem.drop_last,
            "epochs": problem.epochs,
            "steps": problem.steps,
            "init": problem.init,
            "source": problem.source,
            "notes": problem.notes,
        }
        arrays["features"] = problem.features
        arrays["targets"] = problem.targets
        if problem.initial is not None:
            arrays["initial_w"], arrays["initial_b"] = problem.initial
        if problem.final_params is not None:
            arrays["final_w"], arrays["final_b"] = problem.final_params
        if problem.observed_losses is not None:
            arrays["observed_losses"] = problem.observed_losses
    buffer = io.BytesIO()
    # numpy's stubs type every keyword of savez as its allow_pickle flag; these are arrays
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_bytes(buffer.getvalue())
    os.replace(temporary, out)


def _optimizer_json(optimizer: Optimizer) -> dict[str, Any]:
    data = asdict(optimizer)
    data["betas"] = list(optimizer.betas)
    return data


def read_capture(path: Path) -> tuple[dict[str, Any], Problem | None]:
    """Read what `write_capture` wrote (no pickles: the file comes from a user's run)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        stored = meta.get("problem")
        if stored is None:
            return meta, None
        arrays = {name: np.array(data[name]) for name in data.files if name != "meta"}
    optimizer = stored["optimizer"]
    if optimizer is not None:
        known = {f.name for f in fields(Optimizer)}
        values = {key: value for key, value in optimizer.items() if key in known}
        values["betas"] = tuple(values.get("betas", (0.9, 0.999)))
        optimizer = Optimizer(**values)
    initial = (arrays["initial_w"], arrays["initial_b"]) if "initial_w" in arrays else None
    final = (arrays["final_w"], arrays["final_b"]) if "final_w" in arrays else None
    problem = Problem(
        features=arrays["features"],
        targets=arrays["targets"],
        bias=bool(stored["bias"]),
        loss=Loss(**stored["loss"]),
        optimizer=optimizer,
        batch=stored["batch"],
        shuffle=bool(stored["shuffle"]),
        drop_last=bool(stored["drop_last"]),
        epochs=stored["epochs"],
        steps=stored["steps"],
        init=stored["init"],
        initial=initial,
        source=stored["source"],
        notes=list(stored["notes"]),
        observed_losses=arrays.get("observed_losses"),
        final_params=final,
    )
    return meta, problem
