"""TAPS: training with adversarial (PGD) estimates of the head's bounds on top of IBP
(Mao, Mueller, Fischer, Vechev, NeurIPS 2023, "Connecting certified and adversarial training",
arXiv 2305.04574; code ``eth-sri/TAPS``, read at commit 6b5c5d9: ``torch_model_wrapper.py``,
``mix_train.py``, ``scripts/train_tinyimagenet``).

The model splits into a feature extractor g (``model.features``) and a head h (``model.head``),
TAPS's ``--block-sizes 17 4`` for CNN7 (docs/methods.md#taps):
1. IBP through g gives a latent box [l, u]; IBP through h gives the margin bounds of L_IBP.
2. PGD in the head, without parameter gradients: for every class j != y a point z_j in [l, u]
   maximizing h(z_j)_j - h(z_j)_y (``n`` sign-gradient steps of size eta (u - l), eta_0 =
   max(0.2, 2/n), decayed x0.1 as in ``_get_pivotal_points_one_batch``; the best point kept;
   head batch norm frozen at the clean batch's statistics).
3. Gradient connector (``RectifiedLinearGradientLink``, c = ``soft_thre``): the forward returns
   z_j, the backward sends z's gradient to u with weight max(0, rho - (1 - c)) / c and to l
   with max(0, c - rho) / c, rho = (z - l) / (u - l).
4. L_TAPS = log(1 + sum_j exp(h(z_j)_j - h(z_j)_y)); the loss is GradExpander_alpha(L_TAPS) *
   L_IBP (its forward the product; L_TAPS's gradient scaled by alpha).
While eps ramps the method trains with plain IBP plus Fast-IBP's regularizer (weight
``reg_lambda``) from Fast-IBP's initialization (``--init fast``), as ``mix_train.py`` does; TAPS
starts when the ramp ends. The TAPS estimate is unsound by design: only the workload's float64
IBP evaluator scores. Adam, lr x0.2 at 76% and 89% of the horizon, gradient-norm clip 10.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.schedules import optimizer_step
from submissions._common import adam_step_decay
from workloads.certification.bounds import (
    forward_affine,
    input_box,
    margin_lower,
    propagate,
    robust_loss,
)
from workloads.certification.regularizers import fast_ibp_loss, ibp_init
from workloads.certification.schedules import smoothed_eps

GRAD_CLIP = 10.0
TOL = 1e-5  # the connector's guard against zero-width boxes (the authors' self.tol)


def init(workload, model, hparams, rng):
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
    ibp_init(model, generator=torch.Generator().manual_seed(seed))
    opt, sched, horizon = adam_step_decay(model.parameters(), hparams, workload.spec.step_hint)
    start = int(hparams["ramp_start"] * horizon)
    length = max(1, int(hparams["ramp_length"] * horizon))
    return {"opt": opt, "sched": sched, "start": start, "length": length, "loss": None}


class RectifiedLinearGradientLink(torch.autograd.Function):
    """Forward: z. Backward: z's gradient goes to the box bounds (summed over the points of one
    sample), none to z. ``lo``/``hi``: (1, B, d); ``z``: (P, B, d)."""

    @staticmethod
    def forward(ctx, lo, hi, z, c: float, tol: float):
        ctx.save_for_backward(lo, hi, z)
        ctx.c, ctx.tol = c, tol
        return z.clone()

    @staticmethod
    def backward(ctx, grad_z):
        lo, hi, z = ctx.saved_tensors
        c, tol = ctx.c, ctx.tol
        slack = c * (hi - lo)
        thre = hi - slack
        g_hi = (z >= thre) * grad_z * (z - thre).clamp(min=0.5 * tol) / slack.clamp(min=tol)
        thre = lo + slack
        g_lo = (z <= thre) * grad_z * (thre - z).clamp(min=0.5 * tol) / slack.clamp(min=tol)
        return g_lo.sum(0, keepdim=True), g_hi.sum(0, keepdim=True), None, None, None


class GradExpander(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``alpha``."""

    @staticmethod
    def forward(ctx, x, alpha: float):
        ctx.alpha = alpha
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return ctx.alpha * grad, None


