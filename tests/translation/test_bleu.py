"""``workloads.translation.bleu``: corpus BLEU as sacrebleu computes it (13a, mixed case, exp
smoothing), checked against sacrebleu's defaults and against values worked out by hand from
BLEU's definition.

By hand (sacrebleu 2.x, ``BLEU.compute_bleu``): n-gram counts are clipped by the reference and
summed over the corpus; p_n = correct_n / total_n; with exp smoothing the k-th order whose count
is 0 gets p_n = 1 / (2^k total_n); BP = exp(1 - r / c) when the hypothesis length c is below the
reference length r, else 1; BLEU = 100 BP (p_1 p_2 p_3 p_4)^(1/4); no match at all gives 0.
"""

from __future__ import annotations

import math
import random

import pytest

sacrebleu = pytest.importorskip("sacrebleu")

from workloads.translation.bleu import SETTINGS, corpus_bleu, signature  # noqa: E402

# one sentence: the hand-made example of the module docstring
HYP1, REF1 = "the cat sat on a mat", "the cat lay on a mat today"
# 1-grams 5/6, 2-grams 3/5 (the cat, on a, a mat), 3-grams 1/4 (on a mat), 4-grams 0/3 -> 1/(2*3)
# c = 6 < r = 7
BLEU1 = 100 * math.exp(1 - 7 / 6) * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
HYP2, REF2 = "the cat sat on mat", "the cat lay on the mat"
# 1-grams 4/5, 2-grams 1/4 (the cat), 3-grams 0/3 -> 1/(2*3), 4-grams 0/2 -> 1/(4*2); c=5 < r=6
BLEU2 = 100 * math.exp(1 - 6 / 5) * (4 / 5 * 1 / 4 * 1 / 6 * 1 / 8) ** 0.25
# the corpus of both: counts summed [9, 4, 1, 0] of [11, 9, 7, 5]; c = 11 < r = 13
BLEU12 = 100 * math.exp(1 - 13 / 11) * (9 / 11 * 4 / 9 * 1 / 7 * 1 / 10) ** 0.25

KNOWN = [
    (["Den hunden sert katten."], ["Den hunden sert katten."]),
    (["Den hunden sert katten."], ["Det hunden sert katten vid floden."]),
    ([HYP1, HYP2], [REF1, REF2]),
    (
        ["Zuklarka bodiiz.", "Hello, world!", "a b c d e f g", "It's 3.5 km (roughly)."],
        ["Zuklarka bodiiz hi.", "Hello world.", "a b c d e f", "It is 3.5 km, roughly."],
    ),
    (["completely different"], ["nothing in common here"]),
    (["The Cat"], ["the cat"]),
]


@pytest.mark.parametrize(("hyps", "refs"), KNOWN)
def test_equals_sacrebleu_defaults(hyps, refs):
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert corpus_bleu(hyps, refs) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_equals_sacrebleu_on_random_token_strings(seed):
    rng = random.Random(seed)
    words = ["a", "b", "c", "A", "B", "dd", "e", ",", ".", "!", "x-y", "3.5", "'s"]

    def sentence() -> str:
        return " ".join(rng.choices(words, k=rng.randint(1, 12)))

    n = rng.randint(1, 30)
    refs = [sentence() for _ in range(n)]
    hyps = [sentence() if rng.random() < 0.5 else r for r in refs]
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert corpus_bleu(hyps, refs) == pytest.approx(expected, abs=1e-12)


def test_settings_are_sacrebleu_defaults():
    assert SETTINGS == {"tokenize": "13a", "lowercase": False, "smooth_method": "exp"}
    default = sacrebleu.BLEU()
    assert default.tokenizer_signature == "13a"
    assert (default.lowercase, default.smooth_method, default.effective_order) == (
        False,
        "exp",
        False,
    )


def test_identical_corpora_score_100():
    refs = ["Den hunden sert katten.", "Zuklarka bodiiz.", "The cat sat on a mat near the river."]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0, abs=1e-9)


def test_case_matters():
    refs = ["The cat sat on a mat near the river today."]
    lower = ["the cat sat on a mat near the river today."]
    assert corpus_bleu(lower, refs) < 100.0
    assert corpus_bleu(lower, refs) == pytest.approx(sacrebleu.corpus_bleu(lower, [refs]).score)
    lowercased = sacrebleu.corpus_bleu(lower, [refs], lowercase=True).score
    assert lowercased == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("hyps", "refs", "value"),
    [([HYP1], [REF1], BLEU1), ([HYP2], [REF2], BLEU2), ([HYP1, HYP2], [REF1, REF2], BLEU12)],
)
def test_known_value_by_hand(hyps, refs, value):
    assert corpus_bleu(hyps, refs) == pytest.approx(value, abs=1e-9)


def test_corpus_bleu_is_not_the_mean_of_sentence_bleu():
    assert BLEU12 != pytest.approx((BLEU1 + BLEU2) / 2, abs=1e-3)


def test_longer_hypothesis_has_no_brevity_penalty():
    # 1-grams 6/7, 2-grams 5/6, 3-grams 4/5, 4-grams 3/4; c = 7 > r = 6
    value = 100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    assert corpus_bleu(["a b c d e f g"], ["a b c d e f"]) == pytest.approx(value, abs=1e-9)


def test_no_match_scores_zero():
    assert corpus_bleu(["completely different"], ["nothing in common here"]) == 0.0


def test_signature():
    sig = signature()
    for part in (
        "tok:13a",
        "case:mixed",
        "smooth:exp",
        "nrefs:1",
        f"version:{sacrebleu.__version__}",
    ):
        assert part in sig, sig
    assert signature() == sig
    corpus_bleu(["a b"], ["a b c"])  # scoring does not change it
    assert signature() == sig


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        corpus_bleu(["a"], ["a", "b"])


def test_empty_corpus():
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_bleu([], [])
