"""``GPT.generate`` with the arguments ``transformers`` users bring: ``max_length`` (prompt included) against
transformers' greedy search, ``num_beams`` against a naive float64 beam search, ``pad_token_id``, and
``max_new_tokens`` taking precedence over ``max_length`` as in transformers."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import transformers

from attnkit.models.gpt import GPT

transformers.logging.set_verbosity_error()
V = 53


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=V, n_positions=40, n_embd=24, n_layer=2, n_head=3,
                                     bos_token_id=0, eos_token_id=0)
    path = tmp_path_factory.mktemp("gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager").eval()
    return GPT.from_pretrained(path), hf


def _ids(b, t, seed):
    return torch.randint(1, V, (b, t), generator=torch.Generator().manual_seed(seed))


def _naive_beam(model, prompt, new, k, eos=None, length_penalty=1.0):
    """Textbook beam search in float64 with full forwards (no cache): keep the k best live hypotheses; one
    ending in eos (or reaching ``new`` tokens) is finished and ranked by log p / length ** length_penalty."""
    model = model.double()
    live, done = [(0.0, [])], []
    for t in range(new):
        cands = []
        for score, seq in live:
            with torch.no_grad():
                lp = model(torch.tensor([prompt + seq])).logits[0, -1].log_softmax(-1)  # (V,)
            cands += [(score + float(lp[i]), seq + [i]) for i in range(V)]
        cands.sort(key=lambda c: -c[0])
        live = []
        for score, seq in cands[: 2 * k]:
            if (eos is not None and seq[-1] == eos) or t == new - 1:
                done.append((score / len(seq) ** length_penalty, seq))
            elif len(live) < k:
                live.append((score, seq))
        if len(done) >= k and max(s for s, _ in done) >= max((s / new ** length_penalty for s, _ in live),
                                                              default=float("-inf")):
            break
    model.float()
    return max(done, key=lambda d: d[0])[1]


def test_max_length_counts_the_prompt_like_transformers(pair):
    ours, hf = pair
    x = _ids(3, 6, seed=1)
    want = hf.generate(x, max_length=17, min_length=17, do_sample=False, pad_token_id=0)  # 11 new tokens
    got = ours.generate(x, max_length=17)
    assert got.shape == (3, 17) and torch.equal(got, want)
    assert torch.equal(ours.generate(x, max_new_tokens=11), want)


def test_max_new_tokens_takes_precedence_with_a_warning(pair):
    ours, hf = pair
    x = _ids(2, 5, seed=2)
    want = hf.generate(x, max_new_tokens=4, max_length=30, min_new_tokens=4, do_sample=False, pad_token_id=0)
    with pytest.warns(UserWarning, match=r"max_new_tokens \(=4\) and max_length \(=30\).*max_new_tokens takes"):
        got = ours.generate(x, max_new_tokens=4, max_length=30)
    assert want.shape == got.shape == (2, 9) and torch.equal(got, want)


@pytest.mark.parametrize(("k", "eos", "length_penalty"), [(2, None, 1.0), (3, None, 1.0), (3, 7, 1.0), (4, 7, 0.0)])
def test_num_beams_matches_a_naive_float64_beam_search(pair, k, eos, length_penalty):
    ours, _ = pair
    x = _ids(2, 4, seed=3)
    got = ours.generate(x, max_length=12, num_beams=k, eos_token_id=eos, pad_token_id=V - 1,
                        length_penalty=length_penalty)
    for row, out in zip(x.tolist(), got.tolist(), strict=True):
        best = _naive_beam(ours, row, 8, k, eos, length_penalty)
        assert out[:4] == row and out[4:4 + len(best)] == best
        assert out[4 + len(best):] == [V - 1] * (8 - len(best))  # pad_token_id fills after eos


def test_pad_token_id_fills_rows_after_eos(pair):
    ours, _ = pair
    x = _ids(3, 5, seed=4)
    free = ours.generate(x, max_new_tokens=8)
    eos = free[0, 7].item()  # row 0 produces this token at its 3rd new position
    got = ours.generate(x, max_new_tokens=8, eos_token_id=eos, pad_token_id=V - 2)
    first = (got[0, 5:] == eos).nonzero()[0, 0].item()
    assert (got[0, 5 + first + 1:] == V - 2).all() and first <= 2


def test_length_argument_errors(pair):
    ours, _ = pair
    x = _ids(1, 6, seed=5)
    with pytest.raises(ValueError, match=r"Expected max_length an int >= the prompt length 6.*Received: max_length=5"):
        ours.generate(x, max_length=5)
    with pytest.raises(ValueError, match="Expected max_new_tokens .* or max_length .*Received: neither"):
        ours.generate(x)
    with pytest.raises(ValueError, match=r"Expected num_beams=1 with do_sample=True.*Received: num_beams=2"):
        ours.generate(x, max_new_tokens=2, num_beams=2, do_sample=True)
    with pytest.raises(ValueError, match="Expected num_beams an int >= 1. Received: 0"):
        ours.generate(x, max_new_tokens=2, num_beams=0)
