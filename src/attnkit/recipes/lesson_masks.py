"""The Transformer's training and masks, on the course's example (``attnkit lesson masks``).

- **Teacher forcing**: the decoder reads the target shifted right, ``<sos> I like nachos``, and learns to
  predict it at every position at once, ``I like nachos <eos>``, for the source ``Me gustan los nachos``.
- **Padding mask** (True = may attend): a batch's shorter sources are padded; no query attends to a pad.
- **Causal mask**: decoder position ``t`` attends to positions ``<= t`` only, so teacher forcing cannot
  read the word it must predict.
- The three attentions of a tiny Transformer (one layer each side, two heads) trained here for a few seconds
  on :data:`PAIRS` (it memorises them): the encoder's self-attention, the decoder's masked self-attention and
  the cross-attention, then greedy inference one token per step.

Shape legend: B pairs, S source length, T target length, H heads.
"""

from __future__ import annotations

from typing import Any

import torch

from attnkit.functional.masks import causal_mask, padding_mask
from attnkit.models.transformer import Transformer, TransformerConfig
from attnkit.viz.panels import MatrixPanel

PAIRS: tuple[tuple[str, str], ...] = (
    ("Me gustan los nachos", "I like nachos"),  # the course's example
    ("No me gustan los lunes", "I do not like Mondays"),
    ("Me gustan los gatos", "I like cats"),
    ("Ana va al cine", "Ana goes to the cinema"),
    ("Ana ve una nueva película", "Ana watches a new film"),
)
SPECIALS = ("<pad>", "<sos>", "<eos>", "<unk>")


def vocabulary(texts: list[str]) -> dict[str, int]:
    """Word -> id, the special tokens first (``<pad>`` 0, ``<sos>`` 1, ``<eos>`` 2, ``<unk>`` 3).

    Example:
        >>> vocabulary(["b a", "a"])
        {'<pad>': 0, '<sos>': 1, '<eos>': 2, '<unk>': 3, 'a': 4, 'b': 5}
    """
    words = sorted({w for t in texts for w in t.split()})
    return {w: i for i, w in enumerate((*SPECIALS, *words))}


def teacher_forcing_batch(pairs: tuple[tuple[str, str], ...] = PAIRS) -> dict[str, Any]:
    """The padded training batch: ``src (B, S)`` = ``<sos> x <eos>``, ``src_lengths (B,)``, ``tgt_in (B, T)`` =
    ``<sos> y`` (the target shifted right), ``tgt_out (B, T)`` = ``y <eos>``, and both vocabularies."""
    src_vocab, tgt_vocab = vocabulary([p[0] for p in pairs]), vocabulary([p[1] for p in pairs])
    src = [[1, *(src_vocab[w] for w in x.split()), 2] for x, _ in pairs]
    tgt = [[tgt_vocab[w] for w in y.split()] for _, y in pairs]

    def pad(rows: list[list[int]]) -> torch.Tensor:
        width = max(map(len, rows))
        return torch.tensor([r + [0] * (width - len(r)) for r in rows])

    return {"src": pad(src), "src_lengths": torch.tensor([len(r) for r in src]), "tgt_in": pad([[1, *r] for r in tgt]),
            "tgt_out": pad([[*r, 2] for r in tgt]), "src_vocab": src_vocab, "tgt_vocab": tgt_vocab}


