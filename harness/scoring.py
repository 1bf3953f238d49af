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

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

PROBLEM = ["workload", "variant"]
CELL = [*PROBLEM, "submission"]
TAU_MAX = 4.0  # AlgoPerf: a time over 4x the best counts as a failure
N_RESAMPLES = 2000
LEVEL = 0.95


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

    Ties go to the lower trial index, so the choice does not depend on row order. A miss has
    steps_to_target inf too, so steps are summarised with the same rule as times.
    """
    _check_one_class(trials)
    t = trials.assign(time_s=trial_times(trials))
    t = t.sort_values([*CELL, "study", "time_s", "trial"], kind="stable")
    best = t.groupby([*CELL, "study"], sort=True).head(1)
    steps = pd.to_numeric(best["steps_to_target"], errors="coerce").astype(float)
    best = best.assign(steps_to_target=steps.where(np.isfinite(best["time_s"]), np.inf))
    return best[[*CELL, "study", "trial", "time_s", "steps_to_target"]].reset_index(drop=True)


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


def bootstrap_times(
    trials: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Bootstrap draws of every workload time: rows are resamples, columns (workload, variant,
    submission).

    Each draw resamples the studies of one cell with replacement and takes the median of their
    study-best times, exactly as the point estimate does. Every cell has its own Generator seeded
    from (seed, cell name), so its draws do not depend on which other cells are in the frame.
    """
    cols: dict[tuple, np.ndarray] = {}
    for key, g in study_best(trials).groupby(CELL, sort=True):
        x = g["time_s"].to_numpy(float)
        rng = np.random.default_rng([seed, zlib.crc32("/".join(map(str, key)).encode())])
        cols[key] = np.median(x[rng.integers(0, len(x), size=(n_resamples, len(x)))], axis=1)
    draws = pd.DataFrame(cols, index=pd.RangeIndex(n_resamples, name="resample"))
    draws.columns = pd.MultiIndex.from_tuples(list(cols), names=CELL)
    return draws


def _interval(x: np.ndarray, level: float) -> np.ndarray:
    alpha = (1.0 - level) / 2.0
    return quantile_inf(x, [alpha, 1.0 - alpha])


def time_intervals(draws: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Percentile interval [lo, hi] of each workload time from ``bootstrap_times`` draws."""
    lo, hi = _interval(draws.to_numpy(float), level)
    return pd.DataFrame({"lo": lo, "hi": hi}, index=draws.columns)


def score_draws(draws: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.DataFrame:
    """The benchmark score of every submission on every bootstrap resample (rows)."""
    problems = sorted({k[:2] for k in draws.columns})
    subs = sorted({k[2] for k in draws.columns})
    cube = np.full((len(draws), len(problems), len(subs)), np.inf)
    for (w, v, s), x in draws.items():
        cube[:, problems.index((w, v)), subs.index(s)] = x.to_numpy(float)
    return pd.DataFrame(_scores(cube, tau_max), index=draws.index, columns=subs)


def score_intervals(
    draws: pd.DataFrame, level: float = LEVEL, tau_max: float = TAU_MAX
) -> pd.DataFrame:
    """Percentile interval [lo, hi] of each submission's benchmark score."""
    scores = score_draws(draws, tau_max)
    lo, hi = _interval(scores.to_numpy(float), level)
    return pd.DataFrame({"lo": lo, "hi": hi}, index=scores.columns.rename("submission"))


def prob_faster(
    draws: pd.DataFrame, a: str, b: str, workload: str, variant: str | None = None
) -> float:
    """P(A's median time < B's) on one problem over the bootstrap draws; ties count half.

    A submission without trials on the problem is a miss there (inf), so two misses tie at 0.5.
    ``variant`` may be left out when the workload has only one.
    """
    subs = set(draws.columns.get_level_values("submission"))
    for name in (a, b):
        if name not in subs:
            raise KeyError(f"no submission {name!r}; have {sorted(subs)}")
    if variant is None:
        variants = sorted({v for w, v, _ in draws.columns if w == workload})
        if len(variants) != 1:
            raise KeyError(f"workload {workload!r}: give one variant of {variants}")
        variant = variants[0]
    miss = np.full(len(draws), np.inf)
    ta = draws.get((workload, variant, a), miss)
    tb = draws.get((workload, variant, b), miss)
    ta, tb = np.asarray(ta, float), np.asarray(tb, float)
    return float(np.mean(ta < tb) + 0.5 * np.mean(ta == tb))


def prob_faster_table(draws: pd.DataFrame) -> pd.DataFrame:
    """``prob_faster`` for every ordered pair of submissions on every problem (long format)."""
    subs = sorted(set(draws.columns.get_level_values("submission")))
    rows = [
        {"workload": w, "variant": v, "a": a, "b": b, "p_a_faster": prob_faster(draws, a, b, w, v)}
        for w, v in sorted({k[:2] for k in draws.columns})
        for a in subs
        for b in subs
        if a != b
    ]
    return pd.DataFrame(rows, columns=["workload", "variant", "a", "b", "p_a_faster"])


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
