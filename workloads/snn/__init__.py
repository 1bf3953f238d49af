"""Workload ``snn``: train a spiking network classifier; gradient estimators are the methods.

Facts and sources: docs/workloads.md#snn, docs/methods.md#snn; this folder's README.md says how
the targets were calibrated. Fixed here: the LIF neuron with soft reset and sigmoid surrogate
(``neuron.py``), the networks (``model.py``), the data and splits (``data.py``, ``cifar.py``) and
the evaluator (accuracy of the argmax of the time-averaged readout, on a fresh reference network
loaded with the submission's parameters). Methods choose how to differentiate the network
(BPTT, OTTT, SLTT, ...), the loss, the optimizer and the schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api import (
    ContractError,
    ReferenceOp,
    Workload,
    WorkloadSpec,
    reference_copy,
    seeded_build,
)
from workloads.snn import data as snn_data
from workloads.snn.model import Arch, SpikingNet, mean_readout
from workloads.snn.neuron import lif_multistep

SEQUENCE_LENGTH = {"mnist1d": 40}  # sequential datasets: one position per time step


@dataclass(frozen=True)
class SnnSpec(WorkloadSpec):
    dataset: str = "mnist1d"  # "mnist1d", "digits" or "cifar10"
    arch: str = "rsnn"  # "rsnn" (recurrent, sequential input), "mlp", "vgg11"
    time_steps: int = 40
    hidden: tuple[int, ...] = (128, 128)
    readout_lam: float = 0.5  # leaky readout o[t] = lam_o o[t-1] + W z[t]; 0: plain linear
    num_samples: int = 10_000  # mnist1d: samples generated (train + validation + test)
    data_seed: int = 42  # mnist1d generator seed / digits split seed
    data_path: str = ""  # cifar10: a local dataset path; "" loads from the hub
    val_size: int = 5000  # cifar10: training images held out (seeded) as the validation split
    eval_batch: int = 1000


DEFAULT = SnnSpec(
    name="snn",
    variant="default",
    metric="accuracy",
    direction="max",
    target=0.95,
    budget_s={"cpu": 110.0, "gpu": 60.0},  # gpu: provisional, not yet measured
    eval_every_s=10.0,
    step_hint=2550,  # the steps the cpu budget allows at bptt_surrogate's speed
    batch_size_hint=128,
    eval_samples=1000,
    data="generated: MNIST-1D (mnist1d.make_dataset, seed 42), 8,000/1,000/1,000 sequences",
    calibration=(
        "2026-11-23, cpu-2core: bptt_surrogate tuned over lr (1e-3, 3e-3, 1e-2, 3e-2; lr 1e-2 "
        "best), then 3 seeds x 2,250 steps: best validation accuracy 0.966, 0.963, 0.964 "
        "(median 0.964); target = median rounded down to 0.01, less 0.01 for evaluation noise "
        "(binomial s.e. 0.6% at 1,000 examples) = 0.95, first reached at 1,500 steps in every "
        "seed (72, 74, 82 s of training); budget = 4/3 x 82 s, rounded up to 120 s. "
        "Re-checked 2026-12-02 with the other workloads (issue 9): bptt_surrogate reached it "
        "at 90.4, 70.3, 80.3 s (seeds 0-2), adamw at its defaults peaked at 0.837; budget kept "
        "(4/3 x 90.4 s). Details: workloads/snn/README.md."
        " Re-set 2026-12-05 under the bench's protocol (issue 19: 10 seeds at the defaults, 1.5x"
        " budget, one pinned core of cpu-2core, class cpu-1core): budget = the 9th of 10 times"
        " to target (77.5 s) / 0.75, rounded up to 10 s = 110 s; step_hint = the steps 110 s"
        " allows at bptt_surrogate's median speed = 2,550 (methods' horizon_factor rescaled so"
        " their schedules keep their steps)."
    ),
)

SPECS: dict[str, SnnSpec] = {
    "default": DEFAULT,
    "smoke": dataclasses.replace(
        DEFAULT,
        variant="smoke",
        dataset="digits",
        arch="mlp",
        time_steps=8,
        hidden=(32,),
        target=0.5,
        budget_s={"cpu": 4.0, "gpu": 4.0},
        eval_every_s=1.0,
        step_hint=50,
        batch_size_hint=64,
        eval_samples=300,
        data="scikit-learn's bundled 8x8 digits, 1,197/300/300 images, direct encoding",
        calibration="loose on purpose: exercises the code path in seconds, not a result",
    ),
    "full": dataclasses.replace(
        DEFAULT,
        variant="full",
        dataset="cifar10",
        arch="vgg11",
        time_steps=6,
        hidden=(),
        readout_lam=0.0,
        target=0.90,
        budget_s={"cpu": 360_000.0, "gpu": 36_000.0},
        eval_every_s=600.0,
        step_hint=117_000,  # 300 epochs of 390 steps at batch 128 (OTTT's recipe)
        batch_size_hint=128,
        eval_samples=5000,
        eval_batch=250,
        data="CIFAR-10 (uoft-cs/cifar10 through datasets, or a local path), 45k/5k/10k",
        calibration="provisional: OTTT reports about 93% with VGG-11 at T = 6 (arXiv 2210.04195); "
        "target set below it, budget not yet measured on a GPU",
    ),
}


@dataclass
class SnnBatch:
    x: torch.Tensor  # (B, T) sequences or (B, ...) static inputs
    y: torch.Tensor  # (B,) class indices


def load_splits(spec: SnnSpec) -> snn_data.Splits:
    if spec.dataset == "mnist1d":
        return snn_data.mnist1d(spec.num_samples, spec.data_seed, 0.1, 0.1)
    if spec.dataset == "digits":
        return snn_data.digits(spec.data_seed)
    if spec.dataset == "cifar10":
        from workloads.snn.cifar import load_cifar10

        return load_cifar10(spec.data_path or None, val_size=spec.val_size)
    raise ContractError(f"unknown snn dataset {spec.dataset!r}; expected mnist1d, digits, cifar10")


def arch_of(spec: SnnSpec, splits: snn_data.Splits) -> Arch:
    x = splits.x["train"]
    if spec.time_steps < 1:
        raise ContractError(f"snn/{spec.variant}: time_steps must be >= 1; got {spec.time_steps}")
    length = SEQUENCE_LENGTH.get(spec.dataset)
    if spec.arch == "rsnn":
        if length is None:
            raise ContractError(
                f"the recurrent network needs a sequential dataset, not {spec.dataset}"
            )
        if spec.time_steps != length:
            raise ContractError(
                f"snn/{spec.variant}: {spec.dataset} sequences have {length} positions, one per "
                f"time step, so T must be {length}; got T={spec.time_steps}"
            )
        in_features = 1
    elif spec.arch == "vgg11":
        in_features = x.shape[1]
    else:
        in_features = x[0].numel()
    return Arch(
        spec.arch,
        in_features,
        tuple(spec.hidden),
        splits.classes,
        spec.time_steps,
        spec.readout_lam,
    )


class SnnWorkload(Workload):
    spec: SnnSpec

    def __init__(self, spec: SnnSpec, device: torch.device, eval_seed: int | None = None):
        super().__init__(spec, device, eval_seed)
        self.splits = load_splits(spec)
        self.arch = arch_of(spec, self.splits)
        self.time_steps = spec.time_steps
        self.num_classes = self.splits.classes
        self._train_x = self.splits.x["train"].to(device)
        self._train_y = self.splits.y["train"].to(device)
        self.num_train = len(self._train_y)
        self._eval_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- model ---------------------------------------------------------------------------
    def init_model(self, rng: torch.Generator) -> SpikingNet:
        return seeded_build(lambda: SpikingNet(self.arch), rng, self.device)

    # -- training data -------------------------------------------------------------------
    def train_streams(self, batch_size: int, rng: torch.Generator) -> Mapping[str, Iterator]:
        """``"train"``: shuffled epochs of training examples (the last partial batch dropped)."""

        def stream() -> Iterator[SnnBatch]:
            n = self.num_train
            if batch_size < 1 or batch_size > n:
                raise ContractError(f"batch size must be in [1, {n}]; got {batch_size}")
            while True:
                perm = torch.randperm(n, generator=rng, device=rng.device).to(self.device)
                for i in range(0, n - batch_size + 1, batch_size):
                    idx = perm[i : i + batch_size]
                    yield SnnBatch(self._train_x[idx], self._train_y[idx])

        return {"train": stream()}

    def loss(self, model: SpikingNet, batch: SnnBatch) -> torch.Tensor:
        """Cross-entropy of the time-averaged readout (what the evaluator scores)."""
        return F.cross_entropy(mean_readout(model(batch.x)), batch.y)

    # -- evaluation (harness only) -------------------------------------------------------
    def reference_network(self, model: torch.nn.Module) -> SpikingNet:
        """A fresh reference network with ``model``'s parameters: what is scored."""
        return reference_copy(SpikingNet(self.arch).to(self.device), model, "snn")

    def evaluation_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of ``split``, built from the harness's evaluation seed (never from the public
        ``data_seed`` alone): MNIST-1D's held-out sequences are generated from it, the digits'
        held-out images are assigned to validation and test by it. CIFAR-10's split is the
        dataset's own (a public data set; docs/reliability.md#evaluation-data says the limit)."""
        seed = self.require_eval_seed(split)
        if split not in ("validation", "test"):
            raise ContractError(f"unknown split {split!r}; known: validation, test")
        if split not in self._eval_cache:
            self._eval_cache[split] = snn_data.evaluation_split(self.spec, self.splits, split, seed)
        return self._eval_cache[split]

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        x, y = self.evaluation_split(split)
        ref = self.reference_network(model)
        n = min(len(y), self.spec.eval_samples)
        correct, loss_sum = 0, 0.0
        with torch.inference_mode():
            for i in range(0, n, self.spec.eval_batch):
                xb = x[i : min(n, i + self.spec.eval_batch)].to(self.device)
                yb = y[i : min(n, i + self.spec.eval_batch)].to(self.device)
                logits = mean_readout(ref(xb))
                correct += int((logits.argmax(1) == yb).sum())
                loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        return {"accuracy": correct / n, "loss": loss_sum / n, "examples": float(n)}


WORKLOAD = SnnWorkload


def _lif_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    """Currents (T, B, N) around the threshold: many spikes, many surrogate gradients."""
    current = torch.randn(7, 5, 33, generator=g, dtype=dtype, device=device) * 0.8 + 0.6
    return (current.requires_grad_(),)


REFERENCE_OPS = {
    "lif_multistep": ReferenceOp(
        fn=lif_multistep,
        make_inputs=_lif_inputs,
        tolerances={torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10)},
        description="LIF (tau 2, theta 1, soft reset, sigmoid surrogate alpha 4) over T steps "
        "from rest: currents (T, ...) -> spikes (T, ...), BPTT gradient",
    ),
}
