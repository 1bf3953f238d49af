"""Exact time to target: snapshots between evaluations, scanned once an evaluation meets it.

The referee and the athlete run as real processes. The submission writes its step count into a
model parameter, and the referee's evaluation (patched here, in the referee's process) meets the
target on the steps a test chooses, so each test knows which state first met it. Runs are
bounded by steps (``max_steps``) or by a tiny budget; every assertion is about the records.
docs/design.md#the-clock states the rule.
"""

from __future__ import annotations

import json
import tempfile

import pytest

from harness import collect, records, runner
from harness.runner import RunConfig, Snapshots, run_trial
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


def _meets_on(monkeypatch, meets):
    """The referee's evaluation meets the target (fer_upper95 0 <= 0.02) exactly when
    ``meets(steps done)``, read from the state handed over."""

    def evaluate(self, model, split):
        v = 0.0 if meets(int(round(float(model.w_ch[0])))) else 1.0
        return {"fer": v, "fer_upper95": v}

    monkeypatch.setattr(LdpcWorkload, "evaluate", evaluate)


def _run(tmp_path, make_submission, **kw):
    sub = tmp_path / "subs" / "marker"
    if not sub.exists():
        make_submission("marker", MARKER)
    cfg = RunConfig(
        workload="ldpc",
        submission=str(sub),
        variant="smoke",
        runs=tmp_path / "runs",
        final_test_eval=False,
        **{"budget_s": 4.0, "eval_every_s": 600.0, **kw},  # 4 s: the spec's budget
    )
    res = run_trial(cfg)
    lines = (res.run_dir / records.EVALS_JSONL).read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    return res, records.read_run(res.run_dir), rows


def _row(rows, step):
    return next(r for r in rows if r["step"] == step)


def _consistent(run, rows, run_dir):
    assert [r["eval"] for r in rows] == list(range(len(rows)))
    times = [r["train_time_s"] for r in rows]
    assert times == sorted(times)
    assert collect.contradictions(run, rows, run_dir) == []


def test_time_to_target_is_the_first_snapshot_that_meets_it(tmp_path, make_submission, monkeypatch):
    _meets_on(monkeypatch, lambda steps: steps >= 23)
    # one snapshot after every step; the grid evaluates at step 1 and (max_steps) at step 40
    res, run, rows = _run(tmp_path, make_submission, max_steps=40, snapshot_every_s=1e-4)
    assert res.status == "reached_target"
    grid = [r for r in rows if r["kind"] == "grid"]
    assert [(r["step"], r["met_target"]) for r in grid] == [(1, False), (40, True)]
    # the scan evaluated the snapshots from step 2 up to the first that met, none after it
    snaps = [r for r in rows if r["kind"] == "snapshot"]
    assert [r["step"] for r in snaps] == list(range(2, 24))
    assert [r["met_target"] for r in snaps] == [False] * 21 + [True]
    met = _row(rows, 23)
    assert run["time_to_target_s"] == met["train_time_s"] < _row(rows, 40)["train_time_s"]
    assert run["steps_to_target"] == 23
    assert run["prev_eval_train_time_s"] == _row(rows, 22)["train_time_s"]
    # every step was a boundary: the resolution is the step from 22 to 23
    assert run["time_resolution_s"] == pytest.approx(
        met["train_time_s"] - _row(rows, 22)["train_time_s"], abs=1e-9
    )
    assert run["snapshot_every_s"] == 1e-4
    assert (run["snapshots"], run["snapshot_evals"]) == (38, 22)  # steps 2..39 kept
    assert run["snapshot_handover_s"] > 0
    _consistent(run, rows, res.run_dir)


def test_a_transient_meet_between_grid_points_counts(tmp_path, make_submission, monkeypatch):
    """The rule (MLPerf's: timestamped states evaluated after the fact): a state that meets
    the target counts if no evaluation that failed came after it before one that met, even
    when the states after it fail again."""
    _meets_on(monkeypatch, lambda steps: 10 <= steps < 16 or steps >= 40)
    res, run, rows = _run(tmp_path, make_submission, max_steps=45, snapshot_every_s=1e-4)
    assert res.status == "reached_target"
    assert run["steps_to_target"] == 10
    assert run["time_to_target_s"] == _row(rows, 10)["train_time_s"]
    assert [r["step"] for r in rows] == [1, *range(2, 11), 45]
    _consistent(run, rows, res.run_dir)


