"""GPT against transformers' GPT2LMHeadModel with the same weights, cached vs uncached paths, left
padding vs unpadded rows, generation options, training, checkpoints and bad input."""

from __future__ import annotations

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import torch.nn.functional as F
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from attnkit.errors import CheckpointError
from attnkit.functional import causal_dropout
from attnkit.kernels import dropout_mask
from attnkit.layers import KVCache
from attnkit.models import hub, hub_names
from attnkit.models.gpt import GPT, GPTConfig, next_token_loss

transformers.logging.set_verbosity_error()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small ops on a shared machine: one thread avoids OpenMP oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
V = 97


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A randomly initialised tiny GPT-2 saved by transformers."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=V, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def hf(hf_dir):
    return transformers.GPT2LMHeadModel.from_pretrained(hf_dir, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def ours(hf_dir):
    return GPT.from_pretrained(hf_dir)


def ids(b, t, seed=1):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def hf_greedy(hf, input_ids, n, **kw):
    return hf.generate(input_ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0, **kw)


# ----------------------------------------------------------------------------- parity


def test_logits_and_loss_match_transformers(ours, hf):
    x = ids(3, 20)
    with torch.no_grad():
        a, b = ours(x, labels=x), hf(x, labels=x)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=1e-5)


def test_hidden_states_and_attentions_match_transformers(ours, hf):
    x = ids(3, 12)  # B=3, T=12, H=4, head width 8, 2 layers
    with torch.no_grad():
        a = ours(x, output_attentions=True, output_hidden_states=True)
        b = hf(x, output_attentions=True, output_hidden_states=True)
    assert len(a.attentions) == len(b.attentions) == 2
    for wa, wb in zip(a.attentions, b.attentions, strict=True):
        assert wa.shape == (3, 4, 12, 12)
        torch.testing.assert_close(wa, wb, atol=1e-5, rtol=1e-5)
    assert len(a.hidden_states) == len(b.hidden_states) == 3
    for ha, hb in zip(a.hidden_states, b.hidden_states, strict=True):
        torch.testing.assert_close(ha, hb, atol=1e-5, rtol=1e-5)


def test_greedy_generation_matches_transformers(ours, hf):
    x = ids(3, 7)
    got = ours.generate(x, max_new_tokens=25)
    assert got.shape == (3, 32)
    assert torch.equal(got, hf_greedy(hf, x, 25))


def test_left_padded_generation_matches_transformers(ours, hf):
    x = ids(2, 9, seed=4)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, :4] = 0
    x = x.masked_fill(mask == 0, 0)
    assert torch.equal(ours.generate(x, 15, attention_mask=mask), hf_greedy(hf, x, 15, attention_mask=mask))


# ----------------------------------------------------------------------------- cache and padding


def test_cached_forward_equals_uncached(ours):
    x = ids(2, 16, seed=5)
    with torch.no_grad():
        full = ours(x).logits  # (B, T, V), no cache
        out = ours(x[:, :5], use_cache=True)
        caches = out.past_key_values
        assert all(isinstance(c, KVCache) and c.length == 5 for c in caches) and len(caches) == 2
        parts = [out.logits]
        cache = out.past_key_values
        for chunk in (x[:, 5:8], *x[:, 8:].split(1, dim=1)):  # a chunk of 3, then one at a time
            out = ours(chunk, past_key_values=cache, use_cache=True)
            parts.append(out.logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    k, v = cache[0]
    assert k.shape == v.shape == (2, 4, 16, 8)


@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, 13), min_size=1, max_size=4, unique=True), pad=st.integers(0, 4))
def test_cached_chunks_equal_uncached_with_left_padding(ours, cuts, pad):
    """Any split of a left-padded sequence into cached chunks gives the uncached logits and weights."""
    x = ids(2, 14, seed=len(cuts) + pad)
    mask = torch.ones(2, 14, dtype=torch.bool)
    mask[1, :pad] = False
    with torch.no_grad():
        full = ours(x, attention_mask=mask, output_attentions=True)
        cache, parts, last = None, [], 0
        for cut in [*sorted(cuts), 14]:
            if cut == last:
                continue
            out = ours(x[:, last:cut], attention_mask=mask[:, :cut], past_key_values=cache, use_cache=True,
                       output_attentions=True)
            assert out.attentions[0].shape == (2, 4, cut - last, cut)  # (B, H, T, S)
            torch.testing.assert_close(out.attentions[1], full.attentions[1][:, :, last:cut, :cut], atol=1e-5, rtol=1e-5)
            cache, last = out.past_key_values, cut
            parts.append(out.logits)
    real = mask[:, :, None].expand_as(full.logits)
    torch.testing.assert_close(torch.cat(parts, 1)[real], full.logits[real], atol=1e-5, rtol=1e-5)


