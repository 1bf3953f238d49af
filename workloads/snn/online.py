"""Building blocks for online gradient estimators (OTTT, SLTT) on the workload's networks.

``online_backward`` runs the network one time step at a time with every temporal route cut
(``detach_temporal``), computes the per-step loss and backpropagates it at once, so the graph
of step t is freed before step t+1 runs: memory is constant in T. Gradients accumulate in
``.grad`` over the steps; the caller takes the optimizer step (once per batch: OTTT_A, SLTT).

``PresynapticTraces`` is OTTT's synapse hook (docs/methods.md#ottt, ``WrapedSNNOp`` and ``Replace``
in
``pkuxmq/OTTT-SNN``): the forward uses the actual input z[t], the weight gradient uses the trace
a[t] = lam a[t-1] + z[t] (``lam`` of the neuron, or of the readout for the readout synapse), and
the error sent to the layer below is the ordinary W^T delta[t].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from workloads.snn.model import SpikingNet, plain_synapse
from workloads.snn.neuron import LAM


class _Replace(torch.autograd.Function):
    """Forward the second argument; send the incoming gradient to both (OTTT's ``Replace``)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, z_r: torch.Tensor) -> torch.Tensor:
        return z_r.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, grad


class PresynapticTraces:
    """Synapse hook: value W z[t], weight gradient delta[t] a[t]^T, input gradient W^T delta[t]."""

    def __init__(self, readout_lam: float, lam: float = LAM):
        self.lam = lam
        self.readout_lam = readout_lam
        self.traces: dict[str, torch.Tensor] = {}

    def __call__(self, key: str, module: nn.Module, z: torch.Tensor) -> torch.Tensor:
        lam = self.readout_lam if key == "readout" else self.lam
        with torch.no_grad():
            prev = self.traces.get(key)
            a = z.detach() if prev is None else lam * prev + z.detach()
            self.traces[key] = a
            out = module(z)
        out_for_grad = module(_Replace.apply(z, a))  # W a[t]; its input gradient reaches z
        return _Replace.apply(out_for_grad, out)  # value W z[t]; gradient into W a[t]


def per_step_loss(o: torch.Tensor, y: torch.Tensor, mse_weight: float, T: int) -> torch.Tensor:
    """OTTT/SLTT's per-step loss [(1 - g) CE(o[t], y) + g MSE(o[t], onehot y)] / T."""
    ce = F.cross_entropy(o, y)
    if mse_weight == 0.0:
        return ce / T
    mse = F.mse_loss(o, F.one_hot(y, o.shape[-1]).to(o.dtype))
    return ((1.0 - mse_weight) * ce + mse_weight * mse) / T


def online_backward(
    model: SpikingNet,
    x: torch.Tensor,
    y: torch.Tensor,
    synapse: Callable = plain_synapse,
    mse_weight: float = 0.05,
    steps: set[int] | None = None,
) -> torch.Tensor:
    """Forward and backward one step at a time; returns the summed per-step loss (detached).

    ``steps``: the time steps whose loss is backpropagated (SLTT-K); the others run under
    ``no_grad`` (their loss still counts in the returned value). None: every step.
    """
    model.check_input(x)
    T = model.time_steps
    state: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=x.device)
    for t in range(T):
        x_t = model.input_at(x, t)
        if steps is None or t in steps:
            o, state = model.step(x_t, state, synapse=synapse, detach_temporal=True)
            loss = per_step_loss(o, y, mse_weight, T)
            loss.backward()
        else:
            with torch.no_grad():
                o, state = model.step(x_t, state, synapse=synapse, detach_temporal=True)
                loss = per_step_loss(o, y, mse_weight, T)
        state = {k: v.detach() for k, v in state.items()}
        total += loss.detach()
    return total
