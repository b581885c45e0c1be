"""SARIF 2.1.0, the format code-scanning services read (GitHub code scanning, Azure DevOps,
the VS Code SARIF viewer): one run, the whole rule catalogue in `tool.driver.rules`, one
result a finding.

Choices worth knowing:

- File errors (a syntax error, undecodable bytes) and internal errors are
  `invocations[0].toolExecutionNotifications`, not results: GitHub code scanning rejects
  results without a `ruleId`, and these errors belong to no rule.
- Columns are counted in characters (what libcst and Python's parser count), which SARIF
  must be told: `columnKind` is `unicodeCodePoints`, not its default of UTF-16 code units.
- A notebook finding's region counts lines within its code cell, as every other format
  does; the region's property bag names the cell (`{"cell": 3}`), since lines in the
  `.ipynb` file's JSON are something else.
- Fixes are written only where they are edits of a plain file: a display-only fix is a
  hint with no edit to express, and a notebook's edits are in cell coordinates, which SARIF
  cannot express as replacements in the file. Every fix is also kept in the result's
  property bag, as in the JSON format.
- The probe's reports go to `runs[0].properties.probe`, exactly as the JSON format has them.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from advisor import __version__
from advisor.findings import FileError, Finding
from advisor.reporters.text import error_line
from advisor.source import STDIN

if TYPE_CHECKING:
    from advisor.rule import BaseRule
    from advisor.runner import RunResult

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# The project's home, as the README's pre-commit snippet names it.
INFORMATION_URI = "https://github.com/your-org/lr-advisor"
SRCROOT = "%SRCROOT%"
# Notification descriptors (`tool.driver.notifications`), in this order: errors point at them.
FILE_ERROR, RUN_ERROR = "file-error", "run-error"
NOTIFICATIONS = (
    {
        "id": FILE_ERROR,
        "name": "file-error",
        "shortDescription": {
            "text": "A file that could not be checked: a syntax error, undecodable bytes, "
            "too deeply nested code. Counts as a finding (exit code 1)."
        },
        "defaultConfiguration": {"level": "error"},
    },
    {
        "id": RUN_ERROR,
        "name": "run-error",
        "shortDescription": {
            "text": "A path that does not exist, or a failure of lr-advisor itself (exit code 2)."
        },
        "defaultConfiguration": {"level": "error"},
    },
)


def json_safe(value: Any) -> Any:
    """`value` as strict JSON: evidence and probe numbers may be numpy scalars or arrays, nan
    or inf, which `json` would write as the invalid tokens `NaN` and `Infinity`; those become
    null, and anything else JSON cannot hold becomes its text (as the JSON format does)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars
        converted = value.tolist()
        if type(converted) is not type(value):
            return json_safe(converted)
    return str(value)


def artifact_location(path: str) -> dict[str, Any] | None:
    """A file URI: relative paths stay relative (to `%SRCROOT%`, the folder lr-advisor ran
    in, which code scanning maps onto the repository); None for standard input without a
    name and for pseudo paths such as `<probe>`, which name no file."""
    if path == STDIN or (path.startswith("<") and path.endswith(">")):
        return None
    if os.path.isabs(path):
        return {"uri": Path(path).as_uri()}
    posix = path.replace("\\", "/")
    while posix.startswith("./"):
        posix = posix[2:]
    # ':' is escaped too: in a relative reference's first segment it would read as a scheme
    return {"uri": quote(posix, safe="/!$&'()*+,;=@"), "uriBaseId": SRCROOT}


def _region(
    line: int | None,
    column: int | None,
    end_line: int | None = None,
    end_column: int | None = None,
    cell: int | None = None,
) -> dict[str, Any] | None:
    if line is None or line < 1:
        return None
    region: dict[str, Any] = {"startLine": line}
    if column is not None and column >= 1:
        region["startColumn"] = column
    if end_line is not None and end_line >= line:
        region["endLine"] = end_line
        start = region.get("startColumn")
        if start and end_column and (end_line > line or end_column >= start):
            region["endColumn"] = end_column
    if cell is not None:
        region["properties"] = {"cell": cell}
    return region


def _location(path: str, region: dict[str, Any] | None) -> dict[str, Any] | None:
    artifact = artifact_location(path)
    if artifact is None:
        return None
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if region is not None:
        physical["region"] = region
    return {"physicalLocation": physical}


