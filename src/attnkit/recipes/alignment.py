"""Alignment error rate of a translator's attention against a built-in task's gold links.

Used by ``attnkit evaluate --alignment``, ``attnkit demo`` and ``attnkit experiment alignment``.

Shape legend: ``N`` pairs, ``B`` pairs of one batch, ``L`` decoder layers, ``H`` heads, ``T`` decoder
positions (output tokens + ``<eos>``), ``S`` source tokens (``<sos>`` + units + ``<eos>``), ``T_out`` /
``T_in`` the pair's output / input units (characters, or words for ``phrases``).

- :func:`check_alignable`: refuse data without gold links and models without alignments.
- :func:`alignment_scores`: corpus AER per link rule of the model's own alignments (a Seq2Seq's attention,
  a Transformer's last-layer cross-attention averaged over heads).
- :func:`head_alignment_scores`: a Transformer's every layer and head, and each layer's mean of heads.
- :func:`choose_head`: the ``(layer, head)`` with the lowest AER on the pairs it is given, which must be
  validation pairs; :func:`transformer_alignment_scores` chooses on validation, then scores the test pairs.

Every attention map is teacher-forced on the reference output, turned into links by each rule of
``attnkit.metrics.LINK_RULES`` over the whole token grid (so a shift can move the ``<eos>`` row's attention
onto the last unit), then cropped to the units: links on ``<sos>``, ``<eos>`` and padding are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attnkit.data import GOLD_ALIGNMENTS, gold_alignment
from attnkit.data.alignments import WORD_LEVEL, alignment_units
from attnkit.data.batches import collate
from attnkit.errors import InputError
from attnkit.metrics import LINK_RULES, alignment_error_rate
from attnkit.models.seq2seq import Seq2Seq
from attnkit.models.transformer import Transformer

Pairs = list[tuple[str, str]]
Maps = Callable[[Any], dict[str, torch.Tensor]]
"""A model output -> named attention maps ``(B, T, S)`` each."""


def check_alignable(model: Seq2Seq | Transformer, task: str) -> None:
    """Refuse (``InputError``) data without gold alignments and models without alignments."""
    if task not in GOLD_ALIGNMENTS:
        raise InputError(f"--alignment needs a built-in task with gold alignments ({', '.join(GOLD_ALIGNMENTS)}); "
                         f"{task!r} has none")
    if isinstance(model, Seq2Seq) and model.config.attention == "none":
        raise InputError("--alignment: this model has no attention (--attention none), so no alignments to score")
    unit = "word" if task in WORD_LEVEL else "char"
    schemes = {name: model.tokenizers[name].scheme for name in ("source", "target")}
    if set(schemes.values()) != {unit}:
        raise InputError(f"--alignment needs {unit}-level tokenizers (the gold links of {task!r} are per {unit}). "
                         f"Received: {schemes}")


def teacher_forced(model: Seq2Seq | Transformer, pairs: Pairs, task: str) -> Any:
    """The model's teacher-forced output on ``pairs`` (a Transformer's with ``output_attentions=True``),
    after checking that each pair is one token per gold unit and fits the model's length limits."""
    src_tok, tgt_tok = model.tokenizers["source"], model.tokenizers["target"]
    src_ids, tgt_ids = src_tok.encode_batch([s for s, _ in pairs]), tgt_tok.encode_batch([t for _, t in pairs])
    for (s, t), a, b in zip(pairs, src_ids, tgt_ids, strict=True):
        if len(a) != len(alignment_units(task, s)) + 2 or len(b) != len(alignment_units(task, t)) + 2:
            raise InputError(f"--alignment: {s!r} -> {t!r} is not one token per gold unit for this model")
        if len(a) > model.config.max_src_len or len(b) - 1 > model.config.max_tgt_len:
            raise InputError(f"--alignment: {s!r} -> {t!r} is longer than the model's length limits")
    batch = collate(src_ids, tgt_ids, pad_id=model.config.pad_id)
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        src, lengths, tgt_in = batch.src.to(device), batch.src_lengths.to(device), batch.tgt_in.to(device)
        if isinstance(model, Transformer):
            return model(src, lengths, tgt_in, output_attentions=True)
        return model(src, lengths, tgt_in)


