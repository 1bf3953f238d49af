"""Multi-step LIF throughput: the snn reference loop, its fused kernels, SpikingJelly, snnTorch.

One LIF layer (tau 2 / lam 0.5, theta 1, soft reset, sigmoid surrogate alpha 4) over currents
(T, batch, neurons) in fp32, forward + backward under a fixed random upstream gradient:

  reference         workloads.snn.neuron.lif_multistep (autograd through a per-step loop)
  fused_lif_torch   submissions/bptt_surrogate kernel: graph-free forward, hand-written BPTT
  fused_lif_triton  the same kernel's Triton forward + backward (CUDA only, never interpreted)
  spikingjelly      SpikingJelly 2.0 LIFNode(tau=2., decay_input=False, v_reset=None,
                    v_threshold=1., surrogate_function=Sigmoid(alpha=4.), step_mode='m'),
                    reset with functional.reset_net before every pass. 2.0 has no ``backend``
                    argument: the CPU runs its registered CPU op; on CUDA each of its
                    implementations that loads ('cuda', 'triton', 'torch') is timed, chosen
                    through its private ``_ops.lif._selection`` (what SJ_LIF_CUDA_IMPLEMENTATION
                    sets at import).
  snntorch          snnTorch 1.0 Leaky(beta=0.5, threshold=1.0, reset_mechanism='subtract',
                    spike_grad=surrogate.sigmoid(slope=4)) stepped over T in a Python loop.

Conventions: SpikingJelly's LIFNode with these arguments is the reference neuron (same charge,
H(0) = 1, soft reset through the surrogate); the script checks that its spikes are equal and
reports its largest gradient difference. snnTorch's Leaky is a different neuron: it subtracts
theta at step t for a spike at t-1 *after* the decay (u[t] = beta u[t-1] + I[t] - theta s[t-1],
vs. the reference's lam (u[t-1] - theta s[t-1]) + I[t]), with the reset detached, and fires on
u > theta (H(0) = 0); spikes agree at t = 0 (from rest) and then drift apart: the script reports
the first step that differs and the fraction of equal spikes. Its timing is the cost of its
Python-loop formulation, not of the same function.

Timing: ``--warmup`` passes (compiles what needs compiling; reported apart), then ``--reps``
timed forward + backward passes (the clock includes the backward and a device sync): median,
min and max. Neuron-steps/s = T * batch * neurons / time. Memory traffic: the least a fused
fwd+bwd that saves the pre-reset membrane must move is 6 tensors of (T, batch, neurons) (read I,
write s and u; read grad_s and u, write grad_I): 24 B per neuron-step at fp32; "eff. GB/s" is
that over the median time, "% bw" that over the bandwidth assumption (``--bandwidth-gbs``, by
default a measured device copy: read + write of a large tensor). Results go to
``benchmarks/results/lif_throughput-<hw>`` (.json and .md; ``-quick`` for ``--quick`` runs).

    python benchmarks/lif_throughput.py                # T in {8, 32}, batch 64, 4096 neurons
    python benchmarks/lif_throughput.py --quick        # smoke run: small sizes, 2 reps
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_common import hardware, hardware_slug, result_record, write_results  # noqa: E402

from workloads.snn.neuron import ALPHA, LAM, TAU, THETA, lif_multistep  # noqa: E402

SEED = 20241
RESULTS_DIR = ROOT / "benchmarks" / "results"
BYTES_PER_NEURON_STEP = 6  # tensors of (T, B, N) moved at least once: I, s, u (fwd); g_s, u, g_I


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=str, default="8,32", help="time steps, comma-separated")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--neurons", type=int, default=4096)
    p.add_argument("--reps", type=int, default=10, help="timed fwd+bwd passes after warm-up")
    p.add_argument("--warmup", type=int, default=2, help="untimed passes first (compiles)")
    p.add_argument("--devices", type=str, default="all", help="'all', 'cpu' or 'cuda'")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--bandwidth-gbs",
        type=float,
        default=None,
        help="memory bandwidth assumed for '%% bw' (default: a measured copy on each device)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    args.T = [int(t) for t in args.T.split(",")]
    if args.quick:
        args.batch, args.neurons = min(args.batch, 16), min(args.neurons, 512)
        args.reps, args.warmup = min(args.reps, 2), 1
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device) -> float:
    """GB/s of ``dst.copy_(src)`` on a large fp32 tensor, counting its read and its write."""
    n = (256 if device.type == "cuda" else 64) * 2**20 // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    times = []
    for _ in range(6):
        _sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * src.numel() * 4 / statistics.median(times[1:]) / 1e9


# -- the methods: each is a function currents (T, B, N) -> spikes (T, B, N), differentiable ----


def fused_kernels() -> dict:
    from submissions.bptt_surrogate.kernels import KERNELS

    return {k.name: k for k in KERNELS}


def spikingjelly_node(device: torch.device):
    from spikingjelly.activation_based import functional, neuron, surrogate

    node = neuron.LIFNode(
        tau=TAU,
        decay_input=False,
        v_reset=None,
        v_threshold=THETA,
        surrogate_function=surrogate.Sigmoid(alpha=ALPHA),
        step_mode="m",
    ).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(x)

    return run


def select_spikingjelly(impl: str | None) -> None:
    """Pick SpikingJelly's CUDA LIF implementation ('cuda', 'triton', 'torch'; None: auto)."""
    from spikingjelly._ops.lif import _selection

    _selection._requested = impl or "auto"
    _selection._selections.clear()
    _selection._compiled_selections.clear()


