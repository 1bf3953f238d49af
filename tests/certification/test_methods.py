"""The methods' building blocks: Fast-IBP's initialization and regularizers, TAPS's pivotal
points, gradient connector and gradient expander (docs/methods.md#ibp_short_warmup,
docs/methods.md#taps)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.discovery import load_submission
from workloads.certification import bounds
from workloads.certification.model import Arch, CertNet
from workloads.certification.regularizers import ibp_init, warmup_regularizer

taps = load_submission("taps").module

ARCH = Arch(1, 8, 10, ((16, 1), (16, 1), (32, 2), (32, 1), (32, 2)), 64, (0.3,), (0.4,))


def net(seed=0) -> CertNet:
    torch.manual_seed(seed)
    return CertNet(ARCH)


def radii(model, x, eps):
    out = bounds.ibp(model, x, torch.zeros(len(x), dtype=torch.long), eps, trace=True)
    pre = [
        t for t, n in zip(out.trace, out.trace[1:], strict=False) if isinstance(n.layer, nn.ReLU)
    ]
    d0 = ((out.trace[0].hi - out.trace[0].lo) / 2).mean()
    return d0, [((t.hi - t.lo) / 2).mean() for t in pre]


def test_ibp_init_keeps_bound_width_of_the_order_of_the_input_width():
    """Shi et al.'s analysis of the initialization alone (batch norm at its initial running
    statistics, i.e. the identity): with IBP init every pre-activation radius stays within a
    small factor of d_0, with the default init it grows with depth. (With batch statistics the
    box still grows; that is what the tightness regularizer is for.)"""
    x = torch.rand(64, 1, 8, 8)
    default = net()
    fast = net()
    ibp_init(fast, torch.Generator().manual_seed(0))
    default.eval(), fast.eval()
    with torch.no_grad():
        d0, r_default = radii(default, x, 0.05)
        _, r_fast = radii(fast, x, 0.05)
    assert all(r < 3 * d0 for r in r_fast), [float(r / d0) for r in r_fast]
    assert r_default[-1] > 20 * r_fast[-1]
    # the last layer keeps its default initialization
    assert torch.equal(fast.head[-1].weight, default.head[-1].weight)
    assert not torch.equal(fast.head[0].weight, default.head[0].weight)


def test_regularizer_is_finite_with_a_layer_that_has_no_active_units():
    model = net()
    model.train()
    with torch.no_grad():  # kill every unit of the first conv: no active ReLU there
        model.features[2].bias.fill_(-100.0)
        model.features[2].weight.zero_()
    x = torch.rand(16, 1, 8, 8)
    out = bounds.ibp(model, x, torch.zeros(16, dtype=torch.long), 0.05, trace=True)
    reg = warmup_regularizer(out.trace)
    total = reg["tightness"] + reg["relu"]
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_regularizer_vanishes_when_bounds_are_tight_and_balanced():
    """tightness: zero while no layer's radius exceeds 2 d_0 (tol 0.5)."""
    model = net()
    ibp_init(model, torch.Generator().manual_seed(1))
    model.train()
    x = torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        out = bounds.ibp(model, x, torch.zeros(64, dtype=torch.long), 1e-6, trace=True)
        reg = warmup_regularizer(out.trace)
    assert 0.0 <= float(reg["tightness"]) < 1.0 and 0.0 <= float(reg["relu"]) <= 2.0


def test_connector_gradients_follow_the_rectified_linear_rule():
    """1-D box [0, 1], c = 0.5: dz/du = max(0, 2 rho - 1), dz/dl = max(0, 1 - 2 rho)."""
    lo = torch.zeros(1, 1, 1, requires_grad=True)
    hi = torch.ones(1, 1, 1, requires_grad=True)
    for rho in (0.0, 0.1, 0.3, 0.5, 0.7, 0.95, 1.0):
        lo.grad = hi.grad = None
        z = torch.full((1, 1, 1), rho)
        out = taps.RectifiedLinearGradientLink.apply(lo, hi, z, 0.5, 1e-5)
        assert torch.equal(out, z)
        out.sum().backward()
        tol = 1e-5  # the source clamps the distance below at tol / 2
        assert float(hi.grad) == pytest.approx(max(0.0, 2 * rho - 1), abs=tol)
        assert float(lo.grad) == pytest.approx(max(0.0, 1 - 2 * rho), abs=tol)


def test_grad_expander_with_alpha_one_is_the_product_rule():
    a = torch.tensor(1.3, requires_grad=True)
    b = torch.tensor(0.7, requires_grad=True)
    f = lambda: taps.GradExpander.apply(a**2, 1.0) * b**3  # noqa: E731
    f().backward()
    ga, gb = a.grad.clone(), b.grad.clone()
    torch.testing.assert_close(ga, 2 * a.detach() * b.detach() ** 3)
    torch.testing.assert_close(gb, 3 * b.detach() ** 2 * a.detach() ** 2)
    a.grad = b.grad = None
    (taps.GradExpander.apply(a**2, 5.0) * b**3).backward()
    torch.testing.assert_close(a.grad, 5 * ga)
    torch.testing.assert_close(b.grad, gb)


