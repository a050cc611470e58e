"""Optional peers of the benchmarks (Keras, transformers, the MiniLM weights): imported if installed.

A suite asks :func:`optional_import` for each peer; when the import fails, the suite records the peer as
skipped with the reason (``Section.skip``) and measures everything else. A missing peer is never a zero.

Example:
    >>> module, reason = optional_import("no_such_package_xyz")
    >>> module is None, reason
    (True, 'no_such_package_xyz is not installed')
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def optional_import(name: str) -> tuple[ModuleType | None, str | None]:
    """Import ``name`` if it can be imported.

    Args:
        name: a module name, e.g. ``"keras"`` or ``"transformers"``.

    Returns:
        ``(module, None)``, or ``(None, reason)`` with a one-line reason when the import fails.

    Example:
        >>> optional_import("math")[0].__name__
        'math'
    """
    if name == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")
    if name == "transformers":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing in (None, name) or str(exc).startswith("import of"):
            return None, f"{name} is not installed"
        return None, f"{name} could not be imported: {str(exc).splitlines()[0]}"
