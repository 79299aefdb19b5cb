"""Errors that users see from the streams package and the CLI."""


class ThreadrecError(Exception):
    """Base of errors the CLI reports as one clear line."""


class BrokerError(ThreadrecError):
    """The broker could not be started, reached or configured."""


class DataError(ThreadrecError):
    """Input data is malformed; the message names the file, line and problem."""
