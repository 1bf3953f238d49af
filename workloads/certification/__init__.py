"""Workload ``certification``: certified training; the score is sound certified accuracy.

Facts and sources: docs/workloads.md#certification, docs/methods.md#certification; this folder's
README.md says
how targets and budgets were calibrated. Fixed here: the data and splits (``data.py``,
``tinyimagenet.py``), the networks (``model.py``: CNN7 with batch norm and its scaled-down
versions, split into ``features`` and ``head``), eps, and the evaluator: interval bound
propagation in float64 on a fresh reference network (``bounds.certify``) over every evaluation
image, natural accuracy as a guard, PGD accuracy (``attacks.pgd``) reported for analysis only.
Methods choose the training loss (IBP, short-warmup IBP, TAPS, ...), the eps schedule, the
initialization, the optimizer and the schedule; their bounds may be unsound (TAPS), only the
evaluator's count.

Building blocks for methods: ``bounds.ibp`` (clean logits and margin lower bounds in one pass,
batch norm on clean statistics, optional per-layer bounds), ``bounds.propagate`` /
``interval_layer`` (any slice of layers, e.g. ``model.features``), ``bounds.robust_loss``,
``attacks.pgd``, ``schedules`` (eps ramps) and ``regularizers`` (Fast-IBP's init and warmup
regularizers). ``workload.eps`` is the eps to certify at.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api import (
    ContractError,
    Guard,
    ReferenceOp,
    Workload,
    WorkloadSpec,
    reference_copy,
    seeded_build,
    split_seed,
)
from workloads._common.heldout import reassigned_split
from workloads.certification import attacks, bounds
from workloads.certification import data as cert_data
from workloads.certification.model import Arch, CertNet
from workloads.certification.schedules import linear_eps


@dataclass(frozen=True)
class CertSpec(WorkloadSpec):
    dataset: str = "digits"  # "digits" or "tinyimagenet"
    eps: float = 0.2  # l_inf radius in [0, 1] pixel space
    convs: tuple[tuple[int, int], ...] = ((16, 1), (16, 1), (32, 2), (32, 1), (32, 2))
    linear: int = 128
    train_subset: int = 0  # > 0: keep only the first this many training images (smoke)
    augment: bool = False  # random horizontal flip and 4-pixel-padded random crop
    data_seed: int = 0  # digits split seed
    data_path: str = ""  # tinyimagenet: a local dataset path; "" loads from the hub
    val_size: int = 10_000  # tinyimagenet: training images held out as the validation split
    eval_batch: int = 500
    pgd_steps: int = 50  # the reported PGD accuracy (analysis only)
    pgd_restarts: int = 1
    # ``training_loss``, the objective generic methods train: IBP's recipe at submissions/ibp's
    # calibrated defaults. Natural CE until ramp_start, then eps ramps linearly to ``eps`` over
    # ramp_length (both fractions of step_hint), with the loss mixing of ``bounds.mixed_loss``.
    ramp_start: float = 0.02
    ramp_length: float = 0.4
    kappa_final: float = 0.5


DEFAULT = CertSpec(
    name="certification",
    variant="default",
    metric="certified_accuracy",
    direction="max",
    target=0.68,
    guards=(Guard("accuracy", ">=", 0.85),),
    budget_s={"cpu": 80.0, "gpu": 35.0},  # gpu: provisional, not yet measured
    eval_every_s=5.0,
    step_hint=2600,  # the steps the cpu budget allows at ibp's speed
    batch_size_hint=128,
    eval_samples=300,
    data="scikit-learn's bundled 8x8 digits, 1,197/300/300 images, pixels in [0, 1], eps 0.2",
    calibration=(
        "2026-11-23, cpu-2core: ibp tuned over lr (1e-3, 2e-3, 4e-3) x ramp length (0.2, 0.4 "
        "of 2,000 steps; lr 4e-3, 0.4 best; 0.2 collapsed at lr 1e-3 and 2e-3), then 3 seeds x "
        "2,500 steps: best certified accuracy 0.747, 0.700, 0.703 (median 0.703); target = "
        "median rounded down to 0.01, less 0.02 for evaluation noise (binomial s.e. 0.026 at "
        "300 images) = 0.68, first reached at 32.8, 45.3, 49.0 s of training; budget = 4/3 x "
        "49.0 s, rounded up to 70 s; guard natural accuracy >= 0.85 (tuned ibp: 0.94-0.95). "
        "Re-checked 2026-12-02 with the other workloads (issue 9): ibp reached it at 35.1, "
        "30.1, 45.2 s (seeds 0-2), adamw at its defaults collapsed (0.07) and at lr 4e-3 "
        "peaked at 0.663; budget = 4/3 x 45.2 s = 60 s. Details: "
        "workloads/certification/README.md."
        " Re-set 2026-12-05 under the bench's protocol (issue 19: 10 seeds at the defaults, 1.5x"
        " budget, one pinned core of cpu-2core, class cpu-1core): budget = the 9th of 10 times"
        " to target (58.9 s) / 0.75, rounded up to 10 s = 80 s; step_hint = the steps 80 s"
        " allows at ibp's median speed = 2,600 (methods' horizon_factor rescaled so their"
        " schedules keep their steps)."
    ),
)

SPECS: dict[str, CertSpec] = {
    "default": DEFAULT,
    "smoke": dataclasses.replace(
        DEFAULT,
        variant="smoke",
        eps=0.1,
        convs=((4, 1), (8, 2)),
        linear=16,
        train_subset=256,
        target=0.1,
        guards=(Guard("accuracy", ">=", 0.2),),
        budget_s={"cpu": 4.0, "gpu": 4.0},
        eval_every_s=1.0,
        step_hint=400,
        batch_size_hint=64,
        eval_samples=100,
        pgd_steps=10,
        data="256 of scikit-learn's 8x8 digits for training, 100 for validation",
        calibration="loose on purpose: exercises the code path in seconds, not a result",
    ),
    "full": dataclasses.replace(
        DEFAULT,
        variant="full",
        dataset="tinyimagenet",
        eps=1 / 255,
        convs=((64, 1), (64, 1), (128, 2), (128, 1), (128, 2)),
        linear=512,
        augment=True,
        target=0.15,
        guards=(Guard("accuracy", ">=", 0.2),),
        budget_s={"cpu": 3_600_000.0, "gpu": 72_000.0},
        eval_every_s=1800.0,
        step_hint=62_500,  # 80 epochs of 781 steps at batch 128 (Fast-IBP's and TAPS's recipe)
        batch_size_hint=128,
        eval_samples=10_000,
        eval_batch=200,
        pgd_steps=50,
        data="TinyImageNet (zh-plus/tiny-imagenet through datasets, or a local path), "
        "90k/10k/10k, 64x64",
        calibration="provisional: Fast-IBP (short warmup) reports 82.36% verified error, i.e. "
        "17.64% certified, with CNN7 at eps 1/255 in 80 epochs (abstract of arXiv 2103.17268); "
        "TAPS 22% certified (abstract of arXiv 2305.04574, certified with MN-BaB, not IBP); "
        "target set below the IBP-certified figure, budget not yet measured on a GPU",
    ),
}


@dataclass
class CertBatch:
    x: torch.Tensor  # (B, C, H, W) float32 pixels in [0, 1]
    y: torch.Tensor  # (B,) class indices


def load_splits(spec: CertSpec) -> cert_data.ImageSplits:
    if spec.dataset == "digits":
        s = cert_data.digits(spec.data_seed)
    elif spec.dataset == "tinyimagenet":
        from workloads.certification.tinyimagenet import load_tinyimagenet

        s = load_tinyimagenet(spec.data_path or None, val_size=spec.val_size)
    else:
        raise ContractError(
            f"unknown certification dataset {spec.dataset!r}; expected digits, tinyimagenet"
        )
    if spec.train_subset > 0:
        x = dict(s.x, train=s.x["train"][: spec.train_subset])
        y = dict(s.y, train=s.y["train"][: spec.train_subset])
        s = dataclasses.replace(s, x=x, y=y)
    return s


def check_spec(spec: CertSpec) -> None:
    if not (isinstance(spec.eps, (int, float)) and math.isfinite(spec.eps) and spec.eps >= 0):
        raise ContractError(f"{spec.name}/{spec.variant}: eps must be finite and >= 0")
    if not spec.convs:
        raise ContractError(f"{spec.name}/{spec.variant}: the network needs at least one conv")


def augment(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flip and random crop from a zero-padded image (per example)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=g, device=g.device).to(x.device) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(x.device)
    rows = (dy.view(-1, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(-1, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    idx_n = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    idx_c = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[idx_n, idx_c, rows, cols]


class CertificationWorkload(Workload):
    spec: CertSpec

    def __init__(self, spec: CertSpec, device: torch.device, eval_seed: int | None = None):
        super().__init__(spec, device, eval_seed)
        check_spec(spec)
        self.splits = load_splits(spec)
        self.eps = float(spec.eps)
        self.num_classes = self.splits.classes
        self.levels = self.splits.levels
        x = self.splits.x["train"]
        self.arch = Arch(
            in_channels=x.shape[1],
            image_size=x.shape[2],
            classes=self.splits.classes,
            convs=tuple(tuple(c) for c in spec.convs),
            linear=spec.linear,
            mean=self.splits.mean,
            std=self.splits.std,
        )
        self._train_x = x.to(device)
        self._train_y = self.splits.y["train"].to(device)
        self.num_train = len(self._train_y)

    def pixels(self, u8: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        return u8.to(dtype) / self.levels

    # -- model ---------------------------------------------------------------------------
    def init_model(self, rng: torch.Generator) -> CertNet:
        return seeded_build(lambda: CertNet(self.arch), rng, self.device)

    # -- training data -------------------------------------------------------------------
    def train_streams(self, batch_size: int, rng: torch.Generator) -> Mapping[str, Iterator]:
        """``"train"``: shuffled epochs of training images in [0, 1] (last partial batch
        dropped), flipped and cropped if the variant augments."""

        def stream() -> Iterator[CertBatch]:
            n = self.num_train
            if batch_size < 1 or batch_size > n:
                raise ContractError(f"batch size must be in [1, {n}]; got {batch_size}")
            while True:
                perm = torch.randperm(n, generator=rng, device=rng.device).to(self.device)
                for i in range(0, n - batch_size + 1, batch_size):
                    idx = perm[i : i + batch_size]
                    x = self.pixels(self._train_x[idx])
                    if self.spec.augment:
                        x = augment(x, rng)
                    yield CertBatch(x, self._train_y[idx])

        return {"train": stream()}

    def loss(self, model: CertNet, batch: CertBatch) -> torch.Tensor:
        """Natural cross-entropy (standard training; certified methods bring their own)."""
        return F.cross_entropy(model(batch.x), batch.y)

    def training_eps(self, step: int) -> float:
        """The eps of ``training_loss`` at optimizer step ``step``."""
        hint = self.spec.step_hint
        start = int(self.spec.ramp_start * hint)
        return linear_eps(step, start, max(1, int(self.spec.ramp_length * hint)), self.eps)

    def training_loss(self, model: CertNet, batch: CertBatch, step: int) -> torch.Tensor:
        """What a generic optimizer trains: IBP certified training with the workload's fixed
        eps ramp (natural cross-entropy alone would never certify anything)."""
        eps = self.training_eps(step)
        return bounds.mixed_loss(model, batch.x, batch.y, eps, self.eps, self.spec.kappa_final)

    # -- evaluation (harness only) -------------------------------------------------------
    def reference_network(self, model: torch.nn.Module) -> CertNet:
        """A fresh reference network with ``model``'s parameters and statistics, eval mode."""
        return reference_copy(CertNet(self.arch).to(self.device), model, "certification")

    def evaluation_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images, labels) of ``split``: for digits, the fixed held-out images assigned to
        validation and test by the harness's evaluation seed (the images themselves are a
        public data set); for tinyimagenet, the loader's split (docs/reliability.md)."""
        seed = self.require_eval_seed(split)
        if split not in ("validation", "test"):
            raise ContractError(f"unknown split {split!r}; known: validation, test")
        s = self.splits
        if self.spec.dataset != "digits":
            return s.x[split], s.y[split]
        return reassigned_split(s.x, s.y, split, split_seed(seed, "certification-digits"))

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        """Certified accuracy (float64 IBP at eps), natural accuracy and loss, PGD accuracy."""
        x_all, y_all = self.evaluation_split(split)
        ref = self.reference_network(model)
        ref64 = bounds.float64_copy(ref)
        n = min(len(y_all), self.spec.eval_samples)
        g = torch.Generator(device=self.device).manual_seed(2**31 + 7)
        correct = cert = robust = 0
        loss_sum = 0.0
        for i in range(0, n, self.spec.eval_batch):
            u8 = x_all[i : min(n, i + self.spec.eval_batch)].to(self.device)
            y = y_all[i : min(n, i + self.spec.eval_batch)].to(self.device)
            x = self.pixels(u8)
            with torch.inference_mode():
                logits = ref(x)
            ok = logits.argmax(1) == y
            correct += int(ok.sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            is_cert, _ = bounds.certify(ref64, self.pixels(u8, torch.float64), y, self.eps)
            is_cert = is_cert & ok  # (implied by a positive margin; kept explicit)
            cert += int(is_cert.sum())
            # PGD only where it can matter: correct points that are not certified
            todo = (ok & ~is_cert).nonzero().squeeze(1)
            survived = 0
            if todo.numel() and self.spec.pgd_steps > 0:
                _, fooled = attacks.pgd(
                    ref,
                    x[todo],
                    y[todo],
                    self.eps,
                    steps=self.spec.pgd_steps,
                    restarts=self.spec.pgd_restarts,
                    generator=g,
                )
                survived = int((~fooled).sum())
            robust += int(is_cert.sum()) + survived
        return {
            "certified_accuracy": cert / n,
            "accuracy": correct / n,
            "pgd_accuracy": robust / n,
            "loss": loss_sum / n,
            "examples": float(n),
        }


WORKLOAD = CertificationWorkload


def _conv_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    mu = torch.randn(3, 5, 9, 9, generator=g, dtype=dtype, device=device)
    r = torch.rand(3, 5, 9, 9, generator=g, dtype=dtype, device=device) * 0.1
    w = torch.randn(7, 5, 3, 3, generator=g, dtype=dtype, device=device) * 0.3
    b = torch.randn(7, generator=g, dtype=dtype, device=device)
    return (mu.requires_grad_(), r.requires_grad_(), w.requires_grad_(), b.requires_grad_(), 2, 1)


def interval_conv2d(mu, r, weight, bias, stride: int, padding: int) -> torch.Tensor:
    """IBP through a conv: stack(W * mu + b, |W| * r)."""
    out_mu = F.conv2d(mu, weight, bias, stride=stride, padding=padding)
    out_r = F.conv2d(r, weight.abs(), None, stride=stride, padding=padding)
    return torch.stack((out_mu, out_r))


REFERENCE_OPS = {
    "interval_conv2d": ReferenceOp(
        fn=interval_conv2d,
        make_inputs=_conv_inputs,
        tolerances={torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10)},
        description="IBP through a 3x3 conv: (mu, r, W, b, stride, padding) -> "
        "stack(conv(mu, W) + b, conv(r, |W|))",
    ),
}
