"""Word-level attention for word-piece models (BERT's ``##`` pieces, GPT-2's byte-level pieces): merge the
pieces of a word, hide the special tokens.

A WordPiece tokenizer cuts ``película`` into ``pel ##ic ##ula``; a picture of ``(T, T)`` weights then shows
pieces, not words. Following Clark et al. 2019 ("What does BERT look at?", section 4.1) and bertviz, a word
**receives the sum** of the weights its pieces receive and **gives the average** of what its pieces give:

    M[a, b] = (1 / |g_a|) * sum_{i in g_a} sum_{j in g_b} A[i, j]        g_a: the pieces of word a

so every row of ``M`` still sums to 1. Hiding the special tokens (``[CLS]``, ``[SEP]``, ``<s>``, ...) drops
their rows and columns and renormalises each remaining row to sum to 1 over the words shown:
``M'[a, b] = M[a, b] / sum_{c shown} M[a, c]``. The pictures say so, with the share of weight hidden.

Shape legend: T tokens (word pieces), W words shown, L layers, H heads.

Example:
    >>> import torch
    >>> tokens = ["[CLS]", "pel", "##ic", "##ula", "[SEP]"]
    >>> word_groups(tokens)
    [[0], [1, 2, 3], [4]]
    >>> a = torch.full((5, 5), 0.2)                                          # (T, T), rows sum to 1
    >>> merge_pieces(a, word_groups(tokens))[1].round(decimals=4).tolist()   # the word gives 3 x 0.2 to itself
    [0.2, 0.6, 0.2]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor

from attnkit.viz.methods import grad_maps, method_matrix
from attnkit.viz.record import AttentionRecord

CONTINUATION = "##"
"""WordPiece's mark of a piece that continues the previous one."""
_SPECIAL = re.compile(r"^(\[[A-Z_]+\]|<\|?[A-Za-z_/]+\|?>|</s>)$")


def is_special(token: str) -> bool:
    """True for a tokenizer's special token: ``[CLS]``, ``[SEP]``, ``[PAD]``, ``<s>``, ``</s>``, ``<|endoftext|>``.

    Example:
        >>> [is_special(t) for t in ["[CLS]", "</s>", "<|endoftext|>", "cine", "[x]"]]
        [True, True, True, False, False]
    """
    return bool(_SPECIAL.match(token))


def _spaced(tokens: Sequence[str]) -> bool:
    """True for byte-level BPE tokens (GPT-2): words start with a space and no piece carries ``##``."""
    return any(t.startswith(" ") for t in tokens) and not any(t.startswith(CONTINUATION) for t in tokens)


def word_groups(tokens: Sequence[str]) -> list[list[int]]:
    """The positions of each word's pieces: a token starting with ``##`` joins the word before it (WordPiece);
    with byte-level BPE tokens (GPT-2, words start with a space), a token without a leading space does.

    A special token is always a word of its own.

    Example:
        >>> word_groups(["Ana", " va", " al", " ci", "ne", "."])
        [[0], [1], [2], [3, 4, 5]]
    """
    spaced = _spaced(tokens)
    groups: list[list[int]] = []
    for i, tok in enumerate(tokens):
        joins = (not tok.startswith(" ")) if spaced else tok.startswith(CONTINUATION) and len(tok) > len(CONTINUATION)
        if groups and joins and not is_special(tok) and not is_special(tokens[i - 1]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def word_text(tokens: Sequence[str], group: Sequence[int]) -> str:
    """The word a group of pieces spells: ``pel ##ic ##ula`` -> ``pelicula``, `` ci ne`` -> ``cine``."""
    if _spaced(tokens):
        return "".join(tokens[i] for i in group).strip() or tokens[group[0]]
    return tokens[group[0]] + "".join(tokens[i][len(CONTINUATION):] for i in group[1:])


def merge_pieces(weights: Tensor, groups: Sequence[Sequence[int]]) -> Tensor:
    """``(..., T, T) -> (..., W, W)``: a word receives the sum of what its pieces receive and gives the average
    of what its pieces give (see the module docstring), in float64."""
    w = weights.double()
    t = w.shape[-1]
    onehot = torch.zeros(t, len(groups), dtype=torch.float64)  # (T, W): piece -> word
    for a, g in enumerate(groups):
        onehot[list(g), a] = 1.0
    received = w @ onehot  # (..., T, W): columns summed per word
    average = onehot / onehot.sum(0, keepdim=True)  # (T, W): each word's pieces, weight 1/|g|
    return average.transpose(0, 1) @ received  # (..., W, W): rows averaged per word


def hide(weights: Tensor, keep: Sequence[int]) -> Tensor:
    """``(..., T, T) -> (..., K, K)``: the rows and columns ``keep``, each row renormalised to sum to 1 over them
    (a row with nothing left stays 0)."""
    idx = torch.as_tensor(list(keep), dtype=torch.long)
    kept = weights.double().index_select(-2, idx).index_select(-1, idx)  # (..., K, K)
    total = kept.sum(-1, keepdim=True)
    return torch.where(total > 0, kept / total.clamp_min(1e-300), kept)


def word_level(rec: AttentionRecord, merge: bool = True, hide_special: bool = False,
               methods: Sequence[str] = ("rollout",)) -> AttentionRecord:
    """``rec`` with its tokens merged into words and/or its special tokens hidden, and the notes that say so.

    Derived maps (rollout, flow, grad of ``methods``) are computed on the pieces first, then merged: rollout of
    merged layers is not the merge of the rollout.

    Args:
        rec: a record with per-layer ``(H, T, T)`` attentions.
        merge: join word pieces into words; hide_special: hide special tokens' rows and columns.
        methods: the derived maps to carry over (``raw`` needs none).
    """
    groups = word_groups(rec.tokens) if merge else [[i] for i in range(len(rec.tokens))]
    words = [word_text(rec.tokens, g) for g in groups]
    keep = [a for a, w in enumerate(words) if not (hide_special and is_special(w))]
    if not keep:
        raise ValueError(f"Expected at least one word that is not a special token. Received: {rec.tokens}")

    def to_words(m: Tensor) -> Tensor:
        merged = merge_pieces(m, groups)
        return hide(merged, keep) if hide_special else merged

    derived = {m: to_words(grad_maps(rec) if m == "grad" else method_matrix(rec, m)) for m in methods if m != "raw"}
    notes = list(rec.notes)
    if merge and len(groups) == len(rec.tokens):
        notes.append("no word pieces to merge: every token is a word")
    elif merge:
        notes.append("word pieces merged into words: a word receives the sum of its pieces' weights and gives their "
                     "average (Clark et al. 2019)")
    if hide_special:
        last = merge_pieces(rec.attentions[-1].double().mean(0), groups)  # (W, W), raw, last layer
        share = 1.0 - float(last[keep][:, keep].sum(-1).mean())
        notes.append(f"special tokens hidden ({', '.join(sorted({words[a] for a in range(len(words)) if a not in keep}))}); "
                     f"each row renormalised to sum 1 over the words shown (they held {share:.0%} of the weight, "
                     f"raw, last layer)")
    return replace(rec, tokens=[words[a] for a in keep], attentions=tuple(to_words(a).float() for a in rec.attentions),
                   gradients=None, derived=derived, notes=notes)


__all__ = ["CONTINUATION", "hide", "is_special", "merge_pieces", "word_groups", "word_level", "word_text"]
