"""Many files: the same results for any number of jobs and with or without the cache (cold,
then warm), a cache that two runs can share and that survives corruption, a cache key that
follows everything a result depends on, and a size limit that bounds a worker's memory.

The end-to-end tests run the installed `lr-advisor` command over a copy of fixtures/ plus a
generated corpus of variants of a typical training script."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from advisor import cache as cache_module
from advisor.pipeline import check_bytes
from advisor.runner import RunOptions, check_paths
from advisor.syntax_size import MAX_SYNTAX_NODES, count_nodes, syntax_nodes_at_least

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).parent / "lr-advisor"
CACHE = cache_module.CACHE_DIR
TYPICAL = ROOT / "benchmarks" / "data" / "typical_train.py"

# Edits that give the typical (clean) script a known bug, applied in turn.
BUGS = (
    ("        optimizer.zero_grad()\n", ""),  # missing-zero-grad
    ("loss = F.mse_loss(pred, yb)", "loss = F.mse_loss(yb, pred)"),  # loss-argument-order
    ("running += loss.item()", "running += loss"),  # accumulated-loss-tensor
    ("        pred = model(xb)\n", "        pred = model(xb)\n        pred.squeeze()\n"),
    ("", ""),  # clean
)


def variant(text: str, index: int) -> str:
    old, new = BUGS[index % len(BUGS)]
    text = text.replace(old, new) if old else text
    if index % 7 == 3:
        text = text.replace("loss.backward()", "loss.backward()  # noqa: LRA101")
    return f"# generated variant {index}\n{text.replace('train_one_epoch', f'epoch_{index}')}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fixtures/ (copied) and 36 generated scripts: buggy, clean, a test file, a syntax
    error, undecodable bytes, an empty file, one suppressed whole."""
    root = tmp_path_factory.mktemp("scale")
    shutil.copytree(ROOT / "fixtures", root / "fixtures")
    generated = root / "generated"
    source = TYPICAL.read_text()
    for index in range(32):
        path = generated / f"group_{index % 4}" / f"train_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(variant(source, index))
    (generated / "test_variant.py").write_text(variant(source, 3))  # a test: no LRA404
    (generated / "broken.py").write_text("import torch\nfor x in :\n    pass\n")
    (generated / "latin1.py").write_bytes(b"import torch\nname = '\xe9'\n")
    (generated / "empty.py").write_text("")
    (generated / "ignored.py").write_text("# lr-advisor: ignore-file\n" + variant(source, 0))
    return root


def lint(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), "--static", "--format", "json", *args, "fixtures", "generated"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def baseline(corpus: Path) -> subprocess.CompletedProcess[str]:
    """One process, no cache: the reference every other run must match byte for byte."""
    completed = lint(corpus, "--no-cache", "--jobs", "1")
    assert completed.returncode == 1, completed.stderr
    report = json.loads(completed.stdout)
    assert len(report["findings"]) > 100  # the comparison is worth something
    assert {f["id"] for f in report["findings"]} >= {"LRA101", "LRA104", "LRA402", "LRA404"}
    assert {e["path"] for e in report["errors"]} >= {
        os.path.join("generated", "broken.py"),
        os.path.join("generated", "latin1.py"),
    }
    return completed


def same(completed: subprocess.CompletedProcess[str], baseline) -> None:
    assert completed.stderr == baseline.stderr
    assert completed.returncode == baseline.returncode
    assert completed.stdout == baseline.stdout  # same findings, same order, same JSON


@pytest.mark.parametrize("jobs", ["2", "4"])
def test_any_number_of_jobs_gives_the_same_report(corpus: Path, baseline, jobs: str) -> None:
    same(lint(corpus, "--no-cache", "--jobs", jobs), baseline)


def test_cold_and_warm_cache_give_the_same_report(corpus: Path, baseline) -> None:
    shutil.rmtree(corpus / CACHE, ignore_errors=True)
    same(lint(corpus, "--jobs", "2"), baseline)  # cold: fills the cache
    assert (corpus / CACHE / "results.json").is_file()
    same(lint(corpus, "--jobs", "4"), baseline)  # warm
    same(lint(corpus, "--jobs", "1"), baseline)


