"""``model.device`` on every attnkit model, as ``transformers``' ``model.device``: the device of the first
parameter, following ``.to()``."""

from __future__ import annotations

import pytest
import torch

from attnkit import models

CLASSES = [models.Seq2Seq, models.Transformer, models.Bert, models.BertForMaskedLM, models.BertForPreTraining,
           models.BertForSequenceClassification, models.GPT, models.Captioner, models.AttentionClassifier]

SIZES = {"Seq2Seq": {"src_vocab_size": 11, "tgt_vocab_size": 13}, "Transformer": {"src_vocab_size": 11, "tgt_vocab_size": 13},
         "Captioner": {"vocab_size": 17}}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_device_is_the_first_parameters_device(cls):
    with torch.device("meta"):  # default configs, built without memory
        model = cls(cls.config_class(**SIZES.get(cls.__name__, {})))
    assert model.device == next(model.parameters()).device == torch.device("meta")
    assert isinstance(type(model).device, property)


def test_device_follows_to_like_transformers():
    transformers = pytest.importorskip("transformers")
    from attnkit.models import GPT, GPTConfig

    ours = GPT(GPTConfig(vocab_size=13, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=13, n_positions=8, n_embd=8, n_layer=1,
                                                              n_head=2))
    assert ours.device == hf.device == torch.device("cpu")
    assert ours.to("meta").device == hf.to("meta").device == torch.device("meta")
