"""``ttr report``: the leaderboard of one hardware class, as Markdown, a static HTML page and PNGs.

    leaderboards/<hw>/README.md        tables, figures, problems
    leaderboards/<hw>/index.html       the same, one self-contained page (figures inlined)
    leaderboards/<hw>/figures/*.png    performance profile, curves per workload, time to target
    leaderboards/<hw>/results.parquet  every evaluation of this class (``harness.collect``)

Runs of other hardware classes are listed as problems, never ranked with these
(docs/design.md#hardware-classes). The numbers come from ``harness.scoring``; ``docs/scoring.md``
says how.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global state

from harness import scoring
from harness.collect import Problem, collect, write_parquet
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
            raise ValueError(
                f"no ranked trials on hardware class {wanted!r}; have {sorted(counts.index)}"
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
    """All of ``harness.scoring`` for the trials of one hardware class."""
    draws = scoring.bootstrap_times(trials, n_resamples, seed)
    times = scoring.workload_times(trials).join(scoring.time_intervals(draws))
    matrix = scoring.time_matrix(times)
    scores = scoring.benchmark_score(matrix).to_frame().join(scoring.score_intervals(draws))
    scores["n_reached"] = np.isfinite(matrix).sum(axis=0)
    scores["n_run"] = times.groupby(level="submission").size().reindex(scores.index).fillna(0)
    scores["n_problems"] = len(matrix)
    if baseline is not None:
        if baseline not in matrix.columns:
            raise ValueError(
                f"baseline {baseline!r} has no ranked trials on {hardware_class}; "
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
        scoring.prob_faster_table(draws),
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
        "fastest trial to target (a miss is infinite); [lo, hi] = 95% percentile bootstrap "
        f"interval over studies ({board.n_resamples} resamples, seed {board.seed})."
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


def _closest(board: Board, workload: str, variant: str) -> str:
    """ "name: value" for the best ``best_metric`` on this workload, or "–"."""
    if board.best.empty or (workload, variant) not in board.best.index.droplevel(2):
        return "–"
    mine = board.best.loc[(workload, variant)].dropna()  # by submission
    if mine.empty:
        return "–"
    t = board.trials[(board.trials.workload == workload) & (board.trials.variant == variant)]
    name = mine.idxmin() if t["direction"].iloc[0] == "min" else mine.idxmax()
    return f"{name}: {mine[name]:.4g}"


def best_table(board: Board) -> Table:
    """Per workload the fastest submission, and how sure that is: the bootstrap probability
    that it is faster than the runner-up."""
    headers = ["Workload", "Target", "Fastest", "Time to target [95% CI]", "Runner-up"]
    headers += ["P(fastest < runner-up)", "Closest: best metric"]
    pf = board.prob_faster.set_index(["workload", "variant", "a", "b"])["p_a_faster"]
    rows = []
    for (w, v), g in board.times.groupby(level=["workload", "variant"]):
        g = g.sort_values("time_s", kind="stable")
        top = g.iloc[0]
        row = [f"{w} ({v})", _target(board.trials, w, v)]
        closest = _closest(board, w, v)
        if not np.isfinite(top.time_s):
            rows.append(row + ["none reached", "–", "–", "–", closest])
            continue
        row += [top.name[2], fmt_interval(top.time_s, top.lo, top.hi)]
        if len(g) > 1:
            second = g.iloc[1]
            row += [
                f"{second.name[2]}: {fmt_interval(second.time_s, second.lo, second.hi)}",
                f"{pf[(w, v, top.name[2], second.name[2])]:.2f}",
            ]
        else:
            row += ["–", "–"]
        rows.append(row + [closest])
    note = (
        f"{_how(board)} P(fastest < runner-up): the share of resamples in which the fastest "
        "submission's median time is below the runner-up's (ties count half); near 0.5 the two "
        "are not separated. Closest: the submission whose best metric (median over studies of "
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
    for (w, v), g in board.prob_faster.groupby(["workload", "variant"]):
        ran = set(board.times.xs((w, v), level=("workload", "variant")).index)
        subs = [s for s in board.scores.index if s in ran]
        p = g.set_index(["a", "b"])["p_a_faster"]
        rows = [[a] + ["–" if a == b else f"{p[(a, b)]:.2f}" for b in subs] for a in subs]
        note = "P(row's median time < column's) over the bootstrap resamples; ties count half."
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


# -- figures -----------------------------------------------------------------------------


def _slug(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p) for p in parts)


def profile_figure(board: Board, path: Path) -> Path:
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for sub in board.scores.index:
        rho = board.profile[sub]
        ax.step(
            rho.index, rho.to_numpy(), where="post", label=f"{sub} ({board.scores.score[sub]:.3f})"
        )
    ax.set(
        xlim=(1, scoring.TAU_MAX),
        ylim=(-0.02, 1.02),
        xlabel="tau (time / best time)",
        ylabel="fraction of workloads within tau",
        title=f"Performance profiles, {board.hardware_class} (score in legend)",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path, dpi=100)
    return path


def curve_figure(evals: pd.DataFrame, trials: pd.DataFrame, path: Path) -> Path:
    """Metric versus training time, one line per trial, one colour per submission."""
    first = trials.iloc[0]
    metric = first["metric"]
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    colours = {s: f"C{i % 10}" for i, s in enumerate(sorted(trials.submission.unique()))}
    for (sub, _), g in evals.groupby(["submission", "run_dir"]):
        if metric in g:
            g = g.sort_values("train_time_s")
            ax.plot(g["train_time_s"], g[metric], marker=".", lw=1, alpha=0.7, color=colours[sub])
    for sub, c in colours.items():
        ax.plot([], [], color=c, label=sub)
    ax.axhline(first["target"], color="k", ls="--", lw=1, label=f"target {first['target']:g}")
    values = pd.to_numeric(evals.get(metric, pd.Series(dtype=float)), errors="coerce").dropna()
    if len(values) and (values > 0).all() and values.max() / values.min() > 100:
        ax.set_yscale("log")
    ax.set(
        xlabel="training time (s)",
        ylabel=metric,
        title=f"{first['workload']} ({first['variant']}): {metric} vs training time",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    return path


def time_figure(board: Board, path: Path) -> Path:
    """Time to target per submission and workload with its interval; misses at the right edge."""
    groups = list(board.times.groupby(level=["workload", "variant"]))
    fig = Figure(figsize=(6.4, 1.2 + 0.5 * len(board.times)), layout="constrained")
    finite = board.times[["time_s", "lo", "hi"]].to_numpy(float)
    finite = finite[np.isfinite(finite)]
    right = finite.max() * 1.5 if finite.size else 1.0
    for i, ((w, v), g) in enumerate(groups):
        ax = fig.add_subplot(len(groups), 1, i + 1)
        subs = [k[2] for k in g.index]
        t, lo, hi = (g[c].to_numpy(float) for c in ("time_s", "lo", "hi"))
        shown = np.where(np.isfinite(t), t, right)
        err = [np.clip(shown - lo, 0, None), np.where(np.isfinite(hi), hi, right) - shown]
        ax.errorbar(shown, range(len(subs)), xerr=err, fmt="o", capsize=3)
        ax.axvline(right, color="grey", ls=":", lw=1)  # the "miss" line
        for y in np.flatnonzero(~np.isfinite(t)):
            ax.annotate("miss", (right, y), xytext=(-28, 4), textcoords="offset points")
        ax.set(
            yticks=range(len(subs)),
            yticklabels=subs,
            xlim=(0, right * 1.05),
            ylim=(-0.6, len(subs) - 0.4),
            title=f"{w} ({v})",
        )
        ax.grid(alpha=0.3, axis="x")
    fig.axes[-1].set_xlabel("time to target (s), median over studies, 95% bootstrap interval")
    fig.savefig(path, dpi=100)
    return path


def all_figures(board: Board, evals: pd.DataFrame, fig_dir: Path) -> list[Path]:
    if board.trials.empty:
        return []
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        profile_figure(board, fig_dir / "performance_profile.png"),
        time_figure(board, fig_dir / "time_to_target.png"),
    ]
    ranked = evals[evals["ranked"].astype(bool)]
    for (w, v), t in board.trials.groupby(["workload", "variant"]):
        e = ranked[(ranked.workload == w) & (ranked.variant == v)]
        paths.append(curve_figure(e, t, fig_dir / f"curves_{_slug(w, v)}.png"))
    return paths


# -- pages -------------------------------------------------------------------------------


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|")


def markdown(
    title: str,
    intro: str,
    tables: list[Table],
    figures: list[Path],
    problems: list[Problem],
    base: Path,
) -> str:
    out = [f"# {title}", "", intro, ""]
    for t in tables:
        out += [
            f"## {t.title}",
            "",
            t.note,
            "",
            "| " + " | ".join(map(_md_cell, t.headers)) + " |",
            "|" + "---|" * len(t.headers),
        ]
        out += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows] + [""]
    if figures:
        out += ["## Figures", ""]
        out += [f"![{p.stem}]({p.relative_to(base).as_posix()})" for p in figures] + [""]
    out += ["## Problems", ""]
    out += [f"- `{p.path}`: {p.reason}" for p in problems] or ["None."]
    return "\n".join(out) + "\n"


CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}img{max-width:100%}
figure{margin:1em 0}.note{color:#444;max-width:60em}"""


