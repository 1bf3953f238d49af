"""``workloads.translation.model`` and the workload's loss and evaluator.

Greedy decoding with the key/value cache is checked against a reference that re-runs ``decode``
on the whole prefix at every step; the decoder is checked for padding invariance and causality;
``smoothed_losses`` against fairseq's label-smoothed cross-entropy written out by hand.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F

from harness.api import ContractError
from workloads.translation import SPECS, TranslationWorkload, smoothed_losses
from workloads.translation.data import PAD
from workloads.translation.model import Arch, Seq2Seq

CPU = torch.device("cpu")
ARCH = Arch(
    vocab=50,
    d_model=32,
    heads=4,
    ffn=64,
    encoder_layers=2,
    decoder_layers=2,
    dropout=0.0,
    max_len=24,
)
BOS, EOS = 1, 2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: one thread is fastest, and it avoids oversubscribing a busy
    machine (two threads competing with other work slow these tests down a hundredfold)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ARCH).eval()


def padded_sources(g: torch.Generator, lengths=(9, 3, 6, 1, 12)) -> torch.Tensor:
    """Random sources (tokens 4..49) of the given lengths, PAD-padded."""
    src = torch.full((len(lengths), max(lengths)), PAD, dtype=torch.long)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, ARCH.vocab, (n,), generator=g)
    return src


@torch.no_grad()
def reference_greedy(model: Seq2Seq, src: torch.Tensor, bos: int, eos: int, max_len: int):
    """Greedy decoding without a cache: the whole prefix through ``decode`` at every step."""
    memory, mask = model.encode(src)
    prefix = torch.full((src.shape[0], 1), bos, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    out = []
    for _ in range(min(max_len, model.arch.max_len)):
        nxt = model.decode(prefix, memory, mask)[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, model.arch.pad), nxt)
        out.append(nxt)
        done |= nxt == eos
        if bool(done.all()):
            break
        prefix = torch.cat([prefix, nxt[:, None]], 1)
    return torch.stack(out, 1)


@functools.cache
def trained_model(steps: int = 60) -> Seq2Seq:
    """A model trained a few steps to reverse its source and stop, so greedy outputs have
    structure and end at different lengths."""
    model = small_model(1).train()
    g = torch.Generator().manual_seed(2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        lengths = torch.randint(1, 8, (32,), generator=g).tolist()
        src = padded_sources(g, lengths)
        tgt = torch.full((32, 9), PAD, dtype=torch.long)
        for i, n in enumerate(lengths):
            tgt[i, :n] = src[i, :n].flip(0)
            tgt[i, n] = EOS
        tgt_in = torch.cat([torch.full((32, 1), BOS), tgt[:, :-1]], 1)
        loss = F.cross_entropy(model(src, tgt_in).transpose(1, 2), tgt, ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


# -- greedy decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize("max_len", [1, 5, 24, 40])
def test_cached_greedy_equals_reference(max_len):
    model = small_model()
    src = padded_sources(torch.Generator().manual_seed(0))
    out = model.greedy(src, BOS, EOS, max_len)
    assert out.shape[0] == src.shape[0] and out.shape[1] <= min(max_len, ARCH.max_len)
    assert torch.equal(out, reference_greedy(model, src, BOS, EOS, max_len))


def test_cached_greedy_equals_reference_after_training():
    model = trained_model()
    src = padded_sources(torch.Generator().manual_seed(3), lengths=(5, 2, 7, 3, 1, 6, 4, 7))
    out = model.greedy(src, BOS, EOS, 16)
    ref = reference_greedy(model, src, BOS, EOS, 16)
    assert torch.equal(out, ref)
    # non-trivial: several distinct outputs, every row stops, and only PAD follows EOS
    assert len({tuple(r) for r in out.tolist()}) > 1
    stops = [row.index(EOS) for row in out.tolist()]
    assert len(set(stops)) > 1
    for row, stop in zip(out.tolist(), stops, strict=True):
        assert all(t == PAD for t in row[stop + 1 :])


def test_greedy_rows_do_not_depend_on_the_batch():
    model = trained_model()
    src = padded_sources(torch.Generator().manual_seed(4), lengths=(7, 2, 5))
    batched = model.greedy(src, BOS, EOS, 16)
    for i in range(len(src)):
        n = int((src[i] != PAD).sum())
        alone = model.greedy(src[i : i + 1, :n], BOS, EOS, 16)[0]
        row = batched[i, : len(alone)]
        assert torch.equal(row, alone), i
        assert bool((batched[i, len(alone) :] == PAD).all())


# -- the decoder --------------------------------------------------------------------------------


def test_padding_invariance():
    """A sentence's logits are the same alone and batched with a longer sentence."""
    model = small_model()
    g = torch.Generator().manual_seed(5)
    src_a, tgt_a = (
        torch.randint(4, 50, (1, 4), generator=g),
        torch.randint(4, 50, (1, 3), generator=g),
    )
    src_b, tgt_b = (
        torch.randint(4, 50, (1, 11), generator=g),
        torch.randint(4, 50, (1, 9), generator=g),
    )
    alone = model(src_a, tgt_a)
    src = torch.cat([F.pad(src_a, (0, 7), value=PAD), src_b])
    tgt = torch.cat([F.pad(tgt_a, (0, 6), value=PAD), tgt_b])
    batched = model(src, tgt)
    torch.testing.assert_close(batched[0, :3], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched[1:], model(src_b, tgt_b), atol=1e-5, rtol=0)


