"""Files on disk: atomic writes, the model registry, config JSON and checked safetensors.

A low-level module: it imports torch, safetensors and the standard library only (plus
``attnkit.errors``), so models, the trainer, the data layer, viz and the CLI can all use it.

One atomic-write implementation, in two sizes:

- ``atomic_file(path, mode)`` (and ``atomic_write_text`` / ``atomic_write_bytes`` / ``write_json`` on
  top of it): a temporary file beside ``path``, flushed and fsynced, then ``os.replace``d onto ``path``;
  on any error the temporary file is removed and ``path`` keeps its old content.
- ``atomic_directory(directory)``: a temporary directory beside ``directory``, renamed into place only
  once the body has written everything; an existing directory is moved aside first and deleted only after
  the new one is in place (``recover_directory`` repairs a kill between the two renames). With
  ``keep_others=True`` the new files are moved one by one into an existing directory instead, leaving
  the directory's other files alone (each file atomic, the set not).

``atomic_file`` is the one writer: every file attnkit writes goes through it (``write_figure``,
``write_image``, ``write_safetensors`` and ``append_text`` are its forms for figures, pictures, weights and
logs); a symbolic link at a target name is replaced, never followed, and inside ``written_once()`` a name
is never written twice. Names read from files attnkit did not write (tokenizer names, weight shards, image
paths) go through ``confined_file``; an output directory is locked for a run's life by
``lock_directory``, which also records the files attnkit wrote there (``own_files``).

A saved model is one directory with ``config.json`` (``{"model_type": ..., "config": {...}}``, read by
``read_model_config``), ``model.safetensors`` (tied weights written once: ``split_shared``; names and shapes
checked on reading: ``check_state_dict``) and tokenizer files; ``register_model`` / ``model_class`` map a
``model_type`` to its class.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> atomic_write_text(root / "notes.txt", "v1")
    >>> try:
    ...     with atomic_file(root / "notes.txt") as f:
    ...         _ = f.write("v2, half written")
    ...         raise OSError("disk full")
    ... except OSError:
    ...     pass
    >>> (root / "notes.txt").read_text(), sorted(p.name for p in root.iterdir())
    ('v1', ['notes.txt'])
"""

from attnkit.storage.files import (
    append_text,
    atomic_directory,
    atomic_file,
    atomic_write_bytes,
    atomic_write_text,
    follow_umask,
    read_json,
    recover_directory,
    updating,
    write_figure,
    write_image,
    write_json,
    write_safetensors,
    written_once,
)
from attnkit.storage.model_dir import (
    CONFIG_FILE,
    TOKENIZER_PREFIX,
    WEIGHTS_FILE,
    build_checked,
    check_state_dict,
    config_from_dict,
    config_to_dict,
    read_model_config,
    read_safetensors,
    split_shared,
)
from attnkit.storage.names import confined_file
from attnkit.storage.outdir import BOOKKEEPING, LOCK_FILE, lock_directory, own_files, release_directories
from attnkit.storage.registry import MODEL_REGISTRY, model_class, register_model

__all__ = [
    "BOOKKEEPING", "LOCK_FILE", "append_text", "confined_file", "lock_directory", "own_files", "release_directories",
    "updating", "write_figure", "write_image", "write_safetensors", "written_once",
    "CONFIG_FILE", "MODEL_REGISTRY", "TOKENIZER_PREFIX", "WEIGHTS_FILE", "atomic_directory", "atomic_file",
    "atomic_write_bytes", "atomic_write_text", "build_checked", "check_state_dict", "config_from_dict", "config_to_dict",
    "follow_umask", "model_class", "read_json", "read_model_config", "read_safetensors", "recover_directory",
    "register_model", "split_shared", "write_json",
]
