"""NAdamW with linear warmup and cosine decay: AlgoPerf's NAdamW baseline.

AdamW (decoupled decay, applied before the step) whose numerator is Nesterov's look-ahead
m_bar = beta1 m_t + (1 - beta1) g_t instead of m_t (Dozat 2016; Table 1 of arXiv 1910.05446),
as AlgoPerf's ``nadamw()`` computes it. Not ``torch.optim.NAdam``: its momentum-decay schedule
mu_t = beta1 (1 - 0.5 x 0.96^(t psi)) is a different rule. Same objective, batch size and
schedule as ``adamw`` (warmup over ``warmup_factor x step_hint``, cosine to 0 at
``step_hint``). docs/methods.md#nadamw. A generic method.
"""

from __future__ import annotations

import math

import torch

from harness.schedules import optimizer_step
from submissions._common import adam_args, cosine_to_hint, end_at_hint


class NAdamW(torch.optim.Optimizer):
    """theta <- theta (1 - lr wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    theta <- theta - lr (b1 m + (1 - b1) g) / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"bad NAdamW settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
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
                p.mul_(1.0 - lr * wd)
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                lookahead = m.mul(b1).add_(g, alpha=1.0 - b1)
                denom = (v.sqrt() / math.sqrt(1.0 - b2**t)).add_(eps)
                p.addcdiv_(lookahead, denom, value=-lr / (1.0 - b1**t))
        return loss


def init(workload, model, hparams, rng):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = NAdamW(params, **adam_args(hparams))
    return cosine_to_hint(opt, hparams, workload.spec.step_hint)


def update(workload, model, state, batch, hparams, step, rng):
    state = optimizer_step(model, state, workload.training_loss(model, batch, step))
    return end_at_hint(state, step, workload.spec.step_hint)