def _level(severity: str) -> str:
    return "error" if severity == "error" else "warning"


def rule_descriptor(rule: BaseRule) -> dict[str, Any]:
    """A catalogue rule as SARIF describes rules: code scanning shows `help.markdown` (the
    text of `lr-advisor explain`) next to every alert of the rule."""
    documentation = rule.documentation()
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": " ".join(rule.what_it_does.split())},
        "help": {"text": documentation, "markdown": documentation},
        "defaultConfiguration": {"level": _level(rule.severity)},
        "properties": {
            "tags": ["pytorch", "probe" if rule.probe else "static"],
            "severity": rule.severity,
        },
    }


def _fixes(finding: Finding, location: dict[str, Any] | None) -> list[dict[str, Any]]:
    fix = finding.fix
    if fix is None or not fix.edits or finding.cell is not None or location is None:
        return []
    replacements = [
        {
            "deletedRegion": {
                "startLine": edit.line,
                "startColumn": edit.column,
                "endLine": edit.end_line,
                "endColumn": edit.end_column,
            },
            "insertedContent": {"text": edit.content},
        }
        for edit in fix.edits
    ]
    artifact = location["physicalLocation"]["artifactLocation"]
    return [
        {
            "description": {"text": fix.description},
            "artifactChanges": [{"artifactLocation": artifact, "replacements": replacements}],
            "properties": {"applicability": fix.applicability},
        }
    ]


def _result(finding: Finding, index: int) -> dict[str, Any]:
    region = _region(
        finding.line, finding.column, finding.end_line, finding.end_column, finding.cell
    )
    location = _location(finding.path, region)
    properties: dict[str, Any] = {
        "confidence": finding.confidence,
        "evidence": json_safe(finding.evidence),
    }
    if finding.fix is not None:
        properties["fix"] = json_safe(finding.fix.to_json())
    data: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": _level(finding.severity),
        "message": {"text": finding.message},
    }
    if location is not None:
        data["locations"] = [location]
    fixes = _fixes(finding, location)
    if fixes:
        data["fixes"] = fixes
    data["properties"] = properties
    return data


def _notification(error: FileError) -> dict[str, Any]:
    kind = FILE_ERROR if error.is_finding else RUN_ERROR
    data: dict[str, Any] = {
        "level": "error",
        "message": {"text": error.message},
        "descriptor": {"id": kind, "index": 0 if error.is_finding else 1},
        "properties": {"path": error.path, "isFinding": error.is_finding},
    }
    location = _location(error.path, _region(error.line, error.column, cell=error.cell))
    if location is not None:
        data["locations"] = [location]
    return data


def document(result: RunResult) -> dict[str, Any]:
    """The SARIF log of a run, as a JSON-ready dict."""
    from advisor.rules import ALL_RULES

    index = {rule.id: position for position, rule in enumerate(ALL_RULES)}
    descriptors = [rule_descriptor(rule) for rule in ALL_RULES]
    for finding in result.findings:  # a rule from outside the catalogue (a plugin, a test)
        if finding.rule_id not in index:
            index[finding.rule_id] = len(descriptors)
            descriptors.append(
                {
                    "id": finding.rule_id,
                    "name": finding.rule_name,
                    "defaultConfiguration": {"level": _level(finding.severity)},
                }
            )
    cwd = Path.cwd().as_uri()
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "lr-advisor",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
                "notifications": list(NOTIFICATIONS),
            }
        },
        "invocations": [
            {
                "executionSuccessful": not result.internal_errors,
                "toolExecutionNotifications": [_notification(e) for e in result.errors],
            }
        ],
        "originalUriBaseIds": {SRCROOT: {"uri": cwd if cwd.endswith("/") else cwd + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, index[f.rule_id]) for f in result.findings],
        "properties": {
            "probe": json_safe([report.to_json() for report in result.probe]),
            "files": result.files,
            "parsed": result.parsed,
            "cached": result.cached,
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    """The log on `out` (usually redirected to a file for upload), and internal errors also
    on `err`, so that the job's log says why the exit code is 2."""
    json.dump(document(result), out, indent=2, allow_nan=False)
    out.write("\n")
    for error in result.internal_errors:
        err.write(error_line(error) + "\n")