def own_alignments(out: Any) -> dict[str, torch.Tensor]:
    """The model's own alignments ``(B, T, S)``: a Seq2Seq's attention, a Transformer's last-layer mean."""
    return {"alignments": out.alignments.float().cpu()}


def head_maps(out: Any) -> dict[str, torch.Tensor]:
    """Every cross-attention map of a Transformer output: ``"layer l head h"`` and ``"layer l mean"``
    (1-based), each ``(B, T, S)``."""
    maps = {}
    for layer, w in enumerate(out.cross_attentions, start=1):  # (B, H, T, S) each
        w = w.float().cpu()
        for head in range(w.size(1)):
            maps[f"layer {layer} head {head + 1}"] = w[:, head]
        maps[f"layer {layer} mean"] = w.mean(dim=1)  # (B, T, S)
    return maps


def _gold_grid(pairs: Pairs, task: str) -> tuple[list[tuple[int, int]], torch.Tensor, torch.Tensor]:
    """Each pair's ``(T_out, T_in)`` and the padded gold ``sure``, ``possible`` ``(N, T_out, T_in)``."""
    gold = [gold_alignment(task, s, t) for s, t in pairs]
    sizes = [tuple(g.shape) for g, _ in gold]
    shape = (len(pairs), max(t for t, _ in sizes), max(s for _, s in sizes))
    sure, possible = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    for i, ((g_sure, g_possible), (to, ti)) in enumerate(zip(gold, sizes, strict=True)):
        sure[i, :to, :ti], possible[i, :to, :ti] = g_sure, g_possible
    return sizes, sure, possible


def score_maps(model: Seq2Seq | Transformer, pairs: Pairs, task: str, maps: Maps = own_alignments,
               batch_size: int = 500) -> dict[str, dict[str, dict[str, float]]]:
    """Corpus AER and links per output unit of every attention map ``maps`` names, per link rule.

    Args:
        model: a translator trained on ``task`` (checked by :func:`check_alignable`).
        pairs: ``(source, target)`` pairs of ``task``.
        task: a task with gold links.
        maps: model output -> named maps ``(B, T, S)`` (:func:`own_alignments`, :func:`head_maps`).
        batch_size: pairs per forward pass.

    Returns:
        ``{map name: {rule: {"aer": AER, "links": predicted links / output units}}}``. ``links`` shows a
        rule that predicts (almost) nothing, whose AER can look good where sure links are few.
    """
    check_alignable(model, task)
    if not pairs:
        raise InputError("--alignment: no pairs to score")
    sizes, sure, possible = _gold_grid(pairs, task)
    predicted: dict[str, dict[str, torch.Tensor]] = {}  # map -> rule -> (N, T_out, T_in)
    for start in range(0, len(pairs), batch_size):
        out = teacher_forced(model, pairs[start: start + batch_size], task)
        for name, weights in maps(out).items():  # (B, T, S)
            found = predicted.setdefault(name, {rule: torch.zeros_like(sure) for rule in LINK_RULES})
            for k in range(weights.size(0)):
                to, ti = sizes[start + k]
                w = weights[k, : to + 1, : ti + 2]  # the pair's token grid: + <eos> row, <sos>/<eos> columns
                for rule, links in LINK_RULES.items():
                    found[rule][start + k, :to, :ti] = links(w)[:to, 1: ti + 1]
    units = sum(to for to, _ in sizes)
    return {name: {rule: {"aer": alignment_error_rate(links, sure, possible), "links": int(links.sum()) / units}
                   for rule, links in found.items()} for name, found in predicted.items()}


def alignment_scores(model: Seq2Seq | Transformer, pairs: Pairs, task: str,
                     batch_size: int = 500) -> dict[str, float]:
    """Corpus AER of the model's teacher-forced alignments against the task's gold links, per rule.

    A Seq2Seq's alignments are its attention weights; a Transformer's the last layer's cross-attention
    averaged over heads (:func:`head_alignment_scores` has every layer and head).

    Returns:
        ``{rule name: AER}``.

    Example:
        >>> from attnkit.recipes.seq2seq import RunSpec, prepare_seq2seq
        >>> from attnkit.training import TrainConfig
        >>> run = prepare_seq2seq(RunSpec(data="copy", max_len=4), TrainConfig(steps=1, progress=False,
        ...                       device="cpu"), {"embed_dim": 4, "hidden_dim": 8}, train_size=20, valid_size=2)
        >>> sorted(alignment_scores(run.model, [("abc", "abc")], "copy"))
        ['argmax', 'argmax, shifted one step', 'weights >= 0.3']
    """
    scores = score_maps(model, pairs, task, own_alignments, batch_size)["alignments"]
    return {rule: s["aer"] for rule, s in scores.items()}


