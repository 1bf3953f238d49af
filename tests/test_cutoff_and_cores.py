"""Cost cuts that change no score (a cutoff: the trial ends censored) and pinned cores.

The referee and the athlete run as real processes. As in tests/test_snapshots.py the submission
writes its step count into a model parameter and the referee's evaluation (patched here, in the
referee's process) meets the target on the steps a test chooses. Runs are bounded by steps
(``max_steps``) or by small cutoffs and budgets; the assertions are about the records.
docs/design.md#the-clock states the rules.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import json
import math
import os

import pytest
import torch

from harness import cli, collect, pinning, records
from harness.runner import RunConfig, run_trial
from harness.status import format_status, sweep_status
from harness.sweep import Job, plan_jobs, sort_jobs
from workloads.ldpc import LdpcWorkload

# Every step: 20 ms of "training", then the step count into w_ch[0] (what the evaluation reads).
MARKER = """
import time
import torch
def get_batch_size(workload):
    return 4
def init(workload, model, hparams, rng):
    return {}
def data_selection(workload, streams, state, step, rng):
    return None
def update(workload, model, state, batch, hparams, step, rng):
    time.sleep(0.02)
    with torch.no_grad():
        model.w_ch[0] = step + 1  # the number of steps done
    return state
"""

WHY = "past the study's best time-to-target 0.3 s"


def _meets_on(monkeypatch, meets):
    """The referee's evaluation meets the target exactly when ``meets(steps done)``."""

    def evaluate(self, model, split):
        v = 0.0 if meets(int(round(float(model.w_ch[0])))) else 1.0
        return {"fer": v, "fer_upper95": v}

    monkeypatch.setattr(LdpcWorkload, "evaluate", evaluate)


def _cfg(tmp_path, sub, **kw):
    return RunConfig(
        workload="ldpc",
        submission=str(sub),
        variant="smoke",
        runs=tmp_path / "runs",
        **{"budget_s": 4.0, "eval_every_s": 600.0, "final_test_eval": False, **kw},
    )


def _run(tmp_path, sub, **kw):
    res = run_trial(_cfg(tmp_path, sub, **kw))
    lines = (res.run_dir / records.EVALS_JSONL).read_text().splitlines()
    return res, records.read_run(res.run_dir), [json.loads(x) for x in lines]


def _marker(tmp_path, make_submission):
    sub = tmp_path / "subs" / "marker"
    return sub if sub.exists() else make_submission("marker", MARKER)


def _censored(tmp_path, make_submission, monkeypatch, **kw):
    _meets_on(monkeypatch, lambda steps: False)
    sub = _marker(tmp_path, make_submission)
    return _run(tmp_path, sub, cutoff_s=0.3, cutoff_reason=WHY, snapshot_every_s=0.05, **kw)


def _consistent(run, rows, run_dir):
    assert [r["eval"] for r in rows] == list(range(len(rows)))
    assert collect.contradictions(run, rows, run_dir) == []


def test_a_cutoff_censors_a_trial_that_has_not_met_the_target(
    tmp_path, make_submission, monkeypatch
):
    res, run, rows = _censored(tmp_path, make_submission, monkeypatch, final_test_eval=True)
    assert res.status == run["status"] == "censored"
    assert run["cutoff_s"] == 0.3 and run["cutoff_reason"] == WHY
    at = run["censored_at_s"]
    assert at == run["train_time_s"] >= 0.3
    assert run["reason"] == f"cutoff {WHY} at {at:.2f} s"
    assert run["time_to_target_s"] is None and run["steps_to_target"] is None
    # the grid's first evaluation, then the state at the cutoff, once; the snapshots kept
    # before it are never evaluated (it missed), and no test evaluation follows
    assert [r["kind"] for r in rows] == ["grid", "cutoff"]
    assert rows[-1]["train_time_s"] == at and rows[-1]["met_target"] is False
    assert rows[-1]["step"] == run["steps"] and run["snapshots"] >= 1
    assert run["snapshot_evals"] == 0 and "test_metrics" not in run
    # it stopped at the first step boundary after the referee's pause at the cutoff
    with open(res.run_dir / "steps.csv") as f:
        times = [float(r["train_time_s"]) for r in csv.DictReader(f)]
    assert len(times) == run["steps"]
    assert sum(t > 0.3 for t in times) <= 4
    assert not (res.run_dir / "checkpoint.pt").exists()
    _consistent(run, rows, res.run_dir)


