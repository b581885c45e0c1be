"""Numbers as messages show them: short, readable, never a misleading number of digits."""

from __future__ import annotations

import math


def figure(value: float) -> str:
    """A number as a message shows it: 3 significant digits, exponent when far from 1."""
    if not math.isfinite(value):
        return "inf"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.3g}"
    return f"{value:.2g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.3g}"


def step_count(value: float) -> str:
    """A number of steps as a message shows it: whole below 1e5, then 3 significant digits."""
    if not math.isfinite(value):
        return "infinitely many"
    if value < 1e5:
        return str(math.ceil(value))
    return figure(value)


__all__ = ["figure", "step_count"]
