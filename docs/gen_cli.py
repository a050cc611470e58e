"""The command-line reference, rendered from the ``attnkit`` command itself.

Walks the click command tree that typer builds from ``attnkit.cli.main.app`` and writes each command's
``--help`` (its description, usage line, arguments and options with their defaults) as Markdown, so the
reference can never drift from the code. The docs build calls :func:`cli_markdown` (``docs/hooks.py``);
``python docs/gen_cli.py`` prints the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _root_command():
    """The click group of ``attnkit``, every command module registered (this repository's code first)."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    import typer

    from attnkit.cli import main

    main._register()
    return typer.main.get_command(main.app)


def _walk(command, path: list[str]):
    """Yield ``(path, command)`` for every command under ``command``, groups before their commands."""
    yield path, command
    for name in sorted(getattr(command, "commands", {})):
        yield from _walk(command.commands[name], [*path, name])


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("[", "\\[").replace("<", "&lt;")


def _default(param) -> str:
    default = param.default
    if param.required or default is None or (getattr(param, "is_flag", False) and default is False
                                              and not param.secondary_opts):
        return ""
    if getattr(param, "is_flag", False) and param.secondary_opts:
        return f"`{param.opts[0] if default else param.secondary_opts[0]}`"
    if isinstance(default, (list, tuple)):
        return ""
    return f"`{default}`"


def _param_row(param) -> str:
    if type(param).__name__.endswith("Argument"):
        name = f"`{param.name.upper()}`" + (" ..." if param.nargs == -1 else "")
        kind = "argument" + (", required" if param.required else "")
    else:
        name = " / ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        kind = "required" if param.required else ""
    return f"| {name} | {_cell(param.help or '')} | {kind} | {_default(param)} |"


def _command_markdown(path: list[str], command, root) -> list[str]:
    ctx = root.make_context("attnkit", [], resilient_parsing=True)
    for name in path[1:]:
        ctx = ctx.command.commands[name].make_context(name, [], parent=ctx, resilient_parsing=True)
    usage = " ".join(["Usage:", ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines = [f"## `{' '.join(path)}`", "", _cell(command.help or ""), "", "```text", usage, "```", ""]
    if hasattr(command, "commands"):
        lines += ["| command | what it does |", "|---|---|"]
        for name in sorted(command.commands):
            sub = command.commands[name]
            anchor = "-".join([*path, name])
            lines.append(f"| [`{' '.join([*path, name])}`](#{anchor}) | {_cell(sub.help or '')} |")
        return [*lines, ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        lines += ["| argument / option | meaning | kind | default |", "|---|---|---|---|"]
        lines += [_param_row(p) for p in params]
    return [*lines, "", "`-h`, `--help` prints this.", ""]


def cli_markdown() -> str:
    """The whole command-line reference page as Markdown, one section per command."""
    root = _root_command()
    out = ["# Command-line reference", "",
           "Generated from the `attnkit` command itself when the site is built: each section is one "
           "command's `--help`. Every command takes `--debug` (show the traceback of an error); errors are "
           "one line on stderr, exit code 2 for bad input, 1 for runtime failures.", ""]
    for path, command in _walk(root, ["attnkit"]):
        out += _command_markdown(path, command, root)
    return "\n".join(out)


if __name__ == "__main__":
    print(cli_markdown())
