"""``search_space.json``: hyperparameter ranges of a submission, validated.

Format, one entry per hyperparameter:

    {"lr":      {"min": 1e-4, "max": 1e-1, "scaling": "log", "default": 1e-2},
     "batch":   {"min": 16, "max": 256, "scaling": "log", "type": "int"},
     "loss":    ["bce", "fer"],               # a list of feasible points
     "eta":     {"feasible_points": [0.0, 1.0], "default": 1.0}}

Ranges map a unit coordinate u in [0, 1] to a value (log: geometric); a list takes the
``floor(u * len)``-th point. ``default`` (optional) is used by a plain ``ttr run``; without it a
range defaults to its midpoint (geometric for log) and a list to its first point.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCALINGS = ("log", "linear")
RANGE_KEYS = {"min", "max", "scaling", "default", "type"}
POINTS_KEYS = {"feasible_points", "default"}


class SearchSpaceError(ValueError):
    """A malformed search space; the message names the file, the parameter and the fix."""


@dataclass(frozen=True)
class Param:
    name: str
    low: float | None = None
    high: float | None = None
    scaling: str | None = None  # "log" | "linear" for ranges
    is_int: bool = False
    points: tuple[Any, ...] | None = None  # feasible points, for a list
    default: Any = None

    def from_unit(self, u: float) -> Any:
        u = min(max(float(u), 0.0), 1.0)
        if self.points is not None:
            return self.points[min(int(u * len(self.points)), len(self.points) - 1)]
        assert self.low is not None and self.high is not None
        if u in (0.0, 1.0):
            x = self.low if u == 0.0 else self.high  # exact ends, no exp(log(x)) rounding
        elif self.scaling == "log":
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return int(round(x)) if self.is_int else x

    def resolved_default(self) -> Any:
        return (
            self.default
            if self.default is not None
            else self.from_unit(0.5 if self.points is None else 0.0)
        )

    def check(self, value: Any) -> str | None:
        """None if ``value`` lies in the space, else a reason."""
        if self.points is not None:
            return None if value in self.points else f"{value!r} is not one of {list(self.points)}"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{value!r} is not a number"
        if not math.isfinite(value):
            return f"{value!r} is not a finite number"
        if self.is_int and value != int(value):
            return f"{value!r} is not an integer (the parameter's type is int)"
        if not (self.low <= value <= self.high):
            return f"{value!r} is outside [{self.low}, {self.high}]"
        return None


def _range(where: str, name: str, spec: Mapping[str, Any]) -> Param:
    unknown = set(spec) - RANGE_KEYS
    if unknown:
        raise SearchSpaceError(
            f"{where}: {name}: unknown keys {sorted(unknown)}; valid: {sorted(RANGE_KEYS)}"
        )
    for key in ("min", "max"):
        if key not in spec:
            raise SearchSpaceError(f"{where}: {name}: missing {key!r}")
        if (
            not isinstance(spec[key], (int, float))
            or isinstance(spec[key], bool)
            or not math.isfinite(spec[key])
        ):
            raise SearchSpaceError(
                f"{where}: {name}: {key!r} must be a finite number, got {spec[key]!r}"
            )
    low, high = float(spec["min"]), float(spec["max"])
    scaling = spec.get("scaling", "linear")
    if scaling not in SCALINGS:
        raise SearchSpaceError(
            f"{where}: {name}: unknown scaling {scaling!r}; valid: {list(SCALINGS)}"
        )
    if low > high:
        raise SearchSpaceError(f"{where}: {name}: min {low} is greater than max {high}")
    if scaling == "log" and low <= 0:
        raise SearchSpaceError(f"{where}: {name}: log scaling needs min > 0, got {low}")
    kind = spec.get("type", "float")
    if kind not in ("float", "int"):
        raise SearchSpaceError(f"{where}: {name}: type must be 'float' or 'int', got {kind!r}")
    default = spec.get("default")
    if kind == "int":
        for key, value in (("min", low), ("max", high), ("default", default)):
            if value is not None and (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value != int(value)
            ):
                raise SearchSpaceError(
                    f"{where}: {name}: type is int, but {key} is {spec[key]!r}; give an integer"
                )
        default = None if default is None else int(default)
    p = Param(name, low, high, scaling, is_int=kind == "int", default=default)
    if p.default is not None and (why := p.check(p.default)):
        raise SearchSpaceError(f"{where}: {name}: default {why}")
    return p


def _points(where: str, name: str, points: Any, default: Any = None) -> Param:
    if not isinstance(points, list) or not points:
        raise SearchSpaceError(
            f"{where}: {name}: feasible points must be a non-empty list, got {points!r}"
        )
    p = Param(name, points=tuple(points), default=default)
    if default is not None and (why := p.check(default)):
        raise SearchSpaceError(f"{where}: {name}: default {why}")
    return p


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    source: str = "<memory>"

    @property
    def dim(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @classmethod
    def from_dict(cls, raw: Any, where: str = "<memory>") -> SearchSpace:
        if not isinstance(raw, dict):
            raise SearchSpaceError(f"{where}: the top level must be an object of hyperparameters")
        params = []
        for name, spec in raw.items():
            if isinstance(spec, list):
                params.append(_points(where, name, spec))
            elif isinstance(spec, dict) and "feasible_points" in spec:
                unknown = set(spec) - POINTS_KEYS
                if unknown:
                    raise SearchSpaceError(
                        f"{where}: {name}: unknown keys {sorted(unknown)}; "
                        f"valid: {sorted(POINTS_KEYS)}"
                    )
                params.append(_points(where, name, spec["feasible_points"], spec.get("default")))
            elif isinstance(spec, dict):
                params.append(_range(where, name, spec))
            else:
                raise SearchSpaceError(
                    f"{where}: {name}: expected {{min, max, scaling}} or a list of "
                    f"feasible points, got {spec!r}"
                )
        return cls(tuple(params), where)

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        if not path.is_file():
            raise SearchSpaceError(f"{path}: no search space file")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SearchSpaceError(f"{path}: not valid JSON: {e}") from None
        return cls.from_dict(raw, str(path))

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.resolved_default() for p in self.params}

    def from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        if len(u) != self.dim:
            raise ValueError(f"expected {self.dim} coordinates, got {len(u)}")
        return {p.name: p.from_unit(x) for p, x in zip(self.params, u, strict=True)}

    def resolve(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults with ``overrides`` applied; an unknown name, or a value outside the space,
        fails with the valid ones."""
        unknown = set(overrides) - set(self.names)
        if unknown:
            raise SearchSpaceError(
                f"{self.source}: unknown hyperparameters {sorted(unknown)}; valid: {self.names}"
            )
        by_name = {p.name: p for p in self.params}
        for name, value in overrides.items():
            if why := by_name[name].check(value):
                raise SearchSpaceError(
                    f"{self.source}: {name}: {why}; widen search_space.json to try it"
                )
        return {**self.defaults(), **overrides}
