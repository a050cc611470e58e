"""BERT's heads: masked LM, pretraining (masked LM + next-sentence prediction, trainable by
``attnkit.training.Trainer``) and sequence classification, each on a :class:`attnkit.models.bert.Bert`.

Shape legend: B batch, T positions, D width (``hidden_size``), V vocabulary, C classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.models.bert import Bert, BertConfig, BertPretrainedModel
from attnkit.models.blocks import get_activation, init_weights
from attnkit.models.outputs import MaskedLMOutput, PreTrainingOutput, SequenceClassifierOutput


class MaskedLMHead(nn.Module):
    """``logits = LN(act(h W_t + b_t)) W_word^T + b``: ``(B, T, D) -> (B, T, V)``; the output matrix is the
    word-embedding matrix."""

    def __init__(self, c: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = get_activation(c.hidden_act)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)
        self.decoder.weight = word_embeddings.weight
        nn.init.zeros_(self.decoder.bias)
        init_weights(self.transform, c.initializer_range)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.norm(self.act(self.transform(x))))


def _mlm_loss(logits: Tensor, labels: Tensor | None) -> Tensor | None:
    if labels is None:
        return None
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"Expected `labels` of shape {tuple(logits.shape[:2])}. Received: {tuple(labels.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


class BertForMaskedLM(BertPretrainedModel):
    """BERT with the masked-LM head.

    Call arguments: as :class:`Bert`, plus ``labels (B, T)``: the original token at masked positions,
    -100 elsewhere (see :func:`attnkit.models.bert_data.mask_tokens`).

    Returns:
        :class:`MaskedLMOutput` with ``logits (B, T, V)``.

    Example:
        >>> m = BertForMaskedLM(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
        ...                                num_attention_heads=2, intermediate_size=32))
        >>> m(torch.tensor([[2, 5, 3]])).logits.shape
        torch.Size([1, 3, 30])
    """

    hf_architecture = "BertForMaskedLM"

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = Bert(config, add_pooling_layer=False)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, None, output_attentions, output_hidden_states)
        logits = self.mlm(out.last_hidden_state)  # (B, T, V)
        return MaskedLMOutput(logits, _mlm_loss(logits, labels), out.hidden_states, out.attentions)


class BertForPreTraining(BertPretrainedModel):
    """BERT with both pretraining heads: masked LM and next-sentence prediction (on the pooler).

    Call arguments: as :class:`Bert`, plus ``labels (B, T)`` for the masked LM (-100 = not scored) and
    ``next_sentence_label (B,)``: 0 = sentence B follows A, 1 = B is random.

    Returns:
        :class:`PreTrainingOutput`; ``loss`` is the sum of the losses whose labels were given.

    ``training_step(batch)``: ``batch`` has ``input_ids``, ``attention_mask``, ``token_type_ids``, ``labels``
    and ``next_sentence_label`` (an ``attnkit.data`` ``PairBatch``). Loss = mean masked-LM cross-entropy
    over the chosen tokens (0 if none) + mean next-sentence cross-entropy; stats hold masked-LM
    ``correct``/``total`` (the trainer's ``accuracy`` is the MLM accuracy), ``tokens`` and ``nsp_correct``.

    Example:
        >>> m = BertForPreTraining(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
        ...                                   num_attention_heads=2, intermediate_size=32))
        >>> out = m(torch.tensor([[2, 5, 3]]))
        >>> out.prediction_logits.shape, out.seq_relationship_logits.shape
        (torch.Size([1, 3, 30]), torch.Size([1, 2]))
    """

    hf_architecture = "BertForPreTraining"

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = Bert(config, add_pooling_layer=True)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self.nsp, config.initializer_range)

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

    def _sums(self, batch: Any) -> dict[str, Tensor]:
        """Summed losses and counts of one batch (both training and evaluation average them)."""
        out = self(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        logits, labels = out.prediction_logits, batch.labels  # (B, T, V), (B, T)
        chosen = labels != -100
        nsp_logits, nsp_labels = out.seq_relationship_logits, batch.next_sentence_label  # (B, 2), (B,)
        return {
            "mlm_sum": F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                                       reduction="sum"),
            "mlm_count": chosen.sum(),
            "mlm_correct": ((logits.argmax(-1) == labels) & chosen).sum(),
            "nsp_sum": F.cross_entropy(nsp_logits, nsp_labels, reduction="sum"),
            "nsp_correct": (nsp_logits.argmax(-1) == nsp_labels).sum(),
            "pairs": torch.tensor(nsp_labels.numel()),
            "tokens": batch.attention_mask.sum(),
        }

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        s = self._sums(batch)
        loss = s["mlm_sum"] / s["mlm_count"].clamp(min=1) + s["nsp_sum"] / s["pairs"]
        return loss, {"correct": s["mlm_correct"].detach(), "total": s["mlm_count"], "tokens": s["tokens"],
                      "nsp_correct": s["nsp_correct"]}

    @torch.no_grad()
    def evaluate_batches(self, batches: Iterable[Any]) -> dict[str, float]:
        """``mlm_loss``, ``mlm_accuracy`` (over masked tokens), ``nsp_loss``, ``nsp_accuracy`` and
        ``loss = mlm_loss + nsp_loss`` over fixed batches."""
        device = self.bert.embeddings.word_embeddings.weight.device
        acc = dict.fromkeys(("mlm_sum", "mlm_count", "mlm_correct", "nsp_sum", "nsp_correct", "pairs"), 0.0)
        for batch in batches:
            s = self._sums(batch.to(device))
            for k in acc:
                acc[k] += float(s[k])
        mlm, nsp = acc["mlm_sum"] / max(acc["mlm_count"], 1), acc["nsp_sum"] / max(acc["pairs"], 1)
        return {"loss": mlm + nsp, "mlm_loss": mlm, "mlm_accuracy": acc["mlm_correct"] / max(acc["mlm_count"], 1),
                "nsp_loss": nsp, "nsp_accuracy": acc["nsp_correct"] / max(acc["pairs"], 1)}


class BertForSequenceClassification(BertPretrainedModel):
    """BERT with a classifier on the pooled ``[CLS]`` vector: ``logits = dropout(pooler) W_c + b_c``.

    Call arguments: as :class:`Bert`, plus ``labels (B,)``: class ids (cross-entropy), or floats when
    ``config.num_labels == 1`` (regression, mean squared error).

    Returns:
        :class:`SequenceClassifierOutput` with ``logits (B, C)``.

    Example:
        >>> m = BertForSequenceClassification(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
        ...                                              num_attention_heads=2, intermediate_size=32, num_labels=3))
        >>> m(torch.tensor([[2, 5, 3]])).logits.shape
        torch.Size([1, 3])
    """

    hf_architecture = "BertForSequenceClassification"

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = Bert(config, add_pooling_layer=True)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier, config.initializer_range)

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