def spikingjelly_impl_name(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu op"
    from spikingjelly._ops.lif import _selection

    return _selection.diagnostics(device)["implementation"]


def snntorch_leaky(device: torch.device):
    import snntorch
    from snntorch import surrogate

    lif = snntorch.Leaky(
        beta=LAM,
        threshold=THETA,
        reset_mechanism="subtract",
        spike_grad=surrogate.sigmoid(slope=ALPHA),
    ).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x[0])  # rest; passing None would reuse the module's last state
        out = []
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run


def methods(device: torch.device) -> list[tuple[str, Callable | None, str, Callable | None]]:
    """(method, fn or None, skip reason or "", setup before each timed pass or None)."""
    kernels = fused_kernels()
    out = [("reference", lif_multistep, "", None)]
    out.append(("fused_lif_torch", kernels["fused_lif_torch"].fn, "", None))
    triton_k = kernels["fused_lif_triton"]
    if device.type != "cuda":
        out.append(("fused_lif_triton", None, "CUDA only (no interpreter timings)", None))
    elif not triton_k.available(device):
        out.append(("fused_lif_triton", None, "triton not installed", None))
    elif os.environ.get("TRITON_INTERPRET") == "1":
        out.append(("fused_lif_triton", None, "TRITON_INTERPRET=1 is set (interpreter)", None))
    else:
        out.append(("fused_lif_triton", triton_k.fn, "", None))
    try:
        sj = spikingjelly_node(device)
    except Exception as e:  # not installed, or an API change
        out.append(("spikingjelly", None, f"{type(e).__name__}: {e}", None))
    else:
        impls = ["cuda", "triton", "torch"] if device.type == "cuda" else [None]
        for impl in impls:
            name = "spikingjelly" + (f"[{impl}]" if impl else "")
            out.append((name, sj, "", (lambda impl=impl: select_spikingjelly(impl))))
    try:
        out.append(("snntorch", snntorch_leaky(device), "", None))
    except Exception as e:
        out.append(("snntorch", None, f"{type(e).__name__}: {e}", None))
    return out


# -- measurement -----------------------------------------------------------------------------


def make_inputs(T: int, B: int, N: int, device: torch.device):
    """Currents around the threshold (the workload's parity distribution) and an upstream grad."""
    g = torch.Generator().manual_seed(SEED + T)
    x = torch.randn(T, B, N, generator=g) * 0.8 + 0.6
    up = torch.randn(T, B, N, generator=g)
    return x.to(device), up.to(device)


def fwd_bwd(fn: Callable, x: torch.Tensor, up: torch.Tensor):
    xg = x.detach().requires_grad_()
    s = fn(xg)
    s.backward(up)
    return s.detach(), xg.grad


def time_method(fn: Callable, x, up, reps: int, warmup: int) -> tuple[list[float], float]:
    device = x.device
    xg = x.detach().requires_grad_()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        xg.grad = None
        fn(xg).backward(up)
    _sync(device)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        xg.grad = None
        _sync(device)
        t0 = time.perf_counter()  # clock starts
        fn(xg).backward(up)
        _sync(device)
        times.append(time.perf_counter() - t0)  # clock stops
    return times, warm


def agreement(method: str, s, g, ref_s, ref_g) -> dict:
    """Spikes and input gradient of a method vs the reference's, on the same currents."""
    same = s == ref_s
    differing = (~same).flatten(1).any(1)
    first = int(differing.nonzero()[0]) if differing.any() else None
    out = {
        "spikes_equal": bool(same.all()),
        "spike_agreement": float(same.double().mean()),
        "first_step_differing": first,
        "max_abs_grad_diff": float((g.double() - ref_g.double()).abs().max()),
        "max_abs_ref_grad": float(ref_g.abs().max()),
    }
    if method == "snntorch":
        out["note"] = (
            "different neuron: reset of theta subtracted after the decay, one step late and "
            "detached; fires on u > theta"
        )
    return out


