"""Show, Attend and Tell (Xu et al. 2015): an image encoder, then an LSTM that looks at one place per word.

Shape legend: ``B`` images, ``N`` rows of a decoding step (``B * beam_size``), ``T`` words, ``C`` encoder
channels, ``gh x gw`` feature grid, ``L = gh * gw`` image regions, ``Da`` annotation width, ``E`` embedding
width, ``D`` LSTM width, ``A`` additive-attention width, ``V`` vocabulary.

1. Encoder (:mod:`attnkit.models.image_encoders`): the image ``(B, 3, S, S)`` -> ``(B, C, gh, gw)``
   (EfficientNet-Lite0's 14 x 14 x 112 map at 224 pixels by default: local features, the paper's grid); each
   cell, projected and given an encoding of its place, is an annotation vector ``a_i = W_a f_i + p_i``
   ``(B, L, Da)`` (the place lets the context say *where*, which the relation words need). The place is
   ``p_i = W_p phi(y_i, x_i)`` with ``phi`` the sines and cosines of the cell centre's coordinates (in
   ``[0, 1]``) at ``PLACE_OCTAVES`` octaves, so that nearby cells get nearby places even where training never
   looked (``place_encoding="fourier"``); ``"table"`` learns one free vector per cell instead. With
   ``place_in="keys"`` the place only enters the attention scores and the context averages ``W_a f_i`` alone.
2. ``h_0 = tanh(W_h mean_i a_i)``, ``c_0 = tanh(W_c mean_i a_i)`` (``init_state="learned"``: a learned start
   state, so that the objects reach the decoder only through its attention).
3. Step ``t`` (the additive score of ``attnkit.layers.BahdanauAttention``):
   ``e_ti = w_v^T tanh(W_q h_{t-1} + W_k a_i)``, ``alpha_t = softmax(e_t)`` over the ``L`` regions (row ``t``
   of the alignments);
   soft: ``z_t = beta_t sum_i alpha_ti a_i`` with the gate ``beta_t = sigmoid(f_beta(h_{t-1}))``;
   hard: ``z_t = beta_t a_{s_t}``, ``s_t ~ Categorical(alpha_t)`` in training (argmax otherwise), drawn by
   :func:`attnkit.functional.hard.hard_pick` (hard attention over the weights ``alpha_t``); a share
   ``expected_share`` of the captions of a training batch uses the soft context instead (the paper's trick,
   section 4.1), and each other caption is read ``hard_samples`` times on its own sampled locations;
   uniform (no attention, a baseline): ``z_t = beta_t mean_i a_i``. ``attention_mode`` chooses.
4. ``(h_t, c_t) = LSTM([E y_{t-1}; z_t], (h_{t-1}, c_{t-1}))``;
   ``p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t))`` (the paper's deep output).

Losses: cross-entropy plus the doubly stochastic penalty (soft), or the REINFORCE surrogate with a
leave-one-out baseline over a caption's samples and an entropy bonus (hard); see
:mod:`attnkit.models.captioner_losses`. Decoding (greedy or beam, always ending by ``max_len``) goes through
:func:`attnkit.decoding.decode`; every word comes with its ``alpha_t``, an attention map ``(gh, gw)``. The parts the config chooses (place encoding, where the place
enters, the start state, soft or hard) are built once in ``__init__`` from :mod:`attnkit.models.captioner_parts`.

Example:
    >>> import torch
    >>> cfg = CaptionerConfig(vocab_size=9, encoder="small-cnn", image_size=32, grid=2, cnn_channels=8,
    ...                       annotation_dim=6, embed_dim=5, hidden_dim=7, attention_dim=4)
    >>> model = Captioner(cfg)
    >>> feats = model.frozen_features(torch.rand(2, 3, 32, 32))   # cacheable part of the encoder
    >>> out = model(feats, torch.tensor([[1, 4, 5], [1, 6, 0]]))
    >>> tuple(out.logits.shape), tuple(out.alignments.shape)            # (B, T, V), (B, T, L)
    ((2, 3, 9), (2, 3, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.decoding import DecodeOutput, decode
from attnkit.layers.bahdanau import BahdanauAttention
from attnkit.models import captioner_io
from attnkit.models.base import KitModel
from attnkit.models.captioner_losses import (
    REWARDS,
    advantages,
    attention_entropy,
    doubly_stochastic_penalty,
    hard_weights,
    reinforce_loss,
)
from attnkit.models.captioner_parts import (
    ATTENTION_MODES,
    INIT_STATES,
    PLACE_ENCODINGS,
    PLACE_IN,
    UniformMode,
    attention_mode,
)
from attnkit.models.image_encoders import ENCODERS, FEATURE_STRIDES, build_encoder
from attnkit.models.outputs import CaptionerOutput
from attnkit.storage import register_model


@dataclass
class CaptionerConfig:
    """Configuration of :class:`Captioner` (saved as JSON beside the weights).

    Example:
        >>> CaptionerConfig(vocab_size=20, encoder="small-cnn").regions, CaptionerConfig(vocab_size=20).grid_size
        (49, (14, 14))
    """

    vocab_size: int = 0  # V, with the special tokens
    encoder: str = "efficientnet-lite0"  # one of ENCODERS
    attention_mode: str = "soft"  # "soft" (the expected context), "hard" (one sampled region) or "uniform" (the mean)
    image_size: int = 224  # S: images are resized to S x S (a multiple of 32 for EfficientNet)
    grid: int = 7  # small-cnn's grid side; EfficientNet's is image_size // feature_stride
    feature_stride: int = 16  # EfficientNet: 16 = the 14 x 14 x 112 map at 224 px (local), 32 = the 7 x 7 x 1280 one
    cnn_channels: int = 128  # small-cnn's C
    fine_tune_last_block: bool = False  # EfficientNet: train its last block and head (else frozen)
    annotation_dim: int = 256  # Da, width of the annotation vectors a_i
    embed_dim: int = 128  # E, word embeddings (and the deep output)
    hidden_dim: int = 256  # D, LSTM state
    attention_dim: int = 256  # A, additive attention
    dropout: float = 0.3  # before the output layer
    doubly_stochastic: float = 0.01  # lambda of the penalty (soft); per-word CE here, so ~ the paper's lambda / T
    sharpness: float = 0.0  # soft: + sharpness * mean entropy of alpha_t over real words (favours one place)
    reinforce_weight: float = 0.1  # lambda_r (hard attention), reached after reinforce_warmup training steps
    entropy_weight: float = 0.01  # lambda_e (hard attention) at the start, halved every entropy_half_life steps
    reinforce_warmup: int = 100  # hard attention: lambda_r grows linearly from 0 over this many steps (0: at once)
    entropy_half_life: int = 0  # hard attention: 0 keeps lambda_e constant
    expected_share: float = 0.5  # hard attention: share of training captions that use the expected context
    hard_samples: int = 4  # K: hard attention reads each other caption K times (leave-one-out baseline)
    reward: str = "caption"  # hard attention: "caption" (log p(y)), "word" (log p(y_t)) or "to_go"; REWARDS
    normalize_advantage: bool = True  # hard attention: divide the advantages by their sd over the batch
    init_state: str = "mean"  # "mean": h_0, c_0 from the mean annotation (the paper); "learned": a learned start
    place_in: str = "annotation"  # place embeddings in "annotation" (keys and context) or only in the "keys"
    place_encoding: str = "fourier"  # p_i: "fourier" = W_p of the centre's sin/cos features; "table" = free vectors
    max_len: int = 20  # decoding stops after this many tokens (end token included)
    pad_id: int = 0
    sos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3
    #: Fields renamed since attnkit 0.1.0 (old -> new): an old config.json gets one line naming both.
    renamed_fields: ClassVar[dict[str, str]] = {"attention": "attention_mode"}

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"Expected encoder in {ENCODERS}. Received: encoder={self.encoder!r}")
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"Expected attention_mode in {ATTENTION_MODES}. Received: "
                             f"attention_mode={self.attention_mode!r}")
        for name in ("vocab_size", "image_size", "grid", "cnn_channels", "annotation_dim", "embed_dim",
                     "hidden_dim", "attention_dim", "max_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Expected {name} >= 1. Received: {name}={getattr(self, name)}")
        if self.feature_stride not in FEATURE_STRIDES:
            raise ValueError(f"Expected feature_stride in {FEATURE_STRIDES}. Received: {self.feature_stride}")
        for name, table in (("place_encoding", PLACE_ENCODINGS), ("init_state", INIT_STATES), ("place_in", PLACE_IN)):
            if getattr(self, name) not in table:
                raise ValueError(f"Expected {name} in {tuple(table)}. Received: {name}={getattr(self, name)!r}")
        if not 0 <= self.expected_share <= 1 or int(self.hard_samples) < 2 or self.reward not in REWARDS:
            raise ValueError(f"Expected expected_share in [0, 1], hard_samples >= 2 (each sample's baseline is "
                             f"the mean of the others) and reward in {REWARDS}. Received: {self.expected_share}, "
                             f"{self.hard_samples}, {self.reward!r}")
        if min(self.reinforce_warmup, self.entropy_half_life) < 0:
            raise ValueError(f"Expected reinforce_warmup and entropy_half_life >= 0. Received: "
                             f"{self.reinforce_warmup}, {self.entropy_half_life}")

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(gh, gw)`` of the encoder's feature map."""
        side = self.image_size // self.feature_stride if self.encoder == "efficientnet-lite0" else self.grid
        return side, side

    @property
    def regions(self) -> int:
        """``L = gh * gw``."""
        gh, gw = self.grid_size
        return gh * gw



