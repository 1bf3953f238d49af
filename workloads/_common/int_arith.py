"""Reference ops of integer-quantized arithmetic that a low-precision training kernel may replace.

The transformer workloads (``translation``, ``factuality``) list these in their
``REFERENCE_OPS`` so that a submission training their linear layers on integers (e.g.
``submissions/int4_training``) has its quantizers and integer products parity-checked by the
referee like any kernel (docs/design.md#kernels-and-parity-checks). The evaluator never uses them:
it scores the float32 network.

Each reference is written from the definition, plainly and independently of any fast path:
integer products in int64, the Hadamard matrix from its closed form (-1)^popcount(i & j) as a
dense block-diagonal float64 matrix, round-half-to-even spelled out with floor. Integer outputs
must match bit for bit (tolerance 0); float outputs within the stated tolerance. Random choices
(stochastic rounding) take their uniforms as an input tensor, so a draw is reproducible.
"""

from __future__ import annotations

import math

import torch

from harness.api import ReferenceOp

INT4_MIN, INT4_MAX = -8, 7  # forward INT4 range
SPLIT_LEVELS = 14  # bit splitting: 2**4 - 2 levels per half
SPLIT_MAX = 7  # each half in [-7, 7]
EXACT = {torch.float32: (0.0, 0.0)}  # integer outputs: bit-exact


