"""A seeded synthetic multilingual corpus: one source grammar, six target languages.

Every sentence is first drawn as a meaning (``Sentence``: subject, verb, object, an optional
adpositional phrase; number, definiteness and tense), then realized in English (the source) and in
each target language by deterministic rules. Target languages come in two families:

- family A (``aa``, ``ab``, ``ac``): SVO, adjectives before the noun, prepositions, two noun
  genders with adjective agreement; ``aa`` and ``ab`` have articles, ``ac`` marks definiteness with
  a noun suffix instead.
- family B (``ba``, ``bb``, ``bc``): SOV, adjectives after the noun (``bc``: before), postpositions,
  no articles; plural and definite suffixes on the noun, subject agreement on the verb.

Languages of a family inherit most stems from a family proto-lexicon (the share is per language),
so a low-resource language can learn from its high-resource relatives; the rest of its stems are
its own. Some concepts have two words (synonyms, drawn 70/30 per occurrence), so a reference is
one of several correct translations and BLEU has a ceiling below 100.

Target text is made of tokens: stems, suffix tokens written ``##x`` (joined to the previous
token), articles and adpositions as words, and a final ``.``; ``detokenize`` joins them into the
reference string and capitalizes the first letter. ``parse`` inverts a realization back to its
meaning (synonyms map to their concept), which the tests use to check the languages are
well-formed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

# -- the source language: English -------------------------------------------------------------
NOUNS = (
    "dog", "cat", "bird", "horse", "farmer", "teacher", "child", "doctor", "king", "queen",
    "friend", "baker", "river", "tree", "house", "garden", "city", "road", "book", "letter",
    "ship", "stone", "apple", "flower", "song", "window", "table", "chair", "boat", "lamp",
    "girl", "boy", "wolf", "fox", "bridge", "tower", "village", "field", "mountain", "cup",
)  # fmt: skip
# irregular plurals; every other noun adds "s"
PLURAL = {"child": "children", "wolf": "wolves", "fox": "foxes", "city": "cities"}
ADJECTIVES = (
    "small", "big", "old", "young", "red", "green", "quiet", "loud", "happy", "tired",
    "dark", "bright", "strong", "gentle", "clever", "brave", "cold", "warm", "rich", "poor",
)  # fmt: skip
VERBS = (  # (plain, third person singular, past)
    ("see", "sees", "saw"), ("find", "finds", "found"), ("like", "likes", "liked"),
    ("help", "helps", "helped"), ("carry", "carries", "carried"), ("follow", "follows", "followed"),
    ("watch", "watches", "watched"), ("paint", "paints", "painted"), ("visit", "visits", "visited"),
    ("call", "calls", "called"), ("build", "builds", "built"), ("push", "pushes", "pushed"),
    ("remember", "remembers", "remembered"), ("love", "loves", "loved"),
    ("want", "wants", "wanted"), ("bring", "brings", "brought"), ("hear", "hears", "heard"),
    ("keep", "keeps", "kept"), ("take", "takes", "took"), ("draw", "draws", "drew"),
)  # fmt: skip
PREPOSITIONS = ("near", "behind", "under", "beside", "above", "without", "with", "before")

# -- meanings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NounPhrase:
    noun: int
    adjectives: tuple[int, ...] = ()
    plural: bool = False
    definite: bool = True


@dataclass(frozen=True)
class Sentence:
    subject: NounPhrase
    verb: int
    obj: NounPhrase
    past: bool = False
    adposition: int | None = None  # with ``adjunct``: an adpositional phrase
    adjunct: NounPhrase | None = None


def draw_sentence(rng: random.Random) -> Sentence:
    def np() -> NounPhrase:
        k = rng.choices((0, 1, 2), weights=(0.45, 0.4, 0.15))[0]
        return NounPhrase(
            rng.randrange(len(NOUNS)),
            tuple(rng.sample(range(len(ADJECTIVES)), k)),
            rng.random() < 0.35,
            rng.random() < 0.6,
        )

    has_pp = rng.random() < 0.5
    return Sentence(
        np(),
        rng.randrange(len(VERBS)),
        np(),
        rng.random() < 0.4,
        rng.randrange(len(PREPOSITIONS)) if has_pp else None,
        np() if has_pp else None,
    )


def english(s: Sentence) -> tuple[str, ...]:
    """English tokens (words and a final ``.``; the first word capitalized)."""

    def np(p: NounPhrase) -> list[str]:
        det = "the" if p.definite else ("some" if p.plural else "a")
        noun = NOUNS[p.noun]
        noun = PLURAL.get(noun, noun + "s") if p.plural else noun
        if det == "a" and (ADJECTIVES[p.adjectives[0]] if p.adjectives else noun)[0] in "aeiou":
            det = "an"
        return [det, *(ADJECTIVES[a] for a in p.adjectives), noun]

    plain, third, past = VERBS[s.verb]
    verb = past if s.past else (plain if s.subject.plural else third)
    words = [*np(s.subject), verb, *np(s.obj)]
    if s.adjunct is not None:
        words += [PREPOSITIONS[s.adposition], *np(s.adjunct)]
    words[0] = words[0].capitalize()
    return (*words, ".")


# -- target languages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    """How one target language realizes a meaning; lexicons are drawn from ``family``'s seed."""

    code: str
    family: str  # "A" or "B"
    train_size: int  # training pairs in the default corpus
    resource: str  # "high" or "low"
    share: float  # fraction of stems inherited from the family proto-lexicon
    articles: bool = True  # A: article words; otherwise a definite suffix on the noun
    adjective_first: bool = True
    suffix_shift: int = 0  # picks this language's variant of the family's suffixes