def _check_transformer(model: Any) -> None:
    if not isinstance(model, Transformer):
        raise InputError(f"per-head alignments need a Transformer (cross-attention heads). Received: "
                         f"{type(model).__name__}")


def head_alignment_scores(model: Transformer, pairs: Pairs, task: str,
                          batch_size: int = 500) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`score_maps` of every cross-attention layer and head of a Transformer and of each layer's mean
    of heads: ``{"layer l head h" | "layer l mean": {rule: {"aer", "links"}}}`` (1-based)."""
    _check_transformer(model)
    return score_maps(model, pairs, task, head_maps, batch_size)


def best_head(scores: dict[str, dict[str, dict[str, float]]], rule: str) -> tuple[int, int]:
    """The ``(layer, head)`` (1-based) of the lowest AER under ``rule`` in :func:`head_alignment_scores`'
    result; ties go to the lowest layer, then head. A head whose rule predicts no link at all is chosen only
    when every head does (no links score AER 0 where the gold has no sure links, as in ``numbers``).

    Example:
        >>> s = {"layer 1 head 1": {"argmax": {"aer": 0.4, "links": 1.0}},
        ...      "layer 1 head 2": {"argmax": {"aer": 0.2, "links": 1.0}},
        ...      "layer 2 head 1": {"argmax": {"aer": 0.0, "links": 0.0}},
        ...      "layer 1 mean": {"argmax": {"aer": 0.1, "links": 1.0}}}
        >>> best_head(s, "argmax")
        (1, 2)
    """
    heads = [(int(n.split()[1]), int(n.split()[3])) for n in scores if "head" in n]

    def key(lh: tuple[int, int]) -> tuple[bool, float, tuple[int, int]]:
        s = scores[f"layer {lh[0]} head {lh[1]}"][rule]
        return s.get("links", 1.0) == 0, s["aer"], lh

    return min(heads, key=key)


def choose_head(model: Transformer, validation: Pairs, task: str, rule: str = "argmax") -> tuple[int, int]:
    """The cross-attention ``(layer, head)`` (1-based) with the lowest AER under ``rule`` on ``validation``.

    Pass validation pairs only: a head chosen on the pairs it is then scored on would report a lower AER
    than a user of that head would see on new data.
    """
    return best_head(head_alignment_scores(model, validation, task), rule)


def transformer_alignment_scores(model: Transformer, validation: Pairs, test: Pairs,
                                 task: str) -> dict[str, Any]:
    """A Transformer's cross-attention on ``test``: each layer's mean of heads, and per rule the head chosen
    on ``validation`` (:func:`best_head`); the test pairs play no part in the choice.

    Returns:
        ``{"maps": {map name: {rule: {"aer", "links"}}}`` with ``"layer l mean"`` for every layer and
        ``"best head"`` (per rule: the test scores of that rule's chosen head), ``"chosen": {rule: (layer,
        head)}``, ``"validation_aer": {rule: the chosen head's validation AER}``}.
    """
    _check_transformer(model)
    on_valid = head_alignment_scores(model, validation, task)
    chosen = {rule: best_head(on_valid, rule) for rule in LINK_RULES}
    on_test = head_alignment_scores(model, test, task)
    maps = {name: s for name, s in on_test.items() if name.endswith("mean")}
    maps["best head"] = {rule: on_test[f"layer {lh[0]} head {lh[1]}"][rule] for rule, lh in chosen.items()}
    valid_aer = {rule: on_valid[f"layer {lh[0]} head {lh[1]}"][rule]["aer"] for rule, lh in chosen.items()}
    return {"maps": maps, "chosen": chosen, "validation_aer": valid_aer}


__all__ = ["alignment_scores", "best_head", "check_alignable", "choose_head", "head_alignment_scores", "head_maps",
           "own_alignments", "score_maps", "teacher_forced", "transformer_alignment_scores"]
