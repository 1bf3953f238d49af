"""The content-hashed data cache (harness/datacache.py), on a real generator (snn's MNIST-1D)."""

from __future__ import annotations

import pytest
import torch

from harness import datacache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(datacache.ENV_DIR, str(folder))
    monkeypatch.delenv(datacache.ENV_OFF, raising=False)
    return folder


def counting(value):
    calls = []

    def generate():
        calls.append(1)
        return value() if callable(value) else value

    return generate, calls


def source(tmp_path, text="def f(): return 1\n"):
    path = tmp_path / "gen_src.py"
    path.write_text(text)
    return path


def test_a_hit_returns_what_a_fresh_generation_returns(cache, tmp_path):
    src = source(tmp_path)
    data = {"x": torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), "n": 5}
    gen, calls = counting(data)
    first = datacache.cached("toy", {"seed": 0}, gen, [src])
    second = datacache.cached("toy", {"seed": 0}, gen, [src])
    assert len(calls) == 1
    assert torch.equal(second["x"], data["x"]) and second["n"] == 5
    assert torch.equal(first["x"], second["x"])
    assert len(list(cache.glob("*.pt"))) == 1 and not list(cache.glob("*.tmp"))


def test_a_changed_input_or_source_misses(cache, tmp_path):
    src = source(tmp_path)
    gen, calls = counting(lambda: torch.zeros(2))
    datacache.cached("toy", {"seed": 0}, gen, [src])
    datacache.cached("toy", {"seed": 1}, gen, [src])
    datacache.cached("other", {"seed": 0}, gen, [src])
    assert len(calls) == 3
    src.write_text("def f(): return 2\n")  # a code change of the generator
    datacache.cached("toy", {"seed": 0}, gen, [src])
    assert len(calls) == 4
    datacache.cached("toy", {"seed": 0}, gen, [src])
    assert len(calls) == 4


def test_a_corrupt_entry_is_regenerated_with_a_warning(cache, tmp_path):
    src = source(tmp_path)
    gen, calls = counting(lambda: torch.arange(4))
    datacache.cached("toy", {}, gen, [src])
    (entry,) = cache.glob("*.pt")
    entry.write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match="does not load"):
        out = datacache.cached("toy", {}, gen, [src])
    assert torch.equal(out, torch.arange(4)) and len(calls) == 2
    assert torch.equal(torch.load(entry, weights_only=True), torch.arange(4))  # rewritten


def test_no_cache_bypasses(cache, tmp_path, monkeypatch):
    src = source(tmp_path)
    monkeypatch.setenv(datacache.ENV_OFF, "1")
    gen, calls = counting(lambda: torch.ones(1))
    datacache.cached("toy", {}, gen, [src])
    datacache.cached("toy", {}, gen, [src])
    assert len(calls) == 2 and not cache.exists()


def test_values_that_would_not_load_are_refused(cache, tmp_path):
    with pytest.raises(TypeError, match="holds a object"):
        datacache.cached("toy", {}, lambda: {"a": object()}, [source(tmp_path)])
    with pytest.raises(TypeError, match="JSON-serializable"):
        datacache.cached("toy", {"a": object()}, lambda: 1, [source(tmp_path)])


def test_mnist1d_from_the_cache_equals_a_fresh_generation(cache, monkeypatch):
    pytest.importorskip("mnist1d")
    from workloads.snn import data

    args = (600, 3, 0.1, 0.1)
    data.mnist1d.cache_clear()
    stored = data.mnist1d(*args)  # generates and stores
    assert len(list(cache.glob("*.pt"))) == 1
    data.mnist1d.cache_clear()
    hit = data.mnist1d(*args)  # loads
    monkeypatch.setenv(datacache.ENV_OFF, "1")
    data.mnist1d.cache_clear()
    fresh = data.mnist1d(*args)
    data.mnist1d.cache_clear()
    for split in ("train", "validation", "test"):
        assert torch.equal(hit.x[split], fresh.x[split])
        assert torch.equal(hit.y[split], fresh.y[split])
        assert torch.equal(stored.x[split], fresh.x[split])
    assert hit.classes == fresh.classes == 10


def test_translation_corpus_from_the_cache_equals_a_fresh_generation(cache, monkeypatch):
    from workloads.translation import SPECS, load_corpus

    spec = SPECS["smoke"]
    vocab, stored = load_corpus(spec)  # generates and stores
    assert len(list(cache.glob("*.pt"))) == 1
    _, hit = load_corpus(spec)  # loads
    monkeypatch.setenv(datacache.ENV_OFF, "1")
    fresh_vocab, fresh = load_corpus(spec)
    assert vocab.size == fresh_vocab.size
    assert fresh.keys() == hit.keys()
    for lang, splits in fresh.items():
        assert splits.keys() == hit[lang].keys()
        for split, enc in splits.items():
            assert torch.equal(hit[lang][split].src, enc.src)
            assert torch.equal(hit[lang][split].tgt, enc.tgt)
            assert hit[lang][split].refs == enc.refs
            assert torch.equal(stored[lang][split].src, enc.src)
