"""The workload's spiking networks: LIF layers (optionally recurrent) and a leaky readout.

One class covers the three variants: a recurrent network over a sequence (``default``: each of
MNIST-1D's 40 positions is one time step), a small MLP and a VGG-11 over a static input repeated
at every step (``smoke`` and ``full``: direct encoding). Per time step t and layer l:

    I_l[t] = W_l z_{l-1}[t] (+ R_l s_l[t-1] if recurrent)      z_0[t] = the input at t
    (u~_l[t], s_l[t]) = lif_step(u~_l[t-1], I_l[t])            z_l[t] = pool_l(s_l[t])
    o[t] = lam_o * o[t-1] + W_o z_L[t] + b_o                   (leaky readout; lam_o = 0: plain)

and the prediction is ``argmax_c mean_t o[t]``. Gradient estimators differ only in how they
differentiate this computation, so ``step`` takes two hooks: ``synapse(key, module, z)``
computes each synaptic operation (OTTT swaps in its presynaptic traces there) and
``detach_temporal`` cuts every route through time (membrane, recurrent spikes, readout state).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from workloads.snn.neuron import LAM, lif_multistep, lif_step

Synapse = Callable[[str, nn.Module, torch.Tensor], torch.Tensor]


def plain_synapse(key: str, module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return module(z)


class WSConv2d(nn.Conv2d):
    """Scaled weight standardization (OTTT's ``ScaledWSConv2d``): W <- gain * (W - mean) /
    sqrt(var * fan_in + eps) per output channel, so no batch norm is needed (per-step batch
    statistics would break online training)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, padding: int = 1, eps=1e-4):
        super().__init__(cin, cout, kernel_size, padding=padding, bias=True)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        w = self.weight
        fan_in = math.prod(w.shape[1:])
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True)
        return self.gain * (w - mean) / torch.sqrt(var * fan_in + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


class Scale(nn.Module):
    """A constant factor after each spiking layer of OTTT's VGG (``Scale(2.74)``): weight
    standardization cannot absorb it into the next layer's weights."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


VGG_SCALE = 2.74  # pkuxmq/OTTT-SNN models/spiking_vgg.py


class LIFLayer(nn.Module):
    def __init__(self, synapse: nn.Module, size: int, recurrent: bool, pool: nn.Module | None):
        super().__init__()
        self.synapse = synapse
        self.recurrent = nn.Linear(size, size, bias=False) if recurrent else None
        self.pool = pool if pool is not None else nn.Identity()


@dataclass(frozen=True)
class Arch:
    """What fixes a network: the variant's spec turns into one of these."""

    kind: str  # "rsnn" (recurrent, sequential input), "mlp" or "vgg11" (static input)
    in_features: int  # per time step (channels for "vgg11")
    hidden: tuple[int, ...]  # LIF layer sizes ("vgg11": ignored, the VGG-11 config)
    classes: int
    time_steps: int
    readout_lam: float


VGG11 = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)  # OTTT's VGG-11 feature stack


