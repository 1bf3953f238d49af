"""Weighted min-sum check-node update as a torch.autograd.Function with a hand-written backward.

The forward keeps, per check row, what the backward needs and nothing else: the argmin and
second argmin (uint8), min1 and min2, and the sign bits of the messages (bool); autograd of the
reference instead keeps the messages, their magnitudes, a scattered copy and several masks alive
per iteration. The backward is the reference's autograd, written out:

- ``clamp(0, 20)`` passes the gradient where 0 <= w * ext <= 20 (bounds included);
- d/dw = sum over the row of g * ext; d/d ext = g * w;
- every slot but the argmin i1 took min1 from i1, slot i1 took min2 from i2, so i1 receives the
  sum of the others' d/d ext and i2 receives slot i1's;
- ``abs`` has derivative sgn(x), sgn(0) = 0; ``Tensor.min(dim)`` gives a tie to one index (the
  first), as the reference's ``min`` does.

Vectorized torch ops only (no compiler needed): it runs wherever torch runs, any float dtype.
"""

from __future__ import annotations

import torch

LLR_CLIP = 20.0  # workloads.ldpc.decoder.LLR_CLIP


class _SavedMinSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v2c: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        mag = v2c.abs()
        neg = v2c < 0
        odd = neg.sum(dim=-1, keepdim=True) % 2 == 1  # (B, m, 1)
        min1, i1 = mag.min(dim=-1, keepdim=True)
        is1 = torch.arange(v2c.shape[-1], device=v2c.device) == i1
        min2, i2 = torch.where(is1, float("inf"), mag).min(dim=-1, keepdim=True)
        ext = torch.where(is1, min2, min1)
        val = (weight * ext).clamp(0.0, LLR_CLIP)
        out = torch.where(odd ^ neg, -val, val)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            small = torch.uint8 if v2c.shape[-1] <= 255 else torch.int64
            ctx.save_for_backward(i1.to(small), i2.to(small), min1, min2, neg, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        i1, i2, min1, min2, neg, weight = ctx.saved_tensors
        i1, i2 = i1.long(), i2.long()
        is1 = torch.arange(neg.shape[-1], device=neg.device) == i1
        ext = torch.where(is1, min2, min1)
        y = weight * ext
        odd = neg.sum(dim=-1, keepdim=True) % 2 == 1
        g = torch.where((y >= 0.0) & (y <= LLR_CLIP), grad_out, 0.0)
        g = torch.where(odd ^ neg, -g, g)  # d val
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (g * ext).sum(dim=-1, keepdim=True).sum_to_size(weight.shape)
        grad_v = None
        if ctx.needs_input_grad[0]:
            dext = g * weight
            to2 = dext.gather(-1, i1)  # slot i1's extrinsic minimum is min2, from slot i2
            to1 = torch.where(is1, 0.0, dext).sum(dim=-1, keepdim=True)  # the others': min1
            s1 = torch.where(min1 == 0, 0.0, torch.where(neg.gather(-1, i1), -1.0, 1.0))
            s2 = torch.where(min2 == 0, 0.0, torch.where(neg.gather(-1, i2), -1.0, 1.0))
            grad_v = torch.zeros_like(grad_out)
            grad_v.scatter_(-1, i1, (to1 * s1).to(grad_v.dtype))
            grad_v.scatter_(-1, i2, (to2 * s2).to(grad_v.dtype))
        return grad_v, grad_w


def saved_min_sum(v2c: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Drop-in for ``check_node_update(v2c, weight)``: v2c (B, m, dc), weight broadcastable to
    (B, m, 1) (a tensor of any such shape, or a number)."""
    if v2c.dim() != 3:
        raise ValueError(f"v2c must be (B, m, dc), got shape {tuple(v2c.shape)}")
    if not torch.is_tensor(weight):
        weight = torch.tensor(float(weight), dtype=v2c.dtype, device=v2c.device)
    return _SavedMinSum.apply(v2c, weight)


def saved_available(device: torch.device) -> bool:
    """Plain torch ops: available on every device."""
    return True
