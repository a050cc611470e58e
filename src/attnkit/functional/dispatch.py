"""The one dispatcher of attention: a named table of paths with one signature, and one function that chooses.

Every path computes ``softmax(score(q, k) + bias, masked) @ v`` (or a sub-quadratic kind's formula), takes

    path(query, key, value, *, score, scale, mask, causal, dropout_p, return_weights, chunk_size, bias, kind)

and returns ``(output (..., Tq, Dv), weights (..., Tq, Tk) or None)``. ``score`` is a name ("dot",
"scaled_dot", "cosine") or a callable; ``scale`` the resolved factor of a named score; ``kind`` an
:class:`~attnkit.functional.kinds.AttentionKind` or None (full attention). A path given what it cannot
do raises ``ValueError``, so any entry can be called alone (and timed) with the arguments of a call.

- ``reference``: the formula, weights materialised (:mod:`.reference`). Chosen when the weights are asked for
  and no kernel applies, or for a callable score below the automatic chunk limit.
- ``fused``: torch's SDPA (:mod:`.fused`). Chosen for a named score without weights or ``chunk_size``.
- ``chunked``: online softmax over key chunks (:mod:`.chunked`). Chosen when ``chunk_size`` is given, or for a
  callable score whose working memory for all the keys passes the limit (:mod:`.auto_chunk`).
- ``weights_inplace``: the softmax taken in place in one ``(B, H, Tq, Tk)`` buffer (:mod:`.weights_inplace`).
  Chosen when the weights are asked for in inference, on CPU in float32/64, for a dot score over
  ``(B, H, T, D)`` inputs.
- ``causal_dropout``: causal attention block by block, the hidden key blocks skipped (:mod:`.causal_dropout`).
  Chosen for causal self-attention with dropout on CPU, without a mask, for a dot score over ``(B, H, T, D)``.
- ``sliding_window``, ``block_sparse``, ``linear``, ``performer``: the sub-quadratic kinds (:mod:`.kinds`).
  Chosen when ``kind`` is that kind.

Layout: the two attention kernels (``weights_inplace``, ``causal_dropout``) and the fast-path switch live
here in ``functional``, not in ``attnkit.kernels``, because ``kernels`` imports ``functional`` (its twins are
functional's paths) and ``functional`` imports nothing of attnkit above it: the table has to see every path
without an import cycle. ``attnkit.kernels`` keeps the other kernels (linear, dropout, the loss) and exports
the switch. The kernel paths honour it: switched off, each runs its plain twin.

Shape legend: ``...`` leading dims (batch, heads), Tq/Tk query/key length, Dv value width, B batch,
H heads, T positions, D head width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnkit.functional import tuning
from attnkit.functional._checks import Path, ScoreFn, batch_shape
from attnkit.functional.auto_chunk import choose_chunk
from attnkit.functional.causal_dropout import causal_dropout_path
from attnkit.functional.chunked import chunked_path
from attnkit.functional.fused import fused_path
from attnkit.functional.kinds import AttentionKind, kind_path
from attnkit.functional.reference import reference_path
from attnkit.functional.weights_inplace import weights_path

#: Above ``4 *`` this many bytes of score intermediates (float32 elements: 256 MiB) a callable score runs chunked.
AUTO_CHUNK_ELEMENTS = 2**26
#: An automatic chunk aims at ``4 *`` this many bytes of score intermediates (16 MiB).
AUTO_CHUNK_TARGET = 2**22
#: Every path by name, one signature (see the module docstring).
PATHS: dict[str, Path] = {
    "reference": reference_path,
    "fused": fused_path,
    "chunked": chunked_path,
    "weights_inplace": weights_path,
    "causal_dropout": causal_dropout_path,
    **{name: kind_path(name) for name in ("sliding_window", "block_sparse", "linear", "performer")},
}


def _dot_heads(query: Tensor, key: Tensor, value: Tensor, score: object, mask: Tensor | None,
               bias: Tensor | None) -> bool:
    """A dot score over ``(B, H, T, D)`` inputs of one batch and head count, on CPU, without bias, with a
    mask (if any) that does not widen them."""
    return (score in ("dot", "scaled_dot") and bias is None and query.dim() == 4 and query.device.type == "cpu"
            and query.shape[:2] == key.shape[:2] == value.shape[:2]
            and (mask is None or mask.dim() <= 4 and all(m in (1, s) for m, s in zip(
                reversed(mask.shape[:-2]), reversed(query.shape[:2]), strict=False))))


def choose(query: Tensor, key: Tensor, value: Tensor, *, score: str | ScoreFn, mask: Tensor | None, causal: bool,
           dropout_p: float, return_weights: bool, chunk_size: int | None, bias: Tensor | None,
           kind: AttentionKind | None, scale: float = 1.0) -> tuple[str, int | None]:
    """The path for a call, and the chunk size it runs with (``chunk_size``, or the automatic choice).

    A call the rules send to ``fused`` may instead take the path measured fastest for its shape class on this
    machine (:mod:`.tuning`; off with ``ATTNKIT_TUNE=0``, as in the test suite and the examples below).

    Example:
        >>> q = k = v = torch.randn(2, 3, 5, 4)
        >>> args = dict(score="scaled_dot", mask=None, causal=True, chunk_size=None, bias=None, kind=None)
        >>> choose(q, k, v, dropout_p=0.0, return_weights=False, **args)
        ('fused', None)
        >>> choose(q, k, v, dropout_p=0.1, return_weights=False, **args)
        ('causal_dropout', None)
        >>> choose(q, k, v, dropout_p=0.0, return_weights=True, **args)
        ('weights_inplace', None)
    """
    if kind is not None:
        return kind.name, chunk_size
    if return_weights:
        fast = dropout_p == 0.0 and query.dtype in (torch.float32, torch.float64) and _dot_heads(
            query, key, value, score, mask, bias) and not (torch.is_grad_enabled() and (
                query.requires_grad or key.requires_grad or value.requires_grad))
        return ("weights_inplace" if fast else "reference"), None
    if isinstance(score, str) and chunk_size is None:
        if causal and dropout_p > 0 and mask is None and query.shape == key.shape == value.shape and _dot_heads(
                query, key, value, score, mask, bias):
            return "causal_dropout", None
        if tuning.wanted(query, key, score=score, dropout_p=dropout_p, bias=bias):
            return tuning.tuned_path(query, key, value, PATHS, score=score, scale=scale, mask=mask,
                                     causal=causal), None
        return "fused", None
    chunkable = getattr(score, "chunkable", True)
    if chunk_size is not None and not chunkable:
        raise ValueError(f"score {type(score).__name__} depends on key positions and cannot run chunked: "
                         "pass chunk_size=None")
    if chunk_size is None and chunkable:
        batch = batch_shape(query, key, value, mask, bias)
        chunk_size = choose_chunk(score, query, key, batch, AUTO_CHUNK_ELEMENTS, AUTO_CHUNK_TARGET)
    return ("reference", None) if chunk_size is None else ("chunked", chunk_size)


def run(query: Tensor, key: Tensor, value: Tensor, *, score: str | ScoreFn = "scaled_dot", scale: float = 1.0,
        mask: Tensor | None = None, causal: bool = False, dropout_p: float = 0.0, return_weights: bool = False,
        chunk_size: int | None = None, bias: Tensor | None = None,
        kind: AttentionKind | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`choose` a path and run it: ``(output (..., Tq, Dv), weights (..., Tq, Tk) or None)``. No argument
    checks (:func:`attnkit.functional.attention` makes them); the attention engine calls this directly.

    Example:
        >>> q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
        >>> out, w = run(q, k, v, scale=0.5, return_weights=True)
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 3, 5, 6), (2, 3, 5, 7))
    """
    name, chunk = choose(query, key, value, score=score, scale=scale, mask=mask, causal=causal, dropout_p=dropout_p,
                         return_weights=return_weights, chunk_size=chunk_size, bias=bias, kind=kind)
    return PATHS[name](query, key, value, score=score, scale=scale, mask=mask, causal=causal, dropout_p=dropout_p,
                       return_weights=return_weights, chunk_size=chunk, bias=bias, kind=kind)
