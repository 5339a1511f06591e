"""The error tree. The CLI turns every BenchError into one line and exit code 2.

A traceback that reaches the user means a bug in bench, not in their input.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error that bench reports to the user as one clean line."""


class ConfigError(BenchError):
    """A suite file or option is wrong: names the file, the field path and what is allowed."""


class DataError(BenchError):
    """A dataset is missing, empty or has a malformed record: names the dataset and the record."""


class BackendUnavailable(BenchError):
    """A backend's engine is not installed or cannot run here; carries the one-line install hint."""

    def __init__(self, backend: str, reason: str, hint: str | None = None) -> None:
        self.backend = backend
        self.reason = reason
        self.hint = hint
        msg = f"backend {backend!r} is unavailable: {reason}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class BackendError(BenchError):
    """An engine failed on a request or while loading a model."""


class ModelNotFound(BenchError):
    """A model name is not in the catalog and no path was given, or its file is missing."""
