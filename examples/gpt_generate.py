"""Train a tiny GPT on generated text with the Python API, then let it continue a prompt.

The same as ``attnkit train gpt --data FILE --out DIR`` followed by ``attnkit generate DIR "prompt"``,
written out step by step: text -> byte-level BPE tokenizer -> contiguous blocks -> Trainer -> generate.

    python examples/gpt_generate.py [--steps 300] [--out runs/gpt-example]
"""

from __future__ import annotations

import argparse
import random
import tempfile

import torch

from attnkit.data.lm_streams import BlockStream
from attnkit.data.lm_tokenizers import encode_text, train_byte_bpe
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.training import TrainConfig, Trainer


def make_text(lines: int = 300, seed: int = 0) -> str:
    """Random little sentences; every third line is the same one, which the model should learn by heart."""
    rng = random.Random(seed)
    subjects, verbs, objects = (
        ["the cat", "a dog", "my friend"],
        ["sees", "likes", "draws"],
        ["a tree", "the moon"],
    )
    out = []
    for i in range(lines):
        if i % 3 == 0:
            out.append("the quick brown fox jumps over the lazy dog.")
        else:
            out.append(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps")
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    # 1. a tokenizer trained on the text (byte-level BPE: any string can be encoded)
    text = make_text()
    tokenizer = train_byte_bpe([text], vocab_size=300)
    ids = encode_text(tokenizer, text)

    # 2. a small GPT and the stream of contiguous 32-token blocks it learns from
    model = GPT(
        GPTConfig(
            vocab_size=tokenizer.get_vocab_size(),
            n_positions=32,
            n_embd=64,
            n_layer=2,
            n_head=2,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    )
    model.tokenizer = tokenizer
    blocks = BlockStream(ids, block_size=32, batch_size=16, seed=0)

    # 3. train (the Trainer writes train_log.jsonl, checkpoint/ and model/ into out_dir)
    out = args.out or tempfile.mkdtemp(prefix="gpt-example-")
    config = TrainConfig(
        steps=args.steps,
        lr=3e-3,
        schedule="cosine",
        warmup_steps=10,
        eval_every=args.steps,
        log_every=max(1, args.steps // 3),
        out_dir=out,
        progress=False,
        device="cpu",
    )
    result = Trainer(model, config, blocks).fit()
    print(f"trained {result.steps} steps, final loss {result.final_loss:.3f}; model saved in {out}/model")

    # 4. generate: greedy continuation of a prompt, with a key/value cache per block
    prompt = "the quick brown"
    prompt_ids = torch.tensor([tokenizer.encode(prompt)])  # (1, T)
    out_ids = model.generate(prompt_ids, max_new_tokens=10)  # (1, T + 10)
    print(repr(prompt), "->", repr(tokenizer.decode(out_ids[0, prompt_ids.shape[1] :].tolist())))


if __name__ == "__main__":
    main()
