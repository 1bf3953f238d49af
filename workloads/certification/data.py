"""Image datasets of the certification workload, as uint8 tensors with fixed splits.

Pixels stay integers on the host and on the device; a batch becomes ``x / levels`` in [0, 1]
only when it is used, so the eps-box is defined in exact pixel space and TinyImageNet's 100k
images take 1.2 GB, not 4.9 GB. Per-channel normalization is part of the model (its first
layer), fitted on the training split: a submission perturbs pixels, never normalized values.

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 real images shipped in the wheel; pixel
  levels 0..16), split by a fixed permutation.
- ``tinyimagenet``: see ``workloads.certification.tinyimagenet`` (through ``datasets``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ImageSplits:
    x: dict[str, torch.Tensor]  # split -> (N, C, H, W) uint8 pixel levels
    y: dict[str, torch.Tensor]  # split -> (N,) int64 class indices
    classes: int
    levels: float  # a pixel in [0, 1] is x / levels
    mean: tuple[float, ...]  # per-channel mean of the training pixels, in [0, 1] units
    std: tuple[float, ...]  # per-channel population std of the training pixels

    def __post_init__(self) -> None:
        check_splits(self)


def check_splits(s: ImageSplits) -> None:
    """Clear errors for data a certificate cannot be defined on."""
    if s.levels <= 0:
        raise ValueError(f"pixel levels must be positive; got {s.levels}")
    for split, x in s.x.items():
        y = s.y[split]
        if x.dtype != torch.uint8:
            raise ValueError(f"split {split!r}: images must be uint8 pixel levels; got {x.dtype}")
        if x.ndim != 4:
            raise ValueError(f"split {split!r}: images must be (N, C, H, W); got {tuple(x.shape)}")
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"split {split!r}: {len(x)} images but {len(y)} labels")
        if int(x.max()) > s.levels:
            raise ValueError(
                f"split {split!r}: pixel level {int(x.max())} exceeds {s.levels}: images must lie "
                "in [0, 1] after scaling"
            )
        if int(y.min()) < 0 or int(y.max()) >= s.classes:
            raise ValueError(
                f"split {split!r}: labels must be in 0..{s.classes - 1}; found "
                f"{int(y.min())}..{int(y.max())}"
            )


def channel_stats(u8: np.ndarray, levels: float, channel_axis: int = 1) -> tuple[tuple, tuple]:
    """Exact per-channel mean and population std of ``u8 / levels`` through value histograms."""
    u8 = np.moveaxis(np.asarray(u8), channel_axis, -1)
    values = np.arange(256, dtype=np.float64) / levels
    means, stds = [], []
    for c in range(u8.shape[-1]):
        counts = np.bincount(u8[..., c].ravel(), minlength=256).astype(np.float64)
        mean = float((counts * values).sum() / counts.sum())
        var = float((counts * (values - mean) ** 2).sum() / counts.sum())
        means.append(mean)
        stds.append(max(var**0.5, 1e-6))
    return tuple(means), tuple(stds)


@functools.lru_cache(maxsize=2)
def digits(seed: int = 0, val: int = 300, test: int = 300) -> ImageSplits:
    """scikit-learn's 8x8 digits, (N, 1, 8, 8) levels 0..16; 1,197 / 300 / 300 by a seeded
    permutation (the same split as the snn workload's ``digits``)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.uint8).unsqueeze(1)
    y = torch.as_tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    idx = {"validation": perm[:val], "test": perm[val : val + test], "train": perm[val + test :]}
    mean, std = channel_stats(x[idx["train"]].numpy(), 16.0)
    return ImageSplits(
        {k: x[i].contiguous() for k, i in idx.items()},
        {k: y[i] for k, i in idx.items()},
        classes=10,
        levels=16.0,
        mean=mean,
        std=std,
    )
