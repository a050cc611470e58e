"""``attnkit.bench.models.flops_per_token``, the numerator of the models suite's MFU column, against torch's own
FLOP counter on real models (pairwise-different sizes)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from attnkit.bench.models import flops_per_token
from attnkit.models.gpt import GPT, GPTConfig


def test_a_gpt_training_step_counts_what_torch_counts():
    layers, width, vocab, length, batch = 3, 48, 97, 20, 2
    model = GPT(GPTConfig(vocab_size=vocab, n_positions=64, n_embd=width, n_layer=layers, n_head=4)).train()
    ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(ids, labels=ids).loss.backward()
    expected = flops_per_token(layers, width, length, vocab, training=True) * batch * length
    assert counter.get_total_flops() == expected


def test_an_encoder_forward_counts_what_torch_counts_on_the_peer():
    transformers = __import__("transformers")
    layers, width, length, batch = 2, 32, 12, 3
    model = transformers.BertModel(transformers.BertConfig(
        vocab_size=50, hidden_size=width, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=4 * width, attn_implementation="eager")).eval()
    ids = torch.randint(0, 50, (batch, length), generator=torch.Generator().manual_seed(1))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(ids)
    pooler = 2 * width * width * batch  # BertModel's pooler: one product per text, not per token
    assert counter.get_total_flops() == flops_per_token(layers, width, length) * batch * length + pooler
