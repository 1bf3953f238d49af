"""Labelled image datasets through Hugging Face ``datasets``: the reader the loaders share.

``load_arrays(source, path)`` reads a dataset with a training split and one held-out split,
described by an ``ImageSource``, from the hub (``path=None``) or from a local copy, into uint8
image arrays and int64 class indices in the source's canonical order; ``split_indices`` draws the
seeded validation subset of the training split. Used by ``workloads.snn.cifar`` (CIFAR-10) and
``workloads.certification.tinyimagenet``.

Local layouts (a split is found under its source name or one of its accepted aliases):

(a) a ``DatasetDict.save_to_disk`` directory (it holds ``dataset_dict.json``);
(b) parquet files whose names start with a split name followed by ``-``, ``_``, ``.`` or
    nothing (``data/train-00000-of-00001.parquet``), or that lie in a folder named after it
    (``train/0.parquet``), anywhere below the path;
(c) an ImageFolder tree ``<split>/<class>/**/<image>``: an image's class is the first folder
    under its split folder, except in a split folder holding the ``ImageSource.annotations``
    file, whose lines ``<image file name> <class> ...`` give the classes. Files are read in path
    order; hidden files and folders are skipped.

Images are decoded in chunks, converted to RGB (grayscale, palette and RGBA images included)
and must all be ``size`` x ``size``. Labels are checked by name: a ``ClassLabel`` must carry
exactly the source's class names, in any order, and is remapped to the canonical order; string
labels (and ImageFolder classes) are mapped by name, unknown names being an error; plain integer
labels are taken as canonical indices, with a range check.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_CHUNK = 10_000  # images decoded per batch


@dataclass(frozen=True)
class ImageSource:
    """A dataset as a loader reads it: names, classes, image size and accepted layouts."""

    name: str  # display name in messages, e.g. "CIFAR-10"
    hub_id: str  # the hub dataset read when the path is None
    classes: tuple[str, ...]  # canonical order: label i is classes[i]
    size: int  # every image is size x size pixels
    splits: tuple[tuple[str, ...], ...]  # per source split: its name, then accepted aliases
    layouts: str  # "expected one of: ...", appended to errors about the path
    annotations: str | None = None  # ImageFolder: a split folder's "<image> <class>" list
    image_columns: tuple[str, ...] = ("img", "image")
    label_columns: tuple[str, ...] = ("label", "labels")

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(names[0] for names in self.splits)

    def describe_splits(self) -> str:
        """E.g. "'train' and 'valid' (or 'val')"."""
        parts = []
        for name, *aliases in self.splits:
            alt = " or ".join(repr(a) for a in aliases)
            parts.append(f"{name!r} (or {alt})" if aliases else repr(name))
        return " and ".join(parts)


def load_arrays(
    source: ImageSource, path: str | None, *, channels_first: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Source split name -> (uint8 images, int64 canonical labels), for every split.

    Images are (N, H, W, 3), or (N, 3, H, W) with ``channels_first``. Local sources are read
    through a temporary ``datasets`` cache that is deleted before returning (the hub download
    uses the ordinary ``datasets`` cache).
    """
    import datasets

    if path is None:
        try:
            dd = datasets.load_dataset(source.hub_id)
        except Exception as e:
            raise RuntimeError(
                f"could not load {source.hub_id} from the Hugging Face hub "
                f"({type(e).__name__}: {e}); without network access, copy the dataset to a "
                f"local path and set the spec's data_path ({source.layouts})"
            ) from e
        return _to_arrays(source, dd, source.hub_id, channels_first)

    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"{source.name} path {str(root)!r} does not exist; {source.layouts}"
        )
    if not root.is_dir():
        raise ValueError(f"{source.name} path {str(root)!r} is not a directory; {source.layouts}")
    slug = re.sub(r"[^a-z0-9]+", "", source.name.lower())
    with tempfile.TemporaryDirectory(prefix=f"ttr-{slug}-") as cache:
        dd = _load_local(source, root, cache)
        return _to_arrays(source, dd, str(root), channels_first)  # converted before cleanup


