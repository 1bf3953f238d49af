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
(c) an ImageFolder tree ``train/<class>/*.png`` and ``test/<class>/*.png``.

Columns ``img`` or ``image`` and ``label`` or ``labels``. Labels are checked by name: a
``ClassLabel`` whose names are the CIFAR-10 names in another order (ImageFolder sorts its class
folders; the canonical order happens to be alphabetical) is remapped to the canonical indices;
other names are an error. Plain integer labels are taken as canonical indices; string labels
are mapped by name.

Splits: ``test`` is the source's test split; ``validation`` is a fixed seeded subset of
``val_size`` training images (5,000 of 50,000: 45k/5k/10k) and ``train`` the rest, both kept in
the source's order. Images become float32 (N, 3, 32, 32), scaled to [0, 1] and normalized per
channel with the mean and (population) standard deviation of the returned training split,
computed exactly from the pixel histograms (on the real data about mean (0.491, 0.482, 0.447),
std (0.247, 0.243, 0.262); note OTTT's code uses std (0.2023, 0.1994, 0.2010)). Nothing is cached
on disk: local sources are read through a temporary ``datasets`` cache that is deleted after
conversion (the hub download uses the ordinary ``datasets`` cache).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import torch

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
IMAGE_COLUMNS = ("img", "image")
LABEL_COLUMNS = ("label", "labels")
SOURCE_SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_CHUNK = 10_000  # images decoded per batch

_LAYOUTS = (
    "expected one of: a DatasetDict.save_to_disk directory (with dataset_dict.json); parquet "
    "files in the hub layout (plain_text/train-*.parquet and plain_text/test-*.parquet, or "
    "train-*.parquet and test-*.parquet); an ImageFolder tree train/<class>/*.png and "
    "test/<class>/*.png"
)


def load_cifar10(path: str | None, *, val_size: int = 5000, seed: int = 0) -> Splits:
    """CIFAR-10 as ``Splits`` (train / validation / test, 10 classes); see the module doc."""
    if path is None:
        import datasets

        try:
            dd = datasets.load_dataset(HUB_ID)
        except Exception as e:
            raise RuntimeError(
                f"could not load {HUB_ID} from the Hugging Face hub ({type(e).__name__}: {e}); "
                "without network access, copy the dataset to a local path and set the spec's "
                f"data_path ({_LAYOUTS})"
            ) from e
        return _to_splits(_to_arrays(dd, HUB_ID), val_size, seed)

    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"CIFAR-10 path {str(root)!r} does not exist; {_LAYOUTS}")
    if not root.is_dir():
        raise ValueError(f"CIFAR-10 path {str(root)!r} is not a directory; {_LAYOUTS}")
    with tempfile.TemporaryDirectory(prefix="ttr-cifar10-") as cache:
        arrays = _to_arrays(_load_local(root, cache), str(root))  # converted before cleanup
    return _to_splits(arrays, val_size, seed)


# -- reading -----------------------------------------------------------------------------


def _load_local(root: Path, cache: str):
    import datasets

    if (root / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(root))
    if (root / "state.json").is_file() or (root / "dataset_info.json").is_file():
        raise ValueError(
            f"{root} holds a single saved Dataset, not a DatasetDict; save a DatasetDict with "
            f"'train' and 'test' splits ({_LAYOUTS})"
        )
    parquet = _parquet_files(root)
    if any(parquet.values()):
        missing = [s for s in SOURCE_SPLITS if not parquet[s]]
        if missing:
            raise ValueError(
                f"{root}: found parquet files but none for split(s) {missing} (file names must "
                f"start with the split name, e.g. train-00000-of-00001.parquet); {_LAYOUTS}"
            )
        return datasets.load_dataset(
            "parquet", data_files={s: parquet[s] for s in SOURCE_SPLITS}, cache_dir=cache
        )
    if any(_has_images(root / s) for s in SOURCE_SPLITS):
        missing = [s for s in SOURCE_SPLITS if not _has_images(root / s)]
        if missing:
            raise ValueError(f"{root}: ImageFolder tree without images for split(s) {missing}")
        return datasets.load_dataset("imagefolder", data_dir=str(root), cache_dir=cache)
    raise ValueError(f"no CIFAR-10 dataset recognized in {root}; {_LAYOUTS}")


def _parquet_files(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {s: [] for s in SOURCE_SPLITS}
    for f in sorted(root.rglob("*.parquet")):
        for split in SOURCE_SPLITS:
            if re.match(rf"{split}([-_.]|$)", f.stem) or f.parent.name == split:
                found[split].append(str(f))
                break
    return found


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(
        f.suffix.lower() in IMAGE_SUFFIXES for f in folder.rglob("*") if f.is_file()
    )


def _column(ds, choices: tuple[str, ...], what: str, source: str, split: str) -> str:
    for name in choices:
        if name in ds.column_names:
            return name
    raise ValueError(
        f"{source}: split {split!r} has no {what} column; expected one of {list(choices)}, "
        f"found {ds.column_names}"
    )


def _to_arrays(dd, source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (uint8 images (N, 32, 32, 3), int64 canonical labels (N,)) for train and test."""
    import datasets

    if not isinstance(dd, (datasets.DatasetDict, dict)):
        raise ValueError(f"{source}: expected a DatasetDict with 'train' and 'test' splits")
    missing = [s for s in SOURCE_SPLITS if s not in dd]
    if missing:
        raise ValueError(
            f"{source}: missing split(s) {missing}; found {sorted(dd)}; CIFAR-10 needs 'train' "
            "and 'test' (validation is carved from train)"
        )
    out = {}
    for split in SOURCE_SPLITS:
        ds = dd[split]
        img = _column(ds, IMAGE_COLUMNS, "image", source, split)
        lab = _column(ds, LABEL_COLUMNS, "label", source, split)
        if not isinstance(ds.features[img], datasets.Image):
            raise ValueError(
                f"{source}: column {img!r} of split {split!r} is {ds.features[img]}, expected "
                "a datasets Image feature"
            )
        if len(ds) == 0:
            raise ValueError(f"{source}: split {split!r} is empty")
        ds = ds.select_columns([img, lab]).cast_column(img, datasets.Image(mode="RGB"))
        out[split] = (
            _images(ds, img, source, split),
            _labels(ds, lab, source, split),
        )
    return out


def _images(ds, col: str, source: str, split: str) -> np.ndarray:
    n = len(ds)
    x = np.empty((n, 32, 32, 3), dtype=np.uint8)
    fmt = ds.select_columns([col]).with_format("numpy")
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        batch = fmt[start:stop][col]
        if batch.dtype == object or batch.shape[1:] != (32, 32, 3):
            shapes = [np.shape(a) for a in batch] if batch.dtype == object else [batch.shape[1:]]
            bad = next((start + i for i, s in enumerate(shapes) if tuple(s) != (32, 32, 3)), start)
            shape = shapes[bad - start] if batch.dtype == object else shapes[0]
            raise ValueError(
                f"{source}: split {split!r} image {bad} has shape {tuple(shape)} (H, W, C) "
                "after conversion to RGB; CIFAR-10 images must be 32x32"
            )
        x[start:stop] = batch
    return x


def _labels(ds, col: str, source: str, split: str) -> np.ndarray:
    import datasets

    feature = ds.features[col]
    raw = np.asarray(ds.select_columns([col]).with_format("numpy")[:][col])
    if isinstance(feature, datasets.ClassLabel):
        names = tuple(feature.names)
        if sorted(names) != sorted(CIFAR10_CLASSES) or len(names) != len(CIFAR10_CLASSES):
            raise ValueError(
                f"{source}: split {split!r} labels have class names {list(names)}; expected "
                f"the CIFAR-10 classes {list(CIFAR10_CLASSES)} (in any order)"
            )
        _check_range(raw, len(names), source, split)
        remap = np.array([CIFAR10_CLASSES.index(name) for name in names], dtype=np.int64)
        return remap[raw.astype(np.int64)]
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        unknown = sorted(set(raw.tolist()) - set(CIFAR10_CLASSES))
        if unknown:
            raise ValueError(
                f"{source}: split {split!r} has label names {unknown[:5]} outside CIFAR-10's "
                f"{list(CIFAR10_CLASSES)}"
            )
        index = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
        return np.array([index[s] for s in raw.tolist()], dtype=np.int64)
    if isinstance(feature, datasets.Value) and np.issubdtype(raw.dtype, np.integer):
        _check_range(raw, len(CIFAR10_CLASSES), source, split)  # taken as canonical indices
        return raw.astype(np.int64)
    raise ValueError(
        f"{source}: label column {col!r} of split {split!r} is {feature}; expected a ClassLabel "
        "with the CIFAR-10 names, integers 0..9 or class-name strings"
    )


def _check_range(raw: np.ndarray, k: int, source: str, split: str) -> None:
    bad = (raw < 0) | (raw >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{source}: split {split!r} label {i} is {int(raw[i])}; labels must be in 0..{k - 1} "
            f"({int(bad.sum())} out of range)"
        )


# -- splitting and normalizing -----------------------------------------------------------


def _to_splits(arrays, val_size: int, seed: int) -> Splits:
    x_train, y_train = arrays["train"]
    n = len(y_train)
    if not 1 <= val_size < n:
        raise ValueError(
            f"val_size must be in [1, {n - 1}] for a training split of {n} images; got {val_size}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    idx = {"train": np.sort(perm[val_size:]), "validation": np.sort(perm[:val_size])}
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
