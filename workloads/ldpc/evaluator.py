"""Frame error rate of a decoder on a seeded evaluation stream, with an exact bound.

Frames are drawn in fixed chunks from generators seeded in [``EVAL_SEED_BASE``, 2^32), each
chunk's seed derived from the evaluation seed the harness holds (``harness.evalseed``), the split
and the chunk index, so a submission cannot regenerate the frames. The harness seeds every
training generator below ``EVAL_SEED_BASE`` (``harness.runner.TRAIN_SEED_LIMIT``) and the
training sampler refuses such seeds, so no training batch can repeat an evaluation frame. Seeds
stay below 2^32 because torch's CPU generator (mt19937) keeps only a seed's low 32 bits.
Counting stops at ``min_frame_errors`` frame errors or at ``frame_cap`` frames, whichever comes
first; the bound is the upper end of the two-sided 95% Clopper-Pearson interval. Since the
chunks of one (evaluation seed, split) are the same every time, a caller may keep them between
evaluations (``FrameCache``): drawing and encoding a chunk costs about twice its decode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta

from harness.api import split_seed

EVAL_SEED_BASE = 2**31
SPLITS = ("validation", "test")


def clopper_pearson(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for errors/trials (Clopper & Pearson 1934)."""
    if trials <= 0:
        return 0.0, 1.0
    a = (1.0 - confidence) / 2.0
    lo = 0.0 if errors == 0 else float(beta.ppf(a, errors, trials - errors + 1))
    hi = 1.0 if errors == trials else float(beta.ppf(1.0 - a, errors + 1, trials - errors))
    return lo, hi


class FrameCache:
    """The evaluation chunks drawn so far, kept for the next evaluation, up to ``max_bytes``
    (chunks past it are drawn again each time). Keyed by everything that makes a chunk: the
    evaluation seed, the split, the chunk index and size, and the caller's ``key`` (e.g. the
    Eb/N0); the caller clears it when its channel changes in any other way."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.chunks: dict[tuple, tuple[torch.Tensor, np.ndarray]] = {}

    def get(self, key: tuple) -> tuple[torch.Tensor, np.ndarray] | None:
        return self.chunks.get(key)

    def put(self, key: tuple, llr: torch.Tensor, bits: np.ndarray) -> None:
        size = llr.element_size() * llr.nelement() + bits.nbytes
        if self.bytes + size <= self.max_bytes:
            self.chunks[key] = (llr, bits)
            self.bytes += size

    def clear(self) -> None:
        self.chunks.clear()
        self.bytes = 0


@dataclass(frozen=True)
class FerCount:
    frames: int
    frame_errors: int
    bit_errors: int
    n: int

    def metrics(self) -> dict[str, float]:
        lo, hi = clopper_pearson(self.frame_errors, self.frames)
        return {
            "fer": self.frame_errors / max(self.frames, 1),
            "fer_lower95": lo,
            "fer_upper95": hi,
            "ber": self.bit_errors / max(self.frames * self.n, 1),
            "frames": float(self.frames),
            "frame_errors": float(self.frame_errors),
        }


def count_frame_errors(
    decode: Callable[[torch.Tensor], torch.Tensor],
    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    split: str,
    chunk: int,
    min_frame_errors: int,
    frame_cap: int,
    device: torch.device,
    *,
    eval_seed: int,
    cache: FrameCache | None = None,
    key: tuple = (),
) -> FerCount:
    """Decode seeded chunks until enough frame errors or the frame cap; the chunks of one
    (``eval_seed``, ``split``) are the same every time.

    decode: (B, n) channel LLR -> (B, n) hard decisions (0/1) after the last iteration.
    sample: (batch, generator) -> (llr, codeword bits), the workload's channel at the eval SNR.
    cache: keeps the chunks drawn (llr, and the bits as uint8) under (``key``, seed, split,
    index, size), so a later evaluation with the same ``key`` decodes the same frames without
    drawing them again.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    frames = frame_err = bit_err = 0
    n = 0
    index = 0
    while frame_err < min_frame_errors and frames < frame_cap:
        b = min(chunk, frame_cap - frames)
        ck = (*key, eval_seed, split, index, b)
        hit = cache.get(ck) if cache is not None else None
        if hit is None:
            g = torch.Generator(device=device)
            g.manual_seed(EVAL_SEED_BASE + split_seed(eval_seed, "ldpc", split, index))
            llr, bits_t = sample(b, g)
            bits = bits_t.cpu().numpy().astype(np.uint8)
            if cache is not None:
                cache.put(ck, llr, bits)
        else:
            llr, bits = hit
        # counted in numpy, on one thread: torch's comparisons and reductions over a (2000, 576)
        # tensor are intra-op parallel and wait for a second thread when another process
        # holds that core (32 ms per chunk measured under load, more than the decode)
        wrong = decode(llr).cpu().numpy() != bits  # (B, n)
        frame_err += int(wrong.any(axis=1).sum())
        bit_err += int(wrong.sum())
        frames += b
        n = bits.shape[1]
        index += 1
    return FerCount(frames, frame_err, bit_err, n)
