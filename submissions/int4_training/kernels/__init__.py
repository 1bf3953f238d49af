"""INT4 training kernels: the quantizers of Xi et al. 2023 and the integer product.

``quant.py`` holds the quantizers (block Hadamard transform, INT4 round-to-nearest with a learned
step size, bit splitting with stochastic rounding, leverage-score keep probabilities) and the
padded ``torch._int_mm`` product; ``linear.py`` the ``Int4Linear`` autograd function built on
them. Each piece replaces a reference op of ``workloads/_common/int_arith.py``, which both
transformer workloads list in ``REFERENCE_OPS``; the referee checks every one for parity
(integers bit-exact, floats within the op's tolerance) before a trial and in ``ttr check``.
"""

from __future__ import annotations

import torch

from harness.api import Kernel

from .linear import Int4Config, Int4Linear, int4_linear
from .quant import (
    block_hadamard,
    int4_quantize,
    int_mm,
    leverage_keep_probs,
    split_output_gradient,
)

__all__ = ["KERNELS", "Int4Config", "Int4Linear", "int4_linear"]

WORKLOADS = ("translation", "factuality")


def bit_split(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Drop-in for the ``bit_split`` reference: stack(hi, lo) of ``split_output_gradient``."""
    hi, lo, _ = split_output_gradient(g, u)
    return torch.stack([hi, lo])


_PIECES = (
    (
        "int_mm_padded",
        "int8_matmul",
        int_mm,
        "torch._int_mm (INT8 x INT8 -> INT32) on INT4 "
        "values, zero-padded to m >= 17 and k, n multiples of 8",
    ),
    (
        "block_hadamard_bmm",
        "block_hadamard",
        block_hadamard,
        "blocks of the last dimension "
        "times a cached Sylvester Hadamard matrix in one float32 matmul",
    ),
    (
        "int4_round_clamp",
        "int4_quantize",
        int4_quantize,
        "torch.round (half to even), in-place clamp to [-8, 7], int8",
    ),
    (
        "bit_split_sr",
        "bit_split",
        bit_split,
        "high half rounded to nearest, low half stochastically rounded (floor(r + u)), in place",
    ),
    (
        "lss_probs_loop",
        "leverage_keep_probs",
        leverage_keep_probs,
        "the authors' iterative cap-and-rescale loop for the leverage-score keep probabilities",
    ),
)

KERNELS: list[Kernel] = [
    Kernel(name=f"{name}_{w}", replaces=f"{w}.{op}", fn=fn, description=desc)
    for w in WORKLOADS
    for name, op, fn, desc in _PIECES
]
