"""The reference neural min-sum decoder (docs/methods.md#neural-min-sum-decoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workloads.ldpc.channel import bpsk_awgn_llr
from workloads.ldpc.codes import load_code
from workloads.ldpc.decoder import PAD, NeuralMinSum, TannerGraph, check_node_update
from workloads.ldpc.gf2 import SystematicEncoder


def graph(name: str, checks=None) -> TannerGraph:
    code = load_code(name)
    return TannerGraph.from_checks(code.n, checks or [list(c) for c in code.checks])


def codewords(name: str, b: int, seed: int = 0) -> torch.Tensor:
    code = load_code(name)
    g = torch.Generator().manual_seed(seed)
    return SystematicEncoder(code.H()).encode(torch.randint(0, 2, (b, code.k), generator=g).float())


def loop_min_sum(checks, n: int, llr: np.ndarray, iters: int) -> np.ndarray:
    """Textbook flooding min-sum, one edge at a time, float64 (the bit-for-bit reference)."""
    edges = [(c, v) for c, vs in enumerate(checks) for v in vs]
    c2v = {e: 0.0 for e in edges}
    for _ in range(iters):
        vsum = np.zeros(n)
        for (_, v), m in c2v.items():
            vsum[v] += m
        v2c = {(c, v): np.clip(llr[v] + vsum[v] - c2v[(c, v)], -20, 20) for (c, v) in edges}
        for c, vs in enumerate(checks):
            for v in vs:
                others = [v2c[(c, u)] for u in vs if u != v]
                sign = np.prod([1.0 if x >= 0 else -1.0 for x in others])
                c2v[(c, v)] = sign * min(20.0, min(abs(x) for x in others))
    vsum = np.zeros(n)
    for (_, v), m in c2v.items():
        vsum[v] += m
    return np.clip(llr + vsum, -20, 20)


def test_check_node_update_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    v2c = (torch.rand(3, 4, 6, generator=g) * 2 - 1) * 10
    v2c[:, :, 5] = PAD  # one padding slot per row
    w = torch.rand(3, 4, 1, generator=g) * 2
    out = check_node_update(v2c, w)
    for b in range(3):
        for c in range(4):
            row = v2c[b, c, :5].tolist()
            for i in range(5):
                others = row[:i] + row[i + 1 :]
                sign = np.prod([1.0 if x >= 0 else -1.0 for x in others])
                want = sign * min(20.0, max(0.0, float(w[b, c, 0]) * min(abs(x) for x in others)))
                assert out[b, c, i].item() == pytest.approx(want, abs=1e-5)


def test_weights_one_reproduce_loop_min_sum():
    code = load_code("mackay_96_48")
    checks = [list(c) for c in code.checks]
    bits = codewords("mackay_96_48", 4)
    llr = bpsk_awgn_llr(bits, 2.0, code.k / code.n, torch.Generator().manual_seed(1))
    model = NeuralMinSum(graph("mackay_96_48"), 5)
    with torch.no_grad():
        got = model(llr)[0][-1]
    for b in range(4):
        want = loop_min_sum(checks, code.n, llr[b].double().numpy(), 5)
        np.testing.assert_allclose(got[b].numpy(), want, atol=1e-3)
        assert ((got[b] < 0).numpy() == (want < 0)).all()


@pytest.mark.parametrize("name", ["mackay_96_48", "wimax_576_432"])
def test_noiseless_frames_decode_with_no_unsatisfied_checks(name):
    g = graph(name)
    bits = codewords(name, 8)
    llr = 8.0 * (1 - 2 * bits)
    model = NeuralMinSum(g, 5)
    with torch.no_grad():
        model.w_ucn.fill_(0.0)  # UCN weights would zero messages if any check were unsatisfied
        outs, _ = model(llr)
    for o in outs:
        assert torch.equal((o < 0).float(), bits)
        assert not g.syndrome((o < 0).float()).any()


@pytest.mark.parametrize("name", ["mackay_96_48", "wimax_576_432"])
def test_single_bit_errors_are_corrected_at_high_snr(name):
    g = graph(name)
    n = g.n
    bits = codewords(name, 1).expand(n, n).clone()
    llr = 10.0 * (1 - 2 * bits)
    flip = torch.arange(n)
    llr[flip, flip] *= -0.5  # frame i has bit i wrong, with half the confidence
    with torch.no_grad():
        out = NeuralMinSum(g, 10)(llr)[0][-1]
    assert torch.equal((out < 0).float(), bits)


def test_check_order_does_not_matter():
    code = load_code("ccsds_128_64")
    checks = [list(c) for c in code.checks]
    perm = torch.randperm(len(checks), generator=torch.Generator().manual_seed(0)).tolist()
    bits = codewords("ccsds_128_64", 16)
    llr = bpsk_awgn_llr(bits, 2.0, 0.5, torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = NeuralMinSum(graph("ccsds_128_64"), 8)(llr)[0][-1]
        b = NeuralMinSum(graph("ccsds_128_64", [checks[i] for i in perm]), 8)(llr)[0][-1]
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_ucn_weight_acts_only_on_unsatisfied_checks():
    g = graph("mackay_96_48")
    bits = codewords("mackay_96_48", 32)
    llr = bpsk_awgn_llr(bits, 1.5, 0.5, torch.Generator().manual_seed(3))
    llr[:16] = 4.0 * (1 - 2 * bits[:16])  # half the frames noiseless: no check is ever unsatisfied
    model = NeuralMinSum(g, 6)
    with torch.no_grad():
        base = model(llr)[0][-1]
        model.w_ucn.fill_(0.5)
        changed = model(llr)[0][-1]
    assert torch.equal(base[:16], changed[:16])
    assert not torch.equal(base[16:], changed[16:])


def test_gradients_match_finite_differences():
    g = graph("mackay_96_48")
    bits = codewords("mackay_96_48", 8)
    llr = bpsk_awgn_llr(bits, 1.0, 0.5, torch.Generator().manual_seed(4)).double()
    model = NeuralMinSum(g, 3).double()
    with torch.no_grad():
        for w in (model.w_cn, model.w_ucn, model.w_ch):
            w.copy_(
                0.6
                + 0.8
                * torch.rand(3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
            )

    def loss() -> torch.Tensor:
        out = model(llr)[0][-1]
        return torch.nn.functional.binary_cross_entropy_with_logits(-out, bits.double())

    params = [model.w_cn, model.w_ucn, model.w_ch]
    grads = torch.autograd.grad(loss(), params)
    for p, gr in zip(params, grads, strict=True):
        for i in range(3):
            with torch.no_grad():
                p[i] += 1e-6
                up = loss().item()
                p[i] -= 2e-6
                down = loss().item()
                p[i] += 1e-6
            assert gr[i].item() == pytest.approx((up - down) / 2e-6, rel=1e-3, abs=1e-7)


def test_project_clips_weights_to_0_2():
    model = NeuralMinSum(graph("mackay_96_48"), 3)
    with torch.no_grad():
        model.w_cn.copy_(torch.tensor([-1.0, 1.0, 3.0]))
    model.project_()
    assert model.w_cn.tolist() == [0.0, 1.0, 2.0]
