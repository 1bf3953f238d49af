"""The contracts between the harness, workloads and submissions.

A workload is a package under ``workloads/<name>/`` whose ``__init__.py`` exposes

    SPECS: dict[str, WorkloadSpec]     # one per variant: "smoke", "default", "full"
    WORKLOAD: type[Workload]           # built as WORKLOAD(spec, device, eval_seed=None)
    REFERENCE_OPS: dict[str, ReferenceOp]   # optional: ops a submission kernel may replace

A submission is a folder under ``submissions/<name>/`` with ``submission.py`` (plain functions,
see ``harness.discovery.REQUIRED_FUNCTIONS``), ``search_space.json`` and ``README.md``; an
optional ``kernels/__init__.py`` exposes ``KERNELS: list[Kernel]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

Direction = Literal["min", "max"]


class TrainingComplete(Exception):
    """Raised by a submission's ``update`` to end the run after one final evaluation."""


class ContractError(Exception):
    """A workload or submission does not follow the contract; the message says what to fix."""


@dataclass(frozen=True)
class Guard:
    """Another metric that must also hold for the target to count, e.g. an accuracy floor."""

    metric: str
    op: Literal[">=", "<="]
    value: float

    def holds(self, metrics: Mapping[str, float]) -> bool:
        x = metrics.get(self.metric, math.nan)
        return bool(x >= self.value) if self.op == ">=" else bool(x <= self.value)


@dataclass(frozen=True)
class WorkloadSpec:
    """Everything that fixes a workload variant: data, target, budget, schedule.

    Workloads subclass this with their own fields; variants are made with
    ``dataclasses.replace`` so every number lives in one place.
    """

    name: str
    variant: str
    metric: str  # key of the evaluator's result that is compared with ``target``
    direction: Direction  # "min": lower is better
    target: float  # on the validation split
    budget_s: Mapping[str, float]  # training-time budget per device kind: {"cpu": .., "gpu": ..}
    eval_every_s: float  # evaluate every this many seconds of training time
    step_hint: int  # steps a typical baseline takes to reach the target (for schedules)
    eval_samples: int  # evaluation examples (or the cap on them) per evaluation
    data: str  # where the data comes from, in words
    guards: tuple[Guard, ...] = ()
    test_target: float | None = None  # the same target on the test split, for analysis
    calibration: str = ""  # how target and budget were set
    # the batch size ``step_hint`` was measured at: what a generic method (one that reads no
    # workload-specific field) uses, so it never special-cases a workload by name
    batch_size_hint: int = 128

    def meets_target(self, metrics: Mapping[str, float]) -> bool:
        """True when the primary metric reaches the target and every guard holds."""
        x = metrics.get(self.metric, math.nan)
        if not math.isfinite(x):
            return False
        ok = x <= self.target if self.direction == "min" else x >= self.target
        return bool(ok) and all(g.holds(metrics) for g in self.guards)

    def budget_for(self, device_kind: str) -> float:
        try:
            return float(self.budget_s[device_kind])
        except KeyError:
            raise ContractError(
                f"{self.name}/{self.variant} has no budget for device kind {device_kind!r}; "
                f"it has {sorted(self.budget_s)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["budget_s"] = dict(self.budget_s)
        return d


class Workload:
    """Base class of a workload instance: spec, device, model, data, loss and evaluator.

    Subclasses implement the methods below. ``evaluate`` is called by the harness only,
    untimed; submissions never see validation or test data.
    """

    def __init__(self, spec: WorkloadSpec, device: torch.device, eval_seed: int | None = None):
        self.spec = spec
        self.device = device
        # the seed the evaluation splits are built from, held by the referee (harness.evalseed);
        # None: a training-only instance, whose evaluation splits cannot be built
        self.eval_seed = eval_seed

    def require_eval_seed(self, split: str) -> int:
        """The evaluation seed, or a ``ContractError`` on a training-only instance."""
        if self.eval_seed is None:
            raise ContractError(
                f"{self.spec.name}: a training-only instance (no eval_seed) cannot build the "
                f"{split!r} split; evaluation data is built only by the harness, from the "
                "evaluation seed it holds"
            )
        return int(self.eval_seed)

    # -- model --------------------------------------------------------------------------
    def init_model(self, rng: torch.Generator) -> torch.nn.Module:
        raise NotImplementedError

    # -- training data ------------------------------------------------------------------
    def train_streams(self, batch_size: int, rng: torch.Generator) -> Mapping[str, Iterator]:
        """Named training-batch iterators; ``"train"`` is the one the runner uses by default."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The workload's default training loss (a scalar tensor)."""
        raise NotImplementedError

    def training_loss(self, model: torch.nn.Module, batch: Any, step: int) -> torch.Tensor:
        """The objective a generic method trains at optimizer step ``step`` (from 0).

        ``loss`` for most workloads. A workload whose standard objective follows a fixed
        schedule overrides it (certification ramps eps over the first part of ``step_hint``), so
        that generic optimizers can be compared on it without knowing the workload."""
        return self.loss(model, batch)

    # -- evaluation (harness only) ------------------------------------------------------
    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        """Metrics on ``split`` ("validation" or "test") with the workload's reference code."""
        raise NotImplementedError

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass(frozen=True)
class ReferenceOp:
    """A workload operation that a submission kernel may replace, with its parity test.

    ``make_inputs(generator, dtype, device)`` returns positional arguments for ``fn``; inputs
    that require grad are checked for gradient parity too.
    """

    fn: Callable[..., torch.Tensor]
    make_inputs: Callable[[torch.Generator, torch.dtype, torch.device], tuple]
    tolerances: Mapping[torch.dtype, tuple[float, float]] = field(
        default_factory=lambda: {torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10)}
    )  # dtype -> (rtol, atol)
    description: str = ""
    # maps (output, inputs) to the part that must match, e.g. drops padding slots; the
    # gradient check backpropagates through the same selection
    compare: Callable[[torch.Tensor, tuple], torch.Tensor] | None = None


