"""Parent side of `--run`: run a user's training script in a separate, limited process.

The script and the files next to it are copied into a fresh temporary folder (the user's tree is
never written), then run there by `python -m advisor.probe.instrument`, which records the
regression the script trains (see instrument.py and recorder.py). The child runs in its own
process group with a scrubbed environment, a wall-clock timeout (the whole group is killed),
and limits on memory and CPU time; whatever it captured before stopping comes back as a
`Problem`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from advisor.probe.capturefile import MEMORY_MARKERS, read_capture
from advisor.probe.problem import Problem
from advisor.probe.sandbox import Reaper, isolate, read_report

COPY_CAP = 200 << 20  # bytes of data files copied next to the script
SKIPPED_FOLDERS = frozenset(
    {"venv", "env", "__pycache__", "node_modules", "site-packages", "wandb", "mlruns"}
)
TAIL = 4000  # characters of stdout / stderr kept
GRACE = 3.0  # seconds between SIGTERM (the child writes its capture) and SIGKILL
THREADS = "1"  # math library threads: results do not depend on the machine's core count

# how running the script went: it gave a problem, failed, ran out of time or memory, or
# trained something the probe does not recognise as a linear regression
CaptureStatus = Literal["ok", "error", "timeout", "memory", "no-regression"]


@dataclass
class CaptureResult:
    """What running the script gave: a status, one line for the user, and the capture."""

    status: CaptureStatus
    message: str
    problem: Problem | None
    elapsed: float
    steps_seen: int
    stdout_tail: str
    stderr_tail: str
    # optimizers that stepped and moved none of their parameters: [(class name, steps)]
    unmoved: list[tuple[str, int]] = field(default_factory=list)
    sandbox: list[str] = field(default_factory=list)  # what containment the run had


@dataclass
class CopyReport:
    """What was copied next to the script, and what was left behind (over the cap)."""

    copied: int
    skipped: list[str]


def capture_run(
    script: Path,
    *,
    timeout: float = 60.0,
    memory_mb: int = 4096,
    args: Sequence[str] = (),
) -> CaptureResult:
    """Run `script` (with `args`) in a limited child process and capture its regression."""
    script = Path(script).resolve()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lr-advisor-run-") as temporary:
        root = Path(temporary)
        work = root / "work"
        work.mkdir()
        copy = copy_inputs(script, work)
        out = root / "capture.npz"
        stdout_path, stderr_path = root / "stdout.txt", root / "stderr.txt"
        command = [sys.executable]
        if sys.version_info >= (3, 11):
            command.append("-P")  # no implicit cwd entry: `advisor` comes from PYTHONPATH
        command += ["-m", "advisor.probe.instrument", str(out), str(work / script.name)]
        command += list(args)
        with (
            stdout_path.open("wb") as stdout,
            stderr_path.open("wb") as stderr,
            Reaper() as reaper,
        ):
            process = subprocess.Popen(
                command,
                cwd=work,
                env=child_environment(work),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=_limits(timeout, memory_mb, root, root / "sandbox.json"),
            )
            timed_out = _wait(process, timeout)
            reaper.stop_all(process.pid)  # what it started dies with it, even outside its group
        elapsed = time.monotonic() - began
        meta, problem = _read(out)
        sandbox = read_report(root / "sandbox.json")
        if reaper.refusal:
            sandbox.append(reaper.refusal)
        # tracebacks name the copy: show the user's own paths
        stdout_tail = _tail(stdout_path).replace(str(work), str(script.parent))
        stderr_tail = _tail(stderr_path).replace(str(work), str(script.parent))
    status, message = _verdict(
        meta, problem, process.returncode, timed_out, timeout, memory_mb, stderr_tail
    )
    if copy.skipped:
        shown = ", ".join(copy.skipped[:5]) + (", ..." if len(copy.skipped) > 5 else "")
        message += f" (not copied, over the {COPY_CAP >> 20} MB cap: {shown})"
    return CaptureResult(
        status=status,
        message=message,
        problem=problem,
        elapsed=elapsed,
        steps_seen=int(meta.get("steps", 0)),
        stdout_tail=stdout_tail,
        stderr_tail=stderr_tail,
        sandbox=sandbox,
        unmoved=[
            (str(o.get("kind")), int(o.get("steps", 0)))
            for o in meta.get("optimizers", [])
            if isinstance(o, dict) and o.get("steps") and not o.get("changed", True)
        ],
    )


def copy_inputs(script: Path, work: Path, cap: int = COPY_CAP) -> CopyReport:
    """Copy the script and the files beside it (and one level of sub-folders) into `work`.

    Hidden entries, virtual environments and caches are left out; files that would take the
    total over `cap` are skipped, smallest first being kept, and listed.
    """
    folder = script.parent
    shutil.copy2(script, work / script.name)
    files: list[tuple[int, int, Path]] = []
    for entry in _entries(folder):
        if entry.is_file() and entry != script:
            files.append((0, entry.stat().st_size, entry))
        elif entry.is_dir() and not entry.is_symlink() and not _skipped_folder(entry):
            files += [(1, e.stat().st_size, e) for e in _entries(entry) if e.is_file()]
    total = script.stat().st_size
    skipped: list[str] = []
    copied = 1
    for _, size, path in sorted(files, key=lambda f: (f[0], f[1], str(f[2]))):
        relative = path.relative_to(folder)
        if total + size > cap:
            skipped.append(str(relative))
            continue
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, target)
        except OSError:
            skipped.append(str(relative))
            continue
        total += size
        copied += 1
    return CopyReport(copied, skipped)


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError:
        return []


def _skipped_folder(folder: Path) -> bool:
    return folder.name in SKIPPED_FOLDERS or (folder / "pyvenv.cfg").exists()


def child_environment(work: Path) -> dict[str, str]:
    """A scrubbed environment: no user secrets or settings, `advisor` importable."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": THREADS,
        "MKL_NUM_THREADS": THREADS,
        "OPENBLAS_NUM_THREADS": THREADS,
    }
    if "LC_ALL" in os.environ:
        env["LC_ALL"] = os.environ["LC_ALL"]
    return env


