"""Argument checks shared by the attention layers.

Every check raises a ``ValueError``/``TypeError`` whose message names the argument and says
"Expected ... Received: ...", so that a wrong shape is found at the call that caused it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def check_tensor(x: object, name: str, *, ndim: int | Sequence[int] | None = None) -> Tensor:
    """Check that ``x`` is a floating tensor with one of the allowed ranks; return it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor. Received: {name}={type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            ranks = " or ".join(str(r) for r in allowed)
            raise ValueError(
                f"Expected `{name}` of rank {ranks}. Received: {name}.shape={tuple(x.shape)}"
            )
    return x


def check_last_dim(x: Tensor, name: str, expected: int) -> None:
    """Check the feature size of a built layer's input."""
    if x.shape[-1] != expected:
        raise ValueError(
            f"Expected `{name}` with last dimension {expected} (the size this layer was built with). "
            f"Received: {name}.shape={tuple(x.shape)}"
        )


def check_mask(mask: Tensor | None, name: str, expected: Sequence[int], letters: str = "") -> Tensor | None:
    """Check a mask against an expected shape (size-1 dims broadcast); return it as a bool tensor.

    ``expected`` is the full shape the mask must broadcast to without adding dimensions; ``letters`` names
    its axes for the message (e.g. ``"(B, Tv)"``). Bool masks pass as they are; integer and float masks of
    0/1 values are cast as Keras casts them (1 = True = may attend / real token). Other values (torch's
    additive 0 / -inf float masks) raise, since their meaning is the opposite.

    Example:
        >>> check_mask(torch.tensor([[1, 0]]), "value_mask", (1, 2)).tolist()
        [[True, False]]
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor (bool, or 0/1). Received: {name}={type(mask).__name__}")
    expected = tuple(int(s) for s in expected)
    ok = mask.dim() == len(expected) and all(m == e or m == 1 for m, e in zip(mask.shape, expected, strict=True))
    if not ok:
        axes = f" (`{name}` is {letters}, size-1 axes broadcast)" if letters else ""
        raise ValueError(f"Expected `{name}` of shape {expected}. Received: {name}.shape={tuple(mask.shape)}{axes}")
    if mask.dtype != torch.bool:
        if mask.dtype.is_complex or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(
                f"Expected `{name}` of dtype torch.bool or of 0/1 values (1 = may attend / real token). Received: "
                f"{name}.dtype={mask.dtype} with other values (an additive 0/-inf mask? pass `{name} == 0` instead)"
            )
        mask = mask != 0
    return mask


def keras_call_inputs(query: object, value: object, key: object, mask: object, query_mask: object,
                      value_mask: object) -> tuple:
    """Both Keras call styles of ``Attention``/``AdditiveAttention`` as ``(query, value, key, query_mask,
    value_mask)``: ``layer([query, value(, key)], mask=[query_mask, value_mask])`` and
    ``layer(query, value, key=None, query_mask=..., value_mask=...)``.

    Example:
        >>> q, v = torch.zeros(1, 2, 3), torch.zeros(1, 4, 3)
        >>> keras_call_inputs([q, v], None, None, [None, torch.ones(1, 4)], None, None)[4].shape
        torch.Size([1, 4])
    """
    if isinstance(query, (list, tuple)):
        if value is not None or key is not None or len(query) not in (2, 3):
            got = f"a list of {len(query)}" + (" and value=" if value is not None else "") + (" and key=" if key is not None else "")
            raise ValueError(f"Expected inputs [query, value] or [query, value, key] and no separate value/key. Received: {got}")
        query, value, key = (*query, None)[:3]
    elif value is None:
        raise TypeError("Expected `value` (layer(query, value)) or a list [query, value]. Received: value=None")
    if mask is not None:
        if query_mask is not None or value_mask is not None:
            raise ValueError("Expected either mask=[query_mask, value_mask] or query_mask=/value_mask=. Received: both")
        if not isinstance(mask, (list, tuple)) or len(mask) != 2:
            got = f"a list of {len(mask)}" if isinstance(mask, (list, tuple)) else type(mask).__name__
            raise ValueError(f"Expected mask=[query_mask, value_mask] (either may be None), as Keras. Received: {got}")
        query_mask, value_mask = mask
    return query, value, key, query_mask, value_mask


def check_dropout(dropout: float) -> None:
    """Check a dropout rate is in ``[0, 1)``."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"Expected `dropout` in [0, 1). Received: dropout={dropout!r}")


def check_query_keys(
    query: object, keys: object, key_mask: Tensor | None, query_size: int, key_size: int
) -> tuple[int, int]:
    """Check a recurrent-decoder attention call; return ``(B, Tk)``.

    ``query`` ``(B, Dq)`` or ``(B, Tq, Dq)``, ``keys`` ``(B, Tk, Dk)`` with ``Dq == query_size`` and
    ``Dk == key_size``, ``key_mask`` bool ``(B, Tk)`` or None.
    """
    query = check_tensor(query, "query", ndim=(2, 3))
    keys = check_tensor(keys, "keys", ndim=3)
    check_last_dim(query, "query", query_size)
    check_last_dim(keys, "keys", key_size)
    b, tk = keys.shape[0], keys.shape[1]
    if query.shape[0] != b:
        raise ValueError(
            f"Expected query and keys with the same batch size. Received: query.shape={tuple(query.shape)}, "
            f"keys.shape={tuple(keys.shape)}"
        )
    check_mask(key_mask, "key_mask", (b, tk))
    return b, tk


#: Modules whose frames are not the user's call: a warning is attributed to the first frame outside them.
_LIBRARY_PREFIXES = ("attnkit.", "torch.")


def caller_level(through: str | None = None) -> int | None:
    """The ``stacklevel`` that attributes a warning of the calling function to the user's line (the first
    frame outside attnkit and torch), or None when the call is attnkit's own.

    Python's default filter then shows the warning once per call site of the user's code, whatever path
    inside attnkit led to it (attributed to attnkit's own line, it would be shown once per process).
    ``through``: the attnkit modules (a prefix) that may stand between the user and the warning; when
    another part of attnkit made the call (a model passing a mask it built itself), the answer is None:
    warnings belong to the user's calls, not to attnkit's own. Frame inspection only, no tensor work, so
    a check can ask first and skip its reduction for attnkit's own calls.
    """
    frame, level = sys._getframe(2), 2  # level 1 is the function asking, 2 its caller
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(_LIBRARY_PREFIXES):
            return level
        if through is not None and name.startswith("attnkit.") and not name.startswith(through):
            return None
        frame, level = frame.f_back, level + 1
    return level


def warn_if_a_row_sees_nothing(mask: Tensor, name: str) -> None:
    """Warn when a ``(B, Tk)`` key mask leaves a batch row with no key at all (one ``any()`` reduction).

    attnkit's masks are True = may attend / real token; ``torch.nn.MultiheadAttention``'s
    ``key_padding_mask`` is True = padding. Passed as is it inverts every row, and a row with only padding
    (or no padding) turns into a row with no key: such a row is almost always that mistake. Shown only for
    a mask the user gave a layer (directly or through another layer), not for one a model built.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     warn_if_a_row_sees_nothing(torch.tensor([[True, False], [False, False]]), "value_mask")
        >>> "~key_padding_mask" in str(seen[0].message)
        True
    """
    if torch.compiler.is_compiling():
        return  # a traced graph keeps no data-dependent branch (and the eager calls have warned already)
    level = caller_level(through="attnkit.layers.")  # the user's mask, given to a layer; not one a model built
    if level is None:
        return  # no reduction (and no device sync) for attnkit's own calls
    allowed = mask.any(dim=-1)  # (B,)
    if bool(allowed.all()):
        return
    rows = (~allowed).nonzero().flatten().tolist()
    warnings.warn(
        f"{name} leaves batch row(s) {rows[:8]} with no key to attend (True = real token in attnkit). If it is "
        f"torch's key_padding_mask (True = padding), pass {name}=~key_padding_mask; rows with no key give zeros.",
        UserWarning, stacklevel=level,
    )


def dropout_on(module: nn.Module, training: bool | None) -> bool:
    """Whether a Keras-style call drops out: ``training`` when given (Keras' ``training=``), else the mode.

    Example:
        >>> layer = nn.Dropout(0.5).eval()
        >>> dropout_on(layer, None), dropout_on(layer, True), dropout_on(layer.train(), False)
        (False, True, False)
    """
    if training is None:
        return module.training
    if not isinstance(training, bool):
        raise TypeError(f"Expected training=True, False or None. Received: training={training!r}")
    return training
