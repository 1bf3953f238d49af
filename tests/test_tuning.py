"""Trial plans: Halton by hand, reproducible, saved before use, refused when they disagree."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from harness.search_space import SearchSpace
from harness.tuning import (
    SELF_TUNING_BUDGET_MULTIPLIER,
    Plan,
    PlanError,
    halton,
    load_or_make_plan,
    make_plan,
    primes,
    radical_inverse,
)

SPACE = SearchSpace.from_dict(
    {
        "lr": {"min": 1e-4, "max": 1e-1, "scaling": "log", "default": 1e-2},
        "batch": {"min": 16, "max": 256, "scaling": "log", "type": "int"},
        "wd": {"min": 0.0, "max": 0.1},
        "loss": ["bce", "fer"],
    }
)


def test_halton_by_hand() -> None:
    assert primes(6) == [2, 3, 5, 7, 11, 13]
    assert [radical_inverse(i, 2) for i in (1, 2, 3, 4, 5)] == [0.5, 0.25, 0.75, 0.125, 0.625]
    assert radical_inverse(5, 3) == pytest.approx(2 / 3 + 1 / 9)  # 5 = 12 in base 3 -> 0.21
    np.testing.assert_allclose(halton(3, 2), [[1 / 2, 1 / 3], [1 / 4, 2 / 3], [3 / 4, 1 / 9]])
    assert halton(4, 0).shape == (4, 0)


def test_plan_shape_seeds_and_values() -> None:
    plan = make_plan(SPACE)  # the default 3 studies x 5 trials
    assert (plan.studies, plan.trials, len(plan.points)) == (3, 5, 15)
    assert [(p.study, p.trial) for p in plan.points][:6] == [(0, t) for t in range(5)] + [(1, 0)]
    # paired design: one run seed per study, shared by its trials (docs/design.md#tuning)
    assert [len({p.seed for p in plan.points if p.study == s}) for s in range(3)] == [1, 1, 1]
    assert len({p.seed for p in plan.points}) == 3
    for p in plan.points:
        for param in SPACE.params:
            assert param.check(p.hparams[param.name]) is None, (param.name, p.hparams)
        assert all(0 <= u < 1 for u in p.unit)
    assert isinstance(plan.point(2, 4).hparams["batch"], int)


def test_studies_are_different_tunings_that_each_cover_the_space() -> None:
    plan = make_plan(SPACE, studies=3, trials=64, seed=11)
    units = np.array([p.unit for p in plan.points]).reshape(3, 64, SPACE.dim)
    assert not np.allclose(units[0], units[1]) and not np.allclose(units[1], units[2])
    # A shift mod 1 keeps circular gaps, and 64 Halton points in bases 2, 3, 5, 7 leave none
    # wider than 2/49 (base 7); 64 iid uniform points leave one of about 0.074 on average.
    s = np.sort(units, axis=1)
    gaps = np.diff(np.concatenate([s, s[:, :1] + 1.0], axis=1), axis=1)
    assert gaps.max() <= 2 / 49 + 1e-12


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    assert make_plan(SPACE, seed=5) == make_plan(SPACE, seed=5)
    a, b = make_plan(SPACE, seed=5), make_plan(SPACE, seed=6)
    assert [p.hparams for p in a.points] != [p.hparams for p in b.points]
    assert [p.seed for p in a.points] != [p.seed for p in b.points]


def test_self_tuning_uses_the_defaults_and_a_larger_budget() -> None:
    plan = make_plan(SPACE, studies=4, trials=5, self_tuning=True)
    assert (plan.trials, len(plan.points)) == (1, 4)
    assert all(p.hparams == SPACE.defaults() and p.unit is None for p in plan.points)
    assert plan.budget_multiplier == SELF_TUNING_BUDGET_MULTIPLIER == 1.5  # issue 19's rule
    assert make_plan(SPACE).budget_multiplier == 1.0


def test_a_saved_self_tuning_plan_with_another_multiplier_is_refused(tmp_path: Path) -> None:
    """A plan saved when self-tuning tripled the budget (AlgoPerf's rule) would put 3x trials
    next to 1.5x ones under one study directory: refused, naming the field, and untouched."""
    path = tmp_path / "plan.json"
    old = dataclasses.replace(make_plan(SPACE, studies=2, self_tuning=True), budget_multiplier=3.0)
    old.save(path)
    before = path.read_bytes()
    with pytest.raises(PlanError, match="budget_multiplier: saved 3.0, asked 1.5"):
        load_or_make_plan(path, SPACE, studies=2, self_tuning=True)
    with pytest.raises(PlanError, match="budget_multiplier"):  # growing does not bypass it
        load_or_make_plan(path, SPACE, studies=5, self_tuning=True, grow=True)
    assert path.read_bytes() == before


def test_a_self_tuning_plan_grows_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    first = load_or_make_plan(path, SPACE, studies=2, self_tuning=True)
    with pytest.raises(PlanError, match="studies: saved 2, asked 3"):
        load_or_make_plan(path, SPACE, studies=3, self_tuning=True)  # not without grow
    dry = load_or_make_plan(path, SPACE, studies=3, self_tuning=True, grow=True, save=False)
    assert dry.studies == 3 and Plan.load(path) == first
    grown = load_or_make_plan(path, SPACE, studies=3, self_tuning=True, grow=True)
    assert grown.points[:2] == first.points and Plan.load(path) == grown
    # asking for fewer keeps the longer plan; its first studies are the same ones
    assert load_or_make_plan(path, SPACE, studies=1, self_tuning=True, grow=True) == grown
    with pytest.raises(PlanError):  # external plans never grow
        load_or_make_plan(tmp_path / "ext.json", SPACE, studies=2, trials=2)
        load_or_make_plan(tmp_path / "ext.json", SPACE, studies=3, trials=2, grow=True)


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    plan = make_plan(SPACE, studies=2, trials=3, seed=9)
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan


def test_load_or_make_writes_first_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "sweep" / "plan.json"
    first = load_or_make_plan(path, SPACE, studies=2, trials=3, seed=1)
    text = path.read_text()
    assert load_or_make_plan(path, SPACE, studies=2, trials=3, seed=1) == first
    assert path.read_text() == text  # a re-run reads, never rewrites


def test_load_or_make_refuses_a_different_request(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    load_or_make_plan(path, SPACE, studies=2, trials=3, seed=1)
    with pytest.raises(PlanError, match=r"seed: saved 1, asked 2; trials: saved 3, asked 4"):
        load_or_make_plan(path, SPACE, studies=2, trials=4, seed=2)
    wider = SearchSpace.from_dict({"lr": {"min": 1e-5, "max": 1.0, "scaling": "log"}})
    with pytest.raises(PlanError, match="space: saved"):
        load_or_make_plan(path, wider, studies=2, trials=3, seed=1)
    with pytest.raises(PlanError, match="self_tuning"):
        load_or_make_plan(path, SPACE, studies=2, trials=3, seed=1, self_tuning=True)


def test_unreadable_plan_and_bad_sizes(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"schema": 1, "seed": 0}))
    with pytest.raises(PlanError, match="not a readable trial plan"):
        load_or_make_plan(path, SPACE)
    with pytest.raises(ValueError, match=">= 1"):
        make_plan(SPACE, studies=0)
