"""How fast is the static path? Prints median wall times and ratios to `import libcst`.

    .venv/bin/python benchmarks/static_speed.py [--runs N] [--files N]

Measures, each as a fresh process (what a user or pre-commit pays):
- `python -c "import libcst"`, the floor every libcst-based linter stands on;
- `lr-advisor --static --no-cache` on one typical ~100-line training script;
- the same on a folder of generated variants of it (some buggy), all cores;
- a second, cached run over that folder.
It prints figures; it asserts nothing (timings never pass or fail tests).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TYPICAL = HERE / "data" / "typical_train.py"
COMMAND = Path(sys.executable).parent / "lr-advisor"

# Edits that turn the clean script into one with a known pitfall, applied in turn.
BUGS = (
    ("        optimizer.zero_grad()\n", ""),  # missing-zero-grad
    ("loss = F.mse_loss(pred, yb)", "loss = F.mse_loss(yb, pred)"),  # loss-argument-order
    ("running += loss.item()", "running += loss"),  # accumulated-loss-tensor
    ("", ""),  # clean
)


def variant(text: str, index: int) -> str:
    old, new = BUGS[index % len(BUGS)]
    text = text.replace(old, new) if old else text
    text = text.replace("train_one_epoch", f"train_one_epoch_{index}")
    return f"# generated variant {index}\n{text}"


def median_time(command: list[str], runs: int, cwd: Path) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measurement (median)")
    parser.add_argument("--files", type=int, default=400, help="generated scripts in the folder")
    args = parser.parse_args()
    if not COMMAND.exists():
        sys.exit(f"{COMMAND} not found: install the project first (pip install -e .)")

    source = TYPICAL.read_text()
    with tempfile.TemporaryDirectory(prefix="lra-bench-") as temporary:
        root = Path(temporary)
        folder = root / "scripts"
        for index in range(args.files):
            path = folder / f"group_{index % 10}" / f"train_{index}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(variant(source, index))

        floor = median_time([sys.executable, "-c", "import libcst"], args.runs, root)
        one = median_time([str(COMMAND), "--static", "--no-cache", str(TYPICAL)], args.runs, root)
        folder_runs = max(3, args.runs // 2)
        many = median_time([str(COMMAND), "--static", "--no-cache", str(folder)], folder_runs, root)
        subprocess.run(  # fill the cache (in the temporary folder: it is the cwd)
            [str(COMMAND), "--static", str(folder)], cwd=root, stdout=subprocess.DEVNULL
        )
        cached = median_time([str(COMMAND), "--static", str(folder)], folder_runs, root)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {sys.version.split()[0]}, {cores} cores, median of {args.runs} runs")
    print(f"{'what':<46} {'seconds':>8} {'x import libcst':>16}")
    rows = (
        ("python -c 'import libcst'", floor),
        (f"lr-advisor --static --no-cache (1 file, {len(source.splitlines())} lines)", one),
        (f"lr-advisor --static --no-cache ({args.files} files)", many),
        (f"lr-advisor --static, cached ({args.files} files)", cached),
    )
    for label, seconds in rows:
        print(f"{label:<46} {seconds:8.3f} {seconds / floor:16.2f}")
    print(f"per file, uncached: {1000 * (many - floor) / args.files:.1f} ms over the floor")


if __name__ == "__main__":
    main()
