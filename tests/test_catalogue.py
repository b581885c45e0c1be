"""The catalogue registers itself: every module of rules/ is a rule, ids and names are unique,
the two kinds (static and probe) are both listed, and the README's table is the catalogue."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.rule import BaseRule, ProbeRule, Rule
from advisor.rules import ALL_RULES, BY_ID, CatalogueError, discover_rules

ROOT = Path(__file__).resolve().parent.parent
RULE_TEXT = """
from advisor.rule import ERROR, {kind}
RULE = {kind}(
    id={id!r}, name={name!r}, summary="s", severity=ERROR, what_it_does="w", why_bad="b",
    example="e", use_instead="u", confirms="c", references=(), flag=(), quiet=(),{check}
)
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    """An empty package `toy_catalogue` on sys.path, forgotten afterwards."""
    folder = tmp_path / "toy_catalogue"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    yield folder
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.startswith("toy_catalogue")]:
        del sys.modules[name]


def add_rule(folder: Path, module: str, rule_id: str, name: str, probe: bool = False) -> None:
    kind, check = ("ProbeRule", "") if probe else ("Rule", " check=lambda facts: ()")
    text = RULE_TEXT.format(kind=kind, id=rule_id, name=name, check=check)
    (folder / f"{module}.py").write_text(text)


def test_every_module_of_rules_is_in_the_catalogue() -> None:
    modules = sorted(p.stem for p in (ROOT / "rules").glob("*.py") if not p.stem.startswith("_"))
    assert len(ALL_RULES) == len(modules)
    assert [rule.id for rule in ALL_RULES] == sorted(rule.id for rule in ALL_RULES)
    for module in modules:
        rule = sys.modules[f"advisor.rules.{module}"].RULE
        assert BY_ID[rule.id] is rule


def test_the_probe_rules_are_their_own_kind() -> None:
    probe = {rule.id for rule in ALL_RULES if rule.probe}
    assert probe == {rule.id for rule in ALL_RULES if isinstance(rule, ProbeRule)}
    assert probe >= {"LRA501", "LRA502"}
    for rule in ALL_RULES:
        assert isinstance(rule, BaseRule)
        assert isinstance(rule, Rule) != rule.probe
        assert hasattr(rule, "check") != rule.probe


def test_discovery_sorts_by_id_and_skips_helpers(package: Path) -> None:
    add_rule(package, "b_rule", "LRA902", "second-rule")
    add_rule(package, "a_rule", "LRA903", "third-rule", probe=True)
    add_rule(package, "c_rule", "LRA901", "first-rule")
    (package / "_shared.py").write_text("HELPER = 1\n")
    found = discover_rules("toy_catalogue", [str(package)])
    assert [(rule.id, rule.probe) for rule in found] == [
        ("LRA901", False),
        ("LRA902", False),
        ("LRA903", True),
    ]


def test_a_module_without_rule_is_an_error(package: Path) -> None:
    add_rule(package, "good", "LRA901", "first-rule")
    (package / "helper.py").write_text("X = 1\n")
    with pytest.raises(CatalogueError, match=r"toy_catalogue\.helper defines no rule"):
        discover_rules("toy_catalogue", [str(package)])


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (("LRA901", "other-rule"), r"rule id 'LRA901' is defined twice"),
        (("LRA902", "first-rule"), r"rule name 'first-rule' is defined twice"),
    ],
)
def test_a_duplicate_id_or_name_is_an_error(
    package: Path, second: tuple[str, str], message: str
) -> None:
    add_rule(package, "one", "LRA901", "first-rule")
    add_rule(package, "two", *second)
    with pytest.raises(CatalogueError, match=message + r": in toy_catalogue\.one and in"):
        discover_rules("toy_catalogue", [str(package)])


def readme_table() -> list[tuple[str, str, str]]:
    """The rows of the table under `## Rules` in README.md: (id, name, summary)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Rules\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.fullmatch(r"\| (LRA\d{3}) \| `([a-z-]+)` \| (.+) \|", line)
        if match:
            rows.append((match[1], match[2], match[3]))
    return rows


def test_the_readme_rule_table_is_the_catalogue() -> None:
    assert readme_table() == [(rule.id, rule.name, rule.summary) for rule in ALL_RULES]
