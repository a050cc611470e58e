"""Pure metrics: exact match, token accuracy, BLEU, scores per input-length bucket, alignment error rate.

* ``exact_match``: share of outputs equal to their reference string.
* ``token_accuracy``: share of target positions predicted right, on tensors (teacher-forced logits'
  argmax vs targets, padding ignored) or on token sequences / strings (position by position).
* ``bleu``: corpus BLEU (Papineni et al. 2002) computed by sacrebleu, 0..100.
* ``by_length_bucket``: any of these per bucket of source length, the "score against sentence length"
  curve of Bahdanau et al. 2015, Fig. 2.
* ``alignment_error_rate``: how far predicted word links are from gold sure/possible links (Och and Ney 2003).
* ``argmax_links``, ``threshold_links``, ``shift_rows`` and the named rules of ``LINK_RULES``: links taken
  from attention weights, the predictions ``alignment_error_rate`` scores.

Example:
    >>> exact_match(["2031-03-04", "1999-01-01"], ["2031-03-04", "1999-01-02"])
    0.5
    >>> token_accuracy(["abcd"], ["abce"])
    0.75
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Metric = Callable[[Sequence[str], Sequence[str]], float]


def _check_same_length(preds: Sequence, refs: Sequence) -> None:
    if len(preds) != len(refs):
        raise ValueError(
            f"Expected as many predictions as references. Received: {len(preds)} predictions, {len(refs)} references"
        )


def exact_match(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Share of ``preds[i] == refs[i]`` (strings compared exactly), in ``[0, 1]``; ``0.0`` for no pairs."""
    _check_same_length(preds, refs)
    if not preds:
        return 0.0
    return sum(p == r for p, r in zip(preds, refs, strict=True)) / len(preds)


def token_accuracy(
    preds: torch.Tensor | Sequence[Sequence],
    refs: torch.Tensor | Sequence[Sequence],
    *,
    pad_id: int = 0,
) -> float:
    """Share of target tokens predicted right.

    Tensors: ``preds`` ``(B, T)`` predicted ids (or ``(B, T, V)`` logits, argmax taken) against ``refs``
    ``(B, T)`` target ids; positions where ``refs == pad_id`` are ignored::

        acc = sum[(preds == refs) & (refs != pad)] / sum[refs != pad]

    Sequences (token lists, or strings = characters): position by position, over the longer of the two,
    so missing and extra tokens both count as errors::

        acc = sum_i #{t : p_i[t] == r_i[t]} / sum_i max(|p_i|, |r_i|)

    Returns ``0.0`` when there is nothing to score.
    """
    if isinstance(preds, torch.Tensor) or isinstance(refs, torch.Tensor):
        if not (isinstance(preds, torch.Tensor) and isinstance(refs, torch.Tensor)):
            raise TypeError("Expected preds and refs both tensors or both sequences. Received: one of each")
        if preds.dim() == refs.dim() + 1:
            preds = preds.argmax(dim=-1)  # (B, T, V) -> (B, T)
        if preds.shape != refs.shape:
            raise ValueError(
                f"Expected preds of shape {tuple(refs.shape)} (or logits {(*refs.shape, 'V')}). "
                f"Received: {tuple(preds.shape)}"
            )
        keep = refs != pad_id
        total = int(keep.sum())
        return int(((preds == refs) & keep).sum()) / total if total else 0.0
    _check_same_length(preds, refs)
    right = total = 0
    for p, r in zip(preds, refs, strict=True):
        right += sum(a == b for a, b in zip(p, r, strict=False))
        total += max(len(p), len(r))
    return right / total if total else 0.0


def bleu(
    preds: Sequence[str], refs: Sequence[str], *, tokenize: str = "13a", lowercase: bool = False
) -> float:
    """Corpus BLEU in ``[0, 100]`` (sacrebleu, one reference per output).

    ``BLEU = BP * exp(sum_{n=1..4} 1/4 log p_n)``, ``p_n`` the clipped n-gram precisions over the corpus,
    ``BP = min(1, exp(1 - ref_len / out_len))``.

    Args:
        preds, refs: output and reference strings, one each per example.
        tokenize: sacrebleu tokenizer (``"13a"`` default, ``"char"`` for character-level tasks,
            ``"none"``, ``"intl"``, ...).
        lowercase: case-insensitive BLEU.
    """
    import sacrebleu  # local: sacrebleu is only needed here

    _check_same_length(preds, refs)
    if not preds:
        return 0.0
    return float(
        sacrebleu.corpus_bleu(list(preds), [list(refs)], tokenize=tokenize, lowercase=lowercase).score
    )


