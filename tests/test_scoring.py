"""Scoring rules on hand-computed examples, with properties (the coverage simulation is
tests/test_scoring_calibration.py).

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
NAN = math.nan


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


# -- intervals and paired comparisons --------------------------------------------------------

T975_DF2 = 4.302653  # Student-t 97.5% quantile, 2 degrees of freedom (any t table)
T975_DF1 = 12.706205


def test_quantile_with_infinities() -> None:
    x = np.array([1.0, 2.0, INF, INF])
    # positions q * 3: 0 -> 1; 0.5 -> 1.5; 1 -> 2; 1.5 -> between 2 and inf: inf; 3 -> inf
    assert scoring.quantile_inf(x, [0, 1 / 6, 1 / 3, 0.5, 1]).tolist() == [1, 1.5, 2, INF, INF]


def test_time_interval_is_a_t_interval_on_log_times() -> None:
    # log 10, log 20, log 40: mean log 20, sd log 2, se log 2 / sqrt 3
    half = T975_DF2 * math.log(2) / math.sqrt(3)
    lo, hi = scoring.log_t_bounds(np.array([10.0, 20.0, 40.0]), 60.0)
    assert (lo, hi) == pytest.approx((20 * math.exp(-half), 20 * math.exp(half)), rel=1e-6)
    # a miss enters at the budget (40): the same lower end; the upper end is a miss
    lo2, hi2 = scoring.log_t_bounds(np.array([10.0, 20.0, INF]), 40.0)
    assert lo2 == pytest.approx(lo, rel=1e-6) and hi2 == INF
    # one study: unbounded; NaN (a study not run) is left out
    assert scoring.log_t_bounds(np.array([10.0, NAN, NAN]), 40.0) == (0.0, INF)
    # every study missed: (budget, inf) only from 6 studies on (0.5^6 <= 2.5%), else (0, inf)
    assert scoring.log_t_bounds(np.full(3, INF), 40.0) == (0.0, INF)
    assert scoring.log_t_bounds(np.full(6, INF), 40.0) == (pytest.approx(40.0), INF)


def test_the_resolution_keeps_tied_times_from_a_zero_width_interval() -> None:
    lo, hi = scoring.log_t_bounds(np.array([20.0, 20.0]), 60.0)
    assert lo == hi == pytest.approx(20.0)  # no resolution recorded: exact times
    # resolution 2 s: log error uniform of width 2/20, variance 0.01 / 12; se sqrt(0.01/12 / 2)
    half = T975_DF1 * math.sqrt(0.01 / 12 / 2)
    lo, hi = scoring.log_t_bounds(np.array([20.0, 20.0]), 60.0, resolution=2.0)
    assert (lo, hi) == pytest.approx((20 * math.exp(-half), 20 * math.exp(half)))


def test_paired_comparison_by_hand() -> None:
    # d = log(tB / tA) = log 2, log 2 * 2, log 2 * 0: mean log 2, sd log 2, se log 2 / sqrt 3
    ta, tb = np.array([10.0, 10.0, 10.0]), np.array([20.0, 40.0, 10.0])
    r = scoring.paired_bounds(ta, tb, 60.0, 60.0)
    half = T975_DF2 * math.log(2) / math.sqrt(3)
    assert r["speedup"] == pytest.approx(2.0)
    assert (r["lo"], r["hi"]) == pytest.approx((2 * math.exp(-half), 2 * math.exp(half)))
    # t = log 2 / (log 2 / sqrt 3) = sqrt 3 on 2 df: two-sided p = 0.2254 -> confidence 0.7746
    assert r["p_faster"] == pytest.approx(0.774597, abs=1e-5)
    assert scoring.paired_bounds(tb, ta, 60.0, 60.0)["p_faster"] == 0.0  # B is not faster
    assert int(r["n_pairs"]) == 3 and int(r["n_censored"]) == 0


def test_paired_comparison_censors_misses_at_the_budget() -> None:
    # study 0: B missed (budget 40): d >= log(40 / 10), entered at log 4; study 1 both missed:
    # no information; study 2 not run by B
    ta, tb = np.array([10.0, INF, 10.0, 20.0]), np.array([INF, INF, NAN, 40.0])
    r = scoring.paired_bounds(ta, tb, 40.0, 40.0)
    assert int(r["n_pairs"]) == 2 and int(r["n_censored"]) == 1
    assert r["speedup"] == pytest.approx(math.sqrt(4 * 2))  # exp(mean(log 4, log 2))
    one = scoring.paired_bounds(np.array([10.0]), np.array([20.0]), 40.0, 40.0)
    assert (one["lo"], one["hi"], one["p_faster"]) == (0.0, INF, 0.0)  # one pair: no interval


def test_paired_comparison_and_verdict_on_a_trials_frame() -> None:
    times = {("A", k): [t] for k, t in enumerate([10.0, 11.0, 9.0, 10.5])}
    times |= {("B", k): [t] for k, t in enumerate([20.0, 23.0, 17.0, INF])}
    trials = make_trials(times).assign(budget_s=30.0)
    r = scoring.paired_comparison(trials, "A", "B", "w")
    assert r["n_pairs"] == 4 and r["n_censored"] == 1
    d = np.log([20 / 10, 23 / 11, 17 / 9, 30 / 10.5])  # B's miss at the budget
    assert r["speedup"] == pytest.approx(math.exp(d.mean()))
    assert r["p_faster"] >= 0.95 and r["lo"] > 1 and r["method"] == scoring.PAIRED_METHOD
    v = scoring.verdict(trials, ("w", "default"))
    assert (v["verdict"], v["fastest"], v["runner_up"]) == ("separated", "A", "B")
    assert scoring.prob_faster(trials, "A", "B", "w") == r["p_faster"]
    with pytest.raises(KeyError, match="no submission"):
        scoring.paired_comparison(trials, "A", "Z", "w")


def test_the_runner_up_among_tied_misses_is_the_closest_not_the_first_by_name() -> None:
    """Several medians miss (snn on the cpu-1core board): the runner-up is the tied method that
    reached in the most studies, then the lowest mean log time, not "aa" for its name."""
    times = {("L", k): [10.0] for k in range(4)}
    times |= {("aa", k): [INF] for k in range(4)}  # never reached
    times |= {("zz", k): [t] for k, t in enumerate([12.0, INF, 14.0, INF])}  # 2 of 4
    times |= {("mm", k): [t] for k, t in enumerate([25.0, INF, INF, INF])}  # 1 of 4
    trials = make_trials(times).assign(budget_s=30.0)
    v = scoring.verdict(trials, "w")
    assert (v["fastest"], v["runner_up"]) == ("L", "zz")
    # equal shares reached: the lower mean log time (misses at the budget) is the closer
    times[("mm", 2)] = [20.0]
    times[("zz", 2)] = [INF]
    times[("zz", 3)] = [29.0]
    v = scoring.verdict(make_trials(times).assign(budget_s=30.0), "w")
    assert v["runner_up"] == "zz"  # mean log of (12, 30, 30, 29) < that of (25, 30, 20, 30)


def test_verdict_levels() -> None:
    assert scoring.verdict_of(1.2, 3.0, 0.99) == "separated"
    assert scoring.verdict_of(0.95, 1.08, 0.6) == "equivalent"  # within [1/1.1, 1.1]
    assert scoring.verdict_of(0.85, 1.08, 0.6) == "undecided"
    assert scoring.verdict_of(0.0, INF, 0.0) == "undecided"


def test_a_lone_or_unreached_workload_is_undecided() -> None:
    trials = make_trials({("A", 0): [INF], ("A", 1): [INF], ("B", 0): [INF], ("B", 1): [INF]})
    v = scoring.verdict(trials, "w")
    assert v["verdict"] == "undecided" and v["fastest"] is None
    lone = scoring.verdict(make_trials({("A", 0): [5.0], ("A", 1): [6.0]}), "w")
    assert lone["fastest"] == "A" and lone["runner_up"] is None


def test_score_interval_spans_the_box_of_time_intervals() -> None:
    # one problem, A in [10, 20], B in [30, 40]: A is fastest in the whole box (score 1);
    # B's ratio ranges over 30/20 = 1.5 .. 40/10 = 4: score (4 - 4)/3 = 0 .. (4 - 1.5)/3
    lo = np.array([[10.0, 30.0]])
    hi = np.array([[20.0, 40.0]])
    s_lo, s_hi = scoring.score_bounds(lo, hi)
    assert s_lo.tolist() == pytest.approx([1.0, 0.0])
    assert s_hi.tolist() == pytest.approx([1.0, 2.5 / 3])
    # A's upper end at a miss: A can lose the problem entirely, and B can be the fastest
    s_lo, s_hi = scoring.score_bounds(lo, np.array([[INF, 40.0]]))
    assert s_lo[0] == 0.0 and s_hi[1] == 1.0


def test_score_interval_and_prob_faster_table_on_a_board() -> None:
    trials = make_trials({("A", k): [10.0 + k] for k in range(3)} | {("B", 0): [30.0]})
    times = scoring.workload_times(trials).join(scoring.time_intervals(trials))
    b = times.loc[("w", "default", "B")]
    assert (b.lo, b.hi) == (0.0, INF)  # one study: unbounded
    iv = scoring.score_intervals(times)
    assert iv.loc["B"].tolist() == [0.0, 1.0]  # B could be anything
    table = scoring.prob_faster_table(trials)
    assert len(table) == 2 and set(table.n_pairs) == {1}  # one study in common
    assert (table.p_a_faster == 0).all()  # one pair: no confidence either way


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
