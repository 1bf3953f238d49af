"""Calibration of the ldpc ``default`` operating point: where plain min-sum misses and trained
decoders reach the target.

For each submission (default hyperparameters, several seeds): train for ``--steps`` steps with
the submission's own functions (no clock, no evaluation), then score the trained weights and
plain min-sum (all weights 1) with the workload's evaluator at each Eb/N0 of ``--ebn0``.
Writes benchmarks/results/ldpc_calibration-<hw>.json and prints a table.

    python benchmarks/calibrate_ldpc.py --steps 400 --seeds 0 1 2 --ebn0 3.25 3.5 3.75
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from harness import records
from harness.cli import parse_hparams
from harness.discovery import load_submission
from harness.runner import make_generator
from harness.search_space import SearchSpace
from workloads.ldpc import SPECS, LdpcWorkload

RESULTS = Path(__file__).resolve().parent / "results"


def train(sub_name: str, spec, steps: int, seed: int, device, overrides=None):
    sub = load_submission(sub_name)
    wl = LdpcWorkload(spec, device)
    model = wl.init_model(make_generator(seed, "init", device))
    hp = SearchSpace.load(sub.search_space_path).resolve(overrides or {})
    rng = make_generator(seed, "update", device)
    state = sub.fn("init")(wl, model, hp, rng)
    streams = wl.train_streams(sub.batch_size(wl), make_generator(seed, "data", device))
    select = sub.fn("data_selection")
    t0 = time.perf_counter()
    for step in range(steps):
        batch = select(wl, streams, state, step, rng) if select else next(streams["train"])
        state = sub.fn("update")(wl, model, state, batch, hp, step, rng)
    return model, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--submissions", nargs="*", default=["nms_baseline", "boosted_nms"])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--ebn0", type=float, nargs="*", default=[3.25, 3.5, 3.75])
    p.add_argument("--frame-cap", type=int, default=40_000)
    p.add_argument("--hparams", nargs="*", default=[], metavar="k=v", help="for every submission")
    p.add_argument("--no-min-sum", action="store_true")
    p.add_argument("--tag", default="", help="appended to the results file name")
    args = p.parse_args()
    device = torch.device("cpu")
    base = dataclasses.replace(SPECS["default"], frame_cap=args.frame_cap)
    rows = []

    def score(label, model, seed, train_s):
        for e in args.ebn0:
            wl = LdpcWorkload(dataclasses.replace(base, ebn0_db=e), device, eval_seed=0)
            m = wl.evaluate(model, "validation")
            rows.append({"decoder": label, "seed": seed, "ebn0_db": e, "train_s": train_s, **m})
            print(
                f"{label:<14} seed {seed} {e:.2f} dB: FER {m['fer']:.2e} "
                f"[{m['fer_lower95']:.2e}, {m['fer_upper95']:.2e}] ({m['frames']:.0f} frames)",
                flush=True,
            )

    overrides = parse_hparams(args.hparams)
    if not args.no_min_sum:
        score("min-sum", LdpcWorkload(base, device).init_model(None), None, 0.0)
    for name in args.submissions:
        for seed in args.seeds:
            model, train_s = train(name, base, args.steps, seed, device, overrides)
            print(
                f"{name} seed {seed}: {args.steps} steps in {train_s:.1f} s; "
                f"w_cn {[round(x, 2) for x in model.w_cn.tolist()]}",
                flush=True,
            )
            score(name, model, seed, train_s)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ldpc_calibration-{records.hardware_class()}{args.tag}.json"
    records.write_json(
        out,
        {
            "args": vars(args),
            "hardware": records.hardware_fingerprint(),
            "date": records.utcnow(),
            "rows": rows,
        },
    )
    print("\nmedian FER over seeds:")
    for name in ["min-sum", *args.submissions]:
        for e in args.ebn0:
            fers = [r["fer"] for r in rows if r["decoder"] == name and r["ebn0_db"] == e]
            print(f"  {name:<14} {e:.2f} dB: {statistics.median(fers):.2e} (n={len(fers)})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
