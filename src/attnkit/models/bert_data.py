"""BERT's pretraining data: masked-LM corruption (the 80/10/10 rule) and next-sentence pairs
(Devlin et al. 2019).

Shape legend: B batch, T positions.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor


def mask_tokens(
    input_ids: Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_tokens_mask: Tensor | None = None,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Masked-LM corruption of Devlin et al. (2019): choose each token with probability
    ``mlm_probability`` (never one of ``special_tokens_mask``); of the chosen, 80% become
    ``mask_token_id``, 10% a random token, 10% stay unchanged.

    Args:
        input_ids: ``(B, T)`` token ids (not modified).
        special_tokens_mask: ``(B, T)`` bool, True = never choose ([CLS], [SEP], padding).

    Returns:
        ``(inputs, labels)``, both ``(B, T)``: corrupted ids, and the original id at chosen
        positions with -100 elsewhere (the value losses ignore).

    Example:
        >>> ids = torch.tensor([[101, 7, 8, 9, 102]])
        >>> inputs, labels = mask_tokens(ids, mask_token_id=103, vocab_size=200)
        >>> inputs.shape, labels.shape
        (torch.Size([1, 5]), torch.Size([1, 5]))
    """
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"Expected mlm_probability in [0, 1]. Received: {mlm_probability}")
    if special_tokens_mask is not None and special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"Expected `special_tokens_mask` of shape {tuple(input_ids.shape)}. "
            f"Received: {tuple(special_tokens_mask.shape)}"
        )

    def draw(p: float) -> Tensor:
        u = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
        return u < p

    chosen = draw(mlm_probability)  # (B, T)
    if special_tokens_mask is not None:
        chosen &= ~special_tokens_mask.bool()
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    to_mask = chosen & draw(0.8)
    to_random = chosen & ~to_mask & draw(0.5)  # half of the remaining 20%
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


def next_sentence_pairs(sentences: list, seed: int = 0) -> list[tuple[object, object, int]]:
    """Next-sentence-prediction examples: for each sentence but the last, ``(a, b, label)`` with
    ``b`` the true next sentence (label 0) or, with probability 1/2, a random other sentence that
    is not the next one (label 1).

    Example:
        >>> pairs = next_sentence_pairs(["a", "b", "c", "d"], seed=1)
        >>> len(pairs), all(label in (0, 1) for _, _, label in pairs)
        (3, True)
    """
    if len(sentences) < 3:
        raise ValueError(f"Expected at least 3 sentences. Received: {len(sentences)}")
    rng = random.Random(seed)
    pairs = []
    for i in range(len(sentences) - 1):
        if rng.random() < 0.5:
            pairs.append((sentences[i], sentences[i + 1], 0))
        else:
            j = rng.choice([j for j in range(len(sentences)) if j not in (i, i + 1)])
            pairs.append((sentences[i], sentences[j], 1))
    return pairs
