"""The quantizers of Xi, Chen, Zhu, "Training Transformers with 4-bit Integers" (NeurIPS 2023,
arXiv 2306.11987), and the integer product, in eager torch.

Forward (Hadamard quantizer, HQ): a block-diagonal Hadamard transform along the inner dimension,
then INT4 round-to-nearest, ``clamp(round(v / s), -8, 7)``, with a learned step size ``s``
(LSQ, initialized to ``2 mean|v| / sqrt(7)``). Backward: bit splitting of the output gradient
into a high and a low INT4 half (the low half stochastically rounded) and leverage-score
sampling (LSS) of the split rows. Every random draw is an explicit tensor of uniforms in [0, 1)
so that the same draws give the same integers (the parity checks rely on it).

INT4 values are carried in INT8 tensors and multiplied by ``torch._int_mm`` (INT8 x INT8 ->
INT32): the machines this runs on have no INT4 product. With |values| <= 8 and inner
dimension K, an INT32 accumulator holds any sum up to K = 2**31 / 64 ~ 33.5M terms.
"""

from __future__ import annotations

import math

import torch

QN, QP = -8, 7  # forward INT4 range (the authors' clamp(-8, 7))
SPLIT_BINS = 14  # bit splitting: 2**4 - 2 levels per half, as in the authors' code
SPLIT_CLAMP = 7  # each half in [-7, 7]; see split_output_gradient
GROUPS = tuple(2**i for i in range(11))  # Hadamard block sizes searched, 1 .. 1024
# torch._int_mm's shape rules on CUDA (m > 16, k and n multiples of 8); applied on every device
# so that one code path runs everywhere (the CPU kernel takes any shape; padding is zeros)
MIN_M, ALIGN = 17, 8

_H: dict[tuple[int, torch.dtype, str], torch.Tensor] = {}


