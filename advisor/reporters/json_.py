"""The one JSON document of DESIGN.md: `{"version", "findings", "probe", "errors"}`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TextIO

from advisor import __version__

if TYPE_CHECKING:
    from advisor.runner import RunResult


def document(result: RunResult) -> dict:
    return {
        "version": __version__,
        "findings": [finding.to_json() for finding in result.findings],
        "probe": [report.to_json() for report in result.probe],
        "errors": [error.to_json() for error in result.errors],
    }


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    json.dump(document(result), out, indent=2, default=str)  # evidence may hold numbers of numpy
    out.write("\n")
