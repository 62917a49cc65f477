"""Error types. A user mistake is an IgniteError: the CLI prints its one-line message and exits
with its code, never a traceback. A bad *record* is not an error: it is data (a status)."""
from __future__ import annotations


class IgniteError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code = 1


class UsageError(IgniteError):
    """Wrong flag, missing file, unknown model: the user can fix it. Exit 2."""

    exit_code = 2


class ModelError(UsageError):
    """A model that cannot be found or read."""


class InputError(UsageError):
    """An input that cannot be opened or has no usable format."""


class InputChanged(IgniteError):
    """An input file changed while it was read: the output would not match it. Exit 2."""

    exit_code = 2


class OutputError(IgniteError):
    """Writing an output failed (disk full, permissions)."""

    exit_code = 1


class VerificationError(OutputError):
    """A finished file does not hold what was committed (row count, size): never exit 0 over it."""


class TooManyErrors(IgniteError):
    """More bad records than --max-errors allows."""

    exit_code = 3