_METRICS: dict[str, Metric] = {"exact_match": exact_match, "token_accuracy": token_accuracy, "bleu": bleu}
_LENGTHS: dict[str, Callable[[str], int]] = {"words": lambda s: len(s.split()), "chars": len}


@dataclass(frozen=True)
class LengthBucket:
    """Score of the examples whose source length is in ``[low, high]`` (``high=None``: no upper end)."""

    low: int
    high: int | None
    count: int
    score: float

    @property
    def label(self) -> str:
        """``"11-20"``, or ``"61+"`` for the open last bucket."""
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"


def by_length_bucket(
    sources: Sequence[str],
    preds: Sequence[str],
    refs: Sequence[str],
    buckets: int | Sequence[int] = 10,
    *,
    metric: str | Metric = "exact_match",
    length: str | Callable[[str], int] = "words",
) -> list[LengthBucket]:
    """Score per bucket of source length (Bahdanau et al. 2015, Fig. 2: BLEU against sentence length).

    Args:
        sources, preds, refs: one each per example.
        buckets: the inclusive upper edges, e.g. ``(10, 20, 30)`` -> ``0-10, 11-20, 21-30, 31+`` (the
            open bucket only when some source is longer); or an int ``w``: buckets of width ``w`` up to the
            longest source.
        metric: ``"exact_match"``, ``"token_accuracy"``, ``"bleu"`` or a callable ``(preds, refs) -> float``.
        length: ``"words"`` (whitespace-separated), ``"chars"`` or a callable ``source -> int``.

    Returns:
        one :class:`LengthBucket` per non-empty bucket, shortest first.
    """
    _check_same_length(preds, refs)
    _check_same_length(sources, refs)
    score_fn = _METRICS.get(metric) if isinstance(metric, str) else metric
    if score_fn is None:
        raise ValueError(
            f"Expected metric to be one of {sorted(_METRICS)} or a callable. Received: metric={metric!r}"
        )
    len_fn = _LENGTHS.get(length) if isinstance(length, str) else length
    if len_fn is None:
        raise ValueError(
            f"Expected length to be one of {sorted(_LENGTHS)} or a callable. Received: length={length!r}"
        )
    lens = [len_fn(s) for s in sources]
    if isinstance(buckets, int):
        if buckets < 1:
            raise ValueError(f"Expected a positive bucket width. Received: buckets={buckets}")
        edges = list(range(buckets, max(lens, default=0) + buckets, buckets))
    else:
        edges = list(buckets)
        if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"Expected strictly increasing bucket edges. Received: buckets={buckets!r}")
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lens):
        k = next((j for j, e in enumerate(edges) if n <= e), len(edges))  # len(edges) = open last bucket
        groups.setdefault(k, []).append(i)
    out = []
    for k in sorted(groups):
        idx = groups[k]
        low = 0 if k == 0 else edges[k - 1] + 1
        high = edges[k] if k < len(edges) else None
        out.append(
            LengthBucket(
                low, high, len(idx), float(score_fn([preds[i] for i in idx], [refs[i] for i in idx]))
            )
        )
    return out


def alignment_error_rate(predicted: torch.Tensor, sure: torch.Tensor, possible: torch.Tensor | None = None) -> float:
    """Corpus-level alignment error rate of Och and Ney (2003), "A Systematic Comparison of Various
    Statistical Alignment Models", Computational Linguistics 29(1), eq. (2)::

        AER(A; S, P) = 1 - (|A & S| + |A & P|) / (|A| + |S|)

    with ``A`` the predicted links, ``S`` the sure links and ``P`` the possible links; sure links count as
    possible (``S`` is a subset of ``P``: a sure link missing from a given ``possible`` is refused). The counts are summed over every leading index (sentences, batch) before the
    ratio is taken, as the paper's corpus-level figure is. 0 is perfect; a prediction of exactly the sure
    links scores 0 whatever the possible links; with neither predicted nor sure links there is nothing to
    get wrong and the rate is 0.

    Args:
        predicted: bool ``(..., T_out, T_in)``: True where output position ``t`` is linked to input ``j``
            (e.g. each row's attention argmax, see the example).
        sure: bool, the same shape: the gold links every annotator agrees on.
        possible: bool, the same shape, or None (= ``sure``): the gold links that are acceptable.

    Returns:
        The AER as a float in ``[0, 1]``.

    Raises:
        ValueError: a tensor that is not boolean, shapes that differ (the message names them), or a sure link
            outside the possible links.

    Example:
        >>> import torch
        >>> weights = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])       # (T_out, T_in) attention
        >>> predicted = torch.zeros(2, 3, dtype=torch.bool)
        >>> predicted[torch.arange(2), weights.argmax(-1)] = True              # each output's peak
        >>> sure = torch.tensor([[True, False, False], [False, True, False]])
        >>> possible = sure | torch.tensor([[False, False, False], [False, False, True]])
        >>> alignment_error_rate(predicted, sure, possible)                    # 1 - (1 + 2) / (2 + 2)
        0.25
        >>> alignment_error_rate(predicted, sure)                              # 1 - (1 + 1) / (2 + 2)
        0.5
    """
    possible = sure if possible is None else possible
    for name, t in (("predicted", predicted), ("sure", sure), ("possible", possible)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.bool:
            got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"Expected {name} a bool tensor (..., T_out, T_in). Received: {got}")
    shapes = {name: tuple(t.shape) for name, t in (("predicted", predicted), ("sure", sure), ("possible", possible))}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"Expected predicted, sure and possible of one shape (..., T_out, T_in). Received: {shapes}")
    outside = int((sure & ~possible).sum())
    if outside:
        raise ValueError(f"Expected every sure link among the possible links (S within P). Received: {outside} sure "
                         f"link(s) outside possible; pass possible | sure")
    a, s = int(predicted.sum()), int(sure.sum())
    if a + s == 0:
        return 0.0
    a_and_s, a_and_p = int((predicted & sure).sum()), int((predicted & possible).sum())
    return 1.0 - (a_and_s + a_and_p) / (a + s)


