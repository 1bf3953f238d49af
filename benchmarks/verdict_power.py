"""How many studies would settle each comparison of a board: its measured noise, not a model's.

For every workload's leader against its runner-up, and every paper pair, the board's own paired
comparison (harness.scoring.paired_comparison: paired t on log time ratios, misses at the
budget) gives the mean log ratio d and its study-to-study sd. From them, the studies n at which
the bench's per-look interval (``--level``, default the bench's 98.75%) would

- **separate** the pair (the interval excludes 1): the least n with t(n-1) * sd / sqrt(n) < |d|;
- show it **equivalent** within +-``--margin`` (default 10%): the least n with
  |d| + t(n-1) * sd / sqrt(n) < log(1 + margin), possible only if |d| < log(1 + margin);

if the measured d and sd were the truth (a plug-in estimate: at a handful of studies both are
themselves uncertain). Also the trial time one study of the pair's workload costs on the board
(the mean device seconds of its trials, every method of the workload), so that n studies can be
priced in hours on the board's cores.

    python benchmarks/verdict_power.py leaderboards/cpu-1core/results.parquet \
        --out benchmarks/results/verdict_power-cpu-1core
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import bench, scoring  # noqa: E402
from harness.report import load  # noqa: E402

N_MAX = 10_000  # beyond this many studies a pair is reported as "> 10,000"


def studies_needed(d: float, sd: float, level: float, margin: float | None = None) -> int | None:
    """Least n >= 2 at which the two-sided ``level`` paired-t interval of a mean log ratio
    ``d`` with study sd ``sd`` excludes 0 (``margin`` None), or lies within +-log(1 + margin);
    None if no n <= N_MAX does (or the margin is below |d|)."""
    q = 0.5 + level / 2
    bound = abs(d) if margin is None else math.log1p(margin) - abs(d)
    if bound <= 0 or not math.isfinite(bound) or not math.isfinite(sd):
        return None
    if sd == 0:
        return 2
    lo, hi = 2, N_MAX
    from scipy import stats

    def ok(n: int) -> bool:
        return stats.t.ppf(q, n - 1) * sd / math.sqrt(n) < bound

    if not ok(hi):
        return None
    while lo < hi:  # the half-width falls with n: bisect for the least n that fits
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if not ok(mid) else (lo, mid)
    return lo


def pair_noise(times, budget, key, a: str, b: str) -> dict:
    """A against B study by study, as ``scoring.paired_bounds`` pairs them (a miss at its
    budget, a pair where both missed left out): the speed-up and the sd of the log ratios."""
    t, bud = times.xs(key, level=scoring.PROBLEM), budget.xs(key, level=scoring.PROBLEM)
    ta, tb = t[a].to_numpy(float), t[b].to_numpy(float)
    ya = scoring._censored_log(ta, bud[a].to_numpy(float))
    yb = scoring._censored_log(tb, bud[b].to_numpy(float))
    use = ~np.isnan(ta) & ~np.isnan(tb) & ~(np.isinf(ta) & np.isinf(tb))
    dd = (yb - ya)[use]
    return {
        "a": a,
        "b": b,
        "n_pairs": int(use.sum()),
        "misses_a": int(np.isinf(ta[use]).sum()),
        "misses_b": int(np.isinf(tb[use]).sum()),
        "speedup": float(np.exp(dd.mean())) if len(dd) else float("nan"),
        "sd_log": float(dd.std(ddof=1)) if len(dd) > 1 else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("board", type=Path, help="a board's results.parquet (or a runs folder)")
    ap.add_argument("--level", type=float, default=bench.look_level(len(bench.looks())))
    ap.add_argument("--margin", type=float, default=0.10)
    ap.add_argument("--cores", type=int, default=2, help="trials run side by side on the board")
    ap.add_argument("--out", type=Path, help="write <out>.json and <out>.md")
    args = ap.parse_args(argv)

    src = load(args.board)
    trials = src.trials
    times, budget, _ = scoring.study_times(trials)
    # trial seconds per study of each cell (its mean over the studies it ran)
    cell_cost = trials.groupby(["workload", "submission"])["device_s"].mean()
    cost = cell_cost.groupby("workload").sum()  # one study of every method of a workload
    rows = []
    problems = sorted(times.index.droplevel("study").unique())
    cells = {
        w: sorted(trials.loc[trials.workload == w, "submission"].unique()) for w, _ in problems
    }
    pairs = {(p.workload, p.method, p.baseline) for p in bench.paper_pairs(cells)}
    for key in problems:
        w = key[0]
        v = scoring.verdict(
            trials[(trials.workload == w) & (trials.variant == key[1])], key, args.level
        )
        comps = []
        if v["fastest"] and v["runner_up"]:
            comps.append(("leader vs runner-up", v["fastest"], v["runner_up"]))
        comps += [("paper pair", m, bl) for pw, m, bl in sorted(pairs) if pw == w]
        for kind, a, b in comps:
            if a not in times.columns or b not in times.columns:
                continue
            r = pair_noise(times, budget, key, a, b)
            d = math.log(r["speedup"]) if r["speedup"] > 0 else float("nan")
            r |= {
                "workload": w,
                "kind": kind,
                "study_cost_s": float(cost.get(w, float("nan"))),
                "pair_study_cost_s": float(cell_cost.get((w, a), 0) + cell_cost.get((w, b), 0)),
                "separate_n": studies_needed(d, r["sd_log"], args.level),
                "equivalent_n": studies_needed(d, r["sd_log"], args.level, args.margin),
                "equivalent_possible": abs(d) < math.log1p(args.margin),
            }
            rows.append(r)

    def num(x: float, spec: str, unit: str = "") -> str:
        return f"{x:{spec}}{unit}" if math.isfinite(x) else "–"

    def fmt_n(n: int | None, r: dict, possible: bool) -> str:
        if r["n_pairs"] < 2:
            return "– (under 2 pairs: no spread yet)"
        if n is None:
            return f"> {N_MAX:,}" if possible else "never (outside the margin)"
        return f"{n} ({n * r['pair_study_cost_s'] / args.cores / 3600:.1f} h)"

    lines = [
        f"# Studies each comparison needs, at its measured noise ({args.board})",
        "",
        f"Per-look level {args.level:.2%}; equivalence margin +-{args.margin:.0%}. Hours: the "
        f"studies times the pair's own mean trial seconds per study, {args.cores} trials side "
        "by side (a lower bound: a look also runs every other method not yet separated from the "
        "leader); the last column is one study of every method of the workload, as a first "
        "look runs it. Plug-in estimates: the measured speed-up and sd taken as the truth (at a "
        "few studies both are uncertain). A miss enters at its budget.",
        "",
        "| workload | comparison | A vs B | pairs | misses A/B | speed-up | sd of log ratio "
        "| studies to separate (h) | studies to show equivalent (h) | one study, all methods (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['kind']} | {r['a']} vs {r['b']} | {r['n_pairs']} "
            f"| {r['misses_a']}/{r['misses_b']} | {num(r['speedup'], '.2f', 'x')} "
            f"| {num(r['sd_log'], '.2f')} "
            f"| {fmt_n(r['separate_n'], r, True)} "
            f"| {fmt_n(r['equivalent_n'], r, r['equivalent_possible'])} "
            f"| {r['study_cost_s']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.md").write_text(text)
        meta = {"board": str(args.board), "level": args.level, "margin": args.margin,
                "cores": args.cores, "rows": rows}  # fmt: skip
        Path(f"{args.out}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
