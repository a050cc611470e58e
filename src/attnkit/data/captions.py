"""Captioning data: user captions in the Flickr8k layout, and the batches a captioner trains on.

The Flickr8k layout is an image folder and a captions file, one ``image<TAB>caption`` per line (Flickr8k's
``image.jpg#2`` numbering of the several captions of an image is accepted and dropped)::

    1000268201_693b08cb0e.jpg#0	A child in a pink dress is climbing up a set of stairs .
    1000268201_693b08cb0e.jpg#1	A girl going into a wooden building .

Blank lines and lines starting with ``#`` are skipped. Problems are ``InputError`` naming the file and the
line: no tab, an empty caption, an image missing from the folder, an image that cannot be read.

Shape legend: ``B`` captions of a batch, ``T`` words (+1 for the start/end token), ``...`` feature dims.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a.png").write_bytes(b"")
    0
    >>> _ = (d / "captions.txt").write_text("a.png#0\\tA dog runs .\\n")
    >>> read_captions(d / "captions.txt", check_images=False)
    [CaptionRecord(image='a.png', caption='a dog runs .', line=1)]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from attnkit.data.stream import ResumableStream, mix_seed
from attnkit.errors import InputError
from attnkit.storage.names import confined_file


@dataclass(frozen=True)
class CaptionRecord:
    """One line of a captions file: the image's file name, the caption (lower-cased), the line number."""

    image: str
    caption: str
    line: int


def read_captions(path: str | os.PathLike[str], images: str | os.PathLike[str] | None = None, *,
                  check_images: bool = True, lowercase: bool = True) -> list[CaptionRecord]:
    """Read an ``image<TAB>caption`` file; every named image must exist in ``images``.

    Args:
        path: the captions file.
        images: the image folder (default: the captions file's folder).
        check_images: check that each named image exists (reading it is the caller's job).
        lowercase: lower-case the captions.

    Returns:
        The records, in file order.

    Raises:
        InputError: ``"<file> line <n>: ..."`` for a line without a tab, an empty caption or a missing image,
            or no caption at all.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: captions file does not exist" if not p.exists() else
                         f"{p}: Expected a captions file (image<TAB>caption lines). Received: a directory")
    folder = Path(images) if images is not None else p.parent
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"{p}: not a UTF-8 text file (byte {err.start})") from None
    records = []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" not in raw:
            raise InputError(f"{p} line {n}: Expected image<TAB>caption. Received: {raw[:60]!r}")
        name, caption = raw.split("\t", 1)
        name, caption = name.strip().split("#", 1)[0], " ".join(caption.split())
        if not name:
            raise InputError(f"{p} line {n}: empty image name")
        if not caption:
            raise InputError(f"{p} line {n}: empty caption for image {name!r}")
        if check_images and not (folder / name).is_file():
            raise InputError(f"{p} line {n}: image {name!r} not found in {folder}")
        if check_images:  # a name read from the file: inside the folder, no '..', no link out, a regular file
            confined_file(folder, name, f"{p} line {n}")
        records.append(CaptionRecord(name, caption.lower() if lowercase else caption, n))
    if not records:
        raise InputError(f"{p}: no captions. Expected image<TAB>caption lines")
    return records


def split_by_image(records: list[CaptionRecord], seed: int = 0, held_out: float = 0.1
                   ) -> tuple[list[CaptionRecord], list[CaptionRecord]]:
    """Training and validation records, split by image (all captions of an image on one side).

    Example:
        >>> recs = [CaptionRecord(f"{i}.jpg", "x", i) for i in range(10)]
        >>> train, valid = split_by_image(recs, seed=0)
        >>> len(train), len(valid), {r.image for r in train} & {r.image for r in valid}
        (9, 1, set())
    """
    names = sorted({r.image for r in records})
    rng = np.random.default_rng(mix_seed(seed, 11))
    n_valid = max(1, round(held_out * len(names))) if len(names) > 1 else 0
    valid = {names[i] for i in rng.permutation(len(names))[:n_valid]}
    return [r for r in records if r.image not in valid], [r for r in records if r.image in valid]


@dataclass
class CaptionBatch:
    """A training batch: ``features (B, ...)`` (the encoder's cacheable output), ``tgt_in`` / ``tgt_out``
    ``(B, T)`` = ``[sos, y_1, ..]`` / ``[y_1, .., eos]`` padded with ``pad_id``."""

    features: Tensor
    tgt_in: Tensor
    tgt_out: Tensor

    def to(self, device: torch.device | str) -> CaptionBatch:
        return CaptionBatch(self.features.to(device).float(), self.tgt_in.to(device), self.tgt_out.to(device))


class CaptionStream(ResumableStream):
    """Endless, seeded, resumable batches of (image features, caption) pairs.

    Args:
        features: ``(I, ...)`` one entry per image (e.g. cached float16 encoder features).
        captions: token id lists ``[sos, ..., eos]``; image_index: the image of each caption.
        batch_size, seed, pad_id: batching.

    Example:
        >>> import torch
        >>> s = CaptionStream(torch.zeros(2, 3), [[1, 5, 2], [1, 6, 7, 2]], [0, 1], batch_size=2)
        >>> b = next(s); tuple(b.features.shape), b.tgt_in.shape[1]
        ((2, 3), 3)
    """

    resume_keys = ("seed", "batch_size", "size")

    def __init__(self, features: Tensor, captions: list[list[int]], image_index: list[int], *,
                 batch_size: int = 64, seed: int = 0, pad_id: int = 0) -> None:
        if len(captions) != len(image_index) or not captions:
            raise ValueError(f"Expected one image index per caption and at least one caption. Received: "
                             f"{len(captions)} captions, {len(image_index)} indices")
        if batch_size < 1:
            raise InputError(f"--batch-size must be >= 1. Received: {batch_size}")
        self.features, self.captions, self.image_index = features, captions, image_index
        self.batch_size, self.seed, self.pad_id, self.size = batch_size, seed, pad_id, len(captions)

    def _plan_epoch(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng(mix_seed(self.seed, epoch)).permutation(self.size).tolist()
        return [order[i:i + self.batch_size] for i in range(0, self.size, self.batch_size)]

    def _make_batch(self, plan: list[int], epoch: int, index: int) -> CaptionBatch:
        rows = [self.captions[i] for i in plan]
        T = max(len(r) for r in rows) - 1
        tgt = torch.full((len(rows), T + 1), self.pad_id, dtype=torch.long)  # (B, T + 1)
        for b, r in enumerate(rows):
            tgt[b, : len(r)] = torch.tensor(r)
        feats = self.features[torch.tensor([self.image_index[i] for i in plan])]
        return CaptionBatch(feats, tgt[:, :-1], tgt[:, 1:])


__all__ = ["CaptionBatch", "CaptionRecord", "CaptionStream", "read_captions", "split_by_image"]
