"""The small trained model of the step-by-step lessons (``attnkit lesson steps`` and ``lesson decoding``): a
character-level Bahdanau encoder-decoder trained on the ``dates`` task with the demo's recipe for a few hundred
steps (about 40 s on one thread of a quiet machine; held-out exact match about 1.0 at 300 steps), or a model the
user trained (``attnkit demo``, ``attnkit train seq2seq``).
"""

from __future__ import annotations

from typing import Any

import torch

from attnkit.data.tokenize import Tokenizer
from attnkit.errors import InputError
from attnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnkit.recipes.common import Log, no_log
from attnkit.recipes.demo import DemoSettings, train_dates_model
from attnkit.recipes.seq2seq import RunSpec, load_split

LESSON_SETTINGS = DemoSettings(train_size=5_000, valid_size=100, eval_every=100, patience=None)
"""The demo's model and optimiser on 5,000 training dates; validated every 100 steps."""


def quick_dates_model(steps: int = 300, time_budget: float = 120.0, seed: int = 0,
                      log: Log = no_log) -> tuple[Seq2Seq, str]:
    """A Bahdanau model trained on dates for ``steps`` steps (or ``time_budget`` seconds) and a note saying so.

    Returns:
        ``(model in eval mode, note)``; the note names the steps made and the validation exact match.
    """
    spec = RunSpec(data="dates", seed=seed)
    train = load_split(spec, "train", LESSON_SETTINGS.train_size)
    valid = load_split(spec, "validation", LESSON_SETTINGS.valid_size)
    model, result = train_dates_model("bahdanau", LESSON_SETTINGS, train, valid, steps, time_budget, seed, "cpu", log)
    evals = [e for e in result.history if "exact_match" in e]
    em = f", validation exact match {evals[-1]['exact_match']:.2f}" if evals else ""
    return model.eval(), f"a Bahdanau model trained here on dates for {result.steps} steps{em}"


def example_model(seed: int = 0, attention: str = "bahdanau") -> Seq2Seq:
    """A tiny untrained character model (widths E 5, D 6, A 7; 6 output steps) with its tokenizers, for examples
    and tests.

    Example:
        >>> example_model().translate(["4 de marzo"])[0].__class__.__name__
        'str'
    """
    torch.manual_seed(seed)
    src, tgt = Tokenizer.train(["4 de marzo de 2031"], scheme="char"), Tokenizer.train(["2031-03-04"], scheme="char")
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size, embed_dim=5,
                                  hidden_dim=6, attention_dim=7, max_tgt_len=6, attention=attention))
    model.tokenizers = {"source": src, "target": tgt}
    return model.eval()


def check_bahdanau(model: Any, where: str) -> Seq2Seq:
    """``model`` if it is a :class:`Seq2Seq` with Bahdanau attention, else an ``InputError`` naming ``where``."""
    if not isinstance(model, Seq2Seq):
        raise InputError(f"Expected a seq2seq model (attnkit train seq2seq, attnkit demo) in {where!r}. "
                         f"Received: a {type(model).__name__}")
    if model.config.attention != "bahdanau":
        raise InputError(f"Expected a model with Bahdanau attention in {where!r} (this lesson draws its alignment "
                         f"model e_ij = a(s_(i-1), h_j)). Received: attention={model.config.attention!r}")
    return model.eval()


__all__ = ["LESSON_SETTINGS", "check_bahdanau", "example_model", "quick_dates_model"]
