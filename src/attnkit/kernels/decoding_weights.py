"""Decoding's matrix-vector products on weights laid out for them: transposed ``(in, out)`` copies.

A decoding step multiplies one row per sequence by every weight matrix of the model, so it reads all the
weights once per token and its speed is the memory bandwidth at which the product streams them. Stored as
``nn.Linear`` keeps them, ``(out, in)``, a product ``x W^T`` of a few rows runs as dot products, and torch's
CPU BLAS streams that layout at well under the machine's bandwidth; the same product on a transposed copy
``W^T`` ``(in, out)``, contiguous, is an axpy stream that reaches it. Measured on one AVX-512 core
(``attnkit bench models``' GPT head, 8192 x 256, weights not in cache): 1.06 ms in the stored layout,
0.42 ms on the transposed copy (18.5 GB/s, the speed of ``W.sum()``).

Within :func:`transposed_weights` (:func:`attnkit.decoding.decode`, the one decoding loop, opens it), :func:`attnkit.kernels.linear`
of fewer than :data:`attnkit.kernels.onednn_linear.MIN_ROWS` rows computes ``x W^T + b`` as
``addmm(b, x, copy)`` with a transposed copy of ``W`` made at its first use and kept until the block ends.
The copies cost memory (each weight twice, up to :data:`MAX_BYTES` in all; beyond that, the stored layout
is used) and are made only outside autograd (inference), on CPU, with the fast paths on. Results equal
``F.linear``'s to float32 rounding (tested against float64).

Plain twin: ``torch.nn.functional.linear`` on the stored weight.

Example:
    >>> import torch
    >>> from attnkit.kernels import linear
    >>> w, x = torch.randn(6, 4), torch.randn(1, 4)
    >>> with torch.inference_mode(), transposed_weights():
    ...     y = linear(x, w)
    >>> bool(torch.allclose(y, x @ w.T, atol=1e-6))
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

from attnkit.functional import _switch

#: Most bytes of transposed copies one :func:`transposed_weights` block keeps (1 GiB).
MAX_BYTES = 2**30



class _Copies:
    """The open block's copies: ``by_layout`` (address, shape, strides, version) -> transposed copy, one per
    weight or view; ``by_id`` id(weight) -> (weight kept alive, version, copy), one look-up for a tensor seen
    before (a parameter); ``bytes`` the copies' total size."""

    def __init__(self) -> None:
        self.by_layout: dict[tuple, Tensor] = {}
        self.by_id: dict[int, tuple[Tensor, int, Tensor]] = {}
        self.bytes = 0


_COPIES: ContextVar[_Copies | None] = ContextVar("attnkit_transposed_weights", default=None)


@contextmanager
def transposed_weights() -> Iterator[None]:
    """Within the block, few-row linear products read transposed copies of their weights (see the module).

    Example:
        >>> with transposed_weights():
        ...     pass
    """
    token = _COPIES.set(_Copies())
    try:
        yield
    finally:
        _COPIES.reset(token)


def transposed_copy(x: Tensor, weight: Tensor) -> Tensor | None:
    """The ``(in, out)`` contiguous copy of ``weight (out, in)`` for a product with ``x``, or None when the
    stored layout is to be used (no open block, autograd, not CPU, fast paths off, over budget).

    Example:
        >>> w = torch.randn(3, 2)
        >>> transposed_copy(torch.randn(1, 2), w) is None  # no open block
        True
        >>> with torch.no_grad(), transposed_weights():
        ...     transposed_copy(torch.randn(1, 2), w).shape
        torch.Size([2, 3])
    """
    copies = _COPIES.get()
    if copies is None or not _switch._ENABLED or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return None
    version = 0 if weight.is_inference() else weight._version
    hit = copies.by_id.get(id(weight))  # the same tensor object as before (a parameter): one look-up
    if hit is not None and hit[0] is weight and hit[1] == version:
        return hit[2]
    if weight.dim() != 2 or weight.device.type != "cpu" or x.dtype != weight.dtype:
        return None
    key = (weight.data_ptr(), tuple(weight.shape), weight.stride(), version)  # a new view of the same weight
    copy = copies.by_layout.get(key)
    if copy is None:
        size = weight.numel() * weight.element_size()
        if copies.bytes + size > MAX_BYTES:
            return None
        copy = copies.by_layout[key] = weight.detach().t().contiguous()  # (in, out)
        copies.bytes += size
    copies.by_id[id(weight)] = (weight, version, copy)  # keeps `weight` alive: its id is not reused in the block
    return copy
