"""Fused weighted min-sum check-node update in Triton (docs/methods.md#neural-min-sum-decoder).

Replaces ``workloads.ldpc.decoder.check_node_update``: one program per block of rows (b, c) of
the padded check-major (B, m, dc) layout. Per row the forward keeps min1, min2, argmin and the
sign parity, writes the extrinsic messages and, when a gradient is needed, a 16-byte row summary
(min1, min2, the sign bits of the row, argmin | second argmin << 16) that is all the backward
reads besides the upstream gradient; the input messages are not kept alive for the backward.

Gradients follow autograd of the reference exactly: ``Tensor.min(dim)`` sends the gradient to
one index (the first one at a tie, on CPU and CUDA alike), ``abs`` has derivative sgn(x) with
sgn(0) = 0, and ``clamp(0, 20)`` passes the gradient where 0 <= w * ext <= 20 (bounds included).

Triton decides between compiling and interpreting when ``@triton.jit`` runs, i.e. when this
module is imported: set ``TRITON_INTERPRET=1`` before importing it to run on CPU tensors.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the package must import without triton; KERNELS marks it unavailable
    triton = None

MAX_DC = 32  # the sign bits of a row are packed into one int32
_TILE = 2048  # elements per program (rows * padded slots): 16 per thread at 4 warps

if triton is not None:

    @triton.jit
    def _cn_fwd(
        v2c,
        w,
        out,
        stats,
        idx,
        R,
        m,
        dc,
        w_sb,
        w_sm,
        SAVE: tl.constexpr,
        BLOCK_R: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # Memory traffic per padded edge (fp32): read v2c 4 B + write out 4 B = 8 B; per row
        # read the weight 4 B (often a broadcast, cached) and, with SAVE, write 16 B (min1, min2,
        # sign bits, indices): 8 + 20 / dc_max B/edge, i.e. 9-11 B for dc_max = 7..23 (8-9 B
        # without SAVE). The eager reference runs ~15 kernels over (B, m, dc) tensors for the
        # same step (abs, compare, sum, min, scatter, min, where, mul, clamp, sign arithmetic):
        # roughly 90 B/edge by a rough count of their reads and writes.
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        slots = tl.arange(0, BLOCK_D)
        rmask = rows < R
        mask = rmask[:, None] & (slots[None, :] < dc)
        x = tl.load(v2c + rows[:, None] * dc + slots[None, :], mask=mask, other=float("inf"))
        mag = tl.abs(x)
        neg = (x < 0).to(tl.int32)
        parity = tl.sum(neg, axis=1) % 2  # (BLOCK_R,): odd number of negative inputs
        min1 = tl.min(mag, axis=1)
        i1 = tl.min(tl.where(mag == min1[:, None], slots[None, :], BLOCK_D), axis=1)  # first
        is1 = slots[None, :] == i1[:, None]
        rest = tl.where(is1, float("inf"), mag)
        min2 = tl.min(rest, axis=1)
        wt = tl.load(w + (rows // m) * w_sb + (rows % m) * w_sm, mask=rmask, other=1.0)
        val = wt[:, None] * tl.where(is1, min2[:, None], min1[:, None])
        val = tl.minimum(tl.maximum(val, 0.0), 20.0)  # LLR_CLIP
        val = tl.where((neg ^ parity[:, None]) != 0, -val, val)
        tl.store(out + rows[:, None] * dc + slots[None, :], val, mask=mask)
        if SAVE:
            i2 = tl.min(tl.where(rest == min2[:, None], slots[None, :], BLOCK_D), axis=1)
            bits = tl.sum(neg << slots[None, :], axis=1)  # disjoint bits: sum == or
            tl.store(stats + 2 * rows, min1, mask=rmask)
            tl.store(stats + 2 * rows + 1, min2, mask=rmask)
            tl.store(idx + 2 * rows, bits, mask=rmask)
            tl.store(idx + 2 * rows + 1, i1 | (i2 << 16), mask=rmask)

    @triton.jit
    def _cn_bwd(
        g, w, stats, idx, dv, dw, R, m, dc, w_sb, w_sm, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr
    ):
        # Per padded edge: read g 4 B + write dv 4 B; per row read 16 B + weight, write dw 4 B.
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        slots = tl.arange(0, BLOCK_D)
        rmask = rows < R
        mask = rmask[:, None] & (slots[None, :] < dc)
        gy = tl.load(g + rows[:, None] * dc + slots[None, :], mask=mask, other=0.0)
        min1 = tl.load(stats + 2 * rows, mask=rmask, other=0.0)
        min2 = tl.load(stats + 2 * rows + 1, mask=rmask, other=0.0)
        bits = tl.load(idx + 2 * rows, mask=rmask, other=0)
        i12 = tl.load(idx + 2 * rows + 1, mask=rmask, other=0)
        i1, i2 = i12 & 0xFFFF, i12 >> 16
        wt = tl.load(w + (rows // m) * w_sb + (rows % m) * w_sm, mask=rmask, other=0.0)
        neg = (bits[:, None] >> slots[None, :]) & 1
        parity = tl.sum(neg, axis=1) % 2
        is1 = slots[None, :] == i1[:, None]
        ext = tl.where(is1, min2[:, None], min1[:, None])
        y = wt[:, None] * ext
        gy = tl.where((y >= 0.0) & (y <= 20.0), gy, 0.0)  # clamp(0, 20) passes bounds
        gy = tl.where((neg ^ parity[:, None]) != 0, -gy, gy)
        tl.store(dw + rows, tl.sum(gy * ext, axis=1), mask=rmask)
        dext = gy * wt[:, None]
        to1 = tl.sum(tl.where(is1, 0.0, dext), axis=1)  # every other slot's min came from i1
        to2 = tl.sum(tl.where(is1, dext, 0.0), axis=1)  # slot i1's min came from i2
        neg1 = (bits >> i1) & 1
        neg2 = (bits >> i2) & 1
        sgn1 = tl.where(min1 == 0.0, 0.0, tl.where(neg1 != 0, -1.0, 1.0))  # d|x|/dx
        sgn2 = tl.where(min2 == 0.0, 0.0, tl.where(neg2 != 0, -1.0, 1.0))
        d = tl.where(is1, (to1 * sgn1)[:, None], 0.0)
        d = d + tl.where(slots[None, :] == i2[:, None], (to2 * sgn2)[:, None], 0.0)
        tl.store(dv + rows[:, None] * dc + slots[None, :], d, mask=mask)


# True when the kernels above were decorated under TRITON_INTERPRET=1 (they then take CPU tensors).
INTERPRETED = triton is not None and type(_cn_fwd).__name__ == "InterpretedFunction"


def _launch_shape(dc: int) -> tuple[int, int]:
    """(rows per program, padded slots). The CPU interpreter runs a program as numpy ops, so it
    gets bigger tiles: fewer programs, same results."""
    block_d = triton.next_power_of_2(dc)
    tile = _TILE * 16 if INTERPRETED else _TILE
    return max(1, tile // block_d), block_d


def _weight_rows(weight: torch.Tensor, B: int, m: int) -> tuple[torch.Tensor, int, int]:
    """The weight as a (B, m) view (stride 0 where broadcast): no copy, whatever its shape."""
    w2 = weight.expand(B, m, 1)[..., 0]
    return w2, w2.stride(0), w2.stride(1)


class _FusedMinSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v2c: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        B, m, dc = v2c.shape
        if dc > MAX_DC:
            raise ValueError(f"fused_min_sum_triton supports dc <= {MAX_DC}, got {dc}")
        v2c = v2c.contiguous()
        w2, w_sb, w_sm = _weight_rows(weight.to(v2c.device, v2c.dtype), B, m)
        save = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        R = B * m
        out = torch.empty_like(v2c)
        stats = v2c.new_empty((R, 2) if save else (1, 2))  # min1, min2
        idx = torch.empty(stats.shape, dtype=torch.int32, device=v2c.device)  # bits, i1 | i2<<16
        block_r, block_d = _launch_shape(dc)
        grid = (triton.cdiv(R, block_r),)
        args = (v2c, w2, out, stats, idx, R, m, dc, w_sb, w_sm)
        _cn_fwd[grid](*args, SAVE=save, BLOCK_R=block_r, BLOCK_D=block_d)
        if save:
            ctx.save_for_backward(stats, idx, w2)
            ctx.weight_like = (weight.shape, weight.device, weight.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        stats, idx, w2 = ctx.saved_tensors
        B, m, dc = grad_out.shape
        g = grad_out.contiguous()
        dv = torch.empty_like(g)
        dw = g.new_empty(B * m)
        block_r, block_d = _launch_shape(dc)
        grid = (triton.cdiv(B * m, block_r),)
        args = (g, w2, stats, idx, dv, dw, B * m, m, dc, w2.stride(0), w2.stride(1))
        _cn_bwd[grid](*args, BLOCK_R=block_r, BLOCK_D=block_d)
        grad_w = None
        if ctx.needs_input_grad[1]:
            shape, device, dtype = ctx.weight_like
            grad_w = dw.view(B, m, 1).sum_to_size(shape).to(device, dtype)
        return (dv if ctx.needs_input_grad[0] else None), grad_w


def fused_min_sum(v2c: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Drop-in for ``check_node_update(v2c, weight)``: v2c (B, m, dc) with dc <= 32, weight
    broadcastable to (B, m, 1) (a tensor of any such shape, or a number)."""
    if triton is None:
        raise RuntimeError("fused_min_sum_triton needs triton (pip install 'ttr-bench[triton]')")
    if not torch.is_tensor(weight):
        weight = torch.tensor(float(weight), dtype=v2c.dtype, device=v2c.device)
    return _FusedMinSum.apply(v2c, weight)
