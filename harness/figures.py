"""The leaderboard's figures, drawn from a scored ``Board`` (``harness.report``).

Every figure is an SVG drawn on its own ``matplotlib.figure.Figure`` (no pyplot, no global
state), and comes with a caption that says what is plotted, over how many studies and trials,
and on which hardware class. A method keeps one colour, line style and marker in every figure:
``styles`` maps the sorted names of all submissions to a qualitative palette (Tableau 10), with
a new line style and marker for each further ten names.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness import scoring

if TYPE_CHECKING:
    from harness.report import Board

PALETTE = [  # Tableau 10, matplotlib's default cycle
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D"]
LOG_SPAN = 10.0  # a hyperparameter whose positive values span more than this gets a log axis


@dataclass(frozen=True)
class Style:
    color: str
    linestyle: str
    marker: str


@dataclass
class FigureOut:
    path: Path
    title: str
    caption: str
    problem: tuple[str, str] | None = None  # (workload, variant), None for board-wide figures


def styles(names: Iterable[str]) -> dict[str, Style]:
    """One style per name, fixed by the name's place in the sorted list of all names."""
    out = {}
    for i, name in enumerate(sorted(set(names))):
        k = (i // len(PALETTE)) % len(LINESTYLES)
        out[name] = Style(PALETTE[i % len(PALETTE)], LINESTYLES[k], MARKERS[k])
    return out


def _save(fig: Figure, path: Path) -> Path:
    """SVG, byte-stable: no date, fixed ids, so a rebuilt board diffs only where it changed."""
    with matplotlib.rc_context({"svg.hashsalt": "ttr-bench", "svg.fonttype": "path"}):
        fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def _new(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _problem(board: Board, w: str, v: str) -> tuple[pd.DataFrame, pd.Series]:
    """The problem's trials and its first trial (metric, direction, target, budget)."""
    t = board.trials[(board.trials.workload == w) & (board.trials.variant == v)]
    return t, t.iloc[0]


def _budget(trials: pd.DataFrame) -> float:
    b = pd.to_numeric(trials.get("budget_s", pd.Series(dtype=float)), errors="coerce")
    return float(b.max()) if b.notna().any() else np.nan


def _runs_text(times: pd.DataFrame) -> str:
    """ "2 studies x 1 trial per method (16 trials)" for the cells of one figure."""
    studies = times["n_studies"].astype(int)
    per = (times["n_trials"] / times["n_studies"]).round(2)
    n = int(times["n_trials"].sum())
    if studies.nunique() == 1 and per.nunique() == 1:
        s, k = int(studies.iloc[0]), per.iloc[0]
        each = f"{s} stud{'y' if s == 1 else 'ies'} x {k:g} trial{'' if k == 1 else 's'}"
    else:
        each = f"{studies.min()}-{studies.max()} studies x {per.min():g}-{per.max():g} trials"
    return f"{each} per method ({n} trials)"


# -- curves: median over studies, with the band ----------------------------------------------


def study_runs(board: Board, evals: pd.DataFrame, w: str, v: str) -> pd.DataFrame:
    """Per (submission, study) the trial that speaks for the study: the one scoring counted
    (fastest to target), or where none reached it the one with the best metric."""
    trials, first = _problem(board, w, v)
    metric, lower = first["metric"], first["direction"] == "min"
    best = scoring.study_best(trials)
    e = evals[(evals.workload == w) & (evals.variant == v) & evals["ranked"].astype(bool)]
    e = e[e["split"] == "validation"] if "split" in e else e
    value = pd.to_numeric(e.get(metric), errors="coerce")
    per = value.groupby([e["submission"], e["study"], e["trial"]]).agg("min" if lower else "max")
    rows = []
    for r in best.itertuples():
        trial = r.trial
        if not np.isfinite(r.time_s):
            mine = per.get((r.submission, r.study))
            if mine is not None and mine.notna().any():
                trial = int(mine.idxmin() if lower else mine.idxmax())
        run = trials[
            (trials.submission == r.submission)
            & (trials.study == r.study)
            & (trials.trial == trial)
        ].iloc[0]
        rows.append(
            {
                "submission": r.submission,
                "study": r.study,
                "run_dir": run["run_dir"],
                "reached": bool(np.isfinite(r.time_s)),
            }
        )
    return pd.DataFrame(rows)


def _held(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """y as last evaluated at each grid time (NaN before the first evaluation)."""
    i = np.searchsorted(x, grid, side="right") - 1
    return np.where(i >= 0, y[np.clip(i, 0, None)], np.nan)


def curve_figure(
    board: Board, evals: pd.DataFrame, w: str, v: str, style: dict[str, Style], path: Path
) -> FigureOut:
    trials, first = _problem(board, w, v)
    metric, target, budget = first["metric"], float(first["target"]), _budget(trials)
    runs = study_runs(board, evals, w, v)
    fig = _new(7.0, 4.6)
    ax = fig.add_subplot()
    values = []
    for sub, g in runs.groupby("submission"):
        curves = []
        for r in g.itertuples():
            e = evals[evals.run_dir == r.run_dir].sort_values("train_time_s")
            e = e[e["split"] == "validation"] if "split" in e else e
            x = e["train_time_s"].to_numpy(float)
            y = pd.to_numeric(e.get(metric), errors="coerce").to_numpy(float)
            if len(x):
                curves.append((x, y, r.reached))
        if not curves:
            continue
        grid = np.unique(np.concatenate([c[0] for c in curves]))
        held = np.array([_held(x, y, grid) for x, y, _ in curves])
        st = style[sub]
        with np.errstate(all="ignore"):
            med = np.nanmedian(held, axis=0)
            lo, hi = np.nanmin(held, axis=0), np.nanmax(held, axis=0)
        ax.fill_between(grid, lo, hi, color=st.color, alpha=0.15, lw=0, step="post")
        ax.step(grid, med, where="post", color=st.color, ls=st.linestyle, lw=1.8, label=sub)
        for x, y, reached in curves:
            ax.plot(
                x[-1],
                y[-1],
                marker=st.marker if reached else "x",
                ms=7,
                color=st.color,
                mfc=st.color if reached else "none",
                ls="none",
            )
        values.append(held[np.isfinite(held)])
    ax.axhline(target, color="k", ls="--", lw=1.2)
    ax.annotate(f"target {target:g}", (0, target), xytext=(4, 3), textcoords="offset points")
    if np.isfinite(budget):
        ax.axvline(budget, color="0.3", ls=":", lw=1.5)
        ax.annotate(
            f"budget {budget:g} s",
            (budget, 1),
            xycoords=("data", "axes fraction"),
            xytext=(-4, -12),
            textcoords="offset points",
            ha="right",
        )
    vals = np.concatenate(values) if values else np.array([])
    if len(vals) and (vals > 0).all() and target > 0 and vals.max() / vals.min() > 100:
        ax.set_yscale("log")
    ax.set(xlabel="training time (s)", ylabel=metric, xlim=(0, None))
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=style[s].color, ls=style[s].linestyle, lw=1.8) for s in
               sorted(runs.submission.unique())]  # fmt: skip
    labels = sorted(runs.submission.unique())
    handles += [
        Line2D([], [], color="0.3", marker="o", ls="none"),
        Line2D([], [], color="0.3", marker="x", ls="none"),
    ]
    labels += ["run stopped: reached target", "run stopped: missed"]
    fig.legend(
        handles, labels, loc="outside lower center", ncols=3, fontsize="small", frameon=False
    )
    times = board.times.xs((w, v), level=("workload", "variant"))
    caption = (
        f"{w} ({v}): validation {metric} against training time, per method the median over "
        f"studies (line) and the min-max range over studies (band), one run per study (the "
        f"study's fastest to target, or its best metric where none reached it); a run that "
        f"stopped keeps its last value. Markers: where each run stopped. Dashed: the target "
        f"{metric} {'≤' if first['direction'] == 'min' else '≥'} {target:g}"
        + (f"; dotted: the {budget:g} s budget" if np.isfinite(budget) else "")
        + f". {_runs_text(times)}, hardware class {board.hardware_class}."
    )
    return FigureOut(_save(fig, path), f"{w} ({v}): {metric} vs training time", caption, (w, v))


# -- time to target: a forest plot on the budget axis ----------------------------------------


def forest_figure(board: Board, w: str, v: str, style: dict[str, Style], path: Path) -> FigureOut:
    from harness.report import fmt_s, studies_reached

    trials, first = _problem(board, w, v)
    budget = _budget(trials)
    times = board.times.xs((w, v), level=("workload", "variant")).copy()
    times = times.assign(name=times.index).sort_values(["time_s", "name"], ascending=[False, False])
    reached = studies_reached(trials).xs((w, v), level=("workload", "variant"))
    finite = times[["time_s", "lo", "hi"]].to_numpy(float)
    finite = finite[np.isfinite(finite)]
    right = budget if np.isfinite(budget) else (finite.max() * 1.2 if finite.size else 1.0)
    fig = _new(7.0, 1.1 + 0.38 * len(times))
    ax = fig.add_subplot()
    for y, (sub, r) in enumerate(times.iterrows()):
        st = style[sub]
        if np.isfinite(r.time_s):
            hi = r.hi if np.isfinite(r.hi) else right
            ax.plot([r.lo, hi], [y, y], color=st.color, lw=2.5, solid_capstyle="butt")
            if not np.isfinite(r.hi):
                ax.annotate("", (right, y), (right * 0.97, y), arrowprops={"arrowstyle": "->"})
            ax.plot(r.time_s, y, marker=st.marker, ms=8, color=st.color, mec="k")
        else:
            lo = r.lo if np.isfinite(r.lo) else right
            if lo < right:  # some resamples reached: the interval's lower end
                ax.plot([lo, right], [y, y], color=st.color, lw=2.5, alpha=0.4)
            ax.plot(right, y, marker="x", ms=8, color=st.color, mew=2)
    ax.axvline(right, color="0.3", ls=":", lw=1.5)
    ax.set_yticks(range(len(times)), list(times.index))
    ax.set(xlim=(0, right * 1.03), ylim=(-0.6, len(times) - 0.4))
    ax.set_xlabel(
        "time to target (s): median over studies, 95% bootstrap interval; x at the budget = miss"
        if np.isfinite(budget)
        else "time to target (s): median over studies, 95% bootstrap interval; x = miss"
    )
    ax.grid(alpha=0.3, axis="x")
    ax2 = ax.twinx()
    ax2.set_ylim(ax.get_ylim())
    counts = [f"{int(reached.n_reached[s])}/{int(reached.n_studies[s])}" for s in times.index]
    ax2.set_yticks(range(len(times)), counts)
    ax2.set_ylabel("studies that reached the target")
    caption = (
        f"{w} ({v}): time to target per method, the median over studies (marker) with its 95% "
        f"percentile bootstrap interval (bar), on an axis that ends at the "
        + (f"{fmt_s(budget)} budget" if np.isfinite(budget) else "slowest time")
        + "; x marks a median that missed the target. Right: studies whose fastest trial "
        f"reached it. {_runs_text(times)}, hardware class {board.hardware_class}."
    )
    return FigureOut(_save(fig, path), f"{w} ({v}): time to target", caption, (w, v))


# -- P(faster) as a heatmap ------------------------------------------------------------------


def prob_figure(board: Board, w: str, v: str, path: Path) -> FigureOut:
    from matplotlib import colormaps

    times = board.times.xs((w, v), level=("workload", "variant"))
    subs = sorted(times.index, key=lambda s: (times.time_s[s], s))
    g = board.prob_faster[(board.prob_faster.workload == w) & (board.prob_faster.variant == v)]
    p = g.set_index(["a", "b"])["p_a_faster"]
    m = np.array([[np.nan if a == b else p[(a, b)] for b in subs] for a in subs])
    n = len(subs)
    fig = _new(1.8 + 0.55 * n, 1.2 + 0.5 * n)
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap=colormaps["RdBu"], vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if i != j:
                dark = abs(m[i, j] - 0.5) > 0.3
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize="small",
                        color="w" if dark else "k")  # fmt: skip
    ax.set_xticks(range(n), subs, rotation=45, ha="right")
    ax.set_yticks(range(n), subs)
    ax.set(xlabel="column: method B", ylabel="row: method A")
    fig.colorbar(im, ax=ax, shrink=0.8, label="P(A faster than B)")
    caption = (
        f"{w} ({v}): confidence that the row is faster than the column, from the paired "
        f"comparison of study s with study s (>= 0.95: separated; 0 where the paired estimate "
        f"favours the column). Methods fastest first. {_runs_text(times)}, hardware "
        f"class {board.hardware_class}."
    )
    return FigureOut(_save(fig, path), f"{w} ({v}): P(faster)", caption, (w, v))


