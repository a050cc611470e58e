"""The decoder as a next-word model, and how it is searched (``attnkit lesson decoding``).

An encoder-decoder defines the joint probability of an output ``y`` given the input ``x`` one token at a time,

    p(y | x) = prod_t p(y_t | y_<t, x),     log p(y | x) = sum_t log p(y_t | y_<t, x),

where ``p(y_t | y_<t, x) = softmax(W_o o_t)`` is read from the decoder's hidden state ``s_t`` (which has seen
``y_<t``) and the step's context. Inference makes the output step by step: greedy search takes the most likely
token at each step; beam search keeps the ``K`` most likely prefixes and may find a more likely whole output.

Shape legend: T output steps, V target vocabulary, D decoder state width.
"""

from __future__ import annotations

from typing import Any

import torch

from attnkit.models.seq2seq import Seq2Seq
from attnkit.recipes.lesson_steps import visible
from attnkit.viz.panels import CurvePanel, MatrixPanel


@torch.no_grad()
def step_by_step(model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, ids: list[int]) -> dict[str, torch.Tensor]:
    """Feed ``ids`` (an output, end token included) to the decoder one step at a time (``model.step``).

    Returns:
        ``log_probs (T, V)``: ``log p(. | y_<t, x)`` at each step; ``states (T, D)``: the hidden state ``s_t``
        after each step; ``chosen (T,)``: ``log p(y_t | y_<t, x)`` of the given tokens.
    """
    state = model.encode(src, lengths)
    y_prev = torch.full((1,), model.config.sos_id, dtype=torch.long)
    rows, states = [], []
    for token in ids:
        log_probs, state, _ = model.step(y_prev, state)  # (1, V)
        rows.append(log_probs[0])
        states.append(state["h"][0])
        y_prev = torch.tensor([token])
    log_probs = torch.stack(rows)  # (T, V)
    return {"log_probs": log_probs, "states": torch.stack(states),
            "chosen": log_probs[torch.arange(len(ids)), torch.tensor(ids)]}


def _ids(out: Any) -> list[int]:
    return out.tokens[0, : int(out.lengths[0])].tolist()


def decoding_lesson(model: Seq2Seq, text: str, beam_size: int = 4) -> dict[str, Any]:
    """Greedy and beam search on ``text``, each output scored step by step.

    Returns:
        ``greedy`` and ``beam``: :func:`step_by_step` of each search's output plus its ``ids`` and ``tokens``;
        ``vocab``: the target tokens (column labels), ``beam_size``.

    Example:
        >>> from attnkit.recipes.lesson_model import example_model
        >>> m = example_model()
        >>> r = decoding_lesson(m, "4 de marzo", beam_size=2)
        >>> r["greedy"]["log_probs"].shape[1] == m.config.tgt_vocab_size, r["beam_size"]
        (True, 2)
    """
    src, lengths, _, _ = model.encode_texts([text])
    tgt = model.tokenizers["target"]
    result: dict[str, Any] = {"beam_size": beam_size,
                              "vocab": visible(tgt.tokens(list(range(model.config.tgt_vocab_size))))}
    for name, k in (("greedy", 1), ("beam", beam_size)):
        ids = _ids(model.generate(src, lengths, beam_size=k))
        result[name] = {**step_by_step(model, src, lengths, ids), "ids": ids, "tokens": visible(tgt.tokens(ids))}
    return result


def _joint(r: dict[str, Any]) -> str:
    total = float(r["chosen"].double().sum())
    return f"{''.join(r['tokens'][:-1])!r}\nlog p(y|x) = {total:.3f}, p(y|x) = {torch.tensor(total).exp():.3f}"


def decoding_panels(r: dict[str, Any]) -> list[MatrixPanel | CurvePanel]:
    """The distributions, the hidden states, the cumulative log-probability and one step's alternatives."""
    g, vocab = r["greedy"], r["vocab"]
    rows = [f"{t + 1}: {tok}" for t, tok in enumerate(g["tokens"])]
    probs = g["log_probs"].exp()  # (T, V)
    marks = [["●" if j == i_d else "" for j in range(len(vocab))] for i_d in g["ids"]]
    worst = int(g["chosen"].argmin())  # the least sure step
    top = probs[worst].topk(min(5, len(vocab)))
    series = {}
    for name in ("greedy", "beam"):
        c = r[name]["chosen"].double().cumsum(0)
        label = "greedy" if name == "greedy" else f"beam search (K = {r['beam_size']})"
        series[f"{label}: {_joint(r[name])}"] = (list(range(1, len(c) + 1)), c.tolist())
    return [
        MatrixPanel("p(y_t | y_<t, x): the decoder's next-token distribution at each step (● the greedy choice)",
                    probs.numpy(), rows=rows, cols=vocab, xlabel="target token (vocabulary)",
                    ylabel="step t: token chosen", scale="probability", vmin=0.0, vmax=1.0, cells=marks),
        MatrixPanel("the decoder's hidden state s_t after each step (it has read y_<t and the context)",
                    g["states"].numpy(), rows=rows, xlabel="dimension of s_t", ylabel="step t: token chosen",
                    scale="value of s_t", diverging=True),
        CurvePanel("joint probability, step by step: log p(y|x) = sum_t log p(y_t | y_<t, x)", series,
                   xlabel="step t", ylabel="cumulative log p(y_<=t | x)", legend_at="upper right"),
        CurvePanel(f"the least sure step, t = {worst + 1}: its {len(top.indices)} most likely next tokens",
                   {f"p(. | y_<{worst + 1}, x)": (list(range(len(top.indices))), top.values.tolist())},
                   xlabel="candidate next token", ylabel="probability",
                   xticks=[vocab[i] for i in top.indices.tolist()], bars=True),
    ]


__all__ = ["decoding_lesson", "decoding_panels", "step_by_step"]
