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

# No imports here: the `attnkit` command handles Ctrl-C from its first line, which runs after this file.

__version__ = "0.1.0"

#: Public names -> the module that defines them. Nothing is imported until first use (PEP 562), so that
#: ``import attnkit`` (and the ``attnkit`` command before it parses its options) does not load torch yet.
_LAZY = {"GPT": "attnkit.models", "Bert": "attnkit.models", "Seq2Seq": "attnkit.models",
         "Transformer": "attnkit.models", "load": "attnkit.io"}

__all__ = [
    "GPT", "Bert", "Seq2Seq", "Transformer", "decoding", "functional", "kernels", "layers", "load", "masks", "models",
    "__version__",
]


def __getattr__(name: str) -> object:
    """``attnkit.load``, ``attnkit.GPT``, ... and every subpackage (``attnkit.models``), imported on first use."""
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"attnkit.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"attnkit.{name}":  # the submodule exists but one of its imports is missing
                raise
    raise AttributeError(f"module 'attnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
