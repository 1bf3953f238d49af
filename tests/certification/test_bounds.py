"""Interval bound propagation, the float64 evaluator, PGD and the eps schedules.

Soundness is checked empirically against the real network: every layer's bounds contain that
layer's output at random and adversarial points of the box, certified points survive a strong
PGD, and float64 agrees with float32 wherever the margin is not within rounding of zero.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.api import ContractError
from harness.discovery import load_submission
from harness.search_space import SearchSpace
from workloads.certification import SPECS, WORKLOAD, attacks, bounds
from workloads.certification.data import ImageSplits
from workloads.certification.model import Arch, CertNet
from workloads.certification.schedules import linear_eps, smoothed_eps

CPU = torch.device("cpu")


def small_net(seed=0, classes=5, train_steps=0) -> CertNet:
    torch.manual_seed(seed)
    arch = Arch(1, 8, classes, ((6, 1), (8, 2)), 12, (0.3,), (0.4,))
    net = CertNet(arch)
    # give batch norm non-trivial running statistics and affine parameters
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    net.train()
    for _ in range(3):
        net(torch.rand(32, 1, 8, 8))
    return net.eval()


def points_in_box(x, eps, n, g):
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    u = torch.rand((n, *x.shape), generator=g, dtype=x.dtype)
    u[0], u[1] = 0.0, 1.0  # the corners lo and hi themselves
    return lo + u * (hi - lo)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_every_layer_contains_outputs_of_points_in_the_box(mode):
    """Conv, BatchNorm2d/1d (running or clean-batch statistics), ReLU, Linear, Normalize and
    Flatten: random points of the box stay within each layer's IBP bounds."""
    net = small_net()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64)
    net = net.double()
    net.train(mode == "train")
    eps = 0.05
    mu, r = bounds.input_box(x, eps)
    trace: list[bounds.LayerBounds] = []
    affines: dict = {}
    bounds.propagate(net.layers(), mu, r, x, trace, affines)
    kinds = {type(t.layer).__name__ for t in trace}
    assert {
        "Normalize",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "Flatten",
        "Linear",
        "BatchNorm1d",
    } <= kinds
    for pts in points_in_box(x, eps, 64, g):
        z = pts
        for t in trace:
            z = bounds.forward_affine([t.layer], z, affines)
            assert (z >= t.lo - 1e-12).all() and (z <= t.hi + 1e-12).all(), type(t.layer)


def test_zero_eps_gives_the_clean_forward_pass():
    net = small_net().double()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    out = bounds.ibp(net, x, y, 0.0, trace=True)
    assert all(torch.equal(t.lo, t.hi) for t in out.trace)
    logits = net(x)
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.margins, logits.gather(1, y[:, None]) - logits)


def test_margin_folding_is_tighter_than_subtracting_logit_bounds():
    net = small_net().double()
    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 5, (8,))
    out = bounds.ibp(net, x, y, 0.05, trace=True)
    lo, hi = out.trace[-1].lo, out.trace[-1].hi
    naive = lo.gather(1, y[:, None]) - hi
    naive.scatter_(1, y[:, None], 0.0)
    assert (out.margins >= naive - 1e-12).all()
    assert (out.margins > naive + 1e-9).any()


def test_robust_loss_is_log_one_plus_sum_exp_minus_margins():
    m = torch.tensor([[0.0, 1.0, -2.0], [3.0, 0.0, 0.5]])
    y = torch.tensor([0, 1])
    per_sample = [
        math.log(1 + math.exp(-1.0) + math.exp(2.0)),
        math.log(1 + math.exp(-3.0) + math.exp(-0.5)),
    ]
    assert float(bounds.robust_loss(m, y)) == pytest.approx(sum(per_sample) / 2, rel=1e-6)


@pytest.fixture(scope="module")
def trained():
    """A network trained by the ibp_short_warmup submission on digits at eps 0.1 (300 steps,
    about 10 s): some validation points certified, some not."""
    sub = load_submission("ibp_short_warmup")
    spec = dataclasses.replace(SPECS["default"], eps=0.1, step_hint=300)
    wl = WORKLOAD(spec, CPU, eval_seed=0)
    model = wl.init_model(torch.Generator().manual_seed(0))
    hp = SearchSpace.load(sub.search_space_path).resolve({})
    rng = torch.Generator().manual_seed(0)
    state = sub.fn("init")(wl, model, hp, rng)
    stream = wl.train_streams(128, torch.Generator().manual_seed(0))["train"]
    for step in range(300):
        state = sub.fn("update")(wl, model, state, next(stream), hp, step, rng)
    ref = wl.reference_network(model)
    x = wl.pixels(wl.splits.x["validation"][:200])
    y = wl.splits.y["validation"][:200]
    return wl, ref, x, y


def test_certified_points_survive_pgd_and_random_points(trained):
    wl, ref, x, y = trained
    is_cert, _ = bounds.certify(bounds.float64_copy(ref), x.double(), y, wl.eps)
    assert 10 <= int(is_cert.sum()) < len(y), "want both certified and uncertified points"
    xc, yc = x[is_cert], y[is_cert]
    _, fooled = attacks.pgd(
        ref, xc, yc, wl.eps, steps=200, restarts=5, generator=torch.Generator().manual_seed(0)
    )
    assert not fooled.any()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for pts in points_in_box(xc, wl.eps, 32, g):
            assert torch.equal(ref(pts).argmax(1), yc)