@pytest.mark.slow  # the CI's slow step runs it; the default run stays under 15 min
def test_a_target_met_before_the_cutoff_is_unaffected(tmp_path, make_submission, monkeypatch):
    _meets_on(monkeypatch, lambda steps: steps >= 8)
    sub = _marker(tmp_path, make_submission)
    kw = {"eval_every_s": 0.1, "snapshot_every_s": 1e-4}
    free, free_run, free_rows = _run(tmp_path, sub, **kw)
    cut, cut_run, cut_rows = _run(tmp_path, sub, cutoff_s=3.0, **kw)
    assert free.status == cut.status == "reached_target"
    assert free_run["steps_to_target"] == cut_run["steps_to_target"] == 8
    assert (
        cut_run["time_to_target_s"] == next(r for r in cut_rows if r["met_target"])["train_time_s"]
    )
    assert "cutoff" not in {r["kind"] for r in cut_rows}
    assert cut_run["cutoff_s"] == 3.0 and "censored_at_s" not in cut_run
    _consistent(cut_run, cut_rows, cut.run_dir)


def test_a_target_met_just_before_the_cutoff_is_timed_exactly(
    tmp_path, make_submission, monkeypatch
):
    """No grid evaluation after step 1: the state at the cutoff meets the target, so the
    snapshots kept since the last failing evaluation are scanned, and the first that met
    gives the time, as it would have at a later grid evaluation."""
    _meets_on(monkeypatch, lambda steps: steps >= 3)
    sub = _marker(tmp_path, make_submission)
    res, run, rows = _run(tmp_path, sub, cutoff_s=0.5, snapshot_every_s=1e-4)
    assert res.status == "reached_target"
    assert [(r["kind"], r["step"], r["met_target"]) for r in rows] == [
        ("grid", 1, False),
        ("snapshot", 2, False),
        ("snapshot", 3, True),
        ("cutoff", run["steps"], True),
    ]
    assert run["steps_to_target"] == 3
    assert run["time_to_target_s"] == rows[2]["train_time_s"] < 0.5
    assert run["prev_eval_train_time_s"] == rows[1]["train_time_s"]
    assert "censored_at_s" not in run
    _consistent(run, rows, res.run_dir)


def test_a_censored_trial_is_final(tmp_path, make_submission, monkeypatch):
    res, run, _ = _censored(tmp_path, make_submission, monkeypatch, study=0, trial=0)
    assert records.is_finished(res.run_dir)
    with pytest.raises(FileExistsError, match="finished"):
        run_trial(_cfg(tmp_path, tmp_path / "subs" / "marker", study=0, trial=0))
    job = Job("ldpc", "smoke", str(tmp_path / "subs" / "marker"), 0, 0, 0, runs=tmp_path / "runs")
    assert job.run_dir() == res.run_dir
    split = sort_jobs([job], retry_failed=True)
    assert split.finished == [job] and not split.todo and not split.retried
    (counts,) = sweep_status(tmp_path / "runs").values()
    assert (counts.done, counts.censored, counts.failed, counts.resumable) == (0, 1, 0, 0)
    text = format_status(sweep_status(tmp_path / "runs"))
    assert f"censored: study_0/trial_0: {run['reason']}" in text
    assert records.read_run(res.run_dir) == run  # untouched
    out = io.StringIO()
    cli.print_summary([run], file=out)
    assert out.getvalue().splitlines()[2].split()[:3] == ["ldpc", "marker", "censored"]
    assert f"miss (cut at {run['censored_at_s']:.1f} s)" in out.getvalue()


