"""Fused multi-step LIF in Triton: forward and BPTT backward, one pass over time each.

Replaces ``workloads.snn.neuron.lif_multistep``. The currents (T, ...) are viewed as (T, N)
with the neurons (the flattened trailing dims) contiguous; one program owns a block of
neurons and loops over t inside the kernel with the membrane in registers:

  forward   u = lam u~ + I[t];  s[t] = (u >= theta);  u~ = u - theta s[t]
            writes s[t] and, when a gradient is needed, the pre-reset u[t] (same dtype).
  backward  t = T-1 .. 0, carrying g~ = dL/du~[t] (0 after the last step):
            sp = alpha sig(alpha (u[t] - theta)) (1 - sig(...))
            dL/du[t] = g~ + (g_s[t] - theta g~) sp       (the reset's gradient through s;
                                                          g~ + g_s[t] sp with detach_reset)
            dL/dI[t] = dL/du[t];  g~ <- lam dL/du[t]

Memory traffic per neuron-step at dtype size b (4 for fp32): forward reads I and writes s and u
(3b); backward reads g_s and u and writes dL/dI (3b): 6b in all, 24 B for fp32, the least for a
backward that reads the membrane instead of re-running the forward. The time loop is unrolled
by 4 with the four steps' loads issued before any store, so each program keeps 4 (forward) or 8
(backward) loads in flight: the stores could alias the inputs as far as the compiler knows, so
it would not hoist the loads over them itself.

Floating point: fp32 and fp64, computed in the input's dtype (the constants lam, theta, alpha
are built in that dtype with ``tl.full``), and compiled with ``enable_fp_fusion=False`` so that
``lam * u~ + I`` is rounded twice, as the reference's two eager ops are: the spikes then agree
exactly, not up to an FMA's rounding at the threshold. Other dtypes (fp16, bf16) go to the fused
torch path (``lif_torch``), which computes in any floating dtype exactly as the reference does.

Triton decides between compiling and interpreting when ``@triton.jit`` runs, i.e. when this
module is imported: set ``TRITON_INTERPRET=1`` before importing it to run on CPU tensors.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from workloads.snn.neuron import ALPHA, LAM, THETA

from .lif_torch import fused_lif as _torch_fused_lif

try:
    import triton
    import triton.language as tl
except ImportError:  # the package must import without triton; KERNELS marks it unavailable
    triton = None

_BLOCK = 512  # neurons per program on a GPU: 4 per thread at 4 warps (128-bit accesses)
_WARPS = 4
_INTERP_BLOCK = 8192  # the CPU interpreter runs a program as numpy ops: fewer, bigger programs
DTYPES = (torch.float32, torch.float64)

if triton is not None:

    @triton.jit
    def _fwd_step(state, cur, s_ptr, u_ptr, mask, lam, theta, SAVE: tl.constexpr):
        u = lam * state + cur  # two roundings: the kernel is compiled without FP fusion
        s = (u >= theta).to(u.dtype)
        tl.store(s_ptr, s, mask=mask)
        if SAVE:
            tl.store(u_ptr, u, mask=mask)
        return u - theta * s

    @triton.jit
    def _lif_fwd(
        cur_ptr,
        s_ptr,
        u_ptr,
        T,
        N,
        LAM_: tl.constexpr,
        THETA_: tl.constexpr,
        SAVE: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        nmask = offs < N
        zero = tl.zeros([BLOCK], tl.int32)
        dt = cur_ptr.dtype.element_ty
        lam = tl.full([BLOCK], LAM_, dt)
        theta = tl.full([BLOCK], THETA_, dt)
        state = tl.zeros([BLOCK], dt)  # u~: the reset membrane, at rest before t = 0
        cp = cur_ptr + offs
        sp = s_ptr + offs
        up = u_ptr + offs
        for t0 in range(0, T, 4):
            tv = t0 + zero  # a tensor, so that the masks below are boolean tensors
            m0 = nmask
            m1 = nmask & (tv + 1 < T)
            m2 = nmask & (tv + 2 < T)
            m3 = nmask & (tv + 3 < T)
            i0 = tl.load(cp, mask=m0, other=0.0)
            i1 = tl.load(cp + N, mask=m1, other=0.0)
            i2 = tl.load(cp + 2 * N, mask=m2, other=0.0)
            i3 = tl.load(cp + 3 * N, mask=m3, other=0.0)
            state = _fwd_step(state, i0, sp, up, m0, lam, theta, SAVE)
            state = _fwd_step(state, i1, sp + N, up + N, m1, lam, theta, SAVE)
            state = _fwd_step(state, i2, sp + 2 * N, up + 2 * N, m2, lam, theta, SAVE)
            state = _fwd_step(state, i3, sp + 3 * N, up + 3 * N, m3, lam, theta, SAVE)
            cp += 4 * N
            sp += 4 * N
            up += 4 * N

    @triton.jit
    def _bwd_step(carry, gs, u, gi_ptr, mask, lam, theta, alpha, DETACH: tl.constexpr):
        sg = tl.sigmoid(alpha * (u - theta))
        sd = alpha * sg * (1.0 - sg)  # the reference's dH/du, same order of operations
        if DETACH:
            gu = carry + gs * sd
        else:
            gu = carry + (gs - theta * carry) * sd
        tl.store(gi_ptr, gu, mask=mask)
        return lam * gu

    @triton.jit
    def _lif_bwd(
        gs_ptr,
        u_ptr,
        gi_ptr,
        T,
        N,
        last,
        LAM_: tl.constexpr,
        THETA_: tl.constexpr,
        ALPHA_: tl.constexpr,
        DETACH: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        nmask = offs < N
        zero = tl.zeros([BLOCK], tl.int32)
        dt = u_ptr.dtype.element_ty
        lam = tl.full([BLOCK], LAM_, dt)
        theta = tl.full([BLOCK], THETA_, dt)
        alpha = tl.full([BLOCK], ALPHA_, dt)
        carry = tl.zeros([BLOCK], dt)  # dL/du~[t]: nothing reads the membrane after T-1
        gp = gs_ptr + last + offs  # step T-1; ``last`` = (T-1) N is an int64 when it must be
        up = u_ptr + last + offs
        ip = gi_ptr + last + offs
        for t0 in range(0, T, 4):  # steps T-1-t0 .. T-4-t0
            tv = t0 + zero  # a tensor, so that the masks below are boolean tensors
            m0 = nmask
            m1 = nmask & (tv + 1 < T)
            m2 = nmask & (tv + 2 < T)
            m3 = nmask & (tv + 3 < T)
            g0 = tl.load(gp, mask=m0, other=0.0)
            g1 = tl.load(gp - N, mask=m1, other=0.0)
            g2 = tl.load(gp - 2 * N, mask=m2, other=0.0)
            g3 = tl.load(gp - 3 * N, mask=m3, other=0.0)
            u0 = tl.load(up, mask=m0, other=0.0)
            u1 = tl.load(up - N, mask=m1, other=0.0)
            u2 = tl.load(up - 2 * N, mask=m2, other=0.0)
            u3 = tl.load(up - 3 * N, mask=m3, other=0.0)
            carry = _bwd_step(carry, g0, u0, ip, m0, lam, theta, alpha, DETACH)
            carry = _bwd_step(carry, g1, u1, ip - N, m1, lam, theta, alpha, DETACH)
            carry = _bwd_step(carry, g2, u2, ip - 2 * N, m2, lam, theta, alpha, DETACH)
            carry = _bwd_step(carry, g3, u3, ip - 3 * N, m3, lam, theta, alpha, DETACH)
            gp -= 4 * N
            up -= 4 * N
            ip -= 4 * N


# True when the kernels above were decorated under TRITON_INTERPRET=1 (they then take CPU tensors).
INTERPRETED = triton is not None and type(_lif_fwd).__name__ == "InterpretedFunction"


def _launch(N: int) -> tuple[tuple[int], int, int]:
    """(grid, neurons per program, warps)."""
    if INTERPRETED:
        block = min(_INTERP_BLOCK, triton.next_power_of_2(max(N, 16)))
        return (triton.cdiv(N, block),), block, 1
    return (triton.cdiv(N, _BLOCK),), _BLOCK, _WARPS


class _TritonLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, lam, theta, alpha, detach_reset, want_grad):
        x = current.contiguous()
        T, N = x.shape[0], x[0].numel()
        save = want_grad and ctx.needs_input_grad[0]  # no membrane kept under no_grad
        spikes = torch.empty_like(x)
        mem = torch.empty_like(x) if save else spikes  # unused when not saving (SAVE=False)
        grid, block, warps = _launch(N)
        _lif_fwd[grid](
            x, spikes, mem, T, N, LAM_=lam, THETA_=theta, SAVE=save, BLOCK=block,
            num_warps=warps, enable_fp_fusion=False,
        )  # fmt: skip
        if save:
            ctx.save_for_backward(mem)
            ctx.params = (lam, theta, alpha, detach_reset)
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes):
        (mem,) = ctx.saved_tensors
        lam, theta, alpha, detach_reset = ctx.params
        g = grad_spikes.contiguous()
        T, N = mem.shape[0], mem[0].numel()
        grad = torch.empty_like(mem)
        grid, block, warps = _launch(N)
        _lif_bwd[grid](
            g, mem, grad, T, N, (T - 1) * N, LAM_=lam, THETA_=theta, ALPHA_=alpha,
            DETACH=detach_reset, BLOCK=block, num_warps=warps, enable_fp_fusion=False,
        )  # fmt: skip
        return grad, None, None, None, None, None


def fused_lif(
    current: torch.Tensor,
    lam: float = LAM,
    theta: float = THETA,
    alpha: float = ALPHA,
    detach_reset: bool = False,
) -> torch.Tensor:
    """Drop-in for ``lif_multistep``: currents (T, ...) -> spikes (T, ...) from rest.

    fp32 and fp64 run the Triton kernels (CUDA tensors; CPU tensors under the interpreter);
    other floating dtypes, and empty inputs, take the fused torch path.
    """
    if triton is None:
        raise RuntimeError("fused_lif_triton needs triton (pip install 'ttr-bench[triton]')")
    if current.dim() < 2:
        raise ValueError(
            f"lif_multistep wants currents of shape (T, ...); got {tuple(current.shape)}"
        )
    if current.dtype not in DTYPES or current.numel() == 0:
        return _torch_fused_lif(current, lam, theta, alpha, detach_reset)
    if current.device.type != "cuda" and not INTERPRETED:
        raise RuntimeError(
            f"fused_lif_triton runs on CUDA tensors (got {current.device}); on a CPU set "
            "TRITON_INTERPRET=1 before importing it"
        )
    want_grad = torch.is_grad_enabled() and current.requires_grad
    params = (float(lam), float(theta), float(alpha), bool(detach_reset))
    return _TritonLIF.apply(current, *params, want_grad)