class SpikingNet(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        if arch.time_steps < 1:
            raise ValueError(f"time_steps must be >= 1; got {arch.time_steps}")
        self.arch = arch
        self.time_steps = arch.time_steps
        self.sequential = arch.kind == "rsnn"
        self.readout_lam = arch.readout_lam
        self.detach_reset = False  # the reference (BPTT) gradient flows through the reset
        self.lif: Callable[[torch.Tensor], torch.Tensor] = lif_multistep  # kernels replace it
        layers: list[LIFLayer] = []
        if arch.kind in ("rsnn", "mlp"):
            n_in = arch.in_features
            for h in arch.hidden:
                layers.append(LIFLayer(nn.Linear(n_in, h), h, arch.kind == "rsnn", None))
                n_in = h
        elif arch.kind == "vgg11":
            cin = arch.in_features
            for i, c in enumerate(VGG11):
                if c == "M":
                    continue
                after = [Scale(VGG_SCALE)]
                if i + 1 < len(VGG11) and VGG11[i + 1] == "M":
                    after.append(nn.AvgPool2d(2))
                elif i + 1 == len(VGG11):
                    after.append(nn.AdaptiveAvgPool2d(1))
                conv = WSConv2d(cin, int(c))
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
                layers.append(LIFLayer(conv, int(c), False, nn.Sequential(*after)))
                cin = int(c)
            n_in = cin
        else:
            raise ValueError(f"unknown architecture {arch.kind!r}; expected rsnn, mlp or vgg11")
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(n_in, arch.classes)
        if arch.kind == "vgg11":  # OTTT's initialization of the classifier
            nn.init.normal_(self.readout.weight, 0.0, 0.01)
            nn.init.zeros_(self.readout.bias)
        if self.sequential:
            for layer in self.layers:  # recurrent weights start small: R s[t-1] ~ 0.1 I[t]
                bound = 0.1 / math.sqrt(layer.recurrent.in_features)
                nn.init.uniform_(layer.recurrent.weight, -bound, bound)

    # -- inputs -------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        if self.sequential and x.shape[1] != self.time_steps:
            raise ValueError(
                f"this network runs T={self.time_steps} steps, one per sequence position, but "
                f"the input has {x.shape[1]} positions: a sequential input needs T == its length"
            )

    def input_at(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """The input current source at step t: position t of a sequence, or the static input."""
        return x[:, t].unsqueeze(-1) if self.sequential else x

    # -- one step -----------------------------------------------------------------------
    def step(
        self,
        x_t: torch.Tensor,
        state: dict[str, torch.Tensor],
        synapse: Synapse = plain_synapse,
        detach_temporal: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Readout o[t] and the new state; ``state`` is {} at t = 0."""
        new: dict[str, torch.Tensor] = {}
        z = x_t
        for i, layer in enumerate(self.layers):
            current = synapse(f"{i}.ff", layer.synapse, z)
            s_prev = state.get(f"s{i}")
            if layer.recurrent is not None and s_prev is not None:
                s_prev = s_prev.detach() if detach_temporal else s_prev
                current = current + synapse(f"{i}.rec", layer.recurrent, s_prev)
            u_prev = state.get(f"u{i}")
            if u_prev is None:
                u_prev = torch.zeros_like(current)
            elif detach_temporal:
                u_prev = u_prev.detach()
            u, s = lif_step(u_prev, current, detach_reset=self.detach_reset)
            new[f"u{i}"], new[f"s{i}"] = u, s
            z = layer.pool(s)
        o = synapse("readout", self.readout, z.flatten(1))
        o_prev = state.get("o")
        if o_prev is not None and self.readout_lam:
            o = o + self.readout_lam * (o_prev.detach() if detach_temporal else o_prev)
        new["o"] = o
        return o, new

    # -- whole sequence -----------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Readouts (T, B, classes), differentiable end to end (BPTT)."""
        self.check_input(x)
        if not any(layer.recurrent is not None for layer in self.layers):
            return self.forward_multistep(x)
        state: dict[str, torch.Tensor] = {}
        outs = []
        for t in range(self.time_steps):
            o, state = self.step(self.input_at(x, t), state)
            outs.append(o)
        return torch.stack(outs)

    def forward_multistep(self, x: torch.Tensor) -> torch.Tensor:
        """Layer by layer over all T at once (feedforward networks): each synapse runs once on
        T*B inputs and ``self.lif`` (the reference ``lif_multistep`` or a kernel) runs the
        neuron over T. Same function as the step loop."""
        T, B = self.time_steps, x.shape[0]
        if self.sequential:
            z = x.transpose(0, 1).unsqueeze(-1).reshape(T * B, -1)
        else:
            z = x.unsqueeze(0).expand(T, *x.shape).reshape(T * B, *x.shape[1:])
        for layer in self.layers:
            if layer.recurrent is not None:
                raise ValueError("forward_multistep needs a network without recurrent layers")
            current = layer.synapse(z)
            if self.detach_reset:
                s = lif_multistep(current.unflatten(0, (T, B)), detach_reset=True)
            else:
                s = self.lif(current.unflatten(0, (T, B)))
            z = layer.pool(s.flatten(0, 1))
        drive = self.readout(z.flatten(1)).unflatten(0, (T, B))
        if not self.readout_lam:
            return drive
        outs, o = [], None
        for t in range(T):
            o = drive[t] if o is None else drive[t] + self.readout_lam * o
            outs.append(o)
        return torch.stack(outs)


def mean_readout(outs: torch.Tensor) -> torch.Tensor:
    """What the evaluator scores: the time-averaged readout (B, classes)."""
    return outs.mean(0)


__all__ = ["Arch", "SpikingNet", "WSConv2d", "LIFLayer", "plain_synapse", "mean_readout", "LAM"]
