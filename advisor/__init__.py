"""lr-advisor: a diagnostic linter and advisor for PyTorch training scripts."""

__version__ = "0.1.0"
