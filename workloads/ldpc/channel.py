"""BPSK over AWGN, channel LLRs.

Convention (shared with the decoder): BPSK x = 1 - 2c, LLR l = log P(c=0 | y) / P(c=1 | y),
so a positive LLR means bit 0. For Eb/N0 in dB and code rate R the noise standard deviation
is sigma = sqrt(1 / (2 R 10^(Eb/N0 / 10))), and the LLR of y = x + sigma n is 2 y / sigma^2,
clipped to +-LLR_CLIP.
"""

from __future__ import annotations

import math

import torch

LLR_CLIP = 20.0


def sigma_for(ebn0_db: float | torch.Tensor, rate: float) -> float | torch.Tensor:
    """Noise standard deviation for Eb/N0 (dB) at code rate ``rate``: a float for a float,
    a tensor (same shape) for a tensor."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    if isinstance(ebn0_db, torch.Tensor):
        ebn0 = ebn0_db if ebn0_db.is_floating_point() else ebn0_db.to(torch.float32)
        return torch.rsqrt(2.0 * rate * torch.pow(10.0, ebn0 / 10.0))
    return 1.0 / math.sqrt(2.0 * rate * 10.0 ** (float(ebn0_db) / 10.0))


def bpsk_awgn_llr(
    codewords: torch.Tensor,
    ebn0_db: float | torch.Tensor,
    rate: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Send (B, n) 0/1 codewords over BPSK/AWGN and return their (B, n) channel LLRs.

    ``ebn0_db`` is one value or a (B,) tensor (one Eb/N0 per word). The noise is drawn with
    ``generator``, which must live on the codewords' device; the result has the codewords'
    dtype (float32 if they are not floating point) and device.
    """
    if codewords.dim() != 2:
        raise ValueError(f"codewords must be (B, n), got shape {tuple(codewords.shape)}")
    device = codewords.device
    if generator.device.type != device.type:
        raise ValueError(
            f"generator is on {generator.device}, codewords on {device}: draw the noise on the "
            "codewords' device"
        )
    dtype = codewords.dtype if codewords.is_floating_point() else torch.float32
    if isinstance(ebn0_db, torch.Tensor):
        ebn0 = ebn0_db.to(device=device, dtype=dtype)
        if ebn0.dim() == 1:
            if ebn0.shape[0] != codewords.shape[0]:
                raise ValueError(
                    f"ebn0_db has {ebn0.shape[0]} values for {codewords.shape[0]} words"
                )
            ebn0 = ebn0.unsqueeze(1)
        elif ebn0.dim() != 0:
            raise ValueError(f"ebn0_db must be a scalar or (B,), got shape {tuple(ebn0.shape)}")
        sigma = sigma_for(ebn0, rate)
    else:
        sigma = torch.tensor(sigma_for(ebn0_db, rate), device=device, dtype=dtype)
    x = 1.0 - 2.0 * codewords.to(dtype)
    noise = torch.randn(codewords.shape, generator=generator, device=device, dtype=dtype)
    y = x + sigma * noise
    return (2.0 * y / (sigma * sigma)).clamp(-LLR_CLIP, LLR_CLIP)
