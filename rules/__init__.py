"""The rule catalogue: every module of this package holds one rule, its module-level `RULE`.

Adding a rule is adding a module: the modules are discovered here (modules whose name starts
with `_` are helpers, not rules) and the catalogue is sorted by id. A module without `RULE`,
or two rules with one id or one name, stop the import with a `CatalogueError`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from advisor.rule import BaseRule


class CatalogueError(Exception):
    """The rules package is inconsistent: a module without a rule, or a duplicate id or name."""


def discover_rules(package: str, path: Iterable[str]) -> tuple[BaseRule, ...]:
    """The `RULE` of every public module of the package at `path`, sorted by id."""
    found: list[BaseRule] = []
    by_id: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        qualified = f"{package}.{info.name}"
        module = importlib.import_module(qualified)
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, BaseRule):
            raise CatalogueError(
                f"{qualified} defines no rule: every module of {package} must set a "
                "module-level `RULE = Rule(...)` or `ProbeRule(...)` (helpers start with `_`)"
            )
        for key, seen, what in ((rule.id, by_id, "id"), (rule.name, by_name, "name")):
            if key in seen:
                raise CatalogueError(
                    f"rule {what} {key!r} is defined twice: in {seen[key]} and in {qualified}"
                )
            seen[key] = qualified
        found.append(rule)
    return tuple(sorted(found, key=lambda rule: rule.id))


ALL_RULES: tuple[BaseRule, ...] = discover_rules(__name__, __path__)
BY_ID: dict[str, BaseRule] = {rule.id: rule for rule in ALL_RULES}
BY_NAME: dict[str, BaseRule] = {rule.name: rule for rule in ALL_RULES}


def find_rule(key: str) -> BaseRule | None:
    """A rule by id (any case) or name."""
    return BY_ID.get(key.upper()) or BY_NAME.get(key.lower())
