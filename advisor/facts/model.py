"""Records of the training facts of one file."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst


@dataclass
class FileFacts:
    path: str
    module: cst.Module
