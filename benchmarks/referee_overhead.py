"""What the referee-and-athlete protocol costs per step, on each workload's ``default`` variant.

For each workload, side by side in one process and interleaved (``--reps`` times, median):

  in-process   the submission's ``update`` called in a plain loop in this process (what the
               in-process runner did between two clock reads), ``--steps`` steps
  athlete      the same submission, seed and steps through ``run_trial`` (a referee here, the
               submission in an athlete process), no boundary inside the window; step times
               from steps.csv (the first ``--warmup`` steps of both are left out: init and
               first-call costs); both sides: the median step time (robust to load spikes)
  boundary     one step per segment (``eval_every_s=0``, a pause after every step, with a
               checkpoint): the median segment less the athlete's median step: what one
               evaluation boundary costs (pause, synchronize, model state and checkpoint
               serialized and sent, SIGSTOP/SIGCONT, go)

and the overhead fraction of training time = (athlete / in-process - 1) + boundary /
``eval_every_s`` of the spec (one boundary per evaluation), and the same from its parts:
(the per-step store and poll, timed alone) / in-process step + boundary / ``eval_every_s``.
The machine may be shared: only ratios measured side by side mean anything; the absolute
times are reported for scale.
Writes benchmarks/results/referee_overhead-<hw>.json.

    python benchmarks/referee_overhead.py --workloads ldpc --steps 40 --reps 3
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import mmap
import socket
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from harness import discovery, records, runner
from harness.runner import RunConfig, make_generator, run_trial
from harness.search_space import SearchSpace

RESULTS = Path(__file__).resolve().parent / "results"
SUBMISSION = {"ldpc": "nms_baseline"}  # a workload's own baseline; others: a generic method
GENERIC = "adamw"


def in_process_s_per_step(workload: str, sub_name: str, steps: int, warmup: int) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sub = discovery.load_submission(sub_name)
    spec = discovery.get_spec(workload, "default")
    wl = discovery.build_workload(spec, device)
    model = wl.init_model(make_generator(0, "init", device))
    hp = SearchSpace.load(sub.search_space_path).defaults()
    rng = make_generator(0, "update", device)
    state = sub.fn("init")(wl, model, hp, rng)
    streams = wl.train_streams(sub.batch_size(wl), make_generator(0, "data", device))
    select, update = sub.fn("data_selection"), sub.fn("update")
    ts = {"train_time_s": 0.0, "budget_s": 1e9, "step": 0, "evals": ()}
    extra = {"train_state": ts} if sub.update_takes_train_state() else {}
    per = []
    for step in range(warmup + steps):
        wl.synchronize()
        t0 = time.perf_counter()
        batch = select(wl, streams, state, step, rng) if select else next(streams["train"])
        ts["step"] = step
        state = update(wl, model, state, batch, hp, step, rng, **extra)
        wl.synchronize()
        per.append(time.perf_counter() - t0)
    return statistics.median(per[warmup:])


def athlete_s_per_step(workload: str, sub_name: str, steps: int, warmup: int, runs: Path) -> float:
    res = run_trial(
        RunConfig(
            workload,
            sub_name,
            variant="default",
            runs=runs,
            budget_s=1e9,
            eval_every_s=1e9,
            checkpoint=False,
            final_test_eval=False,
            adhoc=True,
            max_steps=warmup + steps + 1,
        )  # fmt: skip
    )
    assert res.status != "failed", res.reason
    return _median_step_s(res.run_dir, warmup)


def boundary_s(workload: str, sub_name: str, n: int, runs: Path, step_s: float) -> float:
    """Mean cost of a boundary with a checkpoint: one-step segments, less a step's time."""
    res = run_trial(
        RunConfig(workload, sub_name, variant="default", runs=runs, budget_s=1e9,
                  eval_every_s=0.0, final_test_eval=False, adhoc=True, max_steps=n + 1)
    )  # fmt: skip
    assert res.status != "failed", res.reason
    return _median_step_s(res.run_dir, 1) - step_s


def _median_step_s(run_dir: Path, skip: int) -> float:
    """The median of steps.csv's step_s after the first ``skip`` steps (the last row is left
    out too: it carries the final boundary)."""
    with open(run_dir / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return statistics.median(float(r["step_s"]) for r in rows[skip:-1])


def hot_loop_s(n: int = 200_000) -> float:
    """What the protocol adds to every step in the athlete: the step count written to shared
    memory and a non-blocking poll of the control channel (median of 5 runs of ``n``)."""
    a, _b = socket.socketpair()
    conn, mm = Connection(a.detach()), mmap.mmap(-1, 8)
    counter = memoryview(mm).cast("q")
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            counter[0] = i  # as the athlete does: one store and one poll per step
            conn.poll()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def _quick_evaluations() -> None:
    """Evaluations are off the clock and outside every window measured here: score nothing, so
    a run with a boundary after every step does not spend minutes evaluating."""
    real = runner.build_workload

    def build(spec, device, **kw):
        wl = real(spec, device, **kw)
        wl.evaluate = lambda model, split: {spec.metric: math.nan}
        return wl

    runner.build_workload = build


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", nargs="*", default=None)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--boundaries", type=int, default=6)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    _quick_evaluations()
    out = {"hardware_class": records.hardware_class(), "note": __doc__.split("\n\n")[2]}
    hot = hot_loop_s()
    out["hot_loop_s_per_step"] = hot
    print(f"per-step protocol cost in the athlete (store + poll): {hot * 1e6:.2f} us")
    rows = {}
    for w in args.workloads or discovery.workload_names():
        name = SUBMISSION.get(w, GENERIC)
        a, b, c = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.reps):  # interleaved: a load change hits both sides alike
                a.append(in_process_s_per_step(w, name, args.steps, args.warmup))
                b.append(athlete_s_per_step(w, name, args.steps, args.warmup, Path(tmp)))
                c.append(boundary_s(w, name, args.boundaries, Path(tmp), b[-1]))
        every = discovery.get_spec(w, "default").eval_every_s
        ratio = statistics.median(x / y for x, y in zip(b, a, strict=True))
        frac = (ratio - 1) + statistics.median(c) / every
        # the same from its parts: robust where load noise swamps the measured ratio
        est = hot / statistics.median(a) + statistics.median(c) / every
        rows[w] = {
            "submission": name,
            "in_process_s_per_step": a,
            "athlete_s_per_step": b,
            "boundary_s": c,
            "eval_every_s": every,
            "median_step_ratio": ratio,
            "overhead_fraction": frac,
            "overhead_fraction_from_parts": est,
        }
        print(f"{w:<14} {name:<14} in-process {statistics.median(a) * 1e3:8.2f} ms/step  "
              f"athlete {statistics.median(b) * 1e3:8.2f} ms/step  ratio {ratio:.4f}  "
              f"boundary {statistics.median(c) * 1e3:7.1f} ms / {every:.0f} s  "
              f"overhead {frac * 100:+.2f}% (from parts {est * 100:.3f}%)",
              flush=True)  # fmt: skip
    out["workloads"] = rows
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"referee_overhead-{out['hardware_class']}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
