"""Reading pictures: any image file or array becomes an ``(H, W, 3)`` uint8 RGB array, or a clear error.

Shape legend: ``H`` height, ``W`` width (pixels), ``C`` channels.

Conversions (the same for files and arrays):

- grayscale (``L``, ``1``, ``(H, W)``, ``(H, W, 1)``) -> the gray value copied to R, G and B;
- with transparency (``RGBA``, ``LA``, ``P`` with a transparent colour, ``(H, W, 4)``) -> composited on white;
- 16-bit and 32-bit integer images (``I;16``, ``I``) -> scaled to 0..255 by the type's range
  (``value * 255 / 65535`` for 16-bit), floats (``F``, float arrays) -> taken as 0..1, clipped;
- ``CMYK``, ``YCbCr``, palette images -> RGB; the EXIF orientation is applied; of an animation, the first frame.

Refused with ``attnkit.errors.InputError`` naming the file: a missing path, a directory, a file that is not
an image Pillow can read (or is truncated), and an image of more than ``max_pixels`` pixels (checked from the
header before any pixel is decoded, so a decompression bomb costs nothing).

Example:
    >>> import numpy as np
    >>> to_rgb(np.zeros((2, 3), dtype=np.uint16) + 65535).tolist()[0][0]
    [255, 255, 255]
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from attnkit.errors import InputError

#: Largest image read by default (pixels): 8,192 x 8,192. Above this ``read_image`` refuses the file.
MAX_PIXELS: int = 8192 * 8192
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _scaled(arr: np.ndarray) -> np.ndarray:
    """Any numeric array -> uint8: integers scaled by their type's maximum, floats as 0..1, bools as 0/255."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        high = int(arr.max()) if arr.size else 0
        if arr.dtype.itemsize == 2 or 255 < high <= 65535:
            top = 65535.0  # 16-bit data (also when held in a wider integer type)
        elif high <= 255:
            top = 255.0
        else:
            top = float(np.iinfo(arr.dtype).max)
        return np.clip(np.round(arr.astype(np.float64) * 255.0 / top), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.round(np.nan_to_num(arr.astype(np.float64)) * 255.0), 0, 255).astype(np.uint8)
    raise InputError(f"Expected an image array of numbers. Received: dtype {arr.dtype}")


def to_rgb(image: np.ndarray, where: str = "image") -> np.ndarray:
    """An image array -> ``(H, W, 3)`` uint8 RGB (see the module docstring for the conversions).

    Args:
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8, uint16, other integers,
            bool, or floats in 0..1.
        where: how to name the image in errors.

    Returns:
        ``(H, W, 3)`` uint8.

    Example:
        >>> import numpy as np
        >>> rgba = np.zeros((1, 1, 4), dtype=np.uint8)           # fully transparent black
        >>> to_rgb(rgba).tolist()                                 # -> white background
        [[[255, 255, 255]]]
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or 0 in arr.shape:
        raise InputError(f"{where}: Expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). "
                         f"Received: {tuple(arr.shape)}")
    if arr.ndim == 3 and arr.shape[-1] == 4:  # composite on white with the alpha channel
        rgb = _scaled(arr[..., :3]).astype(np.float64)
        alpha = _scaled(arr[..., 3]).astype(np.float64)[..., None] / 255.0
        return np.round(rgb * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    arr = _scaled(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return np.ascontiguousarray(arr)


def _pil_to_rgb(img: Image.Image, where: str) -> np.ndarray:
    """A decoded Pillow image (any mode) -> ``(H, W, 3)`` uint8."""
    img = ImageOps.exif_transpose(img) or img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGB", "RGBA", "L", "LA"):
        return to_rgb(np.asarray(img.convert("RGBA") if img.mode == "LA" else img), where)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return to_rgb(np.asarray(img).astype(np.uint16), where)
    if img.mode in ("I", "F"):
        arr = np.asarray(img)
        if img.mode == "I":
            arr = arr.astype(np.int64)
            arr = arr.astype(np.uint16) if arr.min() >= 0 and arr.max() <= 65535 else arr
        return to_rgb(arr, where)
    return to_rgb(np.asarray(img.convert("RGB")), where)  # 1, CMYK, YCbCr, LAB, HSV, ...


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None,
               where: str | None = None) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array.

    Args:
        path: the file.
        max_pixels: refuse images with more pixels than this (read from the header, before decoding);
            None: the module's ``MAX_PIXELS``.
        where: how to name the file in errors (default: its path), e.g. ``"captions.txt line 4: x.jpg"``.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        InputError: missing path, a directory, not a readable image (or truncated), too many pixels.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> path = tempfile.mkdtemp() + "/gray16.png"
        >>> Image.fromarray(np.full((4, 5), 65535, dtype=np.uint16)).save(path)   # 16-bit grayscale
        >>> image = read_image(path)
        >>> image.shape, image.dtype.name, int(image.max())
        ((4, 5, 3), 'uint8', 255)
    """
    p = Path(path)
    name = where or str(p)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if not p.exists():
        raise InputError(f"{name}: image file does not exist")
    if p.is_dir():
        raise InputError(f"{name}: Expected an image file. Received: a directory")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise InputError(f"{name}: image too large ({w} x {h} = {w * h:,} pixels). Expected at most "
                                     f"{max_pixels:,} pixels; shrink it first")
                img.seek(0)
                img.load()
                return _pil_to_rgb(img, name)
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise InputError(f"{name}: not an image file Pillow can read ({type(err).__name__}): give a JPEG, PNG, "
                         f"GIF, BMP or WebP image") from None
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt data
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{name}: cannot read the image ({first})") from None


def as_rgb(image: str | os.PathLike[str] | np.ndarray | Image.Image, where: str = "image") -> np.ndarray:
    """A path, a Pillow image or an array -> ``(H, W, 3)`` uint8 (``read_image`` / ``to_rgb``).

    Example:
        >>> import numpy as np
        >>> as_rgb(np.ones((2, 2), dtype=bool)).shape
        (2, 2, 3)
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, where)
    return to_rgb(np.asarray(image), where)


def resize_rgb(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size`` (``S`` for ``S x S``, or ``(H', W')``), bilinear.

    Example:
        >>> import numpy as np
        >>> resize_rgb(np.zeros((10, 20, 3), dtype=np.uint8), 8).shape
        (8, 8, 3)
    """
    h, w = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "as_rgb", "read_image", "resize_rgb", "to_rgb"]
