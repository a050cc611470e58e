"""Naive float64 references for the interpretability functions: loops and a plain Edmonds-Karp max-flow."""

from __future__ import annotations

from collections import deque

import numpy as np


def residual_rows(a: np.ndarray, residual: bool = True) -> np.ndarray:
    """One layer ``(T, T)`` with the identity added and rows renormalised, entry by entry."""
    T = a.shape[0]
    out = np.zeros((T, T))
    for i in range(T):
        row = [0.5 * a[i, j] + (0.5 if (residual and i == j) else 0.0) if residual else a[i, j] for j in range(T)]
        s = sum(row)
        out[i] = [x / s for x in row]
    return out


def heads(a: np.ndarray, how: str) -> np.ndarray:
    """``(H, T, T) -> (T, T)`` with a loop over heads."""
    acc = a[0].copy()
    for h in range(1, a.shape[0]):
        acc = acc + a[h] if how == "mean" else np.maximum(acc, a[h])
    return acc / a.shape[0] if how == "mean" else acc


def rollout(layers: list[np.ndarray], residual: bool = True, how: str = "mean") -> np.ndarray:
    """``layers``: L arrays ``(H, T, T)`` of one example -> ``(T, T)`` by explicit triple loops."""
    mats = [residual_rows(heads(a, how), residual) for a in layers]
    r = mats[0]
    for m in mats[1:]:
        T = r.shape[0]
        r = np.array([[sum(m[i, k] * r[k, j] for k in range(T)) for j in range(T)] for i in range(T)])
    return r


def max_flow(cap: dict[int, dict[int, float]], s: int, t: int) -> float:
    """Edmonds-Karp on float capacities ``cap[u][v]``."""
    res: dict[int, dict[int, float]] = {}
    for u, nbrs in cap.items():
        for v, c in nbrs.items():
            res.setdefault(u, {}).setdefault(v, 0.0)
            res[u][v] += c
            res.setdefault(v, {}).setdefault(u, 0.0)
    total = 0.0
    while True:
        parent = {s: None}
        q = deque([s])
        while q and t not in parent:
            u = q.popleft()
            for v, c in res.get(u, {}).items():
                if c > 1e-15 and v not in parent:
                    parent[v] = u
                    q.append(v)
        if t not in parent:
            return total
        path, v = [], t
        while parent[v] is not None:
            path.append((parent[v], v))
            v = parent[v]
        push = min(res[u][v] for u, v in path)
        for u, v in path:
            res[u][v] -= push
            res[v][u] += push
        total += push


def flow(layers: list[np.ndarray], residual: bool = True, how: str = "mean") -> np.ndarray:
    """Attention flow of one example: ``T^2`` max-flows on the layered graph, rows normalised."""
    mats = [residual_rows(heads(a, how), residual) for a in layers]
    L, T = len(mats), mats[0].shape[0]
    cap: dict[int, dict[int, float]] = {}
    for layer in range(1, L + 1):
        for i in range(T):
            for j in range(T):
                cap.setdefault(layer * T + i, {})[(layer - 1) * T + j] = mats[layer - 1][i, j]
    out = np.array([[max_flow(cap, L * T + i, j) for j in range(T)] for i in range(T)])
    return out / out.sum(axis=1, keepdims=True)
