"""Trial plans: which hyperparameters each trial of each study runs, fixed before any trial runs.

External tuning (AlgoPerf's rules): ``studies`` independent tunings of ``trials`` points each,
drawn from a randomised Halton sequence over ``search_space.json``. Per study the fastest trial to
target counts (see ``harness.scoring``), so the plan is generated and saved first and a re-run
reads it back instead of drawing again: the same seed must never give a different plan.

Each study uses its own Cranley-Patterson rotation (a seeded uniform shift modulo 1) of the Halton
points, so studies are independent randomised quasi-Monte Carlo designs that each keep Halton's
even coverage (Owen, "Monte Carlo theory, methods and examples", ch. 17).

Self-tuning: one trial per study with the search space's defaults and a larger budget
(``SELF_TUNING_BUDGET_MULTIPLIER``: 1.5x, where AlgoPerf triples it).

Paired design: a trial's run seed (init, data order, the update generator) is ``study_seed(plan
seed, study)``: the same for every trial of a study and every submission planned with that seed,
never a function of the submission or the trial's hyperparameters; the evaluation seed is the
study's too (``harness.evalseed``). docs/design.md#tuning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.records import write_json
from harness.search_space import SearchSpace

PLAN_SCHEMA = 1
# AlgoPerf triples max_runtime for self-tuning submissions against the external-tuning budget
# (DOCUMENTATION.md v0.0.21, Feb 2024, "Self-tuning ruleset"; mlcommons/algorithmic-efficiency
# at f15e227ee96ca181d670d6dd06bada647986c9ee). This project gives 1.5x, to fit `ttr bench`'s
# CPU budget (issue 19): a plan saved with another multiplier keeps its own (plan.json).
SELF_TUNING_BUDGET_MULTIPLIER = 1.5


class PlanError(ValueError):
    """A plan file that is unreadable or disagrees with the requested plan; says which field."""


def primes(n: int) -> list[int]:
    """The first ``n`` primes: one Halton base per search-space dimension."""
    found: list[int] = []
    k = 2
    while len(found) < n:
        if all(k % p for p in found if p * p <= k):
            found.append(k)
        k += 1
    return found


def radical_inverse(index: int, base: int) -> float:
    """Van der Corput radical inverse: the base-``base`` digits of ``index`` mirrored."""
    x, scale = 0.0, 1.0 / base
    while index > 0:
        index, digit = divmod(index, base)
        x += digit * scale
        scale /= base
    return x


def halton(n: int, dim: int, start: int = 1) -> np.ndarray:
    """Points ``start .. start+n-1`` of the Halton sequence, shape (n, dim) in [0, 1).

    ``start=1`` skips the all-zeros point 0, which would put every parameter at its minimum.
    """
    bases = primes(dim)
    return np.array(
        [[radical_inverse(i, b) for b in bases] for i in range(start, start + n)], dtype=float
    ).reshape(n, dim)


def trial_seed(seed: int, study: int, trial: int) -> int:
    """A run seed derived by hashing, so it is stable across numpy versions and platforms."""
    digest = hashlib.sha256(f"ttr-plan/{seed}/{study}/{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF  # fits torch.manual_seed anywhere


def study_seed(seed: int, study: int) -> int:
    """The run seed of every trial of ``study`` (of every submission planned with ``seed``):
    studies are the replicates, and within one every trial and submission trains from the same
    initial weights on the same data order. (It is ``trial_seed(seed, study, 0)``: plans of one
    trial per study, self-tuning ones included, keep the seeds they had.)"""
    return trial_seed(seed, study, 0)


@dataclass(frozen=True)
class TrialPoint:
    study: int
    trial: int
    seed: int  # the run seed
    hparams: dict[str, Any]  # resolved values, as the submission receives them
    unit: tuple[float, ...] | None  # the point in [0, 1)^dim; None for self-tuning


@dataclass(frozen=True)
class Plan:
    seed: int
    studies: int
    trials: int  # per study
    self_tuning: bool
    budget_multiplier: float  # multiplies the workload's budget_s for every trial of the plan
    space: list[dict[str, Any]]  # the search space the plan was drawn from (see space_signature)
    points: tuple[TrialPoint, ...]

    def point(self, study: int, trial: int) -> TrialPoint:
        for p in self.points:
            if (p.study, p.trial) == (study, trial):
                return p
        raise KeyError(
            f"no trial {trial} in study {study}: plan has {self.studies} x {self.trials}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PLAN_SCHEMA, **asdict(self)}  # tuples are written as JSON lists

    def save(self, path: Path) -> None:
        write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            raw = json.loads(Path(path).read_text())
            if raw.pop("schema") != PLAN_SCHEMA:
                raise PlanError(f"{path}: plan schema is not {PLAN_SCHEMA}")
            points = tuple(
                TrialPoint(**{**p, "unit": None if p["unit"] is None else tuple(p["unit"])})
                for p in raw.pop("points")
            )
            return cls(**raw, points=points)
        except (OSError, ValueError, KeyError, TypeError) as e:
            if isinstance(e, PlanError):
                raise
            raise PlanError(f"{path}: not a readable trial plan: {e!r}") from None


def space_signature(space: SearchSpace) -> list[dict[str, Any]]:
    """The search space as plain JSON data, to tell whether a saved plan was drawn from it."""
    return json.loads(json.dumps([asdict(p) for p in space.params]))


def make_plan(
    space: SearchSpace,
    studies: int = 3,
    trials: int = 5,
    seed: int = 0,
    self_tuning: bool = False,
) -> Plan:
    """The plan for ``studies`` x ``trials``; self-tuning: one default trial per study."""
    if studies < 1 or trials < 1:
        raise ValueError(f"studies and trials must be >= 1, got {studies} x {trials}")
    if self_tuning:
        points = tuple(
            TrialPoint(s, 0, study_seed(seed, s), space.defaults(), None) for s in range(studies)
        )
        multiplier = SELF_TUNING_BUDGET_MULTIPLIER
        return Plan(seed, studies, 1, True, multiplier, space_signature(space), points)
    base = halton(trials, space.dim)
    points = []
    for s in range(studies):
        shift = np.random.default_rng([seed, s]).random(space.dim)
        for t, u in enumerate((base + shift) % 1.0):
            unit = tuple(float(x) for x in u)
            points.append(TrialPoint(s, t, study_seed(seed, s), space.from_unit(unit), unit))
    return Plan(seed, studies, trials, False, 1.0, space_signature(space), tuple(points))


def load_or_make_plan(
    path: Path,
    space: SearchSpace,
    studies: int = 3,
    trials: int = 5,
    seed: int = 0,
    self_tuning: bool = False,
    grow: bool = False,
    save: bool = True,
) -> Plan:
    """The plan saved at ``path``, or a new one saved there first; never a silently different one.

    A sweep calls this before it starts any trial. A saved plan that disagrees with the request
    (another seed, size, mode, budget multiplier or search space) raises ``PlanError`` naming
    the fields, because running it would mix two tunings under one study directory.

    ``grow`` (self-tuning plans only, as the adaptive ``ttr bench`` adds studies): a saved plan
    that differs only in its number of studies is the same plan cut shorter or longer (study s
    is the defaults at ``study_seed(seed, s)`` either way), so the longer of the two is kept,
    saved and returned; its first ``studies`` studies are the ones asked for.
    """
    path = Path(path)
    wanted = make_plan(space, studies, trials, seed, self_tuning)
    if not path.exists():
        if save:
            wanted.save(path)
        return wanted
    saved = Plan.load(path)
    fields = ("seed", "studies", "trials", "self_tuning", "budget_multiplier", "space")
    diff = [f for f in fields if getattr(saved, f) != getattr(wanted, f)]
    if grow and self_tuning and saved.self_tuning and diff == ["studies"]:
        if saved.studies >= wanted.studies:
            return saved
        if save:
            wanted.save(path)
        return wanted
    if not diff and [p.seed for p in saved.points] != [p.seed for p in wanted.points]:
        diff = ["run seeds"]  # an older plan's per-trial seeds: its studies are not paired
    if diff:
        detail = "; ".join(
            f"{f}: saved {getattr(saved, f)!r}, asked {getattr(wanted, f)!r}"
            if f != "run seeds"
            else "run seeds: saved one per trial, now one per study (the paired design)"
            for f in diff
        )
        raise PlanError(
            f"{path}: the saved trial plan differs from the requested one ({detail}). "
            "Use the saved settings, or move the plan and its runs away to start a new tuning."
        )
    return saved
