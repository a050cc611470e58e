"""`attnkit experiment alignment`: the report files end to end, the baselines against hand-worked AERs and a
plain-loop recount, the Transformer's head chosen on validation pairs only, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from attnkit.cli.main import main
from attnkit.data import gold_alignment, load_pairs
from attnkit.experiments.alignment import FIXED, AlignmentSettings, baseline_scores, diagonal_links
from attnkit.metrics import LINK_RULES
from attnkit.models import Transformer
from attnkit.recipes.alignment import choose_head, transformer_alignment_scores
from attnkit.recipes.seq2seq import RunSpec, build_transformer

torch.set_num_threads(1)


def plain_aer(found: list[set], sure: list[set], possible: list[set]) -> float:
    """Och and Ney's AER from link sets, summed over the pairs: 1 - (|A&S| + |A&P|) / (|A| + |S|)."""
    a, s = sum(map(len, found)), sum(map(len, sure))
    hits = sum(len(f & g) for f, g in zip(found, sure, strict=True))
    hits += sum(len(f & g) for f, g in zip(found, possible, strict=True))
    return 1.0 - hits / (a + s) if a + s else 0.0


def link_set(mask: torch.Tensor) -> set:
    return {(int(t), int(j)) for t, j in mask.nonzero().tolist()}


def test_baselines_by_hand():
    # reverse "abc" -> "cba": gold 0-2, 1-1, 2-0 (sure = possible); diagonal 0-0, 1-1, 2-2 hits only 1-1:
    # 1 - (1 + 1) / (3 + 3) = 2/3; uniform links all 9: 1 - (3 + 3) / (9 + 3) = 1/2
    s = baseline_scores([("abc", "cba")], "reverse")
    assert s["diagonal"]["aer"] == pytest.approx(2 / 3) and s["uniform"]["aer"] == pytest.approx(0.5)
    assert (s["diagonal"]["links"], s["uniform"]["links"]) == (1.0, 3.0)
    # T_out=2, T_in=5: floor(0.5 * 5 / 2) = 1, floor(1.5 * 5 / 2) = 3
    assert link_set(diagonal_links(2, 5)) == {(0, 1), (1, 3)}


def test_baselines_match_a_plain_loop_on_dates_with_possible_links():
    pairs = load_pairs("dates", "test", size=7, seed=4)
    gold = [gold_alignment("dates", s, t) for s, t in pairs]
    sure, possible = [link_set(g) for g, _ in gold], [link_set(p) for _, p in gold]
    diagonal = [{(i, int((i + 0.5) * g.shape[1] / g.shape[0])) for i in range(g.shape[0])} for g, _ in gold]
    uniform = [{(i, j) for i in range(g.shape[0]) for j in range(g.shape[1])} for g, _ in gold]
    s = baseline_scores(pairs, "dates")
    assert s["diagonal"]["aer"] == pytest.approx(plain_aer(diagonal, sure, possible))
    assert s["uniform"]["aer"] == pytest.approx(plain_aer(uniform, sure, possible))


# ---- the best head: chosen on validation pairs, never on the test pairs -------------------------------------


@pytest.fixture(scope="module")
def transformer():
    pairs = load_pairs("reverse", "train", size=30, seed=0, min_len=3, max_len=6)
    torch.manual_seed(1)  # untrained: heads differ by chance, which is all the choice needs
    return build_transformer(RunSpec(data="reverse"), pairs, d_model=12, num_heads=3, encoder_layers=1,
                             decoder_layers=2, ff_dim=10)


def argmax_head_aer(model: Transformer, pairs, layer: int, head: int) -> float:
    """AER of one head's argmax links by plain loops (teacher forcing; <sos>/<eos> dropped)."""
    found, sure, possible = [], [], []
    for s, t in pairs:
        src = torch.tensor([model.tokenizers["source"].encode(s)])
        tgt = torch.tensor([model.tokenizers["target"].encode(t)])
        with torch.no_grad():
            out = model.eval()(src, torch.tensor([src.size(1)]), tgt[:, :-1], output_attentions=True)
        w = out.cross_attentions[layer - 1][0, head - 1].tolist()  # (T, S)
        links = set()
        for row in range(len(t)):
            j = w[row].index(max(w[row]))
            if 1 <= j <= len(s):
                links.add((row, j - 1))
        g_sure, g_possible = gold_alignment("reverse", s, t)
        found.append(links), sure.append(link_set(g_sure)), possible.append(link_set(g_possible))
    return plain_aer(found, sure, possible)


