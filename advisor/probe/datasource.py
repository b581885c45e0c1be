"""What `--data` names, and how reading it fails: the records that the in-memory reader
(`datafile`), the streaming pass (`partitions`) and the cluster (`distributed`) share."""

from __future__ import annotations

import os
from dataclasses import dataclass


class DataError(Exception):
    """A data file that cannot be used: the message says why, in one line."""


@dataclass(frozen=True)
class DataOption:
    path: str
    target: str | None = None  # a column name or a 0-based index; default the last column
    features: tuple[str, ...] | None = None  # default every other column


def setting(name: str, default: int) -> int:
    """A positive whole number from the environment variable `name`, else `default`."""
    value = os.environ.get(name, "").strip()
    try:
        return max(int(value), 1) if value else default
    except ValueError:
        return default


def column(key: str | None, names: tuple[str, ...], default: int | None, path: str) -> int:
    """The index of the column `key` names (a name, or an index counted from 0 or from the
    end); `default` when `key` is None."""
    if key is None:
        if default is None:
            raise DataError(f"{path}: name a column")
        return default
    if key in names:
        return names.index(key)
    if key.lstrip("-").isdigit() and -len(names) <= int(key) < len(names):
        return int(key) % len(names)
    raise DataError(f"{path}: no column {key!r} (columns: {', '.join(names)})")


def one_line(error: BaseException) -> str:
    """An error's message on one line (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
