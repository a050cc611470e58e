"""BERT (Devlin et al. 2019): a bidirectional Transformer encoder. Its heads (masked LM, pretraining,
sequence classification) are in :mod:`attnkit.models.bert_heads`.

    x_0 = LN(W_word[ids] + W_pos[positions] + W_type[token_types])
    x_l = PostNormBlock(x_{l-1}, key_mask=attention_mask)      l = 1 .. L   (attnkit.models.blocks)
    pooler_output = tanh(W_p x_L[:, 0] + b_p)

Loads and saves Hugging Face BERT directories (``BertModel``, ``BertForPreTraining``, ``BertForMaskedLM``,
``BertForSequenceClassification``), e.g. sentence-transformers' all-MiniLM-L6-v2.

Shape legend: B batch, T positions, D width (``hidden_size``), H heads, V vocabulary, C classes, L layers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from attnkit.errors import CheckpointError
from attnkit.models import hub
from attnkit.models._checks import check_ids, check_padding_mask
from attnkit.models.blocks import ACTIVATIONS, PostNormBlock, init_weights, run_blocks
from attnkit.models.hub_names import BERT_NAMES, fuse_qkv, split_qkv
from attnkit.models.outputs import EncoderOutput


@dataclass
class BertConfig:
    """Hyper-parameters of the BERT models; field names are those of ``transformers.BertConfig``."""

    vocab_size: int = 30522  # V
    hidden_size: int = 768  # D, model width
    num_hidden_layers: int = 12  # L
    num_attention_heads: int = 12  # H (D % H == 0)
    intermediate_size: int = 3072  # feed-forward width
    hidden_act: str = "gelu"  # a key of attnkit.models.blocks.ACTIVATIONS
    hidden_dropout_prob: float = 0.1  # dropout on embeddings and block outputs
    attention_probs_dropout_prob: float = 0.1  # dropout on attention weights
    max_position_embeddings: int = 512  # longest sequence
    type_vocab_size: int = 2  # number of segment (token type) ids
    initializer_range: float = 0.02  # std of the normal initialisation
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2  # classes of BertForSequenceClassification (1 = regression)
    classifier_dropout: float | None = None  # None = hidden_dropout_prob

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size", "num_labels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Expected BertConfig.{name} a positive int. Received: {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                "Expected hidden_size divisible by num_attention_heads. "
                f"Received: hidden_size={self.hidden_size}, num_attention_heads={self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"Expected hidden_act in {sorted(ACTIVATIONS)}. Received: {self.hidden_act!r}")

    @classmethod
    def from_hf_dict(cls, config: dict) -> BertConfig:
        """Build from a ``transformers`` BERT ``config.json`` dict (unknown keys are ignored;
        settings attnkit does not implement raise ``CheckpointError``)."""
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise CheckpointError(
                "config.json: unsupported position_embedding_type. Expected 'absolute'. "
                f"Received: {config['position_embedding_type']!r}"
            )
        for key in ("is_decoder", "add_cross_attention"):
            if config.get(key):
                raise CheckpointError(f"config.json: unsupported BERT option {key}=true (attnkit's Bert is an encoder)")
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in config.items() if k in names}
        if "id2label" in config and "num_labels" not in config:
            kwargs["num_labels"] = len(config["id2label"])
        try:
            return cls(**kwargs)
        except ValueError as e:
            raise CheckpointError(f"config.json: {e}") from e

    def to_hf_dict(self, architecture: str = "BertModel") -> dict:
        """The ``config.json`` dict ``transformers`` reads (as ``architecture``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "num_labels"}
        labels = {str(i): f"LABEL_{i}" for i in range(self.num_labels)}
        return {
            "model_type": "bert",
            "architectures": [architecture],
            "position_embedding_type": "absolute",
            "id2label": labels,
            "label2id": {v: int(k) for k, v in labels.items()},
            **d,
        }


def _is_head_or_pooler(name: str) -> bool:
    return name.startswith(("cls.", "classifier.", "pooler.", "bert.pooler."))


