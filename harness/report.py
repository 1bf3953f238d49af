"""``ttr report``: the leaderboard of one hardware class and one variant, as Markdown, a static
HTML page and SVG figures.

    leaderboards/<hw>/README.md        verdicts, tables, figures, problems
    leaderboards/<hw>/index.html       the same, one self-contained page (figures inlined)
    leaderboards/<hw>/figures/*.svg    ``harness.figures``
    leaderboards/<hw>/results.parquet  every evaluation on the board, each row carrying its
                                       trial's summary (``trial.*``), so the board can be
                                       rebuilt from this file alone: ``write_report(parquet)``

Runs of other hardware classes are listed as problems, never ranked with these
(docs/design.md#hardware-classes); runs of other variants (a smoke run) are never mixed into a
board. The numbers come from ``harness.scoring`` (``docs/scoring.md`` says how); this module
turns them into tables and verdicts, and ``harness.page`` and ``harness.figures`` draw them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import discovery, figures, records, scoring
from harness.api import ContractError
from harness.collect import IDENTITY, PROVENANCE, SUMMARY, Problem, collect, write_parquet
from harness.figures import FigureOut
from harness.page import Page, Section, html_page, markdown
from harness.records import atomic_write_text


@dataclass
class Table:
    title: str
    note: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Board:
    """Everything the report shows for one hardware class, as frames."""

    hardware_class: str
    trials: pd.DataFrame
    times: pd.DataFrame  # scoring.workload_times joined with the interval (lo, hi)
    scores: pd.DataFrame  # score, lo, hi, n_reached, speedup, ... per submission, best first
    profile: pd.DataFrame
    prob_faster: pd.DataFrame
    ledger: pd.DataFrame
    n_resamples: int
    seed: int
    baseline: str | None = None
    # (workload, variant, submission) -> median over studies of the best validation value of
    # the primary metric (``best_metric``): how close a miss came
    best: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    # the level each verdict is tested at: 0.95, or a look's level under the adaptive bench
    # (harness/bench.py), which keeps 95% over all its looks
    level: float = scoring.LEVEL
    protocol: dict | None = None  # the bench's protocol (bench.json), when the runs have one


@dataclass
class ReportResult:
    out_dir: Path
    hardware_class: str
    readme: Path
    html: Path
    parquet: Path
    figures: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    board: Board | None = None


# -- numbers as text ---------------------------------------------------------------------


def fmt_s(t: float) -> str:
    """Seconds with three significant figures; "miss" for inf, "not run" for NaN."""
    if np.isnan(t):
        return "not run"
    if np.isinf(t):
        return "miss"
    return f"{t:.2f} s" if t < 10 else f"{t:.1f} s" if t < 100 else f"{t:.0f} s"


def fmt_interval(t: float, lo: float, hi: float) -> str:
    """``12.3 s [10.1, 15.0]``; a bound at a miss reads "miss"."""
    if np.isnan(t) or np.isinf(t) and np.isinf(lo):
        return fmt_s(t)
    return f"{fmt_s(t)} [{fmt_s(lo).removesuffix(' s')}, {fmt_s(hi).removesuffix(' s')}]"


def fmt_speedup(x: float, lo: float, hi: float) -> str:
    """``2.01x [1.62, 2.49]``; an unbounded end reads "0" or "inf"."""
    if np.isnan(x):
        return "–"
    end = "inf" if np.isinf(hi) else f"{hi:.2f}"
    return f"{x:.2f}x [{lo:.2f}, {end}]"


def fmt_count(x: float) -> str:
    return "miss" if np.isinf(x) else "–" if np.isnan(x) else f"{x:.0f}"


def fmt_device(s: float) -> str:
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s:.0f} s"


# -- numbers -----------------------------------------------------------------------------


def pick_hardware_class(trials: pd.DataFrame, wanted: str | None) -> str:
    """The requested class, else the one with the most ranked trials (ties: by name)."""
    counts = trials["hardware_class"].value_counts()
    if wanted is not None:
        if len(counts) and wanted not in counts:
            raise ContractError(
                f"no finished runs on hardware class {wanted!r}; have {sorted(counts.index)}"
            )
        return wanted
    if counts.empty:
        return "unknown"
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def score_board(
    trials: pd.DataFrame,
    hardware_class: str,
    baseline: str | None = None,
    n_resamples: int = scoring.N_RESAMPLES,
    seed: int = 0,
) -> Board:
    """All of ``harness.scoring`` for the trials of one hardware class. (``n_resamples`` and
    ``seed`` are kept for callers: the intervals are closed-form, nothing is resampled.)"""
    times = scoring.workload_times(trials).join(scoring.time_intervals(trials))
    matrix = scoring.time_matrix(times)
    scores = scoring.benchmark_score(matrix).to_frame().join(scoring.score_intervals(times))
    scores["n_reached"] = np.isfinite(matrix).sum(axis=0)
    scores["n_run"] = times.groupby(level="submission").size().reindex(scores.index).fillna(0)
    scores["n_problems"] = len(matrix)
    if baseline is not None:
        if baseline not in matrix.columns:
            raise ContractError(
                f"baseline {baseline!r} has no finished runs on {hardware_class}; "
                f"submissions: {sorted(matrix.columns)}"
            )
        speedup = scoring.speedup_vs_baseline(matrix, baseline)
        scores = scores.join(speedup.rename(columns={"n_problems": "n_speedup"}))
    scores = scores.sort_values(["score"], ascending=False, kind="stable")
    scores.insert(0, "rank", scores["score"].rank(ascending=False, method="min"))
    return Board(
        hardware_class,
        trials,
        times,
        scores,
        scoring.performance_profile(matrix),
        scoring.prob_faster_table(trials),
        scoring.cost_ledger(trials),
        n_resamples,
        seed,
        baseline,
    )


def best_metric(trials: pd.DataFrame, evals: pd.DataFrame) -> pd.Series:
    """Per (workload, variant, submission): the median over studies of the best value of the
    primary metric that any of the study's ranked trials reached on the validation split
    (lowest for a "min" metric). Guards are not applied: this says how close a miss came."""
    cols = ["workload", "variant", "submission", "study", "trial"]
    if trials.empty or evals.empty:
        return pd.Series(dtype=float)
    ranked = evals.merge(trials[cols].drop_duplicates(), on=cols)
    if "split" in ranked:
        ranked = ranked[ranked["split"] == "validation"]
    out = {}
    for (w, v), t in trials.groupby(["workload", "variant"]):
        metric, direction = t["metric"].iloc[0], t["direction"].iloc[0]
        e = ranked[(ranked.workload == w) & (ranked.variant == v)]
        if metric not in e or e.empty:
            continue
        values = pd.to_numeric(e[metric], errors="coerce")
        per_study = values.groupby([e["submission"], e["study"]]).agg(
            "min" if direction == "min" else "max"
        )
        for sub, x in per_study.groupby(level=0).median().items():
            out[(w, v, sub)] = float(x)
    return pd.Series(out, dtype=float)


# -- tables ------------------------------------------------------------------------------


def _how(board: Board) -> str:
    return (
        f"Hardware class `{board.hardware_class}`; time = median over studies of each study's "
        "fastest trial to target (a miss is infinite); [lo, hi] = 95% interval of the median "
        "time (t interval on log study times; a study that missed makes the upper end a miss; "
        "under 2 studies it is unbounded, [0, miss]); scores' intervals span those of the times "
        "(docs/scoring.md#intervals)."
    )


def overall_table(board: Board) -> Table:
    headers = ["Rank", "Submission", "Score [95% CI]", "Workloads reached", "Device time"]
    if board.baseline:
        headers.insert(4, f"Speed-up vs {board.baseline}")
    rows = []
    for r in board.scores.itertuples():
        row = [
            f"{r.rank:.0f}",
            str(r.Index),
            f"{r.score:.3f} [{r.lo:.3f}, {r.hi:.3f}]",
            f"{r.n_reached}/{r.n_problems}"
            + (f" (runs {r.n_run:.0f})" if r.n_run < r.n_problems else ""),
            fmt_device(board.ledger.loc[r.Index, "device_s"]),
        ]
        if board.baseline:
            n = f"{r.n_speedup} workload" + "s" * (r.n_speedup != 1)
            sp = "–" if np.isnan(r.speedup) else f"{r.speedup:.2f}x ({n} in common)"
            row.insert(4, sp)
        rows.append(row)
    note = (
        f"{_how(board)} Score = area under the performance profile over tau in [1, "
        f"{scoring.TAU_MAX:g}] / {scoring.TAU_MAX - 1:g}: 1 = fastest on every workload."
    )
    n = len(board.profile.columns) and int(board.scores["n_problems"].iloc[0])
    if (board.scores["n_run"] < n).any():
        note += (
            " A workload a submission does not run counts as a miss (AlgoPerf's rule), so the "
            f'score of a method built for only k of the {n} workloads ("runs k") is at most '
            f"k/{n}: compare such methods in their workloads' tables."
        )
    return Table("Overall", note, headers, rows)


def _target(trials: pd.DataFrame, workload: str, variant: str) -> str:
    first = trials[(trials.workload == workload) & (trials.variant == variant)].iloc[0]
    op = "≤" if first["direction"] == "min" else "≥"
    return f"`{first['metric']}` {op} {first['target']:g}"


def _closest_name(board: Board, workload: str, variant: str) -> str | None:
    """The submission with the best ``best_metric`` on this workload, if any."""
    if board.best.empty or (workload, variant) not in board.best.index.droplevel(2):
        return None
    mine = board.best.loc[(workload, variant)].dropna()  # by submission
    if mine.empty:
        return None
    t = board.trials[(board.trials.workload == workload) & (board.trials.variant == variant)]
    return str(mine.idxmin() if t["direction"].iloc[0] == "min" else mine.idxmax())


def _closest(board: Board, workload: str, variant: str) -> str:
    """ "name: value" for the best ``best_metric`` on this workload, or "–"."""
    name = _closest_name(board, workload, variant)
    return "–" if name is None else f"{name}: {board.best[(workload, variant, name)]:.4g}"


def best_table(board: Board) -> Table:
    """Per workload the fastest submission, and how sure that is: the bootstrap probability
    that it is faster than the runner-up."""
    headers = ["Workload", "Target", "Fastest", "Time to target [95% CI]", "Runner-up"]
    headers += ["P(fastest < runner-up)", "Closest: best metric", "Verdict"]
    pf = board.prob_faster.set_index(["workload", "variant", "a", "b"])["p_a_faster"]
    rows = []
    for (w, v), g in board.times.groupby(level=["workload", "variant"]):
        g = g.sort_values("time_s", kind="stable")
        top = g.iloc[0]
        row = [f"{w} ({v})", _target(board.trials, w, v)]
        closest = _closest(board, w, v)
        if not np.isfinite(top.time_s):
            rows.append(row + ["none reached", "–", "–", "–", closest, "undecided"])
            continue
        vd = scoring.verdict(board.trials, (w, v), board.level)  # the pair it compared
        if vd["fastest"] is not None:
            top = g.loc[(w, v, vd["fastest"])]
        row += [top.name[2], fmt_interval(top.time_s, top.lo, top.hi)]
        if len(g) > 1 and vd["runner_up"] is not None:
            second = g.loc[(w, v, vd["runner_up"])]
            row += [
                f"{second.name[2]}: {fmt_interval(second.time_s, second.lo, second.hi)}",
                f"{pf[(w, v, top.name[2], second.name[2])]:.2f}",
            ]
            verdict = f"{vd['verdict']}, speed-up {fmt_speedup(vd['speedup'], vd['lo'], vd['hi'])}"
        else:
            row += ["–", "–"]
            verdict = "the only method run"
        rows.append(row + [closest, verdict])
    note = (
        f"{_how(board)} P(fastest < runner-up): the confidence that the fastest is faster, "
        "from the paired comparison of study s with study s (the largest level at which the "
        "interval of its speed-up over the runner-up lies above 1; 0 when the paired estimate "
        f"favours the runner-up). Verdict, {_level_words(board)}: separated when the interval "
        "of the speed-up lies above 1; equivalent when it lies within "
        f"[1/{scoring.EQUIVALENCE:g}, {scoring.EQUIVALENCE:g}]; else undecided. "
        "Closest: the submission whose best metric "
        "(median over studies of "
        "the best validation value reached, guards not applied) is nearest the target, which "
        "says how close the field came where nobody reached it."
    )
    return Table("Fastest per workload", note, headers, rows)


def _workload_row(r: tuple, best: float) -> list[str]:
    return [
        str(r.Index[2]),
        fmt_interval(r.time_s, r.lo, r.hi),
        fmt_count(r.steps_to_target),
        f"{r.s_per_step:.3g}",
        f"{r.success_rate:.0%} ({r.n_reached}/{r.n_trials})",
        "–" if np.isnan(best) else f"{best:.4g}",
        f"{r.n_studies} x {r.n_trials / r.n_studies:.3g}",
    ]


def workload_tables(board: Board) -> list[Table]:
    """One table per (workload, variant): times with intervals, steps, s/step, success, and
    the best value of the metric reached."""
    headers = ["Submission", "Time to target [95% CI]", "Steps to target", "Seconds / step"]
    headers += ["Success rate (trials)", "Best metric", "Studies x trials"]
    tables = []
    for (w, v), g in board.times.groupby(level=["workload", "variant"]):
        rows = [
            _workload_row(r, board.best.get(r.Index, np.nan))
            for r in g.sort_values("time_s").itertuples()
        ]
        note = (
            f"Target: {_target(board.trials, w, v)}. {_how(board)} Best metric: the median over "
            "studies of the best validation value any trial of the study reached (guards not "
            "applied), which says how close a miss came."
        )
        tables.append(Table(f"{w} ({v})", note, headers, rows))
    return tables


def prob_faster_tables(board: Board) -> list[Table]:
    """One table per (workload, variant), over the submissions that ran it."""
    tables = []
    pf = board.prob_faster.set_index(["workload", "variant", "a", "b"])["p_a_faster"]
    for (w, v), g in board.times.groupby(level=["workload", "variant"]):
        ran = set(g.index.get_level_values("submission"))
        subs = [s for s in board.scores.index if s in ran]
        p = {(a, b): pf[(w, v, a, b)] for a in subs for b in subs if a != b}
        rows = [[a] + ["–" if a == b else f"{p[(a, b)]:.2f}" for b in subs] for a in subs]
        note = (
            "Confidence that the row is faster than the column: paired comparison of study s "
            "with study s (docs/scoring.md#pfaster); 0 where the paired estimate favours the "
            "column."
        )
        tables.append(Table(f"P(faster): {w} ({v})", note, ["row faster than →", *subs], rows))
    return tables


def ledger_table(board: Board) -> Table:
    headers = [
        "Submission",
        "Device time",
        "Scored trials",
        "Tuning",
        "of which failed",
        "Lost to preemption",
        "Trials (failed)",
    ]
    rows = [
        [
            str(r.Index),
            fmt_device(r.device_s),
            fmt_device(r.scored_s),
            fmt_device(r.tuning_s),
            fmt_device(r.failed_s),
            fmt_device(r.wasted_s),
            f"{r.n_trials} ({r.n_failed})",
        ]
        for r in board.ledger.itertuples()
    ]
    note = (
        "Every device-second spent by the ranked trials: scored = the study-best trials that "
        "reached the target; tuning = all others; failed trials are part of tuning; lost to "
        "preemption = training redone after a requeue (work since the last checkpoint)."
    )
    return Table("Cost ledger", note, headers, rows)


def all_tables(board: Board) -> list[Table]:
    return [
        overall_table(board),
        best_table(board),
        *workload_tables(board),
        *prob_faster_tables(board),
        ledger_table(board),
    ]


# -- verdicts: the numbers a reader wants first -------------------------------------------


def _level_words(board: Board) -> str:
    if board.level == scoring.LEVEL:
        return "at 95%"
    looks = (board.protocol or {}).get("looks") or []
    return (
        f"at {board.level:.2%} per look, so that over the bench's {len(looks)} looks "
        f"({', '.join(map(str, looks))} studies) the error stays within 5% "
        "(docs/scoring.md#the-bench)"
    )


def _interval_words(board: Board) -> str:
    """Under the bench a speed-up's interval is its look's interval; over all the looks together
    such intervals cover at 95% (repeated confidence intervals), which is what the column says."""
    if board.level == scoring.LEVEL:
        return ""
    return (
        f" (each look's {board.level:.2%} interval, so that it covers at 95% over all the "
        "bench's looks)"
    )


def _p(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.3f}"


def verdict_table(board: Board) -> Table:
    """One row per workload: the fastest against the runner-up, paired over studies."""
    headers = ["Workload", "Verdict", "Fastest", "Runner-up", "Speed-up [95% CI]"]
    headers += ["P(faster)", "Studies"]
    rows = []
    for w, v in board.times.index.droplevel(2).unique():
        c = scoring.verdict(board.trials, (w, v), board.level)
        studies = "–"
        if c["fastest"] is not None:
            studies = f"{c['n_pairs']} paired" if c["runner_up"] else f"{c['n_studies']}"
        why = c["verdict"]
        if c["fastest"] is None:
            why += " (no median reached the target)"
        rows.append(
            [
                f"{w} ({v})",
                why,
                c["fastest"] or "–",
                c["runner_up"] or "–",
                "–" if c["runner_up"] is None else fmt_speedup(c["speedup"], c["lo"], c["hi"]),
                _p(c["p_faster"]),
                studies,
            ]
        )
    note = (
        "Fastest = lowest median time to target over studies; the runner-up is the next. "
        "Speed-up = runner-up's time / fastest's, paired study by study (study s gives both "
        f"the same seed), with its interval{_interval_words(board)}; P(faster) = the "
        "confidence that the fastest is "
        f"faster. Verdict, {_level_words(board)}: separated when the interval lies above 1; "
        f"equivalent when it lies within [1/{scoring.EQUIVALENCE:g}, {scoring.EQUIVALENCE:g}]; "
        "else undecided. Studies: the pairs compared (a pair where both missed says nothing "
        "and is left out)."
    )
    return Table("Per workload", note, headers, rows)


def paper_pair_table(board: Board, pairs: Sequence[tuple[str, str, str]]) -> Table | None:
    """One row per (workload, method, the method its paper improves on) with both on the board."""
    rows = []
    for w, method, base in pairs:
        keys = board.times.index
        variants = sorted({v for ww, v, _ in keys if ww == w})
        for v in variants:
            if (w, v, method) not in keys or (w, v, base) not in keys:
                continue
            c = scoring.paired_comparison(board.trials, method, base, (w, v), board.level)
            r = scoring.paired_comparison(board.trials, base, method, (w, v), board.level)
            if c["p_faster"] >= board.level:
                verdict = "faster"
            elif r["p_faster"] >= board.level:
                verdict = "slower"
            elif scoring.verdict_of(c["lo"], c["hi"], c["p_faster"], board.level) == "equivalent":
                verdict = "equivalent"
            else:
                verdict = "undecided"
            rows.append(
                [
                    f"{w} ({v})",
                    method,
                    base,
                    verdict,
                    fmt_speedup(c["speedup"], c["lo"], c["hi"]),
                    _p(c["p_faster"]),
                    f"{c['n_pairs']} paired",
                ]
            )
    if not rows:
        return None
    headers = ["Workload", "Method", "Improves on", "Verdict", "Speed-up [95% CI]"]
    headers += ["P(method faster)", "Studies"]
    note = (
        "Each method against the one its paper improves on (its README's `improves_on`), "
        "paired over studies; speed-up = the baseline's time / the method's. Verdict "
        f"{_level_words(board)}: faster or slower when the interval lies above or below 1; "
        "equivalent when within a factor "
        f"{scoring.EQUIVALENCE:g} either way; else undecided."
    )
    return Table("Paper pairs", note, headers, rows)


def generic_table(board: Board, generic: Sequence[str]) -> Table | None:
    """The generic methods (``workloads: all``) ranked among themselves across workloads."""
    names = [g for g in generic if g in board.times.index.get_level_values("submission")]
    if len(names) < 2:
        return None
    times = board.times[board.times.index.get_level_values("submission").isin(names)]
    matrix = scoring.time_matrix(times)
    scores = scoring.benchmark_score(matrix).to_frame().join(scoring.score_intervals(times))
    scores["n_reached"] = np.isfinite(matrix).sum(axis=0)
    scores = scores.sort_values("score", ascending=False, kind="stable")
    rows = [
        [
            f"{scores['score'].rank(ascending=False, method='min')[s]:.0f}",
            s,
            f"{r.score:.3f} [{r.lo:.3f}, {r.hi:.3f}]",
            f"{r.n_reached}/{len(matrix)}",
        ]
        for s, r in scores.iterrows()
    ]
    unreached = [w for (w, v), row in matrix.iterrows() if not np.isfinite(row).any()]
    note = (
        "The generic methods (one configuration, their defaults, on every workload) scored "
        "against each other only: the performance profile's best is the best generic method "
        "on each workload. Score intervals span the 95% intervals of the times "
        "(docs/scoring.md#intervals)."
    )
    if unreached:
        note += (
            " No generic method's median reached the target on "
            + ", ".join(unreached)
            + " at its defaults."
        )
    return Table("Generic methods", note, ["Rank", "Method", "Score [95% CI]", "Reached"], rows)


def verdict_tables(board: Board) -> list[Table]:
    """The board's opening: per-workload verdicts, paper pairs, the generic ranking."""
    subs = sorted(board.times.index.get_level_values("submission").unique())
    pairs, generic = [], []
    for s in subs:
        try:
            folder = discovery.find_submission(s)
            if discovery.declared_workloads(folder) is None:
                generic.append(s)
            for w in sorted(board.times.index.get_level_values("workload").unique()):
                base = discovery.improves_on(folder, w)
                if base is not None:
                    pairs.append((w, s, base))
        except ContractError:
            continue  # a submission not installed here: its rows stay, no pair or group
    out = [verdict_table(board)]
    for t in (paper_pair_table(board, pairs), generic_table(board, generic)):
        if t is not None:
            out.append(t)
    return out


