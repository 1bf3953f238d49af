"""Interval bound propagation (IBP): the sound evaluator of the workload, a building block too.

Rules (docs/methods.md#ibp-bounds-and-the-robust-loss, as in auto_LiRPA's ``interval_propagate``):
the input box is
[clip(x - eps), clip(x + eps)] within [0, 1]; an interval is carried as centre mu and radius r.

- affine layers (normalize, Conv2d, Linear, BatchNorm): mu' = A mu + b, r' = |A| r
  (two convolutions or matmuls per layer: one with W, one with |W|);
- BatchNorm in training mode uses the *clean* batch's statistics from the same forward pass
  (the clean input is propagated alongside); in evaluation mode the running statistics;
- ReLU: [max(l, 0), max(u, 0)];
- the margin spec is folded into the last linear layer: for each class j the lower bound of
  z_y - z_j is (W_y - W_j) mu + (b_y - b_j) - |W_y - W_j| r, tighter than subtracting bounds.

``certify`` runs it in float64 (so TF32 or float32 rounding cannot flip a certificate) and
certifies a point only if every margin's lower bound exceeds ``CERT_TOL``: float64 rounding in a
few dozen layers is ~1e-13 of the activations' scale, far below it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workloads.certification.model import CertNet, Normalize

CERT_TOL = 1e-9  # a margin lower bound must exceed this for a point to count as certified


@dataclass
class LayerBounds:
    """Bounds on one layer's output: ``lo <= layer(...)(x') <= hi`` for every x' in the box."""

    layer: nn.Module
    lo: torch.Tensor
    hi: torch.Tensor


def check_inputs(x: torch.Tensor, eps: float, y: torch.Tensor | None = None, classes=None):
    """Clear errors for inputs a certificate is not defined on."""
    if not (isinstance(eps, (int, float)) and eps >= 0 and eps == eps and eps != float("inf")):
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}")
    if not x.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1]; got dtype {x.dtype}")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(
            f"images must lie in [0, 1] (pixel space, before normalization); found values in "
            f"[{float(x.min()):.4g}, {float(x.max()):.4g}]"
        )
    if y is not None:
        if y.shape != x.shape[:1]:
            raise ValueError(f"labels {tuple(y.shape)} do not match images {tuple(x.shape)}")
        if classes is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise ValueError(
                f"labels must be in 0..{classes - 1}; found {int(y.min())}..{int(y.max())}"
            )


