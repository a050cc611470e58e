"""RNN encoder-decoder with optional attention (Cho et al. 2014, Bahdanau et al. 2015, Luong et al. 2015).

Shape legend: ``B`` batch, ``S`` source length, ``T`` target length, ``E`` embedding size,
``D`` decoder state and annotation width (``config.hidden_dim``), ``A`` Bahdanau attention size,
``V`` vocabulary size, ``N`` rows of a decoding step (``N = B * beam_size``).

Encoder: a bidirectional GRU/LSTM of ``D / 2`` units per direction reads the packed source, so padding
never enters it; the annotation of position ``j`` is ``h_j = [fwd h_j; bwd h_j]`` ``(B, S, D)``.
The decoder starts from ``s_0 = tanh(W_init [fwd h_S; bwd h_1])``.

Decoder step ``i`` by ``config.attention`` (the name becomes a module in
:func:`attnkit.layers.factory.build_attention`; the decoder follows the module's type):

- ``none`` (fixed context, Cho et al.): ``c = [fwd h_S; bwd h_1]`` for every step;
  ``s_i = f(s_{i-1}, [E y_{i-1}; c])``; ``o_i = tanh(W_r [s_i; c; E y_{i-1}])``.
- ``bahdanau``: ``e_ij = v^T tanh(W s_{i-1} + U h_j)``, ``a_i = softmax(e_i)``, ``c_i = sum_j a_ij h_j``;
  ``s_i = f(s_{i-1}, [E y_{i-1}; c_i])``; ``o_i = tanh(W_r [s_i; c_i; E y_{i-1}])``.
- ``luong-dot|general|concat`` (global), ``luong-local-m`` and ``luong-local-p``: with input feeding
  (``config.input_feeding=True``, the default), ``s_i = f(s_{i-1}, [E y_{i-1}; o_{i-1}])``; without it,
  ``s_i = f(s_{i-1}, E y_{i-1})``; then ``c_i, a_i = attention(s_i, h)`` and
  ``o_i = tanh(W_c [c_i; s_i])`` (the attentional hidden state).

Then ``p(y_i | y_<i, x) = softmax(W_o o_i)``. Training uses teacher forcing; inference uses
``attnkit.decoding`` (greedy or beam search) through :meth:`Seq2Seq.step`. Every decode returns its
alignment matrix ``a_ij`` (``None`` for ``attention="none"``, which has none). ``luong-local-m`` and
``luong-local-p`` use the ``general`` score inside a window ``[p_i - W, p_i + W]`` (``W = config.local_window``,
the paper's ``D``): local-m's is centred on the decoder step, ``p_i = i`` (0-based, so the first output looks
around the source's ``<sos>``; the step travels in the decoding state as ``step (N,)``, so greedy and beam
search follow it), local-p's on a predicted position, with Gaussian weighting.

Bad input: source tokens outside the vocabulary become ``<unk>`` (``translate`` warns with the count);
``translate`` truncates inputs longer than ``config.max_src_len`` ids (keeping the end token) with a
warning, while ``forward``/``encode`` raise ``ValueError`` for a batch wider than ``max_src_len``.

Example:
    >>> import torch
    >>> cfg = Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=9, embed_dim=8, hidden_dim=16)
    >>> model = Seq2Seq(cfg)
    >>> src = torch.tensor([[5, 6, 7, 2], [5, 6, 2, 0]]); lengths = torch.tensor([4, 3])
    >>> out = model(src, lengths, torch.tensor([[1, 4, 5], [1, 4, 0]]))
    >>> tuple(out.logits.shape), tuple(out.alignments.shape)
    ((2, 3, 9), (2, 3, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnkit.decoding import DecodeOutput, decode
from attnkit.layers.bahdanau import BahdanauAttention
from attnkit.layers.factory import ATTENTION_NAMES, build_attention
from attnkit.layers.luong import LuongAttention
from attnkit.layers.windows import MonotonicWindow
from attnkit.models import _translate
from attnkit.models.base import KitModel
from attnkit.models.outputs import Seq2SeqOutput
from attnkit.storage import register_model

ATTENTIONS: tuple[str, ...] = ATTENTION_NAMES  # "none", "bahdanau", "luong-dot|general|concat", "luong-local-m|p"
CELLS: tuple[str, ...] = ("gru", "lstm")


@dataclass
class Seq2SeqConfig:
    """Configuration of :class:`Seq2Seq` (saved as JSON beside the weights).

    Example:
        >>> Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=9, attention="luong-general").hidden_dim
        128
    """

    src_vocab_size: int = 0  # source vocabulary size (with the special tokens)
    tgt_vocab_size: int = 0  # target vocabulary size (with the special tokens)
    attention: str = "bahdanau"  # one of ATTENTIONS
    cell: str = "gru"  # "gru" or "lstm", for encoder and decoder
    embed_dim: int = 64  # E, source and target embeddings
    hidden_dim: int = 128  # D: decoder state and annotation size; each encoder direction has D / 2 units
    encoder_layers: int = 1  # stacked bidirectional encoder layers
    attention_dim: int = 128  # A, hidden size of the Bahdanau alignment model
    local_window: int = 10  # W, half-width of Luong's local-m/local-p window [p - W, p + W] (the paper's D)
    input_feeding: bool = True  # Luong only: feed o_{i-1} to the decoder cell beside E y_{i-1} (False: E y_{i-1} only)
    dropout: float = 0.0  # on embeddings and the readout o_i
    max_src_len: int = 256  # longer inputs are truncated by translate() with a warning
    max_tgt_len: int = 64  # decoding stops after this many tokens (end token included)
    pad_id: int = 0
    sos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"Expected attention to be one of {ATTENTIONS}. Received: attention={self.attention!r}")
        if not self.input_feeding and not self.attention.startswith("luong-"):
            raise ValueError(f"Expected input_feeding=True for attention={self.attention!r}: input feeding is Luong's "
                             f"(luong-*). Received: input_feeding=False")
        if self.cell not in CELLS:
            raise ValueError(f"Expected cell to be one of {CELLS}. Received: cell={self.cell!r}")
        if self.hidden_dim < 2 or self.hidden_dim % 2:
            raise ValueError(f"Expected hidden_dim to be an even number >= 2 (two encoder directions). "
                             f"Received: hidden_dim={self.hidden_dim}")
        for name in ("src_vocab_size", "tgt_vocab_size", "embed_dim", "attention_dim", "encoder_layers",
                     "max_src_len", "max_tgt_len", "local_window"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Expected {name} >= 1. Received: {name}={getattr(self, name)}")


@register_model
class Seq2Seq(KitModel):
    """Bidirectional RNN encoder + RNN decoder with the attention named in ``config.attention``.

    Args:
        config: a :class:`Seq2SeqConfig`.

    Call arguments (``forward``):
        src: ``(B, S)`` long source ids, padded with ``pad_id``.
        src_lengths: ``(B,)`` number of real source tokens.
        tgt_in: ``(B, T)`` decoder inputs ``[sos, y_1, ..., y_{T-1}]``.
        tgt_out: optional ``(B, T)`` targets ``[y_1, ..., eos]`` (pad ignored) to get ``loss``.

    Returns:
        :class:`Seq2SeqOutput` with ``logits (B, T, V)`` and ``alignments (B, T, S)``.

    Example:
        >>> import torch
        >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=9, attention="luong-local-p",
        ...                               embed_dim=8, hidden_dim=16, local_window=2))
        >>> type(model.attn).__name__, type(model.attn.window).__name__
        ('LuongAttention', 'PredictiveWindow')
        >>> out = model(torch.tensor([[1, 5, 6, 2]]), torch.tensor([4]), torch.tensor([[1, 4, 5]]))
        >>> tuple(out.logits.shape), tuple(out.alignments.shape)
        ((1, 3, 9), (1, 3, 4))
    """

    model_type = "seq2seq"
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__(config)
        c = config
        D, E = c.hidden_dim, c.embed_dim
        rnn = nn.GRU if c.cell == "gru" else nn.LSTM
        cell = nn.GRUCell if c.cell == "gru" else nn.LSTMCell
        self.src_embed = nn.Embedding(c.src_vocab_size, E, padding_idx=c.pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, E, padding_idx=c.pad_id)
        self.encoder = rnn(E, D // 2, num_layers=c.encoder_layers, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(D, D * (2 if c.cell == "lstm" else 1))
        # None, BahdanauAttention or LuongAttention: the config's string becomes objects in one factory
        self.attn: nn.Module | None = build_attention(
            c.attention, D, D, hidden_dim=c.attention_dim, half_width=c.local_window
        )
        self.is_luong = isinstance(self.attn, LuongAttention)
        self.feeds_output = self.is_luong and c.input_feeding  # Luong's input feeding
        self.decoder = cell(E if self.is_luong and not self.feeds_output else E + D, D)
        self.monotonic = self.is_luong and isinstance(self.attn.window, MonotonicWindow)  # local-m: p_i = i
        if self.is_luong:
            self.combine = nn.Linear(2 * D, D, bias=False)  # W_c [c_i; s_i]
        else:
            self.readout = nn.Linear(2 * D + E, D)  # W_r [s_i; c_i; E y_{i-1}]
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(D, c.tgt_vocab_size)  # W_o

    # -- encoder -----------------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        """Run the encoder and build the decoder's initial state.

        Args:
            src: ``(B, S)`` source ids; src_lengths: ``(B,)`` real lengths (0 allowed: empty input).

        Returns:
            The decoder state dict: ``h`` ``(B, D)`` (and ``c`` for LSTM), ``keys`` ``(B, S, D)`` annotations,
            ``mask`` ``(B, S)`` bool (True = real token), plus ``ctx`` ``(B, D)`` for ``none``,
            ``proj`` ``(B, S, A)`` for ``bahdanau``, ``feed`` ``(B, D)`` for Luong with input feeding and
            ``step`` ``(B,)`` long (the decoder step ``i``) for ``luong-local-m``.
        """
        self._check_batch(src, src_lengths)
        B, S = src.shape
        D = self.config.hidden_dim
        emb = self.dropout(self.src_embed(src))  # (B, S, E)
        lengths = src_lengths.clamp(min=1)  # packing needs >= 1; an empty input is masked out below
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        keys, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, D)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        summary = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, D): [fwd h_S; bwd h_1] of the top layer
        mask = torch.arange(S, device=src.device)[None, :] < src_lengths[:, None]  # (B, S)
        summary = summary * (src_lengths > 0)[:, None].to(summary.dtype)
        init = torch.tanh(self.init_state(summary))  # (B, D) or (B, 2D) for LSTM
        state: dict[str, Tensor] = {"keys": keys, "mask": mask}
        if self.config.cell == "lstm":
            state["h"], state["c"] = init[:, :D], init[:, D:]
        else:
            state["h"] = init
        if self.attn is None:
            state["ctx"] = summary  # (B, D) the fixed context
        elif isinstance(self.attn, BahdanauAttention):
            state["proj"] = self.attn.project_keys(keys)  # (B, S, A), U h_j computed once
        elif self.feeds_output:
            state["feed"] = keys.new_zeros(B, D)  # o_0 for input feeding
        if self.monotonic:
            state["step"] = torch.zeros(B, dtype=torch.long, device=src.device)  # p_0 = 0
        return state

    # -- one decoder step ----------------------------------------------------------------------------------
    def advance(self, y_prev: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """One decoder step before the output layer.

        Args:
            y_prev: ``(N,)`` previous target ids; state: as returned by :meth:`encode` (rows ``N``).

        Returns:
            ``(o (N, D), new_state, weights (N, S) or None)`` where ``logits = W_o o``.
        """
        emb = self.dropout(self.tgt_embed(y_prev))  # (N, E)
        new = dict(state)
        weights: Tensor | None = None
        if not self.is_luong:  # no attention (fixed context) or Bahdanau
            if self.attn is None:
                ctx = state["ctx"]
            else:  # e_ij = v^T tanh(W s_{i-1} + U h_j) on the previous state
                ctx, weights = self.attn(state["h"], state["keys"], state["mask"], projected_keys=state["proj"])
            s = self._cell(torch.cat([emb, ctx], dim=-1), state, new)  # (N, D)
            o = torch.tanh(self.readout(torch.cat([s, ctx, emb], dim=-1)))  # (N, D)
        else:  # Luong
            x = torch.cat([emb, state["feed"]], dim=-1) if self.feeds_output else emb  # input feeding or not
            s = self._cell(x, state, new)  # (N, D)
            position = state["step"] if self.monotonic else None  # local-m: p_i = i
            ctx, weights = self.attn(s, state["keys"], state["mask"], position=position)  # on the current state
            o = torch.tanh(self.combine(torch.cat([ctx, s], dim=-1)))  # (N, D) attentional hidden state
            if self.feeds_output:
                new["feed"] = o
            if self.monotonic:
                new["step"] = state["step"] + 1
        return self.dropout(o), new, weights

    def _cell(self, x: Tensor, state: dict[str, Tensor], new: dict[str, Tensor]) -> Tensor:
        if self.config.cell == "lstm":
            new["h"], new["c"] = self.decoder(x, (state["h"], state["c"]))
        else:
            new["h"] = self.decoder(x, state["h"])
        return new["h"]

    def step(self, y_prev: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """The ``attnkit.decoding`` step function: ``(N,) -> (log_probs (N, V), state, weights (N, S))``."""
        o, state, weights = self.advance(y_prev, state)
        return torch.log_softmax(self.out(o), dim=-1), state, weights

    # -- teacher forcing ---------------------------------------------------------------------------------
    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor | None = None) -> Seq2SeqOutput:
        state = self.encode(src, src_lengths)
        outs, alignments = [], []
        for t in range(tgt_in.size(1)):
            o, state, w = self.advance(tgt_in[:, t], state)
            outs.append(o)
            if w is not None:
                alignments.append(w)
        logits = self.out(torch.stack(outs, dim=1))  # (B, T, V)
        attn = torch.stack(alignments, dim=1) if alignments else None  # (B, T, S)
        loss = None
        if tgt_out is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1),
                                   ignore_index=self.config.pad_id)
        return Seq2SeqOutput(logits=logits, alignments=attn, loss=loss)

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        """Loss of one ``attnkit.data.batches.Batch`` and its stats for the trainer.

        Returns:
            ``(loss, {"correct": right target tokens, "total": target tokens, "tokens": source + target tokens})``.
        """
        return _translate.training_step(self, batch)

    # -- inference ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, src: Tensor, src_lengths: Tensor, *, beam_size: int = 1, max_len: int | None = None,
                 length_penalty: float = 1.0) -> DecodeOutput:
        """Decode a batch with greedy (``beam_size=1``) or beam search.

        Returns:
            ``attnkit.decoding.DecodeOutput``: ``tokens (B, T)`` (end token included), ``lengths (B,)``,
            ``alignments (B, T, S)`` (``None`` for ``attention="none"``).
        """
        state = self.encode(src, src_lengths)
        c = self.config
        return decode(self.step, state, batch_size=src.size(0), sos_id=c.sos_id, eos_id=c.eos_id,
                      max_len=max_len or c.max_tgt_len, beam_size=beam_size, pad_id=c.pad_id,
                      length_penalty=length_penalty, device=src.device)

    def encode_texts(self, texts: list[str]) -> tuple[Tensor, Tensor, int, int]:
        """Tokenise ``texts`` with the source tokenizer.

        Returns:
            ``(src (B, S), src_lengths (B,), n_unknown, n_truncated)``: ids are ``[<sos>, t_1, ..., <eos>]``;
            tokens outside the vocabulary become ``unk_id`` (counted in ``n_unknown``); inputs longer than
            ``config.max_src_len`` ids keep their first ``max_src_len - 1`` ids and the end token (counted
            in ``n_truncated``).
        """
        return _translate.encode_texts(self, texts)

    def translate(self, texts: list[str], beam_size: int = 1, return_alignments: bool = False,
                  batch_size: int = 256, length_penalty: float = 1.0) -> list[str] | list[tuple[str, Tensor]]:
        """Translate strings with the saved tokenizers.

        Characters/words outside the source vocabulary become ``<unk>``; a ``UserWarning`` gives their
        count. Inputs longer than ``config.max_src_len`` tokens are truncated with a ``UserWarning``.

        Returns:
            The output strings, or ``(text, alignment)`` pairs with ``return_alignments=True`` where
            ``alignment`` is ``(T_out, S_in)``: one row per output token (end token included), one column
            per source token (``tokenizers["source"].tokens(text)``); ``None`` for ``attention="none"``.

        Example::

            model = attnkit.load("attnkit-demo/model")
            model.translate(["4 de marzo de 2031"])        # ['2031-03-04']
        """
        return _translate.translate(self, texts, beam_size=beam_size, return_alignments=return_alignments,
                                     batch_size=batch_size, length_penalty=length_penalty)

    # -- checks ------------------------------------------------------------------------------------------
    def _check_batch(self, src: Tensor, src_lengths: Tensor) -> None:
        if src.dim() != 2:
            raise ValueError(f"Expected src of shape (B, S). Received: {tuple(src.shape)}")
        if src_lengths.shape != (src.size(0),):
            raise ValueError(f"Expected src_lengths of shape ({src.size(0)},). Received: {tuple(src_lengths.shape)}")
        if src.size(1) > self.config.max_src_len:
            raise ValueError(f"source length {src.size(1)} exceeds max_src_len={self.config.max_src_len}; "
                             f"truncate the input (translate() does so with a warning)")
