"""The references the probe's tests compare against: numpy's least squares, and a relative
error that refuses to broadcast (shared by the in-memory, streamed and cluster tests)."""

from __future__ import annotations

import numpy as np


def lstsq(x: np.ndarray, y: np.ndarray, bias: bool) -> np.ndarray:
    a = np.hstack([x, np.ones((x.shape[0], 1))]) if bias else x
    return np.linalg.lstsq(a, y, rcond=None)[0]


def relative(found, expected) -> float:
    found, expected = np.asarray(found, dtype=float), np.asarray(expected, dtype=float)
    assert found.shape == expected.shape  # no broadcasting
    return float(np.max(np.abs(found - expected)) / max(np.max(np.abs(expected)), 1e-300))
