"""Errors that users see from the model package (the CLI prints them as one line)."""


class ModelError(Exception):
    """Base of model-package errors a user can fix (bad path, bad data, bad option)."""


class CheckpointError(ModelError):
    """A checkpoint directory is missing, incomplete or inconsistent."""


class DataDirError(ModelError):
    """A prepared data directory is missing a file or holds a malformed line."""


class SummaryError(ModelError):
    """The summary endpoint failed or answered something unusable."""
