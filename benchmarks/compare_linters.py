"""lr-advisor against TorchFix, Fixit, pylint and ruff on the same files, one cold run each.

    .venv/bin/python benchmarks/compare_linters.py [--bin DIR] [--skip pylint] [--timeout S]

The corpus needs no network: the `.py` files of the installed torch package (a few thousand
files of real, varied PyTorch code) and this project's fixtures/, copied into a temporary
folder so that no tool finds a configuration or a cache of its own there. Each tool runs as
a fresh process with its default rules and all cores where it has an option for it:

- `lr-advisor --static --no-cache` (cold), then a warm re-check of the unchanged tree (the
  cache filled by one run first; the median of 5 runs);
- `torchfix`, `fixit lint`, `pylint --jobs 0`, `ruff check --no-cache --isolated`.

For each it prints the wall time, the peak memory of its largest process (a worker's, for
the tools that fork) and of all its processes together (sampled from /proc every 20 ms),
and the ratio of its time to lr-advisor's cold time. Tools are looked up in `--bin`, then
next to this Python, then on PATH; one not installed is listed as such (`pip install
-e .[bench]` installs them). It prints figures and asserts nothing: timings never pass or
fail tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# Runs one command in a child, waits for it, and prints its wall time and the peak RSS of the
# largest process it waited for (the kernel's ru_maxrss of the children): measured in a
# process of its own so that one tool's figure never carries another's.
MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"wall": wall, "largest": peak, "code": code}))
"""


@dataclass
class Measure:
    wall: float  # seconds
    largest: int  # bytes: the peak RSS of its largest process
    total: int  # bytes: the peak of the sum of its processes' RSS (sampled)
    code: int | None  # exit status; None when it was stopped at the timeout


def _tree_rss(root: int) -> int:
    """The resident memory of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    total, frontier = 0, [root]
    seen = set()
    while frontier:
        pid = frontier.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += rss.get(pid, 0)
        frontier.extend(child for child, parent in parents.items() if parent == pid)
    return total


def measure(command: list[str], cwd: Path, timeout: float) -> Measure:
    process = subprocess.Popen(
        [sys.executable, "-c", MEASURE, *command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started = time.perf_counter()
    total = 0
    while process.poll() is None:
        if time.perf_counter() - started > timeout:
            os.killpg(process.pid, 9)
            process.wait()
            return Measure(time.perf_counter() - started, 0, total, None)
        if os.path.isdir("/proc"):
            total = max(total, _tree_rss(process.pid))
        time.sleep(0.02)
    figures = json.loads(process.stdout.read() if process.stdout else "{}")
    return Measure(figures["wall"], figures["largest"], total, figures["code"])


def find_tool(name: str, bin_dir: Path | None) -> str | None:
    for folder in (bin_dir, Path(sys.executable).parent):
        if folder is not None and (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def copy_corpus(destination: Path) -> tuple[int, int]:
    """torch's .py files and fixtures/ under `destination`; the number of .py files and of
    all files copied."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed in this Python: pip install -e .[probe]")
    torch_dir = Path(next(iter(spec.submodule_search_locations)))
    python_files = 0
    for source in torch_dir.rglob("*.py"):
        target = destination / "torch" / source.relative_to(torch_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        python_files += 1
    shutil.copytree(ROOT / "fixtures", destination / "fixtures")
    fixtures = [p for p in (destination / "fixtures").rglob("*") if p.is_file()]
    python_files += sum(1 for p in fixtures if p.suffix == ".py")
    return python_files, python_files + sum(1 for p in fixtures if p.suffix != ".py")


def mb(size: int) -> str:
    return f"{size / 2**20:,.0f}" if size else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, help="folder holding the other tools' commands")
    parser.add_argument("--skip", action="append", default=[], help="a tool not to run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per tool at most")
    args = parser.parse_args()

    advisor = find_tool("lr-advisor", None)
    if advisor is None:
        sys.exit("lr-advisor not found: install the project first (pip install -e .)")
    tools = {
        "lr-advisor": [advisor, "--static", "--no-cache", "--format", "json"],
        "torchfix": ["torchfix"],
        "fixit": ["fixit", "lint"],
        "pylint": ["pylint", "--jobs", "0", "--exit-zero"],
        "ruff": ["ruff", "check", "--no-cache", "--isolated", "--exit-zero"],
    }
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="lra-compare-") as temporary:
        root = Path(temporary)
        python_files, all_files = copy_corpus(root)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(
            f"python {sys.version.split()[0]}, {cores} cores; corpus: {python_files:,} .py "
            f"files ({all_files:,} files, {size / 2**20:.1f} MB): torch's sources + fixtures/"
        )
        targets = ["torch", "fixtures"]
        rows: list[tuple[str, Measure | None, str]] = []
        for name, command in tools.items():
            if name in args.skip:
                continue
            executable = command[0] if name == "lr-advisor" else find_tool(command[0], args.bin)
            if executable is None:
                rows.append((name, None, "not installed"))
                continue
            figures = measure([executable, *command[1:], *targets], root, args.timeout)
            rows.append((name, figures, "cold"))
            print(f"  ran {name}: {figures.wall:.1f} s", file=sys.stderr, flush=True)

        warm_command = [advisor, "--static", "--format", "json", *targets]
        measure(warm_command, root, args.timeout)  # fills the cache (in the temporary cwd)
        warm_runs = [measure(warm_command, root, args.timeout) for _ in range(5)]
        middle = statistics.median(run.wall for run in warm_runs)
        warm = min(warm_runs, key=lambda run: abs(run.wall - middle))
        rows.insert(1, ("lr-advisor", warm, "warm, unchanged tree (median of 5)"))

    cold = rows[0][1]
    print(
        f"{'tool':<11} {'run':<36} {'seconds':>9} {'x lr-advisor':>13} "
        f"{'largest MB':>11} {'all MB':>8} {'exit':>5}"
    )
    for name, figures, label in rows:
        if figures is None:
            print(f"{name:<11} {label}")
            continue
        if figures.code is None:
            print(f"{name:<11} {label:<36} {'>' + format(figures.wall, '.0f'):>9} (stopped)")
            continue
        ratio = figures.wall / cold.wall if cold and cold.wall else float("nan")
        print(
            f"{name:<11} {label:<36} {figures.wall:9.2f} {ratio:13.2f} "
            f"{mb(figures.largest):>11} {mb(figures.total):>8} {figures.code:>5}"
        )
    torchfix = next((m for n, m, _ in rows if n == "torchfix" and m and m.code is not None), None)
    if cold and torchfix:
        print(f"lr-advisor cold is {torchfix.wall / cold.wall:.1f}x faster than TorchFix cold")
    if cold:
        print(
            f"warm re-check of the unchanged tree: {warm.wall:.3f} s "
            f"({cold.wall / warm.wall:.0f}x faster than cold)"
        )


if __name__ == "__main__":
    main()
