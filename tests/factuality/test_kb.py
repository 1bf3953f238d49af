"""The knowledge base and its biographies: deterministic, bioS-shaped, and exactly recoverable."""

from __future__ import annotations

import pytest
import torch

from harness.api import ContractError
from workloads.factuality import SPECS, FactualityWorkload
from workloads.factuality import kb as kbmod


def test_generator_is_deterministic_and_seeded():
    a, b = kbmod.generate_kb(30, 10, seed=3), kbmod.generate_kb(30, 10, seed=3)
    assert a == b
    assert kbmod.biographies(a, 3) == kbmod.biographies(b, 3)
    c = kbmod.generate_kb(30, 10, seed=4)
    assert [p.name for p in c.people] != [p.name for p in a.people]


def test_people_are_unique_and_consistent():
    kb = kbmod.generate_kb(200, 100, seed=0)
    assert len({p.name for p in kb.people}) == 300
    assert len(kb.majority) == 200 and len(kb.minority) == 100
    for p in kb.people:
        assert p.attributes["work_city"] == kb.headquarters[p.attributes["employer"]]
        for a in kbmod.ATTRIBUTES:
            assert p.attributes[a] in kb.values[a]


def test_biographies_follow_bios():
    kb = kbmod.generate_kb(20, 10, seed=1)
    bios = kbmod.biographies(kb, multi=5)
    per_person: dict[int, list] = {}
    for person, sentences in bios:
        per_person.setdefault(person.index, []).append(sentences)
        assert sorted(s.attribute for s in sentences) == sorted(kbmod.ATTRIBUTES)
        assert sentences[0].text.count(person.name) == 1  # the first sentence names them
        for s in sentences[1:]:
            assert person.name not in s.text  # the rest use a pronoun
        for s in sentences:
            value = person.attributes[s.attribute]
            assert s.text[s.value_start :].startswith(value)
    for p in kb.people:
        got = per_person[p.index]
        if p.majority:
            assert len(got) == 5
            assert len({tuple(s.attribute for s in b) for b in got}) > 1  # permuted
        else:
            assert len(got) == 1
            assert [s.attribute for s in got[0]] == list(kbmod.ATTRIBUTES)  # fixed order


def test_every_template_is_used_and_distinct():
    for attribute, templates in kbmod.TEMPLATES.items():
        assert len(set(templates)) == kbmod.TEMPLATES_PER_ATTRIBUTE, attribute
        for t in templates:
            assert "{v}" in t and ("{s}" in t or "{o}" in t)


def test_unknown_attribute_and_bad_sizes_are_clear():
    kb = kbmod.generate_kb(5, 4, seed=0)
    with pytest.raises(kbmod.KnowledgeBaseError, match="unknown attribute 'height'"):
        kb.value(kb.people[0], "height")
    with pytest.raises(kbmod.KnowledgeBaseError, match="unknown attribute"):
        kbmod.question(kb.people[0], "height")
    with pytest.raises(kbmod.KnowledgeBaseError, match="minority"):
        kbmod.generate_kb(5, 1)
    with pytest.raises(kbmod.KnowledgeBaseError, match="multi"):
        kbmod.biographies(kb, 0)


def test_workload_documents_carry_topic_and_pivots():
    w = FactualityWorkload(SPECS["smoke"], torch.device("cpu"))
    kinds = {d.kind for d in w.documents}
    assert kinds == {"bio", "qa"}
    for d in w.documents:
        name = w.decode(w.topic_tokens(d.topic))
        text = w.decode([t for s in d.sentences for t in s])
        if d.kind == "bio":
            assert name in text
        else:
            assert name in text and text.startswith("Question:")
        person = w._kb.people[d.topic]
        for s, k in zip(d.sentences, d.pivots, strict=True):
            tail = w.decode(s[k:])  # from the value (bio) or the answer (QA) to the full stop
            assert tail.endswith(".")
            assert any(tail.startswith(v) for v in person.attributes.values()), tail


def test_empty_or_unknown_dataset_gives_clear_errors():
    import dataclasses

    with pytest.raises(ContractError, match="minority"):
        FactualityWorkload(dataclasses.replace(SPECS["smoke"], n_minority=0), torch.device("cpu"))
    with pytest.raises(ContractError, match="unknown factuality dataset"):
        FactualityWorkload(dataclasses.replace(SPECS["smoke"], dataset="wiki"), "cpu")
    with pytest.raises(ContractError, match="prompts_path"):
        FactualityWorkload(SPECS["full"], torch.device("cpu"))
    w = FactualityWorkload(SPECS["smoke"], torch.device("cpu"))
    with pytest.raises(ContractError, match="closed vocabulary"):
        w.encode("Zyzzyva")
