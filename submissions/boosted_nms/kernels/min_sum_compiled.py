"""Weighted min-sum check-node update fused by ``torch.compile`` (C++ on CPU, Triton on GPU).

The formulation keeps min1, argmin, min2 and the sign parity per check
(docs/methods.md#neural-min-sum-decoder) and
computes min2 with a ``where`` instead of the reference's scatter, so inductor fuses the row
reductions and the output into one loop over the rows. Both minima use ``Tensor.min(dim)``, not
``amin``: at a tie ``amin`` splits the gradient between the tied slots, ``min`` gives it to one
(the first), as the reference does, and ties are common once messages saturate at +-20.
"""

from __future__ import annotations

import functools

import torch

LLR_CLIP = 20.0  # workloads.ldpc.decoder.LLR_CLIP


def min_sum_min1_min2(v2c: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eager version of the fused formulation: v2c (B, m, dc), weight broadcastable to (B, m, 1)."""
    mag = v2c.abs()
    neg = v2c < 0
    odd = (neg.sum(dim=-1, keepdim=True) % 2).bool()  # (B, m, 1): sign parity of the check
    min1, idx1 = mag.min(dim=-1, keepdim=True)
    is1 = torch.arange(v2c.shape[-1], device=v2c.device) == idx1  # (B, m, dc)
    min2 = torch.where(is1, float("inf"), mag).min(dim=-1, keepdim=True).values
    val = (weight * torch.where(is1, min2, min1)).clamp(0.0, LLR_CLIP)
    return torch.where(odd ^ neg, -val, val)


@functools.cache
def _compiled():
    # dynamic=True: one graph serves every batch size and code (dims >= 2), so the probe in
    # ``compiled_available`` compiles the graph that later calls reuse; on this CPU the dynamic
    # kernel was as fast as the shape-specialized one.
    return torch.compile(min_sum_min1_min2, dynamic=True)


def compiled_min_sum(v2c: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Drop-in for ``check_node_update``; compiles on the first call (seconds on CPU)."""
    if not torch.is_tensor(weight):
        weight = torch.tensor(float(weight), dtype=v2c.dtype, device=v2c.device)
    return _compiled()(v2c, weight)


@functools.cache
def _probe(device_type: str) -> bool:
    try:
        v2c = torch.tensor([[[1.0, -2.0, 3.0], [-0.5, 4.0, 1.0e4]]] * 2, device=device_type)
        weight = torch.ones(2, 2, 1, device=device_type)
        with torch.no_grad():
            return bool(torch.equal(compiled_min_sum(v2c, weight), min_sum_min1_min2(v2c, weight)))
    except Exception:  # no C++ compiler, no triton for a GPU, an unsupported backend, ...
        return False


def compiled_available(device: torch.device) -> bool:
    """True when torch.compile builds and runs this kernel on the device (probed once per
    device type, on a tiny input; the compiled graph is reused by later calls)."""
    return _probe(torch.device(device).type)
