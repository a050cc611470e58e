"""load_pairs: one API over built-in tasks and TSV files."""

import pytest

from attnkit.data import BUILTIN_TASKS, DEFAULT_SIZES, load_pairs
from attnkit.errors import InputError


def test_builtin_names():
    assert BUILTIN_TASKS == ("dates", "numbers", "phrases", "copy", "reverse", "sort")


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_each_task_loads_deterministically(name):
    kw = {} if name == "dates" else {"max_len": 5}
    a = load_pairs(name, "validation", size=40, seed=1, **kw)
    assert len(a) == 40 and all(isinstance(s, str) and isinstance(t, str) and s and t for s, t in a)
    assert a == load_pairs(name, "validation", size=40, seed=1, **kw)


def test_default_size_and_length_options():
    assert len(load_pairs("copy", "validation", max_len=12)) == DEFAULT_SIZES["validation"]
    test = load_pairs("sort", "test", size=200, max_len=4, test_max_len=9, min_len=2)
    assert {len(s) for s, _ in test} == set(range(2, 10))
    assert all(set(s) <= set("0123") for s, _ in load_pairs("copy", "train", size=20, alphabet="0123"))


def test_tsv_file_splits_are_disjoint_and_cover_the_file(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("".join(f"s{i}\tt{i}\n" for i in range(100)), encoding="utf-8")
    parts = {sp: load_pairs(p, sp, seed=0) for sp in ("train", "validation", "test")}
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [90, 5, 5]
    union = sorted(x for v in parts.values() for x in v)
    assert union == sorted(load_pairs(p, "all")) == sorted((f"s{i}", f"t{i}") for i in range(100))
    assert parts["test"] != load_pairs(p, "test", seed=1)
    assert load_pairs(str(p), "train", size=7) == parts["train"][:7]


def test_tsv_skip_warns_with_line_numbers(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("a\tb\nbad\nc\td\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="skipped 1 malformed line: 2 \\(no tab\\)"):
        assert load_pairs(p, "all", on_error="skip") == [("a", "b"), ("c", "d")]
    with pytest.raises(InputError, match="line 2"):
        load_pairs(p, "all")


def test_unknown_name_and_bad_split():
    with pytest.raises(InputError, match="Unknown data 'datez': expected one of"):
        load_pairs("datez")
    with pytest.raises(ValueError, match="Received: split='all'"):
        load_pairs("dates", "all")
    with pytest.raises(ValueError, match="Received: size=-1"):
        load_pairs("copy", size=-1)


def test_tokenizer_options_lowercase_dates_sources():
    from attnkit.data import Tokenizer, tokenizer_options

    pairs = load_pairs("dates", "train", size=300)
    tok = Tokenizer.train([s for s, _ in pairs], **tokenizer_options("dates"))
    assert all(s == s.lower() for s, _ in pairs)
    assert tok.encode("4. MÄRZ 2031") == tok.encode("4. märz 2031")
    assert tokenizer_options("reverse") == {"scheme": "char"} and tokenizer_options("x.tsv") == {"scheme": "word"}


def test_phrases_sizes_and_word_level_tokenizers_on_both_sides():
    from attnkit.data import Tokenizer, tokenizer_options

    assert len(load_pairs("phrases", "validation")) == DEFAULT_SIZES["validation"]
    assert len(load_pairs("phrases", "test", size=37, seed=4, max_len=3)) == 37  # lengths do not apply
    assert tokenizer_options("phrases") == tokenizer_options("phrases", side="target") == {"scheme": "word"}
    assert tokenizer_options("numbers", side="target") == {"scheme": "char"}
    pairs = load_pairs("phrases", "train", size=50)
    tok = Tokenizer.train([t for _, t in pairs], **tokenizer_options("phrases", side="target"))
    assert all(tok.tokens(tok.encode(t))[1:-1] == t.split() for _, t in pairs)
    with pytest.raises(ValueError, match="Received: side='both'"):
        tokenizer_options("phrases", side="both")
