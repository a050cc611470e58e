"""Atomic writes: a file or a whole directory appears complete or not at all.

``atomic_file`` (and ``atomic_write_text`` / ``atomic_write_bytes`` / ``write_json`` on top of it) writes a
temporary file beside the target, fsyncs it and ``os.replace``s it onto the target. ``atomic_directory``
does the same for a directory: written under a temporary name, renamed into place once complete; an
existing directory is moved aside first and deleted last (``recover_directory`` repairs a kill between the
two renames).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from attnkit.errors import CheckpointError, InputError

PathLike = str | os.PathLike[str]

_ONCE: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar("attnkit_written_once", default=None)
_UPDATING: contextvars.ContextVar[bool] = contextvars.ContextVar("attnkit_updating", default=False)
_WRITTEN: set[str] = set()
"""Every file this process wrote through ``atomic_file`` or ``atomic_directory`` (absolute paths): read by
the ``--out`` guard to record which files in a directory are attnkit's own."""


@contextlib.contextmanager
def written_once() -> Iterator[dict[str, bool]]:
    """Inside this block, ``atomic_file`` refuses a name it already wrote in the block.

    Every CLI command runs inside it, so two outputs that would share a name (``caption a/x.jpg b/x.jpg``)
    stop with ``InputError`` instead of the second silently replacing the first. An output that a command
    updates on purpose as it goes (a checkpoint, a training log, a report kept current after each part) is
    written inside ``updating()``, and may then be written again.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> with written_once():
        ...     atomic_write_text(root / "a.txt", "first")
        ...     atomic_write_text(root / "a.txt", "second")
        Traceback (most recent call last):
        ...
        attnkit.errors.InputError: .../a.txt was already written by this command: two of its outputs have the same name
    """
    token = _ONCE.set({})
    try:
        yield _ONCE.get()  # type: ignore[misc]
    finally:
        _ONCE.reset(token)


@contextlib.contextmanager
def updating() -> Iterator[None]:
    """Inside ``written_once()``: the names written in this block are outputs kept current on purpose (a
    checkpoint, a log, a progress report), which the command may write again.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> with written_once():
        ...     for step in (1, 2):
        ...         with updating():
        ...             atomic_write_text(root / "progress.txt", f"step {step}")
        >>> (root / "progress.txt").read_text()
        'step 2'
    """
    token = _UPDATING.set(True)
    try:
        yield
    finally:
        _UPDATING.reset(token)


def _claim(path: Path) -> None:
    key = os.path.abspath(path)
    once = _ONCE.get()
    if once is not None:
        if key in once and not (once[key] or _UPDATING.get()):
            raise InputError(f"{path} was already written by this command: two of its outputs have the same name")
        once[key] = once.get(key, False) or _UPDATING.get()
    _WRITTEN.add(key)


def _umask() -> int:
    """The process's umask (read without changing it where /proc allows, else set and put back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _as_if_created(path: str | Path, directory: bool = False) -> None:
    """Give a ``mkstemp`` / ``mkdtemp`` result (0600 / 0700) the mode ``open`` / ``mkdir`` would give:
    0666 / 0777 minus the umask, so written files follow the user's umask like any other program's."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def follow_umask(path: PathLike) -> None:
    """Give a file written by a library that creates it 0600 (safetensors' ``save_file``) the mode the user's
    umask gives any new file (0666 minus the umask), as SECURITY.md promises for every file attnkit writes.

    Example:
        >>> import tempfile
        >>> from safetensors.torch import save_file
        >>> import torch
        >>> path = Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> save_file({"w": torch.zeros(1)}, str(path))
        >>> follow_umask(path)
        >>> oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
        True
    """
    _as_if_created(path)


