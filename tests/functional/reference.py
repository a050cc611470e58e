"""Naive float64 references, written from the formulas and independent of attnkit's code paths."""

import math

import torch


def naive_attention(q, k, v, score_matrix, mask=None):
    """Loop-free but plain: softmax over allowed keys in float64; rows with no allowed key are zero."""
    q, k, v = q.double(), k.double(), v.double()
    s = score_matrix.double()
    if mask is not None:
        mask = mask.expand_as(s)
        s = torch.where(mask, s, torch.full_like(s, -math.inf))
    mx = s.amax(-1, keepdim=True)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    e = torch.exp(s - mx)
    denom = e.sum(-1, keepdim=True)
    w = torch.where(denom > 0, e / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(e))
    return w @ v, w


def scaled_dot_scores(q, k, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    return (q.double() @ k.double().transpose(-2, -1)) * scale


def additive_scores_loop(q, k, w_q, w_k, w_v):
    """e_ij = w_v . tanh(W_q q_i + W_k k_j), computed pair by pair (2-D inputs)."""
    out = torch.empty(q.shape[0], k.shape[0], dtype=torch.float64)
    for i in range(q.shape[0]):
        for j in range(k.shape[0]):
            out[i, j] = w_v.double() @ torch.tanh(w_q.double() @ q[i].double() + w_k.double() @ k[j].double())
    return out
