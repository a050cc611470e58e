"""The automatic chunk size of ``attention(chunk_size=None)``: bound the memory of any score callable.

A score callable is a black box: a dot score builds only its ``(..., Tq, Tk)`` scores, an additive
score a ``(..., Tq, Tk, A)`` hidden layer on the way, A times more. Its working memory per key is

- **declared** by an ``expansion`` attribute when the callable has one (attnkit's score modules): that
  many float32 elements per score element, i.e. ``4 * prod(...) * Tq * expansion`` bytes per key;
- **measured** otherwise, by a probe: the callable runs (without autograd) on the first ``c`` keys and
  then on the first ``2c`` keys, all queries, under a dispatch mode that adds up the bytes of every
  tensor it creates (views and in-place results excluded; nothing is freed during the count, so this
  bounds the call's peak from above). The difference divided by ``c`` is the bytes per key; the rest
  (``fixed``, e.g. a query projection that a closure recomputes at every call) is paid once per chunk.

The documented threshold: the chunked path is taken when ``bytes per key * Tk + fixed`` exceeds
``4 * threshold`` bytes (``threshold`` = ``AUTO_CHUNK_ELEMENTS`` = 2**26 float32 elements, 256 MiB). A
chunk then holds about ``4 * target`` bytes of score intermediates (``AUTO_CHUNK_TARGET`` = 2**22 float32
elements, 16 MiB) and at least :data:`MIN_CHUNK` keys; when the callable redoes work at every call (the
fixed part), enough keys that the per-key bytes are :data:`AMORTIZE` times the fixed ones, up to half the
threshold (128 MiB: a chunk keeps at most about half the memory that made the path chosen). A callable
without ``expansion`` whose score has fewer than :data:`PROBE_ELEMENTS` elements is not probed (it would
need more than 256 float32 intermediates per score element to pass the threshold), nor is one with fewer
than ``4 * PROBE_KEYS`` keys. A callable that fails
on a slice of the keys, or returns a wrong shape there, runs on the reference path. The probe costs
about ``3 * PROBE_KEYS`` keys of the callable's work (and draws from the random generator if the callable
does); declaring ``expansion`` skips it.

Shape legend: ``...`` leading dims, Tq query length, Tk key length, c probe keys.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from attnkit.functional._checks import ScoreFn

#: Fewest keys in an automatic chunk.
MIN_CHUNK = 16
#: Keys of the first probe (the second takes twice as many).
PROBE_KEYS = 4
#: Smallest score ``prod(...) * Tq * Tk`` for which a callable without ``expansion`` is probed.
PROBE_ELEMENTS = 2**18
#: A chunk's per-key bytes aim at this many times the bytes every chunk pays once (a closure's query projection).
AMORTIZE = 16
_FLOAT32 = 4


class _CreatedBytes(TorchDispatchMode):
    """Adds up the bytes of the new storages that the ops run under it create (not views, not in-place)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self._seen: set[int] = set()
        self._alive: list[Tensor] = []  # nothing is freed during the count: no address is reused

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, Tensor):
                self._seen.add(t.untyped_storage().data_ptr())
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, Tensor) and t.untyped_storage().data_ptr() not in self._seen:
                self._seen.add(t.untyped_storage().data_ptr())
                self._alive.append(t)
                self.total += t.untyped_storage().nbytes()
        return out

    def __exit__(self, *exc):
        self._alive.clear()
        return super().__exit__(*exc)


def probe_bytes(score: ScoreFn, query: Tensor, key: Tensor, keys: int = PROBE_KEYS) -> tuple[int, float] | None:
    """``(fixed bytes, bytes per key)`` that ``score(query, key[..., :n, :])`` creates, from ``n = keys``
    and ``n = 2 * keys``; None when the callable fails on a slice of the keys or returns a wrong shape.

    Example:
        >>> import torch
        >>> from attnkit.functional.auto_chunk import probe_bytes
        >>> q, k, w = torch.randn(2, 8, 4), torch.randn(2, 32, 4), torch.randn(4, 16)
        >>> def score(a, b):  # (2, 8, Tk, 16) on the way
        ...     return torch.tanh((a @ w)[..., :, None, :] + (b @ w)[..., None, :, :]).sum(-1)
        >>> probe_bytes(score, q, k)  # fixed: a @ w; per key: b @ w, the sum, its tanh, the scores
        (1024, 2240.0)
        >>> (2 * 8 * 16 * 4, 2 * 16 * 4 + 2 * 8 * 16 * 4 + 2 * 8 * 16 * 4 + 2 * 8 * 4)
        (1024, 2240)
    """
    created = []
    for n in (keys, 2 * keys):
        try:
            with torch.no_grad(), _CreatedBytes() as counter:
                scores = score(query, key[..., :n, :])  # (..., Tq, n)
        except Exception:  # noqa: BLE001 - the reference path will run it whole (and raise, if it must)
            return None
        if not isinstance(scores, Tensor) or tuple(scores.shape[-2:]) != (query.shape[-2], n):
            return None
        created.append(counter.total)
    per_key = max(created[1] - created[0], 0) / keys
    return max(int(created[0] - keys * per_key), 0), per_key


def choose_chunk(score: ScoreFn, query: Tensor, key: Tensor, batch: torch.Size, threshold: int, target: int) -> int | None:
    """Keys per chunk for ``score``, or None for the reference path (``threshold``, ``target`` in float32 elements).

    Example:
        >>> import torch
        >>> from attnkit.functional.auto_chunk import choose_chunk
        >>> w = torch.randn(64, 256)
        >>> def score(a, b):  # (B, Tq, Tk, 256) on the way
        ...     return torch.tanh((a @ w)[..., :, None, :] + (b @ w)[..., None, :, :]).sum(-1)
        >>> q, k = torch.randn(8, 512, 64), torch.randn(8, 512, 64)
        >>> choose_chunk(score, q, k, torch.Size([8]), 2**26, 2**22)
        16
        >>> choose_chunk(score, q[:, :8], k, torch.Size([8]), 2**26, 2**22) is None  # 8 queries: small
        True
    """
    tq, tk = query.shape[-2], key.shape[-2]
    expansion = getattr(score, "expansion", None)
    if expansion is not None:
        fixed, per_key = 0, _FLOAT32 * math.prod(batch) * tq * int(expansion or 1)
    else:
        if math.prod(batch) * tq * tk < PROBE_ELEMENTS or tk < 4 * PROBE_KEYS:
            return None
        probed = probe_bytes(score, query, key)
        if probed is None:
            return None
        fixed, per_key = probed
    if per_key <= 0 or fixed + per_key * tk <= _FLOAT32 * threshold:
        return None
    chunk = max(_FLOAT32 * target / per_key, AMORTIZE * fixed / per_key, MIN_CHUNK)
    most = max(_FLOAT32 * threshold / 2 / per_key, MIN_CHUNK)  # at most half the memory of the threshold
    return int(min(tk, chunk, most))
