"""The one pass over a file that extracts its training facts."""

from __future__ import annotations

import libcst as cst

from advisor.facts.model import FileFacts


def extract_facts(module: cst.Module, path: str = "<string>") -> FileFacts:
    return FileFacts(path=path, module=module)
