"""The one pass over a file that extracts its training facts."""

from __future__ import annotations

import libcst as cst

from advisor.facts.extract import FactsExtractor
from advisor.facts.model import FileFacts


def extract_facts(module: cst.Module, path: str = "<string>") -> FileFacts:
    """Walk `module` once and return what it does with models, optimizers, losses and data."""
    return FactsExtractor(module, path).run()