def test_generate_equals_uncached_greedy_loop(ours):
    """The fast cached decoding step against re-running the whole sequence at every step."""
    x = ids(2, 6, seed=6)
    seq = x
    with torch.no_grad():
        for _ in range(12):
            nxt = ours(seq).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(ours.generate(x, 12), seq)


def test_left_padded_batch_equals_unpadded_rows(ours):
    prompts = [ids(1, n, seed=10 + n)[0] for n in (3, 8, 5)]
    width = max(len(p) for p in prompts)
    batch = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros(3, width, dtype=torch.bool)
    for i, p in enumerate(prompts):
        batch[i, width - len(p) :] = p
        mask[i, width - len(p) :] = True
    got = ours.generate(batch, 10, attention_mask=mask)
    for i, p in enumerate(prompts):
        alone = ours.generate(p[None], 10)
        assert torch.equal(got[i, width - len(p) :], alone[0])
    # the padded forward gives the unpadded logits at real positions
    with torch.no_grad():
        padded = ours(batch, attention_mask=mask).logits
        torch.testing.assert_close(padded[0, -3:], ours(prompts[0][None]).logits[0], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- generation options


def test_eos_stops_early_only_when_every_row_finished(ours):
    x = ids(1, 5, seed=7)
    free = ours.generate(x, 12)
    eos = int(free[0, 5 + 3])  # the 4th new token
    first = (free[0, 5:] == eos).nonzero()[0].item()
    got = ours.generate(x, 12, eos_token_id=eos)
    assert torch.equal(got, free[:, : 5 + first + 1])
    # a row that never produces eos keeps the batch going; the finished row is padded with eos
    other = ids(1, 5, seed=8)
    free2 = ours.generate(other, 12)
    assert not (free2[0, 5:] == eos).any(), "the second prompt must never produce eos: pick another seed"
    both = ours.generate(torch.cat([x, other]), 12, eos_token_id=eos)
    assert both.shape == (2, 17)
    assert torch.equal(both[1], free2[0])
    assert (both[0, 5 + first :] == eos).all()
    assert ours.generate(x, 12, eos_token_id=None).shape == (1, 17)


def test_sampling_options(ours):
    x = ids(2, 4, seed=9)
    greedy = ours.generate(x, 8)
    assert torch.equal(ours.generate(x, 0), x)
    assert torch.equal(ours.generate(x, 8, do_sample=True, top_k=1), greedy)
    assert torch.equal(ours.generate(x, 8, do_sample=True, top_p=1e-6), greedy)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = ours.generate(x, 8, do_sample=True, temperature=1.5, generator=g1)
    assert torch.equal(a, ours.generate(x, 8, do_sample=True, temperature=1.5, generator=g2))
    # every sampled first token is among the 3 best of the model's logits
    with torch.no_grad():
        top3 = ours(x).logits[:, -1].topk(3).indices  # (B, 3)
    for seed in range(20):
        tok = ours.generate(x, 1, do_sample=True, top_k=3, generator=torch.Generator().manual_seed(seed))[:, -1]
        assert (top3 == tok[:, None]).any(-1).all()


def test_generate_restores_training_mode(ours):
    ours.train()
    ours.generate(ids(1, 3), 2)
    assert ours.training
    ours.eval()


# ----------------------------------------------------------------------------- training


def test_training_loss_falls():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, n_positions=32, n_embd=32, n_layer=2, n_head=2))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start = torch.randint(0, 12, (20, 1))  # B=20, T=24, D=32, H=2, head width 16
    data = (start + torch.arange(24)) % 12  # counting modulo 12: fully predictable after one token
    losses = []
    for _ in range(40):
        loss = model(data, labels=data).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_training_gradients_match_transformers_without_dropout():
    """The fused next-token loss and its in-place backward give transformers' gradients (dropout off:
    the random masks are the only part the two libraries cannot share)."""
    torch.manual_seed(3)
    kw = dict(vocab_size=V, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
              attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw)).train()
    ours = GPT(GPTConfig(**kw)).train()
    ours.load_hf_tensors(hf.state_dict())
    x = ids(3, 16)
    labels = x.clone()
    labels[0, 5:9] = -100
    a, b = ours(x, labels=labels), hf(x, labels=labels)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=1e-5)
    a.loss.backward()
    b.loss.backward()
    ours_grads, unmatched = hub.convert({k: p.grad for k, p in ours.named_parameters()}, hub_names.GPT_NAMES, to_hf=True)
    assert not unmatched
    hf_grads = dict(hf.named_parameters())
    for name, grad in ours_grads.items():
        torch.testing.assert_close(grad, hf_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_next_token_loss_equals_cross_entropy_on_shifted_copies():
    torch.manual_seed(4)
    logits = torch.randn(3, 6, 11, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 11, (3, 6))
    labels[1, 2] = labels[2, 5] = -100
    ours = next_token_loss(logits, labels)
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(ours, ref)
    g = torch.tensor(2.5, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(ours, logits, g)[0], torch.autograd.grad(ref, logits, g)[0])
    all_ignored = torch.full((2, 3), -100)
    assert torch.isnan(next_token_loss(torch.randn(2, 3, 5), all_ignored))


def test_next_token_loss_errors():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    with pytest.raises(ValueError, match=r"Expected labels in \[0, 5\) \(vocab_size\) or -100. Received: 7"):
        next_token_loss(logits, torch.tensor([[1, 2, 3, 7], [0, 0, 0, 0]]))
    loss = next_token_loss(logits, torch.tensor([[1, 2, 3, 4], [0, 1, 2, 3]]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="does not support a second backward pass"):
        loss.backward()


def test_training_dropout_paths(monkeypatch):
    """Training with dropout is random; with every keep mask forced to ones, the training fast paths
    (block-causal attention, fused loss) give the evaluation logits and loss, so each dropout site
    draws its mask through ``keep_mask`` (of ``attnkit.kernels.dropout_mask`` and of the causal attention kernel)."""
    torch.manual_seed(5)
    model = GPT(GPTConfig(vocab_size=V, n_positions=32, n_embd=32, n_layer=2, n_head=4))
    x = ids(2, 16)
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x).logits, model(x).logits)
        model.eval()
        clean = model(x, labels=x)
        model.train()
        calls = []
        for module in (dropout_mask, causal_dropout):
            monkeypatch.setattr(module, "keep_mask", lambda like, p: calls.append(p) or torch.ones_like(like))
        forced = model(x, labels=x)
    # embeddings + per block (attention weights in one block of 16 queries, two residual branches)
    assert calls == [0.1] * (1 + 2 * 3)
    torch.testing.assert_close(forced.logits, clean.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(forced.loss, clean.loss, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- checkpoints


def test_save_pretrained_loads_in_transformers(tmp_path):
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=V, n_positions=32, n_embd=16, n_layer=2, n_head=2)).eval()
    model.save_pretrained(tmp_path / "ours")
    assert sorted(os.listdir(tmp_path)) == ["ours"]  # no temporary directory left behind
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()
    x = ids(3, 10)  # B=3, T=10, D=16, H=2, head width 8
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(x).logits, atol=1e-5, rtol=1e-5)
    back = GPT.from_pretrained(tmp_path / "ours")
    assert back.config == model.config