class BertPretrainedModel(hub.PretrainedModel):
    """What every BERT model shares: its config, its Hugging Face names and checkpoint loading.

    A checkpoint's encoder must be complete. Heads (and the pooler) the checkpoint lacks keep their fresh
    initialisation (with a warning); heads the model lacks are ignored, so a ``BertForPreTraining``
    checkpoint loads into :class:`Bert` and a ``BertModel`` checkpoint into a classifier.
    """

    config_class = BertConfig
    hf_model_types = ("bert",)
    hf_architecture = "BertModel"
    special_tokens = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                      "mask_token": "[MASK]"}
    tokenizer_config = {"model_input_names": ["input_ids", "token_type_ids", "attention_mask"]}
    is_head_tensor = staticmethod(_is_head_or_pooler)  # what from_pretrained(ignore_mismatched_sizes=True) may resize

    def hf_config(self) -> dict:
        return self.config.to_hf_dict(self.hf_architecture)

    def hf_tensors(self) -> dict[str, Tensor]:
        state = {k: v for k, v in self.state_dict().items() if not k.endswith("mlm.decoder.weight")}  # tied
        out, unmatched = hub.convert(split_qkv(state), BERT_NAMES, to_hf=True)
        if unmatched:  # a programming error: every attnkit tensor needs a row
            raise RuntimeError(f"no transformers name for {unmatched}")
        return out

    def load_hf_tensors(self, tensors: dict[str, Tensor], where: str = "checkpoint") -> list[str]:
        """Copy tensors with ``transformers`` BERT names into this model; returns the heads newly initialised."""
        expected = {k: tuple(v.shape) for k, v in self.hf_tensors().items()}
        found = hub.adapt_prefix(tensors, expected, "bert.")
        c = self.config
        new = hub.match_checkpoint(
            expected, found, optional=_is_head_or_pooler,
            ignorable=lambda k: _is_head_or_pooler(k) or k.endswith(("embeddings.position_ids",
                                                                      "embeddings.token_type_ids")),
            where=where,
            hint=f" (config: num_hidden_layers={c.num_hidden_layers}, hidden_size={c.hidden_size}, "
            f"vocab_size={c.vocab_size}, max_position_embeddings={c.max_position_embeddings})",
        )
        ours, _ = hub.convert({k: found[k] for k in expected if k in found}, BERT_NAMES, to_hf=False)
        self.load_state_dict(fuse_qkv(ours), strict=False)
        if new:
            warnings.warn(f"{where}: weights of {type(self).__name__} not in the checkpoint (or resized), newly "
                          f"initialised: {new}. Train this model on a down-stream task before using its "
                          "predictions.", stacklevel=4)
        return new


class BertEmbeddings(nn.Module):
    """``dropout(LN(W_word[ids] + W_pos[positions] + W_type[token_types]))``: ``(B, T) -> (B, T, D)``."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None, position_ids: Tensor | None) -> Tensor:
        T = input_ids.shape[1]
        if position_ids is None:
            position_ids = torch.arange(T, device=input_ids.device)[None]  # (1, T)
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)  # (B, T, D)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(x))


class BertPooler(nn.Module):
    """``tanh(W h_[CLS] + b)``: ``(B, T, D) -> (B, D)``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class Bert(BertPretrainedModel):
    """BERT encoder.

    Args:
        config: a :class:`BertConfig`.
        add_pooling_layer: build the ``[CLS]`` pooler (``pooler_output``).

    Call arguments:
        input_ids: ``(B, T)`` token ids in ``[0, V)``, T <= max_position_embeddings.
        attention_mask: ``(B, T)`` bool or 0/1, True = real token (padding is ignored as a key); what
            ``model.tokenizer(texts, padding=True, return_tensors="pt")`` returns beside ``input_ids``. Without
            it, ``input_ids`` that start or end with ``[PAD]`` give a warning (once), as in ``transformers``.
        token_type_ids: ``(B, T)`` segment ids (sentence A = 0, B = 1); default all 0.
        position_ids: ``(B, T)``; default ``0 .. T - 1``.
        output_attentions: also return per-layer weights ``(B, H, T, T)``.
        output_hidden_states: also return the embeddings and every layer's output.

    Returns:
        :class:`EncoderOutput` with ``last_hidden_state (B, T, D)`` and ``pooler_output (B, D)``.

    Example:
        >>> model = Bert(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
        ...                         num_attention_heads=2, intermediate_size=32))
        >>> out = model(torch.tensor([[2, 7, 9, 0]]), attention_mask=torch.tensor([[1, 1, 1, 0]]))
        >>> out.last_hidden_state.shape, out.pooler_output.shape
        (torch.Size([1, 4, 16]), torch.Size([1, 16]))
    """

    model_type = "bert"

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        c = config
        self.embeddings = BertEmbeddings(c)
        self.layers = nn.ModuleList(
            PostNormBlock(c.hidden_size, c.num_attention_heads, c.intermediate_size, c.hidden_act,
                          dropout=c.hidden_dropout_prob, attention_dropout=c.attention_probs_dropout_prob,
                          eps=c.layer_norm_eps)
            for _ in range(c.num_hidden_layers)
        )
        self.pooler = BertPooler(c.hidden_size) if add_pooling_layer else None
        init_weights(self, c.initializer_range)
        with torch.no_grad():
            self.embeddings.word_embeddings.weight[c.pad_token_id].zero_()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        c = self.config
        check_ids(input_ids, "input_ids", c.vocab_size, "vocab_size", c.max_position_embeddings,
                  "max_position_embeddings")
        B, T = input_ids.shape
        if token_type_ids is not None:
            check_ids(token_type_ids, "token_type_ids", c.type_vocab_size, "type_vocab_size")
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(f"Expected `token_type_ids` of shape {(B, T)}. Received: {tuple(token_type_ids.shape)}")
        self.warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
        key_mask = None if attention_mask is None else check_padding_mask(attention_mask, B, T)  # (B, T)
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, T, D)
        x, hidden, weights, _ = run_blocks(self.layers, x, None, output_hidden_states, key_mask=key_mask,
                                           return_weights=output_attentions)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=(*hidden, x) if output_hidden_states else None,
            attentions=weights if output_attentions else None,
        )
