"""LDPC decoding throughput at the ldpc workload's evaluation point, and peer decoders.

One code (WiMAX (576,432) by default), the workload's `default` Eb/N0 (3.5 dB) and iteration
count (20), plain min-sum weights (all 1); every decoder decodes the same frames (random
codewords from the systematic encoder, one seed, one LLR tensor; pyldpc a prefix of them):

  evaluation     workloads/ldpc/fast_decoder.py: the numba decoder as the evaluator uses it,
                 each frame stopped at its first codeword (``TTR_LDPC_EXACT=1``: all L
                 iterations); ``avg_iterations``, ``fer`` and its 95% Clopper-Pearson
                 interval ``fer_ci``, ``fer_within_exact_ci``, ``differs_from_exact_frames``
  evaluation_exact  the same decoder, all L iterations on every frame: decisions bit-identical
                 to the reference (``bit_identical_to_reference``, checked on its frames)
  evaluation_1thread  ``evaluation`` on one numba thread
  reference      workloads.ldpc.decoder.NeuralMinSum under no_grad (torch, eager)
  boosted_nms    the reference with submissions/boosted_nms's ``saved_min_sum`` kernel
  ldpc_pkg       the `ldpc` package's C++ BpDecoder, bp_method="minimum_sum",
                 ms_scaling_factor=1, max_iter=L, one frame per call, one thread (its OpenMP
                 option is not implemented); it stops a frame at a codeword. Input: the hard
                 decision of each bit and its error probability 1 / (1 + exp|LLR|), i.e. the
                 same soft information as the LLR (it decodes the error pattern of the hard word)
  pyldpc         pyldpc's log-domain BP (sum-product, float64), one frame per call

pyldpc, the fixes behind its numbers (its FER came out ~10x worse than min-sum's before):
1. ``pyldpc.decode`` stops when *every* frame of a call is a codeword, so frames that converged
   keep iterating while others do not; their LLRs grow until tanh(L/2) rounds to 1, where its
   check update returns +-1 (``num == 0`` / ``denom == 0`` branches) instead of a large LLR, and
   a decoded frame falls apart (MacKay (1008,504), 2.5 dB: FER 0.22 with 32 frames per call,
   0.008 with one). So it gets one frame per call, as its per-word early stop intends.
2. ``pyldpc.decode`` fails on irregular codes (``np.unique(H.sum(0)) * np.unique(H.sum(1))``
   broadcasts shapes (3,) and (2,) for WiMAX), so ``pyldpc_decode`` below runs decode()'s own
   loop over pyldpc's irregular solver ``pyldpc.decoder._logbp_numba``.
Its conventions match the workload's: received y = x + noise with BPSK x = 1 - 2c, its "snr"
is -10 log10(sigma^2) (its noise variance is 10^(-snr/10)), bit = 1 where its LLR <= 0; it gets
the unclipped y behind the same LLRs. Log-BP is a better decoder than min-sum, so its FER is
expected at or below min-sum's.

Timing: one warm-up decode (compiles; reported as first_call_s), then ``--reps`` timed decodes;
frames/s median and [min, max] over the reps. ``--quick`` is a smoke run (under a minute);
``--json`` prints one JSON object. The full run also times training steps (forward + backward +
Adam of the 20-iteration decoder, batch 128) with the reference op and with boosted_nms's
kernel, interleaved, and writes ``benchmarks/results/ldpc_throughput-<hardware class>.{json,md}``
(cpu-2core here).
ldpc and pyldpc are benchmark-only peers (``pip install ldpc pyldpc``); missing, they are
reported as skipped.

    python benchmarks/ldpc_throughput.py --quick --json
    python benchmarks/ldpc_throughput.py                # full run, a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
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

from bench_common import hardware, result_record, write_results  # noqa: E402

from harness import records  # noqa: E402
from workloads.ldpc import SPECS  # noqa: E402
from workloads.ldpc.channel import bpsk_awgn_llr, sigma_for  # noqa: E402
from workloads.ldpc.codes import LdpcCode, load_code  # noqa: E402
from workloads.ldpc.decoder import NeuralMinSum, TannerGraph  # noqa: E402
from workloads.ldpc.evaluator import clopper_pearson  # noqa: E402
from workloads.ldpc.gf2 import SystematicEncoder  # noqa: E402

SEED = 20240
RESULTS_DIR = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    spec = SPECS["default"]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", default=spec.code)
    p.add_argument("--iterations", type=int, default=spec.iterations)
    p.add_argument("--ebn0", type=float, default=spec.ebn0_db)
    p.add_argument("--frames", type=int, default=20_000, help="frames of the fast decoders")
    p.add_argument("--torch-frames", type=int, default=4000, help="frames of the torch ones")
    p.add_argument("--pyldpc-frames", type=int, default=200)
    p.add_argument("--reps", type=int, default=5, help="timed repetitions after a warm-up")
    p.add_argument("--train-batch", type=int, default=128)
    p.add_argument("--train-reps", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    p.add_argument("--json", action="store_true", help="print one JSON object, no table")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.torch_frames, args.pyldpc_frames = 2000, 64, 8
        args.reps, args.train_batch, args.train_reps = 2, 16, 5
    args.torch_frames = min(args.torch_frames, args.frames)
    args.pyldpc_frames = min(args.pyldpc_frames, args.frames)
    return args


def make_frames(code: LdpcCode, frames: int, ebn0_db: float) -> dict:
    """Codewords, their channel LLRs (the workload's channel) and the unclipped y behind them
    (redrawn from the same generator state and checked against the LLRs)."""
    gen = torch.Generator().manual_seed(SEED)
    cw = SystematicEncoder(code.H()).encode(torch.randint(0, 2, (frames, code.k), generator=gen))
    state = gen.get_state()
    llr = bpsk_awgn_llr(cw.float(), ebn0_db, code.rate, gen)
    gen.set_state(state)
    sigma = torch.tensor(sigma_for(ebn0_db, code.rate), dtype=torch.float32)
    y = 1.0 - 2.0 * cw.float() + sigma * torch.randn(cw.shape, generator=gen)
    if not torch.equal((2.0 * y / (sigma * sigma)).clamp(-20.0, 20.0), llr):
        raise RuntimeError("could not reproduce the channel's noise for pyldpc")
    return {"cw": cw.to(torch.uint8), "llr": llr, "y": y, "sigma": float(sigma)}


def timed(fn, reps: int) -> tuple[list[float], float, object]:
    t0 = time.perf_counter()
    out = fn()  # warm-up: compiles, loads caches
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, first, out


def row(times, first, hard, cw, n, threads, iters=None) -> dict:
    frames = hard.shape[0]
    fps = sorted(frames / t for t in times)
    errors = int((hard.to(torch.uint8) != cw[:frames]).any(dim=1).sum())
    out = {
        "frames_per_s": statistics.median(fps),
        "frames_per_s_range": [fps[0], fps[-1]],
        "mbps_coded": n * statistics.median(fps) / 1e6,
        "frames": frames,
        "frame_errors": errors,
        "fer": errors / frames,
        "fer_ci": list(clopper_pearson(errors, frames)),
        "threads": threads,
        "first_call_s": first,
    }
    if iters is not None:
        out["avg_iterations"] = float(iters.float().mean())
    return out


def pyldpc_decode(H: np.ndarray, y: np.ndarray, snr: float, maxiter: int) -> np.ndarray:
    """``pyldpc.decode``'s loop on pyldpc's irregular solver (see the module docstring)."""
    from pyldpc import utils
    from pyldpc.decoder import _logbp_numba

    m, n = H.shape
    hist = utils._bitsandnodes(H)
    lc = 2 * y / 10 ** (-snr / 10)
    lq, lr = np.zeros((m, n, y.shape[1])), np.zeros((m, n, y.shape[1]))
    for it in range(maxiter):
        lq, lr, post = _logbp_numba(*hist, lc, lq, lr, it)
        x = np.array(post <= 0).astype(int)
        if utils.incode(H, x):
            break
    return x


def bench(args) -> dict:
    code = load_code(args.code)
    n, L = code.n, args.iterations
    data = make_frames(code, args.frames, args.ebn0)
    llr, cw = data["llr"], data["cw"]
    graph = TannerGraph.from_checks(code.n, [list(c) for c in code.checks])
    model = NeuralMinSum(graph, L)
    dec: dict[str, dict] = {}
    torch_threads = torch.get_num_threads()

    import workloads.ldpc.fast_decoder as fd

    stop = fd.early_stop()
    if fd.backend() == "numba":
        import numba

        fast = fd.FastMinSum(graph, model, L)
        nt = numba.get_num_threads()
        times, first, (hard, app, iters) = timed(lambda: fast.decode(llr), args.reps)
        exact = row(times, first, hard, cw, n, nt, iters)
        times, first, (hard_es, _, it_es) = timed(
            lambda: fast.decode(llr, early_stop=True), args.reps
        )
        es = row(times, first, hard_es, cw, n, nt, it_es)
        lo, hi = exact["fer_ci"]
        es["fer_within_exact_ci"] = lo <= es["fer"] <= hi
        es["differs_from_exact_frames"] = int((hard_es != hard).any(1).sum())
        numba.set_num_threads(1)
        times, first, _ = timed(lambda: fast.decode(llr, early_stop=stop), args.reps)
        one = row(times, first, hard_es if stop else hard, cw, n, 1, it_es if stop else iters)
        numba.set_num_threads(nt)
        dec["evaluation"] = dict(es if stop else exact, early_stop=stop, lanes=fast.lanes)
        dec["evaluation_exact"] = dict(exact, early_stop=False, lanes=fast.lanes)
        dec["evaluation_1thread"] = dict(one, early_stop=stop)
    else:
        hard = app = None
        dec["evaluation"] = {"skipped": "numba does not import (or TTR_LDPC_DECODER=reference)"}

    f = args.torch_frames
    with torch.no_grad():
        times, first, outs = timed(lambda: model(llr[:f])[0], args.reps)
        dec["reference"] = row(times, first, outs[-1] < 0, cw, n, torch_threads)
        ref_app = outs[-1]
        if app is not None:
            same = bool(torch.equal(app[:f], ref_app))
            dec["evaluation_exact"]["bit_identical_to_reference"] = same
        from submissions.boosted_nms.kernels import saved_min_sum

        model.cn_update = saved_min_sum
        times, first, outs = timed(lambda: model(llr[:f])[0], args.reps)
        model.cn_update = NeuralMinSum(graph, 1).cn_update
        dec["boosted_nms"] = row(times, first, outs[-1] < 0, cw, n, torch_threads)

    try:
        from ldpc import BpDecoder
    except ImportError as e:
        dec["ldpc_pkg"] = {"skipped": f"ldpc does not import ({e}); pip install ldpc"}
    else:
        bp = BpDecoder(
            code.H().numpy().astype(np.uint8),
            error_rate=0.1,
            max_iter=L,
            bp_method="minimum_sum",
            ms_scaling_factor=1.0,
            input_vector_type="received_vector",
        )
        x = llr.double().numpy()
        hard_in = (x < 0).astype(np.uint8)
        p_err = 1.0 / (1.0 + np.exp(np.abs(x)))

        def run_ldpc():
            out = np.empty_like(hard_in)
            for i in range(x.shape[0]):
                bp.update_channel_probs(p_err[i])
                out[i] = bp.decode(hard_in[i])
            return torch.from_numpy(out)

        times, first, hard_pkg = timed(run_ldpc, args.reps)
        dec["ldpc_pkg"] = row(times, first, hard_pkg, cw, n, 1)

    try:
        import pyldpc  # noqa: F401
    except ImportError as e:
        dec["pyldpc"] = {"skipped": f"pyldpc does not import ({e}); pip install pyldpc"}
    else:
        H = code.H().numpy().astype(np.int64)
        y = data["y"][: args.pyldpc_frames].double().numpy()
        snr = -10.0 * math.log10(data["sigma"] ** 2)

        def run_pyldpc():
            cols = [pyldpc_decode(H, y[i][:, None], snr, L)[:, 0] for i in range(y.shape[0])]
            return torch.from_numpy(np.stack(cols).astype(np.uint8))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times, first, hard_py = timed(run_pyldpc, max(1, min(args.reps, 2)))
        dec["pyldpc"] = row(times, first, hard_py, cw, n, 1)
        if hard is not None:
            same = hard[: args.pyldpc_frames]
            errs = int((same != cw[: args.pyldpc_frames]).any(1).sum())
            dec["pyldpc"]["min_sum_fer_same_frames"] = errs / args.pyldpc_frames

    return {
        "code": args.code,
        "iterations": L,
        "ebn0_db": args.ebn0,
        "decoders": dec,
        "training": train_steps(args, graph, data),
    }


def train_steps(args, graph: TannerGraph, data: dict) -> dict:
    """Training steps/s (forward, backward, Adam over all L iterations, BCE on the last),
    reference op vs boosted_nms's saved_min_sum, interleaved step by step, same batch."""
    from submissions.boosted_nms.kernels import saved_min_sum

    llr = data["llr"][: args.train_batch]
    bits = data["cw"][: args.train_batch].float()
    models, opts, times = {}, {}, {"reference": [], "boosted_nms": []}
    for name in times:
        models[name] = NeuralMinSum(graph, args.iterations)
        if name == "boosted_nms":
            models[name].cn_update = saved_min_sum
        opts[name] = torch.optim.Adam(models[name].parameters(), lr=1e-3)

    def step(name):
        m, opt = models[name], opts[name]
        outs, _ = m(llr)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(-outs[-1], bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for name in times:  # warm-up
        step(name)
    for _ in range(args.train_reps):
        for name in times:
            t0 = time.perf_counter()
            step(name)
            times[name].append(time.perf_counter() - t0)
    out = {"batch": args.train_batch, "reps": args.train_reps}
    for name, ts in times.items():
        out[name] = {"steps_per_s": 1 / statistics.median(ts), "step_s": ts}
    out["boosted_nms_speedup"] = out["boosted_nms"]["steps_per_s"] / out["reference"]["steps_per_s"]
    return out


def markdown(result: dict) -> str:
    hw, a, r = result["hardware"], result["args"], result["rows"]
    lines = [
        "# LDPC decoding throughput",
        "",
        f"{result['date']}; {hw['cpu']}, {hw['cores']} cores, torch {hw['versions']['torch']}, "
        f"numba {hw['versions'].get('numba')}; code {r['code']}, {r['iterations']} iterations, "
        f"Eb/N0 {r['ebn0_db']} dB, plain min-sum weights; median [min, max] frames/s over "
        f"{a['reps']} timed decodes after a warm-up (pyldpc: up to 2). Measured on a machine "
        "shared with other jobs: compare decoders within this run, not across runs.",
        "",
        "| decoder | threads | frames | frames/s median [min, max] | coded Mb/s | FER [95% CI]"
        " | avg iterations | first call s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, d in r["decoders"].items():
        if "skipped" in d:
            lines.append(f"| {name} | - | - | skipped: {d['skipped']} | - | - | - | - |")
            continue
        lo, hi = d["frames_per_s_range"]
        ci = d["fer_ci"]
        its = f"{d['avg_iterations']:.2f}" if "avg_iterations" in d else "-"
        lines.append(
            f"| {name} | {d['threads']} | {d['frames']} | {d['frames_per_s']:,.0f} "
            f"[{lo:,.0f}, {hi:,.0f}] | {d['mbps_coded']:.2f} | {d['fer']:.3g} "
            f"[{ci[0]:.3g}, {ci[1]:.3g}] | {its} | "
            f"{d['first_call_s']:.2f} |"
        )
    t = r["training"]
    lines += [
        "",
        f"Training steps/s (batch {t['batch']}, {r['iterations']} iterations, median of "
        f"{t['reps']} interleaved steps): reference {t['reference']['steps_per_s']:.2f}, "
        f"boosted_nms kernel {t['boosted_nms']['steps_per_s']:.2f} "
        f"({t['boosted_nms_speedup']:.2f}x).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    r = bench(args)
    if args.json:
        print(json.dumps(r))
    if not args.quick:
        hw = hardware(("numba", "ldpc", "pyldpc", "numpy"))
        hw["cpu"] = records.cpu_model()
        result = result_record(hw, args, r)
        md = markdown(result)
        if not args.json:
            print(md)
        write_results(args.out, f"ldpc_throughput-{records.hardware_class()}", result, md)
    elif not args.json:
        print(json.dumps(r, indent=1))
    return r


if __name__ == "__main__":
    main()
