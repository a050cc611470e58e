"""attnkit: attention mechanisms and the models built on them, in PyTorch.

- ``attnkit.functional``: pure tensor functions (``attention``, ``hard_attention``, score functions, masks).
- ``attnkit.masks``: ``padding_mask``, ``causal_mask``, ``local_window_mask`` (True = may attend).
- ``attnkit.layers``: Keras-compatible attention layers, Bahdanau and Luong attention, positional encodings.
- ``attnkit.models``: Seq2Seq, Transformer, Bert, GPT, each with a config dataclass.
- ``attnkit.load(path)``: any saved attnkit model, with its tokenizers.
"""

from attnkit import functional, layers, masks, models
from attnkit.io import load
from attnkit.models import GPT, Bert, Seq2Seq, Transformer

__version__ = "0.1.0"

__all__ = ["GPT", "Bert", "Seq2Seq", "Transformer", "functional", "layers", "load", "masks", "models", "__version__"]
