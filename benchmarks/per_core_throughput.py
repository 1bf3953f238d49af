"""Throughput per core: does a trial keep its speed when another trial runs on the other core?

Per workload (`default` variant, its calibrating baseline), seconds per training step of
- **solo**: one trial process pinned to core 0 (``os.sched_setaffinity``), 1 torch thread
  (and 1 numba thread), alone;
- **pair**: two such processes at the same time, pinned to cores 0 and 1, one thread each,
  both timing their steps over the same window (each warms up, then waits at a barrier so the
  timed steps overlap).
Each process runs ``--warmup`` steps, then times ``--steps`` steps (the workload's own training
step: the submission's ``update`` on the next batch of its training stream); the figure is the
median step time. ``slowdown`` = pair median (the slower of the two) / solo median: the issue's
criterion is within 5% (memory bandwidth and the shared caches are what it measures). The
batch is the workload's ``batch_size_hint`` (or the submission's ``get_batch_size``).

Run it on a quiet machine: other jobs on either core are exactly what it would measure.

    python benchmarks/per_core_throughput.py --json                  # all workloads
    python benchmarks/per_core_throughput.py --quick                 # smoke: few steps
    python benchmarks/per_core_throughput.py --save                  # into the hardware reference
    python benchmarks/per_core_throughput.py --workloads ldpc snn --steps 50
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from trial_fixed_costs import BASELINES  # noqa: E402

CHILD = r"""
import json, os, sys, time
core, workload, submission, variant, warmup, steps, barrier = sys.argv[1:8]
os.sched_setaffinity(0, {int(core)})
os.environ["NUMBA_NUM_THREADS"] = "1"
import torch
torch.set_num_threads(1)
from harness import discovery, runner
from harness.search_space import SearchSpace
device = torch.device("cpu")
spec = discovery.get_spec(workload, variant)
sub = discovery.load_submission(submission)
torch.manual_seed(runner.derive_seed(0, "global"))
w = discovery.build_workload(spec, device)
model = w.init_model(runner.make_generator(0, "init", device))
hp = SearchSpace.load(sub.search_space_path).resolve({})
get_bs = sub.fn("get_batch_size")
bs = int(get_bs(w)) if get_bs is not None else int(spec.batch_size_hint)
rng = runner.make_generator(0, "update", device)
state = sub.fn("init")(w, model, hp, rng)
streams = w.train_streams(bs, runner.make_generator(0, "data", device))
select = sub.fn("data_selection")
takes_ts = sub.update_takes_train_state()
def step(i):
    global state
    batch = select(w, streams, state, i, rng) if select else next(streams["train"])
    extra = {"train_state": {"train_time_s": 0.0, "budget_s": 1e9, "step": i, "evals": ()}} \
        if takes_ts else {}
    state = sub.fn("update")(w, model, state, batch, hp, i, rng, **extra)
for i in range(int(warmup)):
    step(i)
open(barrier + f".ready{core}", "w").close()
while not os.path.exists(barrier + ".go"):
    time.sleep(0.005)
times = []
for i in range(int(steps)):
    t0 = time.perf_counter()
    step(int(warmup) + i)
    times.append(time.perf_counter() - t0)
print("TIMES " + json.dumps({"core": int(core), "times": times, "batch": bs}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    p.add_argument("--variant", default="default")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--cores", type=int, nargs=2, default=(0, 1), help="the two cores to use")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 warm-up, 5 timed steps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--save",
        action="store_true",
        help="write each measured workload's verdict into this hardware class's reference "
        "(harness/hardware/<class>.json, one_trial_per_core), which `ttr bench` reads",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.steps = 2, 5
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    available = os.sched_getaffinity(0)
    if not set(args.cores) <= available or args.cores[0] == args.cores[1]:
        p.error(f"--cores must be two different cores of {sorted(available)}")
    return args


def run_group(workload: str, cores: list[int], args) -> list[dict]:
    """Start one process per core, release them together after their warm-ups."""
    with tempfile.TemporaryDirectory() as tmp:
        barrier = str(Path(tmp) / "barrier")
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(c),
                    workload,
                    BASELINES[workload],
                    args.variant,
                    str(args.warmup),
                    str(args.steps),
                    barrier,
                ],  # fmt: skip
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for c in cores
        ]
        while not all(Path(f"{barrier}.ready{c}").exists() for c in cores):
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.01)
        Path(f"{barrier}.go").touch()
        out = []
        for p in procs:
            stdout, stderr = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"{workload}: a trial process failed:\n{stderr[-2000:]}")
            line = next(x for x in stdout.splitlines() if x.startswith("TIMES "))
            out.append(json.loads(line[len("TIMES ") :]))
    return out


def measure(args) -> dict:
    res = {}
    for w in args.workloads:
        (solo,) = run_group(w, [args.cores[0]], args)
        pair = run_group(w, list(args.cores), args)
        solo_med = statistics.median(solo["times"])
        pair_meds = [statistics.median(p["times"]) for p in pair]
        res[w] = {
            "submission": BASELINES[w],
            "batch": solo["batch"],
            "solo_s_per_step": solo_med,
            "pair_s_per_step": pair_meds,
            "slowdown": max(pair_meds) / solo_med,
            "within_5pct": max(pair_meds) / solo_med <= 1.05,
            "steps": args.steps,
            "warmup": args.warmup,
        }
        if not args.json:
            r = res[w]
            print(
                f"{w}: solo {solo_med * 1e3:.1f} ms/step, pair "
                f"{', '.join(f'{m * 1e3:.1f}' for m in pair_meds)} ms/step, "
                f"slowdown {r['slowdown']:.3f}",
                flush=True,
            )
    return res


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = {
        "variant": args.variant,
        "cores": list(args.cores),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_before": os.getloadavg(),
        "workloads": measure(args),
        "loadavg_after": os.getloadavg(),
    }
    if args.save:
        from harness import machine, records

        hw = records.hardware_class()
        table = dict((machine.load_reference(hw) or {}).get("one_trial_per_core") or {})
        for w, r in result["workloads"].items():
            table[w] = {
                "ok": r["within_5pct"],
                "slowdown": round(r["slowdown"], 4),
                "solo_s_per_step": r["solo_s_per_step"],
                "steps": r["steps"],
                "measured_at": result["date"],
                "by": "benchmarks/per_core_throughput.py",
            }
        path = machine.save_per_core(hw, table)
        print(f"saved one_trial_per_core for {sorted(result['workloads'])} into {path}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
