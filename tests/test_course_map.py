"""The course map (docs/course-map.md): its shell blocks run as written, every ``attnkit`` command in its
tables is a real command with real options, and it follows the course's five texts in order.

Its Python blocks run in ``tests/test_readme.py`` with every other page's.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import ROOT, code_blocks

COURSE_MAP = ROOT / "docs" / "course-map.md"
SHELL_BLOCKS = code_blocks(COURSE_MAP, "bash")


def _shell_env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg", COLUMNS="100")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # attnkit, python
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    return env


def test_course_map_has_shell_blocks():
    assert len(SHELL_BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SHELL_BLOCKS)))
def test_shell_block_runs(index, tmp_path):
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", SHELL_BLOCKS[index]], cwd=tmp_path, env=_shell_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"block {index} failed:\n{SHELL_BLOCKS[index]}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def _table_commands() -> list[str]:
    """Every inline ``attnkit ...`` command of the map's tables (rows start with '|')."""
    rows = [line for line in COURSE_MAP.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    return [cmd for row in rows for cmd in re.findall(r"`(attnkit [^`]+)`", row)]


def _check_command(root, argv: list[str]) -> None:
    """Resolve ``argv`` to one command and parse its options: an unknown command or option, or a value of the
    wrong type, raises. Required options the table leaves out (``--out``, ``--data``) are allowed."""
    ctx, command = None, root
    name = "attnkit"
    while True:
        try:
            ctx = command.make_context(name, argv, parent=ctx)
        except Exception as err:
            if type(err).__name__ == "MissingParameter":  # parsed the options, then found a required one missing
                return
            raise
        if not hasattr(command, "commands"):
            return
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]  # a group keeps its sub-command there
        if not rest:
            return
        name, *argv = rest
        assert name in command.commands, f"no command {name!r} under {ctx.command_path!r}"
        command = command.commands[name]


def test_table_commands_exist():
    import typer

    from attnkit.cli import main

    main._register()
    root = typer.main.get_command(main.app)
    commands = _table_commands()
    assert len(commands) >= 15
    for command in commands:
        _check_command(root, shlex.split(command)[1:])


def test_table_commands_check_unknown_options():
    """The check itself: a misspelt option or command is caught."""
    import typer

    from attnkit.cli import main

    main._register()
    root = typer.main.get_command(main.app)
    with pytest.raises(Exception, match="--widht"):
        _check_command(root, ["train", "seq2seq", "--widht", "3"])
    with pytest.raises(AssertionError, match="seq3seq"):
        _check_command(root, ["train", "seq3seq"])


def test_course_map_follows_the_course_in_order():
    """One section per course text, in the order of /work/shared/course/README.md's table (01 .. 05)."""
    text = COURSE_MAP.read_text(encoding="utf-8")
    titles = re.findall(r"^## (\d)\. ", text, flags=re.M)
    assert titles == ["1", "2", "3", "4", "5"]
    for term in ("Bahdanau", "vector de contexto", "costo cuadrático", "Multihead", "Positional Encoding",
                 "Masked Language Models", "cross-attention", "Luong (global)", "Luong (local)",
                 "alimentación de entradas", "atención dura", "atención suave"):
        assert term in text, term
