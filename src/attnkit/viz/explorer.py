"""The self-contained HTML explorer: one file, every script, style and weight inlined, no network, no Jupyter.

It offers bertviz's head view (click or hover a token to see its attention to the others, choose the layer
and a head or the mean of the heads) and model view (a thumbnail grid of layers x heads), plus rollout, flow
and gradient-weighted views, the encoder-decoder alignment, image regions for the captioner and the word
weights of the classifier. Long inputs stay usable: the token lists page (``PAGE`` tokens a page) and the
grid can be filtered to some layers and heads.

Only what is shown is stored, rounded: each matrix keeps, per row, the weights that round to at least 0.01
(two decimals, the precision the page prints), at most ``top_k`` of them (the largest); thumbnails are
max-pooled to at most ``THUMB`` x ``THUMB`` cells of one byte. Gradient-weighted maps are divided by their
largest value (the page says so). A 512-token MiniLM input (6 layers x 12 heads) gives a few megabytes.

Shape legend: L layers, H heads, T tokens (Tq rows, Tk columns), R image regions.

Example:
    >>> import tempfile, torch
    >>> from attnkit.viz.record import AttentionRecord
    >>> rec = AttentionRecord("bert", list("abcd"), tuple(torch.softmax(torch.randn(2, 4, 4), -1) for _ in range(3)))
    >>> path = write_explorer(rec, f"{tempfile.mkdtemp()}/x.html", methods=("raw", "rollout"))
    >>> text = path.read_text()
    >>> "<script src" in text, "http://" in text or "https://" in text
    (False, False)
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from attnkit.storage.files import atomic_write_text
from attnkit.viz.methods import grad_maps, method_matrix
from attnkit.viz.record import AttentionRecord

DIGITS = 2
"""Weights are stored and shown with this many decimals."""
PAGE = 128
"""Tokens per page of the token lists."""
THUMB = 32
"""Thumbnails are at most this many cells a side."""
AUTO_TOP_K = 32
"""Inputs over ``PAGE`` tokens keep at most this many weights per row unless ``top_k`` is given."""


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def quantize(m: Any) -> np.ndarray:
    """``(Tq, Tk)`` weights as the integers the page shows: ``round(w * 100)`` clipped to ``[0, 255]`` (uint8)."""
    m = np.asarray(m.detach().cpu().double() if hasattr(m, "detach") else m, dtype=np.float64)
    return np.clip(np.rint(m * 10 ** DIGITS), 0, 255).astype(np.uint8)


def encode_matrix(m: Any, top_k: int | None = None) -> dict[str, Any]:
    """A sparse row-wise encoding of ``m (Tq, Tk)``: per row the entries with ``quantize(m) >= 1``, at most
    ``top_k`` largest, as base64 of little-endian arrays ``n`` (uint16, entries per row), ``c`` (uint16
    columns, row after row, in column order) and ``v`` (uint8, ``round(100 w)``).

    Example:
        >>> e = encode_matrix([[0.004, 0.996], [0.5, 0.5]])
        >>> e["tq"], e["tk"], np.frombuffer(base64.b64decode(e["v"]), np.uint8).tolist()
        (2, 2, [100, 50, 50])
    """
    q = quantize(m)
    if q.ndim != 2:
        raise ValueError(f"Expected a (Tq, Tk) matrix. Received shape: {q.shape}")
    tq, tk = q.shape
    keep = q >= 1
    if top_k is not None and top_k < tk:
        order = np.argsort(-q.astype(np.int16), axis=1, kind="stable")  # largest first; ties in column order
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(tk), (tq, tk)).copy(), axis=1)
        keep &= rank < top_k
    rows, cols = np.nonzero(keep)  # row-major: rows ascending, columns ascending within a row
    return {"tq": int(tq), "tk": int(tk), "n": _b64(keep.sum(1).astype("<u2")), "c": _b64(cols.astype("<u2")),
            "v": _b64(q[rows, cols])}


def thumbnail(m: Any) -> dict[str, Any]:
    """``m (Tq, Tk)`` max-pooled to at most ``THUMB x THUMB`` cells, each ``round(255 * min(w, 1))`` (uint8)."""
    a = np.asarray(m.detach().cpu().double() if hasattr(m, "detach") else m, dtype=np.float64)
    tq, tk = a.shape
    rq, rk = -(-tq // THUMB), -(-tk // THUMB)
    pad = np.zeros((-(-tq // rq) * rq, -(-tk // rk) * rk))
    pad[:tq, :tk] = a
    pooled = pad.reshape(pad.shape[0] // rq, rq, pad.shape[1] // rk, rk).max(axis=(1, 3))
    return {"h": int(pooled.shape[0]), "w": int(pooled.shape[1]),
            "v": _b64(np.rint(255 * np.clip(pooled, 0, 1)).astype(np.uint8))}


def _view(matrices: dict[str, Any], rows: str, cols: str, top_k: int | None, thumbs: bool = False,
          **extra: Any) -> dict[str, Any]:
    view = {"rows": rows, "cols": cols, "matrices": {k: encode_matrix(m, top_k) for k, m in matrices.items()},
            **extra}
    if thumbs:
        view["thumbs"] = {k: thumbnail(m) for k, m in matrices.items()}
    return view


def _layer_views(rec: AttentionRecord, methods: Sequence[str], layers: list[int], heads: list[int],
                 top_k: int | None) -> dict[str, Any]:
    views: dict[str, Any] = {}
    if "raw" in methods:
        mats = {}
        for layer in layers:
            a = rec.attentions[layer]  # (H, T, T)
            mats.update({f"{layer},{h}": a[h] for h in heads})
            mats[f"{layer},mean"] = a.double().mean(0)
        views["raw"] = _view(mats, "tokens", "tokens", top_k, thumbs=True)
    for method in ("rollout", "flow"):
        if method in methods:
            views[method] = _view({"": method_matrix(rec, method)}, "tokens", "tokens", top_k)
    if "grad" in methods:
        g = grad_maps(rec)  # (L, T, T)
        mats = {f"{layer}": g[layer] / max(float(g[layer].max()), 1e-30) for layer in layers}
        views["grad"] = _view(mats, "tokens", "tokens", top_k, thumbs=True, relative=True)
    return views


def explorer_data(rec: AttentionRecord, methods: Sequence[str] = ("raw", "rollout"), layers: Sequence[int] | None = None,
                  heads: Sequence[int] | None = None, top_k: int | None = None, title: str | None = None,
                  initial: str | None = None) -> dict:
    """The JSON the page reads: tokens, the views of ``methods`` and what the model produced.

    Args:
        rec: the record (``attnkit.recipes.records.record_for``).
        methods: among ``raw``, ``rollout``, ``flow``, ``grad`` (those needing layers are skipped without them).
        layers, heads: indices stored for the raw and grad views (default all).
        top_k: weights kept per row (default: all that round to >= 0.01 up to ``PAGE`` tokens, else ``AUTO_TOP_K``).
        initial: the view the page opens on (``attnkit viz --method``; default the first of ``methods``).
    """
    layers = list(range(rec.num_layers)) if layers is None else list(layers)
    heads = list(range(rec.num_heads)) if heads is None else list(heads)
    if top_k is None and len(rec.tokens) > PAGE:
        top_k = AUTO_TOP_K
    views = _layer_views(rec, methods, layers, heads, top_k) if rec.has_layers else {}
    if rec.alignment is not None:
        views["alignment"] = _view({"": rec.alignment}, "out_tokens", "tokens", top_k)
    if rec.word_weights is not None:
        views["words"] = _view({"": rec.word_weights.reshape(1, -1)}, "weights", "tokens", top_k)
    if rec.image_attention is not None:
        views["regions"] = _view({"": rec.image_attention}, "out_tokens", "regions", None,
                                 grid=list(rec.region_grid), image=_png_data_url(rec.image))
    gw = rec.region_grid[1] if rec.region_grid else 1
    return {"title": title or f"attnkit · {rec.model_type}", "model_type": rec.model_type, "output": rec.output,
            "notes": rec.notes, "tokens": rec.tokens, "out_tokens": rec.out_tokens, "weights": ["weight"],
            "model": f"{rec.model_name} ({rec.model_type})" if rec.model_name else rec.model_type,
            "input": rec.text or " ".join(rec.tokens if not rec.region_grid else []),
            "initial": initial if initial in views else next(iter(views), None),
            "regions": [f"row {i // gw}, col {i % gw}" for i in range(len(rec.tokens))] if rec.region_grid else [],
            "layers": layers, "heads": heads, "digits": DIGITS, "top_k": top_k, "page": PAGE, "views": views}


def _png_data_url(image: Any) -> str | None:
    if image is None:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _asset(name: str) -> str:
    return resources.files("attnkit.viz").joinpath("assets", name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: every ``<``, ``>`` and ``&``
    (so ``</script>``, ``<!--`` and ``]]>`` in a token or a translation cannot end or bend the element) and the
    line separators U+2028/2029 are written as ``\\uXXXX`` escapes, which JSON.parse reads back unchanged.

    Example:
        >>> data = {"t": "</script><!-- ]]> & 'q'"}
        >>> text = script_json(data)
        >>> "<" in text or ">" in text or "&" in text, json.loads(text) == data
        (False, True)
    """
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


_SLOT = re.compile(r"\{\{(TITLE|STYLE|DATA|SCRIPT)\}\}")


def explorer_html(data: dict) -> str:
    """The page: the template with the style, the script and ``data`` (JSON) inlined, each escaped for where
    it goes (the title as HTML text, the data as script-safe JSON) and filled in one pass, so text inside the
    data that looks like a slot stays text."""
    slots = {"TITLE": html.escape(data["title"], quote=True), "STYLE": _asset("explorer.css"),
             "DATA": script_json(data), "SCRIPT": _asset("explorer.js")}
    return _SLOT.sub(lambda m: slots[m.group(1)], _asset("explorer.html"))


def write_explorer(rec: AttentionRecord, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write the explorer of ``rec`` to ``path`` atomically; ``kwargs`` go to :func:`explorer_data`."""
    path = Path(path)
    text = explorer_html(explorer_data(rec, **kwargs))  # everything computed before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


__all__ = ["DIGITS", "PAGE", "encode_matrix", "explorer_data", "explorer_html", "quantize", "script_json", "thumbnail",
           "write_explorer"]
