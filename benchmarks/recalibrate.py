"""Recalibration under the bench's protocol (issue 19, item 6; docs/workloads.md#calibration).

For each workload's ``default``: its calibrating baseline at its defaults, ``--seeds`` studies,
run exactly as ``ttr bench`` runs them (self-tuning plan: the defaults, 1.5x the budget, study s
seeded by ``study_seed``; one trial per core, pinned, where the hardware class's reference
allows it; no cutoff), through the bench's own scheduler. Then, per workload:

- the time to target of every seed (a miss is inf) and the median seconds per step;
- the rule: the baseline reaches the target in >= 90% of seeds by 75% of the budget; checked
  against the current budget, and the budget it implies: the 90% order statistic of the times
  (the ceil(0.9 n)-th smallest) / 0.75, rounded up to 10 s;
- ``step_hint`` = the steps that budget allows at the baseline's median speed (AlgoPerf's
  meaning: the steps the baseline's schedule runs for, not its steps to target).

It proposes; it edits nothing. Writes ``benchmarks/results/recalibration-<hw>.json`` and
``.md``. Trials already finished in ``--runs`` are read back, not rerun.

    python benchmarks/recalibrate.py --runs runs-recal --seeds 10
    python benchmarks/recalibrate.py --runs runs-recal --workloads ldpc snn --seeds 10 --hours 1
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import hardware, result_record, write_results  # noqa: E402
from calibration_recheck import BASELINES  # noqa: E402

from harness import bench, records  # noqa: E402
from harness.discovery import get_spec  # noqa: E402
from harness.sweep import plan_jobs, sort_jobs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
REACH_SHARE = 0.90  # of seeds
BY_FRACTION = 0.75  # of the budget


def implied_budget(times: np.ndarray) -> float:
    """ceil(q90 / 0.75) to 10 s, q90 the ceil(0.9 n)-th smallest time (inf: not enough reached)."""
    t = np.sort(np.asarray(times, float))
    k = math.ceil(REACH_SHARE * len(t))
    q = t[k - 1] if len(t) else np.inf
    return float(math.ceil(q / BY_FRACTION / 10.0) * 10.0) if np.isfinite(q) else np.inf


def summarize(trials, workload: str, kind: str) -> dict:
    spec = get_spec(workload, "default")
    t = trials[trials.workload == workload]
    times = np.where(
        np.isfinite(t["time_to_target_s"].astype(float)),
        t["time_to_target_s"].astype(float),
        np.inf,
    )
    budget = spec.budget_for(kind)
    sps = float(np.nanmedian(t["s_per_step"].astype(float))) if len(t) else np.nan
    new_budget = implied_budget(times)
    return {
        "workload": workload,
        "baseline": BASELINES[workload],
        "seeds": int(len(t)),
        "times_s": [float(x) for x in times],
        "reached": int(np.isfinite(times).sum()),
        "target": spec.target,
        "budget_s": budget,
        "by_75pct_of_budget": int((times <= BY_FRACTION * budget).sum()),
        "rule_holds": bool(len(t) and (times <= BY_FRACTION * budget).mean() >= REACH_SHARE),
        "implied_budget_s": new_budget,
        "s_per_step": sps,
        "step_hint_now": spec.step_hint,
        "implied_step_hint": int(new_budget / sps) if np.isfinite(new_budget) and sps > 0 else None,
    }


def markdown(result: dict) -> str:
    lines = [
        "# Recalibration under the bench's protocol",
        "",
        f"{result['date']}; {result['hardware']['cpu']}, torch "
        f"{result['hardware']['versions']['torch']}. "
        "Each baseline at its defaults, seeds = studies 0..n-1 of a self-tuning plan (1.5x "
        "budget), run by the bench's scheduler (one trial per core where allowed). Rule: >= 90% "
        "of seeds reach the target by 75% of the budget.",
        "",
        "| workload | baseline | seeds | reached | by 75% of budget | rule | budget now | implied "
        "budget | s/step | step_hint now | implied step_hint | times (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        times = ", ".join("miss" if not np.isfinite(x) else f"{x:.1f}" for x in r["times_s"])
        lines.append(
            f"| {r['workload']} | {r['baseline']} | {r['seeds']} | {r['reached']} | "
            f"{r['by_75pct_of_budget']} | {'holds' if r['rule_holds'] else 'fails'} | "
            f"{r['budget_s']:g} s | {r['implied_budget_s']:g} s | {r['s_per_step']:.3f} | "
            f"{r['step_hint_now']} | {r['implied_step_hint']} | {times} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs-recal"))
    p.add_argument("--workloads", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--hours", type=float, default=2.0, help="stop starting trials after this")
    p.add_argument("--parallel", choices=("auto", "off"), default="auto")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.seeds < 2:
        p.error("--seeds must be at least 2")
    machine_hw = records.hardware_class()
    parallel_ok = bench.one_trial_per_core(machine_hw) if args.parallel == "auto" else {}
    from harness.machine import cores

    cpus = cores()
    # as run_bench: one trial per core, pinned, only if every workload allows it; a pinned
    # trial's class counts its cores (records.trial_fingerprint)
    parallel = len(cpus) > 1 and all(parallel_ok.get(w) for w in args.workloads)
    parallel_ok = {w: parallel for w in args.workloads}
    pin = (cpus[0],) if parallel else None
    hw = records.hardware_class(records.trial_fingerprint(pin)) if parallel else machine_hw
    kind = records.device_kind(hw)
    jobs = []
    for w in args.workloads:
        jobs += plan_jobs(args.runs, [w], [BASELINES[w]], "default", args.seeds, 1, 0, True,
                          grow=True)  # fmt: skip
    jobs = [dataclasses.replace(j, cores=pin) for j in jobs]  # their records' class
    todo = [dataclasses.replace(j, final_test_eval=False) for j in sort_jobs(jobs).todo]
    est = bench.estimate_fn(args.runs, hw, None)
    sched = bench.Scheduler(
        args.runs,
        cpus,
        parallel_ok,
        est,
        time.time() + args.hours * 3600,
        lambda job, rc, wall: print(f"{job.label}: exit {rc} in {wall:.0f} s", flush=True),
    )
    res = sched.run(bench.order_jobs(todo, parallel_ok))
    if res.skipped:
        print(f"{len(res.skipped)} trials did not fit in --hours; run again to finish them")
    trials = bench.finished_trials(args.runs, hw, "default")
    rows = [summarize(trials, w, kind) for w in args.workloads]
    result = result_record(hardware(("numba",)), args, rows, hardware_class=hw)
    md = markdown(result)
    print(md)
    write_results(args.out, f"recalibration-{hw}", result, md)
    return result


if __name__ == "__main__":
    main()
