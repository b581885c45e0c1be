"""The rule catalogue: one module a rule, registered here in id order."""

from __future__ import annotations

from advisor.rule import Rule

ALL_RULES: tuple[Rule, ...] = ()
