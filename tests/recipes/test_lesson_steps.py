"""``attnkit lesson steps``: each drawn step against its definition, in float64."""

from __future__ import annotations

import torch

from attnkit.recipes.lesson_model import check_bahdanau
from attnkit.recipes.lesson_model import example_model as tiny_bahdanau
from attnkit.recipes.lesson_steps import attention_steps, default_step, steps_panels, visible


def test_the_four_steps_follow_their_definitions():
    model = tiny_bahdanau()
    r = attention_steps(model, "4 de marzo")
    h, s = r["h"].double(), r["s_prev"].double()  # (S, D), (T, D)
    score = model.attn.score
    w_q, w_k, w_v = (p.detach().double() for p in (score.w_q.weight, score.w_k.weight, score.w_v))
    e = torch.tensor([[float(w_v @ torch.tanh(w_q @ s[i] + w_k @ h[j])) for j in range(len(h))]
                      for i in range(len(s))], dtype=torch.float64)  # e_ij = w_v^T tanh(W_q s_(i-1) + W_k h_j)
    torch.testing.assert_close(r["e"].double(), e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(r["a"].double(), torch.softmax(e, dim=-1), atol=1e-5, rtol=1e-5)
    c = torch.stack([sum(r["a"][i, j].double() * h[j] for j in range(len(h))) for i in range(len(s))])
    torch.testing.assert_close(r["c"].double(), c, atol=1e-5, rtol=1e-5)  # c_i = sum_j a_ij h_j
    src, lengths, _, _ = model.encode_texts(["4 de marzo"])
    torch.testing.assert_close(r["h"], model.encode(src, lengths)["keys"][0])  # the encoder's annotations
    assert len(r["source"]) == len(h) == 12 and len(r["output"]) == len(s) and " " not in r["source"]


def test_the_drawn_step_mixes_several_inputs_and_the_panels_name_it():
    r = attention_steps(tiny_bahdanau(1), "4 de marzo")
    i = default_step(r)
    peaks = r["a"][:-1].max(dim=1).values
    assert min(range(len(peaks)), key=lambda k: abs(float(peaks[k]) - 0.6)) == i  # the peak nearest 0.6
    panels = steps_panels(r, i)
    assert len(panels) == 6 and f"output step i = {i + 1}" in panels[1].title
    torch.testing.assert_close(torch.as_tensor(panels[3].values[-1]), r["c"][i])  # the last row drawn is c_i


def test_visible_and_a_model_without_bahdanau_is_refused():
    assert visible(["a", " ", ""]) == ["a", "␣", ""]
    import pytest

    from attnkit.errors import InputError

    with pytest.raises(InputError, match="Expected a model with Bahdanau attention"):
        check_bahdanau(tiny_bahdanau(attention="luong-dot"), "run")
