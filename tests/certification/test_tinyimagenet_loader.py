"""``workloads.certification.tinyimagenet.load_tinyimagenet`` on small generated fixtures.

The fixtures have the hub dataset's schema (``image`` and a ``label`` ClassLabel carrying all
200 wnids, splits ``train`` and ``valid``) or one of the file layouts, with 40 training and 20
held-out 64x64 images over a few classes, some of them grayscale. Loaded images are matched to
the fixture by content, which checks labels, split membership and conversion without assuming
the order the loader reads files in; JPEG layouts are compared with their decoded files.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

datasets = pytest.importorskip("datasets")

from workloads.certification.data import ImageSplits  # noqa: E402
from workloads.certification.tinyimagenet import (  # noqa: E402
    HUB_ID,
    TINYIMAGENET_WNIDS,
    load_tinyimagenet,
)

W = TINYIMAGENET_WNIDS
N_TRAIN, N_VALID, VAL = 40, 20, 10
USED = (0, 1, 13, 57, 100, 150, 198, 199)  # canonical class indices in the fixtures
DICT_LAYOUTS = ("save_to_disk", "parquet")
TREE_LAYOUTS = ("imagefolder", "imagefolder_val", "archive")


@dataclasses.dataclass
class Fixture:
    train_u8: np.ndarray  # (N, 64, 64, 3) uint8: what the loader must return (RGB)
    train_y: np.ndarray  # canonical indices
    train_gray: frozenset[int]  # images stored as grayscale (mode "L")
    valid_u8: np.ndarray
    valid_y: np.ndarray
    valid_gray: frozenset[int]


def _arrays(n: int, rng: np.random.Generator, gray: tuple[int, ...]):
    u8 = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    for i in gray:
        u8[i] = u8[i, :, :, :1]  # a grayscale image becomes three equal channels
    y = rng.permutation(np.resize(np.array(USED), n))  # every USED class present
    return u8, y, frozenset(gray)


def _pil(a: np.ndarray, gray: bool) -> PIL.Image.Image:
    return PIL.Image.fromarray(a[:, :, 0] if gray else a)


def _dataset_dict(fx: Fixture, names=W, label_feature=None, held="valid"):
    """The hub schema: ``image`` (Image) and ``label`` (ClassLabel with ``names``)."""
    feature = label_feature or datasets.ClassLabel(names=list(names))
    features = datasets.Features({"image": datasets.Image(), "label": feature})

    def split(u8, y, gray):
        if isinstance(feature, datasets.ClassLabel):  # encode each canonical class by name
            y = [list(names).index(W[k]) for k in y]
        elif feature.dtype == "string":
            y = [W[k] for k in y]
        else:
            y = [int(k) for k in y]
        imgs = [_pil(a, i in gray) for i, a in enumerate(u8)]
        return datasets.Dataset.from_dict({"image": imgs, "label": y}, features=features)

    return datasets.DatasetDict(
        {
            "train": split(fx.train_u8, fx.train_y, fx.train_gray),
            held: split(fx.valid_u8, fx.valid_y, fx.valid_gray),
        }
    )


def _save(dd, layout: str, folder: Path) -> Path:
    if layout == "save_to_disk":
        dd.save_to_disk(str(folder))
    elif layout == "parquet":  # the hub repository's file names
        for split, ds in dd.items():
            ds.to_parquet(str(folder / "data" / f"{split}-00000-of-00001-0123456789abcdef.parquet"))
    else:
        raise AssertionError(layout)
    return folder


def _tree(fx: Fixture, layout: str, folder: Path) -> Fixture:
    """Write a file layout of JPEGs; returns the fixture as decoded from the written files."""
    held = "valid" if layout == "imagefolder" else "val"
    stored, annotations = {}, []
    parts = (("train", "train"), (held, "valid"))
    for split, key in parts:
        u8, y, gray = getattr(fx, f"{key}_u8"), getattr(fx, f"{key}_y"), getattr(fx, f"{key}_gray")
        decoded = np.empty_like(u8)
        for i, (a, k) in enumerate(zip(u8, y, strict=True)):
            if layout != "archive":
                path = folder / split / W[k] / f"{i:05d}.JPEG"
            elif split == "train":
                path = folder / "train" / W[k] / "images" / f"{W[k]}_{i}.JPEG"
                (folder / "train" / W[k]).mkdir(parents=True, exist_ok=True)
                (folder / "train" / W[k] / f"{W[k]}_boxes.txt").write_text("")
            else:
                path = folder / "val" / "images" / f"val_{i}.JPEG"
                annotations.append(f"val_{i}.JPEG\t{W[k]}\t0\t0\t63\t63\n")
            path.parent.mkdir(parents=True, exist_ok=True)
            _pil(a, i in gray).save(path, quality=90)
            decoded[i] = np.asarray(PIL.Image.open(path).convert("RGB"))
        stored[key] = decoded
    if layout == "archive":  # the rest of tiny-imagenet-200: never read
        (folder / "val" / "val_annotations.txt").write_text("".join(annotations))
        (folder / "wnids.txt").write_text("\n".join(W[k] for k in USED) + "\n")
        (folder / "words.txt").write_text(f"{W[0]}\tgoldfish, Carassius auratus\n")
        (folder / "test" / "images").mkdir(parents=True)
        _pil(fx.valid_u8[0], False).save(folder / "test" / "images" / "test_0.JPEG")
    return dataclasses.replace(fx, train_u8=stored["train"], valid_u8=stored["valid"])


@pytest.fixture(scope="module")
def fixture() -> Fixture:
    rng = np.random.default_rng(1234)
    return Fixture(*_arrays(N_TRAIN, rng, gray=(0, 7)), *_arrays(N_VALID, rng, gray=(3,)))


@pytest.fixture(scope="module")
def written(fixture, tmp_path_factory) -> dict[str, tuple[Path, Fixture]]:
    root = tmp_path_factory.mktemp("tinyimagenet")
    dd = _dataset_dict(fixture)
    out = {lay: (_save(dd, lay, root / lay), fixture) for lay in DICT_LAYOUTS}
    for lay in TREE_LAYOUTS:
        out[lay] = (root / lay, _tree(fixture, lay, root / lay))
    return out


def _match(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Index into ``reference`` of each image (exact content match)."""
    index = {a.tobytes(): i for i, a in enumerate(reference)}
    assert len(index) == len(reference)
    found = [index.get(a.tobytes(), -1) for a in images]
    assert -1 not in found, "a loaded image is not in the fixture"
    return np.array(found)