def _check_weights(weights: torch.Tensor) -> None:
    if not isinstance(weights, torch.Tensor) or not weights.is_floating_point() or weights.dim() < 2:
        got = f"{weights.dtype} {tuple(weights.shape)}" if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"Expected float attention weights (..., T_out, T_in). Received: {got}")


def argmax_links(weights: torch.Tensor) -> torch.Tensor:
    """One link per output position, to the input it attends to most; a row of zeros links to nothing.

    Args:
        weights: float ``(..., T_out, T_in)`` attention weights (rows sum to 1, or 0 where nothing is attended).

    Returns:
        bool ``(..., T_out, T_in)``: ``links[..., t, j] = (j == argmax_j weights[..., t, j]) and weights[..., t, j] > 0``.

    Example:
        >>> import torch
        >>> argmax_links(torch.tensor([[0.2, 0.8], [0.0, 0.0]])).tolist()
        [[False, True], [False, False]]
    """
    _check_weights(weights)
    links = torch.zeros_like(weights, dtype=torch.bool)
    links.scatter_(-1, weights.argmax(dim=-1, keepdim=True), True)  # (..., T_out, T_in)
    return links & (weights > 0)


def threshold_links(weights: torch.Tensor, threshold: float) -> torch.Tensor:
    """Every link whose weight reaches ``threshold``: ``links = weights >= threshold`` (0 or more per row).

    Args:
        weights: float ``(..., T_out, T_in)``.
        threshold: in ``(0, 1]``.

    Example:
        >>> import torch
        >>> threshold_links(torch.tensor([[0.5, 0.3, 0.2]]), 0.3).tolist()
        [[True, True, False]]
    """
    _check_weights(weights)
    if not 0 < threshold <= 1:
        raise ValueError(f"Expected threshold in (0, 1]. Received: threshold={threshold}")
    return weights >= threshold


def shift_rows(weights: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """The attention rows moved up by ``steps`` output positions: row ``t`` gets row ``t + steps``.

    Bahdanau-style and input-feeding decoders are known to attend to the source of the *next* output
    token, one step late or early; ``shift_rows(weights, 1)`` reads row ``t + 1`` as the alignment of
    output ``t``. The last ``steps`` rows become zeros (no links); a negative ``steps`` moves rows down.

    Args:
        weights: float ``(..., T_out, T_in)``.
        steps: output positions to move by.

    Example:
        >>> import torch
        >>> shift_rows(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), 1).tolist()
        [[0.0, 1.0], [0.0, 0.0]]
    """
    _check_weights(weights)
    out = torch.zeros_like(weights)
    t_out = weights.size(-2)
    if abs(steps) >= t_out:
        return out
    if steps >= 0:
        out[..., : t_out - steps, :] = weights[..., steps:, :]
    else:
        out[..., -steps:, :] = weights[..., : t_out + steps, :]
    return out


LINK_THRESHOLD = 0.3  # fixed in advance, never tuned on the data scored
LINK_RULES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "argmax": argmax_links,
    "argmax, shifted one step": lambda w: argmax_links(shift_rows(w, 1)),
    f"weights >= {LINK_THRESHOLD}": lambda w: threshold_links(w, LINK_THRESHOLD),
}
"""Named rules from attention weights ``(..., T_out, T_in)`` to links, as ``attnkit evaluate --alignment`` reports."""
