"""Datasets of the snn workload, as float tensors with fixed train/validation/test splits.

- ``mnist1d``: MNIST-1D (Greydanus 2020) generated offline by the ``mnist1d`` package's
  ``make_dataset`` (its generator, never its downloader) from a fixed seed; the package already
  centres the data and scales it to unit standard deviation.
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 real images shipped in the wheel),
  scaled to [0, 1], split by a fixed permutation.
- ``cifar10``: see ``workloads.snn.cifar`` (through Hugging Face ``datasets``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Splits:
    x: dict[str, torch.Tensor]  # split -> (N, ...) float32
    y: dict[str, torch.Tensor]  # split -> (N,) int64
    classes: int


def _restore_rngs(fn):
    """``mnist1d`` seeds the global ``random`` and NumPy generators; leave them as they were."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        py, npy = random.getstate(), np.random.get_state()
        try:
            return fn(*args, **kwargs)
        finally:
            random.setstate(py)
            np.random.set_state(npy)

    return wrapper


@functools.lru_cache(maxsize=4)
def mnist1d(num_samples: int, seed: int, val_fraction: float, test_fraction: float) -> Splits:
    """MNIST-1D splits, from the data cache of ``harness/datacache.py`` when an earlier trial
    generated them with the same arguments, this file and the same mnist1d version."""
    from harness.datacache import cached

    args = (num_samples, seed, val_fraction, test_fraction)
    inputs = dict(zip(("num_samples", "seed", "val_fraction", "test_fraction"), args, strict=True))
    d = cached(
        "snn.mnist1d",
        inputs,
        lambda: _as_dict(_mnist1d(*args)),
        [__file__],
        packages=("mnist1d",),
    )
    return Splits(d["x"], d["y"], d["classes"])


def _as_dict(s: Splits) -> dict:
    return {"x": s.x, "y": s.y, "classes": s.classes}


@_restore_rngs
def _mnist1d(num_samples: int, seed: int, val_fraction: float, test_fraction: float) -> Splits:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("the snn default variant needs the `mnist1d` package") from e
    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    args.train_split = 1.0 - val_fraction - test_fraction
    d = make_dataset(args)  # sequences of length args.final_seq_length (40)
    n_val = int(round(num_samples * val_fraction))
    xs = {"train": d["x"], "validation": d["x_test"][:n_val], "test": d["x_test"][n_val:]}
    ys = {"train": d["y"], "validation": d["y_test"][:n_val], "test": d["y_test"][n_val:]}
    return Splits(
        {k: torch.as_tensor(v, dtype=torch.float32) for k, v in xs.items()},
        {k: torch.as_tensor(v, dtype=torch.int64) for k, v in ys.items()},
        classes=10,
    )


@functools.lru_cache(maxsize=1)
def digits(seed: int = 0, val: int = 300, test: int = 300) -> Splits:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    idx = {"validation": perm[:val], "test": perm[val : val + test], "train": perm[val + test :]}
    return Splits({k: x[i] for k, i in idx.items()}, {k: y[i] for k, i in idx.items()}, 10)


def evaluation_split(spec, public: Splits, split: str, eval_seed: int) -> tuple:
    """The evaluation examples of ``split`` from the harness's evaluation seed; the training
    split (``public``'s, from ``spec.data_seed``) is the same for every evaluation seed.

    - ``mnist1d``: a second MNIST-1D draw of the same size from a seed derived from
      ``eval_seed`` (the same generator, so the same distribution); its held-out part is taken
      exactly as the public draw's is.
    - ``digits``: the fixed held-out images (a public data set: the images cannot be hidden)
      shuffled by ``eval_seed`` and split into validation and test.
    - other datasets (``cifar10``): the loader's own held-out split.
    """
    from harness.api import split_seed
    from workloads._common.heldout import reassigned_split

    if spec.dataset == "mnist1d":
        fresh = mnist1d(spec.num_samples, split_seed(eval_seed, "snn-mnist1d"), 0.1, 0.1)
        return fresh.x[split], fresh.y[split]
    if spec.dataset == "digits":
        return reassigned_split(public.x, public.y, split, split_seed(eval_seed, "snn-digits"))
    return public.x[split], public.y[split]
