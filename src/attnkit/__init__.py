"""attnkit: attention mechanisms and the models built on them, in PyTorch.

The public names live in the sub-packages: ``attnkit.functional`` (pure tensor functions),
``attnkit.masks``, ``attnkit.layers`` and ``attnkit.models``; ``attnkit.load`` reads back any saved model.
"""

from attnkit import functional, masks

__version__ = "0.1.0"

__all__ = ["functional", "masks", "__version__"]
