"""What a run leaves to look at: steps.csv, files others can read, checkpoints removed once a
trial is finished (kept while it can still resume), collected tables as CSV and TensorBoard."""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import GOOD_SUBMISSION
from test_collect_report import write_trial

from harness import checkpoint, cli, records
from harness.runner import STEPS_CSV, RunConfig, StepLog, run_trial

REPORTS_LR = GOOD_SUBMISSION.replace(
    'state["loss"] = loss.detach()', 'state["loss"] = loss.detach()\n    state["lr"] = 0.01'
)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert records.current_umask() == mask
        records.write_json(tmp_path / "run.json", {"a": 1})
        checkpoint.save(tmp_path, {"x": torch.zeros(1)})
    finally:
        os.umask(old)
    for p in (tmp_path / "run.json", checkpoint.path_for(tmp_path)):
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, oct(p.stat().st_mode)


def test_step_log_buffers_and_converts_at_flush(tmp_path):
    log = StepLog(tmp_path / STEPS_CSV, every=2)
    log.start(None)
    w = torch.ones((), requires_grad=True)
    for step in range(1, 7):
        loss = w * step  # a loss that still has its graph: the log keeps a detached copy
        log.add(step, 0.5 * step, {"loss": loss, "lr": 0.1 / step} if step != 4 else "not a dict")
    assert len(log.rows) == 3 and not any(r[2] is not None and r[2].requires_grad for r in log.rows)
    log.flush()
    rows = _rows(tmp_path / STEPS_CSV)
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert [float(r["loss"]) if r["loss"] else None for r in rows] == [2.0, None, 6.0]
    assert [r["lr"] for r in rows] == ["0.05", "", "0.0166667"]
    assert [float(r["step_s"]) for r in rows] == [0.5, 0.5, 0.5]  # (t - t_prev) / steps
    # resuming from a checkpoint at step 4 drops what came after it, and goes on from there
    resumed = StepLog(tmp_path / STEPS_CSV, every=2)
    resumed.start(4)
    resumed.add(6, 3.5, {"loss": 1.0})
    resumed.flush()
    rows = _rows(tmp_path / STEPS_CSV)
    assert [(r["step"], r["step_s"]) for r in rows] == [("2", "0.5"), ("4", "0.5"), ("6", "0.75")]


def test_a_run_writes_steps_csv_and_removes_its_checkpoint(tmp_path, make_submission):
    sub = make_submission("lr", REPORTS_LR)
    cfg = RunConfig("ldpc", str(sub), variant="smoke", runs=tmp_path, budget_s=1.0,
                    eval_every_s=0.2, final_test_eval=False)  # fmt: skip
    res = run_trial(cfg)
    rows = _rows(res.run_dir / STEPS_CSV)
    assert res.status == "budget_exhausted" and len(rows) == res.summary["steps"]
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(float(r["loss"]) > 0 and r["lr"] == "0.01" for r in rows)
    assert float(rows[-1]["train_time_s"]) == pytest.approx(res.summary["train_time_s"])
    # cells carry 6 significant digits; the first step (init is on the clock) is the longest
    assert sum(float(r["step_s"]) for r in rows) == pytest.approx(
        res.summary["train_time_s"], rel=1e-5
    )
    assert res.summary["evals"] >= 2 and not checkpoint.path_for(res.run_dir).exists()
    kept = run_trial(RunConfig(**{**cfg.__dict__, "trial": 1, "keep_checkpoint": True}))
    assert checkpoint.path_for(kept.run_dir).is_file()


def test_an_interrupted_trial_keeps_its_checkpoint(tmp_path, make_submission):
    sub = make_submission("good", GOOD_SUBMISSION)
    cfg = RunConfig("ldpc", str(sub), variant="smoke", runs=tmp_path, budget_s=600.0,
                    eval_every_s=0.0, final_test_eval=False)  # fmt: skip

    def ctrl_c(steps, train_s, budget_s):  # the referee is interrupted (as by Ctrl-C)
        if steps >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(cfg, ctrl_c)
    (run_dir,) = {p.parent for p in tmp_path.rglob(records.RUN_JSON)}
    assert checkpoint.path_for(run_dir).is_file()
    run = records.read_run(run_dir)
    assert run["status"] == "interrupted" and "SIGINT" in run["reason"]


def test_collect_csv(tmp_path, capsys):
    runs = tmp_path / "runs"
    for study in range(2):
        write_trial(runs, "fast", study, 0, 1.0)
    out = tmp_path / "res" / "all.parquet"
    assert cli.main(["collect", "--runs", str(runs), "--out", str(out), "--csv"]) == 0
    assert "csv:" in capsys.readouterr().out
    evals, trials = pd.read_csv(out.with_suffix(".csv")), pd.read_csv(out.parent / "all_trials.csv")
    parquet = pd.read_parquet(out)
    assert list(evals.columns) == list(parquet.columns) and len(evals) == len(parquet)
    assert len(trials) == 2 and set(trials.study) == {0, 1}


def test_tensorboard_without_the_extra_is_a_clear_error(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )  # as on an install without the extra
    write_trial(tmp_path / "runs", "fast", 0, 0, 1.0)
    argv = ["collect", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "r.parquet")]
    assert cli.main([*argv, "--tensorboard", str(tmp_path / "tb")]) == 2
    assert "pip install 'ttr-bench[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "tb").exists()


def test_tensorboard_export(tmp_path, make_submission, capsys):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = tmp_path / "runs"
    res = run_trial(RunConfig("ldpc", str(make_submission("lr", REPORTS_LR)), variant="smoke",
                              runs=runs, budget_s=0.5, eval_every_s=0.2, adhoc=True,
                              final_test_eval=False))  # fmt: skip
    argv = ["collect", "--runs", str(runs), "--out", str(tmp_path / "r.parquet")]
    assert cli.main([*argv, "--tensorboard", str(tmp_path / "tb")]) == 0
    assert "tensorboard: 1 runs" in capsys.readouterr().out
    acc = EventAccumulator(str(tmp_path / "tb" / res.run_dir.relative_to(runs))).Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/step_s", "validation/fer"} <= tags
    assert len(acc.Scalars("train/loss")) == res.summary["steps"]
