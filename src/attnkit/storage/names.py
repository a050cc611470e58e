"""Names read from files: confined to their directory or refused.

A ``config.json`` names its tokenizer files, a weights index its shards, a captions file its images.
Such a name came from a file attnkit did not write itself, so it is checked once, here, before anything
is opened: ``confined_file(directory, name, source)`` returns ``directory / name`` only if the name is
relative, has no ``..``, resolves (links followed) to a path inside ``directory``, and is a regular file;
otherwise one ``InputError`` line names the file the entry came from and the entry.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from attnkit.errors import InputError

PathLike = str | os.PathLike[str]


def confined_file(directory: PathLike, name: object, source: PathLike) -> Path:
    """``directory / name`` once ``name`` is a regular file inside ``directory``; ``InputError`` otherwise.

    Args:
        directory: the directory the name must stay in.
        name: the entry as read from ``source`` (anything: it is checked to be a non-empty string).
        source: the file the entry was read from (named in the message).

    Returns:
        The path ``directory / name``.

    Raises:
        InputError: ``name`` is not a non-empty string, is absolute, holds ``..``, leads outside
            ``directory`` through a symbolic link, does not exist, or is not a regular file.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.json").write_text("{}")
        >>> confined_file(root, "a.json", root / "config.json").name
        'a.json'
        >>> confined_file(root, "../a.json", root / "config.json")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: .../config.json: entry '../a.json' must be a name inside ... (relative, without '..')
    """
    directory = Path(directory)
    where = f"{source}: entry {name!r}"
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise InputError(f"{where} is not a file name. Expected a non-empty relative path")
    parts = PurePosixPath(name).parts + PureWindowsPath(name).parts
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or ".." in parts:
        raise InputError(f"{where} must be a name inside {directory} (relative, without '..')")
    path = directory / name
    try:
        real, home = path.resolve(strict=True), directory.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"{where}: {path} does not exist") from None
    if not real.is_relative_to(home):
        raise InputError(f"{where} leads outside {directory} through a symbolic link (to {real})")
    if not real.is_file():
        raise InputError(f"{where}: {path} is not a regular file")
    return path
