"""Old home of the text helpers of ``Seq2Seq`` and ``Transformer``; they live in :mod:`attnkit.models._translate`.

This module only re-exports them so that existing imports keep working.
"""

from attnkit.models._translate import encode_texts, tokenizer, training_step, translate

__all__ = ["encode_texts", "tokenizer", "training_step", "translate"]
