"""The models built on attention, each with its ``@dataclass`` config.

- ``Seq2Seq``: RNN encoder-decoder with no, Bahdanau or Luong attention.
- ``Transformer``: the encoder-decoder of Vaswani et al. 2017.
- ``Bert`` (+ masked-LM, pre-training and classification heads) and ``GPT``: read and write Hugging Face
  directories with ``from_pretrained`` / ``save_pretrained``.
- ``Captioner``: Show, Attend and Tell (soft or hard attention over image regions).
- ``AttentionClassifier``: the course's text classifier with self-attention and attention pooling.

Every model's forward returns one of the output dataclasses of :mod:`attnkit.models.outputs`.

``attnkit.load(path)`` returns any saved model with its tokenizers.
"""

from attnkit.models.base import KitModel
from attnkit.models.bert import Bert, BertConfig
from attnkit.models.bert_data import mask_tokens, next_sentence_pairs
from attnkit.models.bert_heads import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification
from attnkit.models.captioner import Captioner, CaptionerConfig
from attnkit.models.classifier import AttentionClassifier, ClassifierConfig
from attnkit.models.gpt import GPT, GPTConfig
from attnkit.models.outputs import (
    CaptionerOutput,
    CausalLMOutput,
    ClassifierOutput,
    EncoderOutput,
    MaskedLMOutput,
    PreTrainingOutput,
    Seq2SeqOutput,
    SequenceClassifierOutput,
    TransformerOutput,
)
from attnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnkit.models.summary import count_parameters, summary
from attnkit.models.transformer import Transformer, TransformerConfig
from attnkit.storage import register_model

__all__ = [
    "Captioner", "CaptionerConfig", "CaptionerOutput",
    "AttentionClassifier", "ClassifierConfig", "ClassifierOutput",
    "GPT", "Bert", "BertConfig", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification",
    "CausalLMOutput", "EncoderOutput", "GPTConfig", "KitModel", "MaskedLMOutput", "PreTrainingOutput",
    "Seq2Seq", "Seq2SeqConfig", "Seq2SeqOutput", "SequenceClassifierOutput", "Transformer",
    "TransformerConfig", "TransformerOutput", "count_parameters", "mask_tokens", "next_sentence_pairs",
    "register_model", "summary",
]
