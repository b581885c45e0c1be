"""Results of unchanged files, so that re-checking an unchanged tree costs a read and a hash.

One JSON document under `.lr-advisor-cache/` in the current folder. An entry is keyed by the
file's bytes, its kind (.py or .ipynb), the rules that apply to it and their settings; the whole
document is keyed by the tool's version and a fingerprint of its own source files, so a new
version (or, while developing, an edited rule) starts afresh. The cache is a convenience: when
it cannot be read or written the run goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor import __version__
from advisor.findings import Edit, FileError, Finding, Fix

CACHE_DIR = ".lr-advisor-cache"
_FILE = "results.json"
_MAX_ENTRIES = 50_000
_MAX_AGE_DAYS = 30  # entries unused this long are dropped


def tool_fingerprint() -> str:
    """The version plus the size and modification time of every module of the tool."""
    import advisor
    import rules

    parts = [__version__]
    for package in (advisor, rules):
        for directory in package.__path__:
            for folder, _dirs, files in os.walk(directory):
                for name in sorted(files):
                    if name.endswith(".py"):
                        try:
                            stat = os.stat(os.path.join(folder, name))
                        except OSError:
                            continue
                        parts.append(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def entry_key(data: bytes, path: str, rule_ids: Sequence[str], settings: object) -> str:
    digest = hashlib.sha256(data)
    kind = "ipynb" if path.endswith(".ipynb") else "py"
    digest.update(f"\0{kind}\0{','.join(rule_ids)}\0".encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _finding_to_json(finding: Finding) -> dict[str, Any]:
    return {
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "rule_id": finding.rule_id,
        "rule_name": finding.rule_name,
        "message": finding.message,
        "severity": finding.severity,
        "confidence": finding.confidence,
        "fix": finding.fix.to_json() if finding.fix else None,
        "evidence": finding.evidence,
        "cell": finding.cell,
    }


def _finding_from_json(path: str, data: dict[str, Any]) -> Finding:
    fix = data.pop("fix")
    if fix is not None:
        fix = Fix(fix["description"], fix["applicability"], tuple(Edit(**e) for e in fix["edits"]))
    return Finding(path=path, fix=fix, **data)


def _error_to_json(error: FileError) -> dict[str, Any]:
    return {
        "message": error.message,
        "line": error.line,
        "column": error.column,
        "cell": error.cell,
    }


class Cache:
    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self._now = int(time.time() // 86400)  # in days: a re-run rewrites nothing

    @classmethod
    def open(cls, directory: Path | str = CACHE_DIR) -> Cache:
        cache = cls(Path(directory), tool_fingerprint())
        try:
            document = json.loads((cache.directory / _FILE).read_bytes())
        except (OSError, ValueError):
            return cache
        if isinstance(document, dict) and document.get("fingerprint") == cache.fingerprint:
            entries = document.get("entries")
            if isinstance(entries, dict):
                cache.entries = entries
        return cache

    def get(self, key: str, path: str) -> tuple[list[Finding], list[FileError]] | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        try:
            findings = [_finding_from_json(path, dict(f)) for f in entry["findings"]]
            errors = [FileError(path, **e) for e in entry["errors"]]
        except (KeyError, TypeError, AttributeError):
            return None
        if entry.get("used") != self._now:
            entry["used"] = self._now
            self.dirty = True
        return findings, errors

    def put(self, key: str, findings: list[Finding], errors: list[FileError]) -> None:
        if any(not error.is_finding for error in errors):
            return  # internal or environment errors: try again next time
        entry = {
            "findings": [_finding_to_json(f) for f in findings],
            "errors": [_error_to_json(e) for e in errors],
            "used": self._now,
        }
        try:
            json.dumps(entry)
        except (TypeError, ValueError):  # evidence that JSON cannot hold: do not cache
            return
        self.entries[key] = entry
        self.dirty = True

    def save(self) -> None:
        """Write atomically (temporary file, then rename); silently give up on any error."""
        if not self.dirty:
            return
        oldest = self._now - _MAX_AGE_DAYS
        entries = {k: e for k, e in self.entries.items() if e.get("used", 0) >= oldest}
        if len(entries) > _MAX_ENTRIES:
            newest = sorted(entries.items(), key=lambda item: item[1].get("used", 0))
            entries = dict(newest[-_MAX_ENTRIES:])
        document = {"fingerprint": self.fingerprint, "entries": entries}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for name, content in (
                (".gitignore", "# Created by lr-advisor\n*\n"),
                ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"),
            ):
                marker = self.directory / name
                if not marker.exists():
                    marker.write_text(content)
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".results-")
            try:
                os.chmod(temporary, 0o644)
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    json.dump(document, stream, separators=(",", ":"))
                os.replace(temporary, self.directory / _FILE)
            except BaseException:
                os.unlink(temporary)
                raise
        except (OSError, TypeError, ValueError):
            return
