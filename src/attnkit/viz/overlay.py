"""Attention maps over a picture: one overlay per word of a caption (Xu et al. 2015, figures 2-3).

Arrays in, pictures out: ``image`` ``(H, W, 3)`` uint8 and ``maps`` ``(T, gh, gw)`` (a tensor or an array,
one attention map per word) give ``(H, W, 3)`` uint8 pictures. Nothing here knows a model.

Each map is upsampled bilinearly to ``H x W``, scaled to its own maximum and drawn over the darkened
image in the "hot" colour scale (black, red, yellow, white): bright where the word looked.

Example:
    >>> import numpy as np
    >>> image = np.full((40, 60, 3), 128, dtype=np.uint8)
    >>> maps = np.zeros((2, 2, 3)); maps[0, 0, 0] = maps[1, 1, 2] = 1.0      # (T, gh, gw)
    >>> [o.shape for o in word_overlays(image, maps)]
    [(40, 60, 3), (40, 60, 3)]
    >>> overlay_grid(image, maps, ["the", "cat"], columns=2).shape[1]        # two panels side by side
    324
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def _as_maps(maps: Any) -> np.ndarray:
    arr = maps.detach().cpu().float().numpy() if hasattr(maps, "detach") else np.asarray(maps, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"Expected attention maps of shape (T, gh, gw). Received: {tuple(arr.shape)}")
    return arr.astype(np.float64)


def upsample_map(attention: Any, height: int, width: int) -> np.ndarray:
    """One map ``(gh, gw)`` -> ``(H, W)`` in ``[0, 1]`` (bilinear, divided by its maximum).

    Example:
        >>> import numpy as np
        >>> upsample_map(np.eye(2), 4, 4).round(2)[0]
        array([1.  , 0.75, 0.25, 0.  ])
    """
    arr = _as_maps(np.asarray(attention)[None])[0]
    peak = arr.max()
    scaled = arr / peak if peak > 0 else arr
    img = Image.fromarray(scaled.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)


def hot_colours(heat: np.ndarray) -> np.ndarray:
    """The "hot" colour scale: ``(...)`` values in ``[0, 1]`` -> ``(..., 3)`` RGB in ``[0, 1]``
    (red rises over the first third, green over the second, blue over the last).

    Example:
        >>> import numpy as np
        >>> hot_colours(np.array([0.0, 0.5, 1.0])).round(2).tolist()
        [[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [1.0, 1.0, 1.0]]
    """
    h = np.asarray(heat, dtype=np.float64)[..., None]
    return np.clip(3.0 * h - np.array([0.0, 1.0, 2.0]), 0.0, 1.0)


def word_overlays(image: np.ndarray, maps: Any, alpha: float = 0.6, scale: bool = False) -> list[np.ndarray]:
    """One picture per map: ``image`` ``(H, W, 3)`` uint8 with map ``t`` ``(gh, gw)`` drawn over it.

    Args:
        image: ``(H, W, 3)`` uint8.
        maps: ``(T, gh, gw)`` attention maps (tensor or array).
        alpha: opacity of the heat colour where the map is at its maximum.
        scale: add the colour scale under each picture (``SCALE_HEIGHT`` more rows, at least 160 wide).

    Returns:
        ``T`` arrays ``(H, W, 3)`` uint8 (``(H + SCALE_HEIGHT, max(W, 160), 3)`` with ``scale``).
    """
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected an image (H, W, 3). Received: {tuple(image.shape)}")
    H, W = image.shape[:2]
    base = image.astype(np.float64)
    out = []
    for m in _as_maps(maps):
        heat = upsample_map(m, H, W)  # (H, W) in [0, 1]
        rgb = hot_colours(heat) * 255.0  # (H, W, 3)
        weight = alpha * (0.35 + 0.65 * heat)[..., None]
        out.append(np.clip(np.round(base * (1 - weight) + rgb * weight), 0, 255).astype(np.uint8))
    return [with_scale(o) for o in out] if scale else out


def with_scale(picture: np.ndarray) -> np.ndarray:
    """``picture`` ``(H, W, 3)`` with the overlays' colour scale under it: ``(H + SCALE_HEIGHT, max(W, 160), 3)``."""
    h, w = picture.shape[:2]
    sheet = Image.new("RGB", (max(w, 160), h + SCALE_HEIGHT), "white")
    sheet.paste(Image.fromarray(picture), ((sheet.width - w) // 2, 0))
    _draw_scale(ImageDraw.Draw(sheet), sheet.width, h)
    return np.asarray(sheet)


def overlay_grid(image: np.ndarray, maps: Any, words: Sequence[str], columns: int = 5,
                 panel_width: int = 160, gap: int = 4, scale: bool = True) -> np.ndarray:
    """The overlays of every word side by side, each titled with its word: ``(H', W', 3)`` uint8.

    Args:
        image: ``(H, W, 3)`` uint8; maps: ``(T, gh, gw)``; words: ``T`` labels.
        columns: panels per row; panel_width: width of a panel in pixels; gap: white space between panels.
        scale: draw the colour scale under the panels (from 0 to each word's largest weight).
    """
    overlays = word_overlays(image, maps)
    if len(words) != len(overlays):
        raise ValueError(f"Expected one word per map. Received: {len(words)} words, {len(overlays)} maps")
    H, W = image.shape[:2]
    ph = max(1, round(H * panel_width / W))
    title = 16
    cols = max(1, min(columns, len(overlays)))
    rows = max(1, -(-len(overlays) // cols))
    width = cols * panel_width + (cols - 1) * gap
    sheet = Image.new("RGB", (width, rows * (ph + title + gap) + (SCALE_HEIGHT if scale else 0)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (pic, word) in enumerate(zip(overlays, words, strict=True)):
        x, y = (i % cols) * (panel_width + gap), (i // cols) * (ph + title + gap)
        sheet.paste(Image.fromarray(pic).resize((panel_width, ph), Image.BILINEAR), (x, y + title))
        draw.text((x + 2, y + 2), word, fill="black")
    if scale:
        _draw_scale(draw, width, rows * (ph + title + gap))
    return np.asarray(sheet)


SCALE_HEIGHT = 30
"""Pixels under the panels of :func:`overlay_grid` for its colour scale."""


def _draw_scale(draw: Any, width: int, top: int) -> None:
    """The "hot" scale as a bar with its ends named: 0 (black) to the word's largest weight (white)."""
    bar = max(20, min(width - 80, 240))
    x0 = (width - bar) // 2
    for k in range(bar):
        r, g, b = (hot_colours(np.array(k / (bar - 1))) * 255).round().astype(int).tolist()
        draw.line([(x0 + k, top + 2), (x0 + k, top + 12)], fill=(r, g, b))
    draw.rectangle([x0, top + 2, x0 + bar - 1, top + 12], outline="black")
    draw.text((max(0, x0 - 12), top + 15), "0", fill="black")
    draw.text((x0 + bar - 40, top + 15), "max of word", fill="black")


__all__ = ["SCALE_HEIGHT", "hot_colours", "overlay_grid", "upsample_map", "with_scale", "word_overlays"]
