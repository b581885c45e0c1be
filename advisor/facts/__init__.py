"""The one pass over a file that extracts its training facts."""

from __future__ import annotations

import libcst as cst

from advisor.facts.extract import FactsExtractor
from advisor.facts.files import DataFileLog
from advisor.facts.model import FileFacts


def extract_facts(
    module: cst.Module, path: str = "<string>", data_files: DataFileLog | None = None
) -> FileFacts:
    """Walk `module` once and return what it does with models, optimizers, losses and data.
    `data_files`: where the pass records the data files it reads (default: a new log, in
    the facts' `data_files`)."""
    extractor = FactsExtractor(module, path)
    if data_files is not None:
        extractor.facts.data_files = data_files
    return extractor.run()
