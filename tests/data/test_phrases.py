"""The ``phrases`` task: grammar, agreement, splits and gold word alignments, on hand-written examples."""

import json
import random

import pytest
import torch

from attnkit.data import load_pairs
from attnkit.data.phrases import (
    COURSE_PAIR,
    generate_phrases,
    parse,
    phrase_alignment,
    random_sentence,
    render,
)

# Gender and number of every Spanish noun the grammar uses, written out by hand (independent of the tables).
GENDER = {
    "niño": "m", "niña": "f", "hermano": "m", "hermana": "f", "película": "f", "obra": "f", "partido": "m",
    "libro": "m", "revista": "f", "carta": "f", "periódico": "m", "canción": "f", "manzana": "f",
    "naranja": "f", "pastel": "m", "flor": "f", "camisa": "f", "cine": "m", "parque": "m", "mercado": "m",
    "museo": "m", "teatro": "m", "playa": "f", "escuela": "f", "biblioteca": "f", "tienda": "f", "plaza": "f",
}
PLURAL = {"niños": "niño", "niñas": "niña", "hermanos": "hermano", "hermanas": "hermana",
          "películas": "película", "obras": "obra", "partidos": "partido", "libros": "libro",
          "revistas": "revista", "cartas": "carta",
          "periódicos": "periódico", "canciones": "canción", "manzanas": "manzana", "naranjas": "naranja",
          "pasteles": "pastel", "flores": "flor", "camisas": "camisa"}
ARTICLE = {"el": ("m", "sg"), "la": ("f", "sg"), "los": ("m", "pl"), "las": ("f", "pl"), "un": ("m", "sg"),
           "una": ("f", "sg"), "unos": ("m", "pl"), "unas": ("f", "pl")}


def links(matrix: torch.Tensor) -> set[tuple[int, int]]:
    return {(t, s) for t, s in matrix.nonzero().tolist()}


def test_course_sentence_alignment_by_hand():
    source, target = COURSE_PAIR
    sure, possible = phrase_alignment(source, target)
    # Ana va al cine a ver una nueva película / Ana goes to the cinema to see a new film
    assert sure.dtype == torch.bool and sure.shape == (10, 9) and possible.shape == (10, 9)
    expected_sure = {(0, 0), (1, 1), (2, 2), (3, 2), (4, 3), (6, 5), (7, 6), (8, 7), (9, 8)}
    assert links(sure) == expected_sure
    assert links(possible) == expected_sure | {(5, 4), (5, 5)}  # "to" (of "to see"): possibly "a" or "ver"
    assert sure[2, 2] and sure[3, 2]  # "al" -> "to the"
    assert sure[8, 7] and sure[9, 8]  # "nueva película" -> "new film": "nuevo" stands first in both


def test_post_nominal_adjective_links_cross():
    sure, possible = phrase_alignment("Ana ve una película francesa", "Ana sees a French film")
    assert links(sure) == {(0, 0), (1, 1), (2, 2), (3, 4), (4, 3)} == links(possible)
    sure, _ = phrase_alignment("mis hermanas comen unas manzanas rojas en la playa",
                               "my sisters eat some red apples on the beach")
    assert links(sure) == {(0, 0), (1, 1), (2, 2), (3, 3), (4, 5), (5, 4), (6, 6), (7, 7), (8, 8)}


def test_contractions_and_many_to_one_links():
    sure, _ = phrase_alignment("Pedro vuelve del mercado", "Pedro comes back from the market")
    assert links(sure) == {(0, 0), (1, 1), (2, 1), (3, 2), (4, 2), (5, 3)}
    sure, _ = phrase_alignment("los niños van a la escuela", "the boys go to the school")
    assert links(sure) == {(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)}


def test_an_before_a_vowel_and_some_for_plurals():
    assert phrase_alignment("Juan come una manzana", "Juan eats an apple")[0].shape == (4, 4)
    assert render(parse("Juan lee un libro interesante"))[1] == "Juan reads an interesting book".split()
    assert render(parse("Juan lee unos libros"))[1] == "Juan reads some books".split()


@pytest.mark.parametrize("bad", ["Ana va a la cine", "Ana va a el cine", "Ana ve un película",
                                 "Ana van al cine",
                                 "Ana lee una revista franceses", "Ana ve una francesa película",
                                 "Ana come un libro", "Ana va al cine a", "Ana", "mi niño va al cine",
                                 "Ana lee mi libro"])
