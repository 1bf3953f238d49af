"""Calibration of the ldpc ``default`` operating point: where no constant normalization factor
meets the target and trained decoders do.

Two modes, on the ``default`` spec with optional overrides (``--code``, ``--iterations``,
``--frame-cap``, ``--min-frame-errors``), each scored with the workload's own evaluator (the
evaluation decoder, validation frames of evaluation seed 0) at each Eb/N0 of ``--ebn0``:

- ``--constant-factors [F ...]``: plain normalized min-sum, one factor F on every check-node and
  UCN weight of every iteration, channel weights 1 (default factors 0.5, 0.55, ..., 1.0; 1.0 is
  plain min-sum): the table that shows whether a constant factor meets the target.
- otherwise, for each submission (default hyperparameters unless ``--hparams``) and seed: train
  ``--steps`` steps with the submission's own functions (no clock, no evaluation), then score
  the trained weights and plain min-sum.

Writes benchmarks/results/ldpc_calibration-<hw><tag>.json and prints a table.

    python benchmarks/calibrate_ldpc.py --constant-factors --ebn0 4.0 --tag=-factors
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
FACTORS = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))  # 0.5, 0.55, ..., 1.0


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


def constant_factor_model(wl: LdpcWorkload, factor: float) -> torch.nn.Module:
    """Normalized min-sum: ``factor`` on every check-node and UCN weight, channel weights 1."""
    if not 0.0 <= factor <= 2.0:
        raise SystemExit(f"constant factors must lie in [0, 2], got {factor}")
    model = wl.init_model(None)
    with torch.no_grad():
        model.w_cn.fill_(factor)
        model.w_ucn.fill_(factor)
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--submissions", nargs="*", default=["nms_baseline", "boosted_nms"])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--ebn0", type=float, nargs="*", default=None, help="default: the spec's")
    p.add_argument("--code", default=None, help="default: the spec's")
    p.add_argument("--iterations", type=int, default=None, help="default: the spec's")
    p.add_argument("--frame-cap", type=int, default=None, help="default: the spec's")
    p.add_argument("--min-frame-errors", type=int, default=None, help="default: the spec's")
    p.add_argument("--hparams", nargs="*", default=[], metavar="k=v", help="for every submission")
    p.add_argument(
        "--constant-factors",
        type=float,
        nargs="*",
        default=None,
        metavar="F",
        help="score normalized min-sum with these factors (none given: 0.5, 0.55, ..., 1.0)",
    )
    p.add_argument("--no-min-sum", action="store_true")
    p.add_argument("--tag", default="", help="appended to the results file name")
    args = p.parse_args()
    device = torch.device("cpu")
    spec = SPECS["default"]
    changes = {
        "code": args.code,
        "iterations": args.iterations,
        "frame_cap": args.frame_cap,
        "min_frame_errors": args.min_frame_errors,
    }
    base = dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
    ebn0s = args.ebn0 or [base.ebn0_db]
    rows = []
    # one evaluating workload per Eb/N0: its frames are drawn once and kept (FrameCache)
    scorers = {
        e: LdpcWorkload(dataclasses.replace(base, ebn0_db=e), device, eval_seed=0) for e in ebn0s
    }

    def score(label, model, seed, train_s):
        for e in ebn0s:
            wl = scorers[e]
            t0 = time.perf_counter()
            m = wl.evaluate(model, "validation")
            eval_s = time.perf_counter() - t0
            rows.append(
                {
                    "decoder": label,
                    "seed": seed,
                    "ebn0_db": e,
                    "train_s": train_s,
                    "eval_s": eval_s,
                    "w_cn": [round(x, 4) for x in model.w_cn.tolist()],
                    "w_ucn": [round(x, 4) for x in model.w_ucn.tolist()],
                    "w_ch": [round(x, 4) for x in model.w_ch.tolist()],
                    **m,
                }
            )
            print(
                f"{label:<14} seed {seed} {e:.2f} dB: FER {m['fer']:.2e} "
                f"[{m['fer_lower95']:.2e}, {m['fer_upper95']:.2e}] "
                f"({m['frames']:.0f} frames, {m['frame_errors']:.0f} errors, {eval_s:.1f} s)",
                flush=True,
            )

    overrides = parse_hparams(args.hparams)
    labels: list[str] = []
    if args.constant_factors is not None:
        wl = LdpcWorkload(base, device)
        for f in args.constant_factors or FACTORS:
            label = f"nms-{f:g}"
            labels.append(label)
            score(label, constant_factor_model(wl, f), None, 0.0)
    else:
        if not args.no_min_sum:
            labels.append("min-sum")
            score("min-sum", LdpcWorkload(base, device).init_model(None), None, 0.0)
        for name in args.submissions:
            labels.append(name)
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
            "spec": {
                "code": base.code,
                "iterations": base.iterations,
                "eval_chunk": base.eval_chunk,
                "min_frame_errors": base.min_frame_errors,
                "frame_cap": base.frame_cap,
                "eval_seed": 0,
                "split": "validation",
            },
            "hardware": records.hardware_fingerprint(),
            "date": records.utcnow(),
            "rows": rows,
        },
    )
    print("\nmedian FER over seeds (max fer_lower95 / min fer_upper95):")
    for name in labels:
        for e in ebn0s:
            got = [r for r in rows if r["decoder"] == name and r["ebn0_db"] == e]
            print(
                f"  {name:<14} {e:.2f} dB: {statistics.median(r['fer'] for r in got):.2e} "
                f"(n={len(got)}; {max(r['fer_lower95'] for r in got):.2e} / "
                f"{min(r['fer_upper95'] for r in got):.2e})"
            )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
