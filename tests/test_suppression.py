"""Every suppression form, on the line where the finding starts, and for the whole file."""

from __future__ import annotations

import pytest
from toy_rules import BACKWARD, STEP, TOY_RULES

from advisor.pipeline import check_source
from advisor.suppression import Suppressions

HEAD = "import torch\nfor i in range(3):\n"


def remaining(backward_comment: str = "", step_comment: str = "", extra: str = "") -> list[str]:
    text = (
        HEAD
        + f"    loss.backward(){backward_comment}\n"
        + f"    opt.step(){step_comment}\n"
        + extra
    )
    return [f.rule_id for f in check_source(text, "t.py", TOY_RULES).findings]


def test_without_comments_both_rules_report() -> None:
    assert remaining() == ["LRA901", "LRA902"]


@pytest.mark.parametrize(
    "comment",
    [
        "  # noqa",
        "  # NOQA",
        "  #noqa",
        "  # noqa: LRA901",
        "  # noqa:LRA901",
        "  # noqa: E501, LRA901",
        "  # noqa: E501 LRA901",
        "  # noqa: LRA9",
        "  # noqa: every-backward",
        "  # lr-advisor: ignore",
        "  # lr-advisor: ignore[every-backward]",
        "  # lr-advisor: ignore[LRA901]",
        "  # lr-advisor: ignore[LRA9]",
        "  # lr-advisor: ignore[ LRA123 , every-backward ]",
        "  # some words # noqa: LRA901",
    ],
)
def test_line_suppressions(comment: str) -> None:
    assert remaining(backward_comment=comment) == ["LRA902"]


@pytest.mark.parametrize(
    "comment",
    [
        "  # noqa: LRA902",
        "  # noqa: E501",
        "  # noqa: every-step",
        "  # lr-advisor: ignore[every-step]",
        "  # lr-advisor: ignore[]",
        "  # noqa-like but not",
        "  # lr-advisor: ignored",
        "  # lr-advisor: ignore-file",  # not on a line of its own
    ],
)
def test_comments_that_do_not_suppress_this_rule(comment: str) -> None:
    assert remaining(backward_comment=comment) == ["LRA901", "LRA902"]


def test_suppression_applies_to_its_own_line_only() -> None:
    assert remaining(step_comment="  # noqa") == ["LRA901"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("# lr-advisor: ignore-file\n", []),
        ("    # lr-advisor: ignore-file\n", []),
        ("# lr-advisor: ignore-file[every-step]\n", ["LRA901"]),
        ("# lr-advisor: ignore-file[LRA901, LRA902]\n", []),
        ("# lr-advisor: ignore-file[LRA9]\n", []),
        ("x = 1  # lr-advisor: ignore-file\n", ["LRA901", "LRA902"]),
    ],
)
def test_file_suppressions(extra: str, expected: list[str]) -> None:
    assert remaining(extra=extra) == expected


def test_a_file_ignored_whole_is_not_even_parsed() -> None:
    result = check_source("# lr-advisor: ignore-file\nimport torch\ndef f(:\n", "t.py", TOY_RULES)
    assert not result.parsed and not result.errors


def test_parse_records_lines_and_file_entries() -> None:
    text = "a  # noqa\nb  # noqa: LRA1, x-y\n# lr-advisor: ignore-file[LRA2]\nc\n"
    found = Suppressions.parse(text)
    assert found.lines == {1: [None], 2: [("LRA1", "x-y")]}
    assert found.file == [("LRA2",)]
    assert not found.whole_file
    assert not Suppressions.parse("x = 1\n")


def test_suppresses_by_rule_and_line() -> None:
    found = Suppressions.parse("a\nb  # lr-advisor: ignore[every-step]\n")
    assert found.suppresses(STEP, 2)
    assert not found.suppresses(STEP, 1)
    assert not found.suppresses(BACKWARD, 2)


def test_multiline_finding_matches_on_its_first_line() -> None:
    text = HEAD + "    loss.backward(  # noqa: LRA901\n        retain_graph=True,\n    )\n"
    assert check_source(text, "t.py", (BACKWARD,)).findings == []
    text = HEAD + "    loss.backward(\n        retain_graph=True,\n    )  # noqa: LRA901\n"
    assert [f.line for f in check_source(text, "t.py", (BACKWARD,)).findings] == [3]
