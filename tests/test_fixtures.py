"""End to end: the installed `lr-advisor` command on every fixture, as a user runs it.

Each fixture states its expected findings inline, `# expect: <rule-name>[, <rule-name>]` on
the flagged line (inside the cell source for notebooks). The findings must be exactly those:
nothing missing at the expected lines, nothing anywhere else.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
COMMAND = Path(sys.executable).parent / "lr-advisor"
EXPECT = re.compile(r"#\s*expect:\s*([\w\-, ]+)")


def _expected_in_lines(lines: list[str], cell: int | None) -> Counter:
    found: Counter = Counter()
    for number, line in enumerate(lines, 1):
        match = EXPECT.search(line)
        if match:
            for rule in filter(None, (part.strip() for part in match.group(1).split(","))):
                found[(cell, number, rule)] += 1
    return found


def expected_findings(path: Path) -> Counter:
    if path.suffix == ".ipynb":
        notebook = json.loads(path.read_text(encoding="utf-8"))
        found: Counter = Counter()
        code_cells = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
        for index, cell in enumerate(code_cells, 1):
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            found += _expected_in_lines(text.splitlines(), index)
        return found
    return _expected_in_lines(path.read_text(encoding="utf-8").splitlines(), None)


FIXTURE_FILES = sorted(
    p for p in FIXTURES.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file()
)


@pytest.fixture(scope="module")
def report() -> dict:
    completed = subprocess.run(
        [str(COMMAND), "--static", "--no-cache", "--format", "json", str(FIXTURES)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return json.loads(completed.stdout)


def test_fixtures_exist() -> None:
    assert len(FIXTURE_FILES) >= 20
    assert sum(bool(expected_findings(p)) for p in FIXTURE_FILES) >= 10


def test_no_errors_on_fixtures(report: dict) -> None:
    assert report["errors"] == []


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_findings(path: Path, report: dict) -> None:
    got: Counter = Counter()
    for finding in report["findings"]:
        if Path(finding["path"]).resolve() == path.resolve():
            got[(finding.get("cell"), finding["line"], finding["rule"])] += 1
    assert got == expected_findings(path)
