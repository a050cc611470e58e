"""An output directory's life: one run at a time (a lock), and a record of the files attnkit wrote in it.

``lock_directory(out)`` takes ``fcntl.flock`` on ``out/.attnkit.lock`` for the rest of the command (the
kernel drops it when the process ends, however it ends, so a killed run never leaves it stuck: the file
may stay, the lock does not); a second run on the same directory gets ``InputError`` naming it. The lock
file is removed when the command ends. ``release_directories()`` (called when the
command ends) first records in ``out/.attnkit-files.json`` every file under ``out`` that attnkit wrote
(``own_files`` reads it back), so a later ``--overwrite`` can tell attnkit's files from the user's.

Example:
    >>> import tempfile
    >>> from attnkit.storage.files import atomic_write_text
    >>> out = Path(tempfile.mkdtemp())
    >>> lock_directory(out)
    >>> atomic_write_text(out / "model" / "config.json", "{}")
    >>> release_directories()
    >>> sorted(own_files(out))
    ['model/config.json']
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from attnkit.errors import InputError
from attnkit.storage.files import _WRITTEN, PathLike, write_json

LOCK_FILE = ".attnkit.lock"
RECORD_FILE = ".attnkit-files.json"
BOOKKEEPING = (LOCK_FILE, RECORD_FILE)
"""The two files attnkit keeps in an output directory for itself (never reported as the user's)."""

_HELD: dict[str, tuple[Path, int, bool]] = {}  # abspath -> (out, fd of the lock file, created the directory)


def lock_directory(out: PathLike) -> None:
    """Hold ``out``'s lock until ``release_directories`` or the end of the process (``out`` is created).

    Raises:
        InputError: another process holds it (another attnkit run is writing in ``out``).
    """
    out = Path(out)
    key = os.path.abspath(out)
    if key in _HELD:
        return
    made_dir = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_FILE
    if lock.is_symlink():  # never follow a link planted at the lock's name
        lock.unlink()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(lock).st_ino:  # the file was removed and made again meanwhile
            raise BlockingIOError
    except OSError:
        os.close(fd)
        _forget(out, made_dir, False)
        raise InputError(f"{str(out)!r} is in use by another attnkit run (it holds {LOCK_FILE}); wait for that run "
                         f"to finish or choose another --out") from None
    _HELD[key] = (out, fd, made_dir)


def release_directories() -> None:
    """Record the files written in each locked directory, then remove the lock files and release the locks
    (end of a command). A directory the command created and wrote nothing in is removed again."""
    for key, (out, fd, made_dir) in list(_HELD.items()):
        try:
            record_own_files(out)
        except OSError:
            pass  # the record is a help for a later --overwrite, never a reason to fail the run
        finally:  # the lock file goes while still held: a waiter that opened it sees a new file and retries
            _forget(out, made_dir and not (out / RECORD_FILE).exists(), True)
            os.close(fd)
            del _HELD[key]


def _forget(out: Path, made_dir: bool, made_lock: bool) -> None:
    """Remove the lock file and the directory this process created, when nothing else is in them."""
    try:
        if made_lock:
            (out / LOCK_FILE).unlink(missing_ok=True)
        if made_dir and not any(out.iterdir()):
            out.rmdir()
    except OSError:
        pass


def own_files(out: PathLike) -> set[str]:
    """The files (relative POSIX paths) attnkit recorded as written in ``out``; empty without a record."""
    try:
        names = json.loads((Path(out) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def record_own_files(out: PathLike) -> None:
    """Add the files this process wrote under ``out`` to its record, dropping those that no longer exist."""
    out = Path(out)
    home = os.path.abspath(out) + os.sep
    names = own_files(out) | {p[len(home):].replace(os.sep, "/") for p in _WRITTEN if p.startswith(home)}
    kept = sorted(n for n in names if n not in BOOKKEEPING and (out / n).is_file() and not (out / n).is_symlink())
    if kept != sorted(own_files(out)) or (kept and not (out / RECORD_FILE).is_file()):
        write_json(out / RECORD_FILE, kept)
