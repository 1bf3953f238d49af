"""Real parallel sentence pairs through Hugging Face ``datasets``: the ``full`` variant's data.

``load_pairs(dataset, targets, path)`` reads one English-to-X corpus per target language and
returns ``{target: {"train": [(source text, target text), ...], "validation": [...],
"test": [...]}}``. Rows have the translation schema of OPUS-100, WMT and TED: a ``translation``
field holding a dict ``{language code: text}``, e.g. ``{"en": "Hello.", "de": "Hallo."}``.
Each pair of languages is one dataset configuration, named by the two codes in alphabetical
order (``config_name``: "de-en", "en-fr"), as on the default hub dataset Helsinki-NLP/opus-100.

Sources: the hub (``path=None``: ``datasets.load_dataset(dataset, config)``) or a local copy
under ``path``, where a configuration's folder ``<path>/<config>`` (or ``<path>`` itself when
there is a single target and no such folder) holds one of:

(a) a ``DatasetDict.save_to_disk`` directory (it holds ``dataset_dict.json``);
(b) parquet files in the hub layout, ``<split>-*.parquet`` (``train-00000-of-00001.parquet``);
(c) JSON lines files ``<split>.jsonl``, one ``{"translation": {...}}`` object a line;

with splits ``train`` (required), ``validation`` and ``test``. A missing ``validation`` or
``test`` split is held out of ``train`` (``val_size`` / ``test_size`` pairs, seeded, disjoint).

Texts are stripped and pairs with an empty side are dropped. ``caps`` makes a real language
artificially low-resource: ``caps[target]`` is the most training pairs kept for it, a seeded
random subset of its training split (after any hold-out, so its validation and test splits keep
their size). Random draws use ``random.Random(f"{seed}-{target}")``, so one target's pairs do
not depend on which other targets are loaded; every split keeps the source's order.
"""

from __future__ import annotations

import logging
import random
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("ttr.translation")

DEFAULT_DATASET = "Helsinki-NLP/opus-100"
SPLITS = ("train", "validation", "test")
LAYOUTS = (
    "expected, per target, a folder <path>/<config> (config e.g. 'de-en': the two language "
    "codes in alphabetical order; <path> itself for a single target) holding a "
    "DatasetDict.save_to_disk directory, parquet files <split>-*.parquet or JSON lines files "
    "<split>.jsonl, with splits 'train' and optionally 'validation' and 'test'"
)

Pairs = list[tuple[str, str]]


class PairsError(ValueError):
    """The parallel data or the arguments describing it are not usable; the message says why."""


def config_name(source: str, target: str) -> str:
    """The dataset configuration of a language pair: the two codes sorted, e.g. "de-en"."""
    return "-".join(sorted((source, target)))


def load_pairs(
    dataset: str,
    targets: Sequence[str],
    path: str | None = None,
    source: str = "en",
    caps: Mapping[str, int] | None = None,
    seed: int = 0,
    val_size: int = 2000,
    test_size: int = 2000,
) -> dict[str, dict[str, Pairs]]:
    """Target code -> split -> (source text, target text) pairs, for every target.

    ``dataset`` is the hub dataset read when ``path`` is None (e.g. ``DEFAULT_DATASET``); a
    local ``path`` is read through a temporary ``datasets`` cache deleted before returning.
    """
    targets, caps = list(targets), dict(caps or {})
    _check_arguments(targets, source, caps, val_size, test_size)
    root = None if path is None else _local_root(path)
    out = {}
    for target in targets:
        config = config_name(source, target)
        if root is None:
            origin = f"{dataset} ({config})"
            splits = _read_splits(_load_hub(dataset, config), source, target, origin)
        else:
            folder = _pair_folder(root, config, len(targets))
            origin = str(folder)
            with tempfile.TemporaryDirectory(prefix="ttr-translation-") as cache:
                dd = _load_local(folder, cache)
                splits = _read_splits(dd, source, target, origin)  # converted before cleanup
        rng = random.Random(f"{seed}-{target}")
        splits = _hold_out(splits, val_size, test_size, rng, origin)
        cap = caps.get(target)
        if cap is not None and cap < len(splits["train"]):
            keep = sorted(rng.sample(range(len(splits["train"])), cap))
            log.info("%s: kept %d of %d training pairs (cap)", origin, cap, len(splits["train"]))
            splits["train"] = [splits["train"][i] for i in keep]
        out[target] = splits
    return out


