"""Factual precision, distinctness and the evaluator, exact against the knowledge base."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workloads.factuality import SPECS, FactualityWorkload
from workloads.factuality import kb as kbmod
from workloads.factuality.text import MentionTrie, WordVocab, distinct_n, fact_score


@pytest.fixture(scope="module")
def smoke():
    return FactualityWorkload(SPECS["smoke"], torch.device("cpu"), eval_seed=0)


def _score(w, person, text):
    ids = w.encode(text)
    return fact_score(w._trie, ids, w._truth[person.index])


def _bio_text(person) -> str:
    a = person.attributes
    return (
        f"{person.name} was born on {a['birth_date']}. He grew up in {a['birth_city']}. "
        f"He studied at {a['university']}. He majored in {a['major']}. "
        f"He worked for {a['employer']}. He was based in {a['work_city']}."
    )


def test_correct_biography_scores_one(smoke):
    person = smoke._kb.people[3]
    s = _score(smoke, person, _bio_text(person))
    assert s.mentions == 6 and s.correct == 6 and s.precision == 1.0


def test_wrong_attribute_scores_below_one(smoke):
    person = smoke._kb.people[3]
    other = next(c for c in kbmod.CITIES if c not in (person.attributes["birth_city"],
                                                     person.attributes["work_city"]))  # fmt: skip
    text = _bio_text(person).replace(f"grew up in {person.attributes['birth_city']}",
                                     f"grew up in {other}")  # fmt: skip
    s = _score(smoke, person, text)
    assert s.mentions == 6 and s.correct == 5 and s.precision == pytest.approx(5 / 6)
    wrong_date = text.replace(person.attributes["birth_date"], "May 3, 1931")
    if person.attributes["birth_date"] != "May 3, 1931":
        assert _score(smoke, person, wrong_date).correct == 4


def test_trie_takes_longest_match_and_multiword_values():
    vocab = WordVocab("New York City Kansas is in .".split())
    enc = vocab.encode_words
    trie = MentionTrie({"city": [enc(["New", "York"]), enc(["Kansas", "City"]), enc(["York"])]})
    found = trie.mentions(enc("New York is in Kansas City .".split()))
    assert [v for _, v, _ in found] == [tuple(enc(["New", "York"])), tuple(enc(["Kansas", "City"]))]
    truth = {"city": enc(["Kansas", "City"])}
    s = fact_score(trie, enc("New York is in Kansas City .".split()), truth)
    assert (s.correct, s.mentions) == (1, 2)
    assert fact_score(trie, enc("is in .".split()), truth).precision == 0.0  # no mention: 0


def test_distinct_n():
    assert distinct_n([[1, 2, 3, 4]], 2) == 1.0
    assert distinct_n([[1, 1, 1, 1, 1]], 2) == pytest.approx(1 / 4)
    assert distinct_n([[1, 2, 1, 2], [5]], 2) == pytest.approx((2 / 3 + 0) / 2)
    assert distinct_n([], 2) == 0.0


def test_evaluator_is_deterministic_and_complete(smoke):
    model = smoke.init_model(torch.Generator().manual_seed(0))
    a = smoke.evaluate(model, "test")
    b = smoke.evaluate(model, "test")
    assert a == b
    gens = ("fact_precision_nucleus", "fact_precision_factual", "distinct2_nucleus",
            "distinct2_factual", "mentions_nucleus")  # fmt: skip
    for key in ("qa_em", "qa_loss", *gens):
        assert key in a
    assert 0.0 <= a["qa_em"] <= 1.0
    # validation: the generations (guard and analysis metrics) only where the primary metric
    # meets the target, since the guard decides nothing elsewhere
    val = smoke.evaluate(model, "validation")
    assert val["qa_loss"] > smoke.spec.target and not set(gens) & set(val)
    met = dataclasses.replace(smoke.spec, target=val["qa_loss"] + 1.0)
    smoke.spec, old = met, smoke.spec
    try:
        full = smoke.evaluate(model, "validation")
    finally:
        smoke.spec = old
    assert set(gens) <= set(full) and full["qa_loss"] == val["qa_loss"]
    with pytest.raises(Exception, match="unknown split"):
        smoke.evaluate(model, "train")


def test_validation_and_test_people_are_held_out_minority(smoke):
    val, test = smoke._eval_people["validation"], smoke._eval_people["test"]
    assert val and test and not {p.index for p in val} & {p.index for p in test}
    assert all(not p.majority for p in val + test)
    qa_topics = {d.topic for d in smoke.documents if d.kind == "qa"}
    assert not qa_topics & {p.index for p in val + test}  # their questions are never trained


def test_a_model_that_knows_the_kb_answers_exactly(smoke):
    """An oracle 'model' that emits the known continuation proves the QA path is exact."""
    people = smoke._eval_people["validation"][:3]
    enc = smoke.encode
    table = {}
    for p in people:
        for a in kbmod.ATTRIBUTES:
            q, v = kbmod.question(p, a)
            table[tuple(enc(q))] = enc(v) + enc(".")

    class Oracle(torch.nn.Module):
        arch = smoke.arch

        def forward(self, ids):
            out = torch.full((*ids.shape, smoke.vocab_size), -1e9)
            for r, row in enumerate(ids.tolist()):
                for plen in range(len(row), 0, -1):
                    ans = table.get(tuple(row[:plen]))
                    if ans is not None:
                        k = len(row) - plen
                        out[r, -1, ans[k] if k < len(ans) else smoke.eos] = 0.0
                        break
                else:
                    out[r, -1, smoke.eos] = 0.0
            return out

    m = smoke.answer_questions(Oracle(), people)
    assert m["qa_em"] == 1.0


def test_evaluator_scores_only_the_workloads_architecture(smoke):
    import dataclasses

    from harness.api import ContractError
    from workloads.factuality.model import GPT

    wider = GPT(dataclasses.replace(smoke.arch, d_model=smoke.arch.d_model * 2))
    with pytest.raises(ContractError, match="factuality model must keep"):
        smoke.evaluate(wider, "validation")
