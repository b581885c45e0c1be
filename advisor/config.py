"""`[tool.lr-advisor]` in the nearest `pyproject.toml`, and which rules apply to a file.

    [tool.lr-advisor]
    select = ["LRA1", "LRA4"]            # default: every rule
    extend-select = ["LRA201"]
    ignore = ["accumulated-loss-tensor"]
    per-file-ignores = { "notebooks/*.ipynb" = ["LRA201"] }

The nearest `pyproject.toml` with a `[tool.lr-advisor]` table, walking up from each checked
file, applies (like ruff). Globs in `per-file-ignores` are relative to that file's folder.
On the command line `--select` replaces the configured selection and `--ignore` adds to it.
No rule has options: a `[tool.lr-advisor.<rule>]` table (per-rule settings, accepted by older
versions and never read) is an error that says so.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SECTION = "lr-advisor"
_LIST_KEYS = ("select", "extend-select", "ignore")
_KNOWN_KEYS = (*_LIST_KEYS, "per-file-ignores")


class ConfigError(Exception):
    """An invalid configuration: the run stops with exit code 2 and this message."""


class Selectable(Protocol):
    @property
    def id(self) -> str: ...  # read-only: a rule's are properties

    @property
    def name(self) -> str: ...

    def matches(self, selector: str) -> bool: ...


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the pyproject.toml; None for the defaults
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def root(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def ignores_for(self, file: Path) -> tuple[str, ...]:
        """The per-file-ignores selectors whose glob matches this file."""
        if not self.per_file_ignores:
            return ()
        relative = _relative(file, self.root)
        selectors: list[str] = []
        for pattern, codes in self.per_file_ignores:
            if glob_matches(pattern, relative):
                selectors.extend(codes)
        return tuple(selectors)


DEFAULT = Config()


def _relative(file: Path, root: Path | None) -> str:
    absolute = Path(os.path.abspath(file))
    if root is not None:
        try:
            return absolute.relative_to(root).as_posix()
        except ValueError:
            pass
    return absolute.as_posix()


_GLOB_CACHE: dict[str, re.Pattern[str]] = {}


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """`**` crosses folders, `*` and `?` do not; `[...]` is a character class."""
    compiled = _GLOB_CACHE.get(pattern)
    if compiled is not None:
        return compiled
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(char))
        i += 1
    compiled = re.compile("".join(out) + r"\Z")
    _GLOB_CACHE[pattern] = compiled
    return compiled


def glob_matches(pattern: str, relative: str) -> bool:
    """A pattern without `/` matches a file or folder name anywhere (like .gitignore); one
    with `/` matches the path from the config's folder. Matching a folder covers its files."""
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    if not pattern:
        return False
    regex = _glob_regex(pattern)
    parts = relative.split("/")
    if "/" not in pattern:
        return any(regex.match(part) for part in parts)
    return any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def _strings(value: object, key: str, path: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: `{key}` in [tool.{SECTION}] must be a list of strings")
    return tuple(item.strip() for item in value)


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """The `[tool.lr-advisor]` table of a parsed pyproject.toml (rules not yet checked)."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        normal = key.replace("_", "-")
        if normal in _LIST_KEYS:
            values[normal] = _strings(value, key, path)
        elif normal == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path}: `{key}` in [tool.{SECTION}] must be a table of glob = [rules]"
                )
            values[normal] = tuple(
                (glob, _strings(codes, f"{key}.{glob}", path)) for glob, codes in value.items()
            )
        elif isinstance(value, dict):
            raise ConfigError(
                f"{path}: [tool.{SECTION}.{key}]: per-rule settings are not supported (no rule "
                f"has an option, so the table never changed a result); remove the table, and "
                f"use `ignore` or `per-file-ignores` in [tool.{SECTION}] to turn a rule off"
            )
        else:
            raise ConfigError(
                f"{path}: unknown option `{key}` in [tool.{SECTION}] "
                f"(known: {', '.join(_KNOWN_KEYS)})"
            )
    return Config(
        path=path,
        select=values.get("select"),
        extend_select=values.get("extend-select", ()),
        ignore=values.get("ignore", ()),
        per_file_ignores=values.get("per-file-ignores", ()),
    )


def load_config(pyproject: Path) -> Config | None:
    """The config in this pyproject.toml, or None when it has no [tool.lr-advisor] table."""
    try:
        raw = pyproject.read_bytes()
    except OSError as error:
        raise ConfigError(f"{pyproject}: cannot read: {error.strerror or error}") from error
    if b"lr-advisor" not in raw:  # the common case: somebody else's pyproject, no TOML parse
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(
                f"{pyproject}: reading it on Python 3.10 needs the `tomli` package"
            ) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{pyproject}: invalid TOML: {error}") from error
    tool = document.get("tool", {})
    section = tool.get(SECTION) if isinstance(tool, dict) else None
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [tool.{SECTION}] must be a table")
    return parse_config(section, pyproject)


class ConfigFinder:
    """The config for each checked file, walking up; one lookup per folder, ever."""

    def __init__(self, rules: Sequence[Selectable]) -> None:
        self.rules = rules
        self._by_dir: dict[str, Config] = {}

    def for_file(self, file: Path) -> Config:
        return self.for_dir(os.path.dirname(os.path.abspath(file)))

    def for_dir(self, directory: str) -> Config:
        cached = self._by_dir.get(directory)
        if cached is not None:
            return cached
        config: Config | None = None
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            config = load_config(Path(candidate))
            if config is not None:
                validate(config, self.rules)
        if config is None:
            parent = os.path.dirname(directory)
            config = DEFAULT if parent == directory else self.for_dir(parent)
        self._by_dir[directory] = config
        return config


def unknown_selectors(selectors: Sequence[str], rules: Sequence[Selectable]) -> list[str]:
    return [s for s in selectors if not any(rule.matches(s) for rule in rules)]


def validate(config: Config, rules: Sequence[Selectable]) -> None:
    """Every selector must name at least one rule."""
    names = [
        *(config.select or ()),
        *config.extend_select,
        *config.ignore,
        *(code for _, codes in config.per_file_ignores for code in codes),
    ]
    unknown = unknown_selectors(names, rules)
    if unknown:
        raise ConfigError(
            f"{config.path}: [tool.{SECTION}] names no rule: {', '.join(unknown)} "
            "(see `lr-advisor rules`)"
        )


def select_rules(
    rules: Sequence[Selectable],
    config: Config,
    cli_select: Sequence[str] | None = None,
    cli_ignore: Sequence[str] = (),
    file: Path | None = None,
) -> list[Selectable]:
    """The rules that apply to one file, in catalogue order."""
    selectors = list(cli_select) if cli_select is not None else config.select
    if selectors is None:
        chosen = list(rules)
    else:
        chosen = [rule for rule in rules if any(rule.matches(s) for s in selectors)]
    if cli_select is None and config.extend_select:
        ids = {rule.id for rule in chosen}
        chosen = [
            rule
            for rule in rules
            if rule.id in ids or any(rule.matches(s) for s in config.extend_select)
        ]
    ignored = [*config.ignore, *cli_ignore]
    if file is not None:
        ignored.extend(config.ignores_for(file))
    return [rule for rule in chosen if not any(rule.matches(s) for s in ignored)]
