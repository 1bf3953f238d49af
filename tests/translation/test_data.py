"""``workloads.translation.data`` and the workload's streams: temperature sampling, the mixture
draws, per-language streams, ``make_batch`` and the workload's checks on language codes.

Sampling frequencies are checked against their binomial standard error, sqrt(p (1 - p) / n), with
seeded generators (so the checks are deterministic).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from harness.api import ContractError
from workloads.translation import SPECS, TranslationWorkload
from workloads.translation.corpus import LANGUAGES
from workloads.translation.data import (
    BOS,
    EOS,
    PAD,
    CorpusError,
    Encoded,
    LanguageStream,
    WordVocab,
    encode_split,
    make_batch,
    mixture_batch,
    mixture_counts,
    pad_rows,
    temperature_probs,
)

CPU = torch.device("cpu")
DEFAULT_SIZES = {lang.code: lang.train_size for lang in LANGUAGES}


@pytest.fixture(scope="module")
def workload() -> TranslationWorkload:
    return TranslationWorkload(SPECS["smoke"], CPU)


def _streams(workload, batch_size=16, seed=0):
    return workload.train_streams(batch_size, torch.Generator().manual_seed(seed))


# -- temperature_probs ----------------------------------------------------------------------------


def test_temperature_one_is_proportional_to_sizes():
    p = temperature_probs(DEFAULT_SIZES, 1.0)
    total = sum(DEFAULT_SIZES.values())
    assert list(p) == list(DEFAULT_SIZES)
    for code, d in DEFAULT_SIZES.items():
        assert p[code] == pytest.approx(d / total, rel=1e-12)
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)


def test_temperature_inf_is_uniform():
    p = temperature_probs(DEFAULT_SIZES, math.inf)
    assert all(v == pytest.approx(1 / len(DEFAULT_SIZES), rel=1e-12) for v in p.values())


@pytest.mark.parametrize("temperature", [5.0, 2.0, 0.5])
def test_temperature_t_is_the_root_of_sizes(temperature):
    roots = {c: d ** (1 / temperature) for c, d in DEFAULT_SIZES.items()}
    z = sum(roots.values())
    p = temperature_probs(DEFAULT_SIZES, temperature)
    for code in DEFAULT_SIZES:
        assert p[code] == pytest.approx(roots[code] / z, rel=1e-12)


def test_higher_temperature_flattens():
    p1, p5 = temperature_probs(DEFAULT_SIZES, 1.0), temperature_probs(DEFAULT_SIZES, 5.0)
    assert p5["bc"] > p1["bc"] and p5["aa"] < p1["aa"]
    assert p5["aa"] > p5["bc"]  # still ordered by size


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, -math.inf])
def test_bad_temperature(temperature):
    with pytest.raises(CorpusError, match="temperature must be > 0"):
        temperature_probs(DEFAULT_SIZES, temperature)


def test_empty_or_empty_language_sizes():
    with pytest.raises(CorpusError, match="no languages"):
        temperature_probs({}, 1.0)
    with pytest.raises(CorpusError, match="at least one pair"):
        temperature_probs({"aa": 10, "ab": 0}, 1.0)


# -- mixture_counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 5.0, math.inf])
def test_sampling_frequencies_within_three_standard_errors(temperature):
    probs = temperature_probs(DEFAULT_SIZES, temperature)
    p = torch.tensor(list(probs.values()), dtype=torch.float64)
    n = 100_000
    counts = mixture_counts(p, n, torch.Generator().manual_seed(17))
    assert counts.shape == (len(p),) and int(counts.sum()) == n
    freq = counts.double() / n
    se = torch.sqrt(p * (1 - p) / n)
    assert bool(((freq - p).abs() <= 3 * se).all()), (freq.tolist(), p.tolist())


def test_mixture_counts_respects_zero_probabilities():
    p = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    counts = mixture_counts(p, 500, torch.Generator().manual_seed(0))
    assert counts.tolist() == [0, 500, 0]


@pytest.mark.parametrize("probs", [[0.5, 0.6], [-0.1, 1.1], [[0.5, 0.5]]])
def test_mixture_counts_refuses_bad_probabilities(probs):
    with pytest.raises(CorpusError, match="sum to 1"):
        mixture_counts(torch.tensor(probs), 10, torch.Generator().manual_seed(0))


# -- encoding and make_batch ----------------------------------------------------------------------


def test_word_vocab_layout():
    vocab = WordVocab(["x", "y", "."], ["aa", "ba"])
    assert vocab.itos[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert (vocab.pad, vocab.bos, vocab.eos, vocab.unk) == (PAD, BOS, EOS, 3)
    assert vocab.tag("ba") == vocab.stoi["<2ba>"] == 5
    assert vocab.ids(["x", "zzz"]) == [6, 3]
    assert vocab.decode([1, 4, 6, 8, 2, 0]) == "X."
    with pytest.raises(CorpusError, match="unknown language 'zz'"):
        vocab.tag("zz")
    with pytest.raises(CorpusError, match="duplicate"):
        WordVocab(["x", "x"], ["aa"])


def test_encode_split_drops_long_pairs_and_refuses_empty():
    pairs = [([10, 11], [20], "a"), ([10] * 9, [20], "long src"), ([10], [20] * 4, "b")]
    enc = encode_split(pairs, tag=4, eos=EOS, max_len=5)
    assert enc.refs == ["a", "b"]
    assert enc.src.tolist() == [[4, 10, 11, EOS], [4, 10, EOS, PAD]]
    assert enc.tgt.tolist() == [[20, EOS, PAD, PAD, PAD], [20, 20, 20, 20, EOS]]
    with pytest.raises(CorpusError, match="empty"):
        encode_split(pairs[1:2], tag=4, eos=EOS, max_len=5)


def test_make_batch_shifts_targets_and_trims_padding():
    a = Encoded(
        pad_rows([[4, 10, EOS], [4, 11, 12, 13, EOS]]), pad_rows([[20, EOS], [21, EOS]]), ["", ""]
    )
    b = Encoded(pad_rows([[5, 14, 15, EOS]]), pad_rows([[22, 23, 24, EOS]]), [""])
    # row 1 of ``a`` (the long source) is left out: the batch is trimmed to what it holds
    batch = make_batch([a, b], [(0, torch.tensor([0])), (1, torch.tensor([0]))], CPU)
    assert batch.src.tolist() == [[4, 10, EOS, PAD], [5, 14, 15, EOS]]
    assert batch.tgt_out.tolist() == [[20, EOS, PAD, PAD], [22, 23, 24, EOS]]
    assert batch.tgt_in.tolist() == [[BOS, 20, EOS, PAD], [BOS, 22, 23, 24]]
    assert batch.lang.tolist() == [0, 1]
    assert batch.tokens == 6


def test_workload_batches_start_with_tag_and_bos(workload):
    streams = _streams(workload, batch_size=32)
    for _ in range(5):
        batch = next(streams["train"])
        assert bool((batch.tgt_in[:, 0] == BOS).all())
        assert torch.equal(batch.tgt_in[:, 1:], batch.tgt_out[:, :-1])
        tags = torch.tensor([workload.vocab.tag(workload.languages[k]) for k in batch.lang])
        assert torch.equal(batch.src[:, 0], tags)
        # every row ends its source and target with </s> and pads after it
        for row in (*batch.src, *batch.tgt_out):
            n = int((row != PAD).sum())
            assert int(row[n - 1]) == EOS and bool((row[n:] == PAD).all())
        assert bool((batch.src != PAD).sum(1).max() == batch.src.shape[1])
        assert bool((batch.tgt_out != PAD).sum(1).max() == batch.tgt_out.shape[1])


# -- the workload's streams -----------------------------------------------------------------------


def test_each_language_stream_yields_only_its_language(workload):
    streams = _streams(workload)
    assert set(streams) == {*workload.languages, "train"}
    for k, code in enumerate(workload.languages):
        tag = workload.vocab.tag(code)
        for _ in range(3):
            batch = next(streams[code])
            assert batch.lang.tolist() == [k] * 16
            assert bool((batch.src[:, 0] == tag).all())


def test_one_epoch_of_take_covers_every_example_once(workload):
    streams = _streams(workload, batch_size=64)
    for code in workload.languages:
        stream = streams[code]
        size = workload.train_sizes[code]
        assert isinstance(stream, LanguageStream) and stream.size == size
        idx = torch.cat([stream.take(64) for _ in range(size // 64)] + [stream.take(size % 64)])
        assert sorted(idx.tolist()) == list(range(size))
        assert stream.drawn == size
        nxt = torch.cat([stream.take(64) for _ in range(size // 64)] + [stream.take(size % 64)])
        assert sorted(nxt.tolist()) == list(range(size))
        assert not torch.equal(idx, nxt)  # a new shuffle each epoch


def test_take_crosses_epochs_without_losing_examples(workload):
    stream = _streams(workload)["ac"]
    size = workload.train_sizes["ac"]
    idx = torch.cat([stream.take(7) for _ in range(2 * size // 7 + 1)])
    assert len(idx) == 7 * (2 * size // 7 + 1)
    first, second = idx[:size].tolist(), idx[size : 2 * size].tolist()
    assert sorted(first) == sorted(second) == list(range(size))


def test_streams_are_deterministic_in_the_generator(workload):
    a, b, c = (_streams(workload, seed=s) for s in (3, 3, 4))
    for name in ("aa", "train"):
        xa, xb, xc = next(a[name]), next(b[name]), next(c[name])
        assert torch.equal(xa.src, xb.src) and torch.equal(xa.lang, xb.lang)
        assert xa.src.shape != xc.src.shape or not torch.equal(xa.src, xc.src)


@pytest.mark.parametrize("code", ["aa", "bb"])
def test_mixture_batch_with_one_language(workload, code):
    streams = _streams(workload)
    g = torch.Generator().manual_seed(0)
    k = workload.languages.index(code)
    for _ in range(3):
        batch = workload.mixture_batch(streams, {code: 1.0}, 24, g)
        assert batch.lang.tolist() == [k] * 24
        assert bool((batch.src[:, 0] == workload.vocab.tag(code)).all())


def test_mixture_batch_frequencies(workload):
    streams = _streams(workload)
    g = torch.Generator().manual_seed(1)
    probs = {"aa": 0.1, "ac": 0.4, "bb": 0.5}  # "ba" left out: 0
    counts = torch.zeros(len(workload.languages))
    n = 0
    for _ in range(40):
        batch = workload.mixture_batch(streams, probs, 50, g)
        counts += torch.bincount(batch.lang, minlength=len(workload.languages))
        n += 50
    for k, code in enumerate(workload.languages):
        p = probs.get(code, 0.0)
        assert abs(float(counts[k]) / n - p) <= 3 * math.sqrt(p * (1 - p) / n) + 1e-12, code


def test_mixture_batch_refuses_unknown_codes(workload):
    streams = _streams(workload)
    with pytest.raises(ContractError, match="'zz'"):
        workload.mixture_batch(streams, {"aa": 0.5, "zz": 0.5}, 8, torch.Generator())
    with pytest.raises(ContractError, match="'train'"):
        workload.mixture_batch(streams, {"train": 1.0}, 8, torch.Generator())


def test_low_level_mixture_batch_checks_lengths(workload):
    streams = _streams(workload)
    order = [streams[c] for c in workload.languages]
    with pytest.raises(CorpusError, match="probabilities for"):
        mixture_batch(order, [0.5, 0.5], 8, torch.Generator())


def test_train_stream_follows_the_spec_temperature(workload):
    assert workload.spec.train_temperature == 5.0
    probs = temperature_probs(workload.train_sizes, 5.0)
    streams = _streams(workload, batch_size=64, seed=5)
    counts = torch.zeros(len(workload.languages))
    batches = 150
    for _ in range(batches):
        batch = next(streams["train"])
        assert len(batch.lang) == 64
        counts += torch.bincount(batch.lang, minlength=len(workload.languages))
    n = 64 * batches
    for k, code in enumerate(workload.languages):
        p = probs[code]
        assert abs(float(counts[k]) / n - p) <= 3.5 * math.sqrt(p * (1 - p) / n), code


def test_bad_batch_size(workload):
    with pytest.raises(ContractError, match="batch size"):
        workload.train_streams(0, torch.Generator())


# -- the workload's language checks ---------------------------------------------------------------


def test_smoke_workload_languages(workload):
    assert workload.languages == ("aa", "ac", "ba", "bb")
    assert workload.low_resource == ("ac", "bb") and workload.high_resource == ("aa", "ba")
    assert workload.train_sizes == {"aa": 2000, "ac": 200, "ba": 1500, "bb": 200}
    assert workload.language_index("ba") == 2
    with pytest.raises(ContractError, match="'zz'"):
        workload.language_index("zz")


def test_workload_refuses_unknown_language_codes():
    spec = dataclasses.replace(SPECS["smoke"], languages=("aa", "zz"), low_resource=())
    with pytest.raises(ContractError, match="zz"):
        TranslationWorkload(spec, CPU)


def test_workload_refuses_bad_language_lists():
    smoke = SPECS["smoke"]
    with pytest.raises(ContractError, match="bad language list"):
        TranslationWorkload(dataclasses.replace(smoke, languages=("aa", "aa")), CPU)
    with pytest.raises(ContractError, match="not in"):
        TranslationWorkload(dataclasses.replace(smoke, languages=("aa", "ba")), CPU)
    sizes = dataclasses.replace(smoke, languages=("aa",), low_resource=(), train_sizes=(("aa", 0),))
    with pytest.raises(ContractError, match="sizes must be >= 1"):
        TranslationWorkload(sizes, CPU)
