"""Fixed costs of a trial: process start to the first training step, per workload `default`.

Two measurements per workload, each the median over ``--repeats`` fresh processes:

- **phases** (API level): a child process does what the runner's setup does, in its order, and
  stamps the wall clock after each phase: python start, ``import torch``, ``import harness``
  (runner, discovery, kernels), the workload's module (``get_spec``), the submission
  (``load_submission``), kernel parity (``check_kernels`` into an empty parity cache, as a
  fresh machine pays it), ``build_workload`` (codes, data generation), ``init_model``, the
  submission's ``init`` and ``train_streams``, the first training step (first batch and
  ``update``), then off the path to the first step: the ldpc evaluation decoder's numba load
  (a 1-frame decode; numba compiles or loads its cache) and the first evaluation
  (``--eval``). Times are from the parent's ``Popen`` call, so python's own start counts.
- **runner** (end to end, ``--runner``): ``ttr run <workload> <baseline> --budget-s 0.01`` in a
  fresh process; the record's ``first_step_unix`` minus the spawn time. It includes whatever the
  runner does before a step (a referee or athlete process, records, parity cache), so it keeps
  measuring the real path when the runner changes; its phases are in the run's ``log.txt``.

The data cache (``harness/datacache.py``) is on unless ``TTR_NO_CACHE=1``; ``--cold`` runs each
process with an empty cache folder (generation paid), the default with a warm one (the first
process fills it and is not counted).

    python benchmarks/trial_fixed_costs.py --json                 # all workloads, warm cache
    python benchmarks/trial_fixed_costs.py --cold --runner        # a fresh machine's cost
    python benchmarks/trial_fixed_costs.py --workloads ldpc snn --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {  # each workload's calibrating baseline (benchmarks/calibration_recheck.py)
    "ldpc": "nms_baseline",
    "snn": "bptt_surrogate",
    "certification": "ibp",
    "translation": "temperature_sampling",
    "factuality": "lm_baseline",
}

CHILD = r"""
import json, os, sys, time
stamps = [("python_start", time.time())]
def mark(name):
    stamps.append((name, time.time()))
import torch
torch.set_num_threads(int(os.environ.get("TTR_FC_THREADS", torch.get_num_threads())))
mark("import_torch")
from harness import runner, discovery, kernels
mark("import_harness")
workload, submission, variant, parity_dir, do_eval = sys.argv[1:6]
spec = discovery.get_spec(workload, variant)
mark("workload_module")
sub = discovery.load_submission(submission)
mark("submission_import")
device = torch.device("cpu")
from pathlib import Path
kernels.check_kernels(sub, device, workload=workload, cache_dir=Path(parity_dir))
mark("kernel_parity")
torch.manual_seed(runner.derive_seed(0, "global"))
w = discovery.build_workload(spec, device, eval_seed=0)
mark("build_workload")
model = w.init_model(runner.make_generator(0, "init", device))
mark("init_model")
from harness.search_space import SearchSpace
hp = SearchSpace.load(sub.search_space_path).resolve({})
get_bs = sub.fn("get_batch_size")
bs = int(get_bs(w)) if get_bs is not None else int(spec.batch_size_hint)
rng = runner.make_generator(0, "update", device)
state = sub.fn("init")(w, model, hp, rng)
streams = w.train_streams(bs, runner.make_generator(0, "data", device))
mark("init_and_streams")
select = sub.fn("data_selection")
batch = select(w, streams, state, 0, rng) if select else next(streams["train"])
extra = {"train_state": {"train_time_s": 0.0, "budget_s": 1.0, "step": 0, "evals": ()}} \
    if sub.update_takes_train_state() else {}
state = sub.fn("update")(w, model, state, batch, hp, 0, rng, **extra)
mark("first_step")
if workload == "ldpc":
    from workloads.ldpc import fast_decoder
    if fast_decoder.backend() == "numba":
        fast_decoder.FastMinSum(w.graph, model, spec.iterations).decode(torch.zeros(1, w.code.n))
    mark("numba_load")
if do_eval == "1":
    w.evaluate(model, "validation")
    mark("first_eval")