def split_indices(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices into a training split of ``n``: a seeded random subset of
    ``val_size`` for validation and the rest for training, each in increasing order."""
    if not 1 <= val_size < n:
        raise ValueError(
            f"val_size must be in [1, {n - 1}] for a training split of {n} images; got {val_size}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


# -- finding the data --------------------------------------------------------------------


def _load_local(source: ImageSource, root: Path, cache: str):
    import datasets

    if (root / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(root))
    if (root / "state.json").is_file() or (root / "dataset_info.json").is_file():
        raise ValueError(
            f"{root} holds a single saved Dataset, not a DatasetDict; save a DatasetDict with "
            f"{source.describe_splits()} splits ({source.layouts})"
        )
    parquet = _parquet_files(source, root)
    if any(parquet.values()):
        missing = [s for s, files in parquet.items() if not files]
        if missing:
            raise ValueError(
                f"{root}: found parquet files but none for split(s) {missing} (file names must "
                f"start with the split name, e.g. {missing[0]}-00000-of-00001.parquet); "
                f"{source.layouts}"
            )
        return datasets.load_dataset("parquet", data_files=parquet, cache_dir=cache)
    folders = _split_folders(source, root)
    if any(folders.values()):
        missing = [s for s, folder in folders.items() if folder is None]
        if missing:
            raise ValueError(f"{root}: ImageFolder tree without images for split(s) {missing}")
        return datasets.DatasetDict({s: _image_folder(source, f) for s, f in folders.items()})
    raise ValueError(f"no {source.name} dataset recognized in {root}; {source.layouts}")


def _parquet_files(source: ImageSource, root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {s: [] for s in source.split_names}
    for f in sorted(root.rglob("*.parquet")):
        for names in source.splits:
            if any(
                re.match(rf"{re.escape(n)}([-_.]|$)", f.stem) or f.parent.name == n for n in names
            ):
                found[names[0]].append(str(f))
                break
    return found


def _split_folders(source: ImageSource, root: Path) -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for names in source.splits:
        hits = [root / n for n in names if _has_images(root / n)]
        if len(hits) > 1:
            raise ValueError(
                f"{root}: folders {[h.name for h in hits]} all hold images for split "
                f"{names[0]!r}; keep one"
            )
        found[names[0]] = hits[0] if hits else None
    return found


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(_is_image(f, folder) for f in folder.rglob("*"))


def _is_image(f: Path, folder: Path) -> bool:
    hidden = any(part.startswith(".") for part in f.relative_to(folder).parts)
    return f.suffix.lower() in IMAGE_SUFFIXES and not hidden and f.is_file()


def _image_folder(source: ImageSource, folder: Path):
    """One split of an ImageFolder tree as a Dataset of image paths and class-name strings."""
    import datasets

    table = _annotations(source, folder)
    paths, labels = [], []
    for f in sorted(f for f in folder.rglob("*") if _is_image(f, folder)):
        if table is not None:
            if f.name not in table:
                raise ValueError(f"{f} is not listed in {folder / str(source.annotations)}")
            labels.append(table[f.name])
        else:
            parts = f.relative_to(folder).parts
            if len(parts) < 2:
                raise ValueError(
                    f"{f} is not in a class folder; ImageFolder images must lie in "
                    f"{folder}/<class>/"
                )
            labels.append(parts[0])
        paths.append(str(f))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    return datasets.Dataset.from_dict({"image": paths, "label": labels}, features=features)


def _annotations(source: ImageSource, folder: Path) -> dict[str, str] | None:
    if source.annotations is None or not (folder / source.annotations).is_file():
        return None
    file = folder / source.annotations
    table = {}
    for i, line in enumerate(file.read_text().splitlines()):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(
                f"{file} line {i + 1} is {line!r}; expected '<image file name> <class> ...'"
            )
        table[fields[0]] = fields[1]
    return table


# -- converting --------------------------------------------------------------------------


def _select_splits(source: ImageSource, dd, origin: str) -> dict:
    import datasets

    if not isinstance(dd, (datasets.DatasetDict, dict)):
        raise ValueError(
            f"{origin}: expected a DatasetDict with {source.describe_splits()} splits; got "
            f"{type(dd).__name__}"
        )
    out, missing = {}, []
    for names in source.splits:
        hits = [n for n in names if n in dd]
        if len(hits) > 1:
            raise ValueError(f"{origin}: splits {hits} are all split {names[0]!r}; keep one")
        if hits:
            out[names[0]] = dd[hits[0]]
        else:
            missing.append(names[0])
    if missing:
        raise ValueError(
            f"{origin}: missing split(s) {missing}; found {sorted(dd)}; {source.name} needs "
            f"{source.describe_splits()} (validation is carved from {source.split_names[0]!r})"
        )
    return out


def _column(ds, choices: tuple[str, ...], what: str, origin: str, split: str) -> str:
    for name in choices:
        if name in ds.column_names:
            return name
    raise ValueError(
        f"{origin}: split {split!r} has no {what} column; expected one of {list(choices)}, "
        f"found {ds.column_names}"
    )


def _to_arrays(source: ImageSource, dd, origin: str, channels_first: bool) -> dict:
    import datasets

    out = {}
    for split, ds in _select_splits(source, dd, origin).items():
        img = _column(ds, source.image_columns, "image", origin, split)
        lab = _column(ds, source.label_columns, "label", origin, split)
        if not isinstance(ds.features[img], datasets.Image):
            raise ValueError(
                f"{origin}: column {img!r} of split {split!r} is {ds.features[img]}, expected "
                "a datasets Image feature"
            )
        if len(ds) == 0:
            raise ValueError(f"{origin}: split {split!r} is empty")
        ds = ds.select_columns([img, lab]).cast_column(img, datasets.Image(mode="RGB"))
        labels = _labels(source, ds, lab, origin, split)  # cheap: checked before decoding
        out[split] = (_images(source, ds, img, origin, split, channels_first), labels)
    return out


def _images(source: ImageSource, ds, col: str, origin: str, split: str, chw: bool) -> np.ndarray:
    n, s = len(ds), source.size
    x = np.empty((n, 3, s, s) if chw else (n, s, s, 3), dtype=np.uint8)
    fmt = ds.select_columns([col]).with_format("numpy")
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        batch = fmt[start:stop][col]
        shapes = [np.shape(a) for a in batch] if batch.dtype == object else [batch.shape[1:]]
        bad = next((i for i, shape in enumerate(shapes) if tuple(shape) != (s, s, 3)), None)
        if bad is not None:
            raise ValueError(
                f"{origin}: split {split!r} image {start + bad} has shape {tuple(shapes[bad])} "
                f"(H, W, C) after conversion to RGB; {source.name} images must be {s}x{s}"
            )
        if batch.dtype == object:
            batch = np.stack(list(batch))
        x[start:stop] = batch.transpose(0, 3, 1, 2) if chw else batch
    return x


def _few(names) -> str:
    names = list(names)
    if len(names) <= 10:
        return str(names)
    return f"[{names[0]!r}, {names[1]!r}, ..., {names[-1]!r}] ({len(names)} names)"


def _labels(source: ImageSource, ds, col: str, origin: str, split: str) -> np.ndarray:
    import datasets

    classes = source.classes
    index = {name: i for i, name in enumerate(classes)}
    feature = ds.features[col]
    raw = np.asarray(ds.select_columns([col]).with_format("numpy")[:][col])
    if isinstance(feature, datasets.ClassLabel):
        names = tuple(feature.names)
        if sorted(names) != sorted(classes):
            unexpected = sorted(set(names) - set(classes))
            missing = sorted(set(classes) - set(names))
            raise ValueError(
                f"{origin}: split {split!r} labels have class names {_few(names)}; expected "
                f"the {source.name} classes {_few(classes)} (in any order); unexpected "
                f"{unexpected[:5]}, missing {missing[:5]}"
            )
        _check_range(raw, len(names), origin, split)
        remap = np.array([index[name] for name in names], dtype=np.int64)
        return remap[raw.astype(np.int64)]
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        values = raw.tolist()
        unknown = sorted(set(values) - index.keys())
        if unknown:
            raise ValueError(
                f"{origin}: split {split!r} has class names {unknown[:5]} that are not "
                f"{source.name} classes; expected names from {_few(classes)}"
            )
        return np.array([index[v] for v in values], dtype=np.int64)
    if isinstance(feature, datasets.Value) and np.issubdtype(raw.dtype, np.integer):
        _check_range(raw, len(classes), origin, split)  # taken as canonical indices
        return raw.astype(np.int64)
    raise ValueError(
        f"{origin}: label column {col!r} of split {split!r} is {feature}; expected a ClassLabel "
        f"with the {source.name} class names, integers 0..{len(classes) - 1} or class-name "
        "strings"
    )


def _check_range(raw: np.ndarray, k: int, origin: str, split: str) -> None:
    bad = (raw < 0) | (raw >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{origin}: split {split!r} label {i} is {int(raw[i])}; labels must be in 0..{k - 1} "
            f"({int(bad.sum())} out of range)"
        )


__all__ = ["ImageSource", "load_arrays", "split_indices", "IMAGE_SUFFIXES"]