def _seeded_validation(seed: int) -> list[int]:
    perm = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(seed))
    return sorted(perm[:VAL].tolist())


def _check(splits, fx: Fixture, ordered: bool, seed: int = 0) -> None:
    assert isinstance(splits, ImageSplits)
    assert splits.classes == 200 and splits.levels == 255.0
    sizes = {"train": N_TRAIN - VAL, "validation": VAL, "test": N_VALID}
    assert set(splits.x) == set(splits.y) == set(sizes)
    for split, n in sizes.items():
        assert splits.x[split].shape == (n, 3, 64, 64)
        assert splits.x[split].dtype == torch.uint8 and splits.x[split].is_contiguous()
        assert splits.y[split].shape == (n,) and splits.y[split].dtype == torch.int64

    hwc = {s: x.permute(0, 2, 3, 1).numpy() for s, x in splits.x.items()}
    tr, va = _match(hwc["train"], fx.train_u8), _match(hwc["validation"], fx.train_u8)
    te = _match(hwc["test"], fx.valid_u8)
    assert not set(tr) & set(va)
    assert sorted([*tr, *va]) == list(range(N_TRAIN))
    assert sorted(te) == list(range(N_VALID))
    np.testing.assert_array_equal(splits.y["train"].numpy(), fx.train_y[tr])
    np.testing.assert_array_equal(splits.y["validation"].numpy(), fx.train_y[va])
    np.testing.assert_array_equal(splits.y["test"].numpy(), fx.valid_y[te])
    if ordered:  # the source's order is kept; validation is the seeded randperm subset
        assert list(te) == list(range(N_VALID))
        assert list(tr) == sorted(tr)
        assert list(va) == _seeded_validation(seed)

    # mean / population std of the returned training pixels in [0, 1] units
    ref = hwc["train"].astype(np.float64) / 255.0
    assert len(splits.mean) == len(splits.std) == 3
    np.testing.assert_allclose(splits.mean, ref.mean(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(splits.std, ref.std(axis=(0, 1, 2)), rtol=1e-10)


# -- layouts -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", DICT_LAYOUTS + TREE_LAYOUTS)
def test_tinyimagenet_loads_each_layout(layout, written):
    path, fx = written[layout]
    _check(load_tinyimagenet(str(path), val_size=VAL), fx, ordered=layout in DICT_LAYOUTS)


def test_tinyimagenet_grayscale_becomes_three_equal_channels(written):
    for layout in ("save_to_disk", "archive"):
        path, fx = written[layout]
        splits = load_tinyimagenet(str(path), val_size=VAL)
        x = torch.cat([splits.x["train"], splits.x["validation"]])
        for i in sorted(fx.train_gray):
            a = fx.train_u8[i]
            assert (a == a[:, :, :1]).all()
            hits = [j for j in range(len(x)) if np.array_equal(x[j].permute(1, 2, 0).numpy(), a)]
            assert len(hits) == 1
            chans = x[hits[0]]
            assert torch.equal(chans[0], chans[1]) and torch.equal(chans[1], chans[2])


def test_tinyimagenet_hub_path_uses_zh_plus(fixture, monkeypatch):
    calls = []

    def fake(name, *args, **kwargs):
        calls.append(name)
        return _dataset_dict(fixture)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    _check(load_tinyimagenet(None, val_size=VAL), fixture, ordered=True)
    assert calls == [HUB_ID] == ["zh-plus/tiny-imagenet"]

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="data_path.*parquet files in the hub layout"):
        load_tinyimagenet(None)


@pytest.mark.parametrize("layout", DICT_LAYOUTS)
def test_tinyimagenet_remaps_permuted_class_names(layout, fixture, tmp_path):
    names = tuple(str(n) for n in np.random.default_rng(0).permutation(W))
    dd = _dataset_dict(fixture, names=names)
    assert dd["train"][:8]["label"] != list(fixture.train_y[:8])  # stored indices differ
    splits = load_tinyimagenet(str(_save(dd, layout, tmp_path / layout)), val_size=VAL)
    _check(splits, fixture, ordered=True)


@pytest.mark.parametrize("dtype", ["string", "int64"])
def test_tinyimagenet_plain_labels(dtype, fixture, tmp_path):
    """String labels are mapped by name; integers are taken as canonical indices."""
    dd = _dataset_dict(fixture, label_feature=datasets.Value(dtype))
    splits = load_tinyimagenet(str(_save(dd, "parquet", tmp_path / "p")), val_size=VAL)
    _check(splits, fixture, ordered=True)


def test_tinyimagenet_accepts_val_as_the_held_out_split_name(fixture, tmp_path):
    dd = _dataset_dict(fixture, held="val")
    for layout in DICT_LAYOUTS:
        splits = load_tinyimagenet(str(_save(dd, layout, tmp_path / layout)), val_size=VAL)
        _check(splits, fixture, ordered=True)


def test_tinyimagenet_validation_split_is_seeded(written, fixture):
    path = str(written["save_to_disk"][0])
    a, b = load_tinyimagenet(path, val_size=VAL), load_tinyimagenet(path, val_size=VAL)
    c = load_tinyimagenet(path, val_size=VAL, seed=1)
    for split in a.x:
        assert torch.equal(a.x[split], b.x[split]) and torch.equal(a.y[split], b.y[split])
    assert a.mean == b.mean and a.std == b.std
    assert not torch.equal(a.x["validation"], c.x["validation"])
    assert torch.equal(a.x["test"], c.x["test"])  # the test split does not depend on the seed
    _check(c, fixture, ordered=True, seed=1)
    big = load_tinyimagenet(path, val_size=25)
    assert len(big.y["validation"]) == 25 and len(big.y["train"]) == N_TRAIN - 25


def test_tinyimagenet_class_order_is_sorted_wnids():
    assert len(W) == len(set(W)) == 200
    assert list(W) == sorted(W)  # what ImageFolder produces (and the hub's first name)
    assert all(re.fullmatch(r"n\d{8}", w) for w in W)
    assert (W[0], W[1], W[-1]) == ("n01443537", "n01629819", "n12267677")


# -- errors ------------------------------------------------------------------------------


def test_tinyimagenet_error_nonexistent_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="TinyImageNet path .* does not exist"):
        load_tinyimagenet(str(tmp_path / "nope"))


