"""The one switch of attnkit's fast paths (see :mod:`attnkit.kernels`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_ENABLED = os.environ.get("ATTNKIT_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no", "off")


def fast_paths_enabled() -> bool:
    """True when the kernels of :mod:`attnkit.kernels` run (the default), False when their twins do.

    Example:
        >>> isinstance(fast_paths_enabled(), bool)
        True
    """
    return _ENABLED


def set_fast_paths(enabled: bool) -> None:
    """Turn every fast path on (``True``) or off (``False``, plain torch everywhere).

    Example:
        >>> before = fast_paths_enabled()
        >>> set_fast_paths(False); fast_paths_enabled()
        False
        >>> set_fast_paths(before)
    """
    global _ENABLED
    if not isinstance(enabled, bool):
        raise TypeError(f"Expected enabled to be a bool. Received: {enabled!r}")
    _ENABLED = enabled


@contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Within the block, the fast paths are ``enabled`` (restored afterwards, even on error).

    Example:
        >>> with fast_paths(False):
        ...     fast_paths_enabled()
        False
    """
    before = _ENABLED
    set_fast_paths(enabled)
    try:
        yield
    finally:
        set_fast_paths(before)
