"""Boolean attention masks. Convention everywhere in attnkit: **True = may attend**.

This is the convention of Keras (`attention_mask`, `value_mask`) and of the boolean ``attn_mask`` of
``torch.nn.functional.scaled_dot_product_attention``. ``torch.nn.MultiheadAttention``'s
``key_padding_mask`` is the opposite (True = ignore): convert it once with ``~key_padding_mask``.

Shape legend: B batch, T length, Tq query length, Tk key length.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(lengths: Tensor | list[int], max_len: int | None = None) -> Tensor:
    """Mask of real (non-padding) positions from sequence lengths.

    Args:
        lengths: ``(B,)`` integer lengths (a tensor or a list of ints).
        max_len: width of the mask; defaults to ``max(lengths)``.

    Returns:
        ``(B, max_len)`` bool, True where ``position < length`` (a real token that may be attended).
        Broadcast it over queries as ``mask[:, None, :]`` (or ``[:, None, None, :]`` with heads).

    Example:
        >>> padding_mask(torch.tensor([2, 3]), 4)
        tensor([[ True,  True, False, False],
                [ True,  True,  True, False]])
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (B,). Received: shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers. Received: dtype {lengths.dtype}")
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be >= 0. Received: {lengths.tolist()}")
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    if lengths.numel() and int(lengths.max()) > max_len:
        raise ValueError(f"max_len={max_len} is shorter than the longest length {int(lengths.max())}")
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return positions[None, :] < lengths[:, None]  # (B, T)


def causal_mask(tq: int, tk: int | None = None, *, device: torch.device | str | None = None) -> Tensor:
    """Causal (look-ahead) mask: query ``i`` may attend keys ``j <= i``.

    Aligned top-left, as ``is_causal=True`` of torch's SDPA and Keras's ``use_causal_mask``. For
    step-by-step decoding with a cache (queries are the *last* ``tq`` of ``tk`` positions) use the
    bottom-right rows instead: ``causal_mask(tk)[-tq:]``.

    Returns:
        ``(tq, tk)`` bool.

    Example:
        >>> causal_mask(3)
        tensor([[ True, False, False],
                [ True,  True, False],
                [ True,  True,  True]])
    """
    tk = tq if tk is None else tk
    if tq < 0 or tk < 0:
        raise ValueError(f"lengths must be >= 0. Received: tq={tq}, tk={tk}")
    return torch.ones(tq, tk, dtype=torch.bool, device=device).tril()


def local_window_mask(tq: int, tk: int, window: int, *, device: torch.device | str | None = None) -> Tensor:
    """Local (banded) mask: query ``i`` may attend keys ``j`` with ``|i - j| <= window``.

    This is the fixed window of Luong et al.'s local-m attention (aligned position ``p_t = t``).

    Returns:
        ``(tq, tk)`` bool.

    Example:
        >>> local_window_mask(3, 4, 1).int()
        tensor([[1, 1, 0, 0],
                [1, 1, 1, 0],
                [0, 1, 1, 1]], dtype=torch.int32)
    """
    if window < 0:
        raise ValueError(f"window must be >= 0. Received: {window}")
    if tq < 0 or tk < 0:
        raise ValueError(f"lengths must be >= 0. Received: tq={tq}, tk={tk}")
    i = torch.arange(tq, device=device)[:, None]  # (Tq, 1)
    j = torch.arange(tk, device=device)[None, :]  # (1, Tk)
    return (i - j).abs() <= window


def misaligned_batch_mask(mask_shape: tuple[int, ...], batch: tuple[int, ...]) -> bool:
    """True when a mask's first axis has the batch size ``B > 1`` but does not sit on the batch axis.

    Leading dims broadcast from the right, so a mask with fewer dims than the call ``(*batch, Tq, Tk)``
    lines its first axis up with a later one: a ``(B, Tk)`` key padding mask is read as ``(Tq, Tk)``, and
    ``B == Tq`` makes that silently wrong (weight on padding); a ``(B, Tq, Tk)`` mask is read per head when
    ``batch = (B, H)``. Such a mask is refused whatever the sizes, so the rule does not depend on luck:
    a mask whose first axis is the batch writes the batch axis out (``pad[:, None, :]``), and a mask shared
    by the batch starts with size 1 (``m[None]``) or has none of it. Shape arithmetic only.

    Example:
        >>> misaligned_batch_mask((4, 7), (4,)), misaligned_batch_mask((4, 1, 7), (4,))
        (True, False)
        >>> misaligned_batch_mask((5, 7), (4,)), misaligned_batch_mask((1, 5, 7), (4, 3))
        (False, False)
    """
    return (1 < len(mask_shape) < len(batch) + 2 and len(batch) > 0 and batch[0] > 1
            and mask_shape[0] == batch[0])
