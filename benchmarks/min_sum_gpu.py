"""The ldpc check-node kernels on a CUDA device, against the device's copy bandwidth.

The op is ``workloads.ldpc.decoder.check_node_update`` (weighted min-sum over the padded
check-major (B, m, dc) layout), the one ``boosted_nms`` replaces. Per implementation and batch
size B, on the WiMAX (576, 432) code's shape (m = 144 checks, dc_max = 15):

- ``fwd``: one forward without autograd (evaluation's case);
- ``fwd+bwd``: forward with autograd and the backward of a fixed upstream gradient (training's).

Implementations: ``reference`` (the workload's eager torch op: about 15 kernels), ``saved``
(the submission's ``saved_min_sum``, a torch.autograd.Function), ``compiled`` (its
``torch.compile`` formulation) and ``triton`` (its fused Triton pair). Times are
``triton.testing.do_bench`` medians (it flushes the L2 between calls). Before timing, each
implementation's forward is checked equal to the reference (max |diff| reported; the min-sum
arithmetic is exact: min, sign and one multiply) and its gradients close to autograd's.

Bandwidth: ``eff. GB/s`` counts the bytes the fused kernel must move at least (fp32):
forward 8 B per padded edge (read v2c, write c2v); forward+backward 16 B per padded edge plus the
16-byte row summary written and read, and the per-row weight gradient (36 B per row), the same
count for every implementation, so the column compares times, and ``% copy`` puts it against
``dst.copy_(src)`` of a 1 GiB tensor (read + write) on the same device.

    python benchmarks/min_sum_gpu.py --json            # CUDA only; exits 2 without a GPU
    python benchmarks/min_sum_gpu.py --batches 4096 65536 --out /tmp/results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import hardware, hardware_slug, result_record, write_results  # noqa: E402

from workloads.ldpc.decoder import PAD, check_node_update  # noqa: E402

M, DC = 144, 15  # WiMAX (576, 432): 144 checks, degrees 14-15, padded to 15
ROW_BYTES = 36  # 16 B summary written + read, 4 B weight gradient (per row)


def copy_bandwidth(device: torch.device) -> float:
    import triton.testing

    src = torch.empty(2**28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=5, rep=50)
    return 2 * src.numel() * 4 / (ms * 1e-3) / 1e9


def make_inputs(B: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(seed)
    v2c = (torch.randn(B, M, DC, generator=g) * 4.0).round(decimals=2)  # ties occur, as in use
    v2c[:, ::3, DC - 1] = PAD  # a third of the rows have degree 14 (one padded slot)
    w = torch.rand(1, M, 1, generator=g) * 0.5 + 0.5
    return v2c.to(device), w.to(device)


def implementations() -> dict:
    from submissions.boosted_nms.kernels import (
        compiled_min_sum,
        fused_min_sum_triton,
        saved_min_sum,
    )

    return {
        "reference": check_node_update,
        "saved": saved_min_sum,
        "compiled": compiled_min_sum,
        "triton": fused_min_sum_triton,
    }


def fwd_bwd(fn, v2c: torch.Tensor, w: torch.Tensor, grad: torch.Tensor):
    x = v2c.detach().requires_grad_(True)
    ww = w.detach().requires_grad_(True)
    out = fn(x, ww)
    gx, gw = torch.autograd.grad(out, (x, ww), grad)
    return out, gx, gw


def parity(fn, v2c, w, grad) -> dict:
    ref = [t.detach() for t in fwd_bwd(check_node_update, v2c, w, grad)]
    got = [t.detach() for t in fwd_bwd(fn, v2c, w, grad)]
    real = v2c.abs() < PAD  # padding slots are unspecified
    return {
        "fwd_max_abs_diff": float((ref[0] - got[0])[real].abs().max()),
        "grad_v2c_max_abs_diff": float((ref[1] - got[1])[real].abs().max()),
        "grad_w_max_rel_diff": float(
            ((ref[2] - got[2]).abs() / ref[2].abs().clamp_min(1e-6)).max()
        ),
    }


def time_one(fn, v2c, w, grad, rep_ms: int) -> tuple[float, float]:
    """(forward ms without autograd, forward + backward ms): do_bench medians."""
    import triton.testing

    with torch.no_grad():
        ms_f = triton.testing.do_bench(lambda: fn(v2c, w), warmup=10, rep=rep_ms)
    ms_fb = triton.testing.do_bench(lambda: fwd_bwd(fn, v2c, w, grad), warmup=10, rep=rep_ms)
    return ms_f, ms_fb


def bench(args) -> list[dict]:
    device = torch.device("cuda")
    rows = []
    for B in args.batches:
        v2c, w = make_inputs(B, device)
        grad = torch.randn_like(v2c)
        edges = B * M * DC
        for name, fn in implementations().items():
            row = {"impl": name, "B": B, "padded_edges": edges}
            try:
                row.update(parity(fn, v2c, w, grad))
                ms_f, ms_fb = time_one(fn, v2c, w, grad, args.rep_ms)
            except Exception as e:  # noqa: BLE001 -- a broken implementation is a row, not a crash
                row["error"] = f"{type(e).__name__}: {e}"[:300]
                rows.append(row)
                continue
            bytes_f = 8 * edges
            bytes_fb = 16 * edges + ROW_BYTES * B * M
            row.update(
                fwd_ms=ms_f,
                fwd_bwd_ms=ms_fb,
                fwd_gbs=bytes_f / (ms_f * 1e-3) / 1e9,
                fwd_bwd_gbs=bytes_fb / (ms_fb * 1e-3) / 1e9,
                fwd_medges_per_s=edges / (ms_f * 1e-3) / 1e6,
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown(result: dict) -> str:
    hw, bw = result["hardware"], result["copy_gbs"]
    lines = [
        f"# ldpc check-node kernels on {hw['gpu']}",
        "",
        f"torch {hw['versions']['torch']}, triton {hw['versions'].get('triton')}; "
        f"{result['date']}. Times: triton.testing.do_bench medians. Copy bandwidth (1 GiB fp32 "
        f"`copy_`, read + write): {bw:.0f} GB/s. Shape: WiMAX (576, 432), m = {M}, dc_max = "
        f"{DC}. eff. GB/s counts the minimum bytes of the op (8 B/edge forward; 16 B/edge + "
        f"{ROW_BYTES} B/row forward + backward) for every implementation.",
        "",
        "| impl | B | fwd ms | fwd GB/s | % copy | fwd+bwd ms | fwd+bwd GB/s | % copy | "
        "max fwd diff | max grad diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['impl']} | {r['B']} | {r['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {r['impl']} | {r['B']} | {r['fwd_ms']:.3f} | {r['fwd_gbs']:.0f} | "
            f"{100 * r['fwd_gbs'] / bw:.0f}% | {r['fwd_bwd_ms']:.3f} | {r['fwd_bwd_gbs']:.0f} | "
            f"{100 * r['fwd_bwd_gbs'] / bw:.0f}% | {r['fwd_max_abs_diff']:.1e} | "
            f"{r['grad_v2c_max_abs_diff']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1024, 16384, 65536])
    p.add_argument("--rep-ms", type=int, default=100, help="do_bench's timing window per case")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--json", action="store_true", help="also print the JSON record")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("min_sum_gpu: needs a CUDA device (none found)", file=sys.stderr)
        return 2
    hw = hardware(("triton",))
    bw = copy_bandwidth(torch.device("cuda"))
    result = result_record(hw, args, bench(args), copy_gbs=bw)
    md = markdown(result)
    print(md)
    write_results(args.out, f"min_sum_gpu-{hardware_slug(hw)}", result, md)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
