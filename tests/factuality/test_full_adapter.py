"""``workloads.factuality.full`` on small generated fixtures with the real FactualityPrompts schema.

The prompt files mimic ``prompts/fever_{factual,nonfactual}_final.jsonl`` of
nayeon7lee/FactualityPrompt (fields ``id``, ``prompt``, ``evidence_info`` as
``[[title, page id], ...]``; the type is the file); the Wikipedia pages are invented people and
places, written as a ``save_to_disk`` folder, a parquet file and a jsonl file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("tokenizers")

import torch  # noqa: E402

from workloads.factuality.full import (  # noqa: E402
    FactualityDataError,
    Prompt,
    build_full,
    evaluate_full,
    find_entities,
    load_documents,
    load_prompts,
    ne_error,
    split_sentences,
)
from workloads.factuality.model import GPT, GPTArch  # noqa: E402

LONG = "The long sentence lists " + ", ".join(f"item number {i}" for i in range(40)) + "."
PAGES = {
    "Alma Virtanen": (
        "Alma Virtanen is a painter who was born in Orlen in 1901. She studied at the Royal "
        "Academy of Kessel under Borin Maskell.\nHer work was shown in Teskara and Varnholm. "
        "Indeed. Virtanen died in 1978 in Orlen."
    ),
    "Orlen": (
        "Orlen is a port city on the Kessel River. It had 41,000 inhabitants in 1950! "
        "The city hosts the Grey Harbour festival every summer. " + LONG
    ),
    "Borin Maskell": (
        "Borin Maskell was a sculptor and teacher from Teskara. He taught at the Royal Academy "
        "of Kessel from 1921 to 1940. Was he famous? Maskell's students included Alma Virtanen."
    ),
    "Teskara": (
        "Teskara is a mountain town in northern Valdoria. Its old bridge was built in 1650 by "
        "the guild of Hanno Prell."
    ),
    "The Grey Harbour (novel)": (
        "The Grey Harbour is a 1932 novel by Ilse Moraven. It is set in Orlen during a long "
        "winter. The novel won the Kessel Prize in 1933."
    ),
    "Kessel River": (
        "The Kessel River flows from the Valdoria highlands to the sea at Orlen. It is 212 "
        "kilometres long."
    ),
}
FACTUAL = [
    {"id": "101", "prompt": "Alma Virtanen was born in Orlen.",
     "evidence_info": [["Alma Virtanen", "5501"]]},
    {"id": "102", "prompt": "Orlen is a port city.", "evidence_info": [["Orlen", "5502"]]},
    {"id": "103", "prompt": "Borin Maskell taught Alma Virtanen.",
     "evidence_info": [["Borin Maskell", "5503"], ["Alma Virtanen", "5501"]]},
    {"id": "104", "prompt": "The Grey Harbour is set in Orlen.",
     "evidence_info": [["The Grey Harbour (novel)", "5505"], ["The Grey Harbour (novel)", "5505"]]},
]  # fmt: skip
NONFACTUAL = [
    {"id": "201", "prompt": "Teskara is a coastal city in Brenmark.",
     "evidence_info": [["Teskara", "5504"]]},
    {"id": "202", "prompt": "The Kessel River is only 3 kilometres long.",
     "evidence_info": [["Kessel River", "5506"], ["Orlen", "5502"]]},
    {"id": "203", "prompt": "Alma Virtanen never painted.",
     "evidence_info": [["Alma Virtanen", "5501"]]},
]  # fmt: skip
LAYOUTS = ("save_to_disk", "parquet", "jsonl")
VOCAB, MAX_SENTENCE = 400, 40


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_pages(folder: Path, layout: str, pages: dict[str, str] = PAGES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ds = datasets.Dataset.from_dict({"title": list(pages), "text": list(pages.values())})
    if layout == "save_to_disk":
        ds.save_to_disk(str(folder))
    elif layout == "parquet":
        ds.to_parquet(str(folder / "pages-00000-of-00001.parquet"))
    else:
        _jsonl(folder / "pages.jsonl", [{"title": t, "text": x} for t, x in pages.items()])
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("factuality_prompts")
    _jsonl(root / "prompts" / "fever_factual_final.jsonl", FACTUAL)
    _jsonl(root / "prompts" / "fever_nonfactual_final.jsonl", NONFACTUAL)
    out = {"prompts": root / "prompts"}
    for layout in LAYOUTS:
        out[layout] = _write_pages(root / layout, layout)
    return out


@pytest.fixture(scope="module")
def corpus(data):
    return build_full(str(data["prompts"]), str(data["parquet"]), VOCAB, 0, MAX_SENTENCE)


def _expected_prompts() -> list[Prompt]:
    out = []
    for rows, label in ((FACTUAL, "factual"), (NONFACTUAL, "nonfactual")):
        for r in rows:
            titles = tuple(dict.fromkeys(t for t, _ in r["evidence_info"]))
            out.append(Prompt(r["id"], r["prompt"], label, titles[0], titles))
    return out


# -- loading -------------------------------------------------------------------------------


def test_load_prompts_keeps_every_field_in_order(data):
    got = load_prompts(str(data["prompts"]))
    assert got == _expected_prompts()
    assert got[3].titles == ("The Grey Harbour (novel)",)  # a repeated title counts once
    only = load_prompts(str(data["prompts"] / "fever_nonfactual_final.jsonl"))
    assert only == _expected_prompts()[len(FACTUAL) :]


def test_every_document_layout_loads_the_same_pages(data):
    for layout in LAYOUTS:
        got = load_documents(str(data[layout]))
        assert got == PAGES, layout
        assert list(got) == list(PAGES), layout


# -- the corpus ----------------------------------------------------------------------------


def test_documents_split_sentences_at_the_middle_word(corpus):
    tok = corpus.tokenizer
    assert corpus.topics == list(PAGES) and corpus.evidence == PAGES
    assert corpus.eos == 2 and corpus.pad == 0
    assert corpus.sentence_end and all(
        tok.decode([i]).endswith((".", "?", "!")) for i in corpus.sentence_end
    )
    seen: dict[int, list[str]] = {}
    for doc in corpus.documents:
        assert doc.kind == "text"
        ids = [t for s in doc.sentences for t in s]
        assert len(ids) <= MAX_SENTENCE  # a document is at most max_sentence_tokens long
        assert tok.encode(tok.decode(ids)) == ids  # the sentences join into one encoding
        for i, (sent, pivot) in enumerate(zip(doc.sentences, doc.pivots, strict=True)):
            assert len(sent) <= MAX_SENTENCE
            text = tok.decode(sent)
            assert text.startswith(" ") == (i > 0)  # later sentences carry their space
            words = text.split()
            k = len(words) // 2
            assert tok.decode(sent[:pivot]).split() == words[:k]
            assert tok.decode(sent[pivot:]).split() == words[k:]
            assert (tok.decode(sent[pivot:]).startswith(" ")) == (k > 0 or i > 0)
            seen.setdefault(doc.topic, []).append(text.strip())
    for topic, title in enumerate(corpus.topics):
        expected = [s for s in split_sentences(PAGES[title]) if s != LONG]
        assert seen[topic] == expected, title
    assert "Indeed." in seen[0]  # a one-word sentence: pivot 0
    assert tok.decode(corpus.topic_tokens(4)) == "The Grey Harbour (novel)"


def test_prompt_split_is_seeded_half_each_and_disjoint(data, corpus):
    split = corpus.prompts
    assert set(split) == {"validation", "test"}
    assert len(split["validation"]) == len(_expected_prompts()) // 2
    ids = [p.id for p in split["validation"] + split["test"]]
    assert sorted(ids) == sorted(p.id for p in _expected_prompts())  # disjoint, complete
    again = build_full(str(data["prompts"]), str(data["jsonl"]), VOCAB, 0, MAX_SENTENCE)
    assert again.prompts == split
    assert again.documents == corpus.documents  # any layout: the same corpus
    others = [
        build_full(str(data["prompts"]), str(data["jsonl"]), VOCAB, s, MAX_SENTENCE).prompts
        for s in (1, 2)
    ]
    assert any(o != split for o in others)


# -- the metric ----------------------------------------------------------------------------


def test_ne_error_counts_entities_missing_from_the_evidence():
    generation = "Alma Virtanen was later a teacher in Brenmark."
    assert find_entities(generation) == ["Alma Virtanen", "Brenmark"]
    assert ne_error(generation, PAGES["Alma Virtanen"]) == (1, 2)
    assert find_entities("In 1933 the novel won the Kessel Prize.") == ["1933", "Kessel Prize"]
    assert ne_error("It opened on May 3rd, 1650.", PAGES["Teskara"]) == (2, 3)  # May, 3 absent
    assert ne_error("nothing named here.", PAGES["Orlen"]) == (0, 0)


# -- bad input -----------------------------------------------------------------------------


def test_bad_input_raises_with_the_problem_named(data, tmp_path):
    pages = str(data["jsonl"])
    empty = _jsonl(tmp_path / "e" / "fever_factual_final.jsonl", [])
    with pytest.raises(FactualityDataError, match="empty"):
        load_prompts(str(empty))
    no_prompt = [{k: v for k, v in r.items() if k != "prompt"} for r in FACTUAL]
    missing = _jsonl(tmp_path / "m" / "fever_factual_final.jsonl", no_prompt)
    with pytest.raises(FactualityDataError, match="missing field.*'prompt'"):
        load_prompts(str(missing))
    one_missing = _jsonl(
        tmp_path / "m1" / "fever_factual_final.jsonl", [FACTUAL[0], {"id": "9", "prompt": "X."}]
    )
    with pytest.raises(FactualityDataError, match="row 2: missing field 'evidence_info'"):
        load_prompts(str(one_missing))
    unknown = _jsonl(tmp_path / "u" / "claims.jsonl", FACTUAL)
    with pytest.raises(FactualityDataError, match="unknown prompt-set name 'claims.jsonl'"):
        load_prompts(str(unknown))
    orphan = [*FACTUAL, {"id": "9", "prompt": "Zed.", "evidence_info": [["Nowhere Town", "1"]]}]
    orphans = _jsonl(tmp_path / "o" / "fever_factual_final.jsonl", orphan)
    with pytest.raises(FactualityDataError, match=r"no document.*\['Nowhere Town'\]"):
        build_full(str(orphans), pages, VOCAB, 0, MAX_SENTENCE)
    void = _write_pages(tmp_path / "void", "save_to_disk", {})
    with pytest.raises(FactualityDataError, match="corpus.*is empty"):
        load_documents(str(void))
    with pytest.raises(FactualityDataError, match="corpus.*is empty"):
        build_full(str(data["prompts"]), str(void), VOCAB, 0, MAX_SENTENCE)
    blank = _jsonl(tmp_path / "blank" / "pages.jsonl", [])
    with pytest.raises(FactualityDataError, match="corpus.*is empty"):
        load_documents(str(blank.parent))
    no_text = _jsonl(tmp_path / "no_text" / "pages.jsonl", [{"title": "Orlen", "text": "  "}])
    with pytest.raises(FactualityDataError, match="corpus.*is empty"):
        load_documents(str(no_text))


# -- evaluation ----------------------------------------------------------------------------


def test_evaluate_full_is_finite_bounded_and_deterministic(corpus):
    torch.manual_seed(0)
    arch = GPTArch(vocab=corpus.tokenizer.size, context=64, d_model=32, heads=2, layers=1, ffn=64)
    model = GPT(arch).eval()
    first = evaluate_full(model, corpus, "test", 4, 12, 7, "cpu")
    second = evaluate_full(model, corpus, "test", 4, 12, 7, "cpu")
    assert first == second
    settings = ("nucleus", "factual")
    metrics = ("ne_error", "entities", "distinct2")
    assert set(first) == {f"{m}_{s}" for m in metrics for s in settings}
    assert all(math.isfinite(v) for v in first.values())
    for s in settings:
        assert 0.0 <= first[f"ne_error_{s}"] <= 1.0
        assert 0.0 <= first[f"distinct2_{s}"] <= 1.0
        assert first[f"entities_{s}"] >= 0.0
    with pytest.raises(FactualityDataError, match="unknown split"):
        evaluate_full(model, corpus, "train", 4, 12, 7, "cpu")
