"""search_space.json: malformed spaces fail with the parameter and the fix in the message."""

from __future__ import annotations

import json
import math

import pytest

from harness.search_space import SearchSpace, SearchSpaceError

GOOD = {
    "lr": {"min": 1e-4, "max": 1e-1, "scaling": "log", "default": 1e-2},
    "steps": {"min": 10, "max": 1000, "scaling": "log", "type": "int"},
    "loss": ["bce", "fer"],
    "eta": {"feasible_points": [0.0, 1.0], "default": 1.0},
}


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"lr": {"min": 1, "max": 0.1, "scaling": "log"}}, "min 1.0 is greater than max 0.1"),
        ({"lr": {"min": 0.0, "max": 1.0, "scaling": "log"}}, "log scaling needs min > 0"),
        ({"lr": {"min": 0.1, "max": 1.0, "scaling": "exp"}}, "unknown scaling 'exp'"),
        ({"lr": {"min": 0.1}}, "missing 'max'"),
        ({"lr": {"min": "a", "max": 1.0}}, "'min' must be a finite number"),
        ({"lr": {"min": 0.1, "max": 1.0, "step": 2}}, "unknown keys ['step']"),
        ({"loss": []}, "feasible points must be a non-empty list"),
        ({"eta": {"feasible_points": []}}, "feasible points must be a non-empty list"),
        ({"lr": {"min": 0.1, "max": 1.0, "default": 5.0}}, "default 5.0 is outside [0.1, 1.0]"),
        ({"loss": {"feasible_points": ["a"], "default": "b"}}, "default 'b' is not one of ['a']"),
        ({"lr": 0.1}, "expected {min, max, scaling} or a list"),
        ({"n": {"min": 1.5, "max": 4, "type": "int"}}, "type is int, but min is 1.5"),
        ({"n": {"min": 1, "max": 4.2, "type": "int"}}, "type is int, but max is 4.2"),
        ({"n": {"min": 1, "max": 4, "type": "int", "default": 2.5}}, "but default is 2.5"),
        ([1, 2], "the top level must be an object"),
    ],
)
def test_malformed_spaces_name_the_problem(raw, message):
    with pytest.raises(SearchSpaceError) as e:
        SearchSpace.from_dict(raw, "space.json")
    assert message in str(e.value) and "space.json" in str(e.value)


def test_files_that_are_missing_or_not_json(tmp_path):
    with pytest.raises(SearchSpaceError, match="no search space file"):
        SearchSpace.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{lr: 1}")
    with pytest.raises(SearchSpaceError, match="not valid JSON"):
        SearchSpace.load(tmp_path / "bad.json")


def test_defaults_and_unit_mapping():
    s = SearchSpace.from_dict(GOOD)
    d = s.defaults()
    assert d["lr"] == 1e-2 and d["loss"] == "bce" and d["eta"] == 1.0
    assert d["steps"] == 100  # geometric midpoint of [10, 1000], as an int
    lo, hi = s.from_unit([0, 0, 0, 0]), s.from_unit([1, 1, 1, 1])
    assert lo == {"lr": 1e-4, "steps": 10, "loss": "bce", "eta": 0.0}
    assert math.isclose(hi["lr"], 1e-1) and hi["steps"] == 1000 and hi["loss"] == "fer"


def test_resolve_rejects_unknown_names_and_values_outside_the_space():
    s = SearchSpace.from_dict(GOOD, "space.json")
    assert s.resolve({"lr": 0.05})["lr"] == 0.05
    with pytest.raises(SearchSpaceError, match=r"unknown hyperparameters \['lrr'\]; valid"):
        s.resolve({"lrr": 0.05})
    with pytest.raises(SearchSpaceError, match="outside"):
        s.resolve({"lr": 0.5})
    with pytest.raises(SearchSpaceError, match="is not one of"):
        s.resolve({"loss": "bec"})
    with pytest.raises(SearchSpaceError, match="12.5 is not an integer"):
        s.resolve({"steps": 12.5})
    with pytest.raises(SearchSpaceError, match="is not a finite number"):
        s.resolve({"lr": float("nan")})
    assert s.resolve({"steps": 12})["steps"] == 12


def test_every_shipped_search_space_is_valid(root):
    for path in sorted((root / "submissions").glob("*/search_space.json")):
        space = SearchSpace.load(path)
        assert space.resolve({}) == space.defaults(), path
        json.loads(path.read_text())
