"""Fast-IBP's initialization and warmup regularizers (Shi et al., NeurIPS 2021, arXiv 2103.17268).

Read in the authors' code (``shizhouxing/Fast-Certified-Robust-Training``, commit 50560c6):

- ``ibp_init`` (``manual_init.ibp_init``): every conv/linear weight except the last weight
  tensor ~ N(0, 2 pi / fan_in^2); biases and batch norm untouched (no residual adds here).
- ``warmup_regularizer`` (``regularization.compute_reg``, tol = 0.5): over the m ReLU layers,
  with pre-activation bounds (l, u), centre c and radius d:
  L_tight = (1/m) sum ReLU(tol - d_0 / mean(d_i)) / tol, where d_0 is the mean radius of the
  network's (normalized) input box;
  L_relu = (1/m) sum [ReLU(tol - min(rm, 1/rm)) + ReLU(tol - min(rv, 1/rv))] / tol with
  rm = mean(c 1[l>0]) / -mean(c 1[u<0]) and rv = sum((c - mean c)^2 1[l>0]) / sum(... 1[u<0]),
  a layer's term skipped when it is NaN or infinite. The caller scales by
  lambda (1 - eps_t / eps_max).

Our input box is in pixel space and normalization is the model's first layer, so d_0 is taken
after ``Normalize`` (the authors' input node is already normalized data).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from workloads.certification.bounds import LayerBounds, ibp, robust_loss
from workloads.certification.model import CertNet, Normalize


@torch.no_grad()
def ibp_init(model: CertNet, generator: torch.Generator | None = None) -> None:
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for w in weights[:-1]:
        fan_in = w[0].numel()  # C_in k_h k_w (conv) or in_features (linear)
        w.normal_(0.0, math.sqrt(2 * math.pi) / fan_in, generator=generator)


def relu_inputs(trace: list[LayerBounds]) -> list[LayerBounds]:
    """The pre-activation bounds of every ReLU (the entry before each ReLU in the trace)."""
    return [trace[i - 1] for i, t in enumerate(trace) if isinstance(t.layer, nn.ReLU) and i > 0]


def input_radius(trace: list[LayerBounds]) -> torch.Tensor:
    first = trace[0]
    if not isinstance(first.layer, Normalize):
        raise ValueError("the trace must start at the model's Normalize layer")
    return ((first.hi - first.lo) / 2).mean()


def _balance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """min(a/b, b/a) for a, b >= 0, written as min/max: the authors' min(r, 1/r) without an
    infinite intermediate, so a layer with no inactive (or active) units has a finite gradient.
    0/0 (both empty) stays NaN and the layer's term is skipped, as in the source."""
    return torch.minimum(a, b) / torch.maximum(a, b)


def warmup_regularizer(trace: list[LayerBounds], tol: float = 0.5) -> dict[str, torch.Tensor]:
    """{"tightness": L_tight, "relu": L_relu} from a per-layer IBP trace (``ibp(trace=True)``)."""
    d0 = input_radius(trace)
    layers = relu_inputs(trace)
    tight = d0.new_zeros(())
    relu = d0.new_zeros(())
    for b in layers:
        c, d = (b.hi + b.lo) / 2, (b.hi - b.lo) / 2
        tight = tight + F.relu(tol - d0 / d.mean().clamp(min=1e-12)) / tol
        act, inact = b.lo > 0, b.hi < 0
        delta = (c - c.mean()) ** 2
        mean_ratio = _balance((c * act).mean(), -(c * inact).mean())
        var_ratio = _balance((delta * act).sum(), (delta * inact).sum())
        term = (F.relu(tol - mean_ratio) + F.relu(tol - var_ratio)) / tol
        if torch.isfinite(term):
            relu = relu + term
    m = max(1, len(layers))
    return {"tightness": tight / m, "relu": relu / m}


MIN_EPS_REG = 1e-6  # bounds for the regularizer while eps = 0 (the authors' ``min_eps_reg``)


def fast_ibp_loss(
    model: CertNet,
    x,
    y,
    eps: float,
    eps_max: float,
    in_ramp: bool,
    reg_lambda: float,
    tol: float = 0.5,
) -> torch.Tensor:
    """Fast-IBP's training loss at one step (``train.py`` with ``reg``): during the warmup
    (``in_ramp``) CE (while eps = 0, bounds at ``MIN_EPS_REG``) or the IBP robust loss, plus
    lambda (1 - eps / eps_max) (L_tight + L_relu); after it the robust loss alone."""
    if not in_ramp:
        return robust_loss(ibp(model, x, y, eps).margins, y)
    out = ibp(model, x, y, max(eps, MIN_EPS_REG), trace=True)
    reg = warmup_regularizer(out.trace, tol)
    l_reg = reg_lambda * (1.0 - eps / eps_max) * (reg["tightness"] + reg["relu"])
    main = F.cross_entropy(out.logits, y) if eps == 0.0 else robust_loss(out.margins, y)
    return main + l_reg