def test_pgd_finds_adversarial_examples_and_stays_in_the_box(trained):
    wl, ref, x, y = trained
    eps = 0.3  # well beyond what the network was trained for
    adv, fooled = attacks.pgd(
        ref, x, y, eps, steps=50, restarts=1, generator=torch.Generator().manual_seed(0)
    )
    assert fooled.float().mean() > 0.5
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    assert (adv >= lo - 1e-7).all() and (adv <= hi + 1e-7).all()
    with torch.no_grad():
        assert (ref(adv[fooled]).argmax(1) != y[fooled]).all()


def test_float64_agrees_with_float32_except_at_the_margin(trained):
    wl, ref, x, y = trained
    c64, m64 = bounds.certify(bounds.float64_copy(ref), x.double(), y, wl.eps)
    ref32 = bounds.float64_copy(ref).float()
    c32, m32 = bounds.certify(ref32, x, y, wl.eps, dtype=torch.float32)
    gap = (m64 - m32.double()).abs().max()
    assert gap < 1e-4
    m = m64.clone()
    m.scatter_(1, y[:, None], float("inf"))
    near = m.min(1).values.abs() < 1e-4
    assert torch.equal(c64[~near], c32[~near])


def test_evaluator_metrics_are_ordered_and_deterministic(trained):
    wl, ref, _, _ = trained
    a = wl.evaluate(ref, "validation")
    b = wl.evaluate(ref, "validation")
    assert a == b
    assert 0 < a["certified_accuracy"] <= a["pgd_accuracy"] <= a["accuracy"] <= 1
    assert a["examples"] == 300


def test_evaluator_rejects_a_model_with_other_parameters(trained):
    wl, _, _, _ = trained
    other = CertNet(dataclasses.replace(wl.arch, linear=7))
    with pytest.raises(ContractError, match="architecture"):
        wl.evaluate(other, "validation")


# -- bad input ----------------------------------------------------------------------------


def test_negative_or_non_finite_eps_is_a_clear_error():
    x = torch.rand(2, 1, 8, 8)
    for eps in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps must be"):
            bounds.input_box(x, eps)
    with pytest.raises(ContractError, match="eps must be finite and >= 0"):
        WORKLOAD(dataclasses.replace(SPECS["smoke"], eps=-1 / 255), CPU)


def test_images_outside_unit_interval_are_a_clear_error():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        bounds.input_box(torch.full((1, 1, 8, 8), 1.5), 0.1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        bounds.input_box(torch.full((1, 1, 8, 8), -0.01), 0.1)
    u8 = torch.full((2, 1, 8, 8), 20, dtype=torch.uint8)
    with pytest.raises(ValueError, match="exceeds 16"):
        ImageSplits({"train": u8}, {"train": torch.tensor([0, 1])}, 10, 16.0, (0.5,), (0.2,))


def test_wrong_label_range_is_a_clear_error():
    u8 = torch.zeros((2, 1, 8, 8), dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.9"):
        ImageSplits({"train": u8}, {"train": torch.tensor([0, 10])}, 10, 16.0, (0.5,), (0.2,))
    net = small_net()
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.4"):
        bounds.certify(
            bounds.float64_copy(net), torch.rand(2, 1, 8, 8).double(), torch.tensor([0, 5]), 0.1
        )


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ContractError, match="unknown certification dataset"):
        WORKLOAD(dataclasses.replace(SPECS["smoke"], dataset="mnist"), CPU)


# -- eps schedules ------------------------------------------------------------------------


def test_smoothed_ramp_is_monotone_reaches_eps_and_has_a_continuous_slope():
    start, length, e = 10, 200, 0.3
    vals = [smoothed_eps(s, start, length, e) for s in range(0, 260)]
    assert all(b >= a for a, b in zip(vals, vals[1:], strict=False))
    assert vals[start] == 0.0 and vals[start + length] == pytest.approx(e)
    assert max(vals) == pytest.approx(e)
    sm = start + length // 4
    left = smoothed_eps(sm - 1e-6, start, length, e)
    right = smoothed_eps(sm + 1e-6, start, length, e)
    slope_l = (smoothed_eps(sm, start, length, e) - left) / 1e-6
    slope_r = (right - smoothed_eps(sm, start, length, e)) / 1e-6
    assert slope_l == pytest.approx(slope_r, rel=1e-4)


def test_linear_ramp():
    assert linear_eps(5, 5, 10, 1.0) == 0.0
    assert linear_eps(10, 5, 10, 1.0) == pytest.approx(0.5)
    assert linear_eps(100, 5, 10, 1.0) == 1.0
    with pytest.raises(ValueError):
        linear_eps(0, 0, 0, 1.0)


def test_reference_op_matches_the_conv_rule_of_interval_layer():
    from workloads.certification import REFERENCE_OPS

    op = REFERENCE_OPS["interval_conv2d"]
    mu, r, w, b, stride, padding = op.make_inputs(
        torch.Generator().manual_seed(0), torch.float64, CPU
    )
    conv = nn.Conv2d(w.shape[1], w.shape[0], 3, stride=stride, padding=padding).double()
    with torch.no_grad():
        conv.weight.copy_(w)
        conv.bias.copy_(b)
    m2, r2, _ = bounds.interval_layer(conv, mu.detach(), r.detach())
    out = op.fn(mu, r, w, b, stride, padding)
    torch.testing.assert_close(out[0], m2)
    torch.testing.assert_close(out[1], r2)


def test_augmentation_flips_and_crops_within_the_padded_image():
    from workloads.certification import augment

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g)
    out = augment(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    for i in range(64):  # each output is a shifted window of the (possibly flipped) image
        ok = False
        for img in (x[i], x[i].flip(2)):
            p = F.pad(img, (2, 2, 2, 2))
            ok |= any(
                torch.equal(out[i], p[:, dy : dy + 8, dx : dx + 8])
                for dy in range(5)
                for dx in range(5)
            )
        assert ok
