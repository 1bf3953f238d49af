"""Memory of one snn training step against the number of time steps T, per gradient estimator.

For each T in ``--T`` and each method (BPTT through ``SpikingNet.forward``; OTTT and SLTT through
``workloads.snn.online.online_backward``): the ``default`` network (two recurrent LIF layers of
128, leaky readout), batch 128, random sequences of length T. Each configuration runs in a fresh
process and reports
- the exact peak of bytes saved for the backward pass (``harness.memory.SavedTensorMeter``),
- the growth of the process's peak resident memory during the step (``ru_maxrss``; includes
  temporaries and allocator behaviour, so it is noisier), and on CUDA
  ``torch.cuda.max_memory_allocated`` above the memory in use before the step,
- the wall time of the step (median of ``--reps`` steps after one warm-up).
Writes benchmarks/results/snn_memory-<hw>.json and .md.

    python benchmarks/snn_memory.py --T 10 20 40 80
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import records  # noqa: E402
from harness.memory import SavedTensorMeter  # noqa: E402
from workloads.snn.model import Arch, SpikingNet, mean_readout, plain_synapse  # noqa: E402
from workloads.snn.online import PresynapticTraces, online_backward  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("bptt", "ottt", "sltt")


def one_step(net, x, y, method):
    if method == "bptt":
        F.cross_entropy(mean_readout(net(x)), y).backward()
    else:
        syn = PresynapticTraces(net.readout_lam) if method == "ottt" else plain_synapse
        online_backward(net, x, y, syn, 0.05)


def measure(method: str, T: int, batch: int, reps: int, device: str) -> dict:
    dev = torch.device(device)
    torch.manual_seed(0)
    net = SpikingNet(Arch("rsnn", 1, (128, 128), 10, T, 0.5)).to(dev)
    x, y = torch.randn(batch, T, device=dev), torch.randint(0, 10, (batch,), device=dev)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with SavedTensorMeter() as meter:
        one_step(net, x, y, method)
    out = {"method": method, "T": T, "batch": batch, "saved_peak_mb": meter.peak_bytes / 2**20}
    out["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    if dev.type == "cuda":
        torch.cuda.synchronize()
        out["cuda_peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    times = []
    for _ in range(reps):
        net.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        one_step(net, x, y, method)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    out["step_ms"] = 1e3 * statistics.median(times)
    out["step_ms_minmax"] = [1e3 * min(times), 1e3 * max(times)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, nargs="*", default=[10, 20, 40, 80])
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--one", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:  # child process: one configuration, JSON on stdout
        print(
            json.dumps(measure(args.one[0], int(args.one[1]), args.batch, args.reps, args.device))
        )
        return
    rows = []
    for T in args.T:
        for m in args.methods:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                m,
                str(T),
                "--batch",
                str(args.batch),
                "--reps",
                str(args.reps),
                "--device",
                args.device,
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"T={T:3d} {m:5s} saved peak {r['saved_peak_mb']:8.2f} MiB  "
                f"RSS growth {r['rss_growth_mb']:8.1f} MiB  step {r['step_ms']:7.1f} ms",
                flush=True,
            )
    hw = records.hardware_class()
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": records.hardware_fingerprint(),
        "device": args.device,
        "args": {k: v for k, v in vars(args).items() if k != "one"},
    }
    records.atomic_write_text(
        RESULTS / f"snn_memory-{hw}.json", json.dumps({**meta, "rows": rows}, indent=1)
    )
    lines = [
        f"# snn: memory of one training step vs T ({hw}, {args.device}, {meta['when']})",
        "",
        f"Network: the `default` recurrent SNN (1-128-128-10, leaky readout), batch {args.batch}; "
        f"one configuration per fresh process; step time = median of {args.reps} steps.",
        "",
        "| T | method | saved for backward, peak (MiB) | peak RSS growth (MiB) | step (ms) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['T']} | {r['method']} | {r['saved_peak_mb']:.2f} | "
            f"{r['rss_growth_mb']:.1f} | {r['step_ms']:.1f} |"
        )
    records.atomic_write_text(RESULTS / f"snn_memory-{hw}.md", "\n".join(lines) + "\n")
    print(f"wrote {RESULTS / f'snn_memory-{hw}.md'}")


if __name__ == "__main__":
    main()
