"""How often is lr-advisor wrong on real code? Findings and false alarms per 200 corpus files.

    .venv/bin/python benchmarks/corpus/build.py              # rebuild the corpus (once)
    .venv/bin/python benchmarks/corpus_precision.py [--jobs 2] [--json] [--corpus DIR]

Runs the installed `lr-advisor --static --no-cache --format json --jobs N` on the files of
benchmarks/corpus/manifest.tsv, rebuilt under --corpus (default /tmp/lr-corpus), and matches
each finding against benchmarks/corpus/labels.tsv, where a person who read the code wrote
bug / false-alarm / unsure with one line of why. It prints:

- files checked, files that could not be read or parsed, findings per rule and per 200 files;
- among labelled findings, how many are bugs, false alarms and unsure, and the false alarms
  per 200 files (the issue's goal: at most 1);
- every unlabelled finding (so none can hide behind the rate) and every stale label (a label
  whose finding no longer appears: the rule changed, or the label is wrong).

A finding's key is (repository, path, line, rule id); in a notebook the line is written
`CELL:LINE` (the 1-based code cell and the line within it, as the JSON output gives them).
It prints figures and asserts nothing; `--json` prints the same as one JSON document, and
`--findings FILE` reuses a saved lr-advisor JSON output (`--save FILE` writes one) so that
labelling does not re-run the linter each time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
sys.path.insert(0, str(CORPUS))
from build import DEFAULT_OUT, MANIFEST, Entry, read_manifest  # noqa: E402

LABELS = CORPUS / "labels.tsv"
VERDICTS = ("bug", "false-alarm", "unsure")
Key = tuple[str, str, str, str]  # repository, path, line (or CELL:LINE), rule id


@dataclass(frozen=True)
class Label:
    """One reviewed finding: what the reviewer concluded and why."""

    key: Key
    verdict: str
    why: str


def read_labels(path: Path) -> list[Label]:
    """The labels file: tab-separated, '#' comments; a bad line stops with its number."""
    labels = []
    if not path.exists():
        return labels
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("repository\t"):
            continue
        fields = line.split("\t")
        if len(fields) != 6 or fields[4] not in VERDICTS:
            raise SystemExit(
                f"{path}:{number}: want repository, path, line, rule, "
                f"{'/'.join(VERDICTS)}, why (tab-separated)"
            )
        repository, file, where, rule, verdict, why = fields
        labels.append(Label((repository, file, where, rule), verdict, why))
    return labels


def run_advisor(binary: Path, corpus: Path, entries: list[Entry], jobs: int) -> dict:
    """lr-advisor's JSON document for the corpus files (paths relative to the corpus)."""
    missing = [e for e in entries if not (corpus / e.slug / e.path).is_file()]
    if missing:
        raise SystemExit(
            f"{len(missing)} corpus files missing under {corpus} (first: {missing[0].slug}/"
            f"{missing[0].path}): run `python benchmarks/corpus/build.py --out {corpus}`"
        )
    paths = [f"{e.slug}/{e.path}" for e in entries]
    command = [str(binary), "--static", "--no-cache", "--format", "json", "--jobs", str(jobs)]
    done = subprocess.run(
        [*command, "--", *paths], cwd=corpus, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"lr-advisor exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def key_of(finding: dict) -> Key:
    slug, _, path = finding["path"].replace("\\", "/").partition("/")
    where = str(finding["line"])
    if finding.get("cell") is not None:
        where = f"{finding['cell']}:{where}"
    return (slug.replace("+", "/", 1), path, where, finding["id"])


def measure(document: dict, entries: list[Entry], labels: list[Label]) -> dict:
    """The figures: per rule, per 200 files, by verdict, unlabelled findings, stale labels."""
    files = len(entries)
    per200 = 200.0 / files if files else 0.0
    findings = document.get("findings", [])
    names = {f["id"]: f["rule"] for f in findings}
    by_rule = Counter(f["id"] for f in findings)
    verdict_of = {label.key: label for label in labels}
    seen: set[Key] = set()
    verdicts: Counter[str] = Counter()
    verdicts_by_rule: dict[str, Counter[str]] = {}
    unlabelled = []
    for finding in findings:
        key = key_of(finding)
        seen.add(key)
        label = verdict_of.get(key)
        if label is None:
            unlabelled.append(
                {
                    "repository": key[0],
                    "path": key[1],
                    "line": key[2],
                    "id": key[3],
                    "rule": finding["rule"],
                    "message": finding["message"],
                }
            )
            continue
        verdicts[label.verdict] += 1
        verdicts_by_rule.setdefault(key[3], Counter())[label.verdict] += 1
    stale = [
        {"repository": k[0], "path": k[1], "line": k[2], "id": k[3], "label": lab.verdict}
        for k, lab in verdict_of.items()
        if k not in seen
    ]
    return {
        "files": files,
        "errors": len(document.get("errors", [])),
        "findings": len(findings),
        "findings_per_200": round(len(findings) * per200, 2),
        "by_rule": {
            rule: {
                "name": names[rule],
                "findings": count,
                "per_200": round(count * per200, 2),
                **{v: verdicts_by_rule.get(rule, Counter())[v] for v in VERDICTS},
            }
            for rule, count in by_rule.most_common()
        },
        "labelled": sum(verdicts.values()),
        **{v: verdicts[v] for v in VERDICTS},
        "false_alarms_per_200": round(verdicts["false-alarm"] * per200, 2),
        "unlabelled": unlabelled,
        "stale_labels": stale,
    }


def report(figures: dict, seconds: float | None) -> str:
    lines = [
        f"files {figures['files']}, unreadable or unparsable {figures['errors']}"
        + (f", lr-advisor {seconds:.1f} s" if seconds is not None else ""),
        f"findings {figures['findings']}, per 200 files {figures['findings_per_200']}",
        "",
        f"{'rule':<8} {'name':<34} {'found':>6} {'/200':>6} {'bug':>5} {'false':>6} {'unsure':>6}",
    ]
    for rule, row in figures["by_rule"].items():
        lines.append(
            f"{rule:<8} {row['name']:<34} {row['findings']:>6} {row['per_200']:>6} "
            f"{row['bug']:>5} {row['false-alarm']:>6} {row['unsure']:>6}"
        )
    lines += [
        "",
        f"labelled {figures['labelled']} of {figures['findings']}: bug {figures['bug']}, "
        f"false-alarm {figures['false-alarm']}, unsure {figures['unsure']}",
        f"false alarms per 200 files: {figures['false_alarms_per_200']} "
        f"(labelled ones only; {len(figures['unlabelled'])} findings unlabelled)",
        "",
        f"unlabelled findings: {len(figures['unlabelled'])}",
    ]
    for item in figures["unlabelled"]:
        lines.append(
            f"  {item['repository']}\t{item['path']}\t{item['line']}\t{item['id']}\t"
            f"{item['message']}"
        )
    lines.append(f"stale labels: {len(figures['stale_labels'])}")
    for item in figures["stale_labels"]:
        lines.append(
            f"  {item['repository']}\t{item['path']}\t{item['line']}\t{item['id']}\t{item['label']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent / "lr-advisor")
    parser.add_argument("--findings", type=Path, help="reuse a saved lr-advisor JSON output")
    parser.add_argument("--save", type=Path, help="write lr-advisor's JSON output here")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)

    entries = read_manifest(args.manifest)
    seconds = None
    if args.findings:
        document = json.loads(args.findings.read_text(encoding="utf-8"))
    else:
        started = time.perf_counter()
        document = run_advisor(args.bin, args.corpus, entries, args.jobs)
        seconds = time.perf_counter() - started
    if args.save:
        args.save.write_text(json.dumps(document), encoding="utf-8")
    figures = measure(document, entries, read_labels(args.labels))
    if args.json:
        print(json.dumps({**figures, "seconds": seconds}, indent=2))
    else:
        print(report(figures, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
