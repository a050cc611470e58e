"""Pure tensor functions: tensors in, tensors out (imports torch only).

``attention`` and ``hard_attention`` are the cores every layer calls; ``masked_softmax`` the
NaN-free normalisation; the score functions (``dot``, ``scaled_dot``, ``general``, ``concat``,
``additive``, ``location``, ``cosine``) are collected in ``SCORES``; masks are boolean, True = may attend.

Files: ``attention.py`` (the contract and argument checks of ``attention()``), ``dispatch.py`` (the one
dispatcher: the named table of paths, one signature, and ``choose``), the paths ``reference.py``, ``fused.py``
(SDPA), ``chunked.py`` (online softmax over key chunks, ``auto_chunk.py`` its automatic size),
``weights_inplace.py`` and ``causal_dropout.py`` (the attention kernels, behind the switch ``_switch.py``);
``hard.py`` (hard attention), ``scores.py``, ``masks.py``; ``kinds/`` the sub-quadratic kinds of
``attention(kind=...)`` (sliding window, block sparse, linear, Performer).
"""

from attnkit.functional.attention import attention
from attnkit.functional.dispatch import AUTO_CHUNK_ELEMENTS, PATHS, choose
from attnkit.functional.hard import HardAttention, hard_attention
from attnkit.functional.kinds import (
    KINDS,
    AttentionKind,
    BlockSparseAttention,
    LinearAttention,
    PerformerAttention,
    SlidingWindowAttention,
)
from attnkit.functional.masks import causal_mask, local_window_mask, padding_mask
from attnkit.functional.reference import masked_softmax
from attnkit.functional.scores import (
    PARAMETER_FREE,
    SCORES,
    additive,
    additive_from_projected,
    concat,
    cosine,
    dot,
    general,
    location,
    scaled_dot,
)

__all__ = [
    "AUTO_CHUNK_ELEMENTS", "HardAttention", "PARAMETER_FREE", "PATHS", "SCORES", "choose",
    "KINDS", "AttentionKind", "BlockSparseAttention", "LinearAttention", "PerformerAttention", "SlidingWindowAttention",
    "additive", "additive_from_projected", "attention", "causal_mask", "concat", "cosine", "dot",
    "general", "hard_attention", "local_window_mask", "location", "masked_softmax", "padding_mask", "scaled_dot",
]
