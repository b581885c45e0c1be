"""Child side of `--run`: run a training script under instrumentation and record its regression.

`python -m advisor.probe.instrument OUT SCRIPT [ARGS...]` runs SCRIPT as `__main__` (the way
`python SCRIPT ARGS` would) while watching, without changing anything it computes:

- a `TorchFunctionMode` sees every torch call: it tags tensors (by identity, through weak
  references) as a weight, a model's prediction, an error, a squared error or a batch taken from
  a larger tensor, so that at each `backward()` the loss tells which linear model, which inputs
  and which targets it came from, and how it was reduced;
- global optimizer step hooks give the optimizer, its hyperparameters, the weights before the
  first step and the number of steps; manual updates (`w -= lr * w.grad`) are measured by
  comparing the parameters after each backward with their values at the next one;
- DataLoader iterators are marked so that a batch leads back to its data set.

The hooks and the function mode are installed here; what they see goes to `recorder.Recorder`
(the records it keeps are in `records`, what they add up to in `analysis` and `dataset`).
The result is an `advisor.probe.problem.Problem`, written to OUT (an `.npz` file: `meta` holds
JSON, the other entries are arrays) at the start, periodically while the script trains, and at
the end, including on SIGTERM and SIGXCPU, so that a killed run still leaves a partial capture.
Nothing here may raise into the user's script: recording errors switch recording off.
"""

from __future__ import annotations

import contextlib
import runpy
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor.probe.capturefile import MEMORY_MARKERS
from advisor.probe.recorder import Recorder
from advisor.probe.records import Backward


def _install(rec: Recorder) -> list[Any]:
    """Hooks, the function mode and the DataLoader marker; returns what to undo."""
    from torch.nn.modules.module import register_module_forward_hook
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )
    from torch.overrides import TorchFunctionMode
    from torch.utils.data import dataloader

    def guarded(method: Any) -> Any:
        """Run a recording callback with recording off (its own torch calls are not the
        script's) and switch recording off for good if it fails."""

        def call(*args: Any) -> None:
            if not rec.enabled:
                return
            rec.enabled = False
            ok = False
            try:
                method(*args)
                ok = True
            except Exception:
                rec.internal_error = traceback.format_exc(limit=6)
            finally:
                rec.enabled = ok

        return call

    observe = guarded(rec.observe)

    class RecordingMode(TorchFunctionMode):
        """Sees every torch call; records around it, never changes it."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if rec.enabled and getattr(func, "__name__", "") == "backward" and args:
                loss = args[0]
                if isinstance(loss, (list, tuple)):
                    loss = loss[0] if len(loss) == 1 else None
                records: list[Backward | None] = []
                guarded(lambda: records.append(rec.before_backward(loss)))()
                out = func(*args, **kwargs)
                if records:
                    guarded(rec.after_backward)(records[0])
                return out
            out = func(*args, **kwargs)
            if rec.enabled:
                observe(func, args, kwargs, out)
            return out

    handles = [
        register_optimizer_step_pre_hook(guarded(rec.pre_step)),
        register_optimizer_step_post_hook(guarded(rec.post_step)),
        register_module_forward_hook(guarded(rec.on_module)),
    ]
    base = dataloader._BaseDataLoaderIter
    original_next = base.__next__
    mark = guarded(rec.on_loader_batch)

    def marked_next(self: Any) -> Any:
        batch = original_next(self)
        mark(self, batch)
        return batch

    base.__next__ = marked_next  # type: ignore[method-assign]
    mode = RecordingMode()
    mode.__enter__()
    undo: list[Any] = [lambda: mode.__exit__(None, None, None)]
    undo += [handle.remove for handle in handles]
    undo.append(lambda: setattr(base, "__next__", original_next))
    return undo


def _exception_line(error: BaseException, script: Path) -> dict[str, Any]:
    """The exception as one line, the script's own last frame and the formatted traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    line = None
    for frame in frames:
        if Path(frame.filename).resolve() == script.resolve():
            line = frame.lineno
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    memory = isinstance(error, MemoryError) or any(m in str(error) for m in MEMORY_MARKERS)
    return {
        "type": type(error).__name__,
        "message": message[:500],
        "line": line,
        "traceback": text[-4000:],
        "memory": memory,
    }


def _print_user_traceback(error: BaseException) -> None:
    """The traceback as `python SCRIPT` would print it: without runpy's and the recorder's
    frames."""
    here = str(Path(__file__).resolve())
    report = traceback.TracebackException.from_exception(error)
    kept = [f for f in report.stack if f.filename != here and "runpy" not in f.filename]
    report.stack = traceback.StackSummary.from_list(kept)
    print("".join(report.format()), end="", file=sys.stderr)


def run(out: Path, script: Path, args: Sequence[str]) -> int:
    """Run `script` as __main__ under the recorder; returns the process exit code."""
    rec = Recorder(out, script)
    rec.write()
    try:
        import torch  # noqa: F401
    except ImportError as error:
        rec.end = {"end": "no-torch", "message": str(error)}
        rec.write()
        return 3
    signal.signal(signal.SIGTERM, rec.stop)
    signal.signal(signal.SIGXCPU, rec.stop)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.parent))
    code = 0
    undo = _install(rec)
    try:
        runpy.run_path(str(script), run_name="__main__")
        rec.end = {"end": "ok"}
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        rec.end = {"end": "exit", "code": code}
    except BaseException as error:  # the script's own failure, reported to the parent
        memory = isinstance(error, MemoryError)
        try:
            rec.end = {"end": "exception", "exception": _exception_line(error, script)}
            _print_user_traceback(error)
        except MemoryError:
            rec.end = {"end": "exception", "exception": {"type": type(error).__name__}}
        rec.end["exception"]["memory"] = memory or rec.end["exception"].get("memory", False)
        traceback.clear_frames(error.__traceback__)
        del error
        code = 1
    finally:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()
    import gc

    gc.collect()
    rec.enabled = False
    rec.write()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) < 2:
        print("usage: python -m advisor.probe.instrument OUT SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    out, script = Path(arguments[0]).resolve(), Path(arguments[1]).resolve()
    return run(out, script, arguments[2:])


if __name__ == "__main__":
    sys.exit(main())