def _check_arguments(
    targets: list[str], source: str, caps: Mapping[str, int], val_size: int, test_size: int
) -> None:
    if not targets:
        raise PairsError("no target languages given; pass at least one code, e.g. ['de']")
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise PairsError(f"target codes {repeated} are given more than once; list each once")
    if source in targets:
        raise PairsError(f"target {source!r} is the source language; remove it from the targets")
    unknown = sorted(set(caps) - set(targets))
    if unknown:
        raise PairsError(f"caps for {unknown}, which are not targets {targets}")
    bad = {t: c for t, c in caps.items() if isinstance(c, bool) or not isinstance(c, int) or c < 1}
    if bad:
        raise PairsError(f"caps must be positive integers (training pairs kept); got {bad}")
    for name, size in (("val_size", val_size), ("test_size", test_size)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise PairsError(f"{name} must be a positive integer; got {size!r}")


# -- finding the data --------------------------------------------------------------------


def _load_hub(dataset: str, config: str):
    import datasets

    try:
        return datasets.load_dataset(dataset, config)
    except Exception as e:
        raise RuntimeError(
            f"could not load {dataset} configuration {config!r} from the Hugging Face hub "
            f"({type(e).__name__}: {e}); without network access, copy the data to a local path "
            f"and pass it as the path ({LAYOUTS})"
        ) from e


def _local_root(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"translation data path {str(root)!r} does not exist; {LAYOUTS}")
    if not root.is_dir():
        raise PairsError(f"translation data path {str(root)!r} is not a directory; {LAYOUTS}")
    return root


def _pair_folder(root: Path, config: str, n_targets: int) -> Path:
    if (root / config).is_dir():
        return root / config
    if n_targets == 1:
        return root
    folders = sorted(f.name for f in root.iterdir() if f.is_dir())
    raise PairsError(
        f"{root} has no folder {config!r} for the pair; found folders {folders}; {LAYOUTS}"
    )


def _load_local(folder: Path, cache: str):
    """A configuration's folder as a DatasetDict, after detecting its layout."""
    import datasets

    if (folder / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(folder))
    for suffix, builder in ((".parquet", "parquet"), (".jsonl", "json")):
        files = _split_files(folder, suffix)
        if files:
            return datasets.load_dataset(builder, data_files=files, cache_dir=cache)
    raise PairsError(
        f"no translation data recognized in {folder}; tried a DatasetDict.save_to_disk "
        f"directory (dataset_dict.json), parquet files <split>-*.parquet and JSON lines files "
        f"<split>.jsonl, with <split> one of {list(SPLITS)}; {LAYOUTS}"
    )


def _split_files(folder: Path, suffix: str) -> dict[str, list[str]]:
    """Split -> the folder's files of that split with this suffix; {} if it has none."""
    files = sorted(f for f in folder.iterdir() if f.suffix == suffix and f.is_file())
    if not files:
        return {}
    found: dict[str, list[str]] = {}
    for f in files:
        split = next((s for s in SPLITS if _names_split(f, s)), None)
        if split is None:
            raise PairsError(
                f"{f}: cannot tell its split; {suffix} file names must be "
                + ("<split>-*.parquet" if suffix == ".parquet" else "<split>.jsonl")
                + f" with <split> one of {list(SPLITS)}"
            )
        found.setdefault(split, []).append(str(f))
    if "train" not in found:
        raise PairsError(
            f"{folder}: found {suffix} files for splits {sorted(found)} but none for 'train'"
        )
    return found


def _names_split(f: Path, split: str) -> bool:
    if f.suffix == ".jsonl":
        return f.stem == split
    return re.fullmatch(rf"{split}(-.*)?", f.stem) is not None


# -- converting --------------------------------------------------------------------------


def _read_splits(dd, source: str, target: str, origin: str) -> dict[str, Pairs]:
    """The present splits of ``dd`` among ``SPLITS`` as cleaned pairs, 'train' required."""
    import datasets

    if not isinstance(dd, (datasets.DatasetDict, dict)):
        raise PairsError(
            f"{origin}: expected a DatasetDict with splits {list(SPLITS)}; got {type(dd).__name__}"
        )
    if "train" not in dd:
        raise PairsError(f"{origin}: no 'train' split; found splits {sorted(dd)}")
    return {s: _pairs(dd[s], source, target, origin, s) for s in SPLITS if s in dd}


def _pairs(ds, source: str, target: str, origin: str, split: str) -> Pairs:
    if "translation" not in ds.column_names:
        raise PairsError(
            f"{origin}: split {split!r} has no 'translation' field; found fields "
            f"{ds.column_names}; rows must look like {{'translation': {{{source!r}: ..., "
            f"{target!r}: ...}}}}"
        )
    codes, texts = _texts(ds.select_columns(["translation"]), (source, target), origin, split)
    missing = [c for c in (source, target) if c not in codes]
    if missing:
        raise PairsError(
            f"{origin}: split {split!r}: language code(s) {missing} not found in the rows' "
            f"translation dicts, which have codes {codes}; check the target codes and the "
            "dataset configuration"
        )
    pairs = []
    for s, t in zip(texts[source], texts[target], strict=True):
        s, t = _stripped(s, origin, split), _stripped(t, origin, split)
        if s and t:
            pairs.append((s, t))
    if not pairs:
        raise PairsError(
            f"{origin}: split {split!r} has no pairs with both {source!r} and {target!r} text "
            f"after dropping rows with an empty side ({len(ds)} rows read)"
        )
    return pairs


def _texts(ds, languages: tuple[str, ...], origin: str, split: str) -> tuple[list[str], dict]:
    """The codes in the rows' translation dicts, and the texts of those of ``languages`` found
    (one per row, None where a row lacks it)."""
    import pyarrow as pa

    column = ds.with_format("arrow")[:].column("translation")
    if pa.types.is_struct(column.type):  # a Translation feature or a dict of Values: columnar
        codes = [field.name for field in column.type]
        texts: dict[str, list] = {c: [] for c in languages if c in codes}
        for chunk in column.chunks:
            fields = chunk.flatten()  # rows whose whole dict is null give nulls
            for c, values in texts.items():
                values.extend(fields[codes.index(c)].to_pylist())
        return codes, texts
    rows = list(ds["translation"])  # e.g. the Json feature: JSON lines whose dicts differ in keys
    if not all(row is None or isinstance(row, dict) for row in rows):
        raise PairsError(
            f"{origin}: split {split!r} field 'translation' is {ds.features['translation']}; "
            "expected a dict {language code: text} per row"
        )
    codes = sorted({c for row in rows if row for c in row})
    return codes, {c: [row.get(c) if row else None for row in rows] for c in languages}


def _stripped(text, origin: str, split: str) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise PairsError(f"{origin}: split {split!r} has a text that is not a string: {text!r}")
    return text.strip()


def _hold_out(
    splits: dict[str, Pairs], val_size: int, test_size: int, rng: random.Random, origin: str
) -> dict[str, Pairs]:
    """Fill a missing 'validation' / 'test' split with a seeded, disjoint part of 'train'."""
    sizes = {s: n for s, n in (("validation", val_size), ("test", test_size)) if s not in splits}
    if not sizes:
        return {s: splits[s] for s in SPLITS}
    train, out = splits["train"], dict(splits)
    if sum(sizes.values()) >= len(train):
        raise PairsError(
            f"{origin}: cannot hold out {sizes} pairs for the missing split(s) from only "
            f"{len(train)} training pairs; lower val_size / test_size or provide the split(s)"
        )
    order = list(range(len(train)))
    rng.shuffle(order)
    start = 0
    for split, n in sizes.items():
        out[split] = [train[i] for i in sorted(order[start : start + n])]
        start += n
        log.info("%s: no %r split; held out %d of %d training pairs", origin, split, n, len(train))
    out["train"] = [train[i] for i in sorted(order[start:])]
    return {s: out[s] for s in SPLITS}
