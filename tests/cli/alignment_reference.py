"""AER per link rule recomputed from a model's teacher-forced weights by plain loops (for the CLI tests)."""

from __future__ import annotations

import torch

from attnkit.data import gold_alignment
from attnkit.data.batches import collate
from attnkit.metrics import alignment_error_rate
from attnkit.models import Transformer


def reference_aer(model, pairs, task: str) -> dict[str, float]:
    """AER per rule recomputed here: teacher-forced weights, links by plain loops, the task's gold links."""
    src_tok, tgt_tok = model.tokenizers["source"], model.tokenizers["target"]
    batch = collate(src_tok.encode_batch([s for s, _ in pairs]), tgt_tok.encode_batch([t for _, t in pairs]))
    model.eval()
    with torch.no_grad():
        kwargs = {"output_attentions": True} if isinstance(model, Transformer) else {}
        weights = model(batch.src, batch.src_lengths, batch.tgt_in, **kwargs).alignments.double()  # (B, T, S)
    size = (lambda text: len(text.split())) if task == "phrases" else len  # gold units: words or characters
    t_max, s_max = max(size(t) for _, t in pairs), max(size(s) for s, _ in pairs)
    shape = (len(pairs), t_max, s_max)
    sure, possible = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    found = {name: torch.zeros(shape, dtype=torch.bool) for name in ("argmax", "shifted", "threshold")}
    for i, (s, t) in enumerate(pairs):
        ns, nt = size(s), size(t)
        sure[i, :nt, :ns], possible[i, :nt, :ns] = gold_alignment(task, s, t)
        for row in range(nt):  # model row `row` emits target char `row`; column j + 1 is source char j
            for name, r in (("argmax", row), ("shifted", row + 1)):
                w = weights[i, r, : ns + 2].tolist()
                j = w.index(max(w))
                if 1 <= j <= ns and w[j] > 0:
                    found[name][i, row, j - 1] = True
            for j in range(ns):
                found["threshold"][i, row, j] = weights[i, row, j + 1].item() >= 0.3
    return {rule: alignment_error_rate(found[name], sure, possible) for rule, name in
            (("argmax", "argmax"), ("argmax, shifted one step", "shifted"), ("weights >= 0.3", "threshold"))}
