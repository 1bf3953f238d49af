"""The certification workload's networks: CNN7 with batch norm and its scaled-down versions.

One class, ``CertNet``, built from an ``Arch``: ``features`` = (normalize, then per conv:
Conv2d, BatchNorm2d, ReLU, then flatten) and ``head`` = (Linear, BatchNorm1d, ReLU, Linear).
``full`` is CNN7 for TinyImageNet exactly as in Fast-IBP's and TAPS's code
(``cnn_7layer_bn_imagenet``: convs 64, 64, 128/2, 128, 128/2, then 32,768 -> 512 -> 200; about
17M parameters). The split into ``features`` and ``head`` is TAPS's ``--block-sizes 17 4``.

Normalization is the first layer, a fixed per-channel affine map fitted on the training pixels
(a non-persistent buffer: it is part of the workload, not a parameter a method can change), so
the eps-box lives in [0, 1] pixel space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Arch:
    in_channels: int
    image_size: int
    classes: int
    convs: tuple[tuple[int, int], ...]  # (out_channels, stride) per 3x3 conv, padding 1
    linear: int  # width of the hidden linear layer
    mean: tuple[float, ...]  # per-channel pixel mean (normalization)
    std: tuple[float, ...]

    def feature_size(self) -> int:
        size = self.image_size
        for _, stride in self.convs:
            size = (size + 2 - 3) // stride + 1
        return self.convs[-1][0] * size * size


class Normalize(nn.Module):
    """x -> (x - mean) / std per channel; fixed by the workload (not in the state dict)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(mean).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class CertNet(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = [Normalize(arch.mean, arch.std)]
        c = arch.in_channels
        for out, stride in arch.convs:
            layers += [nn.Conv2d(c, out, 3, stride=stride, padding=1), nn.BatchNorm2d(out)]
            layers.append(nn.ReLU())
            c = out
        layers.append(nn.Flatten(1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(arch.feature_size(), arch.linear),
            nn.BatchNorm1d(arch.linear),
            nn.ReLU(),
            nn.Linear(arch.linear, arch.classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def layers(self) -> list[nn.Module]:
        """Every abstract layer in order (the features then the head)."""
        return [*self.features, *self.head]
