"""``workloads.translation.corpus``: the seeded synthetic multilingual corpus.

The grammar is checked by round trips (``parse(realize(s)) == s`` for every language), by
malformed token sequences that ``parse`` must refuse, and by the corpus-level promises: seeded
determinism, synonyms (so BLEU has a ceiling below 100), stems shared within a family and not
across, the default sizes, and held-out splits disjoint from training.
"""

from __future__ import annotations

import random

import pytest

from workloads.translation import SPECS
from workloads.translation import corpus as gen
from workloads.translation.corpus import (
    BY_CODE,
    LANGUAGES,
    NounPhrase,
    ParseError,
    Sentence,
    detokenize,
    draw_sentence,
    parse,
    realize,
)

CODES = tuple(lang.code for lang in LANGUAGES)
SMALL = {"aa": 40, "ba": 30}


@pytest.fixture(scope="module")
def lexicons():
    return gen.build_lexicons(0)


@pytest.fixture(scope="module")
def default_corpus():
    """The default corpus, built once (about 2 s)."""
    return gen.generate()


def _sentence(plural=False, definite=True, adjectives=(0,), pp=True, past=False) -> Sentence:
    """A fixed meaning with an adjective and an adjunct, for hand-made malformed inputs."""
    subject = NounPhrase(0, tuple(adjectives), plural, definite)
    adjunct = NounPhrase(7, (), False, True) if pp else None
    return Sentence(subject, 3, NounPhrase(5, (2,), True, True), past, 2 if pp else None, adjunct)


def _kind(token: str, lex) -> str | None:
    return lex.reverse[token][0] if token in lex.reverse else None


# -- determinism ----------------------------------------------------------------------------------


def test_same_seed_same_corpus_and_vocabulary():
    a = gen.generate(languages=list(SMALL), sizes=SMALL, held_out=10, seed=3)
    b = gen.generate(languages=list(SMALL), sizes=SMALL, held_out=10, seed=3)
    assert a == b
    assert gen.vocabulary(3) == gen.vocabulary(3)
    assert gen.build_lexicons(3) == gen.build_lexicons(3)


def test_another_seed_gives_another_corpus_and_vocabulary():
    a = gen.generate(languages=list(SMALL), sizes=SMALL, held_out=10, seed=3)
    b = gen.generate(languages=list(SMALL), sizes=SMALL, held_out=10, seed=4)
    for code in SMALL:
        for split in ("train", "validation", "test"):
            assert [p.target for p in a[code][split]] != [p.target for p in b[code][split]]
            assert [p.source for p in a[code][split]] != [p.source for p in b[code][split]]
    assert gen.vocabulary(3) != gen.vocabulary(4)


def test_generated_sizes_and_pair_fields():
    corpus = gen.generate(languages=["ac", "bb"], sizes={"ac": 25}, held_out=7, seed=1)
    assert set(corpus) == {"ac", "bb"}
    assert len(corpus["ac"]["train"]) == 25
    assert len(corpus["bb"]["train"]) == BY_CODE["bb"].train_size  # default size when left out
    for code in corpus:
        assert len(corpus[code]["validation"]) == len(corpus[code]["test"]) == 7
        for pair in corpus[code]["train"][:20]:
            assert pair.reference == detokenize(pair.target)
            assert pair.source[-1] == pair.target[-1] == "."
            assert pair.source[0][0].isupper()


def test_vocabulary_covers_every_token_of_the_corpus():
    corpus = gen.generate(languages=list(CODES), sizes=dict.fromkeys(CODES, 60), held_out=20)
    vocab = set(gen.vocabulary(0))
    assert gen.vocabulary(0) == sorted(vocab)
    for splits in corpus.values():
        for pairs in splits.values():
            for pair in pairs:
                assert set(pair.source) <= vocab
                assert set(pair.target) <= vocab


# -- the grammar ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_parse_inverts_realize(code, lexicons):
    lang, lex = BY_CODE[code], lexicons[code]
    rng = random.Random(f"roundtrip:{code}")
    for _ in range(3000):
        s = draw_sentence(rng)
        tokens = realize(s, lang, lex, rng)
        assert parse(tokens, lang, lex) == s, tokens


@pytest.mark.parametrize("code", CODES)
def test_english_is_injective_and_well_formed(code):
    rng = random.Random(f"english:{code}")
    seen: dict[tuple[str, ...], Sentence] = {}
    for _ in range(2000):
        s = draw_sentence(rng)
        words = gen.english(s)
        assert words[-1] == "." and words[0][0].isupper()
        assert seen.setdefault(words, s) == s


def test_parse_rejects_a_missing_final_period(lexicons):
    lang, lex = BY_CODE["aa"], lexicons["aa"]
    tokens = realize(_sentence(), lang, lex, random.Random(0))
    with pytest.raises(ParseError, match="ends with '.'"):
        parse(tokens[:-1], lang, lex)
    with pytest.raises(ParseError):
        parse((), lang, lex)