@contextlib.contextmanager
def atomic_file(path: PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a file open on a temporary name beside ``path``; on success it replaces ``path`` atomically.

    This is attnkit's one writer: every file it writes (models, checkpoints, reports, pictures, JSON,
    HTML) goes through it. A symbolic link at ``path`` is replaced by the new file, never followed (the
    rename replaces the link itself); inside ``written_once()`` a name written earlier in the block is
    refused.

    The temporary file (``.NAME.tmp-*`` in the same directory, so the rename stays on one file system) is
    flushed and fsynced before ``os.replace``; if the body raises, it is deleted and ``path`` is untouched.
    Parent directories are created.

    Args:
        path: the file to write.
        mode: ``"w"`` (text, UTF-8) or ``"wb"`` (bytes).

    Returns:
        A context manager yielding the open file object.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "sub" / "data.bin"
        >>> with atomic_file(path, "wb") as f:
        ...     _ = f.write(b"abc")
        ...     path.exists()                 # nothing visible until the body succeeds
        False
        >>> path.read_bytes()
        b'abc'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"Expected mode 'w' or 'wb'. Received: {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _claim(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        _as_if_created(tmp)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: the old content or the new, never a mix.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "a.txt"
        >>> atomic_write_text(path, "hello")
        >>> path.read_text()
        'hello'
    """
    with atomic_file(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "a.bin"
        >>> atomic_write_bytes(path, b"\\x00\\x01")
        >>> path.read_bytes()
        b'\\x00\\x01'
    """
    with atomic_file(path, "wb") as f:
        f.write(data)


def write_json(path: PathLike, data: Any, *, sort_keys: bool = False) -> None:
    """Write ``data`` as indented JSON plus a final newline, atomically.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "run.json"
        >>> write_json(path, {"seed": 3})
        >>> read_json(path)
        {'seed': 3}
    """
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


