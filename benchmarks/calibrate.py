"""Calibration of a workload's ``default`` target and budget from tuned runs (AlgoPerf-style).

For each submission, hyperparameter setting and seed: train with the submission's own functions
for ``--steps`` steps (the harness's seeds and streams), evaluating the validation split with
the workload's evaluator every ``--eval-every`` steps (off the clock). Records every metric of
the evaluator against steps and training seconds. Writes
benchmarks/results/<workload>_calibration-<hw><tag>.json and prints, per run, the best value of
the workload's metric and the step/time at which each level was first met (with every guard).

    python benchmarks/calibrate.py certification --submissions ibp --seeds 0 1 2 --steps 3000 \
        --hparams lr=2e-3 --levels 0.5 0.6 --tag=-ibp

Calibration rule (docs/workloads.md#calibration): target = median over seeds of the tuned baseline's
best validation metric, rounded down to 0.01; budget = about 4/3 of the median training time the
baseline needs to reach it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from harness import records
from harness.cli import parse_hparams
from harness.discovery import build_workload, get_spec, load_submission
from harness.runner import make_generator
from harness.search_space import SearchSpace

RESULTS = Path(__file__).resolve().parent / "results"

CALIBRATION_EVAL_SEED = 0  # a benchmark, not a ranked run: a public evaluation seed


def run(sub_name, spec, steps, eval_every, seed, device, overrides):
    sub = load_submission(sub_name)
    wl = build_workload(spec, device, eval_seed=CALIBRATION_EVAL_SEED)
    model = wl.init_model(make_generator(seed, "init", device))
    hp = SearchSpace.load(sub.search_space_path).resolve(overrides)
    rng = make_generator(seed, "update", device)
    state = sub.fn("init")(wl, model, hp, rng)
    streams = wl.train_streams(sub.batch_size(wl), make_generator(seed, "data", device))
    select = sub.fn("data_selection")
    curve, train_s = [], 0.0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        batch = select(wl, streams, state, step - 1, rng) if select else next(streams["train"])
        state = sub.fn("update")(wl, model, state, batch, hp, step - 1, rng)
        train_s += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            m = wl.evaluate(model, "validation")
            curve.append({"step": step, "train_s": round(train_s, 2), **m})
            shown = " ".join(f"{k} {v:.3f}" for k, v in m.items() if k != "examples")
            print(f"  {sub_name} seed {seed} step {step:5d} {train_s:7.1f} s {shown}", flush=True)
    return {
        "submission": sub_name,
        "seed": seed,
        "hparams": dict(hp),
        "curve": curve,
        "best": max(c[spec.metric] for c in curve),
        "s_per_step": train_s / steps,
    }


def first_reach(curve, spec, level):
    at = dataclasses.replace(spec, target=level)
    return next(((c["step"], c["train_s"]) for c in curve if at.meets_target(c)), None)


def main(workload: str | None = None, default_levels=(0.8, 0.85, 0.88, 0.9)) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    if workload is None:
        p.add_argument("workload")
    p.add_argument("--submissions", nargs="*", required=True)
    p.add_argument("--variant", default="default")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--hparams", nargs="*", default=[], metavar="k=v", help="for every submission")
    p.add_argument("--levels", type=float, nargs="*", default=list(default_levels))
    p.add_argument("--spec", nargs="*", default=[], metavar="k=v", help="override spec fields")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    workload = workload or args.workload
    device = torch.device("cpu")
    spec = get_spec(workload, args.variant)
    if args.spec:
        spec = dataclasses.replace(spec, **parse_hparams(args.spec))
    overrides = parse_hparams(args.hparams) if args.hparams else {}
    runs = [
        run(s, spec, args.steps, args.eval_every, seed, device, overrides)
        for s in args.submissions
        for seed in args.seeds
    ]
    print(
        f"\n{'submission':18s} {'seed':>4s} {'best':>6s} {'ms/step':>8s}  first reached (step, s)"
    )
    for r in runs:
        reach = {lv: first_reach(r["curve"], spec, lv) for lv in args.levels}
        print(
            f"{r['submission']:18s} {r['seed']:4d} {r['best']:6.3f} {1e3 * r['s_per_step']:8.1f}  "
            + "  ".join(f"{lv}: {v}" for lv, v in reach.items())
        )
    for s in args.submissions:
        bests = [r["best"] for r in runs if r["submission"] == s]
        print(f"{s}: median best {spec.metric} {statistics.median(bests):.3f} over {len(bests)}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{workload}_calibration-{records.hardware_class()}{args.tag}.json"
    records.atomic_write_text(
        out,
        json.dumps(
            {
                "workload": workload,
                "args": vars(args),
                "hardware": records.hardware_fingerprint(),
                "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                "runs": runs,
            },
            indent=1,
        ),
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