@pytest.mark.parametrize("kind", [{"name": "performer", "num_features": 32, "seed": 1},
                                  {"name": "sliding_window", "window": 2, "global_tokens": [0]}])
def test_a_kind_with_its_options_lives_in_the_config_and_rebuilds_from_config_json(tmp_path, kind):
    torch.manual_seed(2)
    config = GPTConfig(vocab_size=V, n_positions=32, n_embd=16, n_layer=2, n_head=2, attn_pdrop=0.0,
                       attention_kind=kind)
    model = GPT(config).eval()
    x = ids(2, 9)
    with torch.no_grad():
        before = model(x).logits
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["attention_kind"] == kind
    back = GPT.from_pretrained(tmp_path)
    assert back.blocks[1].self_attn.kind.options() == model.blocks[1].self_attn.kind.options()
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, before, atol=0, rtol=0)
        other = GPT(GPTConfig(**{**config.__dict__, "attention_kind": "full"}))
        other.load_state_dict(model.state_dict())
        assert not torch.allclose(other.eval()(x).logits, before)  # the kind, not the weights, made the numbers


def test_config_refuses_a_kind_it_cannot_build():
    with pytest.raises(ValueError, match="Expected options of PerformerAttention"):
        GPTConfig(attention_kind={"name": "performer", "features": 32})


def test_gpt2model_checkpoint_without_head_prefix_loads(tmp_path, hf):
    base = transformers.GPT2Model(hf.config)
    base.load_state_dict(hf.transformer.state_dict())
    base.save_pretrained(tmp_path)
    assert not any(k.startswith("transformer.") for k in load_file(tmp_path / "model.safetensors"))
    model = GPT.from_pretrained(tmp_path)
    x = ids(1, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(x).logits, atol=1e-5, rtol=1e-5)


def test_tokenizer_json_is_loaded_and_copied(tmp_path, hf_dir):
    from tokenizers import Tokenizer, models

    src = tmp_path / "src"
    src.mkdir()
    for f in os.listdir(hf_dir):
        (src / f).write_bytes((hf_dir / f).read_bytes())
    Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a")).save(str(src / "tokenizer.json"))
    model = GPT.from_pretrained(src)
    assert model.tokenizer.encode("b") == [1]
    model.save_pretrained(tmp_path / "out")
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()


