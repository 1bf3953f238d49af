"""Every workload x submission pair found by folder runs on its smoke variant and writes a
complete record; every submission passes ``ttr check``."""

from __future__ import annotations

import json

import pytest

from harness import discovery, records
from harness.check import check_submission
from harness.runner import RunConfig, run_trial

PAIRS = [
    (w, s)
    for w in discovery.workload_names()
    for s in discovery.submission_names()
    if discovery.load_submission(s).supports(w)
]
RUN_KEYS = {
    "schema",
    "workload",
    "variant",
    "submission",
    "seed",
    "hparams",
    "spec",
    "hardware_class",
    "hardware",
    "git",
    "versions",
    "status",
    "reason",
    "train_time_s",
    "steps",
    "s_per_step",
    "time_to_target_s",
    "prev_eval_train_time_s",
    "steps_to_target",
    "budget_s",
    "target",
}


def test_something_is_discovered():
    assert "ldpc" in discovery.workload_names()
    assert {"nms_baseline", "boosted_nms"} <= set(discovery.submission_names())
    assert "template" not in discovery.submission_names()  # template folders are skipped


# The contract needs setup, steps, evaluations and a checkpoint, not the smoke variant's whole
# budget: bounded by steps (never by wall seconds, which a loaded machine would not reach), with
# an evaluation and a checkpoint after the first step and a last evaluation after the third.
CONTRACT_STEPS = 3


@pytest.mark.parametrize("workload,submission", PAIRS)
def test_smoke_run_writes_a_complete_record(workload, submission, tmp_path):
    res = run_trial(
        RunConfig(
            workload=workload,
            submission=submission,
            variant="smoke",
            runs=tmp_path,
            budget_s=3600.0,
            eval_every_s=3600.0,
            max_steps=CONTRACT_STEPS,
            final_test_eval=False,
        )
    )
    assert res.status != "failed", f"{submission} on {workload}/smoke failed: {res.reason}"
    run = json.loads((res.run_dir / records.RUN_JSON).read_text())
    assert RUN_KEYS <= set(run), f"run.json lacks {sorted(RUN_KEYS - set(run))}"
    assert run["git"]["commit"] is None or len(run["git"]["commit"]) == 40
    rows = [
        json.loads(line) for line in (res.run_dir / records.EVALS_JSONL).read_text().splitlines()
    ]
    assert rows, "no evaluation was recorded"
    assert all(r["train_time_s"] < run["budget_s"] for r in rows), "evaluated after the budget"
    if run["status"] == "reached_target":
        assert rows[-1]["met_target"] and run["time_to_target_s"] == rows[-1]["train_time_s"]
        assert run["prev_eval_train_time_s"] <= run["time_to_target_s"]


# the generic optimizers all pass through the same generic API: adamw stands for them in the
# default run, the others (15-20 s each on 2 cores) run with -m slow
_GENERIC_SLOW = {"nadamw", "adamp", "sam", "sgd_nesterov"}


@pytest.mark.parametrize(
    "submission",
    [
        pytest.param(s, marks=pytest.mark.slow) if s in _GENERIC_SLOW else s
        for s in discovery.submission_names()
    ],
)
def test_ttr_check_passes(submission, capsys):
    assert check_submission(submission), capsys.readouterr().out
