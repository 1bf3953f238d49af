"""Per-job overhead of sweeps on SLURM through submitit, on a real cluster.

Needs a running cluster: ``bash slurm/cluster_up.sh`` then ``export SLURM_CONF=...``.
Measures, for ``--jobs`` ldpc/smoke trials of nms_baseline submitted as one job array with
parallelism 1: ready -> trial start (ready = the submission for the first job, the previous
job's end for the others; covers scheduling, job start, interpreter and imports) and trial
start -> first training step (workload setup, kernel parity, init); and, for ``--requeues``
jobs preempted after their first checkpoint, the requeue delay (signal sent -> the resumed
attempt starts).
Writes benchmarks/results/slurm_overhead-<hw>.json.

    python benchmarks/slurm_overhead.py --jobs 4 --requeues 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import checkpoint, records
from harness.executors import SlurmOptions, submit, wait
from harness.sweep import Job

IDLE = """
import time
def get_batch_size(workload):
    return 16
def init(workload, model, hparams, rng):
    return {}
def update(workload, model, state, batch, hparams, step, rng):
    time.sleep(0.01)  # never learns: runs until its budget
    return state
"""
RESULTS = Path(__file__).resolve().parent / "results"


def stats(xs: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(xs), "min_s": min(xs), "max_s": max(xs), "n": len(xs)}


def job_overheads(tmp: Path, n: int, opts: SlurmOptions) -> tuple[list[float], list[float]]:
    jobs = [
        Job("ldpc", "smoke", "nms_baseline", 0, t, t, {}, 1.0, tmp / "runs", False)
        for t in range(n)
    ]
    t_submit = time.time()
    handles = submit(jobs, "slurm", tmp / "submitit", opts)
    assert not wait(handles, "slurm", tmp / "submitit", opts, 600), "jobs did not finish"
    hw = records.hardware_class()
    runs = sorted(
        (records.read_run(j.run_dir(hw)) for j in jobs), key=lambda r: r["attempt_started_unix"]
    )
    # with array parallelism 1 a job can start when the previous one ends (start + its wall time)
    ready = [t_submit] + [
        max(t_submit, r["attempt_started_unix"] + r["wall_time_s"]) for r in runs[:-1]
    ]
    to_start = [r["attempt_started_unix"] - t for r, t in zip(runs, ready, strict=True)]
    to_step = [r["first_step_unix"] - r["attempt_started_unix"] for r in runs]
    return to_start, to_step


def requeue_delays(tmp: Path, n: int, opts: SlurmOptions) -> list[float]:
    sub = tmp / "idle"
    sub.mkdir(exist_ok=True)
    (sub / "submission.py").write_text(IDLE)
    (sub / "search_space.json").write_text("{}")
    (sub / "README.md").write_text("---\nworkloads: [ldpc]\n---\n# idle\n")
    hw, delays = records.hardware_class(), []
    for i in range(n):
        job = Job("ldpc", "smoke", str(sub), 1, i, i, {}, 8.0, tmp / "runs", False)
        handles = submit([job], "slurm", tmp / "submitit", opts)
        d = job.run_dir(hw)
        while not (
            checkpoint.path_for(d).exists() and records.read_run(d).get("train_time_s", 0) > 2
        ):
            time.sleep(0.1)
        t_signal = time.time()
        handles[0].sub._interrupt()  # SIGTERM then USR2, as SLURM does on preemption
        assert not wait(handles, "slurm", tmp / "submitit", opts, 600), (
            "requeued job did not finish"
        )
        run = records.read_run(d)
        assert run["attempts"] == 2, run
        delays.append(run["segments"][1]["started_unix"] - t_signal)
    return delays


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--requeues", type=int, default=2)
    args = p.parse_args()
    if "SLURM_CONF" not in os.environ:
        sys.exit("no cluster: run `bash slurm/cluster_up.sh` and export the SLURM_CONF it prints")
    opts = SlurmOptions.load(slurm_array_parallelism=1)  # one at a time: no contention
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        to_start, to_step = job_overheads(Path(tmp), args.jobs, opts)
        delays = requeue_delays(Path(tmp), args.requeues, opts)
    out = {
        "date": records.utcnow(),
        "hardware": records.hardware_fingerprint(),
        "array_parallelism": 1,
        "ready_to_start": stats(to_start),
        "start_to_first_step": stats(to_step),
        "requeue_delay": stats(delays),
        "raw": {
            "ready_to_start_s": to_start,
            "start_to_first_step_s": to_step,
            "requeue_delay_s": delays,
        },
    }
    for key in ("ready_to_start", "start_to_first_step", "requeue_delay"):
        s = out[key]
        print(
            f"{key:<20} median {s['median_s']:.2f} s "
            f"[{s['min_s']:.2f}, {s['max_s']:.2f}] (n={s['n']})"
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"slurm_overhead-{records.hardware_class()}.json"
    records.write_json(path, out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