def _inline(text: str) -> str:
    """Escaped text with Markdown `code` spans as <code>, so notes read the same in both pages."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in t.rows
    )
    return (
        f'<h2>{html.escape(t.title)}</h2>\n<p class="note">{_inline(t.note)}</p>\n'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def html_page(
    title: str, intro: str, tables: list[Table], figures: list[Path], problems: list[Problem]
) -> str:
    """One static page: no scripts, figures inlined as data URIs so the file stands alone."""
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="note">{_inline(intro)}</p>']
    parts += [_html_table(t) for t in tables]
    if figures:
        parts.append("<h2>Figures</h2>")
    for p in figures:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(p.stem)}">'
            f"<figcaption>{html.escape(p.name)}</figcaption></figure>"
        )
    items = (
        "".join(
            f"<li><code>{html.escape(str(p.path))}</code>: {html.escape(p.reason)}</li>"
            for p in problems
        )
        or "<li>None.</li>"
    )
    parts.append(f'<h2>Problems</h2>\n<ul id="problems">{items}</ul>')
    body = "\n".join(parts)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _intro(board: Board, runs: Path) -> str:
    if board.trials.empty:
        return f"No finished, intact runs on hardware class `{board.hardware_class}` in `{runs}`."
    commits = sorted({str(c)[:10] for c in board.trials["git_commit"].dropna()})
    n = len(board.trials)
    return (
        f"Built by `ttr report` from {n} ranked trials in `{runs}` on hardware class "
        f"`{board.hardware_class}`; runs of other classes are never ranked here. "
        f"Rules: docs/scoring.md."
        + (f" Code commits: {', '.join(commits)}." if commits else "")
        + " "
        + sweep_summary(board)
    )


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


def write_report(
    runs: Path,
    out_dir: Path | None = None,
    hardware_class: str | None = None,
    baseline: str | None = None,
    n_resamples: int = scoring.N_RESAMPLES,
    seed: int = 0,
) -> ReportResult:
    """Collect ``runs``, rank one hardware class and write its leaderboard directory.

    ``out_dir`` defaults to ``leaderboards/<hardware class>`` under the current directory. Broken,
    in-progress and other-class runs are listed under Problems; the report renders regardless.
    """
    runs = Path(runs)
    found = collect(runs)
    hw = pick_hardware_class(found.trials, hardware_class)
    other = found.trials[found.trials.hardware_class != hw]
    problems = found.problems + [
        Problem(Path(r.run_dir), f"hardware class {r.hardware_class}, not {hw}: not ranked here")
        for r in other.itertuples()
    ]
    trials = found.trials[found.trials.hardware_class == hw].reset_index(drop=True)
    evals = found.evals[found.evals.hardware_class == hw].reset_index(drop=True)
    out_dir = Path(out_dir) if out_dir is not None else Path("leaderboards") / hw
    out_dir.mkdir(parents=True, exist_ok=True)
    board = score_board(trials, hw, baseline, n_resamples, seed)
    board.best = best_metric(trials, evals)
    figures = all_figures(board, evals, out_dir / "figures")
    tables = all_tables(board) if not trials.empty else []
    title, intro = f"ttr-bench leaderboard: {hw}", _intro(board, runs)
    result = ReportResult(
        out_dir=out_dir,
        hardware_class=hw,
        readme=out_dir / "README.md",
        html=out_dir / "index.html",
        parquet=out_dir / "results.parquet",
        figures=figures,
        problems=problems,
        board=board,
    )
    atomic_write_text(result.readme, markdown(title, intro, tables, figures, problems, out_dir))
    atomic_write_text(result.html, html_page(title, intro, tables, figures, problems))
    write_parquet(evals, result.parquet)
    return result
