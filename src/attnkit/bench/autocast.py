"""bfloat16 autocast for CPU inference, measured: attnkit's GPT and BERT forward passes in float32 and
under ``torch.autocast("cpu", dtype=torch.bfloat16)``, the speed-up and the largest output difference.

bfloat16 halves the bytes moved and, on CPUs with ``avx512_bf16`` or AMX, doubles the matmul rate; on an
AVX2-only CPU oneDNN converts and computes in float32, so autocast is often slower there. The table says
which it was on this machine.

Example:
    >>> import torch
    >>> from attnkit.models.gpt import GPT, GPTConfig
    >>> gpt = GPT(GPTConfig(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2)).eval()
    >>> f32, b16, diff = compare(lambda: gpt(torch.zeros(1, 4, dtype=torch.long)).logits, 4, repeats=1)
    >>> f32 > 0 and b16 > 0 and diff < 1
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from attnkit.bench.report import Section
from attnkit.timing import interleaved_medians


def compare(forward: Callable[[], torch.Tensor], tokens: int, repeats: int = 3) -> tuple[float, float, float]:
    """Tokens/s of ``forward`` in float32 and under bfloat16 autocast (interleaved, medians), and the
    largest absolute difference of the outputs relative to the largest float32 output.

    Args:
        forward: a zero-argument call returning one output tensor.
        tokens: tokens processed by one call.
        repeats: timed calls of each (after one warm-up each).

    Returns:
        ``(float32 tokens/s, bfloat16 tokens/s, max |bf16 - f32| / max |f32|)``.
    """
    def bf16() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward()

    with torch.inference_mode():
        ref, low = forward().float(), bf16().float()  # also the warm-up of each
        seconds = interleaved_medians({"f32": forward, "bf16": bf16}, repeats, warmup=0)
    diff = float((low - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
    return tokens / seconds["f32"], tokens / seconds["bf16"], diff


def bf16_rows(section: Section, gpt: torch.nn.Module, sizes: dict, bert: torch.nn.Module | None,
              bert_inputs: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Add the bfloat16 autocast table to ``section`` (GPT logits, and BERT hidden states when given)."""
    gpt.eval()
    ids = torch.randint(0, sizes["vocab"], (sizes["batch"], sizes["length"]), generator=torch.Generator().manual_seed(4))
    cases = [("GPT forward (logits)", lambda: gpt(ids).logits, ids.numel(), "gpt")]
    if bert is not None and bert_inputs is not None:
        b_ids, b_mask = bert_inputs
        cases.append(("BERT forward (last_hidden_state)", lambda: bert(b_ids, attention_mask=b_mask).last_hidden_state,
                      b_ids.numel(), "bert"))
    rows = []
    for label, fn, tokens, key in cases:
        f32, b16, diff = compare(fn, tokens, repeats=sizes["repeats"])
        rows.append([label, f32, b16, b16 / f32, diff])
        section.figures.update({f"models/bf16/{key}/f32_per_s": f32, f"models/bf16/{key}/bf16_per_s": b16,
                                f"models/bf16/{key}/max_rel_diff": diff})
    section.table("bfloat16 autocast for CPU inference (attnkit)",
                  ["forward", "float32 tokens/s", "bf16 autocast tokens/s", "bf16 / float32 speed", "max |diff| / max |f32|"],
                  rows, ["bf16 / float32 > 1 means autocast is faster here; its gain needs bf16 hardware "
                         "(avx512_bf16 or AMX in the CPU flags above)."])
