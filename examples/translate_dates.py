"""Train a Bahdanau encoder-decoder on the built-in dates task from Python, then translate and show alignments.

    python examples/translate_dates.py            # ~400 steps, about half a minute on one CPU core
    python examples/translate_dates.py --steps 20 # a smoke run (what the examples test does)

The same thing from the command line: ``attnkit demo`` or
``attnkit train seq2seq --data dates --out runs/dates`` then ``attnkit translate runs/dates "4 de marzo de 2031"``.
"""

from __future__ import annotations

import argparse

import torch

from attnkit.data import BatchStream, Tokenizer, encode_pairs, load_pairs
from attnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnkit.training import TrainConfig, Trainer
from attnkit.viz.terminal import heatmap_text


def main(steps: int = 400) -> float:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # 1. data: the test dates never appear in training, in any format
    train = load_pairs("dates", "train", size=20_000, seed=0)
    test = load_pairs("dates", "test", size=500, seed=0)
    src_tok = Tokenizer.train([s for s, _ in train], scheme="char", lowercase=True)
    tgt_tok = Tokenizer.train([t for _, t in train], scheme="char")
    # 2. model: bidirectional GRU encoder, GRU decoder with additive (Bahdanau) attention
    config = Seq2SeqConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size,
                           attention="bahdanau", embed_dim=32, hidden_dim=64, attention_dim=64, max_tgt_len=16)
    model = Seq2Seq(config)
    model.tokenizers = {"source": src_tok, "target": tgt_tok}
    # 3. train with teacher forcing
    stream = BatchStream(encode_pairs(train, src_tok, tgt_tok), batch_size=256, seed=0, bucket_size=8)
    Trainer(model, TrainConfig(steps=steps, lr=5e-3, schedule="cosine", warmup_steps=min(50, steps),
                               weight_decay=0.0, eval_every=steps, progress=False), stream).fit()
    # 4. translate held-out dates: greedy, then beam search
    model.eval()
    sources, refs = [s for s, _ in test], [t for _, t in test]
    greedy = model.translate(sources)
    beam = model.translate(sources, beam_size=3)
    em = sum(p == r for p, r in zip(greedy, refs, strict=True)) / len(refs)
    em_beam = sum(p == r for p, r in zip(beam, refs, strict=True)) / len(refs)
    print(f"held-out exact match after {steps} steps: greedy {em:.3f}, beam 3 {em_beam:.3f}")
    # 5. where did it look? one row per output character, one column per input character
    text = "martes, 4 de marzo de 2031"
    (out, alignment), = model.translate([text], return_alignments=True)
    rows = tgt_tok.tokens(tgt_tok.encode(out, add_special=False)) + ["<eos>"]
    cols = src_tok.tokens(src_tok.encode(text))
    if alignment.shape[0] == len(rows):
        print(heatmap_text(alignment, rows, cols, title=f"{text} -> {out}"))
    else:  # an undertrained model ran to max_tgt_len without an end token
        print(f"{text} -> {out}")
    return em


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps")
    main(parser.parse_args().steps)
