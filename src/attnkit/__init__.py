"""attnkit: attention mechanisms and the models built on them, in PyTorch.

- ``attnkit.functional``: pure tensor functions (``attention``, ``hard_attention``, score functions, masks).
- ``attnkit.kernels``: the fast paths, each beside its plain-torch twin; ``set_fast_paths(False)`` turns them off.
- ``attnkit.masks``: ``padding_mask``, ``causal_mask``, ``local_window_mask`` (True = may attend).
- ``attnkit.layers``: Keras-compatible attention layers (``MultiHeadAttention``, the one attention module of
  every Transformer model, with its ``KVCache``), Bahdanau and Luong attention, positional encodings.
- ``attnkit.models``: Seq2Seq, Transformer, Bert, GPT, each with a config dataclass; ``models.blocks`` is the
  one block family they stack.
- ``attnkit.decoding``: greedy, sampling and beam search shared by every autoregressive model.
- ``attnkit.load(path)``: any saved attnkit model, with its tokenizers.
"""

from attnkit import decoding, functional, kernels, layers, masks, models
from attnkit.io import load
from attnkit.models import GPT, Bert, Seq2Seq, Transformer

__version__ = "0.1.0"

__all__ = [
    "GPT", "Bert", "Seq2Seq", "Transformer", "decoding", "functional", "kernels", "layers", "load", "masks", "models",
    "__version__",
]