def test_snapshots_before_a_failing_evaluation_are_dropped(tmp_path, make_submission, monkeypatch):
    transient = range(3, 5)
    _meets_on(monkeypatch, lambda steps: steps in transient or steps >= 40)
    # grid evaluations every 0.5 s of training (at most 26 steps of 20 ms), the last at 60
    res, run, rows = _run(
        tmp_path, make_submission, max_steps=60, eval_every_s=0.5, snapshot_every_s=1e-4
    )
    assert res.status == "reached_target"
    grid = [r for r in rows if r["kind"] == "grid"]
    failed = [r for r in grid if not r["met_target"]]
    assert failed[-1]["step"] > max(transient), "no failing evaluation after the transient"
    last_fail = failed[-1]
    # nothing kept from before the last failing evaluation was evaluated
    snaps = [r for r in rows if r["kind"] == "snapshot"]
    assert snaps and all(r["step"] > last_fail["step"] for r in snaps)
    assert not any(r["met_target"] for r in rows if r["step"] in transient)
    expected = next(s for s in range(last_fail["step"] + 1, 61) if s >= 40)
    assert run["steps_to_target"] == expected
    assert run["time_to_target_s"] == _row(rows, expected)["train_time_s"]
    assert run["snapshots"] > len(snaps)  # the others were dropped unevaluated
    _consistent(run, rows, res.run_dir)


def test_the_last_snapshot_within_the_budget_is_evaluated(tmp_path, make_submission, monkeypatch):
    """No grid evaluation after step 1: the budget ends the trial, and the last snapshot within
    it closes the grid; it meets the target, so the scan finds the first that did."""
    _meets_on(monkeypatch, lambda steps: steps >= 10)
    res, run, rows = _run(tmp_path, make_submission, budget_s=0.8, snapshot_every_s=0.05)
    assert res.status == "reached_target"
    met = next(r for r in rows if r["met_target"])
    before = rows[rows.index(met) - 1]
    assert met["kind"] == "snapshot" and met["step"] >= 10 > before["step"]
    assert run["time_to_target_s"] == met["train_time_s"] < 0.8
    assert run["prev_eval_train_time_s"] == before["train_time_s"]
    assert 0 < run["time_resolution_s"] <= met["train_time_s"] - before["train_time_s"] + 1e-9
    _consistent(run, rows, res.run_dir)


def test_a_budget_missed_evaluates_one_snapshot(tmp_path, make_submission, monkeypatch):
    _meets_on(monkeypatch, lambda steps: False)
    res, run, rows = _run(tmp_path, make_submission, budget_s=0.5, snapshot_every_s=0.05)
    assert res.status == "budget_exhausted"
    assert [r["kind"] for r in rows] == ["grid", "snapshot"]
    assert run["time_to_target_s"] is None and run["time_resolution_s"] is None
    assert run["snapshots"] >= 3 and run["snapshot_evals"] == 1
    _consistent(run, rows, res.run_dir)


def test_snapshots_spill_to_a_private_folder_removed_at_the_end(
    tmp_path, make_submission, monkeypatch
):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(runner, "SNAPSHOT_MEMORY_CAP", 1)  # every snapshot to a file
    _meets_on(monkeypatch, lambda steps: steps >= 6)
    res, run, rows = _run(tmp_path, make_submission, max_steps=12, snapshot_every_s=1e-4)
    assert run["steps_to_target"] == 6 and _row(rows, 6)["kind"] == "snapshot"
    assert not list(tmp.glob("ttr-snapshots-*"))
    _consistent(run, rows, res.run_dir)


def test_the_snapshot_store_keeps_order_and_spills_past_its_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = Snapshots(cap=10)
    for step, data in enumerate([b"abcd", b"efgh", b"ijkl"], start=1):
        store.add(step, 0.1 * step, 0.1 * (step - 1), None, data)
    assert [s.path is None for s in store.items] == [True, True, False]
    (folder,) = tmp_path.glob("ttr-snapshots-*")
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert [Snapshots.read(s) for s in store.items] == [b"abcd", b"efgh", b"ijkl"]
    store.clear()
    assert store.items == [] and store.in_memory == 0 and not list(folder.iterdir())
    store.add(4, 0.4, 0.3, None, b"mnop")
    assert store.items[0].path is None  # the cap counts what is held now
    store.close()
    assert not folder.exists() and store.taken == 4 and store.spilled == 1


def test_collect_refuses_a_time_to_target_off_the_first_met_snapshot(
    tmp_path, make_submission, monkeypatch
):
    _meets_on(monkeypatch, lambda steps: steps >= 5)
    res, run, rows = _run(tmp_path, make_submission, max_steps=8, snapshot_every_s=1e-4)
    assert run["steps_to_target"] == 5
    grid_met = _row(rows, 8)["train_time_s"]
    forged = {**run, "time_to_target_s": grid_met}  # the grid's time, not the snapshot's
    assert any(
        "first evaluation that met" in p for p in collect.contradictions(forged, rows, res.run_dir)
    )
    forged = {**run, "time_resolution_s": run["time_to_target_s"] + 1.0}
    assert any("time_resolution_s" in p for p in collect.contradictions(forged, rows, res.run_dir))
    bad_rows = [{**r, "kind": "other"} if r["step"] == 2 else r for r in rows]
    assert any("kind 'other'" in p for p in collect.contradictions(run, bad_rows, res.run_dir))
