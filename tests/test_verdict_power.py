"""benchmarks/verdict_power.py: the studies it says a comparison needs are the studies at which
the board's own paired interval (harness.scoring.paired_bounds) settles it."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import scoring

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import verdict_power  # noqa: E402


def _pairs(n: int, d: float, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """n paired study times whose log ratios have exactly mean d and sample sd sd."""
    z = np.linspace(-1.0, 1.0, n)
    z = (z - z.mean()) / z.std(ddof=1)
    ta = np.full(n, 10.0)
    return ta, ta * np.exp(d + sd * z)


@pytest.mark.parametrize(("d", "sd"), [(math.log(2), 0.3), (math.log(1.2), 0.38), (0.6, 0.58)])
def test_separation_studies_are_where_the_paired_interval_first_excludes_one(d, sd):
    level = 0.9875
    n = verdict_power.studies_needed(d, sd, level)
    assert n is not None and n >= 2
    for m, excludes in ((n, True), (n - 1, False)):
        if m < 2:
            continue
        ta, tb = _pairs(m, d, sd)
        out = scoring.paired_bounds(ta, tb, 1e9, 1e9, level)
        assert (out["lo"] > 1.0) == excludes, (m, out)


def test_equivalence_studies_fit_the_interval_inside_the_margin():
    d, sd, level, margin = math.log(1.03), 0.1, 0.9875, 0.10
    n = verdict_power.studies_needed(d, sd, level, margin)
    assert n is not None
    for m, inside in ((n, True), (n - 1, False)):
        ta, tb = _pairs(m, d, sd)
        out = scoring.paired_bounds(ta, tb, 1e9, 1e9, level)
        assert (1 / 1.1 < out["lo"] and out["hi"] < 1.1) == inside, (m, out)
    # a ratio past the margin can never be shown equivalent; a tie can never be separated
    assert verdict_power.studies_needed(math.log(1.2), 0.01, level, margin) is None
    assert verdict_power.studies_needed(0.0, 0.3, level) is None
    # noise this large needs more studies than the search goes to
    assert verdict_power.studies_needed(0.01, 5.0, level) is None
