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
:func:`causal_dropout_attention`  ``F.scaled_dot_product_attention(is_causal,     skips hidden key blocks;
                                  dropout_p)``                                    torch's CPU fused kernel
                                                                                  takes no dropout
:func:`attention_with_weights`  ``attnkit.functional.attention(...,               softmax in place: one
                                return_weights=True)``                            (B, H, Tq, Tk) buffer
:func:`next_token_loss`         ``F.cross_entropy`` on shifted copies             no logits copy, backward
                                                                                  in place
==============================  ================================================  ======================

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

from attnkit.kernels._switch import fast_paths, fast_paths_enabled, set_fast_paths
from attnkit.kernels.causal_dropout import causal_dropout_attention
from attnkit.kernels.cross_entropy import next_token_loss
from attnkit.kernels.dropout_mask import Dropout, dropout
from attnkit.kernels.onednn_linear import Linear, linear
from attnkit.kernels.weights_inplace import attention_with_weights

__all__ = [
    "Dropout",
    "Linear",
    "attention_with_weights",
    "causal_dropout_attention",
    "dropout",
    "fast_paths",
    "fast_paths_enabled",
    "linear",
    "next_token_loss",
    "set_fast_paths",
]