def test_sentences_outside_the_grammar_are_refused(bad):
    with pytest.raises(ValueError, match="Expected a Spanish sentence of the phrases grammar. Received: "):
        phrase_alignment(bad, "x")


def test_derivation_without_the_parts_of_its_verb_is_refused():
    from attnkit.data.phrases import GO, VERBS, Sentence

    with pytest.raises(ValueError, match="Expected GO with a place .* Received: Sentence"):
        render(Sentence("Ana", GO))
    with pytest.raises(ValueError, match="another verb with an object"):
        render(Sentence("Ana", VERBS[0], purpose=VERBS[1]))


def test_wrong_target_is_refused():
    message = "Expected the English of 'Ana va al cine', 'Ana goes to the cinema'"
    with pytest.raises(ValueError, match=message):
        phrase_alignment("Ana va al cine", "Ana goes to cinema")


def test_generated_articles_agree_with_their_nouns():
    pairs = generate_phrases("train", size=2000, seed=3)
    seen = 0
    for source, _ in pairs:
        words = source.split()
        bigrams = set(zip(words, words[1:], strict=False))
        assert not bigrams & {("la", "cine"), ("a", "el"), ("de", "el")}, source
        for article, word in bigrams:
            noun = PLURAL.get(word, word)
            if article in ARTICLE and noun in GENDER:
                gender, number = ARTICLE[article]
                assert (GENDER[noun], number) == (gender, "pl" if word in PLURAL else "sg"), source
                seen += 1
    assert seen > 2000


def test_every_generated_pair_has_one_link_per_word_and_sure_within_possible():
    rng = random.Random(7)
    for _ in range(300):
        es, en, _, _ = render(random_sentence(rng))
        sure, possible = phrase_alignment(" ".join(es), " ".join(en))
        assert sure.shape == (len(en), len(es))
        assert not (sure & ~possible).any()
        assert possible.any(0).all() and possible.any(1).all()


def test_course_sentence_is_generated_but_in_no_split():
    rng = random.Random(0)
    target = parse(COURSE_PAIR[0])
    assert render(target)[1] == COURSE_PAIR[1].split()
    for seed in (0, 1):
        for split in ("train", "validation", "test"):
            size = 3000 if split == "train" else 500
            assert COURSE_PAIR not in load_pairs("phrases", split, size=size, seed=seed)
    # the grammar draws it: a few of its siblings show up among random sentences
    siblings = {" ".join(render(random_sentence(rng))[0]) for _ in range(20_000)}
    assert any(s.startswith("Ana va al cine a ver una") for s in siblings)


def test_splits_are_disjoint_sized_and_deterministic():
    parts = {split: load_pairs("phrases", split, size=n, seed=2)
             for split, n in (("train", 3000), ("validation", 300), ("test", 200))}
    assert [len(p) for p in parts.values()] == [3000, 300, 200]
    sources = {split: {s for s, _ in p} for split, p in parts.items()}
    assert all(len(sources[s]) == len(parts[s]) for s in parts)
    assert sources["train"].isdisjoint(sources["test"]) and sources["train"].isdisjoint(sources["validation"])
    assert sources["validation"].isdisjoint(sources["test"])
    assert parts["test"] == load_pairs("phrases", "test", size=200, seed=2)
    assert parts["test"] != load_pairs("phrases", "test", size=200, seed=3)


def test_train_seq2seq_on_phrases_end_to_end(tmp_path):
    from attnkit import load
    from tests.cli.test_seq2seq_cli import TINY, run

    out = tmp_path / "phrases"
    assert run("train", "seq2seq", "--data", "phrases", "--out", out, *TINY) == 0
    model = load(out / "model")
    assert model.tokenizers["source"].scheme == model.tokenizers["target"].scheme == "word"
    (text, alignment), = model.translate([COURSE_PAIR[0]], return_alignments=True)
    assert alignment.shape[1] == len(COURSE_PAIR[0].split()) + 2  # <sos>, the 9 words, <eos>
    assert run("evaluate", out, "--data", "phrases", "--size", "5") == 0
    report = tmp_path / "report.json"
    assert run("evaluate", out, "--size", "6", "--alignment", "--json", report) == 0  # word-level gold links
    from tests.cli.alignment_reference import reference_aer

    pairs = load_pairs("phrases", "test", size=6, seed=0)
    expected = reference_aer(model, pairs, "phrases")
    assert json.loads(report.read_text())["alignment_error_rate"] == pytest.approx(expected, abs=1e-12)
