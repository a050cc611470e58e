"""GPT: a decoder-only Transformer that predicts the next word (``attnkit lesson gpt``), Radford et al. 2018.

Every position attends to itself and the positions before it (the causal mask), and its output is a
distribution over the next word, ``p(w_(t+1) | w_<=t)``. A tiny word-level GPT (one layer, two heads, width 32)
is trained here for a few seconds on the sentences of :data:`attnkit.recipes.lesson_mlm.STORY` (it memorises
them), then reads the course's sentence.

Shape legend: T words, V vocabulary, H heads.
"""

from __future__ import annotations

from typing import Any

import torch

from attnkit.functional.masks import causal_mask
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.recipes.lesson_mlm import STORY
from attnkit.viz.panels import CurvePanel, MatrixPanel

END = "<|endoftext|>"


def words(text: str) -> list[str]:
    """Lower-case words, the full stop a word of its own.

    Example:
        >>> words("Ana va al cine.")
        ['ana', 'va', 'al', 'cine', '.']
    """
    return text.lower().replace(".", " .").split()


def train_story_gpt(steps: int = 200, seed: int = 0) -> tuple[GPT, dict[str, int], list[float]]:
    """A tiny GPT trained on the story (each sentence after ``<|endoftext|>``, all in one batch); returns
    ``(model in eval mode, vocabulary, loss per step)``."""
    vocab = {w: i for i, w in enumerate(dict.fromkeys([END, *(w for s in STORY for w in words(s))]))}
    rows = [[0, *(vocab[w] for w in words(s))] for s in STORY]
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])  # (B, T), padded with the end token
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=len(vocab), n_positions=32, n_embd=32, n_layer=1, n_head=2, embd_pdrop=0.0,
                          resid_pdrop=0.0, attn_pdrop=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model.eval(), vocab, losses


def gpt_lesson(sentence: str = STORY[0], steps: int = 200, seed: int = 0) -> dict[str, Any]:
    """The causal mask, the trained GPT's attention (``(H, T, T)``) and next-word distributions ``(T, V)`` on
    ``sentence`` (words outside the story's vocabulary are refused with ``ValueError``)."""
    model, vocab, losses = train_story_gpt(steps, seed)
    tokens = [END, *words(sentence)]
    unknown = [w for w in tokens if w not in vocab]
    if unknown:
        raise ValueError(f"Expected words of the story ({', '.join(STORY)}). Received: {', '.join(unknown)}")
    ids = torch.tensor([[vocab[w] for w in tokens]])  # (1, T)
    with torch.no_grad():
        out = model(ids, output_attentions=True)
    return {"tokens": tokens, "vocab": list(vocab), "causal": causal_mask(len(tokens), len(tokens)),
            "attention": out.attentions[0][0], "probs": torch.softmax(out.logits[0], dim=-1), "losses": losses}


def gpt_panels(r: dict[str, Any]) -> list[MatrixPanel | CurvePanel]:
    """The causal mask, the attention it allows, each position's next-word distribution and one of them."""
    tok, vocab, probs = r["tokens"], r["vocab"], r["probs"]
    short = ["<end>" if w == END else w for w in tok]
    names = ["<end>" if w == END else w for w in vocab]
    nxt = [*tok[1:], None]
    marks = [[("●" if w == want else "") for w in vocab] for want in nxt]
    top = probs[0].topk(min(6, len(vocab)))  # at the start of a text: six sentences could begin
    return [
        MatrixPanel("causal mask: word t sees words <= t only", r["causal"].int(), rows=short, cols=short,
                    xlabel="word (key)", ylabel="word (query)", scale="causal mask",
                    categories=("future: masked", "may attend")),
        MatrixPanel("GPT's self-attention (mean of the 2 heads): 0 above the diagonal",
                    r["attention"].mean(0).numpy(), rows=short, cols=short, xlabel="word (key)",
                    ylabel="word (query)", scale="weight", vmin=0.0),
        MatrixPanel("next-word distribution p(w_(t+1) | w_<=t) at each position (● the sentence's next word)",
                    probs.numpy(), rows=short, cols=names, xlabel="next word (vocabulary)", ylabel="words read so far",
                    scale="probability", vmin=0.0, vmax=1.0, cells=marks),
        CurvePanel(f"at the start of a text (after <end>): the {len(top.indices)} most likely first words",
                   {"p(w_1 | <end>)": (list(range(len(top.indices))), top.values.tolist())},
                   xlabel="next word", ylabel="probability", xticks=[names[i] for i in top.indices.tolist()],
                   bars=True),
    ]


__all__ = ["gpt_lesson", "gpt_panels", "train_story_gpt", "words"]