def pgd_milestones(n: int) -> list[int]:
    if 20 <= n <= 50:
        return [int(n * 0.7)]
    if 50 < n <= 80:
        return [int(n * 0.4), int(n * 0.7)]
    if n > 80:
        return [int(n * 0.3), int(n * 0.6), int(n * 0.8)]
    return []


def head_margins(head, z, y, affines):
    """h(z)_j - h(z)_y for points z (B, P, d) where point p targets class others[b, p]."""
    b, p, d = z.shape
    out = forward_affine(head, z.reshape(b * p, d), affines).reshape(b, p, -1)
    return out - out.gather(2, y.view(b, 1, 1).expand(b, p, 1))


def others_of(y: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K-1): for each sample the classes j != y, in increasing order."""
    j = torch.arange(k - 1, device=y.device).expand(len(y), k - 1)
    return j + (j >= y[:, None]).long()


def pivotal_points(head, lo, hi, y, affines, k, steps, generator):
    """PGD in the head box: for each j != y, the z in [lo, hi] maximizing h(z)_j - h(z)_y.
    No gradient reaches the network. Returns (B, K-1, d)."""
    others = others_of(y, k)
    lo_, hi_ = lo.detach()[:, None], hi.detach()[:, None]
    width = hi_ - lo_
    aff = {key: (a.detach(), c.detach()) for key, (a, c) in affines.items()}
    pts = lo_ + width * torch.rand(
        lo.shape[0], k - 1, lo.shape[1], generator=generator, device=lo.device, dtype=lo.dtype
    )
    best = pts.clone()
    best_val = torch.full(others.shape, -math.inf, device=lo.device, dtype=lo.dtype)
    lr, milestones = max(0.2, 2 / steps), pgd_milestones(steps)
    params = [q for layer in head for q in layer.parameters() if q.requires_grad]
    for q in params:
        q.requires_grad_(False)
    try:
        for it in range(steps + 1):
            pts.requires_grad_(True)
            with torch.enable_grad():
                val = head_margins(head, pts, y, aff).gather(2, others[..., None]).squeeze(2)
                grad = torch.autograd.grad(val.sum(), pts)[0] if it != steps else None
            with torch.no_grad():
                better = val > best_val
                best_val = torch.where(better, val, best_val)
                best = torch.where(better[..., None], pts, best)
                if grad is None:
                    break
                pts = torch.minimum(torch.maximum(pts + grad.sign() * lr * width, lo_), hi_)
                if it + 1 in milestones:
                    lr *= 0.1
    finally:
        for q in params:
            q.requires_grad_(True)
    return best.detach()


def taps_loss(model, x, y, eps, hparams, generator):
    """GradExpander_alpha(L_TAPS) * L_IBP from one IBP pass through the features."""
    mu, r = input_box(x, eps)
    affines: dict = {}
    mu, r, clean = propagate(model.features, mu, r, x, affines=affines)
    lo, hi = mu - r, mu + r
    head = list(model.head)
    mu_h, r_h, _ = propagate(head[:-1], mu, r, clean, affines=affines)
    l_ibp = robust_loss(margin_lower(head[-1], mu_h, r_h, y), y)
    k = head[-1].out_features
    z = pivotal_points(head, lo, hi, y, affines, k, int(hparams["pgd_steps"]), generator)
    z = RectifiedLinearGradientLink.apply(
        lo.unsqueeze(0), hi.unsqueeze(0), z.transpose(0, 1), hparams["soft_thre"], TOL
    ).transpose(0, 1)
    u = head_margins(head, z, y, affines).gather(2, others_of(y, k)[..., None]).squeeze(2)
    l_taps = F.cross_entropy(torch.cat([torch.zeros_like(u[:, :1]), u], 1), torch.zeros_like(y))
    return GradExpander.apply(l_taps, hparams["alpha"]) * l_ibp


def update(workload, model, state, batch, hparams, step, rng):
    eps = smoothed_eps(step, state["start"], state["length"], workload.eps)
    in_ramp = step < state["start"] + state["length"]
    if in_ramp:
        loss = fast_ibp_loss(
            model, batch.x, batch.y, eps, workload.eps, True, hparams["reg_lambda"]
        )
    else:
        loss = taps_loss(model, batch.x, batch.y, eps, hparams, rng)
    return optimizer_step(model, state, loss, GRAD_CLIP)
