"""Every workload found by folder keeps the spec contract (docs/design.md#workload-contract,
docs/workloads.md#variants): variants named by their keys, smoke/default/full, positive budgets
for every device kind, a target the metric can reach, positive hints, and a calibration note.
No training: specs and READMEs only."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

import pytest

from harness import discovery
from harness.api import Guard, ReferenceOp, Workload, WorkloadSpec

VARIANTS = ("smoke", "default", "full")
DEVICE_KINDS = ("cpu", "gpu")  # the keys of WorkloadSpec.budget_s the runner asks for

# The values a metric (or a guard's metric) can take, (low, high). A "max" target must lie in
# (low, high]: at low it is met by anything, above high by nothing. A "min" target must lie in
# (low, high): at low only a perfect model could meet it (a 95% upper bound of an error rate or
# a cross-entropy never reaches 0). A workload with a new metric adds its range here.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "fer_upper95": (0.0, 1.0),  # ldpc: upper 95% bound of the frame error rate
    "accuracy": (0.0, 1.0),  # snn, certification (natural accuracy)
    "certified_accuracy": (0.0, 1.0),  # certification
    "bleu_low": (0.0, 100.0),  # translation: sacrebleu BLEU, 0-100
    "bleu_high": (0.0, 100.0),
    "qa_em": (0.0, 1.0),  # factuality: exact-match rate
    "qa_loss": (0.0, math.inf),  # factuality smoke: cross-entropy per answer token, nats
    "ne_error_factual": (0.0, 1.0),  # factuality full: named-entity error rate
    "distinct2_nucleus": (0.0, 1.0),  # distinct bigrams / bigrams
    "distinct2_factual": (0.0, 1.0),
}


def _reachable(metric: str, value: float, direction: str, what: str) -> list[str]:
    if metric not in METRIC_RANGES:
        return [
            f"{what}: metric {metric!r} has no declared range; add it to METRIC_RANGES in "
            "tests/test_workload_contract.py"
        ]
    lo, hi = METRIC_RANGES[metric]
    ok = lo < value <= hi if direction == "max" else lo < value < hi
    if not (math.isfinite(value) and ok):
        span = f"({lo:g}, {hi:g}]" if direction == "max" else f"({lo:g}, {hi:g})"
        return [f"{what}: {metric} {value!r} cannot be reached ({direction}); it must be in {span}"]
    return []


def _numerals(x: float) -> list[str]:
    """The ways a number is written in a calibration note: 0.68, 1e-2, 120, 1,500."""
    forms = {f"{x:g}"}
    if x != 0:
        mantissa, exp = f"{x:.0e}".split("e")
        forms.add(f"{mantissa}e{int(exp)}")
    if x >= 1000 and x == int(x):
        forms.add(f"{int(x):,}")
    return sorted(forms)


def _mentions(text: str, x: float, unit: str = "") -> bool:
    return any(
        re.search(rf"(?<![\w.]){re.escape(form)}(?!\d|\.\d){unit}", text) for form in _numerals(x)
    )


def variant_problems(workload: str, key: str, spec: WorkloadSpec) -> list[str]:
    """What is wrong with one variant's spec, one line each."""
    at = f"{workload}/{key}"
    if not isinstance(spec, WorkloadSpec):
        return [f"{at}: {type(spec).__name__} is not a WorkloadSpec"]
    problems = []
    if not type(spec).__dataclass_params__.frozen:
        problems.append(f"{at}: {type(spec).__name__} must be a frozen dataclass")
    if spec.variant != key:
        problems.append(f"{at}: spec.variant is {spec.variant!r}, not its key {key!r}")
    if spec.name != workload:
        problems.append(f"{at}: spec.name is {spec.name!r}, not the folder name")
    for kind in DEVICE_KINDS:
        budget = spec.budget_s.get(kind)
        if budget is None or not (math.isfinite(budget) and budget > 0):
            problems.append(f"{at}: budget_s[{kind!r}] must be positive, is {budget!r}")
        elif not 0 < spec.eval_every_s < budget:
            problems.append(
                f"{at}: eval_every_s {spec.eval_every_s} must be positive and below the "
                f"{kind} budget {budget}"
            )
    if spec.direction not in ("min", "max"):
        problems.append(f"{at}: direction must be 'min' or 'max', is {spec.direction!r}")
    else:
        problems += _reachable(spec.metric, spec.target, spec.direction, f"{at} target")
        if spec.test_target is not None:
            problems += _reachable(spec.metric, spec.test_target, spec.direction, f"{at} test")
    for g in spec.guards:
        direction = "max" if g.op == ">=" else "min"
        problems += _reachable(g.metric, g.value, direction, f"{at} guard {g.metric}")
    for hint in ("step_hint", "batch_size_hint", "eval_samples"):
        value = getattr(spec, hint)
        if not (isinstance(value, int) and value > 0):
            problems.append(f"{at}: {hint} must be a positive int, is {value!r}")
    if not spec.data.strip():
        problems.append(f"{at}: data must say where the data comes from")
    if not spec.calibration.strip():
        problems.append(f"{at}: calibration must say how target and budget were set")
    return problems


