"""Sweeps on a real single-node SLURM cluster (started by the ``slurm_cluster`` fixture):
a sweep completes and scores, a preempted job resumes from its checkpoint, a cancelled job and
a crashing submission fail alone, and the local executor gives the same records."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import GOOD_SUBMISSION
from slurm_fixture import slurm_cluster  # noqa: F401

from harness import checkpoint, cli, records
from harness.executors import SlurmOptions, submit, wait
from harness.report import write_report
from harness.sweep import Job

pytestmark = pytest.mark.slurm

# Never reaches the smoke target (the decoder is never trained): runs until the budget.
IDLE = GOOD_SUBMISSION.replace("loss.backward()", "import time; time.sleep(0.01); return state")


def _records(runs: Path) -> dict[tuple, dict]:
    return {
        (r["submission"], r["study"], r["trial"]): r
        for r in (json.loads(p.read_text()) for p in sorted(runs.rglob("trial_*/run.json")))
    }


def _sweep_args(runs: Path, executor: str) -> list[str]:
    return [
        "sweep",
        "--executor",
        executor,
        "--workloads",
        "ldpc",
        "--submissions",
        "nms_baseline",
        "boosted_nms",
        "--variant",
        "smoke",
        "--studies",
        "1",
        "--trials",
        "2",
        "--runs",
        str(runs),
        "--deadline-min",
        "10",
    ]


def test_sweep_on_slurm_completes_scores_and_matches_local(slurm_cluster, tmp_path):  # noqa: F811
    assert cli.main(_sweep_args(tmp_path / "slurm", "slurm")) == 0
    on_slurm = _records(tmp_path / "slurm")
    assert len(on_slurm) == 4 and all(r["status"] != "failed" for r in on_slurm.values()), on_slurm
    rep = write_report(tmp_path / "slurm", tmp_path / "board", variant="smoke")
    text = rep.readme.read_text()
    assert "nms_baseline" in text and "boosted_nms" in text
    assert cli.main(_sweep_args(tmp_path / "local", "local")) == 0
    local = _records(tmp_path / "local")
    assert local.keys() == on_slurm.keys()
    for k in local:
        assert (local[k]["hparams"], local[k]["seed"]) == (
            on_slurm[k]["hparams"],
            on_slurm[k]["seed"],
        )
        assert local[k]["status"] != "failed"


def _submit_one(tmp_path: Path, sub: Path, budget_s: float):
    job = Job("ldpc", "smoke", str(sub), 0, 0, 0, {}, budget_s, tmp_path / "runs", False)
    opts = SlurmOptions.load(slurm_array_parallelism=1, timeout_min=30)
    handles = submit([job], "slurm", tmp_path / "submitit", opts)
    return job, handles, opts


def _wait_for(pred, deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _trained_s(run_dir: Path) -> float:
    try:
        return float(records.read_run(run_dir).get("train_time_s") or 0.0)
    except (OSError, ValueError):
        return 0.0


@pytest.mark.slow  # 30-60 s on 2 cores; the default run keeps the sweep-on-SLURM test
def test_preempted_job_resumes_from_its_checkpoint(slurm_cluster, tmp_path, make_submission):  # noqa: F811
    job, handles, opts = _submit_one(tmp_path, make_submission("idle", IDLE), budget_s=12.0)
    run_dir = job.run_dir(records.hardware_class())
    _wait_for(
        lambda: checkpoint.path_for(run_dir).exists() and _trained_s(run_dir) > 3,
        120,
        "a checkpoint after 3 s of training",
    )
    handles[0].sub._interrupt()  # what SLURM does on preemption: SIGTERM, then USR2
    assert not wait(handles, "slurm", tmp_path / "submitit", opts, 300)
    run = records.read_run(run_dir)
    assert run["status"] == "budget_exhausted" and run["attempts"] == 2, run
    segs = run["segments"]
    assert segs[1]["start_train_s"] == segs[0]["end_train_s"] > 0
    kept = sum(s["end_train_s"] - s["start_train_s"] for s in segs)
    assert run["train_time_s"] == pytest.approx(kept, abs=1e-9)  # each second counted once
    assert run["wasted_train_s"] == pytest.approx(segs[0]["lost_train_s"])
    assert run["wasted_train_s"] > 0.0  # preempted between checkpoints: some work was redone


@pytest.mark.slow  # 30-60 s on 2 cores; the default run keeps the sweep-on-SLURM test
def test_cancelled_job_is_resumable_and_crashing_submission_fails_alone(
    slurm_cluster,  # noqa: F811
    tmp_path,
    make_submission,
):
    job, handles, opts = _submit_one(tmp_path, make_submission("idle", IDLE), budget_s=300.0)
    crash = make_submission(
        "crash", GOOD_SUBMISSION.replace("loss.backward()", "raise RuntimeError('kaput')")
    )
    crash_job = Job("ldpc", "smoke", str(crash), 0, 0, 0, {}, None, tmp_path / "runs", False)
    good_job = Job("ldpc", "smoke", "nms_baseline", 0, 0, 0, {}, None, tmp_path / "runs", False)
    handles += submit([crash_job, good_job], "slurm", tmp_path / "submitit", opts)
    hw = records.hardware_class()
    _wait_for(lambda: _trained_s(job.run_dir(hw)) > 1, 120, "the long job to start training")
    subprocess.run(["scancel", handles[0].sub.job_id], check=True)
    assert not wait(handles, "slurm", tmp_path / "submitit", SlurmOptions.load(), 300)
    cancelled = records.read_run(job.run_dir(hw))
    # scancel signals the referee and its athlete: a healthy trial is interrupted (resumable)
    assert cancelled["status"] == "interrupted", cancelled
    assert "SIGTERM" in cancelled["reason"] or "ended without finishing" in cancelled["reason"]
    crashed = records.read_run(crash_job.run_dir(hw))
    assert crashed["status"] == "failed" and "kaput" in crashed["reason"]
    assert records.read_run(good_job.run_dir(hw))["status"] != "failed"
