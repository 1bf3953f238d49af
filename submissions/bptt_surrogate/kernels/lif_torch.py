"""Fused multi-step LIF in eager torch: a graph-free forward and a hand-written BPTT backward.

Replaces ``workloads.snn.neuron.lif_multistep`` (soft reset, sigmoid surrogate). The reference
builds an autograd graph of ~7 ops per time step and autograd walks it back; here

  forward   per step t, into preallocated buffers and with no graph:
                u[t] = lam * u~ + I[t]          (pre-reset membrane, kept for the backward)
                s[t] = (u[t] >= theta)          (== (u[t] - theta >= 0) in floating point)
                u~   = u[t] - theta * s[t]
            3-4 ops per step; saved for the backward: u (T, ...) only.
  backward  with sp[t] = alpha sig(alpha (u[t] - theta)) (1 - sig(...)) (the surrogate dH/du):
                dL/du[t] = g~[t] + (g_s[t] - theta g~[t]) sp[t],     g~[t] = lam dL/du[t+1]
            (the reset passes gradient through s: d u~ / d u = 1 - theta sp), i.e.
                dL/dI[t] = d[t] + c[t] dL/dI[t+1]     d = g_s sp,  c = lam (1 - theta sp)
            d and c are computed for all t at once; the reverse-time loop is one addcmul a step.
            With ``detach_reset`` c = lam.

Values are bitwise those of the reference (same roundings: lam * u~ is rounded before the add,
except where lam is a power of two and the product is exact anyway); gradients agree to a few
ulps (the terms are summed in another order).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from workloads.snn.neuron import ALPHA, LAM, THETA


def _exact_scale(lam: float) -> bool:
    """lam * x is exact (normal x): lam is 0 or a power of two, so ``add(alpha=lam)`` is safe."""
    return lam == 0.0 or math.frexp(abs(lam))[0] == 0.5


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, lam, theta, alpha, detach_reset, want_grad):
        T = current.shape[0]
        spikes = torch.empty(current.shape, dtype=current.dtype, device=current.device)
        save = want_grad and ctx.needs_input_grad[0]  # no membrane kept under no_grad
        # pre-reset membrane: every step's when a backward will need it, else one scratch row
        mem = torch.empty_like(spikes) if save else spikes.new_empty((1, *current.shape[1:]))
        state = torch.zeros_like(spikes[0])  # u~, the reset membrane; at rest before t = 0
        fused_charge = _exact_scale(lam)
        for t in range(T):
            u = mem[t] if save else mem[0]
            if fused_charge:
                torch.add(current[t], state, alpha=lam, out=u)
            else:  # round lam * u~ first, as the reference does
                torch.mul(state, lam, out=u).add_(current[t])
            torch.ge(u, theta, out=spikes[t])
            torch.sub(u, spikes[t], alpha=theta, out=state)  # theta * s is exact: s is 0 or 1
        if save:
            ctx.save_for_backward(mem)
            ctx.params = (lam, theta, alpha, detach_reset)
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes):
        (mem,) = ctx.saved_tensors
        lam, theta, alpha, detach_reset = ctx.params
        # the surrogate as the reference computes it: alpha sg (1 - sg), sg = sig(alpha (u - theta))
        sg = torch.sub(mem, theta).mul_(alpha).sigmoid_()
        sp = torch.mul(sg, alpha)
        sp.mul_(sg.neg_().add_(1.0))  # sg buffer now holds 1 - sg
        if detach_reset:
            coef = None
        else:
            coef = torch.mul(sp, -theta, out=sg).add_(1.0).mul_(lam)  # lam (1 - theta sp)
        grad = sp.mul_(grad_spikes)  # d[t]; becomes dL/dI in place, from t = T-1 down
        for t in range(mem.shape[0] - 2, -1, -1):
            if coef is None:
                grad[t].add_(grad[t + 1], alpha=lam)
            else:
                grad[t].addcmul_(coef[t], grad[t + 1])
        return grad, None, None, None, None, None


def fused_lif(
    current: torch.Tensor,
    lam: float = LAM,
    theta: float = THETA,
    alpha: float = ALPHA,
    detach_reset: bool = False,
) -> torch.Tensor:
    """Drop-in for ``lif_multistep``: currents (T, ...) -> spikes (T, ...) from rest."""
    if current.dim() < 2:
        raise ValueError(
            f"lif_multistep wants currents of shape (T, ...); got {tuple(current.shape)}"
        )
    if not current.is_floating_point():
        raise TypeError(f"fused_lif_torch wants floating-point currents; got {current.dtype}")
    want_grad = torch.is_grad_enabled() and current.requires_grad
    params = (float(lam), float(theta), float(alpha), bool(detach_reset))
    return _FusedLIF.apply(current, *params, want_grad)