def bench(T: int, device: torch.device, args, bandwidth: float) -> list[dict]:
    B, N = args.batch, args.neurons
    x, up = make_inputs(T, B, N, device)
    neuron_steps = T * B * N
    min_bytes = BYTES_PER_NEURON_STEP * x.element_size() * neuron_steps
    rows, ref = [], None
    for method, fn, skip, setup in methods(device):
        row = {"T": T, "batch": B, "neurons": N, "device": str(device), "method": method}
        row["skipped"] = skip or None
        rows.append(row)
        if skip:
            continue
        try:
            if setup is not None:
                setup()
            if method.startswith("spikingjelly"):
                row["implementation"] = spikingjelly_impl_name(device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s, g = fwd_bwd(fn, x, up)
                times, warm = time_method(fn, x, up, args.reps, args.warmup)
        except Exception as e:  # an implementation that does not load here: say so, go on
            row["skipped"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            continue
        finally:
            if method.startswith("spikingjelly") and device.type == "cuda":
                select_spikingjelly(None)
        ms = sorted(1e3 * t for t in times)
        med = statistics.median(ms)
        row.update(
            times_s=times,
            warmup_s=warm,
            ms_median=med,
            ms_min=ms[0],
            ms_max=ms[-1],
            neuron_steps_per_s=neuron_steps / (med / 1e3),
            min_bytes=min_bytes,
            eff_gbs=min_bytes / (med / 1e3) / 1e9,
            bandwidth_gbs=bandwidth,
        )
        row["frac_of_bandwidth"] = row["eff_gbs"] / bandwidth
        if method == "reference":
            ref = (s, g, med)
        else:
            row["agreement_vs_reference"] = agreement(method, s, g, ref[0], ref[1])
        row["speedup_vs_reference"] = ref[2] / med
        del s, g
    return rows


COLUMNS = (
    "T",
    "device",
    "method",
    "ms fwd+bwd median [min, max]",
    "Gneuron-steps/s",
    "x ref",
    "eff. GB/s",
    "% bw",
    "warm-up s",
    "vs reference",
)


def table_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    out = []
    for r in rows:
        name = r["method"]
        if r.get("implementation") and "[" not in name:
            name += f" ({r['implementation']})"
        if r["skipped"]:
            out.append((str(r["T"]), r["device"], name, f"skipped: {r['skipped']}") + ("-",) * 6)
            continue
        a = r.get("agreement_vs_reference")
        note = "-"
        if a and a["spikes_equal"]:
            note = f"spikes equal; max grad diff {a['max_abs_grad_diff']:.1e}"
        elif a:
            note = (
                f"spikes differ from t={a['first_step_differing']}; "
                f"{100 * a['spike_agreement']:.1f}% equal"
            )
        out.append(
            (
                str(r["T"]),
                r["device"],
                name,
                f"{r['ms_median']:.3f} [{r['ms_min']:.3f}, {r['ms_max']:.3f}]",
                f"{r['neuron_steps_per_s'] / 1e9:.3f}",
                f"{r['speedup_vs_reference']:.2f}",
                f"{r['eff_gbs']:.1f}",
                f"{100 * r['frac_of_bandwidth']:.1f}",
                f"{r['warmup_s']:.2f}",
                note,
            )
        )
    return out


def markdown(result: dict) -> str:
    hw, a = result["hardware"], result["args"]
    bw = ", ".join(f"{d} {v:.0f} GB/s" for d, v in result["bandwidth_gbs"].items())
    lines = [
        "# Multi-step LIF throughput (forward + backward)",
        "",
        f"{result['date']}; {hw['cpu']}, {hw['cores']} cores ({hw['torch_threads']} torch "
        f"threads), GPU: {hw['gpu'] or 'none'}; torch {hw['versions']['torch']}, triton "
        f"{hw['versions']['triton']}, spikingjelly {hw['versions']['spikingjelly']}, snntorch "
        f"{hw['versions']['snntorch']}.",
        f"One LIF layer, currents (T, {a['batch']}, {a['neurons']}) fp32 ~ N(0.6, 0.8^2), "
        f"forward + backward under a fixed upstream gradient; median [min, max] over "
        f"R = {a['reps']} timed passes after {a['warmup']} warm-up"
        f"{'. QUICK smoke run: tiny sizes, not a measurement' * a['quick']}.",
        f"x ref: reference time over the method's (same device and T). eff. GB/s: the least "
        f"traffic of a fused fwd+bwd ({BYTES_PER_NEURON_STEP} x 4 B = "
        f"{4 * BYTES_PER_NEURON_STEP} B per neuron-step: read I, write s and u; read grad_s and "
        f"u, write grad_I) over the median time; % bw: that over the assumed bandwidth ({bw}; "
        f"{result['bandwidth_source']}).",
        "vs reference: spikes and input gradient on the same currents. snnTorch's Leaky is a "
        "different neuron (reset subtracted one step late, after the decay, detached; "
        "H(0) = 0): spikes agree from rest at t = 0 only.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(result["rows"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = []
    if args.devices in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.devices in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    hw = hardware(("triton", "spikingjelly", "snntorch", "numpy"))
    if args.bandwidth_gbs is not None:
        bandwidth = {str(d): args.bandwidth_gbs for d in devices}
        source = "given with --bandwidth-gbs"
    else:
        bandwidth = {str(d): copy_bandwidth(d) for d in devices}
        source = "measured: copy of a large fp32 tensor, read + write"
    rows = [row for d in devices for T in args.T for row in bench(T, d, args, bandwidth[str(d)])]
    result = result_record(hw, args, rows, bandwidth_gbs=bandwidth, bandwidth_source=source)
    md = markdown(result)
    print(md)
    write_results(
        args.out, f"lif_throughput-{hardware_slug(hw)}{'-quick' * args.quick}", result, md
    )
    return result


if __name__ == "__main__":
    main()