def _limits(timeout: float, memory_mb: int, root: Path, report: Path) -> Any:
    """Resource limits, set in the child between fork and exec.

    Memory is bounded with RLIMIT_DATA (Linux >= 4.7 counts every private writable mapping:
    the heap, and the anonymous mmaps large tensors and arrays live in), not RLIMIT_AS: torch's
    shared libraries and the address ranges some builds reserve (CUDA reserves tens of GB,
    inaccessible) count against the address space but hold no data; the CPU build alone needs
    about 0.7 GB of address space after import while its data segment is about 0.2 GB. A hog
    then gets MemoryError or torch's "can't allocate memory", which the child reports. CPU time
    is bounded too (SIGXCPU, which the child handles like SIGTERM); no core files.
    """
    data = memory_mb << 20
    cpu = int(timeout * 2) + 10

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (data, data))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        isolate(root, report)  # network cut off, writes confined to the run's folder

    return apply


def _wait(process: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child; past `timeout`, stop its whole process group. True if it timed out."""
    try:
        process.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()
    _signal_group(process, signal.SIGKILL)  # DataLoader workers and other leftovers
    return True


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _read(out: Path) -> tuple[dict[str, Any], Problem | None]:
    if not out.exists():
        return {}, None
    try:
        return read_capture(out)
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL * 4))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return text[-TAIL:]


def _steps(meta: dict[str, Any]) -> str:
    steps = int(meta.get("steps", 0))
    kind = "manual update" if meta.get("step_kind") == "manual" else "optimizer step"
    if steps == 0:
        return "before any optimizer step"
    return f"after {steps} {kind}{'' if steps == 1 else 's'}"


def _verdict(
    meta: dict[str, Any],
    problem: Problem | None,
    returncode: int | None,
    timed_out: bool,
    timeout: float,
    memory_mb: int,
    stderr: str,
) -> tuple[CaptureStatus, str]:
    """The status and the one line the user reads."""
    end = meta.get("end")
    steps = _steps(meta)
    if not meta and not timed_out:
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
        return "error", f"the probe could not run the script (exit status {returncode}): {last}"
    if timed_out:
        return "timeout", f"the script ran out of its {timeout:g} s wall-clock limit {steps}"
    if end == "signal" and meta.get("signal") == "SIGXCPU":
        return "timeout", f"the script ran out of its CPU-time limit {steps}"
    if end == "no-torch":
        return "error", f"torch is not importable by {sys.executable}: {meta.get('message', '')}"
    if end == "exception":
        error = meta.get("exception", {})
        if error.get("memory"):
            return "memory", f"the script ran out of its {memory_mb} MB memory limit {steps}"
        where = f" (line {error['line']})" if error.get("line") else ""
        text = f"{error.get('type', 'Exception')}: {error.get('message', '')}".rstrip(": ")
        return "error", f"the script raised {text}{where} {steps}"
    if end == "exit" and meta.get("code"):
        return "error", f"the script exited with status {meta['code']} {steps}"
    if end not in ("ok", "exit"):
        if any(marker in stderr for marker in MEMORY_MARKERS) or "MemoryError" in stderr:
            return "memory", f"the script ran out of its {memory_mb} MB memory limit {steps}"
        if returncode is not None and returncode < 0:
            name = signal.Signals(-returncode).name
            if -returncode == signal.SIGKILL:
                return "memory", f"the script was killed ({name}, out of memory?) {steps}"
            return "error", f"the script was killed by {name} {steps}"
        return "error", f"the script stopped (exit status {returncode}) {steps}"
    if problem is None:
        reason = meta.get("reason") or "no linear regression training was seen"
        return "no-regression", reason
    loss = "mean" if problem.loss.mean else "sum"
    rule = problem.optimizer.kind if problem.optimizer is not None else "an unknown update rule"
    return "ok", (
        f"captured {problem.rows} rows x {problem.width} features -> {problem.outputs} "
        f"output{'s' if problem.outputs != 1 else ''}, {rule}, {loss} squared error, "
        f"{problem.steps} steps"
    )