def round_half_even(v: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties to even, from floor: f + [r > 1/2] + [r = 1/2 and f odd]."""
    f = torch.floor(v)
    r = v - f
    odd = torch.remainder(f, 2.0) == 1.0
    return f + ((r > 0.5) | ((r == 0.5) & odd)).to(v.dtype)


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(m, k) x (k, n) int8 -> int32, accumulated in int64 (exact)."""
    return (a.to(torch.int64) @ b.to(torch.int64)).to(torch.int32)


def _int8_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    m, k, n = (int(torch.randint(1, 70, (1,), generator=g)) for _ in range(3))
    a = torch.randint(INT4_MIN, INT4_MAX + 1, (m, k), generator=g, dtype=torch.int8)
    b = torch.randint(INT4_MIN, INT4_MAX + 1, (k, n), generator=g, dtype=torch.int8)
    return a.to(device), b.to(device)


def hadamard_closed_form(n: int) -> torch.Tensor:
    """n x n orthonormal Hadamard (Sylvester order), entry (i, j) = (-1)^popcount(i & j) /
    sqrt(n), float64."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard size must be a power of 2; got {n}")
    i = torch.arange(n)
    bits = torch.bitwise_and(i[:, None], i[None, :])
    pop = torch.zeros_like(bits)
    for s in range(max(1, n.bit_length())):
        pop += (bits >> s) & 1
    return (1.0 - 2.0 * (pop % 2)).to(torch.float64) / math.sqrt(n)


def block_hadamard(x: torch.Tensor, group: int) -> torch.Tensor:
    """x (..., K) times the dense block-diagonal matrix of K / group Hadamard blocks."""
    k = x.shape[-1]
    h = torch.block_diag(*[hadamard_closed_form(group)] * (k // group)).to(x.device)
    return (x.to(torch.float64) @ h).to(x.dtype)


def _hadamard_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    group = 2 ** int(torch.randint(0, 7, (1,), generator=g))
    blocks = int(torch.randint(1, 5, (1,), generator=g))
    x = torch.randn(3, 5, group * blocks, generator=g, dtype=dtype)
    return x.to(device).requires_grad_(), group


def int4_quantize(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """clamp(round_half_even(v / scale), -8, 7) as int8; the division in v's dtype."""
    return round_half_even(v / scale).clamp(INT4_MIN, INT4_MAX).to(torch.int8)


def _quantize_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    # a power-of-2 step, so that the tie rows divide back to exact halves
    scale = torch.tensor(2.0 ** int(torch.randint(-6, 3, (1,), generator=g)), dtype=dtype)
    v = torch.randn(40, 24, generator=g, dtype=dtype) * 4 * scale
    ties = torch.randint(-24, 24, (8, 24), generator=g).to(dtype) / 2 * scale
    return torch.cat([v, ties]).to(device), scale.to(device)


def bit_split(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Bit splitting of a gradient with uniforms u in [0, 1): stack(hi, lo) as int8, where
    c = 14^2 / (2 max(|max(g) + 1e-8|, |min(g) - 1e-8|)) (max and min taken with 0), t = g c,
    hi = round(t / 14), lo = floor(t - 14 hi + u), each clamped to [-7, 7]."""
    zero = torch.zeros((), dtype=g.dtype, device=g.device)
    top = torch.maximum(g.max() + 1e-8, zero).abs()
    bottom = torch.minimum(g.min() - 1e-8, zero).abs()
    c = (SPLIT_LEVELS * SPLIT_LEVELS) / (2.0 * torch.maximum(top, bottom))
    t = g * c
    hi = round_half_even(t / SPLIT_LEVELS).clamp(-SPLIT_MAX, SPLIT_MAX)
    lo = torch.floor((t - hi * SPLIT_LEVELS) + u).clamp(-SPLIT_MAX, SPLIT_MAX)
    return torch.stack([hi, lo]).to(torch.int8)


def _split_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    grad = torch.randn(33, 20, generator=g, dtype=dtype) * 1e-3
    grad[3, 4] = 0.05  # an outlier, as output gradients have
    u = torch.rand(33, 20, generator=g, dtype=dtype)
    return grad.to(device), u.to(device)


def leverage_keep_probs(scores: torch.Tensor) -> torch.Tensor:
    """Keep probabilities p_i = min(1, c s_i) with sum p = n // 2 (n rows, scores s >= 0), by
    water-filling in float64: the k largest scores capped at 1, c = (n // 2 - k) / (sum of the
    rest), for the smallest k with c s_(k+1) <= 1."""
    n = scores.numel()
    want = n // 2
    s = scores.to(torch.float64)
    if n == 0 or float(s.sum()) <= 0.0:
        return torch.zeros_like(scores)
    order = torch.argsort(s, descending=True)
    sorted_s = s[order]
    tail = torch.flip(torch.cumsum(torch.flip(sorted_s, [0]), 0), [0])  # sum of s[k:]
    p = torch.ones_like(s)
    for k in range(want + 1):
        if k == n or float(tail[k]) == 0.0:
            p_sorted = torch.cat([torch.ones(k, dtype=s.dtype), torch.zeros(n - k, dtype=s.dtype)])
            break
        c = (want - k) / float(tail[k])
        if c * float(sorted_s[k]) <= 1.0:
            p_sorted = torch.cat([torch.ones(k, dtype=s.dtype), c * sorted_s[k:]])
            break
    p[order] = p_sorted.to(s.device)
    return p.to(scores.dtype)


def _scores_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    s = torch.rand(64, generator=g, dtype=dtype) * 0.1
    s[torch.randint(0, 64, (6,), generator=g)] *= 200.0  # outliers: some p cap at 1
    return (s.to(device),)


INT_ARITH_OPS = {
    "int8_matmul": ReferenceOp(
        fn=int8_matmul,
        make_inputs=_int8_inputs,
        tolerances=EXACT,
        description="(m, k) x (k, n) int8 -> int32 integer product (INT4 values carried in "
        "int8), random m, k, n in [1, 69]; bit-exact",
    ),
    "block_hadamard": ReferenceOp(
        fn=block_hadamard,
        make_inputs=_hadamard_inputs,
        tolerances={torch.float32: (1e-5, 1e-6)},
        description="x (..., K) times the block-diagonal orthonormal Hadamard matrix of blocks "
        "of size group (a power of 2 dividing K), with gradients",
    ),
    "int4_quantize": ReferenceOp(
        fn=int4_quantize,
        make_inputs=_quantize_inputs,
        tolerances=EXACT,
        description="clamp(round_half_even(v / s), -8, 7) as int8, ties included; bit-exact",
    ),
    "bit_split": ReferenceOp(
        fn=bit_split,
        make_inputs=_split_inputs,
        tolerances=EXACT,
        description="a gradient split into two INT4 halves at scale 14^2 / (2 max|g|): hi "
        "rounded to nearest, lo stochastically rounded with the given uniforms; bit-exact",
    ),
    "leverage_keep_probs": ReferenceOp(
        fn=leverage_keep_probs,
        make_inputs=_scores_inputs,
        tolerances={torch.float32: (1e-5, 1e-6)},
        description="leverage-score keep probabilities min(1, c s_i) summing to n // 2 "
        "(water-filling in float64)",
    ),
}
