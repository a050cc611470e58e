"""Old keyword names that still work, with a ``FutureWarning`` naming the new one.

``@renamed_arguments(key_dim="key_size")`` on a function or method maps ``key_dim=`` to ``key_size=``
(the signature shown by ``help()`` stays the new one). Passing both names is an error.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def warn_deprecated(message: str, stacklevel: int = 3) -> None:
    """Emit the ``FutureWarning`` of a deprecated form; ``message`` says what to write instead."""
    warnings.warn(message, FutureWarning, stacklevel=stacklevel)


def renamed_arguments(**renames: str) -> Callable[[F], F]:
    """Accept each old keyword (``old="new"``) as a deprecated alias of the new one.

    Args:
        **renames: ``old_name="new_name"`` pairs.

    Returns:
        A decorator for a function or method.

    Example:
        >>> import warnings
        >>> @renamed_arguments(key_dim="key_size")
        ... def width(key_size):
        ...     return key_size
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     width(key_dim=4), caught[0].category.__name__
        (4, 'FutureWarning')
    """

    def decorate(fn: F) -> F:
        is_method = "." in fn.__qualname__ and "<locals>" not in fn.__qualname__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            owner = fn.__qualname__  # "GeneralScore", "SelfAttention.forward", of the instance's own class
            if is_method and args:
                owner = type(args[0]).__name__ + ("" if fn.__name__ == "__init__" else f".{fn.__name__}")
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(
                        f"Expected only one of `{new}` and its deprecated alias `{old}`. "
                        f"Received: {new}={kwargs[new]!r}, {old}={kwargs[old]!r}"
                    )
                warn_deprecated(f"{owner}: `{old}=` is deprecated, use `{new}=` instead.")
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