def input_box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The l_inf ball of radius ``eps`` around ``x`` intersected with [0, 1]: (mu, r)."""
    check_inputs(x, eps)
    lo = (x - eps).clamp_(0.0, 1.0)
    hi = (x + eps).clamp_(0.0, 1.0)
    return (hi + lo) / 2, (hi - lo) / 2


def _bn_affine(bn: nn.modules.batchnorm._BatchNorm, clean: torch.Tensor | None, ndim: int):
    """(scale a, shift c) with bn(v) = a v + c, shaped for an input of ``ndim`` dimensions; in
    training mode from the clean batch's (biased) statistics, as the clean forward uses them."""
    if bn.training:
        if clean is None:
            raise ValueError("BatchNorm in training mode needs the clean batch for its statistics")
        dims = [0] if clean.ndim == 2 else [0, 2, 3]
        mean = clean.mean(dims)
        var = clean.var(dims, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    a = bn.weight / torch.sqrt(var + bn.eps) if bn.affine else torch.rsqrt(var + bn.eps)
    c = (bn.bias - a * mean) if bn.affine else -a * mean
    if ndim == 4:
        a, c = a.view(1, -1, 1, 1), c.view(1, -1, 1, 1)
    return a, c


def interval_layer(layer: nn.Module, mu, r, clean=None, affines: dict | None = None):
    """One layer on the interval (mu, r) and, if given, on the clean input: (mu', r', clean').

    ``affines`` (if given) receives each batch norm's (a, c) under the key ``id(layer)``, for
    ``forward_affine`` to replay the same statistics on other points (TAPS's frozen head BN)."""
    if isinstance(layer, nn.Conv2d):
        kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
        kw["groups"] = layer.groups
        mu = F.conv2d(mu, layer.weight, layer.bias, **kw)
        r = F.conv2d(r, layer.weight.abs(), None, **kw)
        return mu, r, None if clean is None else layer(clean)
    if isinstance(layer, nn.Linear):
        mu = F.linear(mu, layer.weight, layer.bias)
        r = F.linear(r, layer.weight.abs())
        return mu, r, None if clean is None else layer(clean)
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        a, c = _bn_affine(layer, clean, mu.ndim)
        if affines is not None:
            affines[id(layer)] = (a, c)
        clean = None if clean is None else layer(clean)
        return a * mu + c, a.abs() * r, clean
    if isinstance(layer, Normalize):
        return (mu - layer.mean) / layer.std, r / layer.std, None if clean is None else layer(clean)
    if isinstance(layer, nn.ReLU):
        lo, hi = (mu - r).clamp_min(0.0), (mu + r).clamp_min(0.0)
        return (hi + lo) / 2, (hi - lo) / 2, None if clean is None else layer(clean)
    if isinstance(layer, nn.Flatten):
        return layer(mu), layer(r), None if clean is None else layer(clean)
    raise TypeError(f"IBP has no rule for layer {type(layer).__name__}")


def propagate(
    layers: Sequence[nn.Module],
    mu: torch.Tensor,
    r: torch.Tensor,
    clean: torch.Tensor | None = None,
    trace: list[LayerBounds] | None = None,
    affines: dict | None = None,
):
    """Propagate (mu, r) and the clean input through ``layers``; append each layer's output
    bounds to ``trace`` if given. Returns (mu, r, clean)."""
    for layer in layers:
        mu, r, clean = interval_layer(layer, mu, r, clean, affines)
        if trace is not None:
            trace.append(LayerBounds(layer, mu - r, mu + r))
    return mu, r, clean


def forward_affine(layers: Sequence[nn.Module], z: torch.Tensor, affines: dict) -> torch.Tensor:
    """A plain forward pass in which every batch norm applies the recorded (a, c) instead of
    its own statistics (and updates nothing)."""
    for layer in layers:
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            a, c = affines[id(layer)]
            z = a * z + c
        else:
            z = layer(z)
    return z


def margin_lower(last: nn.Linear, mu: torch.Tensor, r: torch.Tensor, y: torch.Tensor):
    """Lower bounds (B, K) of z_y - z_j over the box, C folded into ``last``; entry y is 0."""
    z = F.linear(mu, last.weight, last.bias)
    centre = z.gather(1, y[:, None]) - z  # (B, K)
    diff = last.weight[y][:, None, :] - last.weight[None, :, :]  # (B, K, d): rows W_y - W_j
    radius = torch.einsum("bkd,bd->bk", diff.abs(), r)
    return centre - radius  # entry y: 0 - 0


def upper_logit_margin(last: nn.Linear, mu, r, y):
    """Upper bounds (B, K) of z_j - z_y over the box: minus ``margin_lower``."""
    return -margin_lower(last, mu, r, y)


def robust_loss(m_lower: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log(1 + sum_{j != y} exp(-m_j)) = CE(-m, y) with m_y = 0 (Fast-IBP's get_crown_loss)."""
    return F.cross_entropy(-m_lower, y)


def mixed_loss(model: CertNet, x, y, eps: float, eps_max: float, kappa_final: float):
    """IBP training's loss at the current ``eps`` of a ramp to ``eps_max`` (CROWN-IBP's code
    with beta = 0, docs/methods.md#ibp-bounds-and-the-robust-loss): natural cross-entropy while eps
    = 0, then
    kappa CE(z, y) + (1 - kappa) L_rob with kappa = 1 - (1 - kappa_final) eps / eps_max."""
    if eps == 0.0:
        return F.cross_entropy(model(x), y)
    out = ibp(model, x, y, eps)
    kappa = 1.0 - (1.0 - kappa_final) * eps / eps_max
    return kappa * F.cross_entropy(out.logits, y) + (1 - kappa) * robust_loss(out.margins, y)


@dataclass
class IBPOutput:
    logits: torch.Tensor  # the clean forward pass
    margins: torch.Tensor  # (B, K) lower bounds of z_y - z_j (entry y: 0)
    trace: list[LayerBounds] | None  # per-layer output bounds, if asked for


def ibp(model: CertNet, x: torch.Tensor, y: torch.Tensor, eps: float, trace: bool = False):
    """Clean logits and IBP margin bounds of ``model`` at ``x`` within ``eps`` (one pass).

    In training mode batch norm uses the clean batch's statistics (and updates the running
    ones, once, as the clean forward pass would)."""
    mu, r = input_box(x, eps)
    layers = model.layers()
    record: list[LayerBounds] | None = [] if trace else None
    mu, r, clean = propagate(layers[:-1], mu, r, x, record)
    last = layers[-1]
    logits = last(clean)
    m = margin_lower(last, mu, r, y)
    if record is not None:
        rl = F.linear(r, last.weight.abs())
        zl = F.linear(mu, last.weight, last.bias)
        record.append(LayerBounds(last, zl - rl, zl + rl))
    return IBPOutput(logits, m, record)


def certified(margins: torch.Tensor, y: torch.Tensor, tol: float = CERT_TOL) -> torch.Tensor:
    """A point is certified iff the lower bound of z_y - z_j exceeds ``tol`` for every j != y."""
    m = margins.clone()
    m.scatter_(1, y[:, None], float("inf"))
    return m.min(1).values > tol


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 evaluation copy (float32 parameters and buffers convert exactly)."""
    return copy.deepcopy(model).double().eval()


@torch.inference_mode()
def certify(model: CertNet, x: torch.Tensor, y: torch.Tensor, eps: float, dtype=torch.float64):
    """(certified mask, margin lower bounds) of an evaluation-mode model, in ``dtype``.

    ``model`` should already be a ``dtype`` copy in eval mode (``float64_copy``)."""
    check_inputs(x, eps, y, model.arch.classes)
    x = x.to(dtype)
    mu, r = input_box(x, eps)
    layers = model.layers()
    mu, r, _ = propagate(layers[:-1], mu, r)
    m = margin_lower(layers[-1], mu, r, y)
    return certified(m, y), m
