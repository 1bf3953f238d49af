"""PGD in the eps-box: an upper bound on robust accuracy, reported for analysis, never scored.

Rules (docs/methods.md#pgd-evaluation-only, TAPS's ``attacks.adv_whitebox`` as used by
``mnbab_certify.py``):
cross-entropy loss; each restart starts uniformly within +-1/2 of the box width around x
(clipped to the box); sign-gradient ascent with step eta_k * max((x_hi - x_lo) / 2) per sample,
eta_0 = 0.2, times 0.1 at 50%, 80% and 90% of the steps; projection onto the clipped box; a
sample leaves once it is misclassified. The paper's evaluation uses 200 steps and 5 restarts;
the workload's in-loop report uses fewer (its spec says how many). For fewer than 50 steps the
same milestones are used (our choice [U]: the source only defines n >= 50).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workloads.certification.bounds import check_inputs


def step_sizes(steps: int, eta0: float = 0.2) -> list[float]:
    milestones = {int(steps * f) for f in (0.5, 0.8, 0.9)}
    out, eta = [], eta0
    for k in range(steps):
        if k in milestones and k > 0:
            eta *= 0.1
        out.append(eta)
    return out


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 200,
    restarts: int = 5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial examples, fooled mask). ``model`` is used as given (call ``.eval()`` first);
    no parameter gradient is accumulated. Samples already misclassified at x count as fooled."""
    check_inputs(x, eps, y)
    lo = (x - eps).clamp(0.0, 1.0)
    hi = (x + eps).clamp(0.0, 1.0)
    half = (hi - lo) / 2
    step_scale = half.flatten(1).amax(1).view(-1, *([1] * (x.ndim - 1)))
    etas = step_sizes(steps)
    best = x.clone()
    with torch.no_grad():
        fooled = model(x).argmax(1) != y
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        for _ in range(restarts):
            active = (~fooled).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            noise = torch.rand(x[active].shape, generator=generator, device=x.device, dtype=x.dtype)
            xa = x[active] + (2 * noise - 1) * half[active]
            xa = torch.minimum(torch.maximum(xa, lo[active]), hi[active])
            for k in range(steps + 1):
                xa.requires_grad_(True)
                with torch.enable_grad():
                    logits = model(xa)
                    loss = F.cross_entropy(logits, y[active], reduction="sum")
                    (grad,) = torch.autograd.grad(loss, xa)
                with torch.no_grad():
                    hit = logits.argmax(1) != y[active]
                    if hit.any():
                        idx = active[hit]
                        fooled[idx] = True
                        best[idx] = xa[hit].detach()
                        keep = ~hit
                        active, xa, grad = active[keep], xa[keep], grad[keep]
                    if k == steps or active.numel() == 0:
                        break
                    xa = xa.detach() + etas[k] * step_scale[active] * grad.sign()
                    xa = torch.minimum(torch.maximum(xa, lo[active]), hi[active])
    finally:
        for p, s in zip(params, saved, strict=False):
            p.requires_grad_(s)
    return best, fooled
