"""The adaptive bench (harness/bench.py): its looks, its error control across looks (checked by
simulation with the project's own scoring functions), and its decisions on trial frames.

``python tests/test_bench_adaptive.py`` prints the simulation table of docs/scoring.md
(20,000 boards per row, seed 123)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import bench, discovery, scoring

SCHEDULE = bench.looks()
LEVEL = bench.look_level(len(SCHEDULE))


def test_looks_and_levels():
    assert SCHEDULE == (3, 5, 8, 12)
    assert bench.looks(2, 3) == (2, 3) and bench.looks(4, 4) == (4,)
    assert LEVEL == pytest.approx(1 - 0.05 / 4)
    for bad in ((1, 5), (5, 4)):
        with pytest.raises(ValueError, match="looks need"):
            bench.looks(*bad)


def _simulate(ratio: float, sd: float, rho: float, boards: int, rng, miss_budget: float = np.inf):
    """Boards of two methods, log-normal study times sharing a study effect (the paired seeds):
    log t = mu + s_study + e. Returns per board the stopping look's (called, lo, hi, look)."""
    n = SCHEDULE[-1]
    shared = rng.normal(0, sd * np.sqrt(rho), (boards, n))
    own = np.sqrt(1 - rho) * sd
    ta = np.exp(np.log(10.0) + shared + rng.normal(0, own, (boards, n)))
    tb = np.exp(np.log(10.0 * ratio) + shared + rng.normal(0, own, (boards, n)))
    ta = np.where(ta > miss_budget, np.inf, ta)
    tb = np.where(tb > miss_budget, np.inf, tb)
    budget = miss_budget if np.isfinite(miss_budget) else 1e9
    stopped = np.zeros(boards, bool)
    called = np.full(boards, "", dtype=object)
    lo = np.full(boards, np.nan)
    hi = np.full(boards, np.nan)
    look = np.zeros(boards, int)
    for k in SCHEDULE:
        ab = scoring.paired_bounds(ta[:, :k], tb[:, :k], budget, budget, LEVEL)
        ba = scoring.paired_bounds(tb[:, :k], ta[:, :k], budget, budget, LEVEL)
        sep_a = ab["p_faster"] >= LEVEL
        sep_b = ba["p_faster"] >= LEVEL
        equiv = (ab["lo"] >= 1 / scoring.EQUIVALENCE) & (ab["hi"] <= scoring.EQUIVALENCE)
        now = ~stopped & (sep_a | sep_b | equiv | (k == SCHEDULE[-1]))
        called[now & sep_a] = "a"
        called[now & sep_b] = "b"
        called[now & equiv & ~sep_a & ~sep_b] = "equivalent"
        lo[now], hi[now], look[now] = ab["lo"][now], ab["hi"][now], k
        stopped |= now
    return called, lo, hi, look


@pytest.mark.parametrize("sd,rho", [(0.3, 0.5), (0.15, 0.0)])
def test_equal_methods_are_rarely_called_apart_over_all_looks(sd, rho):
    """Equal methods: a look that names either one faster, at any look, in at most 5% of
    boards, and the stopping look's interval covers the true ratio (1) in at least 95%."""
    rng = np.random.default_rng(7)
    called, lo, hi, _ = _simulate(1.0, sd, rho, 4000, rng)
    wrong = np.isin(called, ["a", "b"]).mean()
    assert wrong <= 0.05, wrong
    assert ((lo <= 1.0) & (1.0 <= hi)).mean() >= 0.95


def test_a_true_2x_difference_is_separated_and_covered():
    """A 2x difference at a study-to-study spread of 0.3 (log) is called, the right way, in at
    least 95% of boards by the last look; no board names the slower one; the interval at the
    stopping look covers 2 in at least 93% of boards (nominal 95% over the looks)."""
    rng = np.random.default_rng(11)
    called, lo, hi, look = _simulate(2.0, 0.3, 0.5, 4000, rng)
    assert (called == "a").mean() >= 0.95
    assert (called == "b").sum() == 0
    assert ((lo <= 2.0) & (2.0 <= hi)).mean() >= 0.93
    assert np.median(look) <= 5  # most boards settle by the second look: the point of looks