print("STAMPS " + json.dumps(stamps))
"""

PATH_PHASES = (
    "python_start",
    "import_torch",
    "import_harness",
    "workload_module",
    "submission_import",
    "kernel_parity",
    "build_workload",
    "init_model",
    "init_and_streams",
    "first_step",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    p.add_argument("--variant", default="default")
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per workload")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the child")
    p.add_argument("--cold", action="store_true", help="an empty data cache in every process")
    p.add_argument("--eval", action="store_true", help="also time the first evaluation")
    p.add_argument("--runner", action="store_true", help="also time `ttr run` end to end")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def child_env(cache: str, threads: int | None) -> dict:
    env = dict(os.environ, TTR_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    if threads:
        env["TTR_FC_THREADS"] = str(threads)
    return env


def phases_once(workload: str, args, cache: str) -> dict[str, float]:
    """One fresh process: seconds from spawn to the end of each phase, and each phase's own."""
    with tempfile.TemporaryDirectory() as parity:
        t0 = time.time()
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                workload,
                BASELINES[workload],
                args.variant,
                parity,
                "1" if args.eval else "0",
            ],  # fmt: skip
            cwd=ROOT,
            env=child_env(cache, args.threads),
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError(f"{workload}: the child failed:\n{out.stderr[-2000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("STAMPS "))
    stamps = json.loads(line[len("STAMPS ") :])
    result, prev = {}, t0
    for name, t in stamps:
        result[name] = t - prev
        prev = t
    result["to_first_step"] = dict(stamps)["first_step"] - t0
    return result


def runner_once(workload: str, args, cache: str) -> float:
    """``ttr run`` in a fresh process: first_step_unix of its record minus the spawn time."""
    with tempfile.TemporaryDirectory() as runs:
        t0 = time.time()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "run",
                workload,
                BASELINES[workload],
                "--variant",
                args.variant,
                "--runs",
                runs,
                "--budget-s",
                "0.01",
                "--json",
                "-q",
                "--device",
                "cpu",
            ],  # fmt: skip
            cwd=ROOT,
            env=child_env(cache, args.threads),
            capture_output=True,
            text=True,
            check=False,
        )
        first = None
        for path in Path(runs).rglob("*.json"):  # the run's record (run.json today)
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and rec.get("first_step_unix") is not None:
                first = rec["first_step_unix"]
                break
    if first is None:
        raise RuntimeError(
            f"{workload}: no record with first_step_unix from ttr run:\n{out.stderr[-2000:]}"
        )
    return first - t0


def _repeat(once, w: str, args, warm: str) -> list:
    """``args.repeats`` calls of ``once(w, args, cache)``: each in a fresh cache folder with
    ``--cold``, else all in the warm one."""
    out = []
    for _ in range(args.repeats):
        if args.cold:
            with tempfile.TemporaryDirectory() as cold:
                out.append(once(w, args, cold))
        else:
            out.append(once(w, args, warm))
    return out


def measure(args) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as warm:
        for w in args.workloads:
            if not args.cold:
                phases_once(w, args, warm)  # fills the data, numba and parity caches
            runs = _repeat(phases_once, w, args, warm)
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            row = {
                "submission": BASELINES[w],
                "to_first_step_s": med["to_first_step"],
                "to_first_step_range_s": [
                    min(r["to_first_step"] for r in runs),
                    max(r["to_first_step"] for r in runs),
                ],
                "phases_s": {k: v for k, v in med.items() if k != "to_first_step"},
                "repeats": args.repeats,
            }
            if args.runner:
                times = _repeat(runner_once, w, args, warm)
                row["runner_to_first_step_s"] = statistics.median(times)
                row["runner_to_first_step_range_s"] = [min(times), max(times)]
            out[w] = row
            if not args.json:
                print(table_row(w, row), flush=True)
    return out


def table_row(w: str, r: dict) -> str:
    ph = r["phases_s"]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in ph.items())
    lo, hi = r["to_first_step_range_s"]
    end = f"; ttr run {r['runner_to_first_step_s']:.2f} s" if "runner_to_first_step_s" in r else ""
    head = f"{w}: {r['to_first_step_s']:.2f} s [{lo:.2f}, {hi:.2f}] to the first step"
    return f"{head} ({parts}){end}"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = {
        "variant": args.variant,
        "cache": "cold" if args.cold else "warm",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cores": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "workloads": measure(args),
    }
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