def split_seed(eval_seed: int, *parts: object, bits: int = 31) -> int:
    """A seed below ``2**bits`` for one part of an evaluation split (``split_seed(seed,
    "validation", 3)``), derived from the referee's evaluation seed by SHA-256."""
    key = ":".join(str(p) for p in (eval_seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % 2**bits


def _always(device: torch.device) -> bool:
    return True


@dataclass(frozen=True)
class Kernel:
    """A submission's fast path for one workload reference op (``"<workload>.<op>"``)."""

    name: str
    replaces: str
    fn: Callable[..., torch.Tensor]
    available: Callable[[torch.device], bool] = _always  # can it run on this device now?
    description: str = ""


def seeded_build(factory: Callable[[], torch.nn.Module], rng: torch.Generator, device):
    """``factory()`` with torch's global generator seeded from ``rng`` (one draw) inside
    ``fork_rng``, so a workload's ``init_model`` depends on ``rng`` alone and leaves the global
    generator as it was; then moved to ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))
        model = factory()
    return model.to(device)


def reference_copy(fresh: torch.nn.Module, model: torch.nn.Module, workload: str):
    """``fresh`` (the workload's own network class, on the right device) with ``model``'s
    parameters and buffers, in eval mode: what a workload's evaluator scores, so a submission's
    model class never runs in evaluation. A model whose parameter names or shapes differ is a
    ``ContractError`` naming the workload."""
    try:
        fresh.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as e:
        raise ContractError(
            f"the {workload} model must keep the workload's architecture and parameter names: {e}"
        ) from None
    return fresh.eval()


def triton_available(device: torch.device, module: str) -> bool:
    """Can the Triton kernels of ``module`` (a kernel package's submodule, imported lazily) run
    on ``device``? On CUDA whenever triton imports; on a CPU only under ``TRITON_INTERPRET=1``.

    Triton picks compile or interpret when ``@triton.jit`` runs, i.e. when ``module`` is first
    imported; once it is, its ``INTERPRETED`` flag decides whatever the environment says now.
    Use as ``Kernel(available=functools.partial(triton_available, module=...))``.
    """
    try:
        import triton  # noqa: F401  (importing triton does not decorate anyone's kernels)
    except ImportError:
        return False
    if torch.device(device).type == "cuda":
        return True
    loaded = sys.modules.get(module)
    if loaded is not None:
        return bool(loaded.INTERPRETED)
    return os.environ.get("TRITON_INTERPRET") == "1"
