"""summary(): rows, output shapes and parameter counts against hand counts and transformers."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import transformers
from torch import nn

from attnkit.models.bert import Bert, BertConfig
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.models.summary import count_parameters, summary


def test_hand_counted_sequential():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    lines = []
    text = summary(model, torch.zeros(5, 3), print_fn=lines.append)
    assert lines == [text]
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith(" ") and "(" in line}
    assert "(5, 4)" in rows["0"] and rows["0"].rstrip().endswith(" 16")  # 3 * 4 + 4
    assert "(5, 4)" in rows["1"] and rows["1"].rstrip().endswith(" 0")
    assert "(5, 2)" in rows["2"] and rows["2"].rstrip().endswith(" 8")  # 4 * 2
    assert "Total params: 24 " in text and "Trainable params: 24" in text and "Non-trainable params: 0" in text
    assert text.startswith('Model: "Sequential"')


def test_frozen_parameters_and_no_input():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    text = summary(model, print_fn=None)
    assert "Trainable params: 10" in text and "Non-trainable params: 16" in text
    assert "Output: -" in text


def test_gpt_summary_counts_tied_weights_once():
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    model = GPT(GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    text = model.summary(seq_len=6, print_fn=None)
    assert count_parameters(model) == hf.num_parameters()
    assert f"Total params: {hf.num_parameters():,} " in text
    assert "blocks.0 (PreNormBlock)" in text and "(1, 6, 16)" in text
    assert "lm_head (Linear)" in text and "(1, 6, 50)" in text
    assert "Output: (1, 6, 50)" in text  # the first tensor field of the output object (logits)
    assert "blocks.0.self_attn" not in text  # depth 2 by default
    deep = summary(model, torch.zeros(1, 3, dtype=torch.long), depth=4, print_fn=None)
    assert "blocks.0.self_attn (AttentionEngine)" in deep and "blocks.0.ff.fc_in (Linear)" in deep


def test_bert_summary_matches_transformers_count():
    config = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24)
    hf = transformers.BertModel(transformers.BertConfig(**config))
    model = Bert(BertConfig(**config))
    text = model.summary(seq_len=5, print_fn=None)
    assert f"Total params: {hf.num_parameters():,} " in text
    assert "pooler (BertPooler)" in text and "(1, 16)" in text


def test_bad_depth():
    with pytest.raises(ValueError, match="Expected depth an int >= 1. Received: 0"):
        summary(nn.Linear(2, 2), depth=0)
