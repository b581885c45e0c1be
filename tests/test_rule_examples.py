"""Every rule's own examples: must-flag snippets are flagged exactly at their `# expect:`
lines, must-not-flag snippets get nothing. The same examples are the rule's documentation."""

from __future__ import annotations

import re

import libcst as cst
import pytest

from advisor.pipeline import load, locate, run_rules
from advisor.rule import Rule
from advisor.rules import ALL_RULES, find_rule

FLAG_CASES = [
    pytest.param(rule, index, id=f"{rule.id}-{rule.name}-flag{index}")
    for rule in ALL_RULES
    for index in range(len(rule.flag))
]
QUIET_CASES = [
    pytest.param(rule, index, id=f"{rule.id}-{rule.name}-quiet{index}")
    for rule in ALL_RULES
    for index in range(len(rule.quiet))
]


def flagged_lines(rule: Rule, source: str) -> list[int]:
    if rule.probe:  # found by replaying the training (and running it, where torch is here)
        import importlib.util
        import tempfile
        from pathlib import Path

        from advisor.probe.stage import Probe, ProbeOptions

        run = importlib.util.find_spec("torch") is not None
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "example.py"
            path.write_text(source)
            checked = load(source, str(path))
            found = Probe(ProbeOptions(run=run, timeout=60)).probe_file(checked, frozenset())
        reported = [(r, d) for r, d in found.diagnostics if r.id == rule.id] if found else []
        findings, errors = locate(checked, reported)
    else:  # the rule itself, past the pre-filter (an example need not mention torch)
        checked = load(source, "example.py")
        findings, errors = locate(checked, run_rules(checked, [rule]))
        errors += checked.errors
    assert not errors, errors
    return sorted(finding.line for finding in findings)


def expected_lines(rule: Rule, source: str) -> list[int]:
    pattern = re.compile(r"#\s*expect:.*\b" + re.escape(rule.name) + r"\b")
    return [n for n, line in enumerate(source.splitlines(), 1) if pattern.search(line)]


@pytest.mark.parametrize(("rule", "index"), FLAG_CASES)
def test_must_flag(rule: Rule, index: int) -> None:
    source = rule.flag[index]
    expected = expected_lines(rule, source)
    assert expected, "a must-flag example needs an `# expect:` line"
    assert flagged_lines(rule, source) == expected


@pytest.mark.parametrize(("rule", "index"), QUIET_CASES)
def test_must_not_flag(rule: Rule, index: int) -> None:
    assert flagged_lines(rule, rule.quiet[index]) == []


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.id)
def test_rule_is_documented(rule: Rule) -> None:
    assert re.fullmatch(r"LRA\d{3}", rule.id)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule.name)
    assert len(rule.flag) >= 3 and len(rule.quiet) >= 4
    docs = rule.documentation()
    for section in (
        "What it does",
        "Why is this bad?",
        "Example",
        "Use instead",
        "How lr-advisor confirms it",
        "References",
    ):
        assert f"## {section}" in docs
    for snippet in (*rule.flag, *rule.quiet, rule.example, rule.use_instead):
        cst.parse_module(snippet)


def test_catalogue_ids_and_names_are_unique_and_findable() -> None:
    assert len({r.id for r in ALL_RULES}) == len({r.name for r in ALL_RULES}) == len(ALL_RULES)
    for rule in ALL_RULES:
        assert find_rule(rule.id.lower()) is rule
        assert find_rule(rule.name) is rule
    assert {r.id for r in ALL_RULES} >= {
        "LRA101",
        "LRA102",
        "LRA103",
        "LRA104",
        "LRA201",
        "LRA401",
        "LRA402",
        "LRA403",
    }
