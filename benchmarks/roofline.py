"""Roofline inputs: this machine's matmul and copy limits, and each workload's achieved rate.

Limits (torch, float32, CPU), at 1 and at 2 threads (``--threads``):
- **GEMM**: C = A @ B on square matrices (``--gemm-n``, default 1024): 2 n^3 / time, median of
  ``--reps`` after a warm-up;
- **copy**: ``dst.copy_(src)`` of a 256 MiB float32 tensor: 2 x bytes (read + write) / time.

Per workload (`default`, its calibrating baseline, at each thread count):
- **training step**: FLOPs of one step (the submission's ``update`` on the next batch) counted
  by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions and attention only:
  elementwise work is not counted, so memory-bound steps show a low fraction), the median step
  time over ``--steps`` after ``--warmup``, achieved GFLOP/s and its fraction of the GEMM limit;
- **evaluation**: one ``evaluate(model, "validation")`` of the untrained model, timed (a second
  run, after one under the FLOP counter; the counter cannot follow ``autograd.grad``, so
  certification's PGD evaluation has no count) (``--no-eval`` skips it). The ldpc decoder
  runs in numba (no torch FLOPs; the counted FLOPs are the encoder's matmul), so for it the
  script reports edge updates per second: (edges x average iterations x frames) / time, from
  a direct decode of 20,000 frames.

    python benchmarks/roofline.py --json                   # limits + all workloads, 1 and 2 threads
    python benchmarks/roofline.py --quick --workloads ldpc snn
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trial_fixed_costs import BASELINES  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", nargs="*", default=list(BASELINES), choices=list(BASELINES))
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--gemm-n", type=int, default=1024)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--no-eval", action="store_true", help="skip the evaluations")
    p.add_argument("--quick", action="store_true", help="smoke run: fewer reps and steps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.warmup, args.steps, args.gemm_n = 3, 1, 3, 512
    return args


def median_time(fn, reps: int) -> tuple[float, list[float]]:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def limits(n: int, reps: int) -> dict:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    c = torch.empty(n, n)
    t_mm, ts_mm = median_time(lambda: torch.mm(a, b, out=c), reps)
    src = torch.randn(64 * 2**20, generator=g)  # 256 MiB
    dst = torch.empty_like(src)
    t_cp, ts_cp = median_time(lambda: dst.copy_(src), max(3, reps // 2))
    nbytes = 2 * src.numel() * 4
    return {
        "gemm_gflops": 2 * n**3 / t_mm / 1e9,
        "gemm_gflops_range": [2 * n**3 / max(ts_mm) / 1e9, 2 * n**3 / min(ts_mm) / 1e9],
        "gemm_n": n,
        "copy_gbs": nbytes / t_cp / 1e9,
        "copy_gbs_range": [nbytes / max(ts_cp) / 1e9, nbytes / min(ts_cp) / 1e9],
    }


def workload_rates(name: str, args, gemm_gflops: float) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from harness import discovery, runner
    from harness.search_space import SearchSpace

    device = torch.device("cpu")
    spec = discovery.get_spec(name, "default")
    sub = discovery.load_submission(BASELINES[name])
    torch.manual_seed(runner.derive_seed(0, "global"))
    w = discovery.build_workload(spec, device, eval_seed=0)
    model = w.init_model(runner.make_generator(0, "init", device))
    hp = SearchSpace.load(sub.search_space_path).resolve({})
    get_bs = sub.fn("get_batch_size")
    bs = int(get_bs(w)) if get_bs is not None else int(spec.batch_size_hint)
    rng = runner.make_generator(0, "update", device)
    state = {"s": sub.fn("init")(w, model, hp, rng), "i": 0}
    streams = w.train_streams(bs, runner.make_generator(0, "data", device))
    select = sub.fn("data_selection")
    takes_ts = sub.update_takes_train_state()

    def step():
        i = state["i"]
        batch = select(w, streams, state["s"], i, rng) if select else next(streams["train"])
        ts = {"train_time_s": 0.0, "budget_s": 1e9, "step": i, "evals": ()}
        extra = {"train_state": ts} if takes_ts else {}
        state["s"] = sub.fn("update")(w, model, state["s"], batch, hp, i, rng, **extra)
        state["i"] = i + 1

    for _ in range(args.warmup):
        step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    t, ts = median_time(step, args.steps)
    out = {
        "submission": BASELINES[name],
        "batch": bs,
        "train_step_s": t,
        "train_step_s_range": [min(ts), max(ts)],
        "train_step_gflop": flops / 1e9,
        "train_gflops": flops / t / 1e9,
        "train_fraction_of_gemm": flops / t / 1e9 / gemm_gflops,
    }
    if not args.no_eval:
        counter = FlopCounterMode(display=False)
        try:
            with counter:
                w.evaluate(model, "validation")
            eflops: int | None = counter.get_total_flops()
        except RuntimeError:  # FlopCounterMode cannot follow autograd.grad (certification's PGD)
            eflops = None
        t0 = time.perf_counter()
        metrics = w.evaluate(model, "validation")
        te = time.perf_counter() - t0
        out["eval_s"] = te
        if eflops is not None:
            out.update(
                eval_gflop=eflops / 1e9,
                eval_gflops=eflops / te / 1e9,
                eval_fraction_of_gemm=eflops / te / 1e9 / gemm_gflops,
            )
        if name == "ldpc":
            out.update(ldpc_decoder_rates(w, model, spec, metrics))
    return out


def ldpc_decoder_rates(w, model, spec, metrics: dict) -> dict:
    """Edge updates per second of the evaluation decoder on 20,000 frames at the spec's point."""
    from workloads.ldpc.channel import bpsk_awgn_llr
    from workloads.ldpc.fast_decoder import FastMinSum, backend, early_stop

    if backend() != "numba":
        return {"ldpc_decoder": "reference (numba missing)"}
    g = torch.Generator().manual_seed(1)
    bits = w.encoder.encode(torch.randint(0, 2, (20_000, w.code.k), generator=g).float())
    llr = bpsk_awgn_llr(bits, spec.ebn0_db, w.rate, g)
    fast = FastMinSum(w.graph, model, spec.iterations)
    stop = early_stop()
    fast.decode(llr[:1000], early_stop=stop)
    t0 = time.perf_counter()
    _, _, iters = fast.decode(llr, early_stop=stop)
    t = time.perf_counter() - t0
    edges = int(w.graph.edges)
    return {
        "ldpc_frames_per_s": llr.shape[0] / t,
        "ldpc_mbps_coded": llr.shape[0] * w.code.n / t / 1e6,
        "ldpc_avg_iterations": float(iters.float().mean()),
        "ldpc_edge_updates_per_s": edges * float(iters.sum()) / t,
        "ldpc_early_stop": stop,
        "eval_fer": metrics.get("fer"),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cores": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "torch": torch.__version__,
        "threads": {},
    }
    for nt in args.threads:
        torch.set_num_threads(nt)
        try:
            import numba

            numba.set_num_threads(min(nt, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass
        lim = limits(args.gemm_n, args.reps)
        row = {"limits": lim, "workloads": {}}
        if not args.json:
            print(
                f"{nt} thread(s): GEMM {lim['gemm_gflops']:.1f} GFLOP/s, "
                f"copy {lim['copy_gbs']:.1f} GB/s",
                flush=True,
            )
        for name in args.workloads:
            r = workload_rates(name, args, lim["gemm_gflops"])
            row["workloads"][name] = r
            if not args.json:
                print(
                    f"  {name}: step {r['train_step_s'] * 1e3:.1f} ms, "
                    f"{r['train_gflops']:.2f} GFLOP/s "
                    f"({100 * r['train_fraction_of_gemm']:.1f}% of GEMM)",
                    flush=True,
                )
        result["threads"][str(nt)] = row
    result["loadavg_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