LANGUAGES: tuple[Language, ...] = (
    Language("aa", "A", 24_000, "high", 1.0),
    Language("ab", "A", 8_000, "high", 0.75),
    Language("ac", "A", 600, "low", 0.6, articles=False, suffix_shift=1),
    Language("ba", "B", 16_000, "high", 1.0, articles=False, adjective_first=False),
    Language("bb", "B", 600, "low", 0.7, articles=False, adjective_first=False, suffix_shift=1),
    Language("bc", "B", 300, "low", 0.6, articles=False, adjective_first=True, suffix_shift=2),
)
BY_CODE = {lang.code: lang for lang in LANGUAGES}

# family sound inventories: stems are two or three syllables of these
_SYLLABLES = {
    "A": ([*"ptkmnslrv"], [*"aeiou"], ["", "", "n", "r", "s"]),
    "B": ([*"bdgzhwyq"], ["a", "e", "i", "o", "u", "y", "aa", "ei"], ["", "", "k", "m", "l"]),
}
# suffix variants per family; a language takes variant ``suffix_shift`` of each
_SUFFIXES = {
    "A": {
        "plural": ("##en", "##ar", "##i"),
        "definite": ("##et", "##um", "##is"),
        "adj": (
            ("##a", "##o", "##ar", "##or"),
            ("##e", "##u", "##er", "##ur"),
            ("##a", "##i", "##an", "##in"),
        ),
        "present": ("##t", "##r", "##s"),
        "past": ("##de", "##ta", "##te"),
        "subj_pl": ("##n", "##m", "##n"),
    },
    "B": {
        "plural": ("##lar", "##ler", "##lu"),
        "definite": ("##ka", "##ke", "##ki"),
        "adj": (("",) * 4,) * 3,  # family B adjectives do not agree
        "present": ("##ar", "##er", "##ur"),
        "past": ("##di", "##ti", "##du"),
        "subj_pl": ("##iz", "##uz", "##az"),
    },
}  # fmt: skip
_ARTICLES = {  # family A articles by (definite, gender, plural); indefinite plural has none
    (True, 0, False): "den", (True, 1, False): "det", (True, 0, True): "de",
    (True, 1, True): "de", (False, 0, False): "en", (False, 1, False): "ett",
}  # fmt: skip
SYNONYM_RATE = 0.3  # fraction of concepts with a second word
SYNONYM_WEIGHTS = (0.7, 0.3)


@dataclass
class Lexicon:
    """One language's words: concept index -> its words (one or two synonyms), per category."""

    nouns: list[tuple[str, ...]]
    adjectives: list[tuple[str, ...]]
    verbs: list[tuple[str, ...]]
    adpositions: list[tuple[str, ...]]
    genders: list[int]  # per noun concept, inherited from the family
    reverse: dict[str, tuple[str, int]] = field(default_factory=dict)  # word -> (category, index)


CATEGORIES = (
    ("nouns", NOUNS),
    ("adjectives", ADJECTIVES),
    ("verbs", VERBS),
    ("adpositions", PREPOSITIONS),
)