@pytest.mark.parametrize("code", ["aa", "ab", "ac"])
def test_parse_rejects_a_broken_adjective_agreement(code, lexicons):
    lang, lex = BY_CODE[code], lexicons[code]
    tokens = list(realize(_sentence(), lang, lex, random.Random(0)))
    adj = next(i for i, t in enumerate(tokens) if _kind(t, lex) == "adjectives")
    agree = tokens[adj + 1]
    assert agree.startswith("##")
    variants = gen._SUFFIXES["A"]["adj"][lang.suffix_shift]
    tokens[adj + 1] = next(v for v in variants if v != agree)
    with pytest.raises(ParseError, match="agree"):
        parse(tokens, lang, lex)
    del tokens[adj + 1]  # no agreement suffix at all
    with pytest.raises(ParseError, match="agree"):
        parse(tokens, lang, lex)


@pytest.mark.parametrize("code", ["aa", "ba"])
def test_parse_rejects_a_broken_verb_or_noun_suffix(code, lexicons):
    lang, lex = BY_CODE[code], lexicons[code]
    tokens = list(realize(_sentence(plural=True), lang, lex, random.Random(0)))
    verb = next(i for i, t in enumerate(tokens) if _kind(t, lex) == "verbs")
    # plural subject: stem, tense, agreement
    assert tokens[verb + 2] == gen._suffix(lang, "subj_pl")
    no_agreement = tokens[: verb + 2] + tokens[verb + 3 :]
    with pytest.raises(ParseError, match="agree"):
        parse(no_agreement, lang, lex)
    no_tense = tokens[: verb + 1] + tokens[verb + 2 :]
    with pytest.raises(ParseError, match="tense"):
        parse(no_tense, lang, lex)
    noun = next(i for i, t in enumerate(tokens) if _kind(t, lex) == "nouns")
    doubled = tokens[: noun + 1] + [gen._suffix(lang, "plural")] + tokens[noun + 1 :]
    with pytest.raises(ParseError, match="noun suffixes"):
        parse(doubled, lang, lex)


@pytest.mark.parametrize("code", ["aa", "ab"])
def test_parse_rejects_a_missing_or_wrong_article(code, lexicons):
    lang, lex = BY_CODE[code], lexicons[code]
    tokens = list(realize(_sentence(), lang, lex, random.Random(0)))
    assert tokens[0] in gen._ARTICLES.values()
    with pytest.raises(ParseError, match="article"):
        parse(tokens[1:], lang, lex)
    gender = lex.genders[0]
    tokens[0] = gen._ARTICLES[(True, 1 - gender, False)]  # the other gender's article
    with pytest.raises(ParseError, match="article"):
        parse(tokens, lang, lex)
    # an indefinite plural has no article
    bare = list(realize(_sentence(plural=True, definite=False), lang, lex, random.Random(0)))
    assert bare[0] not in gen._ARTICLES.values()
    with pytest.raises(ParseError, match="article"):
        parse(["en", *bare], lang, lex)


@pytest.mark.parametrize(("code", "other"), [("aa", "ba"), ("ba", "aa"), ("ab", "bc")])
def test_parse_rejects_a_word_of_another_language(code, other, lexicons):
    lang, lex = BY_CODE[code], lexicons[code]
    tokens = list(realize(_sentence(), lang, lex, random.Random(0)))
    noun = next(i for i, t in enumerate(tokens) if _kind(t, lex) == "nouns")
    foreign = lexicons[other].nouns[lex.reverse[tokens[noun]][1]][0]
    assert foreign not in lex.reverse
    tokens[noun] = foreign
    with pytest.raises(ParseError, match=f"not a word of {code}"):
        parse(tokens, lang, lex)


def test_parse_rejects_two_verbs_and_a_leading_suffix(lexicons):
    lang, lex = BY_CODE["aa"], lexicons["aa"]
    tokens = list(realize(_sentence(pp=False), lang, lex, random.Random(0)))
    verb = next(i for i, t in enumerate(tokens) if _kind(t, lex) == "verbs")
    with pytest.raises(ParseError, match="one verb"):
        parse(tokens[:-1] + tokens[verb : verb + 2] + ["."], lang, lex)
    with pytest.raises(ParseError, match="starts the sentence"):
        parse(["##en", *tokens], lang, lex)
    with pytest.raises(ParseError):  # no object
        parse(tokens[: verb + 2] + ["."], lang, lex)


@pytest.mark.parametrize("code", ["aa", "ac", "ba"])
def test_parse_rejects_a_verb_in_the_wrong_place(code, lexicons):
    lang, lex = BY_CODE[code], lexicons[code]
    tokens = list(realize(_sentence(pp=False), lang, lex, random.Random(0)))
    verb = next(i for i, t in enumerate(tokens) if _kind(t, lex) == "verbs")
    group = tokens[verb : verb + 2]  # singular subject: stem and tense
    rest = tokens[:verb] + tokens[verb + 2 : -1]
    moved = [*rest, *group, "."] if lang.family == "A" else [*group, *rest, "."]
    assert moved != tokens
    with pytest.raises(ParseError):
        parse(moved, lang, lex)


