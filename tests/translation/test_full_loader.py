"""``workloads.translation.hf_pairs`` and ``workloads.translation.bpe`` on small generated fixtures.

The fixtures have the OPUS-100 schema (a ``translation`` field ``{code: text}``, configurations
"de-en" and "en-fr", splits ``train``, ``validation`` and ``test``) and are written in each local
layout; the hub is replaced by a fake ``datasets.load_dataset``. Every split mixes good rows, some
with surrounding whitespace, with rows that have an empty, blank or missing side, so the expected
pairs are the good rows, stripped, in order.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("tokenizers")

from workloads.translation.bpe import BpeVocab, train_bpe  # noqa: E402
from workloads.translation.hf_pairs import (  # noqa: E402
    DEFAULT_DATASET,
    PairsError,
    config_name,
    load_pairs,
)

LAYOUTS = ("save_to_disk", "parquet", "jsonl")
TARGETS = ("de", "fr")
SIZES = {"train": 60, "validation": 12, "test": 10}  # good rows per split
START = {"train": 0, "validation": 100, "test": 200}  # sentence numbers: unique across splits
WORDS = {  # English, German, French: accented text for the tokenizer
    "en": ("dog", "house", "river", "teacher", "city"),
    "de": ("Hund", "Haus", "Fluss", "Lehrer", "Straße"),
    "fr": ("chien", "maison", "rivière", "professeur", "ville"),
}
FRAMES = {
    "en": "The {} number {} is here.",
    "de": "Der {} Nummer {} ist schön.",
    "fr": "Le {} numéro {} est à côté.",
}
BAD = (("", "x"), ("Hi.", "   "), (" \n", "Hallo."), ("Hi.", None))  # dropped: a side is empty


def _text(lang: str, i: int) -> str:
    return FRAMES[lang].format(WORDS[lang][i % len(WORDS[lang])], i)


def _rows(target: str, split: str) -> list[dict]:
    """Rows as stored: good ones (some padded with whitespace), a bad one after every tenth."""
    rows = []
    for k in range(SIZES[split]):
        i = START[split] + k
        src = f"  {_text('en', i)} " if i % 7 == 0 else _text("en", i)
        tgt = f"{_text(target, i)}\t" if i % 5 == 0 else _text(target, i)
        rows.append({"en": src, target: tgt})
        if k % 10 == 9:
            bad_src, bad_tgt = BAD[(k // 10) % len(BAD)]
            rows.append({"en": bad_src, target: bad_tgt})
    return rows


def _expected(target: str, split: str) -> list[tuple[str, str]]:
    n = range(START[split], START[split] + SIZES[split])
    return [(_text("en", i), _text(target, i)) for i in n]


def _dataset(target: str, split: str, rows: list[dict] | None = None):
    languages = sorted(("en", target))
    features = datasets.Features({"translation": datasets.Translation(languages=languages)})
    rows = _rows(target, split) if rows is None else rows
    return datasets.Dataset.from_dict({"translation": rows}, features=features)


def _dataset_dict(target: str, splits=tuple(SIZES)):
    return datasets.DatasetDict({s: _dataset(target, s) for s in splits})


def _write(dd, layout: str, folder: Path) -> Path:
    """One configuration's DatasetDict in a local layout; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, ds in dd.items():
        if layout == "save_to_disk":
            dd.save_to_disk(str(folder))
            break
        if layout == "parquet":  # the hub repository's file names
            ds.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
        elif layout == "jsonl":  # a None side is written as a missing key
            lines = [
                json.dumps({"translation": {k: v for k, v in row.items() if v is not None}})
                for row in ds["translation"]
            ]
            (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            raise AssertionError(layout)
    return folder


def _write_targets(root: Path, layout: str, splits=tuple(SIZES)) -> Path:
    for target in TARGETS:
        _write(_dataset_dict(target, splits), layout, root / config_name("en", target))
    return root


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pairs")
    return {layout: _write_targets(root / layout, layout) for layout in LAYOUTS}


@pytest.fixture(scope="module")
def train_only(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_only")
    return {layout: _write_targets(root / layout, layout, ("train",)) for layout in LAYOUTS}


def _check_full(pairs, targets=TARGETS) -> None:
    assert list(pairs) == list(targets)
    for target in targets:
        assert list(pairs[target]) == ["train", "validation", "test"]
        for split, got in pairs[target].items():
            assert got == _expected(target, split), (target, split)


# -- layouts -----------------------------------------------------------------------------


def test_config_names_sort_the_codes():
    assert config_name("en", "de") == "de-en"
    assert config_name("en", "fr") == "en-fr"
    assert DEFAULT_DATASET == "Helsinki-NLP/opus-100"


def test_fixture_has_rows_to_drop():
    rows = _rows("de", "train")
    assert len(rows) == SIZES["train"] + 6
    assert any(r["de"] is None for r in rows) and any(r["en"] == "" for r in rows)
    assert any(r["en"] != r["en"].strip() for r in rows)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_loads_each_layout(layout, written):
    _check_full(load_pairs(DEFAULT_DATASET, TARGETS, str(written[layout])))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_single_target_may_lie_at_the_path_itself(layout, tmp_path):
    _write(_dataset_dict("fr"), layout, tmp_path / "d")
    _check_full(load_pairs(DEFAULT_DATASET, ["fr"], str(tmp_path / "d")), ["fr"])


def test_hub_reads_one_configuration_per_target(monkeypatch):
    calls = []

    def fake(name, config=None, *args, **kwargs):
        calls.append((name, config))
        return _dataset_dict({"de-en": "de", "en-fr": "fr"}[config])

    monkeypatch.setattr(datasets, "load_dataset", fake)
    _check_full(load_pairs(DEFAULT_DATASET, TARGETS))
    assert calls == [(DEFAULT_DATASET, "de-en"), (DEFAULT_DATASET, "en-fr")]

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match=r"'de-en' from the Hugging Face hub.*local path"):
        load_pairs(DEFAULT_DATASET, ["de"])


# -- caps and held-out splits ------------------------------------------------------------


def test_caps_keep_a_seeded_subset_of_training_pairs(written):
    path = str(written["parquet"])
    a = load_pairs(DEFAULT_DATASET, TARGETS, path, caps={"de": 15})
    full = _expected("de", "train")
    assert len(a["de"]["train"]) == 15
    assert set(a["de"]["train"]) <= set(full)
    assert a["de"]["train"] == [p for p in full if p in a["de"]["train"]]  # source order kept
    assert a["fr"]["train"] == _expected("fr", "train")  # uncapped
    for split in ("validation", "test"):  # caps only touch training pairs
        assert a["de"][split] == _expected("de", split)

    assert load_pairs(DEFAULT_DATASET, TARGETS, path, caps={"de": 15}) == a
    alone = load_pairs(DEFAULT_DATASET, ["de"], str(written["jsonl"]), caps={"de": 15})
    assert alone["de"] == a["de"]  # independent of the other targets and of the layout
    other = load_pairs(DEFAULT_DATASET, TARGETS, path, caps={"de": 15}, seed=1)
    assert len(other["de"]["train"]) == 15 and other["de"]["train"] != a["de"]["train"]
    big = load_pairs(DEFAULT_DATASET, TARGETS, path, caps={"de": 1000, "fr": 60})
    _check_full(big)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_missing_splits_are_held_out_of_train(layout, train_only, caplog):
    path = str(train_only[layout])
    with caplog.at_level(logging.INFO, logger="ttr.translation"):
        pairs = load_pairs(DEFAULT_DATASET, TARGETS, path, val_size=8, test_size=5)
    assert "no 'validation' split; held out 8 of 60" in caplog.text
    assert "no 'test' split; held out 5 of 60" in caplog.text
    for target in TARGETS:
        full = _expected(target, "train")
        splits = pairs[target]
        sizes = {s: len(p) for s, p in splits.items()}
        assert sizes == {"train": 47, "validation": 8, "test": 5}
        parts = [set(p) for p in splits.values()]
        assert sum(map(len, parts)) == len(set().union(*parts)) == 60  # disjoint, complete
        assert set().union(*parts) == set(full)
        for got in splits.values():
            assert got == [p for p in full if p in got]  # source order kept
    again = load_pairs(DEFAULT_DATASET, TARGETS, path, val_size=8, test_size=5)
    assert again == pairs
    other = load_pairs(DEFAULT_DATASET, TARGETS, path, val_size=8, test_size=5, seed=3)
    assert other["de"]["validation"] != pairs["de"]["validation"]


def test_only_the_missing_split_is_held_out(tmp_path):
    dd = _dataset_dict("de", ("train", "validation"))
    path = str(_write(dd, "jsonl", tmp_path / "de-en"))
    got = load_pairs(DEFAULT_DATASET, ["de"], path, val_size=30, test_size=7)["de"]
    assert got["validation"] == _expected("de", "validation")
    assert len(got["test"]) == 7 and len(got["train"]) == 53
    assert set(got["train"]) | set(got["test"]) == set(_expected("de", "train"))


def test_cap_applies_after_the_hold_out(train_only):
    path = str(train_only["save_to_disk"])
    pairs = load_pairs(DEFAULT_DATASET, ["de"], path, caps={"de": 10}, val_size=8, test_size=5)
    assert [len(p) for p in pairs["de"].values()] == [10, 8, 5]
    held = set(pairs["de"]["validation"]) | set(pairs["de"]["test"])
    assert not held & set(pairs["de"]["train"])


# -- errors ------------------------------------------------------------------------------


def test_error_too_few_pairs_to_hold_out(train_only):
    with pytest.raises(PairsError, match=r"cannot hold out .* from only 60 training pairs"):
        load_pairs(DEFAULT_DATASET, ["de"], str(train_only["jsonl"]), val_size=40, test_size=20)


def test_error_unknown_language_code_lists_the_codes_found(written, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: _dataset_dict("de"))
    with pytest.raises(PairsError, match=r"code\(s\) \['xx'\] not found.*codes \['de', 'en'\]"):
        load_pairs(DEFAULT_DATASET, ["xx"])
    with pytest.raises(PairsError, match=r"code\(s\) \['eng'\] not found.*codes \['de', 'en'\]"):
        load_pairs(DEFAULT_DATASET, ["de"], source="eng")
    mislabelled = _write(_dataset_dict("de"), "parquet", tmp_path / "en-xx")
    with pytest.raises(PairsError, match=r"en-xx: split 'train': language code\(s\) \['xx'\]"):
        load_pairs(DEFAULT_DATASET, ["xx"], str(mislabelled.parent))


def test_error_bad_target_lists():
    with pytest.raises(PairsError, match="no target languages"):
        load_pairs(DEFAULT_DATASET, [])
    with pytest.raises(PairsError, match=r"\['de'\] are given more than once"):
        load_pairs(DEFAULT_DATASET, ["de", "fr", "de"])
    with pytest.raises(PairsError, match="'en' is the source language"):
        load_pairs(DEFAULT_DATASET, ["de", "en"])


def test_error_bad_caps_and_sizes():
    with pytest.raises(PairsError, match=r"caps for \['it'\], which are not targets"):
        load_pairs(DEFAULT_DATASET, ["de"], caps={"it": 5})
    with pytest.raises(PairsError, match=r"caps must be positive integers.*\{'de': 0\}"):
        load_pairs(DEFAULT_DATASET, ["de"], caps={"de": 0})
    with pytest.raises(PairsError, match="val_size must be a positive integer"):
        load_pairs(DEFAULT_DATASET, ["de"], val_size=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_error_split_empty_after_filtering(layout, tmp_path):
    dd = _dataset_dict("de")
    blank = [{"en": "Hi.", "de": " "}, {"en": "", "de": "x"}]
    dd["validation"] = _dataset("de", "validation", blank)
    path = _write(dd, layout, tmp_path / "de-en")
    with pytest.raises(PairsError, match=r"split 'validation' has no pairs .*\(2 rows read\)"):
        load_pairs(DEFAULT_DATASET, ["de"], str(path))


def test_error_rows_without_translation_field(tmp_path):
    ds = datasets.Dataset.from_dict({"en": ["Hi."], "de": ["Hallo."]})
    path = tmp_path / "de-en"
    datasets.DatasetDict(train=ds).save_to_disk(str(path))
    with pytest.raises(PairsError, match=r"no 'translation' field; found fields \['en', 'de'\]"):
        load_pairs(DEFAULT_DATASET, ["de"], str(tmp_path))


def test_error_translation_field_not_text_dicts(tmp_path):
    for name, column, message in (
        ("s", ["Hello."], r"field 'translation' is Value\('string'\); expected a dict"),
        ("n", [{"en": 1, "de": "x"}], r"has a text that is not a string: 1"),
    ):
        ds = datasets.Dataset.from_dict({"translation": column})
        datasets.DatasetDict(train=ds).save_to_disk(str(tmp_path / name))
        with pytest.raises(PairsError, match=message):
            load_pairs(DEFAULT_DATASET, ["de"], str(tmp_path / name))


def test_error_nonexistent_path_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*save_to_disk"):
        load_pairs(DEFAULT_DATASET, ["de"], str(tmp_path / "nope"))
    (tmp_path / "f.jsonl").write_text("")
    with pytest.raises(PairsError, match="is not a directory"):
        load_pairs(DEFAULT_DATASET, ["de"], str(tmp_path / "f.jsonl"))


def test_error_unrecognized_layout_says_what_was_tried(tmp_path):
    (tmp_path / "de-en").mkdir()
    (tmp_path / "de-en" / "notes.txt").write_text("hello")
    with pytest.raises(
        PairsError, match=r"no translation data recognized.*save_to_disk.*parquet.*JSON lines"
    ):
        load_pairs(DEFAULT_DATASET, ["de"], str(tmp_path))


def test_error_missing_configuration_folder(written):
    with pytest.raises(PairsError, match=r"no folder 'en-it'.*found folders \['de-en', 'en-fr'\]"):
        load_pairs(DEFAULT_DATASET, ["de", "it"], str(written["jsonl"]))


def test_error_no_train_split(tmp_path):
    dd = _dataset_dict("de", ("validation", "test"))
    with pytest.raises(PairsError, match=r"no 'train' split; found splits \['test', 'valid"):
        load_pairs(DEFAULT_DATASET, ["de"], str(_write(dd, "save_to_disk", tmp_path / "d")))
    with pytest.raises(PairsError, match=r"splits \['test', 'validation'\] but none for 'train'"):
        load_pairs(DEFAULT_DATASET, ["de"], str(_write(dd, "parquet", tmp_path / "p")))


def test_error_file_of_unknown_split(tmp_path):
    path = _write(_dataset_dict("de", ("train",)), "jsonl", tmp_path / "de-en")
    (path / "dev.jsonl").write_text("")
    with pytest.raises(PairsError, match=r"dev.jsonl: cannot tell its split.*<split>.jsonl"):
        load_pairs(DEFAULT_DATASET, ["de"], str(tmp_path))


# -- the joint BPE vocabulary ------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return [t for target in TARGETS for pair in _expected(target, "train") for t in pair]


@pytest.fixture(scope="module")
def vocab(corpus) -> BpeVocab:
    return train_bpe(corpus, 400, TARGETS)


def test_bpe_specials_and_tags_have_fixed_ids(vocab):
    assert (vocab.pad, vocab.bos, vocab.eos, vocab.unk) == (0, 1, 2, 3)
    assert (vocab.tag("de"), vocab.tag("fr")) == (4, 5)
    assert 6 + 256 < vocab.size <= 400
    with pytest.raises(ValueError, match=r"no tag for language 'xx'.*\['de', 'fr'\]"):
        vocab.tag("xx")


def test_bpe_round_trip(vocab):
    texts = [
        _text("en", 3),
        _text("de", 4),
        _text("fr", 2),
        "Der Lehrer  ist schön, à côté: déjà vu!",
        "Ünïcödé ñ 日本語 <s> </s> <2de>",  # unseen characters and special spellings
    ]
    specials = {vocab.pad, vocab.bos, vocab.eos, vocab.unk, vocab.tag("de"), vocab.tag("fr")}
    for text in texts:
        ids = vocab.encode(text)
        assert ids and all(0 <= i < vocab.size for i in ids)
        assert not specials & set(ids)
        assert vocab.decode(ids) == text
        assert vocab.decode([vocab.bos, vocab.tag("fr"), *ids, vocab.eos, vocab.pad]) == text
    assert len(vocab.encode(_text("fr", 1))) < len(_text("fr", 1).encode())  # merges learned
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([vocab.size])


def test_bpe_training_is_deterministic(corpus, vocab, tmp_path):
    again = train_bpe(iter(corpus), 400, TARGETS)
    vocab.save(tmp_path / "a.json")
    again.save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


def test_bpe_save_load_round_trip(corpus, vocab, tmp_path):
    vocab.save(tmp_path / "v.json")
    loaded = BpeVocab.load(tmp_path / "v.json")
    assert loaded.size == vocab.size and loaded.languages == ("de", "fr")
    assert loaded.tag("fr") == 5
    for text in corpus[:20] + ["a <s> b"]:
        assert loaded.encode(text) == vocab.encode(text)
        assert loaded.decode(loaded.encode(text)) == text
    (tmp_path / "other.json").write_text(json.dumps({"languages": []}))
    with pytest.raises(ValueError, match="not a vocabulary written by BpeVocab.save"):
        BpeVocab.load(tmp_path / "other.json")


def test_bpe_errors(corpus):
    with pytest.raises(ValueError, match="vocab_size 100 is too small"):
        train_bpe(corpus, 100, TARGETS)
    with pytest.raises(ValueError, match=r"\['de'\] are given more than once"):
        train_bpe(corpus, 400, ["de", "fr", "de"])