@register_model
class Captioner(KitModel):
    """Show, Attend and Tell with soft or hard attention (see the module docstring).

    Args:
        config: a :class:`CaptionerConfig`.

    Call arguments (``forward``):
        features: ``(B, ...)`` from :meth:`frozen_features` (the cacheable part of the encoder).
        tgt_in: ``(B, T)`` ``[sos, y_1, ..., y_{T-1}]``; tgt_out: optional ``(B, T)`` targets for the loss.

    Returns:
        :class:`CaptionerOutput`.
    """

    model_type = "captioner"
    config_class = CaptionerConfig

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, image_size=c.image_size, grid=c.grid, channels=c.cnn_channels,
                                     fine_tune_last_block=c.fine_tune_last_block, stride=c.feature_stride)
        Da, D, E = c.annotation_dim, c.hidden_dim, c.embed_dim
        self.grid_size = c.grid_size  # (gh, gw) of the encoder's feature map
        self.project = nn.Linear(self.encoder.out_channels, Da)  # W_a
        self.places = PLACE_ENCODINGS[c.place_encoding](c.grid_size, Da)  # () -> p_i (L, Da)
        self.context_source = PLACE_IN[c.place_in]  # what the context averages: W_a f_i + p_i, or W_a f_i
        self.state_source = INIT_STATES[c.init_state]  # (B, L, Da) -> (B, Da) that h_0, c_0 are read from
        self.mode = attention_mode(c.attention_mode, c.expected_share, c.hard_samples)  # soft or hard context
        self.init_h, self.init_c = nn.Linear(Da, D), nn.Linear(Da, D)
        self.attn = BahdanauAttention(query_size=D, key_size=Da, hidden_dim=c.attention_dim)
        self.f_beta = nn.Linear(D, 1)
        self.embed = nn.Embedding(c.vocab_size, E, padding_idx=c.pad_id)
        self.lstm = nn.LSTMCell(E + Da, D)
        self.out_h, self.out_z = nn.Linear(D, E), nn.Linear(Da, E)  # L_h, L_z
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(E, c.vocab_size)  # L_o
        if c.attention_mode == "hard":  # training steps taken, for the schedules of lambda_r and lambda_e
            self.register_buffer("hard_steps", torch.zeros((), dtype=torch.long))

    # -- encoder ---------------------------------------------------------------------------------------
    def frozen_features(self, images: Tensor) -> Tensor:
        """The encoder's part without trainable parameters: ``(B, 3, S, S)`` in ``[0, 1]`` -> features.

        Computed without gradients; a recipe may cache it once per image set and train on the cache.
        """
        with torch.no_grad():
            return self.encoder.frozen(images)

    def encode(self, features: Tensor) -> dict[str, Tensor]:
        """Annotation vectors and the initial decoder state.

        Returns:
            ``{"a": (B, L, Da), "proj": (B, L, A) = W_k a, "h": (B, D), "c": (B, D)}``.
        """
        fmap = self.encoder.trainable(features)  # (B, C, gh, gw)
        if fmap.shape[-2:] != self.grid_size:
            raise ValueError(f"Expected a {self.grid_size} feature grid (image_size "
                             f"{self.config.image_size}). Received: {tuple(fmap.shape[-2:])}")
        what = self.project(fmap.flatten(2).transpose(1, 2))  # (B, L, Da): W_a f_i
        keys = what + self.places()  # (B, L, Da): where the scores look
        a = self.context_source(what, keys)  # (B, L, Da): what the context averages
        start = self.state_source(a)  # (B, Da)
        return {"a": a, "proj": self.attn.project_keys(keys), "h": torch.tanh(self.init_h(start)),
                "c": torch.tanh(self.init_c(start))}

    # -- one step ----------------------------------------------------------------------------------------
    def advance(self, y_prev: Tensor, state: dict[str, Tensor], expected: Tensor | None = None
                ) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor | None]:
        """One decoder step before the softmax.

        Args:
            y_prev: ``(N,)`` previous words; state: from :meth:`encode` (rows ``N``).
            expected: hard attention in training: ``(N,)`` bool, rows that take the expected context
                (from ``self.mode.rows_on_expected``).

        Returns:
            ``(logits (N, V), new_state, alignment alpha_t (N, L), log p(s_t) (N,) or None)``.
        """
        h, a, proj = state["h"], state["a"], state["proj"]
        expected_context, alignment = self.attn(h, a, projected_keys=proj)  # (N, Da), (N, L): sum_i alpha_i a_i
        context, sample_lp = self.mode.context(self.attn, h, {**state, "alpha": alignment}, expected_context,
                                               expected, self.training)  # hard: s_t ~ alpha_t
        if isinstance(self.mode, UniformMode):  # no attention: every region weighs 1 / L
            alignment = torch.full_like(alignment, 1.0 / alignment.shape[-1])
        z = torch.sigmoid(self.f_beta(h)) * context  # (N, Da), gated by beta_t
        emb = self.embed(y_prev)  # (N, E)
        h, c = self.lstm(torch.cat([emb, z], dim=-1), (h, state["c"]))
        logits = self.out(self.dropout(emb + self.out_h(h) + self.out_z(z)))  # (N, V)
        return logits, {**state, "h": h, "c": c}, alignment, sample_lp

    def step(self, y_prev: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The ``attnkit.decoding`` step function: ``(N,) -> (log_probs (N, V), state, alignment (N, L))``."""
        logits, state, alignment, _ = self.advance(y_prev, state)
        return torch.log_softmax(logits, dim=-1), state, alignment

    # -- teacher forcing ---------------------------------------------------------------------------------
    def forward(self, features: Tensor, tgt_in: Tensor, tgt_out: Tensor | None = None) -> CaptionerOutput:
        """Teacher-forced pass. Hard attention in training with ``tgt_out``: the output's rows are the ``B``
        captions, then ``K - 1`` more samples of each caption not on the expected context (``N`` rows)."""
        state = self.encode(features)
        B, T = tgt_in.shape
        expected = self.mode.rows_on_expected(B, tgt_in.device, self.training)  # (B,) or None
        rows = None
        if expected is not None and tgt_out is not None:  # hard attention's loss: K samples per sampled caption
            rows = self.mode.training_rows(expected)  # (N,) the caption of each row
            state = {k: v[rows] for k, v in state.items()}
            tgt_in, tgt_out, expected = tgt_in[rows], tgt_out[rows], expected[rows]
        logits, alignments, sample_lps = [], [], []
        for t in range(T):
            lg, state, alignment, lp = self.advance(tgt_in[:, t], state, expected)
            logits.append(lg)
            alignments.append(alignment)
            if lp is not None:
                sample_lps.append(lp)
        out = CaptionerOutput(torch.stack(logits, 1), torch.stack(alignments, 1),  # (B, T, V), (B, T, L)
                              sample_log_probs=torch.stack(sample_lps, 1) if sample_lps else None)
        if tgt_out is not None:
            out.loss = self._loss(out, tgt_out, expected, rows)
        return out

    def _loss(self, out: CaptionerOutput, tgt_out: Tensor, expected: Tensor | None, rows: Tensor | None) -> Tensor:
        """Cross-entropy + doubly stochastic penalty (soft), or the REINFORCE surrogate (hard, training)."""
        c = self.config
        mask = tgt_out != c.pad_id  # (B, T)
        if rows is None:  # soft attention, or hard attention outside training
            ce = F.cross_entropy(out.logits.transpose(1, 2), tgt_out, ignore_index=c.pad_id)
            loss = ce + doubly_stochastic_penalty(out.alignments, mask, c.doubly_stochastic)
            if c.sharpness:  # lambda_h * mean_{b,t real} H(alpha_bt)
                loss = loss + c.sharpness * (attention_entropy(out.alignments) * mask).sum() / mask.sum().clamp_min(1)
            return loss
        token_lp = torch.log_softmax(out.logits, -1).gather(-1, tgt_out[..., None])[..., 0]  # (N, T)
        sampled = ~expected  # (N,)
        weight = torch.where(sampled, 1.0 / c.hard_samples, 1.0).to(token_lp.dtype)  # (N,): w_r
        adv = advantages(token_lp, mask, sampled, rows, c.reward, c.normalize_advantage)  # (N, T)
        lam_r, lam_e = hard_weights(int(self.hard_steps), c.reinforce_weight, c.entropy_weight, c.reinforce_warmup,
                                    c.entropy_half_life)
        self.hard_steps += 1
        return reinforce_loss(token_lp, out.sample_log_probs, attention_entropy(out.alignments), mask, adv, weight,
                              sampled, lam_r, lam_e)

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        """Loss of one ``attnkit.data.captions.CaptionBatch`` and its word counts for the trainer.

        Returns:
            ``(loss, {"correct": right words, "total": words, "tokens": words})``.
        """
        out = self(batch.features, batch.tgt_in, batch.tgt_out)
        real = batch.tgt_out != self.config.pad_id
        logits = out.logits[: batch.tgt_out.size(0)]  # (B, T, V): hard attention adds rows after the batch's
        correct = float(((logits.argmax(-1) == batch.tgt_out) & real).sum())
        total = float(real.sum())
        return out.loss, {"correct": correct, "total": total, "tokens": total}

    # -- inference ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, features: Tensor, *, beam_size: int = 1, max_len: int | None = None,
                 length_penalty: float = 1.0) -> DecodeOutput:
        """Greedy (``beam_size=1``) or beam search through ``attnkit.decoding``.

        Returns:
            ``DecodeOutput``: ``tokens (B, T)`` (end token included), ``alignments (B, T, L)``.
        """
        c = self.config
        state = self.encode(features)
        return decode(self.step, state, batch_size=features.size(0), sos_id=c.sos_id, eos_id=c.eos_id,
                      max_len=max_len or c.max_len, beam_size=beam_size, pad_id=c.pad_id,
                      length_penalty=length_penalty, device=features.device)

    def caption(self, images: Any, beam_size: int = 1, return_alignments: bool = False,
                batch_size: int = 32) -> list[str] | list[tuple[str, Tensor]]:
        """Caption images: paths, Pillow images, arrays ``(H, W[, C])`` or a tensor ``(B, 3, H, W)`` in [0, 1].

        Returns:
            One caption per image, or ``(caption, alignments)`` pairs with ``return_alignments=True``, where
            ``alignments`` is ``(T, gh, gw)`` on the CPU: one map per word of the caption (end token excluded;
            the words are :meth:`caption_words` of the caption).

        Example::

            model = attnkit.load("runs/captioner/model")
            model.caption(["photo.jpg"])                       # ['the cat to the left of the rocket']
        """
        results = captioner_io.describe(self, images, beam_size=beam_size, batch_size=batch_size)
        if return_alignments:
            return [(r.text, r.alignments) for r in results]
        return [r.text for r in results]

    def caption_words(self, images: Any, beam_size: int = 1) -> list[captioner_io.Described]:
        """Per image: the caption, its words and its alignments, one map ``(gh, gw)`` per word."""
        return captioner_io.describe(self, images, beam_size=beam_size)


__all__ = ["ATTENTION_MODES", "Captioner", "CaptionerConfig"]