def calibration_problems(workload: str, default: WorkloadSpec, readme: str) -> list[str]:
    """The default's note states its target and cpu budget; the README has the runs."""
    problems = []
    note = default.calibration
    if note.strip() and not _mentions(note, default.target):
        forms = " or ".join(_numerals(default.target))
        problems.append(f"{workload}/default: calibration does not state the target {forms}")
    cpu = default.budget_s.get("cpu")
    if note.strip() and cpu is not None and not _mentions(note, cpu, unit=r"\s*s\b"):
        problems.append(f"{workload}/default: calibration does not state the cpu budget {cpu:g} s")
    if not re.search(r"^#+ .*calibrat", readme, re.M | re.I):
        problems.append(f"workloads/{workload}/README.md has no calibration section")
    return problems


def spec_problems(workload: str, specs: Mapping[str, WorkloadSpec], readme: str) -> list[str]:
    """Everything wrong with one workload's ``SPECS`` and README, one line each."""
    problems = [f"SPECS lacks the variant {v!r}" for v in VARIANTS if v not in specs]
    kinds = {type(s) for s in specs.values()}
    if len(kinds) > 1:
        problems.append(f"variants have different spec classes {sorted(k.__name__ for k in kinds)}")
    for key, spec in specs.items():
        problems += variant_problems(workload, key, spec)
    if isinstance(specs.get("default"), WorkloadSpec):
        problems += calibration_problems(workload, specs["default"], readme)
    return problems


WORKLOADS = discovery.workload_names()


def test_every_workload_folder_is_checked():
    assert {"ldpc", "snn", "certification", "translation", "factuality"} <= set(WORKLOADS)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_specs_keep_the_contract(workload):
    module = discovery.load_workload_module(workload)
    readme = discovery.repo_root() / "workloads" / workload / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    problems = spec_problems(workload, module.SPECS, text)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_class_and_reference_ops(workload):
    module = discovery.load_workload_module(workload)
    assert isinstance(module.WORKLOAD, type) and issubclass(module.WORKLOAD, Workload), (
        f"workloads/{workload}: WORKLOAD must be a harness.api.Workload subclass"
    )
    ops = getattr(module, "REFERENCE_OPS", {})
    bad = {k: type(v).__name__ for k, v in ops.items() if not isinstance(v, ReferenceOp)}
    assert not bad, f"workloads/{workload}: REFERENCE_OPS values must be ReferenceOp: {bad}"


# -- the checker itself fails a workload that breaks any rule ----------------------------------

README = "# Workload `toy`\n\n## Calibration of `default`\n\nHow it was set.\n"
GOOD = WorkloadSpec(
    name="toy",
    variant="default",
    metric="accuracy",
    direction="max",
    target=0.9,
    budget_s={"cpu": 60.0, "gpu": 30.0},
    eval_every_s=5.0,
    step_hint=500,
    eval_samples=100,
    data="generated",
    calibration="tuned baseline reached 0.93-0.95; target 0.9; budget 4/3 x 44 s = 60 s",
    batch_size_hint=32,
)


def toy_specs(**changes) -> dict[str, WorkloadSpec]:
    default = dataclasses.replace(GOOD, **changes)
    return {v: dataclasses.replace(default, variant=v) for v in VARIANTS}


def test_a_good_fake_workload_passes():
    assert spec_problems("toy", toy_specs(), README) == []


@pytest.mark.parametrize(
    "specs,readme,expected",
    [
        ({k: v for k, v in toy_specs().items() if k != "full"}, README, "lacks the variant 'full'"),
        ({**toy_specs(), "smoke": GOOD}, README, "not its key 'smoke'"),
        (toy_specs(name="other"), README, "not the folder name"),
        (toy_specs(budget_s={"cpu": 60.0}), README, "budget_s['gpu'] must be positive"),
        (toy_specs(budget_s={"cpu": 60.0, "gpu": 0.0}), README, "budget_s['gpu'] must be positive"),
        (toy_specs(eval_every_s=60.0), README, "below the cpu budget"),
        (toy_specs(target=1.2), README, "accuracy 1.2 cannot be reached"),
        (toy_specs(target=0.0), README, "accuracy 0.0 cannot be reached"),
        (toy_specs(metric="fer", direction="min", target=0.0), README, "no declared range"),
        (toy_specs(direction="up"), README, "direction must be"),
        (toy_specs(guards=(Guard("accuracy", ">=", 1.5),)), README, "guard accuracy"),
        (toy_specs(step_hint=0), README, "step_hint must be a positive int"),
        (toy_specs(batch_size_hint=-1), README, "batch_size_hint must be a positive int"),
        (toy_specs(calibration=" "), README, "calibration must say"),
        (toy_specs(target=0.8), README, "does not state the target 0.8"),
        (toy_specs(budget_s={"cpu": 90.0, "gpu": 30.0}), README, "the cpu budget 90 s"),
        (toy_specs(), "# Workload `toy`\n", "has no calibration section"),
    ],
)
def test_the_checker_names_each_broken_rule(specs, readme, expected):
    problems = spec_problems("toy", specs, readme)
    assert any(expected in p for p in problems), problems


def test_error_rates_need_a_target_above_zero():
    fer = toy_specs(metric="fer_upper95", direction="min", target=0.0, calibration="target 0; 60 s")
    assert any("cannot be reached" in p for p in spec_problems("toy", fer, README))
    ok = toy_specs(metric="fer_upper95", direction="min", target=1e-2, calibration="1e-2, 60 s")
    assert spec_problems("toy", ok, README) == []
