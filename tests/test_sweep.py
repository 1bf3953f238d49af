"""Sweeps without SLURM: plans, idempotent re-runs, failures that stay alone, and resume from
a checkpoint after the process running a trial is killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GOOD_SUBMISSION

from harness import checkpoint, cli, records
from harness.executors import SlurmOptions, submit, wait
from harness.runner import RunConfig, run_trial
from harness.status import sweep_status
from harness.sweep import plan_jobs, split_pending

OPTS = SlurmOptions(slurm_array_parallelism=2)


def _records(runs: Path) -> dict[tuple, dict]:
    out = {}
    for p in sorted(runs.glob("*/*/*/*/study_*/trial_*/run.json")):
        r = json.loads(p.read_text())
        out[(r["submission"], r["study"], r["trial"])] = r
    return out


def _sweep(runs: Path, kind: str, subs: list[str]) -> None:
    jobs = plan_jobs(runs, ["ldpc"], subs, "smoke", studies=1, trials=2, seed=0)
    todo, _ = split_pending(jobs)
    left = wait(submit(todo, kind, runs / ".submitit", OPTS), kind, runs / ".submitit", OPTS, 600)
    assert not left


@pytest.mark.slow
def test_debug_and_local_executors_give_the_same_records(tmp_path):
    subs = ["nms_baseline", "boosted_nms"]
    _sweep(tmp_path / "debug", "debug", subs)
    _sweep(tmp_path / "local", "local", subs)
    a, b = _records(tmp_path / "debug"), _records(tmp_path / "local")
    assert len(a) == 4 and a.keys() == b.keys()
    for key in a:
        assert a[key]["status"] == b[key]["status"] != "failed", (key, a[key]["reason"])
        assert (a[key]["hparams"], a[key]["seed"]) == (b[key]["hparams"], b[key]["seed"])


def test_rerunning_a_sweep_skips_finished_trials(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = [
        "sweep",
        "--executor",
        "debug",
        "--no-test-eval",
        "--workloads",
        "ldpc",
        "--submissions",
        "nms_baseline",
        "--variant",
        "smoke",
        "--studies",
        "1",
        "--trials",
        "2",
        "--runs",
        str(runs),
    ]
    assert cli.main(args) == 0
    first = {p: p.read_bytes() for p in runs.rglob("run.json")}
    assert len(first) == 2
    assert not any("test_metrics" in json.loads(b) for b in first.values())  # --no-test-eval
    assert cli.main(args) == 0
    assert "2 finished (skipped), 0 running elsewhere (waited for), 0 to run" in (
        capsys.readouterr().out
    )
    assert {p: p.read_bytes() for p in runs.rglob("run.json")} == first
    # a different plan for the same runs is refused, not mixed in
    assert cli.main([*args[:-4], "--trials", "3", "--runs", str(runs)]) == 2


@pytest.mark.slow  # the CI's slow step runs it; the default run stays under 15 min
def test_a_crashing_submission_fails_alone(tmp_path, make_submission):
    crash = make_submission(
        "crash", GOOD_SUBMISSION.replace("loss.backward()", "raise RuntimeError('kaput')")
    )
    (crash / "search_space.json").write_text('{"unused": [1]}')
    runs = tmp_path / "runs"
    _sweep(runs, "debug", ["nms_baseline", str(crash)])
    recs = _records(runs)
    assert {r["status"] for k, r in recs.items() if k[0] == "crash"} == {"failed"}
    assert all("kaput" in r["reason"] for k, r in recs.items() if k[0] == "crash")
    assert all(r["status"] != "failed" for k, r in recs.items() if k[0] == "nms_baseline")
    counts = sweep_status(runs)
    crash_counts = next(c for key, c in counts.items() if key[3] == "crash")
    assert crash_counts.failed == 2 and "kaput" in crash_counts.reasons[0]


KILLABLE = """
import sys
from pathlib import Path
import harness.runner as r
r.HEARTBEAT_S = 0.2
r.run_trial(r.RunConfig("ldpc", "nms_baseline", variant="smoke", runs=Path(sys.argv[1]),
                        trial=0, budget_s=6.0, eval_every_s=0.5, final_test_eval=False))
"""


def test_a_killed_trial_resumes_from_its_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(runs)])
    run_dir = records.trial_dir(
        runs, records.hardware_class(), "ldpc", "smoke", "nms_baseline", 0, 0
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for two checkpoints, then kill without warning
        rows = (
            (run_dir / "evals.jsonl").read_text().splitlines()
            if (run_dir / "evals.jsonl").exists()
            else []
        )
        if len(rows) >= 3 and checkpoint.path_for(run_dir).exists():
            break
        time.sleep(0.05)
    time.sleep(0.3)  # let a heartbeat record work done after the checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = records.read_run(run_dir)
    assert killed["status"] == "running"
    res = run_trial(
        RunConfig(
            "ldpc",
            "nms_baseline",
            variant="smoke",
            runs=runs,
            trial=0,
            budget_s=6.0,
            eval_every_s=0.5,
            final_test_eval=False,
        )
    )
    run = res.summary
    assert run["attempts"] == 2 and run["status"] != "failed"
    segs = run["segments"]
    assert len(segs) == 2 and segs[1]["start_train_s"] == segs[0]["end_train_s"] > 0
    # each training second counted once: the final time is the sum of the kept segments
    assert run["train_time_s"] == pytest.approx(
        sum(s["end_train_s"] - s["start_train_s"] for s in segs), abs=1e-9
    )
    assert (
        run["wasted_train_s"] == pytest.approx(segs[0]["lost_train_s"])
        and run["wasted_train_s"] > 0
    )
    rows = [json.loads(x) for x in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert [r["eval"] for r in rows] == list(range(len(rows)))
    assert all(a["train_time_s"] < b["train_time_s"] for a, b in zip(rows, rows[1:], strict=False))
