"""Hugging Face directory I/O: reading, atomic writing, name tables, checkpoint matching."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from attnkit.errors import CheckpointError, InputError
from attnkit.models import hub, hub_names

TABLE: hub.NameTable = [
    ("blocks.{i}.attn.qkv.weight", "h.{i}.attn.c_attn.weight", True),
    ("ln_f.weight", "ln_f.weight", False),
]


def test_rename_and_convert_both_ways():
    assert hub.rename("blocks.12.attn.qkv.weight", TABLE, to_hf=True) == ("h.12.attn.c_attn.weight", True)
    assert hub.rename("h.3.attn.c_attn.weight", TABLE, to_hf=False) == ("blocks.3.attn.qkv.weight", True)
    assert hub.rename("blocks.x.attn.qkv.weight", TABLE, to_hf=True) is None
    w = torch.arange(6.0).view(2, 3)
    out, unmatched = hub.convert({"blocks.0.attn.qkv.weight": w, "other": w}, TABLE, to_hf=True)
    assert unmatched == ["other"]
    assert torch.equal(out["h.0.attn.c_attn.weight"], w.t())  # Conv1D layout (in, out)
    back, _ = hub.convert(out, TABLE, to_hf=False)
    assert torch.equal(back["blocks.0.attn.qkv.weight"], w)


def test_adapt_prefix_adds_and_strips_the_backbone_prefix():
    t = torch.zeros(1)
    expected = ["bert.embeddings.x", "bert.encoder.y", "classifier.weight"]
    assert set(hub.adapt_prefix({"embeddings.x": t, "encoder.y": t, "cls.z": t}, expected, "bert.")) == {
        "bert.embeddings.x", "bert.encoder.y", "cls.z"
    }
    assert set(hub.adapt_prefix({"bert.embeddings.x": t, "cls.z": t}, ["embeddings.x"], "bert.")) == {
        "embeddings.x", "cls.z"
    }
    same = {"bert.embeddings.x": t}
    assert hub.adapt_prefix(same, expected, "bert.") is same


def test_match_checkpoint_lists_every_problem():
    expected = {"a": (2,), "b": (3,), "head.w": (4,)}
    found = {"a": torch.zeros(5), "extra": torch.zeros(1), "buffer": torch.zeros(1)}
    with pytest.raises(CheckpointError) as e:
        hub.match_checkpoint(expected, found, optional=lambda k: k.startswith("head."),
                             ignorable=lambda k: k == "buffer", where="dir", hint=" (hint)")
    msg = str(e.value)
    assert msg.startswith("dir: checkpoint does not match the model: ")
    assert "missing tensors [b]" in msg and "head.w" not in msg
    assert "unexpected tensors [extra]" in msg and "buffer" not in msg
    assert "a: checkpoint (5,), config implies (2,)" in msg and msg.endswith("(hint)")
    ok = {"a": torch.zeros(2), "b": torch.zeros(3), "buffer": torch.zeros(1)}
    assert hub.match_checkpoint(expected, ok, optional=lambda k: k.startswith("head."),
                                ignorable=lambda k: k == "buffer", where="dir") == ["head.w"]


def test_long_lists_are_cut():
    expected = {f"t{i:02d}": (1,) for i in range(30)}
    with pytest.raises(CheckpointError, match=r"\.\.\. \(18 more\)"):
        hub.match_checkpoint(expected, {}, optional=lambda k: False, ignorable=lambda k: False, where="d")


def _tiny_gpt():
    from attnkit.models.gpt import GPT, GPTConfig

    return GPT(GPTConfig(vocab_size=11, n_positions=8, n_embd=6, n_layer=1, n_head=2))


def test_save_pretrained_new_and_existing(tmp_path):
    model = _tiny_gpt()
    out = model.save_pretrained(tmp_path / "m")
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    assert hub.read_config(out)["model_type"] == "gpt2" and hub.read_config(out)["architectures"] == ["GPT2LMHeadModel"]
    weights = hub.read_weights(out)
    assert torch.equal(weights["transformer.h.0.attn.c_attn.weight"], model.blocks[0].self_attn.in_proj_weight.T)
    (out / "notes.txt").write_text("mine")
    model.save_pretrained(out)
    assert (out / "notes.txt").read_text() == "mine"  # other files are left alone
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary directory left


def test_save_pretrained_failure_leaves_nothing(tmp_path, monkeypatch):
    model = _tiny_gpt()
    monkeypatch.setattr(type(model), "hf_tensors", lambda self: {"w": "not a tensor"})
    with pytest.raises(AttributeError):  # "not a tensor" has no .detach()
        model.save_pretrained(tmp_path / "m")
    assert os.listdir(tmp_path) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="Expected a directory path. Received: .* is a file"):
        model.save_pretrained(tmp_path / "file")


def test_read_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        hub.read_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        hub.read_config(tmp_path)
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(CheckpointError, match="must hold a JSON object. Received: a JSON list"):
        hub.read_config(tmp_path)
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        hub.read_weights(tmp_path)
    assert issubclass(CheckpointError, InputError)
    with pytest.raises(CheckpointError, match=r"unsupported model_type for GPT. Expected one of \['gpt2'\]. Received: None"):
        hub.check_model_type({}, ("gpt2",), "GPT", tmp_path)


def test_sharded_weights(tmp_path):
    save_file({"a": torch.ones(2)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(3)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    got = hub.read_weights(tmp_path)
    assert torch.equal(got["a"], torch.ones(2)) and torch.equal(got["b"], torch.zeros(3))


def test_tokenizer_files(tmp_path):
    from tokenizers import Tokenizer, models

    from attnkit.data.tokenize import Tokenizer as KitTokenizer

    assert hub.read_tokenizer_files(tmp_path) == {}
    Tokenizer(models.WordLevel({"x": 0, "y": 1}, unk_token="x")).save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "vocab.txt").write_text("x\ny\n")
    files = hub.read_tokenizer_files(tmp_path)
    assert sorted(files) == ["tokenizer.json", "vocab.txt"]
    assert KitTokenizer.from_bytes(files["tokenizer.json"]).encode("y") == [1]


def test_qkv_split_and_fuse_are_inverse():
    w, b = torch.arange(12.0).view(6, 2), torch.arange(6.0)  # (3D, D) with D=2: rows [W_q; W_k; W_v], 2 each
    state = {"layers.0.self_attn.in_proj_weight": w, "layers.0.self_attn.in_proj_bias": b, "other": b}
    split = hub_names.split_qkv(state)
    assert torch.equal(split["layers.0.self_attn.k.weight"], w[2:4])
    assert torch.equal(split["layers.0.self_attn.v.bias"], b[4:])
    hf, unmatched = hub.convert(split, hub_names.BERT_NAMES, to_hf=True)
    assert unmatched == ["other"] and torch.equal(hf["encoder.layer.0.attention.self.value.weight"], w[4:])
    fused = hub_names.fuse_qkv(split)
    assert torch.equal(fused["layers.0.self_attn.in_proj_weight"], w)
    assert torch.equal(fused["layers.0.self_attn.in_proj_bias"], b)


def test_name_tables_are_one_to_one():
    for table in (hub_names.GPT_NAMES, hub_names.BERT_NAMES):
        assert len({row[0] for row in table}) == len({row[1] for row in table}) == len(table)


def test_hf_config_claiming_a_huge_vocabulary_is_refused_before_allocating(tmp_path):
    import json

    from attnkit.errors import CheckpointError
    from attnkit.models import GPT, GPTConfig

    GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 10**6  # 8e6 parameters for a file of a few KB (10**10, over the size limit, is refused earlier)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match the weights"):
        GPT.from_pretrained(tmp_path)