def test_tinyimagenet_error_path_is_a_file(tmp_path):
    (tmp_path / "f.parquet").write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        load_tinyimagenet(str(tmp_path / "f.parquet"))


def test_tinyimagenet_error_unrecognized_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no TinyImageNet dataset recognized.*save_to_disk"):
        load_tinyimagenet(str(tmp_path))


def test_tinyimagenet_error_wrong_class_names(fixture, tmp_path):
    assert 5 not in USED
    names = W[:5] + ("n00000000",) + W[6:]  # one wrong name among 200
    dd = _dataset_dict(fixture, names=names)
    with pytest.raises(ValueError, match=r"unexpected \['n00000000'\], missing \['n01742172'\]"):
        load_tinyimagenet(str(_save(dd, "save_to_disk", tmp_path / "d")), val_size=VAL)


def test_tinyimagenet_error_missing_class_names(fixture, tmp_path):
    assert 5 not in USED
    dd = _dataset_dict(fixture, names=W[:5] + W[6:])  # 199 names
    with pytest.raises(ValueError, match=r"class names .*199 names.*missing \['n01742172'\]"):
        load_tinyimagenet(str(_save(dd, "parquet", tmp_path / "p")), val_size=VAL)


def test_tinyimagenet_error_unknown_class_folder(written, tmp_path):
    path = shutil.copytree(written["imagefolder"][0], tmp_path / "t")
    (path / "train" / W[13]).rename(path / "train" / "n99999999")
    with pytest.raises(ValueError, match=r"class names \['n99999999'\] that are not TinyImageNet"):
        load_tinyimagenet(str(path), val_size=VAL)


