"""Fast paths for ``ldpc.check_node_update`` (the weighted min-sum check-node update).

``fused_min_sum_triton`` is a Triton forward + backward pair; ``min_sum_triton`` is imported on
the first call, not here, so that this package imports without triton and so that
``TRITON_INTERPRET=1`` set before that first call still selects the CPU interpreter (triton
reads it when ``@triton.jit`` runs). ``saved_min_sum`` is a torch.autograd.Function whose
backward reads only the row summary the forward saved; ``compiled_min_sum`` is the same
formulation through ``torch.compile``.
"""

from __future__ import annotations

import functools

import torch

from harness.api import Kernel, triton_available

from .min_sum_compiled import compiled_available, compiled_min_sum
from .min_sum_saved import saved_available, saved_min_sum

_triton_available = functools.partial(triton_available, module=f"{__name__}.min_sum_triton")


def fused_min_sum_triton(v2c: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Drop-in for ``check_node_update`` (see ``min_sum_triton.fused_min_sum``)."""
    from .min_sum_triton import fused_min_sum

    return fused_min_sum(v2c, weight)


KERNELS: list[Kernel] = [
    Kernel(
        name="fused_min_sum_triton",
        replaces="ldpc.check_node_update",
        fn=fused_min_sum_triton,
        available=_triton_available,
        description="Triton: one pass per check row keeps min1, min2, argmin and sign parity; "
        "the backward reads a 16-byte row summary instead of the messages.",
    ),
    Kernel(
        name="saved_min_sum",
        replaces="ldpc.check_node_update",
        fn=saved_min_sum,
        available=saved_available,
        description="torch.autograd.Function: the forward saves argmin, second argmin, min1, "
        "min2 and sign bits; a hand-written backward (vectorized torch, any device).",
    ),
    Kernel(
        name="compiled_min_sum",
        replaces="ldpc.check_node_update",
        fn=compiled_min_sum,
        available=compiled_available,
        description="torch.compile of the min1/min2/argmin/parity formulation (lazy compile).",
    ),
]