def test_the_best_head_is_chosen_on_validation_pairs_only(transformer):
    valid = load_pairs("reverse", "validation", size=6, seed=0, min_len=3, max_len=6)
    test_a = load_pairs("reverse", "test", size=5, seed=0, min_len=3, max_len=6)
    test_b = load_pairs("reverse", "test", size=5, seed=9, min_len=4, max_len=7)
    heads = [(layer, head) for layer in (1, 2) for head in (1, 2, 3)]
    on_valid = {lh: argmax_head_aer(transformer, valid, *lh) for lh in heads}
    expected = min(heads, key=lambda lh: (on_valid[lh], lh))
    a = transformer_alignment_scores(transformer, valid, test_a, "reverse")
    b = transformer_alignment_scores(transformer, valid, test_b, "reverse")
    assert a["chosen"]["argmax"] == b["chosen"]["argmax"] == expected == choose_head(transformer, valid, "reverse")
    assert a["validation_aer"]["argmax"] == pytest.approx(on_valid[expected])
    for result, test in ((a, test_a), (b, test_b)):  # the chosen head is then scored on the test pairs
        assert result["maps"]["best head"]["argmax"]["aer"] == pytest.approx(argmax_head_aer(transformer, test,
                                                                                              *expected))
    swapped = transformer_alignment_scores(transformer, test_a, valid, "reverse")  # choose on test_a instead
    on_a = {lh: argmax_head_aer(transformer, test_a, *lh) for lh in heads}
    assert swapped["chosen"]["argmax"] == min(heads, key=lambda lh: (on_a[lh], lh))
    assert set(a["maps"]) == {"layer 1 mean", "layer 2 mean", "best head"} and set(a["chosen"]) == set(LINK_RULES)


# ---- end to end ------------------------------------------------------------------------------------------


def test_quick_alignment_experiment_writes_its_report(tmp_path, capsys):
    out = tmp_path / "al"
    args = ["experiment", "alignment", "--quick", "--out", str(out), "--seeds", "0", "--tasks", "numbers",
            "--models", "luong-local-m,transformer"]
    assert main(args) == 0
    for name in ("alignment.json", "alignment.md", "alignment.png", "alignment-examples.png"):
        assert (out / name).stat().st_size > 0
    report = json.loads((out / "alignment.json").read_text())
    assert report["command"] == "attnkit " + " ".join(args) and report["settings"]["is_quick"]
    rows = {(r["task"], r["model"], r["rule"]): r for r in report["tables"]["aer"]}
    models = {"luong-local-m", "transformer, layer 1 mean", "transformer, layer 2 mean", "transformer, best head"}
    assert set(rows) == {("numbers", m, rule) for m in models for rule in LINK_RULES} | {
        ("numbers", b, FIXED) for b in ("diagonal", "uniform")}
    s = AlignmentSettings().quick()
    test = load_pairs("numbers", "test", size=s.test_size, seed=0, languages=("de",), max_len=s.numbers_max_len)
    for name, expected in baseline_scores(test, "numbers").items():  # the same test pairs as the report's
        assert rows[("numbers", name, FIXED)]["aer"]["mean"] == pytest.approx(expected["aer"])
    assert {r["model"] for r in report["tables"]["exact_match"]} == {"luong-local-m", "transformer"}
    assert {(r["rule"], r["seed"]) for r in report["tables"]["heads"]} == {(rule, 0) for rule in LINK_RULES}
    examples = report["per_seed"]["0"]["examples"]
    assert [(e["model"], e["source"]) for e in examples] == [(m, test[0][0]) for m in ("luong-local-m", "transformer")]
    md = (out / "alignment.md").read_text()
    assert "quick smoke test" in md and "![alignment-examples.png](alignment-examples.png)" in md


@pytest.mark.parametrize("args, message", [
    (["--tasks", "dates,reverse"], "--tasks must be distinct comma-separated names among dates, numbers, phrases. "
                                   "Received: 'dates,reverse'"),
    (["--models", "bahdanau,bahdanau"], "--models must be distinct comma-separated names among bahdanau"),
    (["--models", ""], "--models must be distinct comma-separated names"),
    (["--steps", "0"], "--steps must be >= 1. Received: 0"),
    (["--test-size", "-1"], "--test-size must be >= 0. Received: -1"),
    (["--seeds", "0,0"], "--seeds must be distinct comma-separated integers >= 0"),
])
def test_alignment_experiment_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(["experiment", "alignment", "--quick", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_per_head_scores_refuse_a_model_without_heads_and_empty_pairs(transformer):
    from attnkit.data import Tokenizer
    from attnkit.errors import InputError
    from attnkit.recipes.seq2seq import build_model

    tok = Tokenizer.train(["abc"], scheme="char")
    rnn = build_model(tok, tok, [("abc", "cba")], hidden_dim=8, embed_dim=4)
    with pytest.raises(InputError, match="per-head alignments need a Transformer .*Received: Seq2Seq"):
        choose_head(rnn, [("abc", "cba")], "reverse")
    with pytest.raises(InputError, match="no pairs to score"):
        choose_head(transformer, [], "reverse")