# -- best metric against each tuned hyperparameter -------------------------------------------


def tuned_hparams(trials: pd.DataFrame) -> list[str]:
    """The numeric ``hp.*`` columns that take more than one value within some submission."""
    out = []
    for c in sorted(c for c in trials.columns if c.startswith("hp.")):
        x = pd.to_numeric(trials[c], errors="coerce")
        if x.notna().sum() and (x.groupby(trials["submission"]).nunique() > 1).any():
            out.append(c)
    return out


def hparam_figure(
    board: Board, evals: pd.DataFrame, w: str, v: str, style: dict[str, Style], path: Path
) -> FigureOut | None:
    trials, first = _problem(board, w, v)
    hps = tuned_hparams(trials)
    if not hps:
        return None
    metric, lower = first["metric"], first["direction"] == "min"
    e = evals[(evals.workload == w) & (evals.variant == v)]
    e = e[e["split"] == "validation"] if "split" in e else e
    best = pd.to_numeric(e.get(metric), errors="coerce").groupby(e["run_dir"])
    best = best.min() if lower else best.max()
    t = trials.assign(best=trials["run_dir"].map(best))
    cols = min(3, len(hps))
    rows = -(-len(hps) // cols)
    fig = _new(7.0, 0.6 + 2.2 * rows)
    logged = []
    for k, hp in enumerate(hps):
        ax = fig.add_subplot(rows, cols, k + 1)
        x = pd.to_numeric(t[hp], errors="coerce")
        for sub, g in t[x.notna()].groupby("submission"):
            st = style[sub]
            hit = np.isfinite(g["time_to_target_s"].astype(float))
            xs = pd.to_numeric(g[hp], errors="coerce")
            ax.scatter(xs[hit], g["best"][hit], color=st.color, marker=st.marker, s=28)
            ax.scatter(xs[~hit], g["best"][~hit], marker=st.marker, s=28, facecolors="none",
                       edgecolors=st.color)  # fmt: skip
        pos = x[x.notna()]
        if len(pos) and (pos > 0).all() and pos.max() / pos.min() > LOG_SPAN:
            ax.set_xscale("log")
            logged.append(hp[3:])
        ax.axhline(float(first["target"]), color="k", ls="--", lw=1)
        ax.set_xlabel(hp[3:], fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel(f"best {metric}", fontsize="small")
    subs = sorted(t.loc[t[hps].apply(pd.to_numeric, errors="coerce").notna().any(axis=1),
                        "submission"].unique())  # fmt: skip
    handles = [
        Line2D([], [], color=style[s].color, marker=style[s].marker, ls="none") for s in subs
    ]
    fig.legend(handles, subs, loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    times = board.times.xs((w, v), level=("workload", "variant"))
    caption = (
        f"{w} ({v}): each trial's best validation {metric} against each hyperparameter that "
        f"took more than one value in some method's trials; filled: the trial reached the "
        f"target, hollow: it missed; dashed: the target. Log axis where the values span more "
        f"than a factor of {LOG_SPAN:g}"
        + (f" ({', '.join(logged)})" if logged else " (none here)")
        + f". {_runs_text(times)}, hardware class {board.hardware_class}."
    )
    return FigureOut(
        _save(fig, path), f"{w} ({v}): best metric vs hyperparameters", caption, (w, v)
    )


# -- board-wide: performance profile and the cost ledger -------------------------------------


def profile_figure(board: Board, style: dict[str, Style], path: Path) -> FigureOut:
    """Methods with identical profiles share one line, labelled with all their names, so a
    board where many tie reads as a few lines, not a pile of overlapping ones."""
    groups: dict[tuple, list[str]] = {}
    for sub in board.scores.index:
        groups.setdefault(tuple(np.round(board.profile[sub].to_numpy(float), 9)), []).append(sub)
    fig = _new(8.5, 4.2)
    ax = fig.add_subplot()
    handles, labels = [], []
    for rho, subs in sorted(groups.items(), key=lambda kv: -board.scores.score[kv[1][0]]):
        one = len(subs) == 1
        st = style[subs[0]]
        color, ls = (st.color, st.linestyle) if one else ("0.25", "-")
        (h,) = ax.step(board.profile.index, rho, where="post", color=color, ls=ls,
                       lw=1.8 if one else 3, alpha=1 if one else 0.7)  # fmt: skip
        score = board.scores.score[subs[0]]
        text = subs[0] if one else f"{len(subs)} tied: " + ", ".join(subs)
        handles.append(h)
        labels.append(textwrap.fill(f"{text} (score {score:.3f})", 38))
    if len(groups) == 1 and not np.any(next(iter(groups))):
        ax.text(0.5, 0.55, "no method within 4x the best\non any workload", ha="center",
                transform=ax.transAxes, fontsize="large", color="0.3")  # fmt: skip
    ax.set(
        xlim=(1, scoring.TAU_MAX),
        ylim=(-0.03, 1.03),
        xlabel="tau: time to target / best time on the workload",
        ylabel="fraction of workloads within tau",
    )
    ax.grid(alpha=0.3)
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)
    n, n_problems = len(board.profile.columns), int(board.scores["n_problems"].iloc[0])
    caption = (
        f"Performance profiles: for each method the fraction of the {n_problems} "
        f"workloads on which its median time to target is within a factor tau of the fastest "
        f"(misses never are); the score is the area under it over [1, {scoring.TAU_MAX:g}] "
        f"/ {scoring.TAU_MAX - 1:g}. Methods with identical profiles share a line. {n} methods, "
        f"{_runs_text(board.times)}, hardware class {board.hardware_class}."
    )
    return FigureOut(_save(fig, path), "Performance profiles", caption)


LEDGER = [  # (column, label, colour, hatch); failed and preempted are parts of the bar
    ("scored_s", "scored (study-best trials that reached the target)", "#2ca02c", None),
    ("other_s", "tuning (every other trial)", "#9ecae1", None),
    ("failed_s", "failed trials (part of tuning)", "#d62728", None),
]


def ledger_figure(board: Board, path: Path) -> FigureOut:
    from harness.report import fmt_device

    led = board.ledger.sort_values("device_s")
    led = led.assign(other_s=led["tuning_s"] - led["failed_s"])
    fig = _new(7.0, 1.3 + 0.3 * len(led))
    ax = fig.add_subplot()
    left = np.zeros(len(led))
    handles = []
    for col, label, color, _ in LEDGER:
        x = led[col].to_numpy(float)
        ax.barh(range(len(led)), x, left=left, color=color, height=0.7)
        left += x
        if (x > 0).any():
            handles.append(Patch(color=color, label=label))
    wasted = led["wasted_s"].to_numpy(float)
    if (wasted > 0).any():
        ax.barh(range(len(led)), wasted, left=left - wasted, fill=False, hatch="///",
                edgecolor="k", lw=0, height=0.7)  # fmt: skip
        handles.append(Patch(fill=False, hatch="///", label="lost to preemption (redone)"))
    for y, total in enumerate(led["device_s"]):
        ax.annotate(fmt_device(total), (total, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize="small")  # fmt: skip
    ax.set_yticks(range(len(led)), list(led.index))
    ax.set(xlabel="device time (s)", xlim=(0, max(led["device_s"].max(), 1) * 1.15))
    ax.grid(alpha=0.3, axis="x")
    fig.legend(
        handles=handles, loc="outside lower center", ncols=2, fontsize="small", frameon=False
    )
    caption = (
        f"Cost ledger: the device time each method's {int(led['n_trials'].sum())} ranked trials "
        f"spent (wall time from start to end, evaluation and setup included), split into the "
        f"trials that scored, the rest of tuning and failed trials"
        + ("; hatched: training lost to preemption and redone" if (wasted > 0).any() else "")
        + f". Hardware class {board.hardware_class}."
    )
    return FigureOut(_save(fig, path), "Cost ledger", caption)
