"""Pictures in, captions and per-word attention maps out, for :class:`attnkit.models.Captioner`.

Shape legend: ``B`` images, ``S`` the model's image side, ``T`` words, ``gh x gw`` attention grid.

Images may be paths, Pillow images, arrays ``(H, W)`` / ``(H, W, 1|3|4)`` (any of the types
:func:`attnkit.data.images.to_rgb` converts) or a float tensor ``(B, 3, H, W)`` in ``[0, 1]``; each is
resized to ``S x S`` (the whole picture, squeezed if it is not square).

Example:
    >>> import numpy as np
    >>> images_to_tensor([np.zeros((5, 7), dtype=np.uint8)], 32).shape
    torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Described:
    """One captioned image: ``text``, its ``words`` and ``alignments`` ``(T, gh, gw)``, one map per word."""

    text: str
    words: list[str]
    alignments: Tensor


def images_to_tensor(images: Any, image_size: int) -> Tensor:
    """Images (see the module docstring) -> ``(B, 3, S, S)`` float in ``[0, 1]``.

    Raises:
        attnkit.errors.InputError: an unreadable file or an array that is not an image (the message names it).
    """
    from attnkit.data.images import as_rgb, resize_rgb  # data sits below models; imported when used

    if isinstance(images, Tensor):
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(f"Expected an image tensor (B, 3, H, W). Received: {tuple(images.shape)}")
        return F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear", align_corners=False)
    if isinstance(images, (str, os.PathLike, np.ndarray)) or hasattr(images, "getpixel"):
        images = [images]  # one image
    arrays = [resize_rgb(as_rgb(img, where=f"image {i}"), image_size) for i, img in enumerate(images)]
    if not arrays:
        return torch.zeros(0, 3, image_size, image_size)
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B, 3, S, S) uint8
    return stacked.float() / 255.0


def describe(model: Any, images: Any, beam_size: int = 1, batch_size: int = 32) -> list[Described]:
    """Caption ``images`` with ``model`` (in eval mode), ``batch_size`` at a time.

    Returns:
        One :class:`Described` per image; ``alignments`` rows are the decoder's ``alpha_t`` for each word
        (the end token's row dropped), reshaped to the model's grid, on the CPU.
    """
    tok = model.tokenizers.get("target")
    if tok is None:
        raise ValueError("this Captioner has no 'target' tokenizer; set model.tokenizers['target'] "
                         "(attnkit.load gives it back)")
    c = model.config
    pixels = images_to_tensor(images, c.image_size)
    device = model.out.weight.device
    was_training = model.training
    model.eval()
    results: list[Described] = []
    try:
        for i in range(0, pixels.size(0), batch_size):
            feats = model.frozen_features(pixels[i:i + batch_size].to(device))
            out = model.generate(feats, beam_size=beam_size)
            for b in range(feats.size(0)):
                ids = [t for t in out.tokens[b, : int(out.lengths[b])].tolist() if t not in (c.eos_id, c.pad_id)]
                maps = out.alignments[b, : len(ids)].cpu().view(len(ids), *c.grid_size)  # (T, gh, gw)
                results.append(Described(tok.decode(ids), tok.tokens(ids), maps))
    finally:
        model.train(was_training)
    return results


__all__ = ["Described", "describe", "images_to_tensor"]