def test_pivotal_points_lie_in_the_box_and_never_exceed_the_ibp_upper_margin():
    model = net()
    ibp_init(model, torch.Generator().manual_seed(0))
    model.train()
    x = torch.rand(12, 1, 8, 8)
    y = torch.randint(0, 10, (12,))
    mu, r = bounds.input_box(x, 0.1)
    affines: dict = {}
    mu, r, clean = bounds.propagate(model.features, mu, r, x, affines=affines)
    lo, hi = mu - r, mu + r
    head = list(model.head)
    mu_h, r_h, _ = bounds.propagate(head[:-1], mu, r, clean, affines=affines)
    upper = -bounds.margin_lower(head[-1], mu_h, r_h, y)  # upper bounds of z_j - z_y
    z = taps.pivotal_points(head, lo, hi, y, affines, 10, 10, torch.Generator().manual_seed(0))
    assert z.shape == (12, 9, lo.shape[1])
    assert (z >= lo[:, None] - 1e-6).all() and (z <= hi[:, None] + 1e-6).all()
    others = taps.others_of(y, 10)
    u = taps.head_margins(head, z, y, affines).gather(2, others[..., None]).squeeze(2)
    assert (u <= upper.gather(1, others) + 1e-5).all()
    # PGD beats the box centre on average (it maximizes the margin)
    centre = taps.head_margins(head, ((lo + hi) / 2)[:, None].expand_as(z), y, affines)
    assert u.mean() > centre.gather(2, others[..., None]).squeeze(2).mean()
    # no gradient reached the network
    assert all(p.grad is None for p in model.parameters())


def test_taps_loss_sends_gradients_to_features_and_head():
    model = net()
    ibp_init(model, torch.Generator().manual_seed(0))
    model.train()
    x = torch.rand(16, 1, 8, 8)
    y = torch.randint(0, 10, (16,))
    hp = {"pgd_steps": 5, "soft_thre": 0.5, "alpha": 5.0}
    loss = taps.taps_loss(model, x, y, 0.1, hp, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.features[1].weight.grad.abs().sum() > 0
    assert model.head[-1].weight.grad.abs().sum() > 0


# -- the workload's own objective for generic methods (``training_loss``) ------------------


def test_training_loss_ramps_eps_over_the_spec_fractions_of_step_hint():
    from workloads.certification import SPECS, CertBatch, CertificationWorkload

    spec = SPECS["smoke"]
    wl = CertificationWorkload(spec, torch.device("cpu"))
    start = int(spec.ramp_start * spec.step_hint)
    end = start + int(spec.ramp_length * spec.step_hint)
    assert wl.training_eps(0) == wl.training_eps(start) == 0.0
    assert wl.training_eps(end) == wl.training_eps(10 * end) == wl.eps
    mid = wl.training_eps((start + end) // 2)
    assert 0.4 * wl.eps < mid < 0.6 * wl.eps
    eps = [wl.training_eps(s) for s in range(0, end + 2)]
    assert all(a <= b for a, b in zip(eps, eps[1:], strict=False))  # monotone

    model = wl.init_model(torch.Generator().manual_seed(0))
    batch = CertBatch(torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    torch.manual_seed(0)
    natural = wl.training_loss(model, batch, 0)
    assert torch.allclose(natural, wl.loss(model, batch))  # eps = 0: natural cross-entropy
    late = wl.training_loss(model, batch, 10 * end)
    expected = bounds.mixed_loss(model, batch.x, batch.y, wl.eps, wl.eps, spec.kappa_final)
    assert torch.allclose(late, expected)
    assert float(late) > float(natural)  # the robust part of the loss is larger


def test_mixed_loss_mixes_natural_and_robust_by_kappa():
    model = net()
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    out = bounds.ibp(model, x, y, 0.1)
    ce = nn.functional.cross_entropy(out.logits, y)
    rob = bounds.robust_loss(out.margins, y)
    # eps = eps_max: kappa = kappa_final
    got = bounds.mixed_loss(model, x, y, 0.1, 0.1, 0.25)
    assert torch.allclose(got, 0.25 * ce + 0.75 * rob)
    # halfway up the ramp: kappa = 1 - (1 - 0.25) / 2
    out = bounds.ibp(model, x, y, 0.05)
    half = bounds.mixed_loss(model, x, y, 0.05, 0.1, 0.25)
    k = 1 - 0.75 / 2
    expected = k * nn.functional.cross_entropy(out.logits, y) + (1 - k) * bounds.robust_loss(
        out.margins, y
    )
    assert torch.allclose(half, expected)
