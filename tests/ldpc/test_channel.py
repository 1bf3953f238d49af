"""BPSK/AWGN channel LLRs."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import beta, norm

from workloads.ldpc.channel import LLR_CLIP, bpsk_awgn_llr, sigma_for

ALPHA = 1e-3  # 99.9% confidence intervals


def clopper_pearson(errors: int, trials: int, alpha: float = ALPHA) -> tuple[float, float]:
    lo = 0.0 if errors == 0 else beta.ppf(alpha / 2, errors, trials - errors + 1)
    hi = 1.0 if errors == trials else beta.ppf(1 - alpha / 2, errors + 1, trials - errors)
    return float(lo), float(hi)


def uncoded_ber(ebn0_db: float, rate: float) -> float:
    return float(norm.sf(math.sqrt(2 * rate * 10 ** (ebn0_db / 10))))


def random_words(B: int, n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 2, (B, n), generator=torch.Generator().manual_seed(seed)).float()


def test_sigma_for():
    assert sigma_for(0.0, 1.0) == pytest.approx(math.sqrt(0.5))
    assert sigma_for(3.0, 0.5) == pytest.approx(1 / math.sqrt(10**0.3))
    t = sigma_for(torch.tensor([0.0, 3.0]), 0.5)
    assert isinstance(t, torch.Tensor)
    assert torch.allclose(t, torch.tensor([1.0, 1 / math.sqrt(10**0.3)]))
    assert sigma_for(torch.tensor([2, 4]), 0.75).dtype == torch.float32
    with pytest.raises(ValueError):
        sigma_for(1.0, 0.0)


@pytest.mark.parametrize("ebn0_db", [0.0, 3.0, 6.0])
def test_hard_decision_ber_matches_bpsk_formula(ebn0_db):
    rate = 0.75
    c = random_words(200, 1000, seed=10)  # 200k bits, both values
    llr = bpsk_awgn_llr(c, ebn0_db, rate, torch.Generator().manual_seed(int(ebn0_db) + 1))
    errors = int(((llr < 0).float() != c).sum())
    lo, hi = clopper_pearson(errors, c.numel())
    p = uncoded_ber(ebn0_db, rate)
    assert lo <= p <= hi, (errors, c.numel(), p)


def test_per_word_ebn0_tensor():
    rate = 0.5
    ebn0 = torch.tensor([1.0, 4.0]).repeat_interleave(100)  # (200,)
    c = random_words(200, 1000, seed=11)
    llr = bpsk_awgn_llr(c, ebn0, rate, torch.Generator().manual_seed(5))
    err = ((llr < 0).float() != c).float()
    for half, db in ((slice(0, 100), 1.0), (slice(100, 200), 4.0)):
        lo, hi = clopper_pearson(int(err[half].sum()), err[half].numel())
        assert lo <= uncoded_ber(db, rate) <= hi
    with pytest.raises(ValueError):
        bpsk_awgn_llr(c, torch.zeros(3), rate, torch.Generator())


def test_llr_is_consistent_gaussian():
    # Unclipped LLRs of bit 0 are N(mu, 2 mu) with mu = 2 / sigma^2 (at low SNR clipping is rare).
    rate, ebn0_db = 0.5, -2.0
    c = torch.zeros(100, 1000)
    llr = bpsk_awgn_llr(c, ebn0_db, rate, torch.Generator().manual_seed(6))
    mu = 2 / sigma_for(ebn0_db, rate) ** 2
    assert llr.mean().item() == pytest.approx(mu, rel=0.02)
    assert llr.var().item() == pytest.approx(2 * mu, rel=0.03)


def test_clipping():
    c = random_words(50, 200, seed=12)
    for db in (-5.0, 5.0, 20.0):
        llr = bpsk_awgn_llr(c, db, 0.5, torch.Generator().manual_seed(7))
        assert llr.abs().max().item() <= LLR_CLIP
    llr = bpsk_awgn_llr(c, 20.0, 0.5, torch.Generator().manual_seed(7))
    assert (llr.abs() == LLR_CLIP).float().mean() > 0.99


def test_sign_convention_noiseless():
    c = random_words(4, 100, seed=13)
    llr = bpsk_awgn_llr(c, 30.0, 0.5, torch.Generator().manual_seed(8))  # sigma ~ 0.03
    assert torch.equal(llr > 0, c == 0)  # positive LLR means bit 0
    assert torch.equal(llr, LLR_CLIP * (1 - 2 * c))


def test_same_seed_same_output():
    c = random_words(16, 100, seed=14)
    a = bpsk_awgn_llr(c, 2.0, 0.75, torch.Generator().manual_seed(9))
    b = bpsk_awgn_llr(c, 2.0, 0.75, torch.Generator().manual_seed(9))
    d = bpsk_awgn_llr(c, 2.0, 0.75, torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, d)
    assert a.shape == c.shape and a.dtype == c.dtype
    assert bpsk_awgn_llr(c.double(), 2.0, 0.75, torch.Generator()).dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generator_and_device():
    c = random_words(64, 500, seed=15).cuda()
    g = torch.Generator(device="cuda")
    a = bpsk_awgn_llr(c, torch.full((64,), 2.0), 0.5, g.manual_seed(1))
    b = bpsk_awgn_llr(c, 2.0, 0.5, g.manual_seed(1))
    assert a.device.type == "cuda" and torch.equal(a, b)
    with pytest.raises(ValueError, match="device"):
        bpsk_awgn_llr(c, 2.0, 0.5, torch.Generator())
