"""Errors attnkit raises on purpose.

``InputError`` is a ``ValueError`` for bad input (a file, a flag, a checkpoint): the CLI prints its
message on one line and exits with code 2. Anything else that escapes a command is a runtime failure
(exit code 1). Library code may also raise plain ``ValueError``/``TypeError`` for bad arguments.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a missing file, a malformed line, an unknown option value."""


class CheckpointError(InputError):
    """A checkpoint directory that is missing, incomplete, or does not match its config."""
