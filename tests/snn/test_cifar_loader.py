"""``workloads.snn.cifar.load_cifar10`` on small fixtures with the hub dataset's schema.

Every fixture image has pixel (0, 0) = 0 and pixel (0, 1) = 255 in all channels, so the
per-channel affine normalization can be read back from the loaded tensors and the raw images
recovered exactly; images are then matched to the fixture by content, which checks labels,
split membership and normalization without assuming how the loader draws its validation set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

datasets = pytest.importorskip("datasets")

from workloads.snn.cifar import CIFAR10_CLASSES, HUB_ID, load_cifar10  # noqa: E402

N_TRAIN, N_TEST, VAL = 40, 20, 10


@dataclasses.dataclass
class Fixture:
    train_u8: np.ndarray  # (N, 32, 32, 3) uint8
    train_y: np.ndarray  # canonical CIFAR-10 indices
    test_u8: np.ndarray
    test_y: np.ndarray


def _arrays(n: int, rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    u8 = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    u8[:, 0, 0], u8[:, 0, 1] = 0, 255  # anchors
    y = rng.permutation(np.arange(n) % 10)  # every class present
    return u8, y


def _dataset_dict(fx: Fixture, names=CIFAR10_CLASSES, label_feature=None) -> datasets.DatasetDict:
    """The hub schema: ``img`` (Image) and ``label`` (ClassLabel with ``names``)."""
    feature = label_feature or datasets.ClassLabel(names=list(names))
    features = datasets.Features({"img": datasets.Image(), "label": feature})

    def split(u8, y):
        if isinstance(feature, datasets.ClassLabel):  # encode each canonical class by name
            y = [names.index(CIFAR10_CLASSES[k]) for k in y]
        imgs = [PIL.Image.fromarray(a) for a in u8]
        return datasets.Dataset.from_dict({"img": imgs, "label": list(y)}, features=features)

    return datasets.DatasetDict(
        train=split(fx.train_u8, fx.train_y), test=split(fx.test_u8, fx.test_y)
    )


def _write(dd: datasets.DatasetDict, layout: str, folder: Path) -> Path:
    if layout == "save_to_disk":
        dd.save_to_disk(str(folder))
    elif layout == "parquet":
        for split, ds in dd.items():
            ds.to_parquet(str(folder / "plain_text" / f"{split}-00000-of-00001.parquet"))
    elif layout == "imagefolder":
        names = dd["train"].features["label"].names
        for split, ds in dd.items():
            for i, ex in enumerate(ds):
                d = folder / split / names[ex["label"]]
                d.mkdir(parents=True, exist_ok=True)
                ex["img"].save(d / f"{i:05d}.png")
    else:
        raise AssertionError(layout)
    return folder


@pytest.fixture(scope="module")
def fixture() -> Fixture:
    rng = np.random.default_rng(1234)
    return Fixture(*_arrays(N_TRAIN, rng), *_arrays(N_TEST, rng))


@pytest.fixture(scope="module")
def written(fixture, tmp_path_factory) -> dict[str, Path]:
    dd = _dataset_dict(fixture)
    root = tmp_path_factory.mktemp("cifar")
    return {lay: _write(dd, lay, root / lay) for lay in ("save_to_disk", "parquet", "imagefolder")}


def _decode(splits) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Raw uint8 images per split and the (mean, std) the loader normalized with."""
    lo = splits.x["train"][0, :, 0, 0].double()  # value of pixel 0 per channel
    hi = splits.x["train"][0, :, 0, 1].double()  # value of pixel 255
    std = 1.0 / (hi - lo)
    mean = -lo * std
    out = {}
    for split, x in splits.x.items():
        assert torch.allclose(x[:, :, 0, 0].double(), lo.expand(len(x), 3), atol=1e-5)
        u = (x.double() - lo.view(1, 3, 1, 1)) / (hi - lo).view(1, 3, 1, 1) * 255.0
        assert (u - u.round()).abs().max() < 1e-2
        out[split] = u.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out, mean.numpy(), std.numpy()