def test_a_warm_run_imports_neither_libcst_nor_the_rules(corpus: Path) -> None:
    command = [sys.executable, "-X", "importtime", "-m", "advisor", "--static", "generated"]
    cold = subprocess.run([*command, "--no-cache"], cwd=corpus, capture_output=True, text=True)
    subprocess.run(command, cwd=corpus, capture_output=True, check=False)  # fill the cache
    warm = subprocess.run(command, cwd=corpus, capture_output=True, text=True, timeout=120)
    assert warm.stdout == cold.stdout and "LRA101" in warm.stdout
    imported = {line.split("|")[-1].strip() for line in warm.stderr.splitlines()}
    assert "advisor.cache" in imported  # the cache was used
    assert "libcst" not in imported and "advisor.rules" not in imported
    assert "libcst" in {line.split("|")[-1].strip() for line in cold.stderr.splitlines()}


def test_two_concurrent_runs_share_one_cache(corpus: Path, baseline) -> None:
    shutil.rmtree(corpus / CACHE, ignore_errors=True)
    for _ in range(2):  # both cold, then both warm
        command = [str(COMMAND), "--static", "--format", "json", "fixtures", "generated"]
        runs = [
            subprocess.Popen(
                [*command, "--jobs", jobs], cwd=corpus, stdout=PIPE, stderr=PIPE, text=True
            )
            for jobs in ("1", "2")
        ]
        for run in runs:
            stdout, stderr = run.communicate(timeout=120)
            assert (run.returncode, stderr, stdout) == (1, "", baseline.stdout)
        document = json.loads((corpus / CACHE / "results.json").read_bytes())
        assert document["entries"]  # whole, and filled
    same(lint(corpus, "--jobs", "2"), baseline)


def test_runs_saving_one_after_the_other_keep_each_others_entries(tmp_path: Path) -> None:
    """Two runs open the cache before either saves: the second save merges, loses nothing."""
    first = cache_module.Cache.open(tmp_path)
    second = cache_module.Cache.open(tmp_path)
    first.put("a" * 40, [], [])
    second.put("b" * 40, [], [])
    first.save()
    second.save()
    merged = cache_module.Cache.open(tmp_path)
    assert merged.get("a" * 40, "x.py") == ([], []) and merged.get("b" * 40, "x.py") == ([], [])


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": 2, "fingerprint": ',  # cut short
        b"\x00\xff garbage \xfe",
        b"[" * 100_000 + b"]" * 100_000,  # too deep for the JSON parser
        b'{"format": 2, "fingerprint": "FP", "rules": [["LRA101"]], "entries": {"K": 1},'
        b' "files": {"P": "x"}}',  # this tool's, with every part of the wrong shape
        b'{"format": 2, "fingerprint": "FP", "rules": 3, "entries": [], "files": []}',
    ],
    ids=["truncated", "binary", "deep", "bad-parts", "bad-types"],
)
def test_a_corrupt_cache_file_is_ignored(corpus: Path, baseline, content: bytes) -> None:
    lint(corpus)
    results = corpus / CACHE / "results.json"
    document = json.loads(results.read_bytes())
    results.write_bytes(content.replace(b"FP", document["fingerprint"].encode()))
    (corpus / CACHE / ".results-leftover").write_text("{")  # a crashed run's temporary
    same(lint(corpus, "--jobs", "2"), baseline)
    same(lint(corpus, "--jobs", "2"), baseline)  # and it was rewritten whole
    json.loads(results.read_bytes())


def test_corrupt_entries_are_misses_not_crashes(corpus: Path, baseline) -> None:
    lint(corpus)
    results = corpus / CACHE / "results.json"
    document = json.loads(results.read_bytes())
    for index, key in enumerate(document["entries"]):
        document["entries"][key] = [
            {"findings": [{"line": "x"}], "errors": [], "used": 0},
            {"findings": "no", "errors": None},
            {"findings": [{"fix": {"edits": 3}}], "errors": []},
            [],
        ][index % 4]
    results.write_text(json.dumps(document))
    same(lint(corpus, "--jobs", "2"), baseline)