def _word(rng: random.Random, family: str, taken: set[str]) -> str:
    onsets, vowels, codas = _SYLLABLES[family]
    while True:
        n = rng.choice((2, 2, 3))
        w = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(n))
        if w not in taken and len(w) >= 3:
            taken.add(w)
            return w


def build_lexicons(seed: int) -> dict[str, Lexicon]:
    """Every target language's lexicon, deterministic in ``seed``. Stems are unique across
    languages except where a language inherits its family's proto stem (then shared)."""
    rng = random.Random(f"lexicon:{seed}")
    taken: set[str] = set(_ARTICLES.values()) | {"de"}
    proto: dict[str, dict[str, list[str]]] = {}
    genders: dict[str, list[int]] = {}
    for fam in ("A", "B"):
        proto[fam] = {cat: [_word(rng, fam, taken) for _ in src] for cat, src in CATEGORIES}
        genders[fam] = [rng.randrange(2) for _ in NOUNS]
    lexicons = {}
    for lang in LANGUAGES:
        lr = random.Random(f"lexicon:{seed}:{lang.code}")
        words: dict[str, list[tuple[str, ...]]] = {}
        for cat, src in CATEGORIES:
            entries = []
            for i in range(len(src)):
                first = proto[lang.family][cat][i]
                if lr.random() >= lang.share:
                    first = _word(lr, lang.family, taken)
                syn = cat != "adpositions" and lr.random() < SYNONYM_RATE
                entries.append((first, _word(lr, lang.family, taken)) if syn else (first,))
            words[cat] = entries
        lex = Lexicon(**words, genders=genders[lang.family])
        for cat, _ in CATEGORIES:
            for i, ws in enumerate(getattr(lex, cat)):
                for w in ws:
                    lex.reverse[w] = (cat, i)
        lexicons[lang.code] = lex
    return lexicons


def _suffix(lang: Language, kind: str) -> str:
    variants = _SUFFIXES[lang.family][kind]
    return variants[lang.suffix_shift % len(variants)]


def realize(s: Sentence, lang: Language, lex: Lexicon, rng: random.Random) -> tuple[str, ...]:
    """Target tokens of meaning ``s``; ``rng`` picks among synonyms."""

    def pick(ws: tuple[str, ...]) -> str:
        return ws[0] if len(ws) == 1 else rng.choices(ws, weights=SYNONYM_WEIGHTS)[0]

    def np(p: NounPhrase) -> list[str]:
        gender = lex.genders[p.noun]
        noun = [pick(lex.nouns[p.noun])]
        if p.plural:
            noun.append(_suffix(lang, "plural"))
        if p.definite and not lang.articles:
            noun.append(_suffix(lang, "definite"))
        agree = _suffix(lang, "adj")[gender + 2 * p.plural]
        adjs = []
        for a in p.adjectives:
            adjs += [pick(lex.adjectives[a])] + ([agree] if agree else [])
        det = []
        if lang.articles and (p.definite or not p.plural):
            det = [_ARTICLES[(p.definite, gender, p.plural)]]
        return det + (adjs + noun if lang.adjective_first else noun + adjs)

    verb = [pick(lex.verbs[s.verb]), _suffix(lang, "past" if s.past else "present")]
    if s.subject.plural:
        verb.append(_suffix(lang, "subj_pl"))
    subj, obj = np(s.subject), np(s.obj)
    pp: list[str] = []
    if s.adjunct is not None:
        adp = lex.adpositions[s.adposition][0]
        pp = [adp, *np(s.adjunct)] if lang.family == "A" else [*np(s.adjunct), adp]
    if lang.family == "A":
        tokens = subj + verb + obj + pp
    else:
        tokens = subj + obj + pp + verb
    return (*tokens, ".")


def detokenize(tokens: Sequence[str]) -> str:
    """Join ``##`` suffixes to their word, attach the final ``.``, capitalize the first letter."""
    out: list[str] = []
    for t in tokens:
        if t.startswith("##"):
            out.append(t[2:])
        elif t == "." or not out:
            out.append(t)
        else:
            out.append(" " + t)
    text = "".join(out)
    return text[:1].upper() + text[1:]


class ParseError(ValueError):
    """Tokens that no meaning realizes in this language."""


