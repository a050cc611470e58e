"""KitModel save/load and attnkit.load: round trips, tied weights, lazy imports, and every load error."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file, save_file

import attnkit.io
from attnkit.errors import CheckpointError
from attnkit.models.base import KitModel
from attnkit.storage import config_from_dict
from tests.training.tiny import TinyConfig, TinyModel, tiny_model


def _equal_states(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_round_trip_weights_config_and_eval_mode(tmp_path):
    model = tiny_model(width=6, sizes=(5, 9), extra={"a": 1})
    model.train()
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model_type"] == "tiny-test" and meta["config"]["width"] == 6 and "attnkit_version" in meta
    for loader in (attnkit.io.load, TinyModel.load, KitModel.load):
        loaded = loader(tmp_path / "m")
        assert type(loaded) is TinyModel and not loaded.training
        assert loaded.config == TinyConfig(width=6, sizes=(5, 9), extra={"a": 1})  # tuple restored
        _equal_states(model.state_dict(), loaded.state_dict())


def test_tied_weights_written_once_and_still_tied(tmp_path):
    model = tiny_model()
    model.save(tmp_path / "m")
    stored = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert ("embed.weight" in stored) != ("out.weight" in stored)  # exactly one copy of the shared matrix
    loaded = attnkit.io.load(tmp_path / "m")
    assert loaded.out.weight is loaded.embed.weight
    _equal_states(model.state_dict(), loaded.state_dict())


def test_tokenizers_saved_and_loaded(tmp_path):
    from attnkit.data.tokenize import Tokenizer

    model = tiny_model()
    model.tokenizers = {"source": Tokenizer.train(["abc", "cab"], scheme="char"),
                        "target": Tokenizer.train(["12 34"], scheme="word")}
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer_source.json", "tokenizer_target.json"]
    loaded = attnkit.io.load(tmp_path / "m")
    assert sorted(loaded.tokenizers) == ["source", "target"]
    for name in ("source", "target"):
        assert loaded.tokenizers[name].to_str() == model.tokenizers[name].to_str()
    (tmp_path / "m" / "tokenizer_target.json").unlink()
    with pytest.raises(CheckpointError, match=r"incomplete: missing tokenizer files \['tokenizer_target.json'\]"):
        attnkit.io.load(tmp_path / "m")


def test_save_replaces_an_existing_directory(tmp_path):
    a, b = tiny_model(seed=1), tiny_model(seed=2)
    a.save(tmp_path / "m")
    (tmp_path / "m" / "stale.txt").write_text("from an older save")
    b.save(tmp_path / "m")
    assert not (tmp_path / "m" / "stale.txt").exists()
    _equal_states(b.state_dict(), attnkit.io.load(tmp_path / "m").state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_missing_and_incomplete_directories(tmp_path):
    with pytest.raises(CheckpointError, match=r"'.*nowhere' does not exist"):
        attnkit.io.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="incomplete: config.json is missing"):
        attnkit.io.load(tmp_path / "empty")
    tiny_model().save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="incomplete: model.safetensors is missing"):
        attnkit.io.load(tmp_path / "m")
    (tmp_path / "f").write_text("x")
    with pytest.raises(CheckpointError, match="is not a directory"):
        attnkit.io.load(tmp_path / "f")


def test_bad_config_files(tmp_path):
    tiny_model().save(tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    meta = json.loads(cfg.read_text())
    cfg.write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        attnkit.io.load(tmp_path / "m")
    cfg.write_text(json.dumps({**meta, "model_type": "hologram"}))
    with pytest.raises(CheckpointError, match=r"unknown model_type 'hologram'. Expected one of: \[.*'seq2seq'"):
        attnkit.io.load(tmp_path / "m")
    old = {k: v for k, v in meta.items() if k != "model_type"}
    cfg.write_text(json.dumps({**old, "kind": "tiny-test"}))  # the layout of attnkit before model_type
    with pytest.raises(CheckpointError, match=r"earlier attnkit, which called the model's type 'kind': rename the key"):
        attnkit.io.load(tmp_path / "m")
    cfg.write_text(json.dumps({**meta, "config": {**meta["config"], "depth": 3}}))
    with pytest.raises(CheckpointError, match=r"fields TinyConfig does not know: \['depth'\]"):
        attnkit.io.load(tmp_path / "m")
    cfg.write_text(json.dumps({**meta, "model_type": "tiny-test"}))
    with pytest.raises(CheckpointError, match=r"holds a 'tiny-test' model, not 'other'"):
        class Other(KitModel):
            model_type = "other"
            config_class = TinyConfig
        Other.load(tmp_path / "m")


def test_config_that_does_not_match_the_weights_lists_tensors(tmp_path):
    tiny_model(width=8).save(tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    meta = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**meta, "config": {**meta["config"], "width": 4}}))
    with pytest.raises(CheckpointError, match=r"shape mismatches \[.*hidden.weight: checkpoint \(8, 8\) vs model \(4, 4\)"):
        attnkit.io.load(tmp_path / "m")

    cfg.write_text(json.dumps(meta))
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    del state["hidden.bias"]
    state["decoder.extra"] = torch.zeros(2)
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=r"missing tensors \['hidden.bias'\], unexpected tensors \['decoder.extra'\]"):
        attnkit.io.load(tmp_path / "m")
    weights.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        attnkit.io.load(tmp_path / "m")


def test_model_module_is_imported_lazily(tmp_path, monkeypatch):
    pkg = tmp_path / "lazy_models_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "lazy.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from torch import nn
        from attnkit.models.base import KitModel
        from attnkit.storage import register_model

        @dataclass
        class LazyConfig:
            n: int = 3

        @register_model
        class Lazy(KitModel):
            model_type = "lazy-test"
            config_class = LazyConfig
            def __init__(self, config):
                super().__init__(config)
                self.lin = nn.Linear(config.n, 1)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazy_models_pkg.lazy as lazy

    lazy.Lazy(lazy.LazyConfig(n=4)).save(tmp_path / "m")
    monkeypatch.delitem(attnkit.io.MODEL_REGISTRY, "lazy-test")
    monkeypatch.delitem(sys.modules, "lazy_models_pkg.lazy")
    monkeypatch.setitem(attnkit.io.MODEL_MODULES, "lazy-test", "lazy_models_pkg.lazy")
    loaded = attnkit.io.load(tmp_path / "m")
    assert "lazy_models_pkg.lazy" in sys.modules and loaded.config.n == 4 and loaded.model_type == "lazy-test"

    monkeypatch.setitem(attnkit.io.MODEL_MODULES, "lazy-test", "lazy_models_pkg.absent")
    monkeypatch.delitem(attnkit.io.MODEL_REGISTRY, "lazy-test")
    with pytest.raises(CheckpointError, match="needs module lazy_models_pkg.absent, which is not available"):
        attnkit.io.load(tmp_path / "m")


def test_summary_counts_parameters_once():
    model = tiny_model(vocab=11, width=8)
    # embedding 11*8 (shared with the output), hidden 8*8 + 8, output bias 11
    expected = 11 * 8 + 8 * 8 + 8 + 11
    assert model.num_parameters() == expected
    text = model.summary()
    assert f"{expected:,}" in text and "hidden" in text


def test_register_model_checks_and_config_errors():
    from attnkit.storage import register_model

    with pytest.raises(TypeError, match="non-empty str `model_type`"):
        @register_model
        class NoKind(KitModel):
            config_class = TinyConfig
    with pytest.raises(ValueError, match="'tiny-test' is already registered"):
        @register_model
        class Clash(KitModel):
            model_type = "tiny-test"
            config_class = TinyConfig
    with pytest.raises(TypeError, match="expects a @dataclass config instance. Received: dict"):
        TinyModel({"width": 3})

    @dataclass
    class Checked:
        width: int = 1

        def __post_init__(self):
            if self.width < 1:
                raise ValueError(f"width must be >= 1. Received: {self.width}")

    with pytest.raises(CheckpointError, match=r"invalid Checked in config.json: width must be >= 1. Received: 0"):
        config_from_dict(Checked, {"width": 0})
    with pytest.raises(CheckpointError, match="must be a JSON object. Received: list"):
        config_from_dict(Checked, [1])


def test_load_reads_hugging_face_directories(tmp_path):
    from attnkit.models import GPT, GPTConfig

    gpt = GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)).eval()
    gpt.save_pretrained(tmp_path / "gpt")
    loaded = attnkit.io.load(tmp_path / "gpt")
    assert isinstance(loaded, GPT) and not loaded.training
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded(ids).logits, gpt(ids).logits)
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(CheckpointError, match="model_type 't5', which attnkit does not read"):
        attnkit.io.load(tmp_path / "t5")
