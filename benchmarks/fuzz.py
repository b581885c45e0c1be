"""Fuzz lr-advisor for longer than the tests do, over the same generators (tests/fuzz/).

    .venv/bin/python benchmarks/fuzz.py [--minutes M] [--seed S] [--out DIR]

Round after round, each kind of input (hypothesmith programs, mutated fixtures, bad bytes and
encodings, broken notebooks, the probe on damaged data) gets a batch of fresh examples; the
large and deep inputs are checked once, first; a few of each batch also go through the
installed command. Every check runs in a forked child, so that a crash in native code or a
hang is counted (and the child killed) instead of ending the run. Prints how many inputs of
each kind were tried, the crashes and hangs, and the slowest input; writes each failing
input to --out. Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

import generators  # noqa: E402
import harness  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as with_seed  # noqa: E402

BATCH = {"grammar": 20, "node": 10, "mutation": 40, "encoding": 40, "notebook": 30, "probe": 8}
COMMAND_EVERY = 20  # one input in this many also goes through the command
HARD_LIMIT = harness.TIME_LIMIT + 20  # a child still running then is killed: a hang


@dataclass
class Tally:
    tried: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    slowest: dict[str, tuple[float, str]] = field(default_factory=dict)
    out: Path = Path(".")

    def record(self, kind: str, seconds: float, note: str, failure: str | None, item) -> None:
        self.tried[kind] += 1
        if seconds > self.slowest.get(kind, (-1.0, ""))[0]:
            self.slowest[kind] = (seconds, note)
        if failure is not None:
            self.failed[kind].append(failure)
            self._save(kind, failure, item)
            print(f"  FAILED [{kind}] {failure[:400]}", flush=True)

    def _save(self, kind: str, failure: str, item) -> None:
        number = sum(len(v) for v in self.failed.values())
        base = self.out / f"{number:03d}-{kind}"
        if isinstance(item, generators.FuzzInput):
            base.with_suffix(Path(item.path).suffix).write_bytes(item.data)
        elif isinstance(item, generators.ProbeCase):
            base.mkdir(exist_ok=True)
            harness.write_case(item, base)
        base.with_suffix(".txt").write_text(failure + "\n", encoding="utf-8")


def isolated(check, *args) -> tuple[float, str | None]:
    """Run `check(*args)` (a harness check: returns seconds, raises FuzzFailure) in a forked
    child; (seconds, None) or (seconds, what went wrong), a native crash or hang included."""
    read, write = os.pipe()
    began = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            answer = {"seconds": check(*args), "failure": None}
        except harness.FuzzFailure as failure:
            answer = {"seconds": time.perf_counter() - began, "failure": str(failure)}
        except BaseException as error:  # the harness itself: report it all the same
            text = "".join(traceback.format_exception(error))
            answer = {"seconds": time.perf_counter() - began, "failure": f"harness: {text}"}
        with os.fdopen(write, "w") as pipe:
            json.dump(answer, pipe)
        os._exit(0)
    os.close(write)
    chunks = []
    with os.fdopen(read) as pipe:
        while True:
            left = HARD_LIMIT - (time.perf_counter() - began)
            ready, _, _ = select.select([pipe], [], [], max(0.0, left))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return HARD_LIMIT, f"hang: killed after {HARD_LIMIT:g} s"
            chunk = pipe.read()
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - began
    if os.WIFSIGNALED(status):
        return seconds, f"crash: the process died of signal {os.WTERMSIG(status)}"
    answer = json.loads("".join(chunks))
    return answer["seconds"], answer["failure"]


def _command(args: list[str], directory: Path) -> float:
    began = time.perf_counter()
    harness.run_command(args, directory)
    return time.perf_counter() - began


def _note(item) -> str:
    return f"{item.kind}: {item.note}"[:200]


def check_one(tally: Tally, kind: str, item, count: int, work: Path) -> None:
    with tempfile.TemporaryDirectory(dir=work) as folder:
        directory = Path(folder)
        if isinstance(item, generators.ProbeCase):
            seconds, failure = isolated(harness.check_probe, item, directory)
        else:
            seconds, failure = isolated(harness.check_static, item)
        tally.record(kind, seconds, _note(item), failure, item)
        if count % COMMAND_EVERY == 0:
            if isinstance(item, generators.ProbeCase):
                harness.write_case(item, directory)
                args = [item.script, "--format", "json"]
            else:
                (directory / item.path).write_bytes(item.data)
                args = [item.path]
            seconds, failure = isolated(_command, args, directory)
            tally.record("command", seconds, f"command on {_note(item)}", failure, item)


def run_batch(tally: Tally, kind: str, strategy, count: int, seed: int, work: Path) -> None:
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @with_seed(seed)
    @given(strategy)
    def batch(item) -> None:
        check_one(tally, kind, item, tally.tried[kind] + 1, work)

    batch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to fuzz (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="the first round's seed (default 0)")
    parser.add_argument("--out", type=Path, help="where failing inputs go (default: a temp dir)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    out = args.out or Path(tempfile.mkdtemp(prefix="lr-advisor-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    tally = Tally(out=out)
    deadline = time.monotonic() + 60 * args.minutes
    began = time.monotonic()

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, (path, make) in generators.LARGE.items():
            item = generators.FuzzInput("large", path, make(), name)
            with tempfile.TemporaryDirectory(dir=work) as each:
                seconds, failure = isolated(harness.check_file, item, Path(each))
            tally.record("large", seconds, name, failure, item)
        strategies = {
            "grammar": generators.programs("grammar"),
            "node": generators.programs("node"),
            "mutation": generators.mutations(),
            "encoding": generators.encodings(),
            "notebook": generators.notebooks(),
            "probe": generators.probe_cases(),
        }
        round_ = 0
        while time.monotonic() < deadline:
            for kind, strategy in strategies.items():
                if time.monotonic() >= deadline:
                    break
                run_batch(tally, kind, strategy, BATCH[kind], args.seed * 100_003 + round_, work)
            round_ += 1
            print(f"round {round_}: {sum(tally.tried.values())} inputs", flush=True)

    elapsed = time.monotonic() - began
    print(f"\n{sum(tally.tried.values())} inputs in {elapsed / 60:.1f} min (seed {args.seed})")
    print(f"{'kind':<10} {'tried':>6} {'crashes':>8} {'hangs':>6} {'other':>6} {'slowest':>9}")
    for kind in sorted(tally.tried):
        failures = tally.failed.get(kind, [])
        crashes = sum(f.startswith("crash") for f in failures)
        hangs = sum(f.startswith("hang") for f in failures)
        seconds, _ = tally.slowest[kind]
        print(
            f"{kind:<10} {tally.tried[kind]:>6} {crashes:>8} {hangs:>6} "
            f"{len(failures) - crashes - hangs:>6} {seconds:>8.2f}s"
        )
    kind, (seconds, note) = max(tally.slowest.items(), key=lambda kv: kv[1][0])
    print(f"slowest input: {seconds:.2f} s ({note})")
    if tally.failed:
        print(f"failing inputs written to {out}")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
