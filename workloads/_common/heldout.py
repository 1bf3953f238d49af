"""Held-out examples of a fixed public data set, re-assigned to validation and test by the
referee's evaluation seed (docs/reliability.md#evaluation-data)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def reassigned_split(
    x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor], split: str, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``split`` ("validation" or "test") of the pooled held-out examples of ``x``/``y``
    (keyed by split), permuted by ``seed``: the sizes stay, which examples go where does not."""
    xs = torch.cat([x["validation"], x["test"]])
    ys = torch.cat([y["validation"], y["test"]])
    perm = torch.randperm(len(ys), generator=torch.Generator().manual_seed(seed))
    n_val = len(y["validation"])
    idx = perm[:n_val] if split == "validation" else perm[n_val:]
    return xs[idx], ys[idx]