# -- what a cached result depends on (in process: fast, and the counts are visible) ----------


def run(tmp_path: Path, **changes) -> object:
    options = {"use_cache": True, "jobs": 1, "cache_dir": str(tmp_path / CACHE)}
    options.update(changes)
    return check_paths([str(tmp_path / "src")], RunOptions(**options))


def findings(result) -> list[tuple]:
    return [(os.path.basename(f.path), f.line, f.rule_id, f.message) for f in result.findings]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_an_unchanged_old_file_is_neither_read_nor_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import advisor.runner

    monkeypatch.setattr(cache_module, "STAT_MIN_AGE_NS", 0)  # the files count as old
    clean = variant(TYPICAL.read_text(), 4)
    swapped = clean.replace("F.mse_loss(pred, yb)", "F.mse_loss(yb, pred)")
    assert swapped != clean and len(swapped) == len(clean)
    script = write(tmp_path / "src" / "train.py", swapped)
    first = run(tmp_path)
    assert first.parsed == 1 and [f[2] for f in findings(first)] == ["LRA402"]
    reads: list[str] = []
    real = advisor.runner.read_bytes
    monkeypatch.setattr(advisor.runner, "read_bytes", lambda p: reads.append(p) or real(p))
    second = run(tmp_path)
    assert (second.cached, reads) == (1, [])
    assert findings(second) == findings(first)

    # same size, same mtime, other bytes: ctime moved, so it is read and checked again
    stat = script.stat()
    script.write_text(clean)
    assert script.stat().st_size == stat.st_size
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    third = run(tmp_path)
    assert reads == [str(script)] and third.parsed == 1
    assert findings(third) == []


def test_a_recently_changed_file_is_always_read(tmp_path: Path, monkeypatch) -> None:
    import advisor.runner

    write(tmp_path / "src" / "train.py", variant(TYPICAL.read_text(), 0))
    run(tmp_path)
    reads: list[str] = []
    real = advisor.runner.read_bytes
    monkeypatch.setattr(advisor.runner, "read_bytes", lambda p: reads.append(p) or real(p))
    assert run(tmp_path).cached == 1 and len(reads) == 1  # hashed: its stat is too recent


def test_the_configuration_and_the_tool_version_are_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "src" / "train.py", variant(TYPICAL.read_text(), 0))
    first = run(tmp_path)
    assert "LRA101" in {f.rule_id for f in first.findings}
    write(tmp_path / "src" / "pyproject.toml", '[tool.lr-advisor]\nignore = ["LRA101"]\n')
    ignored = run(tmp_path)
    assert ignored.cached == 0 and "LRA101" not in {f.rule_id for f in ignored.findings}
    write(tmp_path / "src" / "pyproject.toml", '[tool.lr-advisor]\nselect = ["LRA1", "LRA4"]\n')
    assert run(tmp_path).cached == 0  # another selection of rules
    assert run(tmp_path).cached == 1
    monkeypatch.setattr(cache_module, "__version__", "0.0.0-other")
    again = run(tmp_path)
    assert again.cached == 0 and findings(again) == findings(first)


def test_a_result_that_depends_on_the_file_name_is_cached_under_it(tmp_path: Path) -> None:
    text = "import torch\nx = torch.ones(3)\nfor i in range(3):\n    x.squeeze()\n"
    write(tmp_path / "src" / "train.py", text)
    assert [f[2] for f in findings(run(tmp_path))] == ["LRA404"]
    write(tmp_path / "src" / "test_train.py", text)  # the same bytes in a test: expected
    result = run(tmp_path)
    assert [f[:3] for f in findings(result)] == [("train.py", 4, "LRA404")]


