"""Scoring rules on hand-computed examples, with properties and a coverage simulation.

Every expected number below is worked out in the comment next to it; docs/scoring.md states the
rules these examples pin down.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import scoring

INF = math.inf


def make_trials(times: dict[tuple, list[float]], workload: str = "w") -> pd.DataFrame:
    """{(submission, study): [time of trial 0, trial 1, ...]} -> a trials frame; inf = miss."""
    rows = []
    for (sub, study), ts in times.items():
        for trial, t in enumerate(ts):
            rows.append(
                {
                    "hardware_class": "cpu-2core",
                    "workload": workload,
                    "variant": "default",
                    "submission": sub,
                    "study": study,
                    "trial": trial,
                    "seed": trial,
                    "status": "reached_target" if t < INF else "budget_exhausted",
                    "time_to_target_s": None if t == INF else t,
                    "steps_to_target": None if t == INF else 10 * t,
                    "s_per_step": 0.1,
                    "device_s": 100.0 if t == INF else t,
                }
            )
    return pd.DataFrame(rows)


def matrix(rows: dict[str, list[float]], subs: list[str]) -> pd.DataFrame:
    """Problems x submissions times, as ``scoring.time_matrix`` returns them."""
    index = pd.MultiIndex.from_tuples([(p, "default") for p in rows], names=scoring.PROBLEM)
    return pd.DataFrame(list(rows.values()), index=index, columns=subs, dtype=float)


# -- medians of minima, misses -------------------------------------------------------------


def test_study_best_and_median_of_minima() -> None:
    trials = make_trials(
        {
            ("A", 0): [10, 20, INF],
            ("A", 1): [INF, 15],
            ("A", 2): [INF, INF],
            ("B", 0): [30],
            ("B", 1): [12],
            ("B", 2): [18],
        }
    )
    best = scoring.study_best(trials).set_index(["submission", "study"])
    assert list(best.loc["A", "time_s"]) == [10, 15, INF]  # min per study; all-miss study: inf
    assert list(best.loc["A", "trial"]) == [0, 1, 0]
    assert list(best.loc["A", "steps_to_target"]) == [100, 150, INF]
    wt = scoring.workload_times(trials).loc[("w", "default")]
    assert wt.loc["A", "time_s"] == 15  # median(10, 15, inf)
    assert wt.loc["B", "time_s"] == 18  # median(30, 12, 18)
    assert wt.loc["A", "steps_to_target"] == 150
    assert wt.loc["A", "n_reached"] == 3 and wt.loc["A", "n_trials"] == 7
    assert wt.loc["A", "success_rate"] == pytest.approx(3 / 7)


def test_median_with_misses_is_inf_when_it_lands_on_a_miss() -> None:
    trials = make_trials(
        {
            ("A", 0): [10],
            ("A", 1): [INF],  # even count: (10 + inf) / 2 = inf
            ("B", 0): [10],
            ("B", 1): [20],  # (10 + 20) / 2 = 15
            ("C", 0): [5],
            ("C", 1): [INF],
            ("C", 2): [INF],
        }  # median(5, inf, inf) = inf
    )
    wt = scoring.workload_times(trials)["time_s"].droplevel(["workload", "variant"])
    assert wt.to_dict() == {"A": INF, "B": 15.0, "C": INF}


def test_ties_go_to_the_lower_trial_and_row_order_does_not_matter() -> None:
    trials = make_trials({("A", 0): [7, 7, 9]})
    shuffled = trials.sample(frac=1.0, random_state=3)
    for frame in (trials, shuffled):
        assert scoring.study_best(frame)["trial"].tolist() == [0]


def test_several_hardware_classes_are_refused() -> None:
    trials = make_trials({("A", 0): [1.0], ("A", 1): [2.0]})
    trials.loc[1, "hardware_class"] = "h100"
    with pytest.raises(ValueError, match="several hardware classes"):
        scoring.workload_times(trials)


# -- performance profile and score --------------------------------------------------------


def test_profile_and_score_by_hand() -> None:
    times = matrix(
        {
            "p1": [10, 20, 50],  # r = 1, 2, 5 -> 5 > 4 is a failure
            "p2": [INF, 30, 30],  # r = inf, 1, 1 (a tie at the best)
            "p3": [INF, INF, INF],
        },  # nobody reached: a failure for all
        ["A", "B", "C"],
    )
    r = scoring.performance_ratios(times)
    assert r.loc[("p1", "default")].tolist() == [1, 2, INF]
    assert r.loc[("p2", "default")].tolist() == [INF, 1, 1]
    assert r.loc[("p3", "default")].tolist() == [INF, INF, INF]
    rho = scoring.performance_profile(times, taus=[1, 1.5, 2, 4])
    assert rho["A"].tolist() == pytest.approx([1 / 3] * 4)
    assert rho["B"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert rho["C"].tolist() == pytest.approx([1 / 3] * 4)
    # score = mean over problems of (4 - r) / 3 for r <= 4: A (3/3)/3, B (2/3 + 3/3)/3, C (3/3)/3
    score = scoring.benchmark_score(times)
    assert score.to_dict() == pytest.approx({"A": 1 / 3, "B": 5 / 9, "C": 1 / 3})


def test_score_is_the_normalised_area_under_the_profile() -> None:
    times = matrix({"p1": [10, 13, 31], "p2": [25, 20, INF], "p3": [8, 30, 9]}, ["A", "B", "C"])
    taus = np.linspace(1, 4, 30001)
    rho = scoring.performance_profile(times, taus=taus)
    area = np.trapezoid(rho.to_numpy(), taus, axis=0) / 3
    assert area == pytest.approx(scoring.benchmark_score(times).to_numpy(), abs=1e-3)


def test_ratio_of_exactly_four_counts_in_the_profile_but_adds_no_area() -> None:
    times = matrix({"p": [10, 40]}, ["A", "B"])
    assert scoring.performance_profile(times, taus=[4.0])["B"].item() == 1.0
    assert scoring.benchmark_score(times)["B"] == 0.0


def test_a_single_submission_scores_the_fraction_it_reached() -> None:
    times = matrix({"p1": [12.0], "p2": [INF], "p3": [3.0], "p4": [7.0]}, ["only"])
    assert scoring.benchmark_score(times)["only"] == pytest.approx(3 / 4)


def test_all_misses_score_zero_and_identical_submissions_tie() -> None:
    assert scoring.benchmark_score(matrix({"p": [INF, INF]}, ["A", "B"])).tolist() == [0, 0]
    assert scoring.benchmark_score(matrix({"p": [5.0, 5.0]}, ["A", "B"])).tolist() == [1, 1]


def test_a_time_of_zero_is_the_best_not_a_division_error() -> None:
    r = scoring.performance_ratios(matrix({"p": [0.0, 0.0, 1.0]}, ["A", "B", "C"]))
    assert r.iloc[0].tolist() == [1, 1, INF]


def test_speedup_is_a_geometric_mean_over_problems_both_finished() -> None:
    times = matrix({"p1": [5, 10], "p2": [40, 20], "p3": [3, INF]}, ["A", "base"])
    out = scoring.speedup_vs_baseline(times, "base")
    assert out.loc["A", "speedup"] == pytest.approx(1.0)  # sqrt(10/5 * 20/40); p3 left out
    assert out.loc["A", "n_problems"] == 2 and out.loc["base", "speedup"] == 1.0
    with pytest.raises(KeyError, match="not among"):
        scoring.speedup_vs_baseline(times, "nope")


# -- properties ----------------------------------------------------------------------------

times_st = st.one_of(st.floats(0.1, 1000.0), st.just(INF))


@st.composite
def time_matrices(draw: st.DrawFn) -> pd.DataFrame:
    n_problems, n_subs = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rows = {
        f"p{i}": draw(st.lists(times_st, min_size=n_subs, max_size=n_subs))
        for i in range(n_problems)
    }
    return matrix(rows, [f"s{j}" for j in range(n_subs)])


@settings(max_examples=60, deadline=None)
@given(time_matrices())
def test_score_lies_in_unit_interval(times: pd.DataFrame) -> None:
    score = scoring.benchmark_score(times)
    assert ((score >= 0) & (score <= 1)).all()


@settings(max_examples=60, deadline=None)
@given(time_matrices(), st.randoms(use_true_random=False))
def test_score_does_not_depend_on_submission_order(times: pd.DataFrame, rnd) -> None:
    order = list(times.columns)
    rnd.shuffle(order)
    pd.testing.assert_series_equal(
        scoring.benchmark_score(times), scoring.benchmark_score(times[order]).loc[times.columns]
    )


@settings(max_examples=60, deadline=None)
@given(time_matrices(), st.lists(st.floats(0.05, 1.0), min_size=5, max_size=5))
def test_a_uniformly_faster_submission_never_ranks_lower(times, factors) -> None:
    slower = times.iloc[:, 0]
    times = times.assign(faster=slower.to_numpy() * np.array(factors[: len(times)]))
    score = scoring.benchmark_score(times)
    assert score["faster"] >= score[times.columns[0]]


# -- bootstrap -----------------------------------------------------------------------------


def test_quantile_with_infinities() -> None:
    x = np.array([1.0, 2.0, INF, INF])
    # positions q * 3: 0 -> 1; 0.5 -> 1.5; 1 -> 2; 1.5 -> between 2 and inf: inf; 3 -> inf
    assert scoring.quantile_inf(x, [0, 1 / 6, 1 / 3, 0.5, 1]).tolist() == [1, 1.5, 2, INF, INF]


def test_bootstrap_draws_do_not_depend_on_other_cells_or_row_order() -> None:
    both = make_trials({(s, k): [10 + k + (s == "B"), 14 - k] for s in "AB" for k in range(4)})
    only_a = both[both.submission == "A"].sample(frac=1.0, random_state=1)
    d_both, d_a = scoring.bootstrap_times(both, 300), scoring.bootstrap_times(only_a, 300)
    key = ("w", "default", "A")
    np.testing.assert_array_equal(d_both[key].to_numpy(), d_a[key].to_numpy())


def test_time_interval_covers_the_true_median_at_about_its_nominal_rate() -> None:
    """400 simulated benchmarks (one 'workload' each) of 25 studies, lognormal times."""
    rng = np.random.default_rng(7)
    n_sim, n_studies, true_median = 400, 25, 10.0
    x = np.exp(rng.normal(np.log(true_median), 0.5, size=(n_sim, n_studies)))
    trials = pd.DataFrame(
        {
            "workload": np.repeat([f"w{i}" for i in range(n_sim)], n_studies),
            "variant": "default",
            "submission": "A",
            "study": np.tile(np.arange(n_studies), n_sim),
            "trial": 0,
            "time_to_target_s": x.ravel(),
            "steps_to_target": 1.0,
            "s_per_step": 1.0,
            "device_s": 1.0,
            "status": "reached_target",
        }
    )
    iv = scoring.time_intervals(scoring.bootstrap_times(trials, 1000, seed=3), level=0.95)
    coverage = ((iv.lo <= true_median) & (true_median <= iv.hi)).mean()
    assert 0.91 <= coverage <= 0.98, coverage


def test_score_interval_and_prob_faster_by_hand() -> None:
    # A's study bests are 1 and 3, B's 2 and 2. A resampled median is 1, 2 or 3 with
    # probabilities 1/4, 1/2, 1/4; B's is always 2: P(A < B) = 1/4, P(tie) = 1/2 -> 1/2.
    trials = make_trials({("A", 0): [1], ("A", 1): [3], ("B", 0): [2], ("B", 1): [2]})
    draws = scoring.bootstrap_times(trials, 20000)
    assert scoring.prob_faster(draws, "A", "B", "w") == pytest.approx(0.5, abs=0.01)
    assert scoring.prob_faster(draws, "B", "A", "w", "default") == pytest.approx(0.5, abs=0.01)
    # The score of B is 1 when A's median is 2 or 3 (B best or tied), else (4 - 2) / 3.
    scores = scoring.score_draws(draws)
    assert set(np.round(scores["B"], 6)) == {1.0, round(2 / 3, 6)}
    iv = scoring.score_intervals(draws)
    assert iv.loc["B"].tolist() == pytest.approx([2 / 3, 1.0])


def test_prob_faster_with_misses_and_absent_submissions() -> None:
    trials = make_trials({("A", 0): [5], ("B", 0): [INF], ("C", 0): [INF]})
    trials = pd.concat([trials, make_trials({("D", 0): [1.0]}, workload="other")])
    draws = scoring.bootstrap_times(trials, 100)
    assert scoring.prob_faster(draws, "A", "B", "w") == 1.0
    assert scoring.prob_faster(draws, "B", "C", "w") == 0.5  # two misses tie
    assert scoring.prob_faster(draws, "A", "D", "w") == 1.0  # D did not run w: a miss
    with pytest.raises(KeyError, match="no submission"):
        scoring.prob_faster(draws, "A", "Z", "w")
    table = scoring.prob_faster_table(draws)
    assert len(table) == 2 * 4 * 3  # problems x ordered pairs


# -- cost ledger ---------------------------------------------------------------------------


def test_cost_ledger_counts_every_trial() -> None:
    trials = make_trials({("A", 0): [10, 20, INF], ("A", 1): [INF, INF], ("B", 0): [5]})
    trials.loc[(trials.submission == "A") & (trials.study == 1), "status"] = "failed"
    trials["wasted_train_s"] = 0.0
    trials.loc[(trials.submission == "A") & (trials.study == 0), "wasted_train_s"] = 1.5
    ledger = scoring.cost_ledger(trials)
    # A: 10 + 20 + 100 + 100 + 100 = 330 s; scored: the 10 s trial; failed: study 1's two trials
    assert ledger.loc["A"].to_dict() == {
        "device_s": 330.0,
        "scored_s": 10.0,
        "tuning_s": 320.0,
        "failed_s": 200.0,
        "wasted_s": 4.5,  # three preempted trials of study 0, 1.5 s lost each
        "n_trials": 5,
        "n_failed": 2,
    }
    assert ledger.loc["B", "tuning_s"] == 0.0
