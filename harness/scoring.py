"""Scoring: from trials to workload times, performance profiles, the benchmark score, intervals.

The rules follow AlgoPerf (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms",
sec. 4) and are spelled out with examples in ``docs/scoring.md``:

- A trial's time is its ``time_to_target_s``; a trial that did not reach the target (NaN, None or
  inf there: budget spent, failed, complete without target) is a miss with time +inf.
- Per study the fastest trial counts; per problem (workload, variant) and submission the median
  over studies. A median that falls on a miss is a miss.
- Performance ratio r = t / (best t on that problem); r > tau_max counts as a failure (inf). The
  profile rho(tau) is the fraction of problems with r <= tau; the benchmark score is its area over
  [1, tau_max] divided by (tau_max - 1), so it lies in [0, 1] and is 1 only for the best everywhere.
- Intervals are percentile bootstrap intervals: studies are resampled with replacement within
  each (problem, submission), and every statistic is recomputed on each resample.

Inputs are a trials frame, one row per finished trial of ONE hardware class (``harness.collect``
builds it) with columns workload, variant, submission, study, trial, time_to_target_s,
steps_to_target, s_per_step, device_s, status. A submission with no trial on a problem that others
ran counts as a miss there. Infinities are handled explicitly: numpy's median is exact with +inf,
its linear quantile is not (inf - inf), hence ``quantile_inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

PROBLEM = ["workload", "variant"]
CELL = [*PROBLEM, "submission"]
TAU_MAX = 4.0  # AlgoPerf: a time over 4x the best counts as a failure
LEVEL = 0.95
EQUIVALENCE = 1.10  # equivalent: the speed-up interval lies within [1/1.1, 1.1]
N_RESAMPLES = 2000  # unused since the intervals are closed-form; kept for callers' arguments


def trial_times(trials: pd.DataFrame) -> pd.Series:
    """Each trial's time to target, every miss (NaN, None, inf) as +inf."""
    t = pd.to_numeric(trials["time_to_target_s"], errors="coerce").astype(float)
    return t.where(np.isfinite(t), np.inf)


def _check_one_class(trials: pd.DataFrame) -> None:
    if "hardware_class" in trials and trials["hardware_class"].nunique() > 1:
        classes = sorted(trials["hardware_class"].unique())
        raise ValueError(f"trials from several hardware classes {classes}; score one at a time")


def study_best(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (workload, variant, submission, study) the fastest trial; time inf if none reached.
    ``budget_s`` is the study's largest trial budget (NaN if not recorded): a miss exceeded it;
    a trial stopped at a cutoff (``censored_at_s``, status ``censored``) counts its cutoff
    there, the least its time can be;
    ``time_resolution_s`` the chosen trial's (how finely its time was measured; NaN if not).

    Ties go to the lower trial index, so the choice does not depend on row order. A miss has
    steps_to_target inf too, so steps are summarised with the same rule as times.
    """
    _check_one_class(trials)
    t = trials.assign(time_s=trial_times(trials))
    t = t.sort_values([*CELL, "study", "time_s", "trial"], kind="stable")
    best = t.groupby([*CELL, "study"], sort=True).head(1)
    steps = pd.to_numeric(best["steps_to_target"], errors="coerce").astype(float)
    best = best.assign(steps_to_target=steps.where(np.isfinite(best["time_s"]), np.inf))
    budget = pd.to_numeric(t["budget_s"], errors="coerce") if "budget_s" in t else np.nan
    if "censored_at_s" in t:  # a trial stopped at a cutoff is known to exceed that, not more
        cut = pd.to_numeric(t["censored_at_s"], errors="coerce")
        budget = cut.where(cut.notna() & ~np.isfinite(t["time_s"]), budget)
    budget = t.assign(budget_s=budget).groupby([*CELL, "study"], sort=True)["budget_s"].max()
    best = best.drop(columns="budget_s", errors="ignore").join(budget, on=[*CELL, "study"])
    res = best["time_resolution_s"] if "time_resolution_s" in best else np.nan
    best = best.assign(time_resolution_s=pd.to_numeric(res, errors="coerce"))
    cols = [*CELL, "study", "trial", "time_s", "steps_to_target", "budget_s", "time_resolution_s"]
    return best[cols].reset_index(drop=True)


def _median(x: pd.Series) -> float:
    return float(np.median(x.to_numpy(float))) if len(x) else np.nan


def workload_times(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (workload, variant, submission): the median over studies of the study-best times.

    Columns: time_s, steps_to_target (medians over studies, inf if a miss), s_per_step (median
    over all trials: systems speed, whatever the hyperparameters reached), n_studies, n_trials,
    n_reached, success_rate (fraction of trials that reached the target).
    """
    best = study_best(trials)
    out = best.groupby(CELL).agg(
        time_s=("time_s", _median),
        steps_to_target=("steps_to_target", _median),
        n_studies=("study", "size"),
    )
    per_trial = trials.assign(
        reached=np.isfinite(trial_times(trials)),
        s_per_step=pd.to_numeric(trials["s_per_step"], errors="coerce").astype(float),
    ).groupby(CELL)
    out["s_per_step"] = per_trial["s_per_step"].median()
    out["n_trials"] = per_trial.size()
    out["n_reached"] = per_trial["reached"].sum()
    out["success_rate"] = out["n_reached"] / out["n_trials"]
    return out


def time_matrix(times: pd.DataFrame) -> pd.DataFrame:
    """``workload_times`` as problems x submissions; inf where a submission did not run."""
    if times.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=PROBLEM), dtype=float)
    return times["time_s"].unstack("submission").astype(float).fillna(np.inf)


