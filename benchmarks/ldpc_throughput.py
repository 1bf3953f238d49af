"""LDPC decoding throughput: the reference min-sum decoder, its check-node kernels, and pyldpc.

Every decoder of a code sees the same frames: random codewords from the systematic encoder,
sent over BPSK/AWGN once (one LLR tensor, and the received y behind it for pyldpc). The
min-sum decoders run ``--iterations`` flooding iterations with all weights 1 (plain min-sum):

  reference        workloads.ldpc.decoder.NeuralMinSum, no_grad
  compiled_min_sum the same decoder, ``model.cn_update`` = submissions/boosted_nms kernel
  triton           the same decoder with the fused Triton kernel (CUDA only)
  pyldpc           pyldpc.decode (numpy/numba log-BP, one thread, dense m x n x frames arrays;
                   regular codes only, so MacKay (1008,504) only; it stops a chunk of frames
                   early once all of them are codewords, ``--iterations`` is its cap)

Timing: one warm-up decode (it compiles what needs compiling; its time is reported apart),
then ``--reps`` timed decodes of all frames; frames/s and coded Mb/s (n * frames/s / 1e6) as
median, min and max over the reps. Results go to ``benchmarks/results/ldpc_throughput-<hw>``
(.json and .md; ``-quick`` is appended for ``--quick`` smoke runs).

    python benchmarks/ldpc_throughput.py                # full run (a few minutes on 2 cores)
    python benchmarks/ldpc_throughput.py --quick        # smoke run, seconds plus compile time
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_common import hardware, hardware_slug, result_record, write_results  # noqa: E402

from harness.api import Kernel  # noqa: E402
from workloads.ldpc.channel import bpsk_awgn_llr, sigma_for  # noqa: E402
from workloads.ldpc.codes import LdpcCode, load_code  # noqa: E402
from workloads.ldpc.decoder import NeuralMinSum, TannerGraph  # noqa: E402
from workloads.ldpc.gf2 import SystematicEncoder  # noqa: E402

PYLDPC_CODE = "mackay_1008_504"  # (3,6)-regular: pyldpc decodes only regular codes
CODES = (PYLDPC_CODE, "wifi_648_540", "wimax_576_432")
EBN0_DB = {PYLDPC_CODE: 2.5, "wifi_648_540": 4.0, "wimax_576_432": 4.0}  # FER ~1e-2..1e-1
SEED = 20240
RESULTS_DIR = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=2000, help="frames per decode (one batch)")
    p.add_argument("--pyldpc-frames", type=int, default=128, help="first frames given pyldpc")
    p.add_argument("--pyldpc-chunk", type=int, default=32, help="pyldpc frames per call (RAM)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions after a warm-up")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--ebn0", type=float, default=None, help=f"Eb/N0 dB (default {EBN0_DB})")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.pyldpc_frames, args.pyldpc_chunk = 32, 8, 8
        args.reps = min(args.reps, 2)
    args.pyldpc_frames = min(args.pyldpc_frames, args.frames)
    return args


def make_frames(code: LdpcCode, frames: int, ebn0_db: float) -> dict:
    """Random codewords, their channel LLRs (the workload's channel) and the received y.

    y is redrawn from the same seed with the channel's formula and checked against the LLRs,
    so pyldpc gets exactly the noise the min-sum decoders get (the LLRs are clipped, y not).
    """
    enc = SystematicEncoder(code.H())
    gen = torch.Generator().manual_seed(SEED)
    codewords = enc.encode(torch.randint(0, 2, (frames, code.k), generator=gen))
    state = gen.get_state()
    llr = bpsk_awgn_llr(codewords.float(), ebn0_db, code.rate, gen)
    gen.set_state(state)
    sigma = torch.tensor(sigma_for(ebn0_db, code.rate), dtype=torch.float32)
    y = 1.0 - 2.0 * codewords.float() + sigma * torch.randn(codewords.shape, generator=gen)
    if not torch.equal((2.0 * y / (sigma * sigma)).clamp(-20.0, 20.0), llr):
        raise RuntimeError("could not reproduce the channel's noise for pyldpc; see make_frames")
    return {"codewords": codewords.to(torch.uint8), "llr": llr, "y": y, "sigma": float(sigma)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_min_sum(code: LdpcCode, llr: torch.Tensor, iterations: int, reps: int, cn_update=None):
    """Decode all frames once to warm up, then ``reps`` times. -> (times_s, warmup_s, app)."""
    graph = TannerGraph.from_checks(code.n, [list(c) for c in code.checks]).to(llr.device)
    model = NeuralMinSum(graph, iterations).to(llr.device)
    if cn_update is not None:
        model.cn_update = cn_update
    times = []
    with torch.no_grad():
        for _ in range(reps + 1):
            _sync(llr.device)
            t0 = time.perf_counter()  # clock starts
            outs, _state = model(llr)
            _sync(llr.device)
            times.append(time.perf_counter() - t0)  # clock stops
    return times[1:], times[0], outs[-1].cpu()


def time_pyldpc(H: np.ndarray, y: np.ndarray, sigma: float, iterations: int, reps: int, chunk: int):
    """pyldpc.decode on y (n, frames), ``chunk`` frames per call (its Lq, Lr are dense
    m x n x chunk float64). -> (times_s, warmup_s, hard decisions (frames, n))."""
    import pyldpc

    snr_db = -10.0 * math.log10(sigma * sigma)  # pyldpc: noise variance = 10^(-snr/10)
    times, hard = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Decoding stopped before convergence"
        t0 = time.perf_counter()
        pyldpc.decode(H, y[:, :2], snr_db, iterations)  # numba compiles (or loads its cache)
        warmup = time.perf_counter() - t0
        for _ in range(reps):
            t0 = time.perf_counter()  # clock starts
            parts = [
                pyldpc.decode(H, y[:, i : i + chunk], snr_db, iterations)
                for i in range(0, y.shape[1], chunk)
            ]
            times.append(time.perf_counter() - t0)  # clock stops
            hard = np.concatenate([p.reshape(H.shape[1], -1) for p in parts], axis=1).T
    return times, warmup, torch.from_numpy(hard.astype(np.uint8))


def throughput(times: list[float], frames: int, n: int) -> dict:
    fps = sorted(frames / t for t in times)
    return {
        "frames": frames,
        "times_s": times,
        "fps_median": statistics.median(fps),
        "fps_min": fps[0],
        "fps_max": fps[-1],
        "mbps_median": n * statistics.median(fps) / 1e6,
    }


def frame_errors(hard: torch.Tensor, codewords: torch.Tensor) -> dict:
    errors = int((hard != codewords).any(dim=1).sum())
    return {"frame_errors": errors, "frames": len(hard), "fer": errors / len(hard)}


def min_sum_variants(devices: list[torch.device]) -> list[tuple]:
    """(method, device, cn_update or None for the reference, skip reason or "", setup_s).
    setup_s is the kernel's availability check, which for compiled_min_sum is its compile."""
    from submissions.boosted_nms.kernels import KERNELS

    kernels: dict[str, Kernel] = {k.name: k for k in KERNELS}
    compiled, fused = kernels["compiled_min_sum"], kernels["fused_min_sum_triton"]

    def check(kernel: Kernel, dev: torch.device) -> tuple[bool, float]:
        t0 = time.perf_counter()
        ok = kernel.available(dev)
        if ok:
            _sync(dev)
        return ok, time.perf_counter() - t0

    out = []
    for dev in devices:
        out.append(("reference", dev, None, "", 0.0))
        ok, setup = check(compiled, dev)
        out.append(("compiled_min_sum", dev, compiled.fn, "" if ok else "compile fails", setup))
    cuda = next((d for d in devices if d.type == "cuda"), None)
    if cuda is None:
        out.append(("fused_min_sum_triton", torch.device("cuda"), None, "no CUDA device", 0.0))
    else:
        ok, setup = check(fused, cuda)
        out.append(("fused_min_sum_triton", cuda, fused.fn, "" if ok else "no triton", setup))
    return out


def agreement(app: torch.Tensor, ref_app: torch.Tensor) -> dict:
    """Hard decisions of a kernel's decoder vs the reference's, on the same frames."""
    diff = (app < 0) != (ref_app < 0)
    return {
        "bits_differing": int(diff.sum()),
        "frames_differing": int(diff.any(1).sum()),
        "max_abs_app_diff": float((app - ref_app).abs().max()),
    }


def bench_code(name: str, args, variants) -> list[dict]:
    code = load_code(name)
    ebn0 = args.ebn0 if args.ebn0 is not None else EBN0_DB[name]
    data = make_frames(code, args.frames, ebn0)
    base = {"code": name, "n": code.n, "k": code.k, "ebn0_db": ebn0}
    rows, ref_app = [], {}
    for method, dev, fn, skip, _ in variants:
        row = {**base, "method": method, "device": str(dev), "skipped": skip or None}
        rows.append(row)
        if skip:
            continue
        times, warm, app = time_min_sum(code, data["llr"].to(dev), args.iterations, args.reps, fn)
        row.update(throughput(times, args.frames, code.n), warmup_s=warm)
        row.update(frame_errors((app < 0).to(torch.uint8), data["codewords"]))
        if method == "reference":
            ref_app[str(dev)] = app
        else:
            row["agreement_vs_reference"] = agreement(app, ref_app[str(dev)])
    if name == PYLDPC_CODE:
        rows.append(bench_pyldpc(code, data, args, base, ref_app["cpu"]))
    refs = {r["device"]: r for r in rows if r["method"] == "reference"}
    for row in rows:  # frames/s ratio vs the reference on the same device (pyldpc: the CPU)
        if not row["skipped"]:
            row["speedup_vs_reference"] = row["fps_median"] / refs[row["device"]]["fps_median"]
    return rows


def bench_pyldpc(code: LdpcCode, data: dict, args, base: dict, ref_app: torch.Tensor) -> dict:
    f = args.pyldpc_frames
    H = code.H().numpy().astype(np.int64)
    y = data["y"][:f].double().numpy().T.copy()  # (n, frames), pyldpc's layout
    times, warm, hard = time_pyldpc(
        H, y, data["sigma"], args.iterations, args.reps, args.pyldpc_chunk
    )
    row = {**base, "method": "pyldpc_bp", "device": "cpu", "skipped": None}
    row.update(throughput(times, f, code.n), warmup_s=warm)
    row.update(frame_errors(hard, data["codewords"][:f]))
    ref_same = frame_errors((ref_app[:f] < 0).to(torch.uint8), data["codewords"][:f])
    row["reference_min_sum_on_same_frames"] = ref_same
    return row


COLUMNS = (
    "code",
    "device",
    "method",
    "frames",
    "frames/s median [min, max]",
    "coded Mb/s",
    "x ref",
    "warm-up s",
    "FER",
    "vs reference",
)


def table_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    out = []
    for r in rows:
        if r["skipped"]:
            out.append(
                (
                    r["code"],
                    r["device"],
                    r["method"],
                    "-",
                    f"skipped: {r['skipped']}",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                )
            )
            continue
        agree = r.get("agreement_vs_reference")
        note = "-"
        if agree:
            note = f"{agree['bits_differing']} bits / {agree['frames_differing']} frames differ"
        if "reference_min_sum_on_same_frames" in r:
            note = f"min-sum FER {r['reference_min_sum_on_same_frames']['fer']:.3g} same frames"
        out.append(
            (
                r["code"],
                r["device"],
                r["method"],
                str(r["frames"]),
                f"{r['fps_median']:,.0f} [{r['fps_min']:,.0f}, {r['fps_max']:,.0f}]",
                f"{r['mbps_median']:.3f}",
                f"{r['speedup_vs_reference']:.2f}",
                f"{r['warmup_s']:.2f}",
                f"{r['fer']:.3g}",
                note,
            )
        )
    return out


def markdown(result: dict) -> str:
    hw, a = result["hardware"], result["args"]
    lines = [
        "# LDPC decoding throughput",
        "",
        f"{result['date']}; {hw['cpu']}, {hw['cores']} cores ({hw['torch_threads']} torch "
        f"threads), GPU: {hw['gpu'] or 'none'}; torch {hw['versions']['torch']}, triton "
        f"{hw['versions']['triton']}, pyldpc {hw['versions']['pyldpc']}.",
        f"{a['iterations']} iterations, all weights 1 (plain min-sum); median [min, max] over "
        f"R = {a['reps']} timed decodes after one warm-up; {a['frames']} frames per decode "
        f"(pyldpc: the first {a['pyldpc_frames']}, {a['pyldpc_chunk']} per call, log-BP that "
        f"stops a call early once all its frames are codewords)"
        f"{'. QUICK smoke run: tiny sizes, not a measurement' * a['quick']}.",
        "x ref: frames/s over the reference's on the same device (pyldpc: the CPU reference). "
        "Kernel setup before the first code (availability check; for compiled_min_sum, its "
        "compile): " + ", ".join(f"{k} {v:.1f} s" for k, v in result["setup_s"].items()) + ".",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(result["rows"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    hw = hardware(("triton", "pyldpc", "numpy", "numba"))
    variants = min_sum_variants(devices)
    rows = [row for name in CODES for row in bench_code(name, args, variants)]
    setup_s = {f"{v[0]} ({v[1]})": v[4] for v in variants if v[4] > 0}
    result = result_record(hw, args, rows, setup_s=setup_s)
    md = markdown(result)
    print(md)
    write_results(
        args.out, f"ldpc_throughput-{hardware_slug(hw)}{'-quick' * args.quick}", result, md
    )
    return result


if __name__ == "__main__":
    main()
