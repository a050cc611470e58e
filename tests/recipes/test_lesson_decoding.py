"""``attnkit lesson decoding``: the step-by-step log-probabilities against one teacher-forced pass, in float64."""

from __future__ import annotations

import torch

from attnkit.recipes.lesson_decoding import decoding_lesson, decoding_panels
from attnkit.recipes.lesson_model import example_model as tiny_bahdanau


def test_joint_probability_is_the_sum_of_the_teacher_forced_log_probabilities():
    model = tiny_bahdanau(2)
    r = decoding_lesson(model, "4 de marzo", beam_size=3)
    src, lengths, _, _ = model.encode_texts(["4 de marzo"])
    for name in ("greedy", "beam"):
        ids = r[name]["ids"]
        tgt_in = torch.tensor([[model.config.sos_id, *ids[:-1]]])
        with torch.no_grad():
            log_p = torch.log_softmax(model(src, lengths, tgt_in).logits[0].double(), dim=-1)  # (T, V)
        want = log_p[torch.arange(len(ids)), torch.tensor(ids)]
        torch.testing.assert_close(r[name]["chosen"].double(), want, atol=1e-5, rtol=1e-5)
    greedy = r["greedy"]
    assert greedy["ids"] == greedy["log_probs"].argmax(-1).tolist()  # greedy: the best token at every step
    assert float(r["beam"]["chosen"].sum()) >= float(greedy["chosen"].sum()) - 1e-5  # beam finds one as likely
    torch.testing.assert_close(greedy["log_probs"].exp().sum(-1), torch.ones(len(greedy["ids"])))
    panels = decoding_panels(r)
    assert len(panels) == 4 and panels[0].values.shape == (len(greedy["ids"]), model.config.tgt_vocab_size)