def write_figure(fig: Any, path: PathLike, **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure to ``path`` through ``atomic_file`` (the format from the suffix, PNG by default).

    Example:
        >>> import tempfile
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> path = Path(tempfile.mkdtemp()) / "plot.png"
        >>> fig = plt.figure(figsize=(1, 1))
        >>> write_figure(fig, path, dpi=20)
        >>> plt.close(fig)
        >>> path.read_bytes()[:4]
        b'\\x89PNG'
    """
    fmt = savefig_kwargs.pop("format", None) or Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format=fmt, **savefig_kwargs)


def write_image(image: Any, path: PathLike) -> None:
    """Save a PIL image to ``path`` through ``atomic_file`` (the format from the suffix, PNG by default).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "dot.png"
        >>> write_image(Image.new("RGB", (2, 3)), path)
        >>> Image.open(path).size
        (2, 3)
    """
    fmt = {"jpg": "JPEG"}.get(Path(path).suffix.lstrip(".").lower(), Path(path).suffix.lstrip(".").upper() or "PNG")
    with atomic_file(path, "wb") as f:
        image.save(f, format=fmt)


def write_safetensors(tensors: dict[str, Any], path: PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``{name: tensor}`` as a ``.safetensors`` file through ``atomic_file`` (never a pickle).

    Example:
        >>> import tempfile, torch
        >>> from safetensors.torch import load_file
        >>> path = Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> write_safetensors({"w": torch.ones(2)}, path)
        >>> load_file(path)["w"].tolist()
        [1.0, 1.0]
    """
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    with atomic_file(path, "wb") as f:
        f.write(data)


def append_text(path: PathLike, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``, created if missing; a symbolic link there is replaced by a new
    file, never followed (``O_NOFOLLOW``).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> append_text(path, "a\\n"); append_text(path, "b\\n")
        >>> path.read_text()
        'a\\nb\\n'
    """
    path = Path(path)
    if path.is_symlink():
        path.unlink()
    _WRITTEN.add(os.path.abspath(path))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(text)


def read_json(path: PathLike, kind: type | None = None) -> Any:
    """The JSON document in ``path``; ``CheckpointError`` naming the file and saying what to do when it is a
    directory, not UTF-8, not valid JSON, or (with ``kind``, e.g. ``dict``) not that JSON type.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "bad.json"
        >>> _ = path.write_text("{")
        >>> read_json(path)
        Traceback (most recent call last):
        ...
        attnkit.errors.CheckpointError: .../bad.json is not valid JSON (line 1 column 2: ...): the file is damaged; restore it or write it again (save or train again)
    """
    p = Path(path)
    damaged = "the file is damaged; restore it or write it again (save or train again)"
    if p.is_dir():
        raise CheckpointError(f"{p} is a directory. Expected a JSON file: move the directory away")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{p} is not valid JSON (line {err.lineno} column {err.colno}: {err.msg}): "
                              f"{damaged}") from None
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{p} is not UTF-8 text (byte offset {err.start}), so not JSON: {damaged}") from None
    if kind is not None and not isinstance(data, kind):
        raise CheckpointError(f"{p} must hold a JSON {'object' if kind is dict else kind.__name__}. Received: a "
                              f"JSON {type(data).__name__}: {damaged}")
    return data


# ----------------------------------------------------------------------------------------------------------
# Atomic directories
# ----------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_directory(directory: PathLike, *, keep_others: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``directory``; on success rename it to ``directory``.

    The temporary directory lives in the same parent (so the rename is atomic on one file system). If the
    body raises, the temporary directory is removed and ``directory`` is untouched. If ``directory`` exists
    it is first renamed aside, the new one renamed in, and only then the old one deleted: at every instant
    either the complete old or the complete new directory exists under one of the two names
    (``recover_directory`` puts the old one back after a kill between the renames). Temporary directories
    left by killed writers are removed after the next successful write.

    Args:
        directory: the directory to create or replace.
        keep_others: into an existing ``directory``, move each new file with ``os.replace`` and leave the
            directory's other files alone (each file is replaced atomically, the set is not).

    Returns:
        A context manager yielding the temporary directory to write into.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> with atomic_directory(root / "checkpoint") as tmp:
        ...     _ = (tmp / "state.json").write_text("{}")
        ...     (root / "checkpoint").exists()       # nothing visible until the body succeeds
        False
        >>> sorted(p.name for p in root.iterdir()), (root / "checkpoint" / "state.json").read_text()
        (['checkpoint'], '{}')
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"Expected a directory path. Received: {str(target)!r} is a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    _claim(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _as_if_created(tmp, directory=True)
        yield tmp
        _fsync_tree(tmp)
        _WRITTEN.update(os.path.abspath(target / p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        if keep_others and target.exists() and not target.is_symlink():
            for f in tmp.iterdir():
                os.replace(f, target / f.name)
            shutil.rmtree(tmp, ignore_errors=True)
            return
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, target)


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing ``target`` is moved aside first and deleted last."""
    old: Path | None = None
    if target.is_symlink():  # a link at the name is replaced, never followed
        target.unlink()
    elif target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    for stale in _siblings(target):  # left by a process killed while writing: never complete, never needed
        shutil.rmtree(stale, ignore_errors=True)


def _siblings(target: Path) -> list[Path]:
    return [p for p in target.parent.glob(f".{target.name}.*-*")
            if p.name.startswith((f".{target.name}.tmp-", f".{target.name}.old-"))]


def recover_directory(directory: PathLike) -> bool:
    """Put back the previous complete directory if a process was killed between the two renames.

    ``atomic_directory`` moves the old directory aside (``.NAME.old-*``) just before renaming the new one
    in; a kill at that instant leaves no ``NAME``. Then the newest ``.NAME.old-*`` (complete by
    construction) is renamed back. Single writer assumed (rank 0).

    Args:
        directory: the directory ``atomic_directory`` was writing.

    Returns:
        True if an old directory was put back.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / ".run.old-0001").mkdir()          # what a kill between the renames leaves
        >>> recover_directory(root / "run"), sorted(p.name for p in root.iterdir())
        (True, ['run'])
    """
    target = Path(directory)
    if target.exists():
        return False
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not olds:
        return False
    os.replace(olds[-1], target)
    return True


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
