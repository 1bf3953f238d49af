"""TinyImageNet for the certification workload, through Hugging Face ``datasets``.

Source: the hub dataset ``zh-plus/tiny-imagenet`` (``path=None``) or a local copy. What was
checked about the hub dataset (its file tree at commit b427d14, its dataset viewer, and its commit
7d7dcc5 "Upload dataset_infos.json"): data files

    data/train-00000-of-00001-1359597a978bc4fa.parquet  (146 MB)
    data/valid-00000-of-00001-70d52db3c749a935.parquet  (14.6 MB)

splits ``train`` (100,000 rows) and ``valid`` (10,000 rows), no labelled test split; features
``image`` (``Image``, 64x64 pixels) and ``label`` (``ClassLabel`` with ``num_classes`` 200 whose
names are WordNet ids, the first being ``n01443537``). The config is named "Maysee--tiny-imagenet",
after the dataset it was copied from; the previous version of that file records ``builder_name``
"imagefolder". The viewer shows training row 0 as label 0, ``n01443537``.

Not verified: the hub's complete list of 200 names in order (only its beginning could be read).
``datasets``' ImageFolder builder names the classes ``sorted(folder names)``, and the hub's first
name, n01443537, is the smallest wnid, so the canonical order here is the sorted wnids; the
hub's ``ClassLabel`` is remapped by name anyway, so a different hub order would still load
correctly (only labels without names rely on the canonical order). ``TINYIMAGENET_WNIDS`` holds
the 200 wnids of the original ``tiny-imagenet-200.zip`` (Stanford CS231n), sorted; the list was
taken from two independent public code files that list the sorted classes of that archive and
agree exactly, and it equals, as a set, a published copy of the archive's ``wnids.txt`` (GitHub
rangeetpan/IMagenet, ``tiny-imagenet-200/wnids.txt``, less two lines appended at its end). The
order of ``wnids.txt`` itself (n02124075, n04067472, ...) is not the hub's and is not used.

Local layouts accepted by ``load_tinyimagenet(path)``:

(a) a ``DatasetDict.save_to_disk`` directory (it holds ``dataset_dict.json``) with splits
    ``train`` and ``valid`` (or ``val``);
(b) parquet files in the hub layout: ``data/train-*.parquet`` and ``data/valid-*.parquet`` (in
    any folder; ``val-*.parquet``, ``train/*.parquet`` and ``valid/*.parquet`` also work), e.g. a
    copy of the hub repository;
(c) an ImageFolder tree ``train/<wnid>/*.JPEG`` and ``valid/<wnid>/*.JPEG`` (or ``val/<wnid>/``);
(d) the original archive unpacked: ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` with
    ``val/val_annotations.txt`` (lines ``<file name> <wnid> <box>``); its unlabelled ``test/``
    folder, ``wnids.txt`` and ``words.txt`` are not read.

Columns ``image`` or ``img`` and ``label`` or ``labels``. Labels are checked by name: a
``ClassLabel`` must carry exactly the 200 wnids, in any order, and is remapped to the canonical
indices; other or missing names are an error. String labels and ImageFolder class folders are
mapped by name (unknown names are an error); plain integer labels are taken as canonical
indices, with a range check. Shared with CIFAR-10's loader: ``workloads._common.hf_images``.

Splits: ``test`` is the source's ``valid`` split (10,000 images, 50 per class); ``validation``
is a fixed seeded subset of ``val_size`` training images (``torch.randperm`` under ``seed``) and
``train`` the rest (90k/10k/10k by default), both kept in the source's order. Images are uint8
(N, 3, 64, 64) pixel levels (``levels`` 255; grayscale images, which TinyImageNet has some of,
become three equal channels; any image not 64x64 is an error), decoded in chunks of 10,000
straight into one array (1.2 GB for all 110,000 images, no float copy; splitting off the
validation images copies the training split once more). ``mean``/``std``: the exact per-channel
statistics of the returned training split in [0, 1] units (``data.channel_stats``). Nothing is
cached on disk: local parquet and ``save_to_disk`` sources are read through a temporary
``datasets`` cache that is deleted after conversion (the hub download uses the ordinary
``datasets`` cache).
"""

from __future__ import annotations

import torch

from workloads._common.hf_images import ImageSource, load_arrays, split_indices
from workloads.certification.data import ImageSplits, channel_stats