def hadamard_matrix(n: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """The n x n orthonormal Sylvester Hadamard matrix (n a power of 2): H_1 = [1],
    H_2n = [[H, H], [H, -H]] / sqrt(2). Symmetric, so H H = I."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard size must be a power of 2; got {n}")
    key = (n, dtype, str(device))
    if key not in _H:
        h = torch.ones(1, 1, dtype=torch.float64)
        while h.shape[0] < n:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0) / math.sqrt(2.0)
        _H[key] = h.to(dtype=dtype, device=device)
    return _H[key]


def block_hadamard(x: torch.Tensor, group: int) -> torch.Tensor:
    """``x`` (..., K) times the block-diagonal matrix of K / group Hadamard blocks: each
    consecutive ``group`` entries of the last dimension transformed. Its own inverse."""
    k = x.shape[-1]
    if k % group:
        raise ValueError(f"Hadamard block {group} does not divide the dimension {k}")
    if group == 1:
        return x
    h = hadamard_matrix(group, x.dtype, x.device)
    return (x.reshape(-1, group) @ h).reshape(x.shape)


def lsq_init_scale(v: torch.Tensor) -> torch.Tensor:
    """LSQ's initial step size, as the authors initialize it: 2 mean|v| / sqrt(QP) + 1e-10."""
    return 2.0 * v.abs().mean() / math.sqrt(QP) + 1e-10


def int4_quantize(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """clamp(round(v / scale), -8, 7) as int8 (round half to even)."""
    return torch.round(v / scale).clamp_(QN, QP).to(torch.int8)


def best_group(x: torch.Tensor, w: torch.Tensor) -> int:
    """The authors' block-size search at a layer's first call: among the powers of 2 (1 to
    1024) that divide the inner dimension, the one minimizing
    ||HQ(x) - x|| * ||HQ(w) - w||, each quantized with its LSQ initial scale."""
    best, best_err = 1, math.inf
    for g in GROUPS:
        if x.shape[-1] % g:
            continue
        err = 1.0
        for v in (x, w):
            h = block_hadamard(v, g)
            s = lsq_init_scale(h)
            back = block_hadamard(int4_quantize(h, s).to(v.dtype) * s, g)
            err *= float((back - v).norm())
        if err < best_err:
            best, best_err = g, err
    return best


def split_scale(g: torch.Tensor) -> torch.Tensor:
    """Bit splitting's per-tensor scale: 14^2 / (2 max|g|), the authors' ``scale1`` (with
    their 1e-8 guard), so that g * scale in [-98, 98]."""
    mx = torch.maximum(g.max() + 1e-8, torch.zeros((), dtype=g.dtype, device=g.device))
    mn = torch.minimum(g.min() - 1e-8, torch.zeros((), dtype=g.dtype, device=g.device))
    return (SPLIT_BINS * SPLIT_BINS) / (2.0 * torch.maximum(mx.abs(), mn.abs()))


def split_output_gradient(
    g: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bit splitting: t = g * scale, hi = round(t / 14) (to nearest), lo = stochastic round of
    t - 14 hi (floor(r + u), u uniform in [0, 1): unbiased), both in [-7, 7] as int8; so
    g ~ (14 hi + lo) / scale with E[lo] = t - 14 hi. Returns (hi, lo, scale).

    The authors' code clamps both halves to +-6 (``num_bins_half / 2 - 1``), which biases the
    entries whose remainder exceeds 6 in magnitude; +-7 holds every value exactly (|t| <= 98
    gives |hi| <= 7 and |t - 14 hi| <= 7), so no clamp ever acts and the split is unbiased."""
    scale = split_scale(g)
    t = g * scale
    hi = torch.round(t / SPLIT_BINS).clamp_(-SPLIT_CLAMP, SPLIT_CLAMP)
    lo = torch.floor(t.sub_(hi * SPLIT_BINS).add_(u)).clamp_(-SPLIT_CLAMP, SPLIT_CLAMP)
    return hi.to(torch.int8), lo.to(torch.int8), scale


def leverage_keep_probs(scores: torch.Tensor) -> torch.Tensor:
    """LSS keep probabilities for 2N rows with non-negative scores, N kept in expectation: the
    authors' rule p = min(1, c score) with c found by their loop (scale to sum N, cap at 1,
    rescale the uncapped rows to fill what is left, repeat while any p > 1)."""
    n = scores.numel()
    half = n // 2
    total = scores.sum()
    if n == 0 or float(total) <= 0.0:
        return torch.zeros_like(scores)
    p = scores * (n / (2.0 * total))
    capped = 0
    while float(p.max()) > 1.0 and capped < n / 2:
        small = p < 1.0
        capped = n - int(small.sum())
        p = p.clamp(0.0, 1.0)
        rest = p[small]
        if rest.numel() == 0 or float(rest.max()) == 0.0:
            break
        p[small] = rest * ((half - capped) / rest.sum())
    return p


def int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(m, k) int8 x (k, n) int8 -> (m, n) int32 by ``torch._int_mm``, zero-padded to its shape
    rules (m >= 17, k and n multiples of 8); exact."""
    if a.dtype != torch.int8 or b.dtype != torch.int8:
        raise TypeError(f"int_mm takes int8 x int8; got {a.dtype} x {b.dtype}")
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"int_mm shapes do not chain: {tuple(a.shape)} x {tuple(b.shape)}")
    m, k = a.shape
    n = b.shape[1]
    pm, pk, pn = max(MIN_M, m), -(-max(k, 1) // ALIGN) * ALIGN, -(-max(n, 1) // ALIGN) * ALIGN
    if (pm, pk) != (m, k):
        a = torch.nn.functional.pad(a, (0, pk - k, 0, pm - m))
    if (pk, pn) != (k, n):
        b = torch.nn.functional.pad(b, (0, pn - n, 0, pk - k))
    out = torch._int_mm(a.contiguous(), b.contiguous())
    return out[:m, :n] if (pm, pn) != (m, n) else out