def test_tinyimagenet_error_unknown_string_label(fixture, tmp_path):
    dd = _dataset_dict(fixture, label_feature=datasets.Value("string"))
    labels = dd["valid"][:]["label"]
    labels[4] = "goldfish"
    dd["valid"] = dd["valid"].remove_columns("label").add_column("label", labels)
    with pytest.raises(ValueError, match=r"split 'valid' has class names \['goldfish'\]"):
        load_tinyimagenet(str(_save(dd, "save_to_disk", tmp_path / "d")), val_size=VAL)


@pytest.mark.parametrize("bad", [-1, 200])
def test_tinyimagenet_error_label_out_of_range(bad, fixture, tmp_path):
    fx = dataclasses.replace(fixture, train_y=fixture.train_y.copy())
    fx.train_y[3] = bad
    dd = _dataset_dict(fx, label_feature=datasets.Value("int64"))
    with pytest.raises(ValueError, match=rf"label 3 is {bad}; labels must be in 0..199"):
        load_tinyimagenet(str(_save(dd, "save_to_disk", tmp_path / "d")), val_size=VAL)


@pytest.mark.parametrize("which", ["one", "all"])
def test_tinyimagenet_error_wrong_image_size(which, fixture, tmp_path):
    dd = _dataset_dict(fixture)
    imgs = dd["valid"][:]["image"]
    for i in [5] if which == "one" else range(len(imgs)):
        imgs[i] = imgs[i].resize((32, 32))
    dd["valid"] = datasets.Dataset.from_dict(
        {"image": imgs, "label": dd["valid"][:]["label"]}, features=dd["valid"].features
    )
    first = 5 if which == "one" else 0
    with pytest.raises(
        ValueError, match=rf"split 'valid' image {first} has shape \(32, 32, 3\).*64x64"
    ):
        load_tinyimagenet(str(_save(dd, "parquet", tmp_path / "p")), val_size=VAL)


def test_tinyimagenet_error_missing_split(fixture, tmp_path):
    train_only = datasets.DatasetDict(train=_dataset_dict(fixture)["train"])
    with pytest.raises(ValueError, match=r"missing split\(s\) \['valid'\].*'valid' \(or 'val'\)"):
        load_tinyimagenet(str(_save(train_only, "save_to_disk", tmp_path / "d")), val_size=VAL)
    with pytest.raises(ValueError, match=r"none for split\(s\) \['valid'\]"):
        load_tinyimagenet(str(_save(train_only, "parquet", tmp_path / "p")), val_size=VAL)
    (tmp_path / "t" / "train" / W[0]).mkdir(parents=True)
    _pil(fixture.train_u8[1], False).save(tmp_path / "t" / "train" / W[0] / "a.JPEG")
    with pytest.raises(ValueError, match=r"without images for split\(s\) \['valid'\]"):
        load_tinyimagenet(str(tmp_path / "t"), val_size=VAL)


def test_tinyimagenet_error_both_valid_and_val_folders(written, tmp_path):
    path = shutil.copytree(written["imagefolder"][0], tmp_path / "t")
    shutil.copytree(path / "valid", path / "val")
    with pytest.raises(ValueError, match=r"\['valid', 'val'\] all hold images.*keep one"):
        load_tinyimagenet(str(path), val_size=VAL)


def test_tinyimagenet_error_archive_image_not_annotated(written, fixture, tmp_path):
    path = shutil.copytree(written["archive"][0], tmp_path / "t")
    _pil(fixture.valid_u8[0], False).save(path / "val" / "images" / "val_999.JPEG")
    with pytest.raises(ValueError, match=r"val_999.JPEG is not listed in .*val_annotations.txt"):
        load_tinyimagenet(str(path), val_size=VAL)


def test_tinyimagenet_error_image_outside_class_folder(written, fixture, tmp_path):
    path = shutil.copytree(written["imagefolder"][0], tmp_path / "t")
    _pil(fixture.valid_u8[0], False).save(path / "valid" / "loose.JPEG")
    with pytest.raises(ValueError, match=r"loose.JPEG is not in a class folder"):
        load_tinyimagenet(str(path), val_size=VAL)


def test_tinyimagenet_error_val_size(written):
    path = str(written["save_to_disk"][0])
    for val_size in (0, N_TRAIN):
        with pytest.raises(ValueError, match=r"val_size must be in \[1, 39\]"):
            load_tinyimagenet(path, val_size=val_size)