def _match(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Index into ``reference`` of each image (exact content match)."""
    index = {a.tobytes(): i for i, a in enumerate(reference)}
    assert len(index) == len(reference)
    found = [index.get(a.tobytes(), -1) for a in images]
    assert -1 not in found, "a loaded image is not in the fixture"
    return np.array(found)


def _check(splits, fx: Fixture, ordered: bool) -> None:
    assert splits.classes == 10
    assert set(splits.x) == set(splits.y) == {"train", "validation", "test"}
    sizes = {"train": N_TRAIN - VAL, "validation": VAL, "test": N_TEST}
    for split, n in sizes.items():
        assert splits.x[split].shape == (n, 3, 32, 32)
        assert splits.x[split].dtype == torch.float32 and splits.x[split].is_contiguous()
        assert splits.y[split].shape == (n,) and splits.y[split].dtype == torch.int64

    raw, mean, std = _decode(splits)
    tr, va = _match(raw["train"], fx.train_u8), _match(raw["validation"], fx.train_u8)
    te = _match(raw["test"], fx.test_u8)
    assert not set(tr) & set(va)
    assert sorted([*tr, *va]) == list(range(N_TRAIN))
    assert sorted(te) == list(range(N_TEST))
    np.testing.assert_array_equal(splits.y["train"].numpy(), fx.train_y[tr])
    np.testing.assert_array_equal(splits.y["validation"].numpy(), fx.train_y[va])
    np.testing.assert_array_equal(splits.y["test"].numpy(), fx.test_y[te])
    if ordered:  # the source's order is kept within every split
        assert list(te) == list(range(N_TEST))
        assert list(tr) == sorted(tr) and list(va) == sorted(va)

    # normalized with the per-channel mean / population std of the returned training images
    ref = fx.train_u8[tr].astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, ref.std(axis=(0, 1, 2)), rtol=1e-5)
    x = splits.x["train"].double()
    torch.testing.assert_close(
        x.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        x.std((0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet", "imagefolder"])
def test_cifar_loads_each_layout(layout, written, fixture):
    splits = load_cifar10(str(written[layout]), val_size=VAL)
    _check(splits, fixture, ordered=layout != "imagefolder")


def test_cifar_validation_split_is_seeded(written):
    path = str(written["save_to_disk"])
    a, b = load_cifar10(path, val_size=VAL), load_cifar10(path, val_size=VAL)
    c = load_cifar10(path, val_size=VAL, seed=1)
    for split in a.x:
        assert torch.equal(a.x[split], b.x[split]) and torch.equal(a.y[split], b.y[split])
    assert not torch.equal(a.x["validation"], c.x["validation"])
    assert torch.equal(a.y["test"], c.y["test"])  # the test split does not depend on the seed


def test_cifar_class_order_is_alphabetical_and_matches_hub():
    assert list(CIFAR10_CLASSES) == sorted(CIFAR10_CLASSES)  # what ImageFolder produces
    assert CIFAR10_CLASSES == (
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


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet"])
def test_cifar_remaps_permuted_class_names(layout, fixture, tmp_path):
    names = tuple(reversed(CIFAR10_CLASSES))
    dd = _dataset_dict(fixture, names=names)
    assert dd["train"][:8]["label"] != list(fixture.train_y[:8])  # stored indices differ
    splits = load_cifar10(str(_write(dd, layout, tmp_path / layout)), val_size=VAL)
    _check(splits, fixture, ordered=True)


def test_cifar_hub_path_uses_uoft_cs_cifar10(fixture, monkeypatch):
    calls = []

    def fake(name, *args, **kwargs):
        calls.append(name)
        return _dataset_dict(fixture)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    _check(load_cifar10(None, val_size=VAL), fixture, ordered=True)
    assert calls == [HUB_ID] == ["uoft-cs/cifar10"]

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="data_path"):
        load_cifar10(None)


def test_cifar_converts_grayscale_and_rgba(fixture, tmp_path):
    dd = _dataset_dict(fixture)
    gray = fixture.train_u8[0, :, :, 0]
    imgs = dd["train"][:]["img"]
    imgs[0] = PIL.Image.fromarray(gray)  # mode "L"
    assert imgs[0].mode == "L"
    imgs[1] = imgs[1].convert("RGBA")
    dd["train"] = datasets.Dataset.from_dict(
        {"img": imgs, "label": dd["train"][:]["label"]}, features=dd["train"].features
    )
    path = _write(dd, "save_to_disk", tmp_path / "d")
    splits = load_cifar10(str(path), val_size=VAL)
    raw, _, _ = _decode(splits)
    everything = np.concatenate([raw["train"], raw["validation"]])
    assert any(np.array_equal(a, np.stack([gray] * 3, -1)) for a in everything)
    assert any(np.array_equal(a, fixture.train_u8[1]) for a in everything)


# -- errors ------------------------------------------------------------------------------


def test_cifar_error_nonexistent_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(str(tmp_path / "nope"))


def test_cifar_error_unrecognized_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no CIFAR-10 dataset recognized.*save_to_disk"):
        load_cifar10(str(tmp_path))


@pytest.mark.parametrize("layout", ["save_to_disk", "imagefolder"])
def test_cifar_error_wrong_class_names(layout, fixture, tmp_path):
    names = ("plane",) + CIFAR10_CLASSES[1:]
    dd = _dataset_dict(fixture, label_feature=datasets.ClassLabel(names=list(names)))
    with pytest.raises(ValueError, match="class names.*plane"):
        load_cifar10(str(_write(dd, layout, tmp_path / layout)), val_size=VAL)


def test_cifar_error_wrong_image_size(fixture, tmp_path):
    small = Fixture(
        fixture.train_u8, fixture.train_y, fixture.test_u8[:, :16, :16].copy(), fixture.test_y
    )
    path = _write(_dataset_dict(small), "parquet", tmp_path / "p")
    with pytest.raises(ValueError, match=r"split 'test' image 0 has shape \(16, 16, 3\).*32x32"):
        load_cifar10(str(path), val_size=VAL)


def test_cifar_error_missing_split(fixture, tmp_path):
    dd = _dataset_dict(fixture)
    datasets.DatasetDict(train=dd["train"]).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(ValueError, match=r"missing split\(s\) \['test'\]"):
        load_cifar10(str(tmp_path / "d"), val_size=VAL)
    _write(datasets.DatasetDict(train=dd["train"]), "parquet", tmp_path / "p")
    with pytest.raises(ValueError, match=r"none for split\(s\) \['test'\]"):
        load_cifar10(str(tmp_path / "p"), val_size=VAL)


def test_cifar_error_label_out_of_range(fixture, tmp_path):
    bad = Fixture(fixture.train_u8, fixture.train_y.copy(), fixture.test_u8, fixture.test_y)
    bad.train_y[3] = 10
    dd = _dataset_dict(bad, label_feature=datasets.Value("int64"))
    with pytest.raises(ValueError, match=r"label 3 is 10; labels must be in 0..9"):
        load_cifar10(str(_write(dd, "save_to_disk", tmp_path / "d")), val_size=VAL)


def test_cifar_error_val_size_too_large(written):
    with pytest.raises(ValueError, match=r"val_size must be in \[1, 39\]"):
        load_cifar10(str(written["save_to_disk"]), val_size=N_TRAIN)


# -- the workload end to end -------------------------------------------------------------


def test_cifar_full_workload_end_to_end(written):
    import workloads.snn
    from harness.discovery import build_workload

    spec = dataclasses.replace(
        workloads.snn.SPECS["full"],
        data_path=str(written["parquet"]),
        val_size=VAL,
        eval_samples=8,
        eval_batch=4,
    )
    workload = build_workload(spec, torch.device("cpu"), eval_seed=0)
    assert workload.splits.x["train"].shape == (N_TRAIN - VAL, 3, 32, 32)
    model = workload.init_model(torch.Generator().manual_seed(0))
    batch = next(iter(workload.train_streams(4, torch.Generator().manual_seed(0))["train"]))
    assert batch.x.shape == (4, 3, 32, 32) and batch.y.shape == (4,)
    loss = workload.loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    result = workload.evaluate(model, "validation")
    assert 0.0 <= result["accuracy"] <= 1.0 and result["examples"] == 8.0
