"""GPT and BERT pretraining as trainable attnkit models, saved as Hugging Face directories.

:class:`GPTLanguageModel` (kind ``"gpt_lm"``) wraps :class:`attnkit.models.gpt.GPT` and
:class:`BertPretrainingModel` (kind ``"bert_pretraining"``) wraps
:class:`attnkit.models.bert.BertForPreTraining`. They add what ``attnkit.training.Trainer`` needs
(``training_step``, ``KitModel`` save/load for checkpoints) and nothing else: the numbers are those
of the wrapped model.

A saved directory is at once an attnkit model and a Hugging Face one::

    DIR/config.json        transformers' config (model_type gpt2 / bert) plus attnkit's "kind" and "config"
    DIR/model.safetensors  weights under transformers' names (written by the wrapped model's save_pretrained)
    DIR/tokenizer.json     the Hugging Face tokenizers file the model was trained with
    DIR/tokenizer_config.json  special tokens, so transformers' AutoTokenizer reads the tokenizer too

so ``attnkit.load(DIR)``, ``GPT.from_pretrained(DIR)`` / ``BertForPreTraining.from_pretrained(DIR)``
and ``transformers.GPT2LMHeadModel.from_pretrained(DIR)`` all read it.

Shape legend: B batch, T positions, V vocabulary.

Example:
    >>> import tempfile
    >>> from attnkit.models.gpt import GPTConfig
    >>> model = GPTLanguageModel(GPTConfig(vocab_size=40, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    >>> loss, stats = model.training_step(torch.randint(40, (2, 16)))
    >>> stats["total"], stats["tokens"]
    (30, 32)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     again = GPTLanguageModel.load(model.save(f"{d}/m"))
    >>> again.config == model.config
    True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from attnkit.errors import CheckpointError
from attnkit.models.base import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    KitModel,
    config_from_dict,
    config_to_dict,
    read_model_config,
    register_model,
)
from attnkit.models.bert import BertConfig, BertForPreTraining, load_hf_tensors
from attnkit.models.gpt import GPT, GPTConfig

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


# ----------------------------------------------------------------------------------------------------------
# Shared: the dual attnkit / Hugging Face directory
# ----------------------------------------------------------------------------------------------------------


def _write_dual(
    model: KitModel, inner: Any, directory: Path, special: dict[str, str], extra: dict[str, Any] | None = None
) -> None:
    """``inner.save_pretrained`` into ``directory``, then attnkit's keys in ``config.json``, the tokenizer."""
    from attnkit import __version__

    inner.save_pretrained(directory)
    meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    meta.update(
        kind=model.kind,
        config=config_to_dict(model.config),
        attnkit_version=__version__,
        tokenizers=[],
        tied={},
    )
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tok = model.tokenizer
    if tok is not None:
        (directory / TOKENIZER_FILE).write_text(tok.to_str(), encoding="utf-8")
        present = {k: v for k, v in special.items() if tok.token_to_id(v) is not None}
        config = {"tokenizer_class": "PreTrainedTokenizerFast", **present, **(extra or {})}
        (directory / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _read_safetensors(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read weights {path}: {err}") from err


def _load_dual(
    cls: type[KitModel], directory: str | os.PathLike[str], map_location: str | torch.device | None
) -> Any:
    directory = Path(directory)
    meta = read_model_config(directory)
    if meta["kind"] != cls.kind:
        raise CheckpointError(
            f"{directory} holds a {meta['kind']!r} model, not {cls.kind!r} ({cls.__name__})"
        )
    if not (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"model directory {str(directory)!r} is incomplete: {WEIGHTS_FILE} is missing")
    model = cls(config_from_dict(cls.config_class, meta["config"]))
    model.load_weights(directory / WEIGHTS_FILE)
    if (directory / TOKENIZER_FILE).is_file():
        from tokenizers import Tokenizer

        model.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    if map_location is not None:
        model.to(map_location)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------
# GPT
# ----------------------------------------------------------------------------------------------------------


def _ids_of(batch: Any) -> Tensor:
    return batch if isinstance(batch, Tensor) else batch.input_ids


@register_model
class GPTLanguageModel(KitModel):
    """A :class:`GPT` trained as a causal LM by ``attnkit.training.Trainer``.

    Args:
        config: a :class:`GPTConfig`.

    Attributes:
        gpt: the wrapped :class:`GPT` (``model.gpt.generate(...)``, ``model.gpt.save_pretrained(...)``).
        tokenizer: the ``tokenizers.Tokenizer`` of the text, or None.

    ``training_step(batch)``: ``batch`` is ``(B, T)`` ids or has ``input_ids`` ``(B, T)``; the loss is
    the mean cross-entropy of ``logits[:, t]`` against ``input_ids[:, t + 1]``, stats hold next-token
    ``correct``/``total`` counts and ``tokens = B * T``.
    """

    kind = "gpt_lm"
    config_class = GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.gpt = GPT(config)
        self.tokenizer: Any = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """``GPT.forward`` (returns a ``CausalLMOutput``)."""
        return self.gpt(*args, **kwargs)

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        ids = _ids_of(batch)  # (B, T)
        out = self.gpt(ids, labels=ids)
        with torch.no_grad():
            correct = (out.logits[:, :-1].argmax(-1) == ids[:, 1:]).sum()
        return out.loss, {"correct": correct, "total": ids[:, 1:].numel(), "tokens": ids.numel()}

    @torch.no_grad()
    def evaluate_batches(self, batches: Iterable[Any]) -> dict[str, float]:
        """Mean next-token ``loss`` (per predicted token), ``perplexity = exp(loss)`` and ``accuracy``."""
        device = self.gpt.wte.weight.device
        total_loss, correct, total = 0.0, 0, 0
        for batch in batches:
            ids = _ids_of(batch).to(device)  # (B, T)
            logits = self.gpt(ids).logits[:, :-1]  # (B, T - 1, V)
            target = ids[:, 1:]
            total_loss += float(
                F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")
            )
            correct += int((logits.argmax(-1) == target).sum())
            total += target.numel()
        loss = total_loss / max(total, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "accuracy": correct / max(total, 1)}

    # -- files ---------------------------------------------------------------------------------------------
    def write_files(self, directory: Path) -> None:
        """Hugging Face GPT-2 files (+ attnkit keys in ``config.json``, + ``tokenizer.json``)."""
        eos = "<|endoftext|>"
        _write_dual(
            self,
            self.gpt,
            Path(directory),
            {"eos_token": eos, "bos_token": eos, "unk_token": eos, "pad_token": eos},
        )

    def load_weights(self, path: str | os.PathLike[str], tied: dict[str, str] | None = None) -> None:
        """Load ``model.safetensors`` with ``transformers`` GPT-2 names (checked by ``load_hf_tensors``)."""
        self.gpt.load_hf_tensors(_read_safetensors(path), where=str(path))

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], map_location: str | torch.device | None = None
    ) -> GPTLanguageModel:
        """Read a directory written by ``save`` (config, weights, ``tokenizer.json``), in eval mode."""
        model = _load_dual(cls, directory, map_location)
        model.gpt.tokenizer = model.tokenizer
        return model