def test_parse_rejects_a_dangling_preposition(lexicons):
    lang, lex = BY_CODE["aa"], lexicons["aa"]
    tokens = realize(_sentence(pp=False), lang, lex, random.Random(0))
    with pytest.raises(ParseError):
        parse([*tokens[:-1], lex.adpositions[2][0], "."], lang, lex)


def test_synonyms_give_one_meaning_two_realizations(lexicons):
    """Some meaning has two realizations in one language, both parsing back to it."""
    lang, lex = BY_CODE["aa"], lexicons["aa"]
    noun = next(i for i, ws in enumerate(lex.nouns) if len(ws) == 2)
    s = Sentence(NounPhrase(noun), 0, NounPhrase(noun), False)
    seen = {realize(s, lang, lex, random.Random(k)) for k in range(50)}
    assert len(seen) >= 2
    assert all(parse(t, lang, lex) == s for t in seen)
    for code in CODES:  # every language has synonyms, and adpositions have none
        lx = lexicons[code]
        assert any(len(ws) == 2 for ws in lx.nouns + lx.adjectives + lx.verbs), code
        assert all(len(ws) == 1 for ws in lx.adpositions)


def test_families_share_stems(lexicons):
    def first_share(a: str, b: str) -> float:
        pairs = list(zip(lexicons[a].nouns, lexicons[b].nouns, strict=True))
        return sum(x[0] == y[0] for x, y in pairs) / len(pairs)

    assert first_share("ab", "aa") >= 0.5
    assert first_share("bb", "ba") >= 0.4
    assert first_share("bc", "ba") >= 0.4
    for a in ("aa", "ab", "ac"):
        for b in ("ba", "bb", "bc"):
            assert not set(lexicons[a].reverse) & set(lexicons[b].reverse), (a, b)
    # a language with share 1.0 inherits every first stem of its family
    assert first_share("aa", "aa") == 1.0
    assert lexicons["aa"].genders == lexicons["ab"].genders


def test_default_sizes_match_the_language_table(default_corpus):
    assert set(default_corpus) == set(CODES)
    for lang in LANGUAGES:
        assert len(default_corpus[lang.code]["train"]) == lang.train_size
        assert len(default_corpus[lang.code]["validation"]) == 500
        assert len(default_corpus[lang.code]["test"]) == 500
    high = [lang.train_size for lang in LANGUAGES if lang.resource == "high"]
    low = [lang.train_size for lang in LANGUAGES if lang.resource == "low"]
    assert high and low and max(low) < min(high)
    assert {lang.code for lang in LANGUAGES if lang.resource == "low"} == set(
        SPECS["default"].low_resource
    )
    sizes = {lang.code: lang.train_size for lang in LANGUAGES}
    assert sizes == {"aa": 24_000, "ab": 8_000, "ac": 600, "ba": 16_000, "bb": 600, "bc": 300}


def test_held_out_sentences_are_not_in_training(default_corpus):
    for code, splits in default_corpus.items():
        train = {p.source for p in splits["train"]}
        val = [p.source for p in splits["validation"]]
        test = [p.source for p in splits["test"]]
        assert not train & set(val), code
        assert not train & set(test), code
        assert not set(val) & set(test), code
        assert len(set(val)) == len(val) and len(set(test)) == len(test), code


# -- detokenize -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (("den", "hund", "##en", "ser", "##t", "."), "Den hunden sert."),
        (("zuk", "##lar", "##ka", "bo", "##di", "##iz", "."), "Zuklarka bodiiz."),
        (("a", "b", "."), "A b."),
        (("x", "."), "X."),
        (("##ka", "b"), "Ka b"),
        ((), ""),
    ],
)
def test_detokenize(tokens, text):
    assert detokenize(tokens) == text


def test_detokenize_of_a_realization_has_no_suffix_markers(lexicons):
    rng = random.Random(5)
    for code in CODES:
        text = detokenize(realize(draw_sentence(rng), BY_CODE[code], lexicons[code], rng))
        assert "##" not in text and " ." not in text and text.endswith(".")
        assert text[0].isupper()


# -- bad input ------------------------------------------------------------------------------------


def test_unknown_language_code():
    with pytest.raises(ValueError, match=r"unknown language code.*'zz'"):
        gen.generate(languages=["aa", "zz"], held_out=5)


def test_empty_language_list():
    with pytest.raises(ValueError, match="at least one target language"):
        gen.generate(languages=[], held_out=5)


@pytest.mark.parametrize(
    ("sizes", "held_out"),
    [({"aa": 0}, 5), ({"aa": -3}, 5), ({"ba": 10}, 5), ({"aa": 10}, 0)],
)
def test_bad_sizes(sizes, held_out):
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        gen.generate(languages=["aa"], sizes=sizes, held_out=held_out)
