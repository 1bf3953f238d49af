"""AdamP: Adam whose update is projected off the weight direction of scale-invariant weights.

Heo et al., ICLR 2021 ("AdamP: Slowing down the slowdown for momentum optimizers on
scale-invariant weights", arXiv 2006.08217), as ``clovaai/AdamP``'s ``adamp/adamp.py``
(docs/methods.md#adamp): the Adam direction q = m / denom; for a tensor with more than one
dimension, if the gradient is nearly orthogonal to the weight, first per output channel
(rows), then for the whole layer, i.e. max |cos(g, w)| < delta / sqrt(row length), q loses
its component along w (q <- q - w_hat (w_hat . q) per row) and the weight decay is scaled by
``wd_ratio``. Then theta <- theta (1 - lr wd wd_ratio); theta <- theta - lr / (1 - b1^t) q.
Weights followed by a normalization layer are scale-invariant, so projecting there stops the
weight norm from growing and the effective step size from shrinking. Workload objective, batch
size and schedule as ``adamw``. A generic method.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.schedules import optimizer_step
from submissions._common import adam_args, cosine_to_hint, end_at_hint


def _channel_view(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def _layer_view(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(1, -1)


def project(p, grad, q, delta: float, wd_ratio: float, eps: float):
    """(q, weight-decay factor): q projected off p's direction in the first view whose
    largest |cos(grad, p)| is under delta / sqrt(view width), else (q, 1)."""
    shape = (-1,) + (1,) * (p.dim() - 1)  # a view's rows back onto p (-1 is 1 for a layer)
    for view in (_channel_view, _layer_view):
        cos = F.cosine_similarity(view(grad), view(p), dim=1, eps=eps).abs()
        if float(cos.max()) < delta / math.sqrt(view(p).shape[1]):
            p_hat = p / view(p).norm(dim=1).view(shape).add(eps)
            q = q - p_hat * view(p_hat * q).sum(dim=1).view(shape)
            return q, wd_ratio
    return q, 1.0


class AdamP(torch.optim.Optimizer):
    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, delta=0.1,
        wd_ratio=0.1, nesterov=False,
    ):  # fmt: skip
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"bad AdamP settings: lr={lr}, betas={betas}, eps={eps}")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, delta=delta,
            wd_ratio=wd_ratio, nesterov=nesterov,
        )  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                denom = (v.sqrt() / math.sqrt(1.0 - b2**t)).add_(group["eps"])
                num = m.mul(b1).add_(g, alpha=1.0 - b1) if group["nesterov"] else m
                q = num / denom
                ratio = 1.0
                if p.dim() > 1:
                    q, ratio = project(p, g, q, group["delta"], group["wd_ratio"], group["eps"])
                if group["weight_decay"] > 0:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"] * ratio)
                p.add_(q, alpha=-group["lr"] / (1.0 - b1**t))
        return loss


def init(workload, model, hparams, rng):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = AdamP(
        params,
        **adam_args(hparams),
        delta=hparams["delta"],
        wd_ratio=hparams["wd_ratio"],
    )
    return cosine_to_hint(opt, hparams, workload.spec.step_hint)


def update(workload, model, state, batch, hparams, step, rng):
    state = optimizer_step(model, state, workload.training_loss(model, batch, step))
    return end_at_hint(state, step, workload.spec.step_hint)
