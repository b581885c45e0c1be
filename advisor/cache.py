"""Results of unchanged files, so that re-checking an unchanged tree costs a stat a file.

One JSON document, `.lr_advisor_cache/results.json` in the current folder, holds:

- `entries`: a file's findings and errors, keyed by a digest of its bytes, the name it is
  shown under (a rule may look at it: `test_*.py`) and the rules that apply to it. A new
  configuration or selection gives other keys, never a stale result.
- `files`: for each absolute path, its (size, mtime, ctime, inode) when last read and the
  digest of its bytes then, so that a file whose stat has not changed is not read or hashed
  again. Only files last changed a while before they were read are recorded (like git's
  "racily clean" rule): a write that the timestamps' resolution could hide is always caught,
  and any write moves ctime, which nobody can set back.
- `rules`: the catalogue (ids and names) of the tool that wrote it, so that a run whose every
  file is served from the cache never imports the rules (nor libcst).

The whole document is keyed by the tool's version and a fingerprint of its own source files:
a new version (or, while developing, an edited rule) starts afresh.

Two runs may share the folder: a save re-reads the document under a lock, merges what the
other run wrote, and replaces it atomically (a temporary file, then a rename), so a reader
sees the old or the new document, never half of one. The cache is a convenience: a document
that cannot be read or parsed, or an entry of the wrong shape, is ignored, and when the
folder cannot be written the run goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from advisor import __version__
from advisor.findings import Edit, FileError, Finding, Fix

CACHE_DIR = ".lr_advisor_cache"
FORMAT = 2
_FILE = "results.json"
_LOCK = "lock"
_MAX_ENTRIES = 50_000
_MAX_AGE_DAYS = 30  # entries unused this long are dropped
_LOCK_WAIT = 2.0  # seconds to wait for another run's save before saving without the lock
# A file changed less than this before it was read is hashed again next time, whatever its
# stat says: coarse timestamps (1 s or 2 s on some file systems) could hide a second write.
STAT_MIN_AGE_NS = 2_000_000_000


def tool_fingerprint() -> str:
    """The version plus the size and modification time of every module of the tool.

    The `rules` package is located without being imported: importing it imports libcst,
    which a run served from the cache must not pay for."""
    import importlib.util

    import advisor

    directories = list(advisor.__path__)
    try:
        spec = importlib.util.find_spec("advisor.rules")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        directories.extend(spec.submodule_search_locations)
    parts = [__version__]
    for directory in directories:
        for folder, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    try:
                        stat = os.stat(os.path.join(folder, name))
                    except OSError:
                        continue
                    parts.append(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def content_digest(data: bytes) -> str:
    """A file's bytes, hashed (sha256: OpenSSL's is the fastest hashlib offers here)."""
    return hashlib.sha256(data).hexdigest()[:32]


def ruleset_digest(rule_ids: Sequence[str]) -> str:
    """The rules that apply to a file, hashed once per distinct set."""
    text = json.dumps(list(rule_ids))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_key(digest: str, path: str, ruleset: str) -> str:
    """An entry's key: the file's content digest, its name as shown, and its rule set."""
    kind = "ipynb" if path.endswith(".ipynb") else "py"
    text = f"{digest}\0{kind}\0{path}\0{ruleset}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


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


_FINDING_FIELDS = {
    "line": int,
    "column": int,
    "end_line": int,
    "end_column": int,
    "rule_id": str,
    "rule_name": str,
    "message": str,
    "severity": str,
    "confidence": str,
    "fix": (dict, type(None)),
    "evidence": dict,
    "cell": (int, type(None)),
}
_EDIT_FIELDS = {
    "line": int,
    "column": int,
    "end_line": int,
    "end_column": int,
    "content": str,
    "cell": (int, type(None)),
}
_ERROR_FIELDS = {
    "message": str,
    "line": (int, type(None)),
    "column": (int, type(None)),
    "cell": (int, type(None)),
}


def _checked(data: Any, fields: dict[str, Any], optional: tuple[str, ...] = ()) -> dict:
    """`data` if it is a dict with exactly these keys (some optional) of these types: a
    cache edited by hand or by a bug must give a miss, not a finding that breaks a report."""
    if not isinstance(data, dict) or not set(fields) - set(optional) <= set(data) <= set(fields):
        raise TypeError("not a cache entry")
    for key, value in data.items():
        if not isinstance(value, fields[key]) or isinstance(value, bool):
            raise TypeError(f"bad {key}")
    return data


def _finding_from_json(path: str, data: Any) -> Finding:
    data = dict(_checked(data, _FINDING_FIELDS))
    fix = data.pop("fix")
    if fix is not None:
        if not (
            isinstance(fix.get("description"), str)
            and isinstance(fix.get("applicability"), str)
            and isinstance(fix.get("edits"), list)
        ):
            raise TypeError("bad fix")
        edits = tuple(Edit(**_checked(e, _EDIT_FIELDS, ("cell",))) for e in fix["edits"])
        fix = Fix(fix["description"], fix["applicability"], edits)
    return Finding(path=path, fix=fix, **data)


def _error_to_json(error: FileError) -> dict[str, Any]:
    return {
        "message": error.message,
        "line": error.line,
        "column": error.column,
        "cell": error.cell,
    }


def _signature(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _read_document(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # missing, half-written elsewhere, corrupt
        return None
    return document if isinstance(document, dict) else None


def _dict(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    return value if isinstance(value, dict) else {}


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An advisory lock on the folder while a save reads, merges and writes; after
    `_LOCK_WAIT` seconds (or where locks do not exist) it saves without one: the rename
    keeps the document whole either way, and only entries could be lost."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        handle = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + _LOCK_WAIT
        locked = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


class Cache:
    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.entries: dict[str, dict[str, Any]] = {}
        self.files: dict[str, list[Any]] = {}
        self.catalogue: list[tuple[str, str]] | None = None  # (id, name) of every rule
        self._new_entries: dict[str, dict[str, Any]] = {}
        self._new_files: dict[str, list[Any]] = {}
        self._new_catalogue = False
        self._touched = False  # an entry's "used" day moved
        self._today = int(time.time() // 86400)  # in days: a re-run rewrites nothing
        self._now_ns = time.time_ns()

    @classmethod
    def open(cls, directory: Path | str = CACHE_DIR) -> Cache:
        cache = cls(Path(directory), tool_fingerprint())
        document = _read_document(cache.directory / _FILE)
        if document is None or not cache._matches(document):
            return cache
        cache.entries = _dict(document, "entries")
        cache.files = _dict(document, "files")
        rules = document.get("rules")
        if isinstance(rules, list) and rules:
            try:
                catalogue = [(str(rule_id), str(name)) for rule_id, name in rules]
            except (TypeError, ValueError):
                catalogue = None
            cache.catalogue = catalogue
        return cache

    def _matches(self, document: dict[str, Any]) -> bool:
        return document.get("format") == FORMAT and document.get("fingerprint") == self.fingerprint

    @property
    def dirty(self) -> bool:
        return bool(self._new_entries or self._new_files or self._new_catalogue or self._touched)

    # -- which bytes a path holds, from its stat ------------------------------------------
    def digest_for(self, path: str, stat: os.stat_result) -> str | None:
        """The digest of the file's bytes when its stat is the one recorded; else None."""
        record = self.files.get(path)
        if not isinstance(record, list) or len(record) < 5 or record[:4] != _signature(stat):
            return None
        digest = record[4]
        if not isinstance(digest, str):
            return None
        if len(record) < 6 or record[5] != self._today:
            self._new_files[path] = [*record[:5], self._today]
        return digest

    def remember(self, path: str, stat: os.stat_result, digest: str) -> None:
        """Record that the file with this stat (taken before it was read) holds these bytes,
        unless it changed too recently for its timestamps to tell a later write apart."""
        newest = max(stat.st_mtime_ns, stat.st_ctime_ns)
        if self._now_ns - newest < STAT_MIN_AGE_NS:
            return
        record = [*_signature(stat), digest, self._today]
        if self.files.get(path) != record:
            self._new_files[path] = record
            self.files[path] = record

    def set_catalogue(self, catalogue: list[tuple[str, str]]) -> None:
        if self.catalogue != catalogue:
            self.catalogue = catalogue
            self._new_catalogue = True

    # -- results --------------------------------------------------------------------------
    @staticmethod
    def _unchanged(depends: Any) -> bool:
        """Every file a result was computed from still has the stat it had then."""
        if not isinstance(depends, list):
            return not depends
        for item in depends:
            if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
                return False
            try:
                stat = os.stat(item[0])
            except (OSError, ValueError):
                if item[1] is not None:
                    return False
                continue
            if item[1] != _signature(stat):
                return False
        return True

    def get(self, key: str, path: str) -> tuple[list[Finding], list[FileError]] | None:
        entry = self.entries.get(key)
        if not isinstance(entry, dict) or not self._unchanged(entry.get("depends", ())):
            return None
        try:
            findings = [_finding_from_json(path, f) for f in entry["findings"]]
            errors = [FileError(path, **_checked(e, _ERROR_FIELDS)) for e in entry["errors"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if entry.get("used") != self._today:
            entry["used"] = self._today
            self._touched = True
            self._new_entries[key] = entry
        return findings, errors

    def put(
        self,
        key: str,
        findings: list[Finding],
        errors: list[FileError],
        depends: Sequence[tuple[str, list[int] | None]] = (),
    ) -> None:
        """Keep a result; `depends`: the other files it was computed from (a script's data
        files), with their stat before they were read (None: missing)."""
        if any(not error.is_finding for error in errors):
            return  # internal or environment errors: try again next time
        for _path, signature in depends:
            if signature is not None and self._now_ns - max(signature[1:3]) < STAT_MIN_AGE_NS:
                return  # changed too recently for its stat to tell a later write apart
        entry: dict[str, Any] = {
            "findings": [_finding_to_json(f) for f in findings],
            "errors": [_error_to_json(e) for e in errors],
            "used": self._today,
        }
        if depends:
            entry["depends"] = [[path, signature] for path, signature in dict(depends).items()]
        try:
            json.dumps(entry)
        except (TypeError, ValueError):  # evidence that JSON cannot hold: do not cache
            return
        self.entries[key] = entry
        self._new_entries[key] = entry

    # -- writing --------------------------------------------------------------------------
    def save(self) -> None:
        """Merge with what another run may have saved meanwhile, then write atomically
        (temporary file, then rename); silently give up on any error."""
        if not self.dirty:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for name, content in (
                (".gitignore", "# Created by lr-advisor\n*\n"),
                ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"),
            ):
                marker = self.directory / name
                if not marker.exists():
                    marker.write_text(content)
            with _locked(self.directory):
                self._write(self._merged())
        except (OSError, TypeError, ValueError, RecursionError):
            return

    def _merged(self) -> dict[str, Any]:
        """The document on disk now (if it is this tool's) with this run's changes on top."""
        entries, files, catalogue = self.entries, self.files, self.catalogue
        current = _read_document(self.directory / _FILE)
        if current is not None and self._matches(current):
            entries = {**_dict(current, "entries"), **self._new_entries}
            files = {**_dict(current, "files"), **self._new_files}
            if catalogue is None and isinstance(current.get("rules"), list):
                catalogue = current["rules"]
        oldest = self._today - _MAX_AGE_DAYS

        def fresh(used: Any) -> bool:
            return isinstance(used, int) and used >= oldest

        entries = {k: e for k, e in entries.items() if isinstance(e, dict) and fresh(e.get("used"))}
        if len(entries) > _MAX_ENTRIES:
            newest = sorted(entries.items(), key=lambda item: item[1]["used"])
            entries = dict(newest[-_MAX_ENTRIES:])
        files = {p: r for p, r in files.items() if isinstance(r, list) and fresh(r[-1])}
        if len(files) > _MAX_ENTRIES:
            newest_files = sorted(files.items(), key=lambda item: item[1][-1])
            files = dict(newest_files[-_MAX_ENTRIES:])
        return {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "rules": catalogue,
            "entries": entries,
            "files": files,
        }

    def _write(self, document: dict[str, Any]) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".results-")
        try:
            os.chmod(temporary, 0o644)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, separators=(",", ":"))
            os.replace(temporary, self.directory / _FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
