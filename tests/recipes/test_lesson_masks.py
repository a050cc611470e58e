"""``attnkit lesson masks``: teacher forcing's shift, the masks, and the attentions they allow."""

from __future__ import annotations

import torch

from attnkit.recipes.lesson_masks import PAIRS, masks_lesson, masks_panels, teacher_forcing_batch


def test_teacher_forcing_shifts_the_target_right():
    b = teacher_forcing_batch()
    names = {i: w for w, i in b["tgt_vocab"].items()}
    assert [names[int(i)] for i in b["tgt_in"][0] if i] == ["<sos>", "I", "like", "nachos"]
    assert [names[int(i)] for i in b["tgt_out"][0] if i] == ["I", "like", "nachos", "<eos>"]
    for row, (_, y) in enumerate(PAIRS):
        n = len(y.split())
        assert torch.equal(b["tgt_in"][row, 1:n + 1], b["tgt_out"][row, :n])  # input t+1 = target t
    assert b["src_lengths"].tolist() == [len(x.split()) + 2 for x, _ in PAIRS]


def test_masks_and_the_attentions_they_allow():
    r = masks_lesson(steps=3)
    b = r["batch"]
    s, t = b["src"].shape[1], b["tgt_in"].shape[1]
    want_pad = torch.tensor([[j < n for j in range(s)] for n in b["src_lengths"].tolist()])
    assert torch.equal(r["padding"], want_pad)
    assert torch.equal(r["causal"], torch.tensor([[k <= q for k in range(t)] for q in range(t)]))
    n = int(b["src_lengths"][0])
    assert n < s  # the course's pair is padded in this batch
    assert float(r["cross"][..., n:].abs().max()) == 0.0 and float(r["encoder"][..., n:].abs().max()) == 0.0
    assert float(torch.triu(r["decoder"], diagonal=1).abs().max()) == 0.0  # nothing above the diagonal
    torch.testing.assert_close(r["cross"].sum(-1), torch.ones_like(r["cross"].sum(-1)))
    assert len(masks_panels(r)) == 6 and r["greedy"][-1] in ("<eos>",) + tuple(b["tgt_vocab"])