def test_a_result_that_depends_on_a_data_file_follows_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = ROOT / "fixtures" / "rules" / "loss-shape-broadcast"
    (tmp_path / "src").mkdir()
    shutil.copy(folder / "bad_loadtxt_single_column_target.py", tmp_path / "src" / "train.py")
    without = run(tmp_path)
    assert "LRA202" not in {f.rule_id for f in without.findings}  # no data, no shapes
    shutil.copy(folder / "houses.csv", tmp_path / "src" / "houses.csv")
    with_data = run(tmp_path)
    assert with_data.cached == 0 and "LRA202" in {f.rule_id for f in with_data.findings}
    assert run(tmp_path).cached == 0  # the data changed too recently to trust its stat
    monkeypatch.setattr(cache_module, "STAT_MIN_AGE_NS", 0)
    run(tmp_path)
    again = run(tmp_path)
    assert again.cached == 1 and findings(again) == findings(with_data)
    (tmp_path / "src" / "houses.csv").unlink()
    gone = run(tmp_path)
    assert gone.cached == 0 and findings(gone) == findings(without)


# -- a worker's memory -----------------------------------------------------------------------

TRICKY = [
    "match x:\n    case Point(x=0, y=[1, *rest]) | {'k': v, **kw} if a > -1:\n        pass\n",
    "class C(B, metaclass=M):\n    def f[T](self, a: list[int] = [], *b, **c) -> d[e]: ...\n"
    if sys.version_info >= (3, 12)
    else "class C(B, metaclass=M):\n    def f(self, a: list[int] = [], *b, **c) -> d[e]: ...\n",
    "from . import (a, b as c)\nimport x.y.z as w, q\nglobal g, h\n",
    "f'{a!r:>{w}}{{x}}' f\"{d['k']}\" 'plain' b'raw'\nx = f'{ {1: 2} }'\n",
    "x[1:2, ::3, lambda: 0, a[b:c]:d]\ny = (lambda a, *b: a)(())()\n",
    "try:\n    pass\nexcept* E as e:\n    raise X from e\nelse:\n    x = not a is not b\n",
    "async def f():\n    async with a as (b, c):\n        await (yield)\n"
    "    x = [i async for i in y]\n",
    "x = -~+1 if a else (b := ...)\nx //= 2; del x; assert x, 'm'\n",
]


def test_the_token_count_never_exceeds_the_node_count() -> None:
    """syntax_nodes_at_least may refuse a file without parsing it: it must be a lower
    bound of what `ast.walk` counts, on this project's sources and on odd syntax."""
    texts = list(TRICKY)
    for folder in ("advisor", "rules", "tests", "fixtures", "benchmarks"):
        texts.extend(p.read_text(encoding="utf-8") for p in sorted((ROOT / folder).rglob("*.py")))
    checked = 0
    for text in texts:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        exact = count_nodes(tree)
        assert exact == sum(1 for _ in ast.walk(tree))
        assert syntax_nodes_at_least(text, 10**9) <= exact, text[:200]
        checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    "line",
    ["x = " + "-" * 60 + "a\n", "f()" * 20 + "\n", "a[" + ":," * 20 + "]\n"],
    ids=["unary", "calls", "slices"],
)
def test_a_pathological_file_is_refused_in_bounded_memory(line: str) -> None:
    """2 MB of these make millions of syntax nodes: Python's tree alone took gigabytes."""
    code = (
        "import sys\n"
        "from advisor.pipeline import check_bytes\n"
        f"text = 'import torch\\n' + {line!r} * ({2 * 1024 * 1024} // {len(line)})\n"
        "(error,) = check_bytes(text, 'big.py').errors\n"
        "print(error.message)\n"
        # VmHWM: this process's own peak; ru_maxrss would carry pytest's from the fork
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(int(status.split()[0]) // 1024)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    message, peak_mb = completed.stdout.splitlines()
    assert message.startswith("too large to check (at least ")
    assert message.endswith(f"syntax nodes > {MAX_SYNTAX_NODES:,}), skipped")
    assert int(peak_mb) < 250


def test_a_large_file_under_the_limit_is_still_checked() -> None:
    text = "import torch\n" + '"""' + "words " * 200_000 + '"""\n' + "x = torch.ones(3)\n"
    assert len(text) > 1024 * 1024 and not check_bytes(text, "docs.py").errors
