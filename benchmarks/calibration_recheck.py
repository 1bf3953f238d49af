"""One consistent calibration pass over every workload's ``default`` variant (issue 9).

For each workload: its calibrating baseline at the baseline's default (tuned) hyperparameters,
seeds 0-2, then ``adamw`` at its defaults (the untuned generic method), seed 0. Every run is a
real ``ttr run`` trial (the runner's clock, evaluations and records; study = seed), one after
another; trials already finished in ``--runs`` are read back, not rerun. Writes
``benchmarks/results/calibration_recheck-<hw>.json`` and ``.md``: per run the status, time to
target (and the evaluation before it), steps, ms/step and the best value of the metric.

The rule (docs/workloads.md#calibration): a tuned baseline reaches each target in most runs, an
untuned or clearly weaker method does not always; the budget is about 4/3 of the time the baseline
needs, on the workload's evaluation grid.

    python benchmarks/calibration_recheck.py --runs runs-calib
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench_common import hardware, result_record, write_results

from harness import records
from harness.discovery import get_spec
from harness.runner import RunConfig, run_trial

RESULTS = Path(__file__).resolve().parent / "results"
BASELINES = {
    "ldpc": "nms_baseline",
    "snn": "bptt_surrogate",
    "certification": "ibp",
    "translation": "temperature_sampling",
    "factuality": "lm_baseline",
}
UNTUNED = "adamw"
# Can a generic method reach the target at all? adamw by hand near each baseline's own
# settings, seed 0 (study 1, so it never collides with the untuned run in study 0).
PROBES = {
    "certification": {"lr": 4e-3},
    "translation": {"lr": 2e-3, "one_minus_beta1": 0.1, "weight_decay": 5e-3},
    "snn": {"lr": 1e-2, "one_minus_beta1": 0.1, "weight_decay": 5e-3},
    "factuality": {"lr": 3e-3, "one_minus_beta1": 0.1, "weight_decay": 1e-2},
}


def plan(seeds: list[int]) -> list[tuple[str, str, int, int, dict]]:
    """(workload, submission, seed, study, hparams): the baselines' seeds, the untuned
    method's seed 0, then the probes."""
    runs = [(w, b, s, s, {}) for w, b in BASELINES.items() for s in seeds]
    runs += [(w, UNTUNED, 0, 0, {}) for w in BASELINES]
    return runs + [(w, UNTUNED, 0, 1, hp) for w, hp in PROBES.items()]


def trial(runs: Path, workload: str, submission: str, seed: int, study: int, hp: dict) -> dict:
    """The finished record of this trial, run now if it is missing."""
    hw = records.hardware_class()
    d = records.trial_dir(runs, hw, workload, "default", submission, study, 0)
    if not records.is_finished(d):
        print(f"running {workload} {submission} seed {seed} {hp}", flush=True)
        cfg = RunConfig(
            workload, submission, hparams=hp, seed=seed, study=study, trial=0, runs=runs
        )
        run_trial(cfg)
    run = records.read_run(d)
    evals = [json.loads(line) for line in (d / records.EVALS_JSONL).read_text().splitlines()]
    spec = get_spec(workload, "default")
    values = [e[spec.metric] for e in evals if math.isfinite(e.get(spec.metric, math.nan))]
    best = (min if spec.direction == "min" else max)(values) if values else None
    return {
        "workload": workload,
        "submission": submission,
        "seed": seed,
        "overrides": hp,
        "status": run["status"],
        "time_to_target_s": run["time_to_target_s"],
        "prev_eval_train_time_s": run["prev_eval_train_time_s"],
        "steps_to_target": run["steps_to_target"],
        "steps": run["steps"],
        "ms_per_step": 1e3 * run["s_per_step"] if run["s_per_step"] else None,
        "train_time_s": run["train_time_s"],
        "wall_time_s": run["wall_time_s"],
        "metric": spec.metric,
        "best": best,
        "budget_s": run["budget_s"],
        "hparams": run["hparams"],
        "git": run["git"],
        "run_dir": str(d),
        "curve": [
            {"step": e["step"], "train_time_s": e["train_time_s"], spec.metric: e[spec.metric]}
            for e in evals
        ],
    }


def markdown(rows: list[dict]) -> str:
    out = [
        "| workload | submission | seed | hyperparameters | status | time to target (prev eval) "
        "| steps | ms/step | best metric | budget then |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ttt = r["time_to_target_s"]
        ttt_s = "miss" if ttt is None else f"{ttt:.1f} s ({r['prev_eval_train_time_s']:.1f})"
        best = "-" if r["best"] is None else f"{r['metric']} {r['best']:.4g}"
        ms = "-" if r["ms_per_step"] is None else f"{r['ms_per_step']:.1f}"
        hp = json.dumps(r["overrides"]) if r["overrides"] else "defaults"
        out.append(
            f"| {r['workload']} | {r['submission']} | {r['seed']} | {hp} | {r['status']} | "
            f"{ttt_s} | {r['steps']} | {ms} | {best} | {r['budget_s']:g} s |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs-calib"))
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    rows = [trial(args.runs, *job) for job in plan(args.seeds)]
    hw = hardware()
    result = result_record(hw, args, rows, hardware_class=records.hardware_class())
    head = (
        f"# Calibration re-check, {result['date'][:10]}, `{records.hardware_class()}`\n\n"
        f"`python benchmarks/calibration_recheck.py --runs {args.runs}`: one `ttr run` each, "
        f"one after another. CPU: {hw['cpu']} ({hw['cores']} cores), torch "
        f"{hw['versions']['torch']}. Baselines at their default hyperparameters, seeds "
        f"{', '.join(map(str, args.seeds))}; `{UNTUNED}` at its defaults, seed 0; then `{UNTUNED}` "
        f"by hand near each baseline's settings (probes), seed 0.\n\n"
    )
    write_results(args.out, f"calibration_recheck-{records.hardware_class()}", result,
                  head + markdown(rows))  # fmt: skip


if __name__ == "__main__":
    main()