def train_tiny(batch: dict[str, Any], steps: int = 150, seed: int = 0) -> tuple[Transformer, list[float]]:
    """A one-layer, two-head Transformer (``d_model`` 32) trained on ``batch`` with teacher forcing (Adam,
    no dropout, no label smoothing); returns ``(model in eval mode, loss per step)``."""
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig(src_vocab_size=len(batch["src_vocab"]), tgt_vocab_size=len(batch["tgt_vocab"]),
                                          d_model=32, num_heads=2, encoder_layers=1, decoder_layers=1, ff_dim=64,
                                          dropout=0.0, label_smoothing=0.0, max_src_len=16, max_tgt_len=16))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = model(batch["src"], batch["src_lengths"], batch["tgt_in"], batch["tgt_out"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


def masks_lesson(steps: int = 150, row: int = 0, seed: int = 0) -> dict[str, Any]:
    """Everything the lesson draws, for pair ``row`` of :data:`PAIRS` (the course's example by default).

    Returns:
        ``batch`` (:func:`teacher_forcing_batch`), ``padding (B, S)`` and ``causal (T, T)`` masks, the trained
        model's per-head weights of pair ``row``: ``encoder (H, S, S)``, ``decoder (H, T, T)``, ``cross (H, T, S)``;
        ``greedy`` (its greedy output for that source, one token per step), ``losses``.
    """
    batch = teacher_forcing_batch()
    model, losses = train_tiny(batch, steps, seed)
    with torch.no_grad():
        out = model(batch["src"], batch["src_lengths"], batch["tgt_in"], output_attentions=True)
        ids = model.generate(batch["src"][row: row + 1], batch["src_lengths"][row: row + 1]).tokens[0].tolist()
    words = {i: w for w, i in batch["tgt_vocab"].items()}
    return {"batch": batch, "losses": losses, "row": row,
            "padding": padding_mask(batch["src_lengths"], batch["src"].shape[1]),
            "causal": causal_mask(batch["tgt_in"].shape[1], batch["tgt_in"].shape[1]),
            "encoder": out.encoder_attentions[0][row], "decoder": out.decoder_attentions[0][row],
            "cross": out.cross_attentions[0][row], "greedy": [words[i] for i in ids if i != 0]}


def _words(ids: torch.Tensor, vocab: dict[str, int]) -> list[str]:
    names = {i: w for w, i in vocab.items()}
    return [names[int(i)] for i in ids]


def masks_panels(r: dict[str, Any]) -> list[MatrixPanel]:
    """Teacher forcing, the two masks and the three attentions (averaged over the heads)."""
    b, i = r["batch"], r["row"]
    src, tin, tout = (_words(b[k][i], b[v]) for k, v in (("src", "src_vocab"), ("tgt_in", "tgt_vocab"),
                                                          ("tgt_out", "tgt_vocab")))
    layout = [src + [""] * (max(len(src), len(tin)) - len(src)), tin, tout]
    width = max(map(len, layout))
    layout = [row + ["<pad>"] * (width - len(row)) for row in layout]
    kind = [[0 if w == "<pad>" else 2 if w in SPECIALS else 1 for w in row] for row in layout]
    sources = [" ".join(x.split()[:3]) + "…" for x, _ in PAIRS]
    attn = {"scale": "weight (mean of the 2 heads)", "vmin": 0.0}
    t = int((b["tgt_in"][i] != 0).sum())  # the pair's real target positions (pad queries are not drawn)
    tin, n = tin[:t], int(b["src_lengths"][i])
    return [
        MatrixPanel("teacher forcing: the decoder reads the target shifted right and predicts it at every position",
                    kind, rows=["encoder input", "decoder input", "decoder target"], cols=[str(j) for j in range(width)],
                    xlabel="position", ylabel="sequence", scale="token", categories=("padding", "word", "<sos> / <eos>"),
                    cells=[[w if w != "<pad>" else "pad" for w in row] for row in layout]),
        MatrixPanel("padding mask of the batch (True = may attend): no query attends to a pad", r["padding"].int(),
                    rows=sources, cols=[str(j) for j in range(r["padding"].shape[1])], xlabel="source position (key)",
                    ylabel="source sentence", scale="padding mask",
                    categories=("pad: masked (False)", "token: may attend (True)")),
        MatrixPanel("causal mask: decoder position t sees positions <= t only", r["causal"][:t, :t].int(), rows=tin, cols=tin,
                    xlabel="decoder input (key)", ylabel="decoder input (query)",
                    scale="causal mask", categories=("future: masked (False)", "may attend (True)")),
        MatrixPanel("encoder self-attention (source over source, the pad masked)",
                    r["encoder"][:, :n].mean(0).numpy(), rows=src[:n], cols=src, xlabel="source word (key)", ylabel="source word (query)", **attn),
        MatrixPanel("decoder masked self-attention (0 above the diagonal)", r["decoder"][:, :t, :t].mean(0).numpy(), rows=tin,
                    cols=tin, xlabel="decoder input (key)", ylabel="decoder input (query)", **attn),
        MatrixPanel("cross-attention: each target position over the encoder's words", r["cross"][:, :t].mean(0).numpy(),
                    rows=tin, cols=src, xlabel="source word (key)", ylabel="decoder input (query)", **attn),
    ]


__all__ = ["PAIRS", "masks_lesson", "masks_panels", "teacher_forcing_batch", "train_tiny", "vocabulary"]
