"""Suppression comments: which findings the author has already looked at and dismissed.

On the line where a finding starts:
    # noqa                                   every rule (flake8/ruff compatible)
    # noqa: LRA101, LRA2                     ids, id prefixes or names
    # lr-advisor: ignore                     every rule
    # lr-advisor: ignore[missing-zero-grad]  ids, id prefixes or names
For the whole file, on a comment line of its own anywhere in the file:
    # lr-advisor: ignore-file
    # lr-advisor: ignore-file[LRA201]

Only lines that contain `#` are looked at, so this costs almost nothing on a normal file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from advisor.source import split_lines

ALL = None  # a suppression that covers every rule

_NOQA = re.compile(r"#\s*noqa(?![\w-])(?P<colon>\s*:\s*(?P<codes>[\w-]+(?:[\s,]+[\w-]+)*))?", re.I)
_IGNORE = re.compile(
    r"#\s*lr-advisor\s*:\s*(?P<kind>ignore-file|ignore)(?![\w-])(?:\[(?P<codes>[^\]]*)\])?", re.I
)
_SPLIT = re.compile(r"[\s,]+")


class Selectable(Protocol):
    @property
    def id(self) -> str: ...  # read-only: a rule's are properties

    @property
    def name(self) -> str: ...

    def matches(self, selector: str) -> bool: ...


def _selectors(codes: str | None) -> tuple[str, ...] | None:
    """None for "every rule"; otherwise the selectors named."""
    if codes is None:
        return ALL
    return tuple(part for part in _SPLIT.split(codes) if part)


@dataclass
class Suppressions:
    # 1-based line -> selectors (None: every rule)
    lines: dict[int, list[tuple[str, ...] | None]] = field(default_factory=dict)
    file: list[tuple[str, ...] | None] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Suppressions:
        found = cls()
        if "#" not in text:
            return found
        for number, line in enumerate(split_lines(text), 1):
            if "#" not in line:
                continue
            for match in _NOQA.finditer(line):
                codes = match.group("codes") if match.group("colon") else None
                found.lines.setdefault(number, []).append(_selectors(codes))
            for match in _IGNORE.finditer(line):
                selectors = _selectors(match.group("codes"))
                if match.group("kind").lower() == "ignore-file":
                    if line.lstrip().startswith("#"):
                        found.file.append(selectors)
                else:
                    found.lines.setdefault(number, []).append(selectors)
        return found

    def __bool__(self) -> bool:
        return bool(self.lines or self.file)

    @property
    def whole_file(self) -> bool:
        """The file opts out of every rule: no need to parse it."""
        return ALL in self.file

    def suppresses(self, rule: Selectable, line: int) -> bool:
        return _covered(rule, self.file) or _covered(rule, self.lines.get(line, ()))


def _covered(rule: Selectable, entries: Iterable[tuple[str, ...] | None]) -> bool:
    return any(selectors is ALL or any(rule.matches(s) for s in selectors) for selectors in entries)