def test_causality():
    """Logits at target position t do not change when later target tokens change."""
    model = small_model()
    g = torch.Generator().manual_seed(6)
    src = padded_sources(g, lengths=(8, 5))
    tgt = torch.randint(4, 50, (2, 10), generator=g)
    base = model(src, tgt)
    for t in (0, 3, 8):
        changed = tgt.clone()
        changed[:, t + 1 :] = torch.randint(4, 50, (2, 9 - t), generator=g)
        logits = model(src, changed)
        torch.testing.assert_close(logits[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=0)
        assert not torch.allclose(logits[:, t + 1 :], base[:, t + 1 :], atol=1e-3)


def test_source_padding_is_masked():
    """Tokens written in the padding of a source do not change its logits."""
    model = small_model()
    src = padded_sources(torch.Generator().manual_seed(7), lengths=(10, 4))
    tgt = torch.randint(4, 50, (2, 5), generator=torch.Generator().manual_seed(8))
    base = model(src, tgt)
    extra = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(extra, tgt), base, atol=1e-5, rtol=0)


def test_sequences_longer_than_max_len_are_refused():
    model = small_model()
    with pytest.raises(ValueError, match="exceeds max_len"):
        model(torch.ones(1, ARCH.max_len + 1, dtype=torch.long) * 5, torch.ones(1, 2).long())


# -- smoothed_losses ----------------------------------------------------------------------------


def _logits_and_target(g: torch.Generator, v: int = 13):
    logits = torch.randn(3, 6, v, generator=g, dtype=torch.float64)
    target = torch.randint(1, v, (3, 6), generator=g)
    target[0, 4:] = PAD
    target[2, 1:] = PAD
    return logits, target


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_smoothed_losses_is_fairseqs_formula(eps):
    logits, target = _logits_and_target(torch.Generator().manual_seed(9))
    v = logits.shape[-1]
    loss, tokens = smoothed_losses(logits, target, eps)
    assert tokens.tolist() == [4.0, 6.0, 1.0]
    for i in range(logits.shape[0]):
        expected = 0.0
        for t in range(logits.shape[1]):
            y = int(target[i, t])
            if y == PAD:
                continue
            p = torch.softmax(logits[i, t], -1)
            nll = -float(torch.log(p[y]))
            uniform = -float(torch.log(p).sum())
            expected += (1 - eps - eps / (v - 1)) * nll + eps / (v - 1) * uniform
        assert float(loss[i]) == pytest.approx(expected, rel=1e-5)


def test_smoothed_losses_without_smoothing_is_cross_entropy():
    logits, target = _logits_and_target(torch.Generator().manual_seed(10))
    loss, tokens = smoothed_losses(logits, target, 0.0)
    for i in range(logits.shape[0]):
        ce = F.cross_entropy(logits[i].float(), target[i], ignore_index=PAD, reduction="sum")
        assert float(loss[i]) == pytest.approx(float(ce), rel=1e-5)
        assert float(tokens[i]) == int((target[i] != PAD).sum())


def test_pad_positions_contribute_nothing():
    logits, target = _logits_and_target(torch.Generator().manual_seed(11))
    loss, _ = smoothed_losses(logits, target, 0.1)
    noisy = logits.clone()
    noisy[target == PAD] = 1e3 * torch.randn_like(noisy[target == PAD])
    torch.testing.assert_close(smoothed_losses(noisy, target, 0.1)[0], loss)
    logits = logits.clone().requires_grad_()
    smoothed_losses(logits, target, 0.1)[0].sum().backward()
    assert bool((logits.grad[target == PAD] == 0).all())


# -- the evaluator ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workload() -> TranslationWorkload:
    return TranslationWorkload(SPECS["smoke"], CPU, eval_seed=0)


@pytest.fixture(scope="module")
def untrained(workload):
    return workload.init_model(torch.Generator().manual_seed(0)).eval()


def test_evaluate_reports_every_language(workload, untrained):
    metrics = workload.evaluate(untrained, "validation")
    expected = {f"bleu_{c}" for c in workload.languages} | {"bleu_low", "bleu_high", "loss"}
    assert set(metrics) == expected
    low = [metrics[f"bleu_{c}"] for c in workload.low_resource]
    high = [metrics[f"bleu_{c}"] for c in workload.high_resource]
    assert metrics["bleu_low"] == pytest.approx(sum(low) / len(low))
    assert metrics["bleu_high"] == pytest.approx(sum(high) / len(high))
    assert all(0.0 <= metrics[k] <= 100.0 for k in expected - {"loss"})
    # an untrained model is near uniform over the vocabulary
    assert 0.5 * torch.log(torch.tensor(workload.vocab.size)) < metrics["loss"] < 20.0


def test_evaluate_is_deterministic(workload, untrained):
    a = workload.evaluate(untrained, "validation")
    b = workload.evaluate(untrained, "validation")
    assert a == b
    assert not untrained.training


def test_evaluate_ignores_the_models_mode(workload):
    """The reference network is in eval mode whatever the submitted model's mode."""
    model = workload.init_model(torch.Generator().manual_seed(1))
    a = workload.evaluate(model.train(), "test")
    b = workload.evaluate(model.eval(), "test")
    assert a == b


def test_reference_network_refuses_another_architecture(workload, untrained):
    ref = workload.reference_network(untrained)
    assert not ref.training and ref.arch == workload.arch
    for name, p in untrained.state_dict().items():
        assert torch.equal(ref.state_dict()[name], p), name
    for change in ({"d_model": 32}, {"decoder_layers": 2}, {"ffn": 64}):
        other = Seq2Seq(dataclasses.replace(workload.arch, **change))
        with pytest.raises(ContractError, match="architecture"):
            workload.reference_network(other)
        with pytest.raises(ContractError, match="architecture"):
            workload.evaluate(other, "validation")
