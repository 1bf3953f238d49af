"""CIFAR-10 for the snn ``full`` variant, through Hugging Face ``datasets``.

Source: the hub dataset ``uoft-cs/cifar10`` (``path=None``) or a local copy. What was checked
about the hub dataset (its dataset card's ``dataset_info``/``configs`` block, README of the
parquet conversion "Convert dataset to Parquet (#6)"): one config ``plain_text`` with data files
``plain_text/train-*`` and ``plain_text/test-*``; splits ``train`` (50,000 examples) and
``test`` (10,000); features ``img`` (``Image``: 32x32 RGB PIL images) and ``label``
(``ClassLabel`` with names 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog,
7 horse, 8 ship, 9 truck: the canonical CIFAR-10 order). There is no validation split.

Local layouts accepted by ``load_cifar10(path)``:

(a) a ``DatasetDict.save_to_disk`` directory (it holds ``dataset_dict.json``);
(b) parquet files in the hub layout: ``**/train*.parquet`` and ``**/test*.parquet`` (e.g.
    ``plain_text/train-00000-of-00001.parquet``), or ``train/*.parquet`` and ``test/*.parquet``;
(c) an ImageFolder tree ``train/<class>/*.png`` and ``test/<class>/*.png`` (read in path order).

Columns ``img`` or ``image`` and ``label`` or ``labels``. Labels are checked by name: a
``ClassLabel`` whose names are the CIFAR-10 names in another order (ImageFolder sorts its class
folders; the canonical order happens to be alphabetical) is remapped to the canonical indices;
other names are an error. Plain integer labels are taken as canonical indices; string labels
and ImageFolder class folders are mapped by name.

Splits: ``test`` is the source's test split; ``validation`` is a fixed seeded subset of
``val_size`` training images (5,000 of 50,000: 45k/5k/10k) and ``train`` the rest, both kept in
the source's order (reading, checks and the seeded split are shared with the other loaders in
``workloads._common.hf_images``). Images become float32 (N, 3, 32, 32), scaled to [0, 1] and
normalized per channel with the mean and (population) standard deviation of the returned
training split, computed exactly from the pixel histograms (on the real data about mean (0.491,
0.482, 0.447), std (0.247, 0.243, 0.262); note OTTT's code uses std (0.2023, 0.1994, 0.2010)).
Nothing is cached on disk: local parquet and ``save_to_disk`` sources are read through a
temporary ``datasets`` cache that is deleted after conversion (the hub download uses the
ordinary ``datasets`` cache).
"""

from __future__ import annotations

import numpy as np
import torch

from workloads._common.hf_images import ImageSource, load_arrays, split_indices
from workloads.snn.data import Splits

HUB_ID = "uoft-cs/cifar10"
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

_LAYOUTS = (
    "expected one of: a DatasetDict.save_to_disk directory (with dataset_dict.json); parquet "
    "files in the hub layout (plain_text/train-*.parquet and plain_text/test-*.parquet, or "
    "train-*.parquet and test-*.parquet); an ImageFolder tree train/<class>/*.png and "
    "test/<class>/*.png"
)
SOURCE = ImageSource(
    name="CIFAR-10",
    hub_id=HUB_ID,
    classes=CIFAR10_CLASSES,
    size=32,
    splits=(("train",), ("test",)),
    layouts=_LAYOUTS,
)


def load_cifar10(path: str | None, *, val_size: int = 5000, seed: int = 0) -> Splits:
    """CIFAR-10 as ``Splits`` (train / validation / test, 10 classes); see the module doc."""
    return _to_splits(load_arrays(SOURCE, path), val_size, seed)


# -- splitting and normalizing -----------------------------------------------------------


def _to_splits(arrays, val_size: int, seed: int) -> Splits:
    x_train, y_train = arrays["train"]
    train, validation = split_indices(len(y_train), val_size, seed)
    idx = {"train": train, "validation": validation}
    u8 = {s: x_train[i] for s, i in idx.items()}
    labels = {s: y_train[i] for s, i in idx.items()}
    u8["test"], labels["test"] = arrays["test"]

    mean, std = _channel_stats(u8["train"])
    scale = torch.as_tensor(1.0 / (255.0 * std), dtype=torch.float32).view(1, 3, 1, 1)
    shift = torch.as_tensor(mean / std, dtype=torch.float32).view(1, 3, 1, 1)
    xs, ys = {}, {}
    for split in ("train", "validation", "test"):
        chw = np.ascontiguousarray(u8[split].transpose(0, 3, 1, 2))
        xs[split] = torch.from_numpy(chw).to(torch.float32).mul_(scale).sub_(shift)
        ys[split] = torch.from_numpy(np.ascontiguousarray(labels[split], dtype=np.int64))
    return Splits(xs, ys, classes=len(CIFAR10_CLASSES))


def _channel_stats(u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and population std of ``u8 / 255`` (N, H, W, 3), via histograms."""
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = np.empty(3), np.empty(3)
    for c in range(3):
        counts = np.bincount(u8[..., c].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        mean[c] = (counts * values).sum() / total
        var = (counts * (values - mean[c]) ** 2).sum() / total
        std[c] = max(np.sqrt(var), 1e-6)
    return mean, std


__all__ = ["load_cifar10", "CIFAR10_CLASSES", "HUB_ID"]