def parse(tokens: Sequence[str], lang: Language, lex: Lexicon) -> Sentence:
    """The meaning whose realization in ``lang`` is ``tokens`` (synonyms map to their concept);
    raises ``ParseError`` on anything the grammar does not make."""
    if not tokens or tokens[-1] != ".":
        raise ParseError("a sentence ends with '.'")
    words: list[list[str]] = []
    for t in tokens[:-1]:
        if t.startswith("##"):
            if not words:
                raise ParseError(f"suffix {t} starts the sentence")
            words[-1].append(t)
        else:
            words.append([t])
    articles = {v: k for k, v in _ARTICLES.items()}
    items = []  # (kind, value, suffixes)
    for w in words:
        stem, sufs = w[0], tuple(w[1:])
        if lang.articles and stem in articles and not sufs:
            items.append(("det", articles[stem], stem))
        elif stem in lex.reverse:
            cat, i = lex.reverse[stem]
            items.append((cat, i, sufs))
        else:
            raise ParseError(f"{stem!r} is not a word of {lang.code}")

    verbs = [k for k, it in enumerate(items) if it[0] == "verbs"]
    if len(verbs) != 1:
        raise ParseError(f"expected one verb, found {len(verbs)}")
    _, verb, vsufs = items[verbs[0]]
    past = vsufs[:1] == (_suffix(lang, "past"),)
    if not past and vsufs[:1] != (_suffix(lang, "present"),):
        raise ParseError(f"verb suffixes {vsufs} mark no tense")
    subj_pl = vsufs[1:] == (_suffix(lang, "subj_pl"),)
    if vsufs[1:] and not subj_pl:
        raise ParseError(f"verb suffixes {vsufs} are not an agreement")
    rest = items[: verbs[0]] + items[verbs[0] + 1 :]

    phrases: list[tuple[int | None, NounPhrase]] = []  # (adposition, noun phrase)
    pending_adp: int | None = None
    k = 0
    while k < len(rest):
        kind = rest[k][0]
        if kind == "adpositions":
            if lang.family == "A":
                pending_adp = rest[k][1]
            else:
                if not phrases or phrases[-1][0] is not None:
                    raise ParseError("a postposition follows no noun phrase")
                phrases[-1] = (rest[k][1], phrases[-1][1])
            k += 1
            continue
        # one noun phrase: [det] adj* noun | noun adj*  (per language)
        det, det_word = None, None
        if kind == "det":
            det, det_word = rest[k][1], rest[k][2]
            k += 1
        adjs: list[tuple[int, tuple[str, ...]]] = []
        if lang.adjective_first:
            while k < len(rest) and rest[k][0] == "adjectives":
                adjs.append(rest[k][1:])
                k += 1
        if k >= len(rest) or rest[k][0] != "nouns":
            raise ParseError("a noun phrase has no noun")
        _, noun, nsufs = rest[k]
        k += 1
        if not lang.adjective_first:
            while k < len(rest) and rest[k][0] == "adjectives":
                adjs.append(rest[k][1:])
                k += 1
        plural = _suffix(lang, "plural") in nsufs
        definite = det[0] if det is not None else _suffix(lang, "definite") in nsufs
        expect = ((_suffix(lang, "plural"),) if plural else ()) + (
            (_suffix(lang, "definite"),) if definite and not lang.articles else ()
        )
        if nsufs != expect:
            raise ParseError(f"noun suffixes {nsufs} are not well-formed")
        agree = _suffix(lang, "adj")[lex.genders[noun] + 2 * plural]
        for _, asufs in adjs:
            if asufs != ((agree,) if agree else ()):
                raise ParseError(f"adjective suffixes {asufs} do not agree with the noun")
        if lang.articles and (definite or not plural):
            if det is None or _ARTICLES[(definite, lex.genders[noun], plural)] != det_word:
                raise ParseError("a noun phrase lacks its article or has the wrong one")
        elif det is not None:
            raise ParseError("an indefinite plural takes no article")
        phrase = NounPhrase(noun, tuple(a for a, _ in adjs), plural, definite)
        phrases.append((pending_adp, phrase))
        pending_adp = None
    core = [p for a, p in phrases if a is None]
    pps = [(a, p) for a, p in phrases if a is not None]
    if len(core) != 2 or len(pps) > 1:
        raise ParseError(f"expected subject, object and at most one adjunct; got {phrases}")
    if subj_pl != core[0].plural:
        raise ParseError("the verb does not agree with the subject")
    adposition, adjunct = pps[0] if pps else (None, None)
    meaning = Sentence(core[0], verb, core[1], past, adposition, adjunct)
    # word order and stray words: the tokens must be this meaning's realization, up to synonyms
    if _concepts(tokens, lex) != _concepts(realize(meaning, lang, lex, random.Random(0)), lex):
        raise ParseError(f"the words are not in {lang.code}'s order")
    return meaning