@dataclass
class Verdict:
    """One workload's answer: who is fastest and how sure that is, or how close the field came.

    The numbers are ``harness.scoring``'s; ``harness.page`` only words them."""

    workload: str
    variant: str
    target: str  # "`metric` >= 0.68", Markdown code span for the metric
    n_methods: int
    winner: str | None = None  # None: no median over studies reached the target
    time_s: float = np.nan
    lo: float = np.nan
    hi: float = np.nan
    runner_up: str | None = None
    p_faster: float = np.nan  # confidence that the winner is faster (paired, docs/scoring.md)
    verdict: str = "undecided"  # separated, equivalent or undecided (scoring.verdict)
    speedup: float = np.nan  # winner over runner-up, t_runner-up / t_winner, paired
    speedup_lo: float = np.nan
    speedup_hi: float = np.nan
    closest: str | None = None  # the best metric nearest the target, by whom
    closest_value: float = np.nan
    target_value: float = np.nan
    direction: str = "max"
    # (submission, studies that reached the target, studies) where some but not half did
    partial: list[tuple[str, int, int]] = field(default_factory=list)


def studies_reached(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (workload, variant, submission): studies whose fastest trial reached the target."""
    best = scoring.study_best(trials)
    return (
        best.assign(reached=np.isfinite(best["time_s"]))
        .groupby(scoring.CELL)
        .agg(n_reached=("reached", "sum"), n_studies=("study", "size"))
    )


def verdicts(board: Board) -> list[Verdict]:
    pf = board.prob_faster.set_index(["workload", "variant", "a", "b"])["p_a_faster"]
    reached = studies_reached(board.trials)
    out = []
    for (w, v), g in board.times.groupby(level=["workload", "variant"]):
        g = g.sort_values("time_s", kind="stable")
        t = board.trials[(board.trials.workload == w) & (board.trials.variant == v)].iloc[0]
        vd = Verdict(w, v, _target(board.trials, w, v), len(g))
        vd.target_value, vd.direction = float(t["target"]), str(t["direction"])
        if np.isfinite(g.iloc[0].time_s):
            # scoring.verdict names the fastest and the runner-up (its order breaks ties of
            # medians by the closest, so every table names the pair the verdict compared)
            c = scoring.verdict(board.trials, (w, v), board.level)
            top = g.loc[(w, v, c["fastest"])] if c["fastest"] is not None else g.iloc[0]
            vd.winner, vd.time_s, vd.lo, vd.hi = top.name[2], top.time_s, top.lo, top.hi
            if len(g) > 1 and c["runner_up"] is not None:
                vd.runner_up = c["runner_up"]
                vd.p_faster = float(pf[(w, v, vd.winner, vd.runner_up)])
                vd.verdict = c["verdict"]
                vd.speedup, vd.speedup_lo, vd.speedup_hi = c["speedup"], c["lo"], c["hi"]
        name = _closest_name(board, w, v)
        if name is not None:
            vd.closest, vd.closest_value = name, float(board.best[(w, v, name)])
        r = reached.xs((w, v), level=("workload", "variant"))
        some = r[(r.n_reached > 0) & ~np.isfinite(g.droplevel([0, 1])["time_s"].reindex(r.index))]
        vd.partial = [(s, int(x.n_reached), int(x.n_studies)) for s, x in some.iterrows()]
        out.append(vd)
    return out


# -- where the runs come from: a runs folder or a board's own parquet ----------------------

TRIAL = "trial."  # prefix of the trial-summary columns in the board's parquet
# summary_from_evals: the summary was rebuilt from evaluation rows (an older parquet), kept so
# that a board rebuilt again still says so
TRIAL_COLS = [*SUMMARY, "started_at", "ended_at", "summary_from_evals"]


@dataclass
class Source:
    trials: pd.DataFrame  # one row per finished, intact trial (``collect``'s trials)
    evals: pd.DataFrame  # one row per evaluation
    problems: list[Problem]
    origin: Path
    derived: bool = False  # trial summaries rebuilt from evaluation rows (an older parquet)


def load(runs: Path) -> Source:
    """A runs folder through ``collect``, or a ``results.parquet`` that a report wrote."""
    runs = Path(runs)
    if runs.is_file():
        return _from_parquet(runs)
    found = collect(runs)
    return Source(found.trials, found.evals, found.problems, runs)


def _from_parquet(path: Path) -> Source:
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a file that is not parquet
        raise ContractError(f"{path} is not a readable parquet file ({type(e).__name__})") from e
    missing = [c for c in [*IDENTITY, "run_dir", "eval", "ranked", "metric"] if c not in df]
    if missing:
        raise ContractError(f"{path} is not a ttr results parquet: it lacks columns {missing}")
    summary = [c for c in df.columns if c.startswith(TRIAL)]
    evals = df[df["eval"].notna()].drop(columns=summary).reset_index(drop=True)
    ranked = df[df["ranked"].astype(bool)]
    first = ranked.groupby("run_dir", sort=True).head(1).set_index("run_dir")
    keep = [*IDENTITY, "status", "reason", "metric", "direction", "target", *PROVENANCE]
    keep += [c for c in df.columns if c.startswith("hp.")]
    trials = first[[c for c in keep if c in first.columns]].copy()
    trials = trials.join(first[summary].rename(columns=lambda c: c[len(TRIAL) :]))
    # a parquet written before the summaries were stored: rebuild what the evaluations hold
    stats = _summary_from_evals(evals[evals["ranked"].astype(bool)])
    derived = any(TRIAL + c not in df for c in ("device_s", "s_per_step"))
    flag = TRIAL + "summary_from_evals"
    derived = derived or (flag in df and df[flag].fillna(False).astype(bool).any())
    if derived:
        stats["summary_from_evals"] = True
    for c in TRIAL_COLS:
        if c not in trials:
            if c in stats:
                trials[c] = stats[c]
            elif c != "summary_from_evals":
                trials[c] = np.nan
    trials["time_to_target_s"] = trials["time_to_target_s"].astype(float).fillna(np.inf)
    trials = trials.reset_index()
    unranked = df.loc[~df["ranked"].astype(bool), "run_dir"].unique()
    why = "not intact or in progress when the board was written; not ranked"
    problems = [Problem(Path(d), why) for d in unranked]
    return Source(trials, evals, problems, path, derived)


def _summary_from_evals(evals: pd.DataFrame) -> pd.DataFrame:
    """Per run_dir what the evaluation rows tell of the trial summary. Exact: time and steps to
    target (the first evaluation that met it). Lower bounds: device time (the last evaluation's
    wall time) and seconds per step (training time over steps at the last evaluation), since
    training after the last evaluation and the trial's teardown leave no row."""
    e = evals.sort_values(["run_dir", "eval"])
    last = e.groupby("run_dir").tail(1).set_index("run_dir")
    hit = e[e["met_target"].astype(bool)].groupby("run_dir").head(1).set_index("run_dir")
    out = pd.DataFrame(index=last.index)
    out["time_to_target_s"] = hit["train_time_s"].reindex(out.index).astype(float)
    out["steps_to_target"] = hit["step"].reindex(out.index).astype(float)
    out["steps"] = last["step"].astype(float)
    out["train_time_s"] = last["train_time_s"].astype(float)
    out["s_per_step"] = out["train_time_s"] / out["steps"].where(out["steps"] > 0)
    out["device_s"] = last["wall_time_s"].astype(float)
    out["wall_time_s"] = out["device_s"]
    out["wasted_train_s"] = 0.0
    out["evals"] = e.groupby("run_dir").size().astype(float)
    return out


def board_parquet(trials: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """The board's evaluations, each with its trial's summary as ``trial.*`` columns; a trial
    without any evaluation (failed in setup) gets one row of its own, so no trial is lost."""
    summary = trials.set_index("run_dir")[[c for c in TRIAL_COLS if c in trials]]
    summary = summary.rename(columns=lambda c: TRIAL + c)
    out = evals.merge(summary, how="left", left_on="run_dir", right_index=True)
    lonely = trials[~trials["run_dir"].isin(evals["run_dir"])]
    if len(lonely):
        extra = lonely[[c for c in lonely.columns if c in evals.columns]].assign(ranked=True)
        extra = extra.merge(summary, how="left", left_on="run_dir", right_index=True)
        out = pd.concat([out, extra], ignore_index=True)
    return out


# -- which runs make the board -------------------------------------------------------------


def _names(kind: str, wanted: Sequence[str] | None, known: list[str]) -> list[str] | None:
    if wanted is None:
        return None
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ContractError(f"no finished runs of {kind} {unknown}; known {kind}: {known}")
    return list(wanted)


def select(
    src: Source,
    hardware_class: str | None,
    variant: str,
    workloads: Sequence[str] | None,
    submissions: Sequence[str] | None,
) -> tuple[str, pd.DataFrame, pd.DataFrame, list[Problem]]:
    """The trials and evaluations of one board, and the problems to list; a ContractError
    (one line, saying what there is) when nothing finished matches."""
    t = src.trials
    if t.empty:
        raise ContractError(f"no finished, intact runs in {src.origin}")
    same = t[t["variant"] == variant]
    if same.empty:
        raise ContractError(
            f"no finished runs of variant {variant!r} in {src.origin}; variants there: "
            f"{sorted(t['variant'].unique())}"
        )
    hw = pick_hardware_class(same, hardware_class)
    mine = same[same["hardware_class"] == hw]
    w = _names("workloads", workloads, sorted(mine["workload"].unique()))
    s = _names("submissions", submissions, sorted(mine["submission"].unique()))
    keep = pd.Series(True, index=mine.index)
    if w is not None:
        keep &= mine["workload"].isin(w)
    if s is not None:
        keep &= mine["submission"].isin(s)
    trials = mine[keep].reset_index(drop=True)
    if trials.empty:
        raise ContractError(f"no finished runs of workloads {w} with submissions {s} on {hw}")
    e = src.evals
    on = (e["hardware_class"] == hw) & (e["variant"] == variant)
    on &= e["workload"].isin(trials["workload"].unique())
    on &= e["submission"].isin(trials["submission"].unique())
    evals = e[on].reset_index(drop=True)
    other = same[same["hardware_class"] != hw]
    problems = [p for p in src.problems if _on_board(p, hw, variant)]
    problems += [
        Problem(Path(r.run_dir), f"hardware class {r.hardware_class}, not {hw}: not ranked here")
        for r in other.itertuples()
    ]
    return hw, trials, evals, problems


def _on_board(p: Problem, hw: str, variant: str) -> bool:
    """A problem of a run of another class or variant (by its records-layout path) is not this
    board's; one whose path says nothing is listed."""
    parts = Path(p.path).parts
    if len(parts) >= 6 and parts[-2].startswith("study_") and parts[-1].startswith("trial_"):
        return parts[-6] == hw and parts[-4] == variant
    return True


# -- the board's words around the numbers ---------------------------------------------------


def _sizes(times: pd.DataFrame) -> str:
    """Studies x trials per cell, e.g. "2 studies x 1 trial", or their ranges if cells differ."""
    studies = times["n_studies"].astype(int)
    per = (times["n_trials"] / times["n_studies"]).round(2)
    if studies.nunique() == 1 and per.nunique() == 1:
        s, t = int(studies.iloc[0]), per.iloc[0]
        return f"{s} stud{'y' if s == 1 else 'ies'} x {t:g} trial{'' if t == 1 else 's'}"
    return f"{studies.min()}-{studies.max()} studies x {per.min():g}-{per.max():g} trials"


def sweep_summary(board: Board) -> str:
    """What was run and what it cost, in one paragraph: the choice behind these numbers."""
    times, ledger = board.times, board.ledger
    variants = sorted(set(times.index.get_level_values("variant")))
    text = (
        f"This sweep: {_sizes(times)} for each of {len(times)} (workload, submission) pairs on "
        f"the {', '.join(f'`{v}`' for v in variants)} variant{'s' * (len(variants) > 1)} "
        f"({int(ledger['n_trials'].sum())} trials, {int(ledger['n_failed'].sum())} failed), "
        f"{fmt_device(float(ledger['device_s'].sum()))} of device time in all."
    )
    if int(times["n_studies"].min()) < 3:
        text += (
            " With fewer than 3 studies the intervals are coarse, and with 2 a median is a miss "
            "as soon as one study missed: read a miss here as not shown to be reached."
        )
    return text


def header_facts(trials: pd.DataFrame, hardware_class: str, variant: str) -> list[tuple[str, str]]:
    """Hardware model, run dates, torch and code commit, from the trials' provenance."""

    def values(col: str) -> list[str]:
        if col not in trials:
            return []
        return sorted({str(x) for x in trials[col] if x is not None and x == x and x != ""})

    gpus, cpus = values("gpu"), values("cpu")
    hw = ", ".join(gpus) if gpus else ", ".join(cpus) or "not recorded"
    days = sorted({d[:10] for d in values("started_at")})
    date = "not recorded" if not days else days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    commits = [c[:7] for c in values("git_commit")]
    dirty = "git_dirty" in trials and trials["git_dirty"].fillna(False).astype(bool).any()
    code = ", ".join(f"`{c}`" for c in commits) or "not recorded"
    if dirty:
        code += " (some runs from uncommitted changes)"
    return [
        ("Hardware", f"{hw} (class `{hardware_class}`)"),
        ("Runs", date),
        ("torch", ", ".join(values("torch")) or "not recorded"),
        ("Code", code),
        ("Variant", f"`{variant}`"),
    ]


def _intro(board: Board, src: Source, n_other_variants: int) -> str:
    origin = f"`{src.origin.as_posix()}`"
    text = (
        f"Built by `ttr report` from {len(board.trials)} ranked trials in {origin} on hardware "
        f"class `{board.hardware_class}`; runs of other classes and variants are never ranked "
        f"here. Rules: docs/scoring.md. {sweep_summary(board)}"
    )
    if n_other_variants:
        text += f" {n_other_variants} finished trials of other variants are not on this board."
    if board.protocol:
        p = board.protocol
        per_core = sorted(w for w, ok in (p.get("one_trial_per_core") or {}).items() if ok)
        text += (
            f" Protocol ({p.get('ruleset', 'self-tuning')}, `ttr bench`): each method at its "
            f"defaults with {p.get('budget_multiplier', 1.5):g}x the budget, studies added in "
            f"looks of {', '.join(map(str, p.get('looks') or []))} where a verdict was open, each "
            f"look at {board.level:.2%} (95% over all looks), trials past "
            f"{p.get('cutoff_ratio', 4):g}x the best method's time censored"
            + (
                f"; one trial per core, pinned, one thread, on {', '.join(per_core)}"
                if per_core
                else "; one trial at a time on every core"
            )
            + " (docs/scoring.md#the-bench)."
        )
    if src.derived:
        text += (
            " This board was rebuilt from a parquet without trial summaries: device time and "
            "seconds per step come from the last evaluation of each trial (lower bounds); the "
            "times to target are exact."
        )
    return text


def _sections(board: Board, figs: list[FigureOut]) -> list[Section]:
    by = {}
    for f in figs:
        by.setdefault(f.problem, []).append(f)
    board_figs = {f.title: f for f in by.get(None, [])}
    overall = Section("Overall", [overall_table(board)])
    overall.blocks[0].title = ""
    overall.blocks.insert(0, overall_table(board).note)
    if "Performance profiles" in board_figs:
        overall.blocks.append(board_figs["Performance profiles"])
    fastest = best_table(board)
    sections = [overall, Section(fastest.title, [fastest.note, _untitled(fastest)])]
    pf = {t.title.removeprefix("P(faster): "): t for t in prob_faster_tables(board)}
    for t in workload_tables(board):
        s = Section(t.title, [t.note, _untitled(t), *by.get(_key(t.title), [])])
        if t.title in pf:
            s.folded.append(pf[t.title])
        sections.append(s)
    ledger = ledger_table(board)
    blocks = [ledger.note, _untitled(ledger)]
    if "Cost ledger" in board_figs:
        blocks.append(board_figs["Cost ledger"])
    sections.append(Section("Cost ledger", blocks))
    return sections


def _untitled(t: Table) -> Table:
    return Table("", "", t.headers, t.rows)


def _key(title: str) -> tuple[str, str]:
    w, v = title.rsplit(" (", 1)
    return w, v.rstrip(")")


def all_figures(board: Board, evals: pd.DataFrame, fig_dir: Path, names: list[str]) -> list:
    """Every figure of the board, written to ``fig_dir``; files there from an earlier board
    that this one does not draw are removed."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    style = figures.styles(names)
    out = [
        figures.profile_figure(board, style, fig_dir / "performance_profile.svg"),
        figures.ledger_figure(board, fig_dir / "cost_ledger.svg"),
    ]
    for w, v in board.times.index.droplevel(2).unique():
        slug = _slug(w, v)
        out.append(figures.curve_figure(board, evals, w, v, style, fig_dir / f"curves_{slug}.svg"))
        out.append(
            figures.forest_figure(board, w, v, style, fig_dir / f"time_to_target_{slug}.svg")
        )
        out.append(figures.prob_figure(board, w, v, fig_dir / f"p_faster_{slug}.svg"))
        hp = figures.hparam_figure(board, evals, w, v, style, fig_dir / f"hparams_{slug}.svg")
        if hp is not None:
            out.append(hp)
    drawn = {f.path.name for f in out}
    for stale in fig_dir.iterdir():
        if stale.suffix in (".png", ".svg") and stale.name not in drawn:
            stale.unlink()
    return out


def _slug(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p) for p in parts)


def write_report(
    runs: Path,
    out: Path | None = None,
    *,
    hardware_class: str | None = None,
    baseline: str | None = None,
    variant: str = "default",
    workloads: Sequence[str] | None = None,
    submissions: Sequence[str] | None = None,
    n_resamples: int = scoring.N_RESAMPLES,
    seed: int = 0,
) -> ReportResult:
    """Rank one hardware class on one variant and write its leaderboard folder.

    ``runs`` is a runs folder or a ``results.parquet`` written by an earlier report (the board
    is then rebuilt from that file alone). ``workloads`` / ``submissions`` narrow the board;
    an unknown name, or nothing finished to rank, raises ``ContractError`` before anything is
    written. ``out`` defaults to ``leaderboards/<hardware class>``. Broken, in-progress and
    other-class runs are listed under Problems.
    """
    src = load(Path(runs))
    hw, trials, evals, problems = select(src, hardware_class, variant, workloads, submissions)
    board = score_board(trials, hw, baseline, n_resamples, seed)  # raises before any write
    board.best = best_metric(trials, evals)
    board.protocol = read_protocol(Path(runs))
    if board.protocol and board.protocol.get("look_level"):
        board.level = float(board.protocol["look_level"])
    out_dir = Path(out) if out is not None else Path("leaderboards") / hw
    same_hw = src.trials[src.trials["hardware_class"] == hw]
    names = sorted(same_hw["submission"].unique())  # colours do not change with a filter
    figs = all_figures(board, evals, out_dir / "figures", names)
    n_other = int((same_hw["variant"] != variant).sum())
    page = Page(
        f"ttr-bench leaderboard: {hw}",
        header_facts(trials, hw, variant),
        verdicts(board),
        _intro(board, src, n_other),
        _sections(board, figs),
        problems,
        out_dir,
        verdict_tables(board),
    )
    result = ReportResult(
        out_dir=out_dir,
        hardware_class=hw,
        readme=out_dir / "README.md",
        html=out_dir / "index.html",
        parquet=out_dir / "results.parquet",
        figures=[f.path for f in figs],
        problems=problems,
        board=board,
    )
    atomic_write_text(result.readme, markdown(page))
    atomic_write_text(result.html, html_page(page))
    write_parquet(board_parquet(trials, evals), result.parquet)
    if board.protocol:
        records.write_json(out_dir / PROTOCOL_JSON, board.protocol)
    return result


PROTOCOL_JSON = "protocol.json"  # beside a board's results.parquet: the bench's protocol


def read_protocol(runs: Path) -> dict | None:
    """The bench protocol of a runs folder (``bench.json``) or of a board's parquet (the
    ``protocol.json`` beside it); None when there is none (a plain sweep)."""
    import json

    from harness.bench import STATE

    path = runs.parent / PROTOCOL_JSON if runs.is_file() else runs / STATE
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    proto = raw.get("protocol", raw) if isinstance(raw, dict) else None
    return proto if isinstance(proto, dict) else None