def test_misses_at_the_budget_keep_the_error_rate():
    """Equal methods near their budget: many studies miss (enter at the budget, censored);
    wrong calls stay within 5%."""
    rng = np.random.default_rng(3)
    called, _, _, _ = _simulate(1.0, 0.3, 0.5, 3000, rng, miss_budget=12.0)
    assert np.isin(called, ["a", "b"]).mean() <= 0.05


# -- decisions on trial frames -----------------------------------------------------------------


def _trials(times: dict[str, list[float]], workload="w", budget=100.0) -> pd.DataFrame:
    rows = []
    for sub, ts in times.items():
        for s, t in enumerate(ts):
            rows.append(
                {
                    "workload": workload,
                    "variant": "default",
                    "submission": sub,
                    "study": s,
                    "trial": 0,
                    "time_to_target_s": t,
                    "steps_to_target": 1.0,
                    "s_per_step": 0.1,
                    "device_s": 1.0,
                    "status": "target_reached" if np.isfinite(t) else "missed",
                    "budget_s": budget,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_decide_stops_methods_separated_from_the_leader():
    fast = [10.0, 11.0, 10.5]
    close = [10.4, 11.3, 10.6]  # not separable from the leader at 3 studies
    slow = [40.0, 44.0, 42.0]  # separated from the leader: stops
    t = _trials({"fast": fast, "close": close, "slow": slow})
    st = bench.decide(t, {"w": ["fast", "close", "slow"]}, "default", LEVEL)["w"]
    assert st.verdict["verdict"] == "undecided" and st.verdict["fastest"] == "fast"
    assert st.open_cells == ["close", "fast"]
    assert st.studies == {"fast": 3, "close": 3, "slow": 3}
    assert bench.next_target(st, SCHEDULE) == 5
    # at the last look nothing is open any more
    st = bench.decide(t, {"w": ["fast", "close", "slow"]}, "default", LEVEL, max_studies=3)["w"]
    assert st.settled and bench.next_target(st, SCHEDULE) is None


def test_decide_settles_a_separated_workload_and_keeps_an_open_paper_pair():
    t = _trials(
        {
            "a": [10.0, 10.2, 9.9, 10.1, 10.0],
            "b": [30.0, 31.0, 29.0, 30.5, 30.2],
            "c": [31.0, 29.0, 30.8, 30.0, 31.5],
        }  # fmt: skip
    )
    cells = {"w": ["a", "b", "c"]}
    st = bench.decide(t, cells, "default", LEVEL)["w"]
    assert st.verdict["verdict"] == "separated" and st.settled
    pairs = [bench.PaperPair("w", "c", "b")]  # c improves on b: that comparison is open
    st = bench.decide(t, cells, "default", LEVEL, pairs)["w"]
    assert st.open_cells == ["b", "c"] and "paper pair c vs b open" in st.why


def test_decide_with_misses_and_unrun_cells():
    t = _trials({"a": [np.inf, np.inf, np.inf], "b": [np.inf, 50.0, np.inf]})
    st = bench.decide(t, {"w": ["a", "b"]}, "default", LEVEL)["w"]
    assert st.verdict["fastest"] is None and st.open_cells == ["b"]
    t = _trials({"a": [np.inf] * 3, "b": [np.inf] * 3})
    st = bench.decide(t, {"w": ["a", "b"]}, "default", LEVEL)["w"]
    assert st.settled and "no method reached the target in any study" in st.why
    st = bench.decide(t, {"w": ["a", "b", "new"]}, "default", LEVEL)["w"]
    assert st.open_cells == ["a", "b", "new"] and st.why == "not every method ran yet"
    st = bench.decide(t.iloc[:0], {"w": ["a"]}, "default", LEVEL)["w"]
    assert st.open_cells == ["a"] and bench.next_target(st, SCHEDULE) == 3


def test_cutoff_is_four_times_the_best_cells_slowest_study():
    t = _trials({"a": [10.0, 12.0, 11.0], "b": [np.inf, 30.0, np.inf]})
    cut, why = bench.cutoffs(t, "w", "default")
    assert cut == 48.0 and "past 4x the slowest study of a (12.0 s)" == why
    assert bench.cutoffs(_trials({"a": [np.inf] * 3}), "w", "default") is None
    assert bench.cutoffs(t.iloc[:0], "w", "default") is None


def test_a_censored_trial_enters_the_paired_comparison_at_its_cutoff():
    """A trial stopped at its cutoff is a miss known to exceed the cutoff, not the budget: the
    pair's log ratio enters at log(cutoff / t) (a smaller, honest margin)."""
    t = _trials({"a": [10.0, 11.0, 9.0], "b": [np.inf, np.inf, np.inf]})
    t["censored_at_s"] = np.where(t.submission == "b", 40.0, np.nan)
    best = scoring.study_best(t)
    assert list(best.loc[best.submission == "b", "budget_s"]) == [40.0] * 3
    c = scoring.paired_comparison(t, "a", "b", "w")
    assert c["speedup"] == pytest.approx(np.exp(np.mean(np.log(40.0 / np.array([10, 11, 9])))))
    assert c["n_censored"] == 3


if __name__ == "__main__":
    rows = [(1.0, 0.3, 0.5), (1.0, 0.15, 0.0), (2.0, 0.3, 0.5), (1.5, 0.3, 0.5), (1.3, 0.15, 0.5)]
    for ratio, sd, rho in rows:
        c, lo, hi, look = _simulate(ratio, sd, rho, 20_000, np.random.default_rng(123))
        print(
            f"| {ratio:g} | {sd:g} ({rho:.0%}) | {(c == 'a').mean():.1%} | {(c == 'b').mean():.1%} "
            f"| {((lo <= ratio) & (ratio <= hi)).mean():.1%} | {np.median(look):g} |"
        )
    c, *_ = _simulate(1.0, 0.3, 0.5, 20_000, np.random.default_rng(5), miss_budget=12.0)
    print(f"a tie with misses at the budget: wrong calls {np.isin(c, ['a', 'b']).mean():.1%}")


def test_the_queue_runs_every_first_look_then_a_staircase_over_later_looks():
    """Every workload's first look before any later look (cheapest workload first), so a bench
    short of time still puts every workload and paper pair on the board; then the later looks
    as a staircase, the cheapest workload's next look beside the next one's."""
    from harness.sweep import Job

    cells = {w: ["s"] for w in ("translation", "ldpc", "snn")}
    rank = bench.workload_order(cells, "default", "cpu")
    budgets = {w: discovery.get_spec(w, "default").budget_for("cpu") for w in cells}
    assert list(rank) == sorted(cells, key=lambda w: (budgets[w], w))
    jobs = [Job(w, "default", sub, s, 0, 0) for w in cells for s in range(8) for sub in ("a", "b")]
    ok = dict.fromkeys(cells, True)
    order = sorted(jobs, key=lambda j: bench.job_priority(j, rank, SCHEDULE, ok))
    first, second, third = sorted(cells, key=rank.get)
    seq = [(j.workload, j.study) for j in order]
    # the first looks (studies 0-2) of all three, cheapest first, study by study, both methods
    assert seq[:18] == [(w, s) for w in (first, second, third) for s in (0, 0, 1, 1, 2, 2)]
    # then the staircase: the cheapest workload's second look (studies 3-4) alone,
    assert seq[18:22] == [(first, s) for s in (3, 3, 4, 4)]
    # its third look (studies 5-7) beside the next workload's second, cheaper first
    assert seq[22:32] == [(first, s) for s in (5, 5, 6, 6, 7, 7)] + [
        (second, s) for s in (3, 3, 4, 4)
    ]
    assert seq[-6:] == [(third, s) for s in (5, 5, 6, 6, 7, 7)]
    # an unknown workload sorts last rather than failing
    assert bench.workload_order({"nope": ["s"]}, "default", "cpu") == {"nope": 0}


def test_the_report_runs_at_the_lowest_priority_beside_the_trials():
    import os
    import sys
    import threading

    def probe(x):
        return x, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, 0)
    value, nice = bench.run_niced(probe, 7)
    assert value == 7
    if sys.platform.startswith("linux"):
        assert nice == 19
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the caller's own is untouched

    def boom():
        raise ValueError("report failed")

    with pytest.raises(ValueError, match="report failed"):
        bench.run_niced(boom)