def test_collect_checks_censored_records(tmp_path, make_submission, monkeypatch):
    res, run, rows = _censored(tmp_path, make_submission, monkeypatch, study=0, trial=0)
    d = res.run_dir

    def says(forged_run, forged_rows, words):
        found = collect.contradictions(forged_run, forged_rows, d)
        assert any(words in p for p in found), found

    says({**run, "time_to_target_s": 0.2}, rows, "status censored, but time_to_target_s")
    says({**run, "cutoff_s": None}, rows, "status censored without a cutoff_s")
    says({**run, "censored_at_s": None}, rows, "without censored_at_s")
    says({**run, "censored_at_s": 0.1}, rows, "censored_at_s 0.1 is before the cutoff")
    says({**run, "censored_at_s": run["train_time_s"] + 1}, rows, "not the training time")
    says(run, rows[:-1], "was not evaluated")
    says({**run, "reason": "budget spent"}, rows, "names no cutoff")
    says(run, [{**rows[-1], "fer": 0.0, "fer_upper95": 0.0}], "met the target")
    says({**run, "status": "budget_exhausted"}, rows, "but censored_at_s")
    says({**run, "cutoff_s": run["train_time_s"] + 1.0}, rows, "is before the cutoff")
    late = {**rows[-1], "train_time_s": run["censored_at_s"] + 1.0}
    says(run, [*rows, late], "after the trial was censored")
    says({**run, "cutoff_s": -1.0}, rows, "is not a positive number")
    says({k: v for k, v in run.items() if k != "cutoff_s"}, rows, "kind cutoff at")
    # an honest one is ranked as a miss, censored where it stopped
    trials = collect.collect(tmp_path / "runs").trials
    (row,) = trials.to_dict("records")
    assert row["status"] == "censored" and bool(row["censored"])
    assert math.isinf(row["time_to_target_s"]) and row["censored_at_s"] == run["censored_at_s"]
    assert row["cutoff_s"] == 0.3
    assert collect.trial_outcome(run) == {
        "time_to_target_s": math.inf,
        "censored": True,
        "censored_at_s": run["censored_at_s"],
    }
    met = collect.trial_outcome({"status": "reached_target", "time_to_target_s": 1.5})
    assert met["time_to_target_s"] == 1.5 and not met["censored"]
    assert math.isnan(met["censored_at_s"])


PINNED = """
import os
import torch
CORE = {core}
def get_batch_size(workload):
    return 4
def init(workload, model, hparams, rng):
    return {{}}
def data_selection(workload, streams, state, step, rng):
    return None
def update(workload, model, state, batch, hparams, step, rng):
    # in force where the submission runs: its affinity and torch's threads
    if os.sched_getaffinity(0) != {{CORE}} or torch.get_num_threads() != 1:
        raise RuntimeError(f"not pinned: {{os.sched_getaffinity(0)}} {{torch.get_num_threads()}}")
    {extra}
    return state
"""


def test_pinned_cores_are_in_force_and_recorded(tmp_path, make_submission, monkeypatch):
    _meets_on(monkeypatch, lambda steps: False)
    before, threads = os.sched_getaffinity(0), torch.get_num_threads()
    numba_before = pinning.threads()["numba"] or len(before)  # numba's default: its pool size
    core = max(before)
    sub = make_submission("pinned", PINNED.format(core=core, extra="pass"))
    res, run, _ = _run(tmp_path, sub, max_steps=3, cores=(core,))
    assert res.status == "complete", run["reason"]
    assert run["pinned"] is True and run["cores"] == [core]
    numba = 1 if importlib.util.find_spec("numba") else None  # numba is optional
    assert run["threads"]["athlete"] == run["threads"]["referee"] == {"torch": 1, "numba": numba}
    assert run["hardware"]["cores"] == [core] and run["hardware"]["cpu_cores"] == 1
    assert run["hardware"]["machine_cpu_cores"] == len(before)
    hw = records.hardware_class(records.trial_fingerprint((core,)))
    assert run["hardware_class"] == hw and res.run_dir.parts[-6] == hw
    if not run["hardware"]["gpu"]:
        assert hw == "cpu-1core"  # one core of this machine
    assert run["config"]["cores"] == [core]
    # the referee's own process is as it was
    assert os.sched_getaffinity(0) == before and torch.get_num_threads() == threads
    assert pinning.threads()["numba"] in (None, numba_before)


