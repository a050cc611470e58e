"""Fast paths, in one place: every hand-written kernel of attnkit beside its plain-torch twin.

Models and layers are written in plain torch plus attnkit's own functions; where a measured speed goal
needed more, the faster computation lives here, as a function with the *same* signature and numbers
(in distribution, for the random ones) as a plain-torch twin. :func:`set_fast_paths` is the one switch:
with it off, every function below runs its twin. A test runs each pair and checks that they agree.

==============================  ================================================  ======================
kernel                          plain twin                                        why
==============================  ================================================  ======================
:func:`linear`                  ``torch.nn.functional.linear``                    oneDNN float32 products,
                                                                                  ~2x MKL on AMD CPUs
:func:`dropout`                 ``torch.nn.functional.dropout``                   mask as ``U[0,1) >= p``,
                                                                                  ~2x ``bernoulli_``
:func:`next_token_loss`         ``F.cross_entropy`` on shifted copies             no logits copy, backward
                                                                                  in place
:func:`packed_heads`            ``linear(x, W, b)`` split into heads by views     backward reads the head
                                                                                  gradients in place: no
                                                                                  stack, no copy
:func:`transposed_weights`      ``F.linear`` on the stored ``(out, in)`` weight   decoding's few-row products
                                                                                  stream ``(in, out)`` copies,
                                                                                  ~2.5x on one AVX-512 core
causal_dropout_attention        ``F.scaled_dot_product_attention(is_causal,     skips hidden key blocks;
(``attnkit.functional``)        dropout_p)``                                      torch's CPU fused kernel
                                                                                  takes no dropout
attention_with_weights          the reference path (``attention(...,              softmax in place: one
(``attnkit.functional``)        return_weights=True)``)                           (B, H, Tq, Tk) buffer
==============================  ================================================  ======================

The two attention kernels are paths of attention's one dispatcher (:mod:`attnkit.functional.dispatch`), so
they live in ``attnkit.functional.causal_dropout`` and ``attnkit.functional.weights_inplace`` (functional
imports nothing above it); the switch lives beside them and governs them too.

The switch also reads the environment variable ``ATTNKIT_FAST_PATHS`` (``0`` turns the fast paths off)
when attnkit is imported.

Example:
    >>> import torch
    >>> from attnkit import kernels
    >>> x, w = torch.randn(3, 4), torch.randn(5, 4)
    >>> with kernels.fast_paths(False):   # plain torch everywhere inside the block
    ...     y = kernels.linear(x, w)
    >>> bool(torch.allclose(y, kernels.linear(x, w), atol=1e-6))
    True
"""

from __future__ import annotations

from attnkit.functional._switch import fast_paths, fast_paths_enabled, set_fast_paths
from attnkit.kernels.cross_entropy import next_token_loss
from attnkit.kernels.decoding_weights import transposed_weights
from attnkit.kernels.dropout_mask import Dropout, dropout
from attnkit.kernels.onednn_linear import Linear, linear
from attnkit.kernels.packed_heads import packed_heads

__all__ = [
    "Dropout",
    "Linear",
    "dropout",
    "fast_paths",
    "fast_paths_enabled",
    "linear",
    "next_token_loss",
    "packed_heads",
    "set_fast_paths",
    "transposed_weights",
]
