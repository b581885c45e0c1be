"""The real-code corpus: write its manifest from local git mirrors, or rebuild its files.

    .venv/bin/python benchmarks/corpus/build.py --write-manifest   # mirrors -> manifest.tsv
    .venv/bin/python benchmarks/corpus/build.py [--out DIR]        # manifest -> files in DIR
    .venv/bin/python benchmarks/corpus/build.py --check            # every commit is there?

Why a manifest and not the files: the corpus is third-party code under its own licences, so
the repository keeps only (repository, commit, path, style) and this script rebuilds the
exact bytes with `git cat-file` from mirrors of the public repositories. No network: the
mirrors are bare git directories (or clones) under `--mirrors` (default /work/.mirror, or
$LR_CORPUS_MIRRORS), one per repository, named `<owner>+<name>/repo`.

A file is a *training file* when its code (a notebook's code cells) calls `.backward(`,
defines a Lightning `training_step`, or steps an optimizer (`<name>.step(` where the name
says optim/opt); the test is textual on purpose: cheap, and the same for every repository.
Its styles are tags from the repository's kind (a small hand-written table below, from
reading each repository's README) and from simple markers in the file (imports, class
names); they describe the corpus, they decide nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.tsv"
DEFAULT_MIRRORS = Path(os.environ.get("LR_CORPUS_MIRRORS", "/work/.mirror"))
DEFAULT_OUT = Path("/tmp/lr-corpus")
COLUMNS = ("repository", "commit", "path", "kind", "styles")

# What each repository is, from its README: the first tag of every file's styles.
KINDS: dict[str, str] = {
    "AntixK/PyTorch-VAE": "model-zoo",
    "Atcold/NYU-DLSP20": "teaching",
    "GunhoChoi/PyTorch-FastCampus": "teaching",
    "Jackson-Kang/Pytorch-VAE-tutorial": "teaching",
    "L1aoXingyu/pytorch-beginner": "teaching",
    "Lightning-AI/tutorials": "teaching",
    "MorvanZhou/PyTorch-Tutorial": "teaching",
    "Shawn1993/cnn-text-classification-pytorch": "research",
    "ShusenTang/Dive-into-DL-PyTorch": "teaching",
    "bentrevett/pytorch-sentiment-analysis": "teaching",
    "bentrevett/pytorch-seq2seq": "teaching",
    "chenyuntc/pytorch-book": "teaching",
    "deeplearningzerotoall/PyTorch": "teaching",
    "dragen1860/Deep-Learning-with-PyTorch-Tutorials": "teaching",
    "dsgiitr/d2l-pytorch": "teaching",
    "eriklindernoren/PyTorch-GAN": "model-zoo",
    "facebookresearch/detr": "research",
    "facebookresearch/moco": "research",
    "graykode/nlp-tutorial": "teaching",
    "higgsfield/RL-Adventure": "teaching",
    "huggingface/accelerate": "official-examples",
    "hunkim/PyTorchZeroToAll": "teaching",
    "ikostrikov/pytorch-a2c-ppo-acktr-gail": "research",
    "jadore801120/attention-is-all-you-need-pytorch": "research",
    "jcjohnson/pytorch-examples": "teaching",
    "jeffheaton/t81_558_deep_learning": "teaching",
    "karpathy/minGPT": "research",
    "karpathy/nanoGPT": "research",
    "kuangliu/pytorch-cifar": "model-zoo",
    "mrdbourke/pytorch-deep-learning": "teaching",
    "omerbsezer/Fast-Pytorch": "teaching",
    "openai/spinningup": "teaching",
    "p-christ/Deep-Reinforcement-Learning-Algorithms-with-PyTorch": "model-zoo",
    "pyg-team/pytorch_geometric": "library",
    "pytorch/captum": "library",
    "pytorch/examples": "official-examples",
    "pytorch/ignite": "library",
    "pytorch/opacus": "library",
    "rasbt/deeplearning-models": "teaching",
    "seungeunrho/minimalRL": "teaching",
    "sfujim/TD3": "research",
    "sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning": "teaching",
    "spro/practical-pytorch": "teaching",
    "sweetice/Deep-reinforcement-learning-with-pytorch": "model-zoo",
    "tkipf/pygcn": "research",
    "udacity/deep-learning-v2-pytorch": "teaching",
    "utkuozbulak/pytorch-cnn-visualizations": "research",
    "vinhkhuc/PyTorch-Mini-Tutorials": "teaching",
    "vwxyzjn/cleanrl": "research",
    "xiaohu2015/DeepLearning_tutorials": "teaching",
    "yandexdataschool/Practical_RL": "teaching",
    "yunjey/pytorch-tutorial": "teaching",
    "zergtant/pytorch-handbook": "teaching",
}

TRAINING = re.compile(
    r"\.backward\(|def\s+training_step\s*\(|\b\w*opt\w*\.step\(|\boptimizers?\(\)\.step\(",
    re.IGNORECASE,
)

# Style markers: a tag, and a pattern whose presence in the file's code gives it.
MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (tag, re.compile(pattern, re.MULTILINE))
    for tag, pattern in (
        ("lightning", r"^\s*(import|from)\s+(pytorch_lightning|lightning)\b|def\s+training_step\("),
        ("ignite", r"^\s*(import|from)\s+ignite\b"),
        ("accelerate", r"^\s*(import|from)\s+accelerate\b|\bAccelerator\("),
        ("distributed", r"DistributedDataParallel|torch\.distributed|init_process_group"),
        ("rl", r"^\s*import\s+gym(nasium)?\b|^\s*from\s+gym(nasium)?\b|\benv\.step\(|\breplay"),
        ("gan", r"(?i)discriminator|\bnetD\b|\bgan\b"),
        (
            "nlp",
            r"nn\.Embedding\(|nn\.(LSTM|GRU|RNN)\(|tokeni[sz]e|torchtext|\btransformers\b|vocab",
        ),
        ("vision", r"torchvision|nn\.Conv2d\(|\bCIFAR|\bMNIST|ImageFolder"),
        ("graph", r"torch_geometric|GCNConv|adjacency|\badj\b"),
        (
            "manual-update",
            r"\.data\s*-=|\.grad\.data|-=\s*\w+\s*\*\s*\w+\.grad\b|\.sub_\([^)]*\.grad",
        ),
        ("amp", r"GradScaler|autocast"),
        ("test", r"^\s*def\s+test_\w+\(|^\s*import\s+pytest\b"),
    )
)


@dataclass(frozen=True)
class Entry:
    """One manifest line: a file of a repository at a commit, with its style tags."""

    repository: str
    commit: str
    path: str
    kind: str
    styles: str

    def line(self) -> str:
        return "\t".join((self.repository, self.commit, self.path, self.kind, self.styles))

    @property
    def slug(self) -> str:
        return self.repository.replace("/", "+")


def git_dir(mirrors: Path, repository: str) -> Path | None:
    """The mirror's git directory (bare, or the .git of a clone); None when absent."""
    base = mirrors / repository.replace("/", "+") / "repo"
    for candidate in (base / ".git", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def git(gdir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={gdir}", *args], check=True, capture_output=True, text=True
    ).stdout


def snapshot_commit(gdir: Path) -> str:
    """HEAD, or its newest first-parent ancestor with files where HEAD's tree is empty.

    One mirror (facebookresearch/moco) has a HEAD that deleted every file of the
    repository; its previous commit is the code people know and use.
    """
    for rev in ("HEAD", *(f"HEAD~{n}" for n in range(1, 6))):
        commit = git(gdir, "rev-parse", rev).strip()
        if git(gdir, "ls-tree", "--name-only", commit).strip():
            return commit
    return git(gdir, "rev-parse", "HEAD").strip()


def read_blobs(gdir: Path, commit: str, paths: list[str]) -> Iterator[tuple[str, bytes | None]]:
    """The bytes of each path at commit (None where missing), through one `cat-file --batch`."""
    if not paths:
        return
    proc = subprocess.Popen(
        ["git", f"--git-dir={gdir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for path in paths:
            proc.stdin.write(f"{commit}:{path}\n".encode())
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":
                yield path, None
                continue
            data = proc.stdout.read(int(header[2]))
            proc.stdout.read(1)  # the newline after each object
            yield path, data
    finally:
        proc.stdin.close()
        proc.wait()


def code_of(path: str, data: bytes) -> str:
    """The file's code: the text of a .py, the code cells of a notebook ('' if broken)."""
    text = data.decode("utf-8", errors="replace")
    if not path.endswith(".ipynb"):
        return text
    try:
        notebook = json.loads(text)
    except ValueError:
        return ""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):  # nbformat 3 keeps cells in worksheets
        sheets = notebook.get("worksheets", []) if isinstance(notebook, dict) else []
        cells = [c for s in sheets if isinstance(s, dict) for c in s.get("cells", [])]
    parts = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", cell.get("input", ""))
            parts.append("".join(source) if isinstance(source, list) else str(source))
    return "\n".join(parts)


def styles_of(path: str, code: str) -> list[str]:
    tags = ["notebook"] if path.endswith(".ipynb") else []
    tags += [tag for tag, pattern in MARKERS if pattern.search(code)]
    if re.search(r"(^|/)tests?/|(^|/)test_[^/]*$", path):
        tags.append("test") if "test" not in tags else None
    return tags


def scan(mirrors: Path, repository: str) -> list[Entry]:
    """The training files of one mirror at its snapshot commit."""
    gdir = git_dir(mirrors, repository)
    if gdir is None:
        raise SystemExit(missing_message(mirrors, repository))
    commit = snapshot_commit(gdir)
    listing = git(gdir, "ls-tree", "-r", "--name-only", "-z", commit).split("\0")
    paths = sorted(p for p in listing if p.endswith((".py", ".ipynb")))
    kind = KINDS.get(repository, "other")
    entries = []
    for path, data in read_blobs(gdir, commit, paths):
        if data is None or "\t" in path or "\n" in path:
            continue
        code = code_of(path, data)
        if TRAINING.search(code):
            styles = ",".join(styles_of(path, code)) or "plain"
            entries.append(Entry(repository, commit, path, kind, styles))
    return entries


def mirrored_repositories(mirrors: Path) -> list[str]:
    found = []
    for child in sorted(mirrors.iterdir()):
        if (
            child.is_dir()
            and "+" in child.name
            and git_dir(mirrors, child.name.replace("+", "/", 1))
        ):
            found.append(child.name.replace("+", "/", 1))
    return found


def missing_message(mirrors: Path, repository: str) -> str:
    slug = repository.replace("/", "+")
    return (
        f"no mirror of {repository} at {mirrors / slug / 'repo'}: fetch it (the session's "
        f"`fetch github:{repository}`), or `git clone --bare "
        f"https://github.com/{repository} {mirrors / slug / 'repo'}`, or point --mirrors at "
        "the folder that holds it"
    )


def write_manifest(mirrors: Path, manifest: Path) -> list[Entry]:
    entries: list[Entry] = []
    for repository in mirrored_repositories(mirrors):
        found = scan(mirrors, repository)
        print(f"{repository}: {len(found)} training files", file=sys.stderr)
        entries += found
    header = [
        "# lr-advisor real-code corpus: training files of public repositories (not stored here).",
        "# Made by `python benchmarks/corpus/build.py --write-manifest` from local git mirrors:",
        "# commit = the mirror's HEAD (if HEAD's tree is empty: its newest ancestor with files);",
        "# a file is listed when its code calls .backward(, defines training_step, or steps an",
        "# optimizer; kind = the repository's kind (hand table in build.py); styles = markers",
        "# found in the file. Rebuild the files with `python benchmarks/corpus/build.py`.",
        "\t".join(COLUMNS),
    ]
    manifest.write_text("\n".join(header + [e.line() for e in entries]) + "\n", encoding="utf-8")
    return entries


def read_manifest(manifest: Path) -> list[Entry]:
    entries = []
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if not line or line.startswith("#") or line.startswith("repository\t"):
            continue
        entries.append(Entry(*line.split("\t")))
    return entries


def by_repository(entries: Iterable[Entry]) -> dict[tuple[str, str], list[Entry]]:
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault((entry.repository, entry.commit), []).append(entry)
    return groups


def rebuild(mirrors: Path, manifest: Path, out: Path | None) -> int:
    """Checks every repository's commit; writes the files under out (unless None). 0 if whole."""
    problems = 0
    written = 0
    for (repository, commit), entries in by_repository(read_manifest(manifest)).items():
        gdir = git_dir(mirrors, repository)
        if gdir is None:
            print(missing_message(mirrors, repository), file=sys.stderr)
            problems += 1
            continue
        exists = subprocess.run(
            ["git", f"--git-dir={gdir}", "cat-file", "-e", f"{commit}^{{commit}}"],
            capture_output=True,
        )
        if exists.returncode != 0:
            print(
                f"the mirror of {repository} ({gdir}) lacks commit {commit}: fetch a newer "
                f"snapshot, or `git --git-dir={gdir} fetch origin {commit}` where it has a remote",
                file=sys.stderr,
            )
            problems += 1
            continue
        if out is None:
            continue
        for path, data in read_blobs(gdir, commit, [e.path for e in entries]):
            if data is None:
                print(f"{repository}@{commit[:12]} has no file {path}", file=sys.stderr)
                problems += 1
                continue
            target = out / repository.replace("/", "+") / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written += 1
    if out is not None:
        print(f"{written} files under {out}", file=sys.stderr)
    return 1 if problems else 0


def summary(entries: list[Entry]) -> str:
    styles = Counter(tag for e in entries for tag in e.styles.split(","))
    kinds = Counter(e.kind for e in entries)
    repos = {e.repository for e in entries}
    notebooks = sum(e.path.endswith(".ipynb") for e in entries)
    lines = [
        f"{len(repos)} repositories, {len(entries)} files "
        f"({notebooks} notebooks, {len(entries) - notebooks} .py)",
        "kinds: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()),
        "styles: " + ", ".join(f"{k} {n}" for k, n in styles.most_common()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write-manifest", action="store_true", help="scan the mirrors")
    action.add_argument("--check", action="store_true", help="only check the commits exist")
    action.add_argument("--summary", action="store_true", help="counts by kind and style")
    args = parser.parse_args(argv)
    if args.write_manifest:
        print(summary(write_manifest(args.mirrors, args.manifest)))
        return 0
    if args.summary:
        print(summary(read_manifest(args.manifest)))
        return 0
    return rebuild(args.mirrors, args.manifest, None if args.check else args.out)


if __name__ == "__main__":
    sys.exit(main())