def _copy_dir(src, dst, tensors=None, config_edit=None):
    dst.mkdir()
    for f in os.listdir(src):
        (dst / f).write_bytes((src / f).read_bytes())
    if tensors is not None:
        save_file(tensors, str(dst / "model.safetensors"))
    if config_edit is not None:
        config = json.loads((dst / "config.json").read_text())
        config.update(config_edit)
        (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_missing_and_unexpected_tensors_are_listed(tmp_path, hf_dir):
    tensors = load_file(hf_dir / "model.safetensors")
    del tensors["transformer.h.1.mlp.c_fc.weight"]
    tensors["transformer.h.0.attn.extra"] = torch.zeros(3)
    bad = _copy_dir(hf_dir, tmp_path / "bad", tensors=tensors)
    with pytest.raises(CheckpointError, match=r"missing tensors \[transformer\.h\.1\.mlp\.c_fc\.weight\]") as e:
        GPT.from_pretrained(bad)
    assert "unexpected tensors [transformer.h.0.attn.extra]" in str(e.value)


def test_config_that_does_not_match_weights(tmp_path, hf_dir):
    bad = _copy_dir(hf_dir, tmp_path / "bad", config_edit={"n_positions": 128})
    with pytest.raises(CheckpointError, match=r"transformer\.wpe\.weight: checkpoint \(64, 32\), config implies \(128, 32\)"):
        GPT.from_pretrained(bad)
    fewer = _copy_dir(hf_dir, tmp_path / "fewer", config_edit={"n_layer": 1})
    with pytest.raises(CheckpointError, match=r"unexpected tensors \[transformer\.h\.1\."):
        GPT.from_pretrained(fewer)


def test_unsupported_model_type_and_options(tmp_path, hf_dir):
    bad = _copy_dir(hf_dir, tmp_path / "llama", config_edit={"model_type": "llama"})
    with pytest.raises(CheckpointError, match=r"unsupported model_type for GPT. Expected one of \['gpt2'\]. Received: 'llama'"):
        GPT.from_pretrained(bad)
    cross = _copy_dir(hf_dir, tmp_path / "cross", config_edit={"add_cross_attention": True})
    with pytest.raises(CheckpointError, match="add_cross_attention"):
        GPT.from_pretrained(cross)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(CheckpointError, match="is not a directory"):
        GPT.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="never pickle"):
        GPT.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_ids(ours):
    with pytest.raises(ValueError, match=r"Expected `input_ids` token ids in \[0, 97\) \(vocab_size\). Received: ids in \[0, 97\]"):
        ours(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match=r"Expected `input_ids` token ids in \[0, 97\)"):
        ours.generate(torch.tensor([[-1, 3]]), 2)
    with pytest.raises(TypeError, match="Expected `input_ids` of an integer dtype. Received: torch.float32"):
        ours(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"Expected `input_ids` of shape \(B, T\). Received: shape \(3,\)"):
        ours(torch.tensor([1, 2, 3]))


def test_too_long_sequences(ours):
    with pytest.raises(ValueError, match="Expected at most n_positions=64 positions. Received: 0 cached \\+ 65 new = 65"):
        ours(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected prompt \+ new tokens <= n_positions=64. Received: 60 \+ 5 = 65"):
        ours.generate(torch.zeros(1, 60, dtype=torch.long), 5)


def test_bad_generate_arguments(ours):
    x = ids(1, 3)
    with pytest.raises(ValueError, match="Expected max_new_tokens an int >= 0. Received: -1"):
        ours.generate(x, -1)
    with pytest.raises(ValueError, match="Expected temperature > 0. Received: 0"):
        ours.generate(x, 2, do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="Expected top_p in"):
        ours.generate(x, 2, do_sample=True, top_p=1.5)
    with pytest.raises(ValueError, match="Expected top_k an int >= 1"):
        ours.generate(x, 2, do_sample=True, top_k=0)
    with pytest.raises(ValueError, match=r"Expected `attention_mask` of shape \(1, 3\). Received: \(1, 4\)"):
        ours.generate(x, 2, attention_mask=torch.ones(1, 4))


def test_bad_config():
    with pytest.raises(ValueError, match="Expected n_embd divisible by n_head. Received: n_embd=30, n_head=4"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="Expected activation_function in"):
        GPTConfig(activation_function="swiglu")


def test_attnkit_save_and_load(tmp_path, ours):
    import attnkit

    ours.save(tmp_path / "kit")
    again = attnkit.load(tmp_path / "kit")
    assert isinstance(again, GPT) and again.config == ours.config
    x = ids(1, 5)
    with torch.no_grad():
        assert torch.equal(again(x).logits, ours(x).logits)
