"""INT4 training (``submissions/int4_training``) against float32 on this machine, side by side.

- Per layer shape: seconds per forward + backward of one linear layer, float32 (``F.linear``
  under autograd) and ``Int4Linear`` (Hadamard quantizer, bit splitting, LSS, LSQ, the integer
  products by ``torch._int_mm``), the shapes of the ``default`` translation and factuality
  models at their batch sizes (rows = tokens of a batch). The two run interleaved (their order
  alternating), ``--repeats`` blocks of ``--calls`` calls each; median and range over blocks.
  The quantization share is 1 - (the three integer products alone, at the same shapes) /
  (the INT4 layer): what the quantizers, transforms, sampling and scaling cost.
- Whole step: one training step (forward, backward, clip, AdamW, schedule) of each workload's
  ``default`` model with its baseline (``temperature_sampling``, ``lm_baseline``) and with
  ``int4_training``, from the same initial weights on the same batches (drawn up front; data
  selection not timed), interleaved blocks of ``--steps`` steps; median and range of s/step.
- Training-loss gap at equal steps: the two runs' losses on those same batches, mean of the last
  ``--tail`` steps and of the first ones.

Writes benchmarks/results/int4_training-<--tag>.{json,md}. ``--quick`` runs in under a minute.

    python benchmarks/int4_training.py --tag cpu-2core
    python benchmarks/int4_training.py --quick --json
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import hardware, result_record, write_results  # noqa: E402

from harness.discovery import build_workload, get_spec  # noqa: E402
from submissions.int4_training import submission as int4  # noqa: E402
from submissions.int4_training.kernels import quant  # noqa: E402
from submissions.int4_training.kernels.linear import int4_linear  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# (label, rows N, in K, out M): translation default (d 128, ffn 256, 64 sentences of <= 32
# tokens: ~1,400 target tokens a batch; 4,096 rows is the reference shape) and
# factuality default (d 128, ffn 512, 32 rows x 128 tokens = 4,096 tokens)
SHAPES = [
    ("q/out 128->128", 4096, 128, 128),
    ("kv 128->256 / translation fc1", 4096, 128, 256),
    ("translation fc2 256->128", 4096, 256, 128),
    ("qkv 128->384", 4096, 128, 384),
    ("factuality fc1 128->512", 4096, 128, 512),
    ("factuality fc2 512->128", 4096, 512, 128),
]


def _spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def _timed(fn, calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def _float_call(x, w, b, gy) -> None:
    F.linear(x, w, b).backward(gy)


def _int4_call(x, w, b, s_x, s_w, group, noise, gy) -> None:
    int4_linear(x, w, b, s_x, s_w, group, noise).backward(gy)


def _products(qx, qw, qg) -> None:
    """The forward, input-gradient and weight-gradient integer products, N rows each."""
    quant.int_mm(qx, qw.t())
    quant.int_mm(qg, qw)
    quant.int_mm(qg.t().contiguous(), qx)


def layer_rows(repeats: int, calls: int, shapes) -> list[dict]:
    rows = []
    for label, n, k, m in shapes:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, k, generator=g).requires_grad_()
        w = (torch.randn(m, k, generator=g) / math.sqrt(k)).requires_grad_()
        b = torch.zeros(m, requires_grad=True)
        gy = torch.randn(n, m, generator=g) * 1e-3
        group = quant.best_group(x.detach(), w.detach())
        s_x = quant.lsq_init_scale(quant.block_hadamard(x.detach(), group)).requires_grad_()
        s_w = quant.lsq_init_scale(quant.block_hadamard(w.detach(), group)).requires_grad_()
        noise = torch.Generator().manual_seed(1)
        qx = torch.randint(-8, 8, (n, k), dtype=torch.int8)
        qw = torch.randint(-8, 8, (m, k), dtype=torch.int8)
        qg = torch.randint(-7, 8, (n, m), dtype=torch.int8)

        f32 = functools.partial(_float_call, x, w, b, gy)
        i4 = functools.partial(_int4_call, x, w, b, s_x, s_w, group, noise, gy)
        products = functools.partial(_products, qx, qw, qg)
        for fn in (f32, i4, products):
            fn()  # warm-up
        times: dict[str, list[float]] = {"float32": [], "int4": [], "int_products": []}
        for r in range(repeats):
            order = [("float32", f32), ("int4", i4), ("int_products", products)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                times[name].append(_timed(fn, calls))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "kind": "layer",
                "shape": label,
                "rows": n,
                "in": k,
                "out": m,
                "hadamard_group": group,
                "s_per_call": {k: _spread(v) for k, v in times.items()},
                "int4_over_float32": med["int4"] / med["float32"],
                "int_products_over_float32": med["int_products"] / med["float32"],
                "quantization_share": 1.0 - med["int_products"] / med["int4"],
            }
        )
        print(
            f"{label:32s} float32 {med['float32'] * 1e3:7.2f} ms  int4 {med['int4'] * 1e3:7.2f}"
            f" ms  (x{med['int4'] / med['float32']:.2f}; int products alone "
            f"{med['int_products'] * 1e3:.2f} ms, quantization share "
            f"{rows[-1]['quantization_share']:.0%})",
            flush=True,
        )
    return rows


def step_row(workload: str, repeats: int, steps: int, tail: int) -> dict:
    wl = build_workload(get_spec(workload, "default"), torch.device("cpu"))
    base = int4.BASES[workload]
    model_f = wl.init_model(torch.Generator().manual_seed(0))
    model_q = copy.deepcopy(model_f)
    hp = int4.base_hparams(wl, {"lr_factor": 1.0})
    state_f = base.init(wl, model_f, hp, torch.Generator().manual_seed(1))
    state_q = int4.init(wl, model_q, {"lr_factor": 1.0}, torch.Generator().manual_seed(1))
    streams = wl.train_streams(wl.spec.batch_size_hint, torch.Generator().manual_seed(2))
    data_rng = torch.Generator().manual_seed(3)
    total = repeats * steps
    batches = [int4.data_selection(wl, streams, state_f, i, data_rng) for i in range(total)]
    rng_f, rng_q = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    losses: dict[str, list[float]] = {"float32": [], "int4": []}
    times: dict[str, list[float]] = {"float32": [], "int4": []}
    pos = {"float32": 0, "int4": 0}

    def run(path: str) -> None:
        nonlocal state_f, state_q
        t = time.perf_counter()
        for _ in range(steps):
            i = pos[path]
            if path == "float32":
                state_f = base.update(wl, model_f, state_f, batches[i], hp, i, rng_f)
                losses[path].append(float(state_f["loss"]))
            else:
                state_q = int4.update(wl, model_q, state_q, batches[i], {}, i, rng_q)
                losses[path].append(float(state_q["loss"]))
            pos[path] += 1
        times[path].append((time.perf_counter() - t) / steps)

    for r in range(repeats):
        for path in ("float32", "int4") if r % 2 == 0 else ("int4", "float32"):
            run(path)
    med = {k: statistics.median(v) for k, v in times.items()}
    k = min(tail, total)
    gap_tail = statistics.fmean(losses["int4"][-k:]) - statistics.fmean(losses["float32"][-k:])
    row = {
        "kind": "step",
        "workload": f"{workload}/default",
        "steps_each": total,
        "s_per_step": {p: _spread(v) for p, v in times.items()},
        "int4_over_float32": med["int4"] / med["float32"],
        "loss_first": {p: losses[p][0] for p in losses},
        "loss_tail_mean": {p: statistics.fmean(losses[p][-k:]) for p in losses},
        "tail_steps": k,
        "loss_gap_tail": gap_tail,
        "loss_curves": losses,
    }
    print(
        f"{workload}/default step: float32 {med['float32'] * 1e3:.1f} ms, int4 "
        f"{med['int4'] * 1e3:.1f} ms (x{row['int4_over_float32']:.2f}); training loss over the "
        f"last {k} of {total} steps: float32 {row['loss_tail_mean']['float32']:.4f}, int4 "
        f"{row['loss_tail_mean']['int4']:.4f} (gap {gap_tail:+.4f})",
        flush=True,
    )
    return row


def markdown(rec: dict) -> str:
    hw = rec["hardware"]
    lines = [
        "# INT4 training vs float32, side by side",
        "",
        f"{rec['date']}; {hw['cpu']}, {hw['cores']} cores, torch {hw['versions']['torch']}, "
        f"{hw['torch_threads']} threads. {rec['note']}",
        "",
        "## Per layer (forward + backward of one linear layer)",
        "",
        "| shape (N x K -> M) | group | float32 ms | INT4 ms | INT4 / float32 | int products "
        "alone ms | quantization share |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rec["rows"]:
        if r["kind"] != "layer":
            continue
        s = r["s_per_call"]

        def ms(d):
            return f"{d['median'] * 1e3:.2f} ({d['min'] * 1e3:.2f}-{d['max'] * 1e3:.2f})"

        lines.append(
            f"| {r['shape']} ({r['rows']} x {r['in']} -> {r['out']}) | {r['hadamard_group']} | "
            f"{ms(s['float32'])} | {ms(s['int4'])} | {r['int4_over_float32']:.2f} | "
            f"{ms(s['int_products'])} | {r['quantization_share']:.0%} |"
        )
    lines += [
        "",
        "## Whole training step and training-loss gap at equal steps",
        "",
        "| workload | steps each | float32 ms/step | INT4 ms/step | INT4 / float32 | loss, "
        "first step | loss, mean of last steps float32 / INT4 | gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rec["rows"]:
        if r["kind"] != "step":
            continue
        s = r["s_per_step"]
        lines.append(
            f"| {r['workload']} | {r['steps_each']} | {s['float32']['median'] * 1e3:.1f} "
            f"({s['float32']['min'] * 1e3:.1f}-{s['float32']['max'] * 1e3:.1f}) | "
            f"{s['int4']['median'] * 1e3:.1f} ({s['int4']['min'] * 1e3:.1f}-"
            f"{s['int4']['max'] * 1e3:.1f}) | {r['int4_over_float32']:.2f} | "
            f"{r['loss_first']['float32']:.3f} | {r['loss_tail_mean']['float32']:.4f} / "
            f"{r['loss_tail_mean']['int4']:.4f} (last {r['tail_steps']}) | "
            f"{r['loss_gap_tail']:+.4f} |"
        )
    lines += ["", "Medians with the range over blocks in parentheses.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a run of under a minute")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved blocks (>= 5)")
    ap.add_argument("--calls", type=int, default=10, help="layer calls per block")
    ap.add_argument("--steps", type=int, default=40, help="training steps per block")
    ap.add_argument("--tail", type=int, default=50, help="steps averaged for the loss gap")
    ap.add_argument("--workloads", default="translation,factuality")
    ap.add_argument("--tag", default="cpu-2core", help="results file: int4_training-<tag>")
    ap.add_argument("--note", default="", help="a sentence on the machine's load, in the md")
    ap.add_argument("--json", action="store_true", help="print the result JSON")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.calls < 1 or args.steps < 1:
        ap.error("--repeats, --calls and --steps must be positive")
    unknown = set(args.workloads.split(",")) - set(int4.BASES)
    if unknown:
        ap.error(f"unknown workload(s) {sorted(unknown)}; known: {sorted(int4.BASES)}")
    shapes = SHAPES
    if args.quick:
        args.calls, args.steps, args.tail, shapes = 2, 1, 3, SHAPES[:2]
    rows = layer_rows(args.repeats, args.calls, shapes)
    for w in args.workloads.split(","):
        rows.append(step_row(w, args.repeats, args.steps, args.tail))
    note = args.note or "Ratios are side by side (interleaved blocks in one process)."
    rec = result_record(hardware(), args, rows, note=note)
    if not args.quick:
        write_results(args.out, f"int4_training-{args.tag}", rec, markdown(rec))
    if args.json:
        print(json.dumps({k: v for k, v in rec.items()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
