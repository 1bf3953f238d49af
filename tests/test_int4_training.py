"""``int4_training``: the quantizers of Xi et al. 2023 (arXiv 2306.11987), their parity with the
exact references of ``workloads/_common/int_arith.py``, ``Int4Linear``'s forward and the
unbiasedness of its backward, and two smoke steps of each workload through the real harness.

Monte-Carlo checks are seeded; each states its tolerance in units of the estimator's standard
error (5 sigma, so a correct estimator fails with probability < 1e-6 per entry checked jointly
by the norm bound given)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from harness import records
from harness.api import ContractError
from harness.discovery import load_submission
from harness.kernels import parity
from harness.runner import RunConfig, run_trial
from submissions.int4_training.kernels import KERNELS, Int4Config, int4_linear, quant
from workloads._common import int_arith

CPU = torch.device("cpu")


# -- quantizers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 128])
def test_hadamard_is_orthonormal_symmetric_and_matches_its_closed_form(n):
    h = quant.hadamard_matrix(n, torch.float64)
    assert torch.allclose(h @ h.t(), torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.equal(h, h.t())
    assert torch.allclose(h, int_arith.hadamard_closed_form(n), atol=1e-15)


def test_block_hadamard_is_its_own_inverse_and_keeps_norms():
    x = torch.randn(5, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for g in (1, 2, 8, 32):
        y = quant.block_hadamard(x, g)
        assert torch.allclose(quant.block_hadamard(y, g), x, atol=1e-12)
        assert torch.allclose(y.norm(dim=1), x.norm(dim=1), atol=1e-12)
    with pytest.raises(ValueError, match="does not divide"):
        quant.block_hadamard(x, 64)
    with pytest.raises(ValueError, match="power of 2"):
        quant.hadamard_matrix(12)


def test_int4_quantize_range_and_error_bound():
    g = torch.Generator().manual_seed(1)
    s = torch.tensor(0.3)
    v = torch.randn(4000, generator=g) * 3
    q = quant.int4_quantize(v, s)
    assert q.dtype == torch.int8 and int(q.min()) >= -8 and int(q.max()) <= 7
    inside = (v >= -8 * s) & (v <= 7 * s)
    err = (v - q.float() * s).abs()
    assert float(err[inside].max()) <= float(s) / 2 + 1e-6  # round to nearest: at most s / 2
    assert torch.equal(q[v > 8 * s], torch.full_like(q[v > 8 * s], 7))  # clamped above


def test_bit_split_reconstructs_within_one_step_and_is_unbiased():
    g = torch.Generator().manual_seed(2)
    grad = torch.randn(16, 24, generator=g) * 1e-3
    grad[0, 0] = 0.02  # the outlier sets the scale
    draws = 4000
    total = torch.zeros_like(grad, dtype=torch.float64)
    for _ in range(draws):
        hi, lo, c = quant.split_output_gradient(grad, torch.rand(grad.shape, generator=g))
        assert int(hi.abs().max()) <= 7 and int(lo.abs().max()) <= 7
        back = (hi.double() * quant.SPLIT_BINS + lo.double()) / float(c)
        assert float((back - grad.double()).abs().max()) < 1.0 / float(c) + 1e-9
        total += back
    # one draw's error is a two-point variable within one step 1/c: sd <= 0.5 / c
    se = 0.5 / float(c) / math.sqrt(draws)
    assert float((total / draws - grad.double()).abs().max()) < 5 * se


def test_leverage_keep_probs_sum_to_half_cap_at_one_and_follow_the_scores():
    g = torch.Generator().manual_seed(3)
    s = torch.rand(200, generator=g, dtype=torch.float64)
    s[:7] *= 500.0
    p = quant.leverage_keep_probs(s)
    assert abs(float(p.sum()) - 100.0) < 1e-9
    assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0 + 1e-12
    assert torch.all(p[:7] == 1.0)
    free = p < 1.0
    ratio = p[free] / s[free]
    assert float(ratio.max() - ratio.min()) < 1e-9 * float(ratio.max())  # p = c s below the cap
    assert torch.allclose(p, int_arith.leverage_keep_probs(s), atol=1e-12)
    assert float(quant.leverage_keep_probs(torch.zeros(6)).sum()) == 0.0


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (16, 128, 256), (40, 17, 9), (0, 8, 8)])
def test_int_mm_is_exact_for_any_shape(m, k, n):
    g = torch.Generator().manual_seed(m + k + n)
    a = torch.randint(-8, 8, (m, k), generator=g, dtype=torch.int8)
    b = torch.randint(-8, 8, (k, n), generator=g, dtype=torch.int8)
    out = quant.int_mm(a, b)
    assert out.dtype == torch.int32 and out.shape == (m, n)
    assert torch.equal(out, int_arith.int8_matmul(a, b))


def test_int_mm_rejects_bad_input():
    with pytest.raises(TypeError, match="int8"):
        quant.int_mm(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="do not chain"):
        quant.int_mm(torch.zeros(2, 3, dtype=torch.int8), torch.zeros(2, 3, dtype=torch.int8))


# -- parity, as ttr check runs it ---------------------------------------------------------------
def test_kernels_cover_every_int_arith_op_on_both_workloads():
    want = {f"{w}.{op}" for w in ("translation", "factuality") for op in int_arith.INT_ARITH_OPS}
    assert {k.replaces for k in KERNELS} == want


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k.replaces.startswith("translation.")])
def test_kernel_parity(kernel):
    results = parity(kernel, CPU)
    assert results and all(r.ok for r in results), [r.detail for r in results]


def test_parity_catches_a_wrong_rounding():
    """The check is not vacuous: rounding half away from zero differs on the tie inputs."""
    from harness.api import Kernel

    def away(v, s):
        r = v / s
        return (torch.sign(r) * torch.floor(r.abs() + 0.5)).clamp(-8, 7).to(torch.int8)

    bad = Kernel(name="away", replaces="translation.int4_quantize", fn=away)
    assert not all(r.ok for r in parity(bad, CPU))


# -- Int4Linear ---------------------------------------------------------------------------------
def _layer(seed=0, n=64, k=32, m=48):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g, dtype=torch.float32)
    w = torch.randn(m, k, generator=g) / math.sqrt(k)
    b = torch.randn(m, generator=g)
    group = quant.best_group(x, w)
    s_x = quant.lsq_init_scale(quant.block_hadamard(x, group))
    s_w = quant.lsq_init_scale(quant.block_hadamard(w, group))
    return x, w, b, s_x, s_w, group


def test_forward_is_the_dequantized_integer_product():
    x, w, b, s_x, s_w, group = _layer()
    y = int4_linear(x, w, b, s_x, s_w, group)
    qx = quant.int4_quantize(quant.block_hadamard(x, group), s_x).double() * float(s_x)
    qw = quant.int4_quantize(quant.block_hadamard(w, group), s_w).double() * float(s_w)
    want = qx @ qw.t() + b.double()
    assert torch.allclose(y.double(), want, rtol=1e-5, atol=1e-5)
    exact = x.double() @ w.double().t() + b.double()
    rel = float((y.double() - exact).norm() / (exact - b.double()).norm())
    assert rel < 0.3, f"INT4 forward relative error {rel:.3f}"  # 4 bits: about 0.1 here


@pytest.mark.slow  # the CI's slow step runs it; the default run stays under 15 min
@pytest.mark.parametrize("cfg", [Int4Config(), Int4Config(lss_input=False, lss_weight=False)])
def test_backward_is_unbiased_for_the_quantized_forward(cfg):
    """Over seeded draws of the stochastic rounding and the sampling, the mean gradients equal
    the gradients of the quantized forward (straight-through inside the clamp range, zero
    outside), within 5 standard errors (a relative norm bound of 5 x the measured spread)."""
    x, w, b, s_x, s_w, group = _layer(seed=4)
    gy = torch.randn(x.shape[0], w.shape[0], generator=torch.Generator().manual_seed(5))
    rx = quant.block_hadamard(x, group) / s_x
    rw = quant.block_hadamard(w, group) / s_w
    qx = torch.round(rx).clamp(-8, 7).double() * float(s_x)
    qw = torch.round(rw).clamp(-8, 7).double() * float(s_w)
    mid_x = ((rx >= -8) & (rx <= 7)).double()
    mid_w = ((rw >= -8) & (rw <= 7)).double()
    want_x = quant.block_hadamard((gy.double() @ qw) * mid_x, group)
    want_w = quant.block_hadamard((gy.double().t() @ qx) * mid_w, group)
    gen = torch.Generator().manual_seed(6)
    draws_x, draws_w = [], []
    for _ in range(300):
        xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
        int4_linear(xx, ww, b, s_x, s_w, group, gen, cfg).backward(gy)
        draws_x.append(xx.grad.double())
        draws_w.append(ww.grad.double())
    for draws, want in ((draws_x, want_x), (draws_w, want_w)):
        d = torch.stack(draws)
        se = float(d.std(0).norm()) / math.sqrt(len(draws))
        assert float((d.mean(0) - want).norm()) < 5 * se + 1e-9
        assert float((d.mean(0) - want).norm()) < 0.1 * float(want.norm())


def test_lsq_step_size_gradient_matches_the_lsq_rule():
    x, w, b, s_x, s_w, group = _layer(seed=7)
    sx, sw = s_x.clone().requires_grad_(), s_w.clone().requires_grad_()
    gy = torch.randn(x.shape[0], w.shape[0], generator=torch.Generator().manual_seed(8))
    cfg = Int4Config(lss_input=False, lss_weight=False)
    int4_linear(x, w, b, sx, sw, group, torch.Generator().manual_seed(9), cfg).backward(gy)
    rw = quant.block_hadamard(w, group) / s_w
    # expected dL/ds_w with the (random) weight-gradient draw replaced by its expectation
    qx = torch.round(quant.block_hadamard(x, group) / s_x).clamp(-8, 7) * s_x
    gwh = gy.t() @ qx
    elem = torch.where(rw < -8, -8.0, torch.where(rw > 7, 7.0, torch.round(rw) - rw))
    want = float((elem * gwh).sum()) / math.sqrt(rw.numel() * 7)
    assert sw.grad is not None and sx.grad is not None
    assert abs(float(sw.grad) - want) < 0.05 * abs(want) + 1e-6


# -- the submission through the harness ---------------------------------------------------------
def test_submission_declares_both_transformer_workloads():
    sub = load_submission("int4_training")
    assert sub.supports("translation") and sub.supports("factuality")
    assert not sub.supports("ldpc")


@pytest.mark.slow  # the CI's slow step runs it; the default run stays under 15 min
@pytest.mark.parametrize("workload", ["translation", "factuality"])
def test_two_smoke_steps_through_the_referee(workload, tmp_path):
    res = run_trial(
        RunConfig(
            workload=workload,
            submission="int4_training",
            variant="smoke",
            runs=tmp_path,
            budget_s=3600.0,
            eval_every_s=3600.0,
            max_steps=2,
            final_test_eval=False,
        )
    )
    assert res.status != "failed", res.reason
    run = json.loads((res.run_dir / records.RUN_JSON).read_text())
    assert run["steps"] == 2
    rows = [
        json.loads(line) for line in (res.run_dir / records.EVALS_JSONL).read_text().splitlines()
    ]
    assert rows and all(math.isfinite(r["metrics"]["loss"]) for r in rows if "metrics" in r)


def test_update_swaps_the_linear_layers_only_inside_and_trains_the_step_sizes():
    from harness.discovery import build_workload, get_spec
    from submissions.int4_training import submission as sub

    wl = build_workload(get_spec("translation", "smoke"), CPU)
    model = wl.init_model(torch.Generator().manual_seed(0))
    keys = set(model.state_dict())
    rng = torch.Generator().manual_seed(1)
    state = sub.init(wl, model, {"lr_factor": 1.0}, rng)
    assert state["hp"]["lr"] == 0.002 and state["hp"]["temperature"] == 5.0  # the baseline's
    streams = wl.train_streams(8, torch.Generator().manual_seed(2))
    first = {}
    for step in range(2):
        batch = sub.data_selection(wl, streams, state, step, rng)
        state = sub.update(wl, model, state, batch, {"lr_factor": 1.0}, step, rng)
        first = first or {n: float(lq.s_x.detach()) for n, lq in state["int4"].items()}
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert set(model.state_dict()) == keys
    assert all(lq.group >= 1 for lq in state["int4"].values())
    assert any(float(lq.s_x.detach()) != first[n] for n, lq in state["int4"].items())
    assert math.isfinite(float(state["loss"]))
    with pytest.raises(ContractError, match="lr_factor"):
        sub.init(wl, model, {"lr_factor": 0.0}, rng)
