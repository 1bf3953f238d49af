"""Does a network trained by ``int4_training`` work in float32? (issue 22's loss stall)

The workload's evaluator scores the float32 reference network with the trained weights. This
trains ``translation/default`` with ``int4_training`` for ``--steps`` steps and, every
``--every`` steps, measures the workload's training loss on 4 held-out training batches (a
stream of its own seed, never trained on; no validation data is touched) twice, on the same
weights: through the float32 layers the evaluator uses, and through the INT4 layers training
used. It also reports how far the learned LSQ step sizes moved from their initial values
(median and extremes over layers, as a ratio). ``--variant frozen`` keeps the step sizes at
their data-driven initial values (learning rate 0 for them), to tell the step sizes' learning
from the rest of the quantized arithmetic.

    python benchmarks/int4_float_gap.py --steps 600 --variant learned
    python benchmarks/int4_float_gap.py --steps 600 --variant frozen
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import hardware, result_record, write_results  # noqa: E402

from harness.discovery import build_workload, get_spec  # noqa: E402
from submissions.int4_training import submission as int4  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def run(workload: str, steps: int, every: int, variant: str) -> list[dict]:
    torch.manual_seed(0)
    wl = build_workload(get_spec(workload, "default"), torch.device("cpu"))
    model = wl.init_model(torch.Generator().manual_seed(0))
    streams = wl.train_streams(wl.spec.batch_size_hint, torch.Generator().manual_seed(2))
    held_stream = wl.train_streams(wl.spec.batch_size_hint, torch.Generator().manual_seed(77))
    held = [next(held_stream["train"]) for _ in range(4)]
    data_rng, rng = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    state = int4.init(wl, model, {"lr_factor": 1.0}, torch.Generator().manual_seed(1))
    if variant == "frozen":
        group = state["opt"].param_groups[1]  # the step sizes' group (int4.init)
        group["initial_lr"] = group["lr"] = 0.0
        # the schedule scales each group's initial lr: rebuilt, it keeps this one at 0
        lam = state["sched"].lr_lambdas[0]
        state["sched"] = torch.optim.lr_scheduler.LambdaLR(state["opt"], lam)
    rows, losses, init_s, t0 = [], [], None, time.perf_counter()
    for i in range(steps):
        batch = int4.data_selection(wl, streams, state, i, data_rng)
        state = int4.update(wl, model, state, batch, {}, i, rng)
        losses.append(float(state["loss"]))
        if init_s is None:  # set by the first call of each layer (the authors' init)
            init_s = {k: (v.s_x.item(), v.s_w.item()) for k, v in state["int4"].items()}
        if (i + 1) % every == 0:
            with torch.no_grad():
                lf, lq = [], []
                for b in held:
                    lf.append(float(wl.training_loss(model, b, i)))
                    gen = torch.Generator().manual_seed(9)
                    with int4.int4_layers(model, state["int4"], gen):
                        lq.append(float(wl.training_loss(model, b, i)))
            rw = sorted(abs(v.s_w.item()) / init_s[k][1] for k, v in state["int4"].items())
            rx = sorted(abs(v.s_x.item()) / init_s[k][0] for k, v in state["int4"].items())
            row = {
                "step": i + 1,
                "train_loss_last": statistics.fmean(losses[-every:]),
                "held_float32": statistics.fmean(lf),
                "held_int4": statistics.fmean(lq),
                "s_w_ratio": [rw[0], statistics.median(rw), rw[-1]],
                "s_x_ratio": [rx[0], statistics.median(rx), rx[-1]],
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            print(
                f"{variant} step {i + 1}: held-out loss float32 {row['held_float32']:.3f}, "
                f"int4 {row['held_int4']:.3f}; s_w/init {rw[0]:.2f}-{rw[-1]:.2f}, "
                f"s_x/init {rx[0]:.2f}-{rx[-1]:.2f}",
                flush=True,
            )
    return rows


def markdown(rec: dict) -> str:
    lines = [
        "# int4_training: the float32 network against the INT4 one, same weights",
        "",
        f"{rec['date']}; {rec['hardware']['cpu']}, torch {rec['hardware']['versions']['torch']}"
        f", {rec['hardware']['torch_threads']} threads; translation/default, one run per "
        "variant (seed 0); held-out loss = the workload's training loss (label smoothing 0.1) "
        "on 4 training batches of a stream never trained on.",
        "",
        "| variant | step | train loss (last window) | held-out, float32 layers | held-out, INT4 "
        "layers | s_w / init (min, median, max) | s_x / init (min, median, max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rec["rows"]:
        f3 = ", ".join(f"{x:.2f}" for x in r["s_w_ratio"])
        g3 = ", ".join(f"{x:.2f}" for x in r["s_x_ratio"])
        lines.append(
            f"| {r['variant']} | {r['step']} | {r['train_loss_last']:.3f} | "
            f"{r['held_float32']:.3f} | {r['held_int4']:.3f} | {f3} | {g3} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--variant", choices=("learned", "frozen"), nargs="+", default=["learned"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for v in args.variant:
        rows += [r | {"variant": v} for r in run("translation", args.steps, args.every, v)]
    rec = result_record(hardware(), args, rows)
    write_results(RESULTS, f"int4_float_gap-{args.tag}", rec, markdown(rec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