HUB_ID = "zh-plus/tiny-imagenet"
LEVELS = 255.0
IMAGE_SIZE = 64
TINYIMAGENET_WNIDS: tuple[str, ...] = tuple(
    """
    n01443537 n01629819 n01641577 n01644900 n01698640 n01742172 n01768244 n01770393 n01774384
    n01774750 n01784675 n01855672 n01882714 n01910747 n01917289 n01944390 n01945685 n01950731
    n01983481 n01984695 n02002724 n02056570 n02058221 n02074367 n02085620 n02094433 n02099601
    n02099712 n02106662 n02113799 n02123045 n02123394 n02124075 n02125311 n02129165 n02132136
    n02165456 n02190166 n02206856 n02226429 n02231487 n02233338 n02236044 n02268443 n02279972
    n02281406 n02321529 n02364673 n02395406 n02403003 n02410509 n02415577 n02423022 n02437312
    n02480495 n02481823 n02486410 n02504458 n02509815 n02666196 n02669723 n02699494 n02730930
    n02769748 n02788148 n02791270 n02793495 n02795169 n02802426 n02808440 n02814533 n02814860
    n02815834 n02823428 n02837789 n02841315 n02843684 n02883205 n02892201 n02906734 n02909870
    n02917067 n02927161 n02948072 n02950826 n02963159 n02977058 n02988304 n02999410 n03014705
    n03026506 n03042490 n03085013 n03089624 n03100240 n03126707 n03160309 n03179701 n03201208
    n03250847 n03255030 n03355925 n03388043 n03393912 n03400231 n03404251 n03424325 n03444034
    n03447447 n03544143 n03584254 n03599486 n03617480 n03637318 n03649909 n03662601 n03670208
    n03706229 n03733131 n03763968 n03770439 n03796401 n03804744 n03814639 n03837869 n03838899
    n03854065 n03891332 n03902125 n03930313 n03937543 n03970156 n03976657 n03977966 n03980874
    n03983396 n03992509 n04008634 n04023962 n04067472 n04070727 n04074963 n04099969 n04118538
    n04133789 n04146614 n04149813 n04179913 n04251144 n04254777 n04259630 n04265275 n04275548
    n04285008 n04311004 n04328186 n04356056 n04366367 n04371430 n04376876 n04398044 n04399382
    n04417672 n04456115 n04465501 n04486054 n04487081 n04501370 n04507155 n04532106 n04532670
    n04540053 n04560804 n04562935 n04596742 n04597913 n06596364 n07579787 n07583066 n07614500
    n07615774 n07695742 n07711569 n07715103 n07720875 n07734744 n07747607 n07749582 n07753592
    n07768694 n07871810 n07873807 n07875152 n07920052 n09193705 n09246464 n09256479 n09332890
    n09428293 n12267677
    """.split()
)  # canonical order: label i is TINYIMAGENET_WNIDS[i] (sorted, as the hub's ImageFolder build)

_LAYOUTS = (
    "expected one of: a DatasetDict.save_to_disk directory (with dataset_dict.json) with splits "
    "'train' and 'valid' (or 'val'); parquet files in the hub layout (data/train-*.parquet and "
    "data/valid-*.parquet); an ImageFolder tree train/<wnid>/*.JPEG and valid/<wnid>/*.JPEG (or "
    "val/<wnid>/*.JPEG); the unpacked tiny-imagenet-200 archive (train/<wnid>/images/*.JPEG, "
    "val/images/*.JPEG and val/val_annotations.txt)"
)
SOURCE = ImageSource(
    name="TinyImageNet",
    hub_id=HUB_ID,
    classes=TINYIMAGENET_WNIDS,
    size=IMAGE_SIZE,
    splits=(("train",), ("valid", "val")),
    layouts=_LAYOUTS,
    annotations="val_annotations.txt",
)


def load_tinyimagenet(path: str | None, *, val_size: int = 10_000, seed: int = 0) -> ImageSplits:
    """TinyImageNet as ``ImageSplits``: train / validation / test, 200 classes, uint8
    (N, 3, 64, 64) with ``levels`` 255; see the module doc."""
    arrays = load_arrays(SOURCE, path, channels_first=True)
    x_source, y_source = arrays.pop("train")
    train, validation = split_indices(len(y_source), val_size, seed)
    xs = {"train": x_source[train], "validation": x_source[validation]}
    ys = {"train": y_source[train], "validation": y_source[validation]}
    del x_source  # the two copies above replace it
    xs["test"], ys["test"] = arrays.pop("valid")
    mean, std = channel_stats(xs["train"], LEVELS)
    return ImageSplits(
        {split: torch.from_numpy(x) for split, x in xs.items()},
        {split: torch.from_numpy(y) for split, y in ys.items()},
        classes=len(TINYIMAGENET_WNIDS),
        levels=LEVELS,
        mean=mean,
        std=std,
    )


__all__ = ["load_tinyimagenet", "TINYIMAGENET_WNIDS", "HUB_ID"]
