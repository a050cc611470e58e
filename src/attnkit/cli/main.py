"""The ``attnkit`` command.

Each command group lives in its own module under ``attnkit.cli`` and registers itself on ``app``
(or on the ``train`` / ``experiment`` sub-apps) when imported; ``COMMAND_MODULES`` lists them.

Errors: a one-line message on stderr, exit code 2 for usage and input errors, 1 for runtime failures,
and no traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import os
import sys

from attnkit.errors import InputError, exit_on_interrupt

if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "attnkit":  # the console script: before any import
    exit_on_interrupt(True)

import contextlib  # noqa: E402  (Ctrl-C is handled from here on)
import importlib  # noqa: E402
import traceback  # noqa: E402

import click  # noqa: E402
import typer  # noqa: E402

try:  # typer >= 0.25 ships its own copy of click: catch that copy's exceptions too
    from typer._click import exceptions as _typer_click
except ImportError:  # older typer uses click itself
    _typer_click = click.exceptions

_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_USAGE = (click.ClickException, _typer_click.ClickException)

app = typer.Typer(
    name="attnkit",
    help="Attention mechanisms and the models built on them: train, translate, generate, see and benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
train_app = typer.Typer(help="Train a model on built-in data or your own files.", no_args_is_help=True)
experiment_app = typer.Typer(help="Experiments that measure the course's claims.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(experiment_app, name="experiment")


def _print_version(value: bool) -> None:
    """``attnkit --version``: the installed distribution's version (importlib.metadata)."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"attnkit {version('attnkit')}")
        except PackageNotFoundError:  # run from a source tree that is not installed
            from attnkit import __version__

            print(f"attnkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, metavar="",
                                       help="Print attnkit's version and exit.")) -> None:
    """Options of ``attnkit`` itself (before the command)."""

# Modules that register commands when imported (one per command group).
COMMAND_MODULES: list[str] = [
    "attnkit.cli.demo",
    "attnkit.cli.seq2seq",
    "attnkit.cli.transformer",
    "attnkit.cli.experiment",
    "attnkit.cli.bench",
    "attnkit.cli.tune",
    "attnkit.cli.lm",
    "attnkit.cli.caption",
    "attnkit.cli.viz",
    "attnkit.cli.lesson",
    "attnkit.cli.classify",
]


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


def check_utf8(args: list[str]) -> None:
    """Refuse a command-line argument that is not UTF-8 (Python keeps its bad bytes as surrogates, which a
    tokenizer or a file name would choke on much later) with one line naming it.

    Example:
        >>> check_utf8(["translate", "caf" + chr(0xDCE9)])  # what Python makes of the Latin-1 byte 0xe9
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: argument 2 ('caf\\xe9') is not valid UTF-8 (byte 0xe9). Expected UTF-8 text: convert it (e.g. with iconv) or use a UTF-8 terminal (LANG=C.UTF-8)
    """
    for i, arg in enumerate(args):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as err:
            raw = arg.encode("utf-8", "surrogateescape")
            shown = str(raw)[2:-1]
            raise InputError(f"argument {i + 1} ('{shown}') is not valid UTF-8 (byte 0x{ord(arg[err.start]) & 0xFF:02x}). "
                             f"Expected UTF-8 text: convert it (e.g. with iconv) or use a UTF-8 terminal "
                             f"(LANG=C.UTF-8)") from None


def _fail(message: str, code: int) -> int:
    first = " ".join(str(message).strip().splitlines()) or "unknown error"
    print(f"attnkit: error: {first}", file=sys.stderr)
    return code


def _writes_once():
    from attnkit.storage import written_once

    return written_once()


@contextlib.contextmanager
def _release_out_dirs():
    from attnkit.storage import release_directories

    try:
        yield
    finally:
        release_directories()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also the console-script entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        check_utf8(args)
        exit_on_interrupt(True)  # Ctrl-C while the commands load (torch among them): one line, exit 130
        _register()
        from attnkit.cli._options import bound_options  # loaded with the commands, after the Ctrl-C handler

        exit_on_interrupt(False)  # from here Ctrl-C stops a command through KeyboardInterrupt and its clean-up
        # the context carries the arguments, so a report can write the exact command line; every command
        # writes each name at most once (outputs kept current on purpose: storage.updating); --out locks end here
        command = bound_options(typer.main.get_command(app))  # every numeric option checked against its bounds
        with _writes_once(), _release_out_dirs():
            code = command(args=args, prog_name="attnkit", standalone_mode=False, obj={"argv": args})
        if code == 130:  # typer turns Ctrl-C inside a command into this return value
            return _fail("interrupted", 130)
        return code if isinstance(code, int) and not isinstance(code, bool) else 0
    except _EXIT as exc:
        return int(exc.exit_code or 0)
    except _ABORT:
        return _fail("aborted", 1)
    except _USAGE as exc:  # usage errors: unknown option, missing argument, bad choice
        if type(exc).__name__ == "NoArgsIsHelpError":  # `attnkit` or `attnkit train` alone: help was shown
            return 0
        if debug:
            traceback.print_exc()
        return _fail(exc.format_message(), exc.exit_code if exc.exit_code else 2)
    except KeyboardInterrupt:  # Ctrl-C while options are parsed
        return _fail("interrupted", 130)
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        if debug:
            traceback.print_exc()
        return _fail(f"{exc}", 2)
    except Exception as exc:  # runtime failure
        if debug:
            traceback.print_exc()
        return _fail(f"{type(exc).__name__}: {exc}", 1)


if __name__ == "__main__":  # `python -m attnkit.cli.main`: run the imported module, where commands register
    from attnkit.cli.main import main as _main

    sys.exit(_main())
