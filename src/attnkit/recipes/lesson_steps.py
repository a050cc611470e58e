"""The four steps of attention on one input of a Bahdanau encoder-decoder (``attnkit lesson steps``).

For the input ``x`` and the model's greedy output ``y``, decoder step ``i``:

1. encoder states (annotations) ``h_j = [fwd h_j; bwd h_j]``, ``(S, D)``;
2. alignment scores ``e_ij = w_v^T tanh(W_q s_(i-1) + W_k h_j)``, ``(S,)``;
3. the attention distribution ``a_i = softmax_j(e_ij)``, ``(S,)``;
4. the context vector ``c_i = sum_j a_ij h_j``, ``(D,)``: a soft read of every memory location ``h_j``.

Every output step has its own ``a_i`` and ``c_i``: the general scheme ``c[t] = sum_i alpha_(t,i) h[i]``.

Shape legend: S source length, T output steps, D annotation (and decoder state) width, A alignment-model width.
"""

from __future__ import annotations

from typing import Any

import torch

from attnkit.functional.scores import additive_from_projected
from attnkit.models.seq2seq import Seq2Seq
from attnkit.recipes.seq2seq import alignment_labels
from attnkit.viz.panels import CurvePanel, MatrixPanel


@torch.no_grad()
def attention_steps(model: Seq2Seq, text: str) -> dict[str, Any]:
    """The four steps at every decoder step of the greedy translation of ``text``.

    Returns:
        ``source`` (S tokens), ``output`` (T tokens, end token included), ``h (S, D)`` annotations,
        ``s_prev (T, D)`` the decoder state before each step, ``e (T, S)`` scores, ``a (T, S)`` weights and
        ``c (T, D)`` context vectors as the model's attention layer returns them.

    Example:
        >>> from attnkit.recipes.lesson_model import example_model
        >>> r = attention_steps(example_model(), "4 de marzo")
        >>> tuple(r["h"].shape), tuple(r["a"].shape) == (len(r["output"]), len(r["source"]))
        ((12, 6), True)
    """
    src, lengths, _, _ = model.encode_texts([text])
    out = model.generate(src, lengths)
    ids = out.tokens[0, : int(out.lengths[0])].tolist()  # (T,) end token included
    state = model.encode(src, lengths)
    keys, mask, proj = state["keys"], state["mask"], state["proj"]  # (1, S, D), (1, S), (1, S, A)
    y_prev = torch.full((1,), model.config.sos_id, dtype=torch.long)
    s_prev, contexts, weights = [], [], []
    for token in ids:
        s_prev.append(state["h"][0])  # s_(i-1), (D,)
        c, a = model.attn(state["h"], keys, mask, projected_keys=proj)  # (1, D), (1, S)
        contexts.append(c[0])
        weights.append(a[0])
        _, state, _ = model.advance(y_prev, state)
        y_prev = torch.tensor([token])
    s = torch.stack(s_prev)  # (T, D)
    e = additive_from_projected(model.attn.project_query(s), proj[0], model.attn.score.w_v)  # (T, S)
    output, source = (visible(t) for t in alignment_labels(model, text, ids))
    return {"source": source, "output": output, "h": keys[0], "s_prev": s,
            "e": e, "a": torch.stack(weights), "c": torch.stack(contexts)}


def steps_panels(r: dict[str, Any], step: int) -> list[MatrixPanel | CurvePanel]:
    """The six panels of the lesson for decoder step ``step`` (0-based) of :func:`attention_steps`' ``r``."""
    src, out, i = r["source"], r["output"], step
    dims = r["h"].shape[1]
    x = list(range(len(src)))
    weighted = r["a"][i][:, None] * r["h"]  # (S, D): a_ij h_j
    return [
        MatrixPanel(f"1. encoder states h_j (annotations): one row per input token, {dims} numbers each",
                    r["h"].numpy(), rows=src, xlabel="dimension of h_j", ylabel="input token j",
                    scale="value of h_j", diverging=True),
        CurvePanel(f"2. alignment scores e_ij = a(s_(i-1), h_j) for output step i = {i + 1} ({out[i]!r})",
                   {f"e_{i + 1},j": (x, r["e"][i].tolist())}, xlabel="input token j", ylabel="score e_ij",
                   xticks=src, bars=True),
        CurvePanel(f"3. softmax: attention distribution a_ij = exp(e_ij) / sum_k exp(e_ik) (sums to "
                   f"{float(r['a'][i].sum()):.3f})", {f"a_{i + 1},j": (x, r["a"][i].tolist())},
                   xlabel="input token j", ylabel="weight a_ij", xticks=src, bars=True),
        MatrixPanel(f"4. context vector c_i = sum_j a_ij h_j: the weighted states and, last row, their sum c_{i + 1}",
                    torch.cat([weighted, r["c"][i][None]]).numpy(), rows=[*src, f"= c_{i + 1}"],
                    xlabel="dimension", ylabel="a_ij h_j (input token j)", scale="value", diverging=True),
        MatrixPanel("every output step's distribution a_i (soft access: each step reads a mix of every h_j)",
                    r["a"].numpy(), rows=out, cols=src, xlabel="input token j", ylabel="output step i",
                    scale="weight a_ij", vmin=0.0, vmax=1.0),
        MatrixPanel("one context vector per output token: c_i = sum_j a_ij h_j (general scheme c[t] = sum_i "
                    "alpha_t,i h[i])", r["c"].numpy(), rows=out, xlabel="dimension of c_i", ylabel="output step i",
                    scale="value of c_i", diverging=True),
    ]


def visible(tokens: list[str]) -> list[str]:
    """Tokens as labels: a space becomes ``␣`` (a blank label would look like a missing one).

    Example:
        >>> visible(["4", " ", "d"])
        ['4', '␣', 'd']
    """
    return [t.replace(" ", "␣") if t.strip() == "" and t else t for t in tokens]


def default_step(r: dict[str, Any]) -> int:
    """The step drawn by default: one that mixes several inputs, the output step (end token excluded) whose
    largest weight is nearest 0.6 (``argmin_i |max_j a_ij - 0.6|``, ties to the first)."""
    peaks = r["a"][: max(1, len(r["a"]) - 1)].max(dim=1).values  # (T - 1,)
    return int((peaks - 0.6).abs().argmin())


__all__ = ["attention_steps", "default_step", "steps_panels"]