def _ratios(t: np.ndarray, tau_max: float) -> np.ndarray:
    """Performance ratios along the last axis (submissions); inf for misses and r > tau_max."""
    best = t.min(axis=-1, keepdims=True) if t.shape[-1] else t
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(t == best, 1.0, t / best)  # t == best also covers a best time of 0
    r = np.where(np.isinf(t), np.inf, r)
    return np.where(r > tau_max, np.inf, r)


def _scores(t: np.ndarray, tau_max: float) -> np.ndarray:
    """Score per submission of a (..., problems, submissions) array of times: closed-form area.

    rho(tau) is a step function, so the area under it over [1, tau_max] is the mean over problems
    of (tau_max - r) for the finite ratios; divided by (tau_max - 1) it is in [0, 1].
    """
    if t.shape[-2] == 0:
        return np.full(t.shape[:-2] + t.shape[-1:], np.nan)
    r = _ratios(t, tau_max)
    area = np.where(np.isfinite(r), tau_max - r, 0.0)
    return area.mean(axis=-2) / (tau_max - 1.0)


def performance_ratios(times: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.DataFrame:
    """r = t / best t per problem (rows); inf for a miss or r > tau_max; 1 for every tie at best."""
    return pd.DataFrame(_ratios(times.to_numpy(float), tau_max), times.index, times.columns)


def performance_profile(
    times: pd.DataFrame, taus: Sequence[float] | None = None, tau_max: float = TAU_MAX
) -> pd.DataFrame:
    """rho_s(tau): the fraction of problems on which s is within a factor tau of the best."""
    taus = np.linspace(1.0, tau_max, 301) if taus is None else np.asarray(taus, float)
    r = _ratios(times.to_numpy(float), tau_max)  # (problems, submissions)
    rho = (r[None, :, :] <= taus[:, None, None]).mean(axis=1) if len(r) else np.nan
    return pd.DataFrame(rho, index=pd.Index(taus, name="tau"), columns=times.columns)


def benchmark_score(times: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.Series:
    """The normalised area under each submission's performance profile over [1, tau_max]."""
    return pd.Series(_scores(times.to_numpy(float), tau_max), times.columns, name="score")


def speedup_vs_baseline(times: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Geometric-mean speed-up t_baseline / t over the problems both finished (> 1: faster).

    Columns: speedup (NaN if no problem in common), n_problems (how many it averages).
    """
    if baseline not in times.columns:
        raise KeyError(f"baseline {baseline!r} not among submissions {sorted(times.columns)}")
    b = times[baseline].to_numpy(float)
    rows = {}
    for sub in times.columns:
        t = times[sub].to_numpy(float)
        both = np.isfinite(b) & np.isfinite(t) & (b > 0) & (t > 0)
        speedup = float(np.exp(np.mean(np.log(b[both] / t[both])))) if both.any() else np.nan
        rows[sub] = {"speedup": speedup, "n_problems": int(both.sum())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("submission")


def quantile_inf(x: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """numpy's default (linear) quantiles along axis 0, exact when x holds +inf.

    np.quantile interpolates inf - inf into NaN; here a quantile that touches an inf is inf.
    """
    s = np.sort(np.asarray(x, float), axis=0)
    pos = np.asarray(q, float) * (len(s) - 1)
    lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
    a, b = s[lo], s[hi]
    w = (pos - lo).reshape((-1,) + (1,) * (s.ndim - 1))
    with np.errstate(invalid="ignore"):
        return np.where((w == 0) | (a == b), a, np.where(np.isinf(b), np.inf, a + w * (b - a)))


# -- intervals: t on log times, propagated to the score; paired comparisons ------------------
#
# The array functions below carry the statistics; the frame functions after them apply them to
# a trials frame. tests/test_scoring_calibration.py simulates leaderboards through the array
# functions (vectorised over boards) and checks a few boards through the frame functions too.


def _t_quantile(q: float, df: np.ndarray) -> np.ndarray:
    """Student-t quantile, NaN where df < 1."""
    df = np.asarray(df, float)
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, stats.t.ppf(q, np.maximum(df, 1.0)), np.nan)


def _censored_log(t: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """log t, a miss (+inf) set at log(budget): the least it can be. NaN stays NaN."""
    with np.errstate(divide="ignore"):
        return np.log(np.where(np.isinf(t), budget, t))


def _resolution_var(t: np.ndarray, budget: np.ndarray, res: np.ndarray) -> np.ndarray:
    """Variance a time's rounding to its resolution adds to its log: ((res / t)^2) / 12
    (uniform error of one resolution step), a miss taken at its budget; 0 where unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (np.asarray(res, float) / np.where(np.isinf(t), budget, t)) ** 2 / 12.0
    return np.where(np.isfinite(v), v, 0.0)


def log_t_bounds(
    t: np.ndarray, budget: np.ndarray, level: float = LEVEL, resolution: np.ndarray = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``level`` interval (lo, hi) for the median study time of each cell.

    ``t`` is (..., studies): study times, +inf for a miss, NaN for a study that was not run;
    ``budget`` broadcasts to it (the time a miss exceeded). The model: log study times are
    normal (log-normal times), so the median is exp(mean of log t) and the t interval on the mean
    of log times is exact for any number of studies >= 2. A miss enters at its budget (the least
    it can be) and makes the upper bound a miss (+inf): the data cannot bound the time above the
    budget. Under 2 studies the interval is unbounded: (0, inf); if every study missed, it is
    (budget, inf) from 6 studies on, else (0, inf). ``resolution`` (seconds,
    broadcast like ``budget``) floors the variance of the log times at that of their rounding,
    so that times tied by the resolution do not give a zero-width interval.
    """
    t = np.asarray(t, float)
    budget = np.broadcast_to(np.asarray(budget, float), t.shape)
    y = _censored_log(t, budget)
    n = np.sum(~np.isnan(t), axis=-1)
    floor = _resolution_var(t, budget, np.broadcast_to(np.asarray(resolution, float), t.shape))
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.nansum(np.where(np.isnan(y), 0.0, y), axis=-1) / n
        ss = np.nansum(np.where(np.isnan(y), 0.0, (y - m[..., None]) ** 2), axis=-1)
        var = np.maximum(ss / (n - 1), np.where(np.isnan(t), 0.0, floor).sum(axis=-1) / n)
        half = _t_quantile(0.5 + level / 2, n - 1) * np.sqrt(var / n)
        lo, hi = np.exp(m - half), np.exp(m + half)
    missed = np.any(np.isinf(t), axis=-1)
    lo = np.where(n >= 2, lo, 0.0)
    # every study missed: nothing to estimate a spread from; the budget is a lower bound only
    # where it is distribution-free (P(all n studies miss | median under the budget) <= 0.5^n)
    all_missed = np.all(np.isinf(t) | np.isnan(t), axis=-1) & (n >= 1)
    free = 0.5**n <= (1.0 - level) / 2
    lo = np.where(all_missed, np.where(free, np.exp(np.nanmin(np.where(np.isnan(y), np.inf, y),
                                                             axis=-1)), 0.0), lo)  # fmt: skip
    hi = np.where((n >= 2) & ~missed, hi, np.inf)
    return lo, hi


def paired_bounds(
    ta: np.ndarray,
    tb: np.ndarray,
    budget_a: np.ndarray,
    budget_b: np.ndarray,
    level: float = LEVEL,
    resolution_a: np.ndarray = 0.0,
    resolution_b: np.ndarray = 0.0,
) -> dict[str, np.ndarray]:
    """Paired comparison of A with B over studies: study s of A against study s of B.

    Arrays are (..., studies); +inf is a miss, NaN a study not run. Per pair
    d_s = log t_B,s - log t_A,s (> 0: A faster), a miss entering at its budget, so a pair where
    only B missed gives d_s its least value log(budget_B / t_A,s) and one where only A missed its
    greatest; a pair where both missed carries no information and is left out. The speed-up is
    exp(mean d) (t_B / t_A, > 1: A faster) with the paired-t interval; ``p_faster`` is the
    confidence that A is faster: the largest level at which the two-sided interval of the
    speed-up lies above 1 (1 - the two-sided p-value of the paired t test when the speed-up is
    above 1, else 0). So p_faster >= 0.95 exactly when the 95% interval lies above 1, and a call
    at that level is wrong with probability <= 2.5% per direction, <= 5% whichever of the two is
    named the faster. Fewer than 2 pairs: speed-up as estimated (NaN without pairs), interval
    (0, inf), p_faster 0. The resolutions floor the variance of d as in ``log_t_bounds``.
    """
    ta, tb = np.broadcast_arrays(np.asarray(ta, float), np.asarray(tb, float))
    ba = np.broadcast_to(np.asarray(budget_a, float), ta.shape)
    bb = np.broadcast_to(np.asarray(budget_b, float), tb.shape)
    ya, yb = _censored_log(ta, ba), _censored_log(tb, bb)
    floor = _resolution_var(ta, ba, np.broadcast_to(np.asarray(resolution_a, float), ta.shape))
    floor = floor + _resolution_var(
        tb, bb, np.broadcast_to(np.asarray(resolution_b, float), tb.shape)
    )
    use = ~np.isnan(ta) & ~np.isnan(tb) & ~(np.isinf(ta) & np.isinf(tb))
    censored = use & (np.isinf(ta) | np.isinf(tb))
    d = np.where(use, yb - ya, 0.0)
    n = use.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = d.sum(axis=-1) / n
        var = np.where(use, (d - m[..., None]) ** 2, 0.0).sum(axis=-1) / (n - 1)
        se = np.sqrt(np.maximum(var, np.where(use, floor, 0.0).sum(axis=-1) / n) / n)
        half = _t_quantile(0.5 + level / 2, n - 1) * se
        stat = np.abs(m) / se  # inf where se == 0 and m != 0
        p_two = np.where(
            se > 0, 2.0 * stats.t.sf(stat, np.maximum(n - 1, 1)), np.where(m != 0, 0.0, 1.0)
        )
    ok = n >= 2
    return {
        "speedup": np.where(n >= 1, np.exp(m), np.nan),
        "lo": np.where(ok, np.exp(m - half), 0.0),
        "hi": np.where(ok, np.exp(m + half), np.inf),
        "p_faster": np.where(ok & (m > 0), 1.0 - p_two, 0.0),
        "n_pairs": n,
        "n_censored": censored.sum(axis=-1),
    }


def score_bounds(
    lo: np.ndarray, hi: np.ndarray, tau_max: float = TAU_MAX
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of each submission's score from the intervals of the times: (..., problems,
    submissions) -> two (..., submissions) arrays.

    The score is monotone in every time (lower for a slower own time, higher for a slower
    rival), so its least value over the box of time intervals takes the own times at their
    upper bounds and every rival's at its lower bounds, and its greatest the other way round.
    A cell not run is a miss: lo = hi = inf.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    n_subs = lo.shape[-1]
    if lo.shape[-2] == 0:
        nan = np.full(lo.shape[:-2] + (n_subs,), np.nan)
        return nan, nan.copy()

    def term(own: np.ndarray, rival: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(own <= rival, 1.0, own / rival)
        r = np.where(np.isinf(own) | (r > tau_max), np.inf, r)
        return np.where(np.isfinite(r), (tau_max - r) / (tau_max - 1.0), 0.0)

    s_lo = np.empty(lo.shape[:-2] + (n_subs,))
    s_hi = np.empty_like(s_lo)
    for j in range(n_subs):
        others = np.delete(np.arange(n_subs), j)
        fast = lo[..., others].min(axis=-1) if len(others) else np.full(lo.shape[:-1], np.inf)
        slow = hi[..., others].min(axis=-1) if len(others) else np.full(lo.shape[:-1], np.inf)
        s_lo[..., j] = term(hi[..., j], fast).mean(axis=-1)
        s_hi[..., j] = term(lo[..., j], slow).mean(axis=-1)
    return s_lo, s_hi


def verdict_of(speedup_lo: float, speedup_hi: float, p_faster: float, level: float = LEVEL) -> str:
    """``separated`` if the fastest is faster than the runner-up at ``level`` (its speed-up
    interval lies above 1); ``equivalent`` if that interval lies within a factor
    ``EQUIVALENCE`` of 1 either way; else ``undecided``."""
    if p_faster >= level:
        return "separated"
    if speedup_lo >= 1.0 / EQUIVALENCE and speedup_hi <= EQUIVALENCE:
        return "equivalent"
    return "undecided"


# -- the same on a trials frame ---------------------------------------------------------------


def _study_frame(trials_or_study_times: pd.DataFrame) -> pd.DataFrame:
    """``study_best`` of a trials frame (it has ``time_to_target_s``), or a frame of study times
    as ``study_best`` returns them (``time_s``, one row per cell and study)."""
    f = trials_or_study_times
    if "time_to_target_s" in f:
        return study_best(f)
    if "time_s" not in f:
        raise ValueError("need a trials frame (time_to_target_s) or study times (time_s)")
    if f.duplicated([*CELL, "study"]).any():
        raise ValueError("study times have several rows for one (cell, study); pass the trials")
    for col in ("budget_s", "time_resolution_s"):
        f = f if col in f else f.assign(**{col: np.nan})
    return f


def study_times(trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(times, budgets, resolutions): rows (workload, variant, study), columns submissions; NaN
    where a submission has no such study (resolution: 0 where not recorded). A miss whose
    budget was not recorded gets the largest time reached on its problem, the least its budget
    can be (every run of a problem has one budget).
    """
    best = _study_frame(trials)
    idx = [*PROBLEM, "study"]
    times = best.pivot_table("time_s", idx, "submission", aggfunc="first", dropna=False)
    budget = best.assign(budget_s=best["budget_s"].astype(float)).pivot_table(
        "budget_s", idx, "submission", aggfunc="first", dropna=False
    )
    budget = budget.reindex(index=times.index, columns=times.columns)
    finite = times.where(np.isfinite(times))
    fallback = finite.max(axis=1).groupby(level=PROBLEM).transform("max")
    budget = budget.apply(lambda c: c.fillna(fallback))
    res = best.assign(r=best["time_resolution_s"].astype(float)).pivot_table(
        "r", idx, "submission", aggfunc="first", dropna=False
    )
    res = res.reindex(index=times.index, columns=times.columns).fillna(0.0)
    return times.astype(float), budget.astype(float), res.astype(float)


def time_intervals(trials: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per (workload, variant, submission) the ``log_t_bounds`` interval [lo, hi] of its time."""
    times, budget, res = study_times(trials)
    rows = {}
    for (w, v), t in times.groupby(level=PROBLEM, sort=True):
        for sub in t.columns:
            x = t[sub].dropna()
            if len(x):
                b, r = budget.loc[x.index, sub].to_numpy(), res.loc[x.index, sub].to_numpy()
                lo, hi = log_t_bounds(x.to_numpy(), b, level, r)
                rows[(w, v, sub)] = {"lo": float(lo), "hi": float(hi)}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["lo", "hi"])
    out.index = pd.MultiIndex.from_tuples(list(rows), names=CELL)
    return out


def score_intervals(times: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.DataFrame:
    """[lo, hi] of each submission's score from ``workload_times`` joined with
    ``time_intervals`` (``score_bounds``); a submission that did not run a problem has a miss
    there."""
    lo = times["lo"].unstack("submission").astype(float).fillna(np.inf)
    hi = times["hi"].unstack("submission").astype(float).fillna(np.inf)
    s_lo, s_hi = score_bounds(lo.to_numpy(), hi.to_numpy(), tau_max)
    return pd.DataFrame({"lo": s_lo, "hi": s_hi}, index=lo.columns.rename("submission"))


def _problem(times: pd.DataFrame, problem: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(problem, tuple):
        return problem
    variants = sorted({v for w, v in times.index.droplevel("study").unique() if w == problem})
    if len(variants) != 1:
        raise KeyError(f"workload {problem!r}: give (workload, variant), one of {variants}")
    return problem, variants[0]


def _pair(times, budget, res, a: str, b: str, key: tuple[str, str], level: float) -> dict:
    for name in (a, b):
        if name not in times.columns:
            raise KeyError(f"no submission {name!r}; have {sorted(times.columns)}")
    if key not in times.index.droplevel("study"):
        raise KeyError(f"no problem {key!r}")
    t, bud, r = (f.xs(key, level=PROBLEM) for f in (times, budget, res))
    out = paired_bounds(t[a], t[b], bud[a], bud[b], level, r[a], r[b])
    res = {k: float(x) for k, x in out.items()}
    res["n_pairs"], res["n_censored"] = int(res["n_pairs"]), int(res["n_censored"])
    res["method"] = PAIRED_METHOD
    return res


PAIRED_METHOD = "paired t on log time ratios, misses at the budget"


def paired_comparison(
    trials_or_study_times: pd.DataFrame,
    a: str,
    b: str,
    problem: str | tuple[str, str],
    level: float = LEVEL,
) -> dict:
    """A against B on one problem (a workload, or (workload, variant)), study s against study s:
    {speedup, lo, hi, p_faster, n_pairs, n_censored, method}; see ``paired_bounds``."""
    times, budget, res = study_times(trials_or_study_times)
    return _pair(times, budget, res, a, b, _problem(times, problem), level)


def prob_faster_table(trials: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """``paired_comparison`` of every ordered pair of submissions that ran a problem, long
    format: workload, variant, a, b, p_a_faster, speedup, lo, hi, n_pairs, n_censored."""
    times, budget, res = study_times(trials)
    rows = []
    for key in sorted(times.index.droplevel("study").unique()):
        ran = times.xs(key, level=PROBLEM).dropna(axis=1, how="all").columns
        for a in sorted(ran):
            for b in sorted(ran):
                if a != b:
                    r = _pair(times, budget, res, a, b, key, level)
                    rows.append({"workload": key[0], "variant": key[1], "a": a, "b": b,
                                 "p_a_faster": r["p_faster"],
                                 **{k: r[k] for k in
                                    ("speedup", "lo", "hi", "n_pairs", "n_censored")}})  # fmt: skip
    cols = ["workload", "variant", "a", "b", "p_a_faster", "speedup", "lo", "hi", "n_pairs"]
    return pd.DataFrame(rows, columns=[*cols, "n_censored"])


def _finite_mean(x: np.ndarray) -> float:
    """The mean of the finite values; +inf where there are none (nothing to compare by)."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else np.inf


def verdict(
    trials_or_study_times: pd.DataFrame,
    problem: str | tuple[str, str],
    level: float = LEVEL,
) -> dict:
    """One problem's verdict: the fastest (lowest median time) against the runner-up by
    ``paired_comparison``, and ``verdict_of`` that comparison.

    Medians that tie (most often: several methods whose medians miss) are ordered by the share
    of studies that reached the target, then by the mean log time with misses at the budget,
    then by name: the runner-up is the closest of the tied methods, not the first by name.

    Returns {verdict, fastest, runner_up, speedup, lo, hi, p_faster, n_pairs, n_censored,
    n_studies, method}; with one submission, or none that reached the target, the verdict is
    ``undecided`` and the comparison fields are NaN / None.
    """
    best = _study_frame(trials_or_study_times)
    times, budget, res = study_times(best)
    key = _problem(times, problem)
    t = times.xs(key, level=PROBLEM).dropna(axis=1, how="all")
    med = t.apply(lambda c: float(np.median(c.dropna().to_numpy())))
    b = budget.xs(key, level=PROBLEM).reindex(columns=t.columns)
    reached = np.isfinite(t).sum() / t.notna().sum()
    clog = {c: _finite_mean(_censored_log(t[c].to_numpy(), b[c].to_numpy())) for c in t}
    order = sorted(med.index, key=lambda s: (med[s], -reached[s], clog[s], s))
    out = {"verdict": "undecided", "fastest": None, "runner_up": None, "speedup": np.nan,
           "lo": np.nan, "hi": np.nan, "p_faster": np.nan, "n_pairs": 0, "n_censored": 0,
           "n_studies": len(t), "method": PAIRED_METHOD}  # fmt: skip
    if not order or not np.isfinite(med[order[0]]):
        return out
    out["fastest"] = order[0]
    if len(order) < 2:
        return out
    out["runner_up"] = order[1]
    out.update(_pair(times, budget, res, order[0], order[1], key, level))
    out["verdict"] = verdict_of(out["lo"], out["hi"], out["p_faster"], level)
    return out


def prob_faster(
    trials: pd.DataFrame, a: str, b: str, workload: str, variant: str | None = None
) -> float:
    """The confidence that A is faster than B on one problem (``paired_comparison``'s
    p_faster); ``variant`` may be left out when the workload has only one."""
    problem = workload if variant is None else (workload, variant)
    return paired_comparison(trials, a, b, problem)["p_faster"]


def cost_ledger(trials: pd.DataFrame) -> pd.DataFrame:
    """Device-seconds spent per submission, all trials counted.

    Columns: device_s (total), scored_s (the study-best trials that reached the target), tuning_s
    (every other trial: the price of finding those), failed_s (trials with status "failed", a
    part of tuning_s), wasted_s (training time preempted jobs lost since their last checkpoint,
    redone after a requeue), n_trials, n_failed. A missing device_s or wasted time counts as 0.
    """
    best = study_best(trials)
    scored = best.loc[np.isfinite(best["time_s"]), [*CELL, "study", "trial"]].assign(scored=True)
    t = trials.merge(scored, how="left", on=[*CELL, "study", "trial"])
    t["scored"] = t["scored"].fillna(False).astype(bool)
    t["failed"] = t["status"].eq("failed")
    t["device_s"] = pd.to_numeric(t["device_s"], errors="coerce").astype(float).fillna(0.0)
    wasted = t["wasted_train_s"] if "wasted_train_s" in t else pd.Series(0.0, index=t.index)
    t["wasted_s"] = pd.to_numeric(wasted, errors="coerce").astype(float).fillna(0.0)
    g = t.assign(
        scored_s=t["device_s"].where(t["scored"], 0.0),
        failed_s=t["device_s"].where(t["failed"], 0.0),
    ).groupby("submission")
    out = g.agg(
        device_s=("device_s", "sum"),
        scored_s=("scored_s", "sum"),
        failed_s=("failed_s", "sum"),
        wasted_s=("wasted_s", "sum"),
        n_trials=("device_s", "size"),
        n_failed=("failed", "sum"),
    )
    out.insert(2, "tuning_s", out["device_s"] - out["scored_s"])
    return out
