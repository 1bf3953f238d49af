"""``Int4Linear``: a linear layer whose three products run on INT4 values (in INT8 storage).

Forward: y = HQ(x) HQ(w)^T + b, i.e. x and w block-Hadamard-transformed along the inner
dimension, quantized to INT4 with learned (LSQ) step sizes s_x and s_w, multiplied as integers,
and scaled by s_x s_w (H is orthogonal, so (x H)(w H)^T = x w^T before quantization).

Backward, for the output gradient g (N x M):
- bit splitting: g ~ (14 hi + lo) / c with hi, lo INT4 (``quant.split_output_gradient``),
  giving 2N rows;
- grad of the transformed input, g W_q: LSS over the 2N rows with scores their norms (the
  authors' code), N kept in expectation; the rows multiply the INT4 weight as integers and each
  result row is weighted 1 / p if kept, 0 if not (all 2N rows are multiplied: on a CPU the
  gather of the kept rows costs more than the integer product it would save);
- grad of the transformed weight, g^T X_q: LSS over the 2N rows with scores
  ||g_i|| ||x_i|| (the paper's leverage score); rows kept with p = 1 multiply as integers (the
  two halves of a row merged into 14 hi + lo, an int8 in [-105, 105]), rows
  kept with p < 1 carry their 1 / p factor and multiply in float32 (the authors' CUDA path for
  sampled rows); with ``lss_weight=False`` every nonzero row is kept and multiplied as integers
  (what the authors' released kernel runs);
- LSQ: gradients outside the clamp range are zeroed and the step sizes get LSQ's gradient
  (scaled by 1 / sqrt(numel * 7)); the Hadamard transform is applied back (H is symmetric).

Random draws come from the generator passed to ``apply`` (the athlete's update generator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .quant import (
    QN,
    QP,
    SPLIT_BINS,
    block_hadamard,
    int_mm,
    leverage_keep_probs,
    split_output_gradient,
)


@dataclass(frozen=True)
class Int4Config:
    lss_input: bool = True  # sample the split rows for the input gradient
    lss_weight: bool = True  # sample the split rows for the weight gradient (the paper)


def _q(r: torch.Tensor) -> torch.Tensor:
    return torch.round(r).clamp(QN, QP).to(torch.int8)


def _lsq(r: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSQ backward for v_q = s clamp(round(v / s)) given r = v / s and dL/dv_q: (dL/dv with the
    straight-through estimator inside the range, dL/ds with LSQ's gradient scale)."""
    small, big = r < QN, r > QP
    middle = ~(small | big)
    ds_elem = torch.where(small, float(QN), torch.where(big, float(QP), torch.round(r) - r))
    ds = (ds_elem * grad).sum() / math.sqrt(r.numel() * QP)
    return grad * middle, ds.reshape(())


def _keep(scores: torch.Tensor, sample: bool, gen: torch.Generator | None):
    """(keep mask, keep probabilities) over rows: sampled by LSS, or every nonzero row."""
    if not sample:
        p = (scores > 0).to(scores.dtype)
        return p > 0, p
    p = leverage_keep_probs(scores)
    u = torch.rand(p.shape, generator=gen, device=p.device, dtype=p.dtype)
    return u < p, p


class Int4Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, s_x, s_w, group: int, gen, cfg: Int4Config):
        k = x.shape[-1]
        x2 = x.reshape(-1, k)
        rx = block_hadamard(x2, group) / s_x
        rw = block_hadamard(weight, group) / s_w
        qx, qw = _q(rx), _q(rw)
        y = int_mm(qx, qw.t()).to(x.dtype) * (s_x * s_w)
        if bias is not None:
            y = y + bias
        ctx.save_for_backward(qx, qw, rx, rw, s_x, s_w)
        ctx.group, ctx.gen, ctx.cfg, ctx.x_shape = group, gen, cfg, x.shape
        ctx.has_bias = bias is not None
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, gy):
        qx, qw, rx, rw, s_x, s_w = ctx.saved_tensors
        gen, cfg = ctx.gen, ctx.cfg
        m = qw.shape[0]
        g = gy.reshape(-1, m).to(torch.float32)
        n = g.shape[0]
        u = torch.rand(g.shape, generator=gen, device=g.device, dtype=g.dtype)
        hi, lo, c = split_output_gradient(g, u)
        split = torch.cat([hi, lo])  # (2N, M) int8
        row_scale = (
            torch.cat(
                [
                    torch.full((n,), SPLIT_BINS, dtype=g.dtype, device=g.device),
                    torch.ones_like(g[:, 0]),
                ]
            )
            / c
        )  # dequantization factor of each split row
        split_norm = split.to(g.dtype).norm(dim=1) * row_scale

        grad_x = grad_w = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[3]:
            keep, p = _keep(split_norm, cfg.lss_input, gen)
            # one integer product over all 2N rows, each result row weighted 1 / p if kept and
            # 0 if not: on a CPU gathering the kept rows costs more than the product it saves
            weight = torch.where(keep, row_scale / p.clamp_min(1e-30), 0.0) * s_w
            prod = int_mm(split, qw).to(g.dtype) * weight[:, None]  # (2N, K)
            gxh, grad_sx = _lsq(rx, prod[:n] + prod[n:])
            grad_x = block_hadamard(gxh, ctx.group).reshape(ctx.x_shape)
        else:
            grad_sx = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[4]:
            x_norm = qx.to(g.dtype).norm(dim=1) * s_x
            keep, p = _keep(split_norm * torch.cat([x_norm, x_norm]), cfg.lss_weight, gen)
            whole = keep & (p >= 1.0)
            # rows kept with p = 1 carry weight 1: their halves merge into 14 hi + lo, within
            # [-105, 105], one int8 matrix and one integer product
            merged = torch.where(whole[:n, None], hi, 0).to(torch.int16) * SPLIT_BINS
            merged += torch.where(whole[n:, None], lo, 0).to(torch.int16)
            acc = int_mm(merged.to(torch.int8).t().contiguous(), qx).to(g.dtype)
            gwh = acc * (s_x / c)
            part = (keep & (p < 1.0)).nonzero().squeeze(1)
            if part.numel():  # sampled rows: the 1 / p factor makes them float
                a = split[part].to(g.dtype) * (row_scale[part] / p[part])[:, None]
                gwh += a.t() @ (qx[part % n].to(g.dtype) * s_x)
            gwh, grad_sw = _lsq(rw, gwh)
            grad_w = block_hadamard(gwh, ctx.group)
        else:
            grad_sw = None
        grad_b = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, grad_sx, grad_sw, None, None, None


def int4_linear(x, weight, bias, s_x, s_w, group: int, gen=None, cfg: Int4Config = Int4Config()):
    """y = x w^T + b through the INT4 quantizers (see the module docstring)."""
    return Int4Linear.apply(x, weight, bias, s_x, s_w, group, gen, cfg)
