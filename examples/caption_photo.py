"""Per-word attention overlays of a trained captioner on real photographs (the README's pictures).

Writes ``OUT/caption_scene.png`` (a held-out test scene: two real photographs never seen together in
training) and ``OUT/caption_unseen.png`` (matplotlib's ``grace_hopper.jpg``, a real photograph outside the
scenes' vocabulary: no caption word names it, so only where it looks is of interest there). Train the model
first::

    attnkit train captioner --data scenes --encoder efficientnet-lite0 --attention-mode soft --out runs/cap-soft
    python examples/caption_photo.py runs/cap-soft --out docs/images
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import attnkit
from attnkit.cli._run import resolve_model_dir
from attnkit.data.images import resize_rgb
from attnkit.data.scenes import UNSEEN_PHOTOS, make_scenes, photo
from attnkit.viz import overlay_grid


def write_overlays(model, picture: np.ndarray, path: Path, panel_width: int = 120) -> str:
    """Caption ``picture`` ``(H, W, 3)`` uint8 and save the grid of its per-word overlays; returns the caption."""
    described = model.caption_words([picture])[0]
    grid = overlay_grid(picture, described.alignments, described.words, columns=len(described.words),
                        panel_width=panel_width)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, optimize=True)
    return described.text


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a captioner run or model directory")
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="folder of the pictures")
    parser.add_argument("--scene", type=int, default=0, help="which held-out test scene")
    args = parser.parse_args(argv)
    model = attnkit.load(resolve_model_dir(args.model))
    scene = make_scenes("test", args.scene + 1, seed=0, image_size=model.config.image_size)[args.scene]
    unseen = resize_rgb(photo(next(iter(UNSEEN_PHOTOS))), model.config.image_size)
    captions = [write_overlays(model, scene.image, args.out / "caption_scene.png"),
                write_overlays(model, unseen, args.out / "caption_unseen.png")]
    print(f"scene (reference: {scene.caption!r}): {captions[0]}")
    print(f"grace_hopper.jpg (outside the vocabulary): {captions[1]}")
    return captions


if __name__ == "__main__":
    main()
