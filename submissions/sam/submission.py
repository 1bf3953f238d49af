"""SAM (sharpness-aware minimization) with an AdamW base: AlgoPerf's archived SAM baseline.

Foret et al., ICLR 2021 (arXiv 2010.01412), as ``google-research/sam`` and AlgoPerf's
``sam`` submission (modified from ``davda54/sam``), docs/methods.md#sam: g = grad L_B(theta);
eps_hat = rho g / ||g||_2 (one global norm over every parameter); g_SAM = grad L_B(theta +
eps_hat) on the same batch; theta restored exactly; then an AdamW step with g_SAM. Two
forward-backward passes per step. The second pass must not move batch-norm statistics
(AlgoPerf's ``update_batch_norm=False``): every batch norm's momentum is 0 during it, as
davda54 does. The reported loss is the first pass's, at theta. Workload objective, batch size
and schedule (warmup, cosine to 0 at ``step_hint``) as ``adamw``. A generic method.
"""

from __future__ import annotations

import contextlib

import torch

from harness.schedules import finish_step
from submissions._common import adam_args, cosine_to_hint, end_at_hint


def init(workload, model, hparams, rng):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, **adam_args(hparams))
    return cosine_to_hint(opt, hparams, workload.spec.step_hint)


@contextlib.contextmanager
def frozen_batch_norm(model: torch.nn.Module):
    """Batch norms normalize with the batch's statistics but leave the running ones alone."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(bns, saved, strict=True):
            m.momentum = momentum


def update(workload, model, state, batch, hparams, step, rng):
    opt = state["opt"]
    params = [p for group in opt.param_groups for p in group["params"]]
    opt.zero_grad(set_to_none=True)
    loss = workload.training_loss(model, batch, step)
    loss.backward()
    with torch.no_grad():
        live = [p for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in live]))
        scale = hparams["rho"] / (norm + 1e-12)  # davda54's guard against a zero gradient
        theta = [p.detach().clone() for p in live]
        for p in live:
            p.add_(p.grad * scale)  # climb to theta + eps_hat
    opt.zero_grad(set_to_none=True)
    with frozen_batch_norm(model):
        workload.training_loss(model, batch, step).backward()
    with torch.no_grad():
        for p, saved in zip(live, theta, strict=True):
            p.copy_(saved)  # back to theta exactly, with g_SAM in p.grad
    state = finish_step(model, state, loss)
    return end_at_hint(state, step, workload.spec.step_hint)