def _concepts(tokens: Sequence[str], lex: Lexicon) -> tuple:
    """Tokens with every stem replaced by its concept (synonyms become equal)."""
    return tuple(lex.reverse.get(t, t) for t in tokens)


# -- the corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    source: tuple[str, ...]  # English tokens
    target: tuple[str, ...]  # target tokens
    reference: str  # detokenized target: what BLEU compares with


def _pair(s: Sentence, lang: Language, lex: Lexicon, rng: random.Random) -> Pair:
    tgt = realize(s, lang, lex, rng)
    return Pair(english(s), tgt, detokenize(tgt))


def generate(
    languages: Sequence[str] | None = None,
    sizes: dict[str, int] | None = None,
    held_out: int = 500,
    seed: int = 0,
    eval_seed: int | None = None,
) -> dict[str, dict[str, list[Pair]]]:
    """Per language: ``train`` (``sizes[code]`` pairs, default the language's ``train_size``),
    ``validation`` and ``test`` (``held_out`` each; no English sentence of a held-out split is
    in that language's training split). Deterministic in ``seed``; with ``eval_seed`` (the
    harness's evaluation seed) the held-out sentences and their realizations are drawn from it
    instead, and the training split stays exactly the one of ``seed``."""
    codes = list(languages) if languages is not None else [lang.code for lang in LANGUAGES]
    if not codes:
        raise ValueError("the corpus needs at least one target language")
    unknown = [c for c in codes if c not in BY_CODE]
    if unknown:
        raise ValueError(f"unknown language code(s) {unknown}; known: {sorted(BY_CODE)}")
    sizes = dict(sizes or {})
    bad = {c: n for c, n in sizes.items() if c not in codes or int(n) < 1}
    if bad or held_out < 1:
        raise ValueError(
            f"sizes must be >= 1 and name languages in {codes}; got {bad or {'held_out': held_out}}"
        )
    lexicons = build_lexicons(seed)
    corpus = {}
    for code in codes:
        lang, lex = BY_CODE[code], lexicons[code]
        rng = random.Random(f"corpus:{seed}:{code}")
        n_train = int(sizes.get(code, lang.train_size))
        train, seen = [], set()
        for _ in range(n_train):
            s = draw_sentence(rng)
            seen.add(s)
            train.append(s)
        held = []
        while len(held) < 2 * held_out:
            s = draw_sentence(rng)
            if s not in seen:
                seen.add(s)
                held.append(s)

        corpus[code] = {"train": [_pair(s, lang, lex, rng) for s in train]}
        if eval_seed is not None:  # the public draw above only kept the training split as is
            rng = random.Random(f"corpus-eval:{eval_seed}:{code}")
            held = []
            while len(held) < 2 * held_out:
                s = draw_sentence(rng)
                if s not in seen:
                    seen.add(s)
                    held.append(s)
        corpus[code]["validation"] = [_pair(s, lang, lex, rng) for s in held[:held_out]]
        corpus[code]["test"] = [_pair(s, lang, lex, rng) for s in held[held_out:]]
    return corpus


def vocabulary(seed: int = 0) -> list[str]:
    """Every token the corpus can contain (sources and all targets), sorted: the closed
    vocabulary of the default workload."""
    toks: set[str] = {"."}
    for n in NOUNS:
        toks |= {n, PLURAL.get(n, n + "s")}
    toks |= set(ADJECTIVES) | set(PREPOSITIONS) | {"the", "a", "an", "some"}
    for forms in VERBS:
        toks |= set(forms)
    toks |= {t.capitalize() for t in ("the", "a", "an", "some")}
    toks |= set(_ARTICLES.values())
    for fam in _SUFFIXES.values():
        for variants in fam.values():
            for v in variants:
                toks |= {x for x in (v if isinstance(v, tuple) else (v,)) if x}
    for lex in build_lexicons(seed).values():
        toks |= set(lex.reverse)
    return sorted(toks)