def test_an_unpinned_trial_records_its_affinity(tmp_path, make_submission, monkeypatch):
    _meets_on(monkeypatch, lambda steps: False)
    res, run, _ = _run(tmp_path, _marker(tmp_path, make_submission), max_steps=2)
    assert run["pinned"] is False and run["cores"] == sorted(os.sched_getaffinity(0))
    assert run["threads"]["athlete"]["torch"] >= 1
    assert run["hardware_class"] == records.hardware_class() and "cores" not in run["hardware"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to widen onto")
def test_a_submission_that_widens_its_affinity_fails(tmp_path, make_submission, monkeypatch):
    _meets_on(monkeypatch, lambda steps: False)
    everywhere = sorted(os.sched_getaffinity(0))
    core = everywhere[-1]
    widen = f"if step == 1: os.sched_setaffinity(0, {set(everywhere)})"
    source = PINNED.format(core=core, extra=widen).replace(
        "    if os.sched_getaffinity(0)", "    if step < 1 and os.sched_getaffinity(0)"
    )
    sub = make_submission("widens", source)
    res, run, _ = _run(tmp_path, sub, max_steps=8, snapshot_every_s=1e-4, cores=(core,))
    assert res.status == "failed"
    assert run["reason"].startswith("the submission changed its CPU affinity: thread ")
    assert f"the trial is pinned to [{core}]" in run["reason"]


@pytest.mark.parametrize(
    "kw,words",
    [
        ({"cores": ()}, "cores is empty"),
        ({"cores": (0, 0)}, "names a CPU twice"),
        ({"cores": (10_000,)}, "are not in this process's CPU affinity"),
        ({"cores": (-1,)}, "are not in this process's CPU affinity"),
        ({"cores": ("0",)}, "must be integers"),
        ({"cores": 0}, "must be a tuple of CPU numbers"),
        ({"cutoff_s": 0.0}, "cutoff_s must be a positive number"),
        ({"cutoff_s": -1.0}, "cutoff_s must be a positive number"),
        ({"cutoff_s": math.nan}, "cutoff_s must be a positive number"),
        ({"cutoff_s": math.inf}, "cutoff_s must be a positive number"),
        ({"cutoff_s": "5"}, "cutoff_s must be a positive number"),
        ({"cutoff_reason": "why"}, "cutoff_reason is given without a cutoff_s"),
    ],
)
def test_bad_cores_and_cutoffs_are_refused_before_anything_is_written(tmp_path, kw, words):
    with pytest.raises(ValueError, match=words):
        run_trial(_cfg(tmp_path, "nms_baseline", **kw))
    assert not (tmp_path / "runs").exists()


def test_a_job_passes_its_cutoff_and_cores_on():
    job = Job("ldpc", "smoke", "nms_baseline", 1, 0, 7, cutoff_s=2.5, cutoff_reason=WHY, cores=(0,))
    cfg = job.config()
    assert (cfg.cutoff_s, cfg.cutoff_reason, cfg.cores) == (2.5, WHY, (0,))
    assert job.hardware_class() == records.hardware_class(records.trial_fingerprint((0,)))
    assert job.run_dir().parts[-6] == job.hardware_class()
    assert pinning.check_cores([1, 0], allowed=[0, 1]) == (0, 1)


def test_a_pinned_self_tuning_trial_reads_the_machines_plan(tmp_path, make_submission, monkeypatch):
    """The plan is saved under the machine's class, the pinned trial filed under its own: its
    larger budget (the plan's multiplier) is still the plan's, not a forged one."""
    _meets_on(monkeypatch, lambda steps: False)
    sub = _marker(tmp_path, make_submission)
    runs = tmp_path / "runs"
    (job,) = plan_jobs(runs, ["ldpc"], [str(sub)], "smoke", studies=1, self_tuning=True)
    core = max(os.sched_getaffinity(0))
    job = dataclasses.replace(job, cores=(core,), final_test_eval=False)
    res = run_trial(dataclasses.replace(job.config(), max_steps=2))
    assert res.run_dir == job.run_dir() and res.summary["budget_s"] > 4.0  # the spec's: 4 s
    result = collect.collect(runs)
    assert not result.problems and len(result.trials) == 1
    forged = {**res.summary, "budget_s": 4.0 * 3}
    assert any("exceeds" in p for p in collect.contradictions(forged, [], res.run_dir))
