"""The next-token loss of a causal language model without a shifted copy of the logits.

Plain twin: ``F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))``. Here the
targets are shifted instead of the ``(B, T, V)`` logits (no copy), and the backward pass is computed in
place in the saved log-probabilities: ``d logits = (softmax(logits) - onehot(target)) * grad / n_valid``
on valid rows, 0 on ignored ones. That in-place backward means a second backward through the same graph
cannot work; it raises instead.

Shape legend: B batch, T positions, V vocabulary, M = B*T rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from attnkit.functional import _switch


def next_token_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of ``logits[:, t]`` against ``labels[:, t + 1]``; -100 labels are ignored.

    Args:
        logits: ``(B, T, V)``.
        labels: ``(B, T)`` integer ids in ``[0, V)`` or -100 (ignored).

    Returns:
        A scalar (NaN when every label is ignored, as ``F.cross_entropy``).

    Example:
        >>> logits, labels = torch.randn(2, 4, 7), torch.tensor([[1, 2, 3, 4], [5, 6, -100, 0]])
        >>> ref = F.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1))
        >>> bool(torch.allclose(next_token_loss(logits, labels), ref))
        True
    """
    B, T, V = logits.shape
    if tuple(labels.shape) != (B, T):
        raise ValueError(f"Expected labels of shape {(B, T)}. Received: {tuple(labels.shape)}")
    if labels.numel():
        bad = (labels != -100) & ((labels < 0) | (labels >= V))
        if bool(bad.any()):
            raise ValueError(f"Expected labels in [0, {V}) (vocab_size) or -100. Received: {labels[bad][0].item()}")
    if not _switch._ENABLED:
        return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))
    target = F.pad(labels[:, 1:], (0, 1), value=-100).reshape(B * T)  # (M,): next token, -100 at the end
    return _NextTokenCrossEntropy.apply(logits.reshape(B * T, V), target)


class _NextTokenCrossEntropy(torch.autograd.Function):
    """``-mean over valid rows of log_softmax(logits)[row, target]``; ``logits (M, V)``, ``target (M,)``."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor) -> Tensor:
        logp = torch.log_softmax(logits, dim=-1)  # (M, V)
        valid = target != -100  # (M,)
        safe = target.clamp(min=0)[:, None]  # (M, 1)
        count = valid.sum()
        loss = -(logp.gather(1, safe)[:, 0] * valid).sum() / count
        ctx.save_for_backward(logp, safe, valid, count)
        ctx.used = False
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        if ctx.used:
            raise RuntimeError("the next-token loss does not support a second backward pass through the same "
                               "graph (retain_graph=True); compute F.cross_entropy from the returned logits for that")
        ctx.used = True
        logp, safe, valid, count = ctx.saved_tensors
        d_logits = logp.exp_()  # (M, V) softmax, in place
        d_logits.scatter_add_(1, safe, torch.full(safe.shape, -1.0, dtype=d_logits.dtype, device=d_logits.device))
        d_logits.mul_((valid * (grad / count)).to(d_logits.dtype)[:, None])
        return d_logits, None