# ----------------------------------------------------------------------------------------------------------
# BERT
# ----------------------------------------------------------------------------------------------------------


@register_model
class BertPretrainingModel(KitModel):
    """A :class:`BertForPreTraining` trained on masked LM + next-sentence prediction by the Trainer.

    Args:
        config: a :class:`BertConfig`.

    ``training_step(batch)``: ``batch`` has ``input_ids``, ``attention_mask``, ``token_type_ids``,
    ``labels`` (``(B, T)``, -100 = not predicted) and ``next_sentence_label`` ``(B,)`` (see
    ``attnkit.data.text.PairBatch``). Loss = mean masked-LM cross-entropy over the chosen tokens (0 if
    none) + mean next-sentence cross-entropy; stats hold masked-LM ``correct``/``total`` (so the
    trainer's ``accuracy`` is the MLM accuracy), ``tokens`` and ``nsp_correct``.

    Example:
        >>> m = BertPretrainingModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
        ...                                     num_attention_heads=2, intermediate_size=32))
        >>> m.bert.__class__.__name__
        'BertForPreTraining'
    """

    kind = "bert_pretraining"
    config_class = BertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertForPreTraining(config)
        self.tokenizer: Any = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """``BertForPreTraining.forward`` (returns a ``PreTrainingOutput``)."""
        return self.bert(*args, **kwargs)

    def _losses(self, batch: Any) -> dict[str, Tensor]:
        out = self.bert(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        logits = out.prediction_logits  # (B, T, V)
        chosen = batch.labels != -100  # (B, T)
        mlm_sum = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1), ignore_index=-100, reduction="sum"
        )
        nsp_logits = out.seq_relationship_logits  # (B, 2)
        return {
            "mlm_sum": mlm_sum,
            "mlm_count": chosen.sum(),
            "mlm_correct": ((logits.argmax(-1) == batch.labels) & chosen).sum(),
            "nsp_sum": F.cross_entropy(nsp_logits, batch.next_sentence_label, reduction="sum"),
            "nsp_correct": (nsp_logits.argmax(-1) == batch.next_sentence_label).sum(),
            "pairs": torch.tensor(batch.next_sentence_label.numel()),
            "tokens": batch.attention_mask.sum(),
        }

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        s = self._losses(batch)
        mlm = s["mlm_sum"] / s["mlm_count"].clamp(min=1)
        nsp = s["nsp_sum"] / s["pairs"]
        stats = {
            "correct": s["mlm_correct"].detach(),
            "total": s["mlm_count"],
            "tokens": s["tokens"],
            "nsp_correct": s["nsp_correct"],
        }
        return mlm + nsp, stats

    @torch.no_grad()
    def evaluate_batches(self, batches: Iterable[Any]) -> dict[str, float]:
        """``mlm_loss``, ``mlm_accuracy`` (over masked tokens), ``nsp_loss``, ``nsp_accuracy`` and
        ``loss = mlm_loss + nsp_loss`` over fixed batches."""
        device = self.bert.bert.embeddings.word_embeddings.weight.device
        acc = dict.fromkeys(("mlm_sum", "mlm_count", "mlm_correct", "nsp_sum", "nsp_correct", "pairs"), 0.0)
        for batch in batches:
            s = self._losses(batch.to(device))
            for k in acc:
                acc[k] += float(s[k])
        mlm, nsp = acc["mlm_sum"] / max(acc["mlm_count"], 1), acc["nsp_sum"] / max(acc["pairs"], 1)
        return {
            "loss": mlm + nsp,
            "mlm_loss": mlm,
            "mlm_accuracy": acc["mlm_correct"] / max(acc["mlm_count"], 1),
            "nsp_loss": nsp,
            "nsp_accuracy": acc["nsp_correct"] / max(acc["pairs"], 1),
        }

    # -- files ---------------------------------------------------------------------------------------------
    def write_files(self, directory: Path) -> None:
        """Hugging Face ``BertForPreTraining`` files, attnkit keys in ``config.json``, ``tokenizer.json``."""
        _write_dual(
            self,
            self.bert,
            Path(directory),
            {
                "pad_token": "[PAD]",
                "unk_token": "[UNK]",
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
                "mask_token": "[MASK]",
            },
            {"model_input_names": ["input_ids", "token_type_ids", "attention_mask"]},
        )

    def load_weights(self, path: str | os.PathLike[str], tied: dict[str, str] | None = None) -> None:
        """Load ``model.safetensors`` with ``transformers`` BERT names (checked by ``load_hf_tensors``)."""
        load_hf_tensors(self.bert, _read_safetensors(path), where=str(path))

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], map_location: str | torch.device | None = None
    ) -> BertPretrainingModel:
        """Read a directory written by ``save`` (config, weights, ``tokenizer.json``), in eval mode."""
        model = _load_dual(cls, directory, map_location)
        model.bert.tokenizer = model.tokenizer
        return model
