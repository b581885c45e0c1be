"""The one JSON document of DESIGN.md: `{"version", "findings", "probe", "errors"}`."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, TextIO

from advisor import __version__

if TYPE_CHECKING:
    from advisor.runner import RunResult


def document(result: RunResult) -> dict[str, Any]:
    return {
        "version": __version__,
        "findings": [finding.to_json() for finding in result.findings],
        "probe": [report.to_json() for report in result.probe],
        "errors": [error.to_json() for error in result.errors],
    }


def strict(value: Any) -> Any:
    """JSON has no NaN or Infinity: such numbers (a diverged loss) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a numpy scalar
        return strict(value.item())
    return value


def write(result: RunResult, out: TextIO, err: TextIO) -> None:
    # evidence may hold numpy numbers; allow_nan=False proves nothing non-standard goes out
    json.dump(strict(document(result)), out, indent=2, default=str, allow_nan=False)
    out.write("\n")
