"""Fused multi-step LIF kernels for ``snn.lif_multistep`` (the workload's reference neuron loop).

``fused_lif_torch`` (``lif_torch.py``) runs anywhere: a graph-free forward loop into
preallocated buffers and a hand-written reverse-time backward. ``fused_lif_triton``
(``lif_triton.py``) is a Triton forward + backward pair; it is imported on the first call, not
here, so that this package imports without triton and so that ``TRITON_INTERPRET=1`` set before
that first call still selects the CPU interpreter (triton reads it when ``@triton.jit`` runs).
"""

from __future__ import annotations

import functools

import torch

from harness.api import Kernel, triton_available

from .lif_torch import fused_lif as fused_lif_torch

_triton_available = functools.partial(triton_available, module=f"{__name__}.lif_triton")


def fused_lif_triton(current: torch.Tensor, **kwargs) -> torch.Tensor:
    """Drop-in for ``lif_multistep`` (see ``lif_triton.fused_lif``)."""
    from .lif_triton import fused_lif

    return fused_lif(current, **kwargs)


KERNELS: list[Kernel] = [
    Kernel(
        name="fused_lif_triton",
        replaces="snn.lif_multistep",
        fn=fused_lif_triton,
        available=_triton_available,
        description="Triton: one program per block of neurons loops over T with the membrane "
        "in registers; the forward writes spikes and the pre-reset membrane, the backward runs "
        "t = T-1..0 carrying dL/du~ (24 B per neuron-step in all at fp32).",
    ),
    Kernel(
        name="fused_lif_torch",
        replaces="snn.lif_multistep",
        fn=fused_lif_torch,
        description="Eager torch autograd.Function: graph-free forward into preallocated "
        "buffers saving only the pre-reset membrane; hand-written BPTT backward (one addcmul "
        "per step after a vectorized surrogate).",
    ),
]
