"""What a rule is: its identity, its documentation and examples, and where its findings come from.

Following Fixit, a rule's examples are at once its tests (tests/test_rule_examples.py runs
every one of them) and its documentation (`lr-advisor explain` prints them). A line that must
be flagged carries a trailing `# expect: <rule-name>` comment.

Two kinds share that record (`BaseRule`): a `Rule` is static, its `check(facts)` queries the
facts of one file; a `ProbeRule` has no check, its findings come from the probe's replay of
the training (advisor/probe/). Both are selected, suppressed, listed and explained alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, TypeAlias

from advisor.findings import Diagnostic, Severity

if TYPE_CHECKING:
    from advisor.facts.model import FileFacts

__all__ = ["ERROR", "WARNING", "BaseRule", "Check", "ProbeRule", "Rule", "Severity"]

ERROR: Final[Severity] = "error"
WARNING: Final[Severity] = "warning"

Check: TypeAlias = Callable[["FileFacts"], Iterable[Diagnostic]]


@dataclass(frozen=True)
class BaseRule:
    """A catalogued rule: identity, documentation in ruff's sections, and examples."""

    id: str  # "LRA101"; stable
    name: str  # "missing-zero-grad"; stable
    summary: str  # one line, shown by `lr-advisor rules`
    severity: Severity
    what_it_does: str
    why_bad: str
    example: str
    use_instead: str
    confirms: str  # "How lr-advisor confirms it": what the probe measures
    references: tuple[str, ...]
    flag: tuple[str, ...]  # snippets that must be flagged, at the `# expect:` lines
    quiet: tuple[str, ...]  # snippets that must not be flagged

    # Whether the probe (a replay on the data) finds it, not the static pass: set by each kind.
    probe: ClassVar[bool]

    def matches(self, selector: str) -> bool:
        """An id (`LRA101`), a name (`missing-zero-grad`) or an id prefix (`LRA1`, `LRA`)."""
        selector = selector.strip()
        if not selector:
            return False
        if selector.lower() == self.name:
            return True
        upper = selector.upper()
        return upper == "ALL" or self.id.startswith(upper)

    def documentation(self) -> str:
        """The full documentation in ruff's sections, as Markdown."""
        refs = "\n".join(f"- {ref}" for ref in self.references)
        return (
            f"# {self.name} ({self.id})\n\n{self.summary}\n\n"
            f"## What it does\n{self.what_it_does.strip()}\n\n"
            f"## Why is this bad?\n{self.why_bad.strip()}\n\n"
            f"## Example\n```python\n{self.example.strip()}\n```\n\n"
            f"## Use instead\n```python\n{self.use_instead.strip()}\n```\n\n"
            f"## How lr-advisor confirms it\n{self.confirms.strip()}\n\n"
            f"## References\n{refs}\n"
        )


@dataclass(frozen=True)
class Rule(BaseRule):
    """A static rule: `check` queries one file's facts and yields what is wrong there."""

    check: Check
    probe: ClassVar[bool] = False


@dataclass(frozen=True)
class ProbeRule(BaseRule):
    """A rule the probe reports after replaying (or running) the training; no static check.

    The probe stage builds its diagnostics and pairs them with this record, so that
    selection, suppressions and the reporters treat them like any rule's."""

    probe: ClassVar[bool] = True
