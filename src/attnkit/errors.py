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


INTERRUPTED = "attnkit: error: interrupted"
"""The one line the ``attnkit`` command prints on Ctrl-C (exit code 130)."""


def _exit_interrupted(signum: int, frame: object) -> None:
    import os

    os.write(2, (INTERRUPTED + "\n").encode())
    os._exit(130)


def exit_on_interrupt(loading: bool) -> None:
    """Ctrl-C while the ``attnkit`` command loads (``loading=True``): print one line and exit 130 at once.

    Python turns Ctrl-C into ``KeyboardInterrupt`` wherever the program is, and during the command's first
    second that is inside some import (typer, torch), which prints a traceback. The command installs this
    handler as its first statement and hands Ctrl-C back to Python (``loading=False``) once its commands are
    loaded, so a run in progress still stops through ``KeyboardInterrupt`` (and its clean-up). Only from the
    main thread; elsewhere a no-op.

    Example:
        >>> import signal
        >>> exit_on_interrupt(True); signal.getsignal(signal.SIGINT) is _exit_interrupted
        True
        >>> exit_on_interrupt(False); signal.getsignal(signal.SIGINT) is signal.default_int_handler
        True
    """
    import _signal  # the C module: ``signal`` itself imports enum, slow enough to be interrupted

    try:
        _signal.signal(_signal.SIGINT, _exit_interrupted if loading else _signal.default_int_handler)
    except ValueError:  # not the main thread: signals belong to the main thread's program
        pass
