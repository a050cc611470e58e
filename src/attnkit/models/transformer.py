"""The encoder-decoder Transformer (Vaswani et al. 2017, "Attention is all you need").

Shape legend: ``B`` batch, ``S`` source length, ``T`` target length (decoder positions of this call),
``D`` model width (``config.d_model``), ``H`` heads, ``Dh = D / H`` head width, ``F`` feed-forward width,
``V`` vocabulary size, ``L`` layers, ``N`` rows of a decoding state (``B``, or ``B * K`` in beam search).

Encoder layer (post-LN, the paper's section 3.1; ``norm="pre"`` moves each LayerNorm inside the branch)::

    x = LN(x + Dropout(MultiHead(x, x, x)))             self-attention, source padding masked
    x = LN(x + Dropout(FFN(x)))                         FFN(x) = max(0, x W_1 + b_1) W_2 + b_2

Decoder layer::

    y = LN(y + Dropout(MultiHead(y, y, y)))             causal: position t sees positions <= t
    y = LN(y + Dropout(MultiHead(y, m, m)))             cross-attention to the encoder output m
    y = LN(y + Dropout(FFN(y)))

Inputs are ``Dropout(sqrt(D) * Embed(ids) + PE)`` with sinusoidal or learned positions ``PE``; the output
is ``softmax(y W_out^T + b)``, where ``W_out`` may be the target embedding (``share_embeddings="decoder"``)
or the one embedding of a shared source/target vocabulary (``"all"``, section 3.4). With pre-LN a final
LayerNorm closes each stack.

Training is teacher forcing: the decoder reads ``tgt_in = [<sos>, y_1, ..., y_n]`` and predicts
``tgt_out = [y_1, ..., y_n, <eos>]`` at every position at once (the causal mask keeps it honest); the
loss is cross-entropy with label smoothing (section 5.4). Inference runs the decoder one token at a time
through :meth:`Transformer.step` (the ``attnkit.decoding`` step protocol) with each layer's keys and
values cached, greedy or beam; the cached path gives the same numbers as recomputing the whole prefix
(``generate(..., use_cache=False)``), which the tests check.

Alignments (``translate(..., return_alignments=True)``, ``generate().alignments``): the cross-attention
weights of the **last** decoder layer, averaged over its heads, one row per output token ``(T, S)``.

Example (the course's example: ``<sos> Me gustan los nachos <eos>`` -> ``I like nachos <eos>``):
    >>> import torch
    >>> src_vocab = {"<pad>": 0, "<sos>": 1, "<eos>": 2, "<unk>": 3, "Me": 4, "gustan": 5, "los": 6, "nachos": 7}
    >>> tgt_vocab = {"<pad>": 0, "<sos>": 1, "<eos>": 2, "<unk>": 3, "I": 4, "like": 5, "nachos": 6}
    >>> src = torch.tensor([[src_vocab[w] for w in "<sos> Me gustan los nachos <eos>".split()]])   # (1, 6)
    >>> tgt = [tgt_vocab[w] for w in "<sos> I like nachos <eos>".split()]
    >>> tgt_in, tgt_out = torch.tensor([tgt[:-1]]), torch.tensor([tgt[1:]])  # <sos> I like nachos -> I like nachos <eos>
    >>> cfg = TransformerConfig(src_vocab_size=8, tgt_vocab_size=7, d_model=16, num_heads=2,
    ...                         encoder_layers=1, decoder_layers=1, ff_dim=32)
    >>> model = Transformer(cfg)
    >>> out = model(src, torch.tensor([6]), tgt_in, tgt_out)
    >>> tuple(out.logits.shape), out.loss.dim()
    ((1, 4, 7), 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.decoding import DecodeOutput, decode
from attnkit.layers.kv_cache import KVCache
from attnkit.layers.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from attnkit.models import _translate as translation
from attnkit.models._checks import check_ids, lengths_mask
from attnkit.models.base import KitModel
from attnkit.models.blocks import ACTIVATIONS, block_class, new_caches, run_blocks
from attnkit.models.outputs import TransformerOutput
from attnkit.storage import register_model

NORMS: tuple[str, ...] = ("post", "pre")
POSITIONALS: tuple[str, ...] = ("sinusoidal", "learned")
SHARINGS: tuple[str, ...] = ("none", "decoder", "all")


@dataclass
class TransformerConfig:
    """Configuration of :class:`Transformer` (saved as JSON beside the weights).

    The defaults are the paper's base model (6 + 6 layers, width 512, 8 heads, FFN 2048, dropout and
    label smoothing 0.1, post-LN, sinusoidal positions); small tasks want far smaller sizes.
    """

    src_vocab_size: int = 0  # source vocabulary size (with the special tokens)
    tgt_vocab_size: int = 0  # target vocabulary size (with the special tokens)
    d_model: int = 512  # D, width of embeddings and of every layer's output
    num_heads: int = 8  # H; d_model must be divisible by it
    encoder_layers: int = 6  # N of the encoder stack
    decoder_layers: int = 6  # N of the decoder stack
    ff_dim: int = 2048  # F, inner width of the position-wise feed-forward network
    activation: str = "relu"  # FFN activation (a key of attnkit.models.blocks.ACTIVATIONS)
    dropout: float = 0.1  # on embeddings + positions and on every sub-layer output (P_drop)
    attention_dropout: float = 0.0  # on the attention weights (not in the paper)
    label_smoothing: float = 0.1  # epsilon_ls of the training loss
    norm: str = "post"  # "post" (the paper: LN(x + sublayer(x))) or "pre" (x + sublayer(LN(x)), final LN)
    positional: str = "sinusoidal"  # "sinusoidal" (fixed) or "learned" (a table of max_*_len positions)
    share_embeddings: str = "none"  # "none", "decoder" (target embedding = output matrix), "all" (one vocabulary)
    scale_embeddings: bool = True  # multiply embeddings by sqrt(d_model) (section 3.4)
    layer_norm_eps: float = 1e-5  # epsilon of every LayerNorm
    max_src_len: int = 256  # longest source (position table); translate() truncates longer inputs with a warning
    max_tgt_len: int = 64  # longest target (position table); decoding stops after this many tokens
    pad_id: int = 0
    sos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "num_heads", "encoder_layers",
                     "decoder_layers", "ff_dim", "max_src_len", "max_tgt_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Expected TransformerConfig.{name} an int >= 1. Received: {name}={value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"Expected d_model divisible by num_heads. "
                             f"Received: d_model={self.d_model}, num_heads={self.num_heads}")
        for name, allowed in (("norm", NORMS), ("positional", POSITIONALS), ("share_embeddings", SHARINGS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Expected {name} to be one of {allowed}. Received: {name}={getattr(self, name)!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Expected activation in {sorted(ACTIVATIONS)}. Received: activation={self.activation!r}")
        for name in ("dropout", "attention_dropout", "label_smoothing"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"Expected {name} in [0, 1). Received: {name}={getattr(self, name)!r}")
        if self.share_embeddings == "all" and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"Expected share_embeddings='all' with one vocabulary (src_vocab_size == "
                             f"tgt_vocab_size). Received: src_vocab_size={self.src_vocab_size}, "
                             f"tgt_vocab_size={self.tgt_vocab_size}")


@register_model
class Transformer(KitModel):
    """Encoder-decoder Transformer with the options of :class:`TransformerConfig`.

    Args:
        config: a :class:`TransformerConfig`.

    Call arguments (``forward``):
        src: ``(B, S)`` long source ids, padded with ``pad_id``.
        src_lengths: ``(B,)`` number of real source tokens (0 allowed: the decoder then sees zero memory).
        tgt_in: ``(B, T)`` decoder inputs ``[sos, y_1, ..., y_{T-1}]``.
        tgt_out: optional ``(B, T)`` targets ``[y_1, ..., eos]`` (pad ignored) to get ``loss``.
        output_attentions: also return every layer's per-head weights and the alignments.

    Returns:
        :class:`TransformerOutput` with ``logits (B, T, V)``.

    Raises:
        ValueError: token ids outside the vocabulary, sources longer than ``max_src_len`` or targets longer
            than ``max_tgt_len`` (the position tables), mismatched shapes.
    """

    model_type = "transformer"
    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        c = config
        D = c.d_model
        self.src_embed = nn.Embedding(c.src_vocab_size, D, padding_idx=c.pad_id)
        self.tgt_embed = self.src_embed if c.share_embeddings == "all" else nn.Embedding(
            c.tgt_vocab_size, D, padding_idx=c.pad_id)
        for emb in (self.src_embed, self.tgt_embed):  # N(0, D^-1/2): sqrt(D) * embedding has unit variance
            nn.init.normal_(emb.weight, std=D ** -0.5)
            with torch.no_grad():
                emb.weight[c.pad_id].zero_()
        if c.positional == "learned":
            self.src_pos: nn.Module = LearnedPositionalEmbedding(c.max_src_len, D)
            self.tgt_pos: nn.Module = LearnedPositionalEmbedding(c.max_tgt_len, D)
        else:
            self.src_pos = self.tgt_pos = SinusoidalPositionalEncoding(D)
        self.dropout = nn.Dropout(c.dropout)
        block = block_class(c.norm)  # PostNormBlock (the paper) or PreNormBlock
        sizes = dict(d_model=D, num_heads=c.num_heads, ff_dim=c.ff_dim, activation=c.activation, dropout=c.dropout,
                     attention_dropout=c.attention_dropout, eps=c.layer_norm_eps)
        self.encoder = nn.ModuleList(block(**sizes) for _ in range(c.encoder_layers))
        self.decoder = nn.ModuleList(block(**sizes, cross_attention=True) for _ in range(c.decoder_layers))
        pre = c.norm == "pre"
        self.encoder_norm = nn.LayerNorm(D, eps=c.layer_norm_eps) if pre else nn.Identity()
        self.decoder_norm = nn.LayerNorm(D, eps=c.layer_norm_eps) if pre else nn.Identity()
        self.out = nn.Linear(D, c.tgt_vocab_size)
        if c.share_embeddings != "none":
            self.out.weight = self.tgt_embed.weight  # tied: W_out = target embedding (section 3.4)

    # -- checks ------------------------------------------------------------------------------------------
    def _embed(self, ids: Tensor, embed: nn.Embedding, pos: nn.Module, offset: int = 0) -> Tensor:
        x = embed(ids)  # (B, T, D)
        if self.config.scale_embeddings:
            x = x * math.sqrt(self.config.d_model)
        return self.dropout(pos(x, offset=offset))

    # -- encoder -----------------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor, return_weights: bool = False
               ) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
        """Run the encoder stack.

        Args:
            src: ``(B, S)`` source ids; src_lengths: ``(B,)`` real lengths.

        Returns:
            ``(memory (B, S, D), src_mask (B, S) bool, per-layer weights (B, H, S, S) if return_weights)``.
        """
        c = self.config
        check_ids(src, "src", c.src_vocab_size, "the vocabulary size", c.max_src_len, "max_src_len")
        src_mask = lengths_mask(src_lengths, src.size(0), src.size(1), src.device)  # (B, S)
        x = self._embed(src, self.src_embed, self.src_pos)
        x, _, weights, _ = run_blocks(self.encoder, x, key_mask=src_mask, return_weights=return_weights)
        return self.encoder_norm(x), src_mask, weights

    # -- decoder -----------------------------------------------------------------------------------------
    def decode_states(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor, caches: dict[str, list[KVCache]]
                      | None = None, offset: int = 0, return_weights: bool | Literal["alignment"] = False
                      ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """Run the decoder stack on target positions ``[offset, offset + T)``.

        Args:
            tgt_in: ``(B, T)`` target ids; memory: ``(B, S, D)``; src_mask: ``(B, S)``.
            caches: ``{"self": [KVCache per layer], "cross": [static KVCache per layer]}`` for step-by-step
                decoding, or None.
            offset: position of ``tgt_in[:, 0]`` (the number of cached positions).
            return_weights: True returns every layer's self- and cross-attention weights; ``"alignment"`` only
                the last layer's cross weights (one tensor in the cross tuple), the other attentions keeping
                the fused no-weights path.

        Returns:
            ``(hidden (B, T, D), self weights per layer, cross weights per layer)`` (weights if asked).
        """
        c = self.config
        check_ids(tgt_in, "tgt_in", c.tgt_vocab_size, "the vocabulary size", c.max_tgt_len, "max_tgt_len")
        if offset + tgt_in.size(1) > c.max_tgt_len:
            raise ValueError(f"Expected target positions below max_tgt_len={c.max_tgt_len} (the position table). "
                             f"Received: offset {offset} + {tgt_in.size(1)} new positions")
        y = self._embed(tgt_in, self.tgt_embed, self.tgt_pos, offset)
        w_self, w_cross = [], []
        every = return_weights is True
        last = len(self.decoder) - 1
        for i, block in enumerate(self.decoder):
            y, ws, wc = block(y, causal=True, memory=memory, memory_mask=src_mask,
                              return_weights=every or (return_weights == "alignment" and i == last),
                              cache=None if caches is None else caches["self"][i],
                              cross_cache=None if caches is None else caches["cross"][i])
            w_self += [ws] if every else []
            w_cross += [wc] if wc is not None else []
        return self.decoder_norm(y), tuple(w_self), tuple(w_cross)

    # -- teacher forcing ---------------------------------------------------------------------------------
    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor | None = None,
                output_attentions: bool = False) -> TransformerOutput:
        memory, src_mask, w_enc = self.encode(src, src_lengths, output_attentions)
        if tgt_in.dim() != 2 or tgt_in.size(0) != src.size(0):
            raise ValueError(f"Expected tgt_in of shape ({src.size(0)}, T). Received: {tuple(tgt_in.shape)}")
        hidden, w_self, w_cross = self.decode_states(tgt_in, memory, src_mask, return_weights=output_attentions)
        logits = self.out(hidden)  # (B, T, V)
        loss = None
        if tgt_out is not None:
            if tgt_out.shape != tgt_in.shape:
                raise ValueError(f"Expected tgt_out of the shape of tgt_in {tuple(tgt_in.shape)}. "
                                 f"Received: {tuple(tgt_out.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1),
                                   ignore_index=self.config.pad_id, label_smoothing=self.config.label_smoothing)
        out = TransformerOutput(logits=logits, loss=loss, encoder_last_hidden_state=memory)
        if output_attentions:
            out.alignments = w_cross[-1].mean(dim=1)  # (B, T, S)
            out.encoder_attentions, out.decoder_attentions, out.cross_attentions = w_enc, w_self, w_cross
        return out

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        """Loss of one ``attnkit.data.batches.Batch`` and its stats for the trainer.

        Returns:
            ``(loss, {"correct": right target tokens, "total": target tokens, "tokens": source + target tokens})``.
        """
        return translation.training_step(self, batch)

    # -- step-by-step decoding ---------------------------------------------------------------------------
    def start_state(self, src: Tensor, src_lengths: Tensor, use_cache: bool = True,
                    capacity: int | None = None) -> dict[str, Any]:
        """Encode and build the decoding state (every tensor has the rows on dim 0, as ``decoding`` needs).

        Returns:
            ``{"memory": (B, S, D), "src_mask": (B, S)}`` plus, with ``use_cache``, ``"caches"``: one
            :class:`KVCache` per layer for the self-attention (``capacity`` positions preallocated) and one
            static one for the cross-attention (the encoder output, projected at the first step); without
            it, ``"prefix"`` ``(B, 0)``.
        """
        memory, src_mask, _ = self.encode(src, src_lengths)
        state: dict[str, Any] = {"memory": memory, "src_mask": src_mask}
        if not use_cache:
            state["prefix"] = src.new_zeros(src.size(0), 0)
            return state
        n = len(self.decoder)
        state["caches"] = {"self": new_caches(n, capacity), "cross": [KVCache(static=True) for _ in range(n)]}
        return state

    def step(self, y_prev: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any], Tensor]:
        """The ``attnkit.decoding`` step function: ``(N,) -> (log_probs (N, V), state, alignment (N, S))``.

        With cached keys/values only the new token goes through the decoder; without (a ``prefix`` in the
        state) the whole prefix is recomputed and the last position taken: the two give equal numbers.
        """
        if "prefix" in state:
            prefix = torch.cat([state["prefix"], y_prev[:, None]], dim=1)  # (N, t + 1)
            hidden, _, w_cross = self.decode_states(prefix, state["memory"], state["src_mask"],
                                                 return_weights="alignment")
            return (torch.log_softmax(self.out(hidden[:, -1]), dim=-1), dict(state, prefix=prefix),
                    w_cross[-1][:, :, -1].mean(dim=1))  # (N, S)
        caches = state["caches"]
        offset = caches["self"][0].length
        hidden, _, w_cross = self.decode_states(y_prev[:, None], state["memory"], state["src_mask"], caches,
                                                offset, return_weights="alignment")
        return torch.log_softmax(self.out(hidden[:, 0]), dim=-1), state, w_cross[-1][:, :, 0].mean(dim=1)

    @torch.no_grad()
    def generate(self, src: Tensor, src_lengths: Tensor, *, beam_size: int = 1, max_len: int | None = None,
                 length_penalty: float = 1.0, use_cache: bool = True) -> DecodeOutput:
        """Decode a batch with greedy (``beam_size=1``) or beam search.

        Args:
            max_len: most output tokens (end token included), at most ``config.max_tgt_len``.
            use_cache: reuse each layer's keys and values (False recomputes the prefix at every step).

        Returns:
            ``attnkit.decoding.DecodeOutput``: ``tokens (B, T)`` (end token included), ``lengths (B,)``,
            ``alignments (B, T, S)`` (last layer's cross-attention, averaged over heads).
        """
        c = self.config
        max_len = max_len or c.max_tgt_len
        if max_len > c.max_tgt_len:
            raise ValueError(f"Expected max_len <= max_tgt_len={c.max_tgt_len} (the position table). "
                             f"Received: max_len={max_len}")
        state = self.start_state(src, src_lengths, use_cache=use_cache, capacity=max_len)
        return decode(self.step, state, batch_size=src.size(0), sos_id=c.sos_id, eos_id=c.eos_id, max_len=max_len,
                      beam_size=beam_size, pad_id=c.pad_id, length_penalty=length_penalty, device=src.device)

    # -- text in, text out -------------------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> tuple[Tensor, Tensor, int, int]:
        """Tokenise ``texts`` with the source tokenizer.

        Returns:
            ``(src (B, S), src_lengths (B,), n_unknown, n_truncated)``: ids ``[<sos>, t_1, ..., <eos>]``;
            tokens outside the vocabulary become ``unk_id``; inputs longer than ``config.max_src_len`` ids
            keep their first ``max_src_len - 1`` ids and the end token.
        """
        return translation.encode_texts(self, texts)

    def translate(self, texts: list[str], beam_size: int = 1, return_alignments: bool = False,
                  batch_size: int = 256, length_penalty: float = 1.0) -> list[str] | list[tuple[str, Tensor]]:
        """Translate strings with the saved tokenizers (``attnkit.load`` gives them back).

        Unknown tokens become ``<unk>`` and inputs longer than ``max_src_len`` are truncated, each with a
        ``UserWarning`` giving the count.

        Returns:
            The output strings, or ``(text, alignment)`` pairs with ``return_alignments=True``, ``alignment``
            ``(T_out, S_in)``: one row per output token (end token included), one column per source token,
            the last decoder layer's cross-attention averaged over heads.

        Example::

            model = attnkit.load("runs/transformer-dates/model")
            model.translate(["4 de marzo de 2031"], beam_size=4)     # ['2031-03-04']
        """
        return translation.translate(self, texts, beam_size=beam_size, return_alignments=return_alignments,
                                     batch_size=batch_size, length_penalty=length_penalty)

    def summary(self, src_len: int = 8, tgt_len: int = 8, batch_size: int = 1, **kwargs: Any) -> str:
        """Keras-like table of layers, output shapes and parameter counts on a ``(batch_size, src_len)``
        source and ``(batch_size, tgt_len)`` target (see :func:`attnkit.models.summary.summary`).

        Prints the table (as Keras does, and as every attnkit model does) and returns it; pass
        ``print_fn=None`` to only get the text.

        Example::

            text = model.summary(print_fn=None)
        """
        from attnkit.models.summary import summary


        device = self.out.weight.device
        src = torch.full((batch_size, src_len), self.config.unk_id, dtype=torch.long, device=device)
        tgt = torch.full((batch_size, tgt_len), self.config.sos_id, dtype=torch.long, device=device)
        lengths = torch.full((batch_size,), src_len, dtype=torch.long, device=device)
        return summary(self, src, lengths, tgt, **kwargs)
