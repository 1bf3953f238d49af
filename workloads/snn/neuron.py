"""The workload's reference neuron: LIF with soft reset and a sigmoid surrogate gradient.

Fixed by the workload (docs/methods.md#lif-neuron, OTTT's ``OnlineLIFNode`` with
``decay_input=False`` and
``v_reset=None``), so that gradient estimators are what submissions differ in:

    charge   u[t] = lam * u~[t-1] + I[t]            lam = 1 - 1/tau = 0.5 at tau = 2
    fire     s[t] = H(u[t] - theta)                 theta = 1, H(0) = 1
    reset    u~[t] = u[t] - theta * s[t]            (soft reset; ``detach_reset`` cuts its gradient)
    dH/du := alpha * sig(alpha (u - theta)) * (1 - sig(alpha (u - theta)))     alpha = 4

Note that SpikingJelly's ``LIFNode`` defaults to ``decay_input=True`` (u <- u + (I - u)/tau),
which scales the input by 1/tau; the charge equation here does not.
"""

from __future__ import annotations

import torch

TAU = 2.0
LAM = 1.0 - 1.0 / TAU
THETA = 1.0
ALPHA = 4.0


class SigmoidSurrogateSpike(torch.autograd.Function):
    """Heaviside forward (``x >= 0``), derivative of ``sigmoid(alpha x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * (ctx.alpha * sg * (1.0 - sg)), None


def spike(x: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    return SigmoidSurrogateSpike.apply(x, alpha)


def lif_step(
    u_prev: torch.Tensor,
    current: torch.Tensor,
    lam: float = LAM,
    theta: float = THETA,
    alpha: float = ALPHA,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One time step: (reset membrane u~[t-1], input current I[t]) -> (u~[t], spikes s[t])."""
    u = lam * u_prev + current
    s = spike(u - theta, alpha)
    u_next = u - theta * (s.detach() if detach_reset else s)
    return u_next, s


def lif_multistep(
    current: torch.Tensor,
    lam: float = LAM,
    theta: float = THETA,
    alpha: float = ALPHA,
    detach_reset: bool = False,
) -> torch.Tensor:
    """Spikes (T, ...) of a layer driven by input currents (T, ...) from a membrane at rest.

    The reference a fused multi-step kernel replaces (``snn.lif_multistep``): the loop of
    ``lif_step`` over the leading time axis, differentiated by autograd (BPTT through the
    membrane and, unless ``detach_reset``, the reset).
    """
    if current.dim() < 2:
        raise ValueError(
            f"lif_multistep wants currents of shape (T, ...); got {tuple(current.shape)}"
        )
    u = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        u, s = lif_step(u, current[t], lam, theta, alpha, detach_reset)
        out.append(s)
    return torch.stack(out)
