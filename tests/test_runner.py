"""The runner: clock rules, records, and failures that end as records, not tracebacks."""

from __future__ import annotations

import json
import time

import pytest
from conftest import GOOD_SUBMISSION

from harness import cli, records
from harness.runner import RunConfig, run_trial
from workloads.ldpc import LdpcWorkload

SLEEPY = """
import time
def get_batch_size(workload):
    return 4
def init(workload, model, hparams, rng):
    return {}
def data_selection(workload, streams, state, step, rng):
    return None  # no data: a step is exactly the sleep below
def update(workload, model, state, batch, hparams, step, rng, train_state):
    assert train_state["step"] == step
    time.sleep(0.02)  # 20 ms of "training" per step
    return state
"""


def _cfg(tmp_path, sub, **kw):
    return RunConfig(
        workload="ldpc", submission=str(sub), variant="smoke", runs=tmp_path / "runs", **kw
    )


def _evals(run_dir):
    return [json.loads(x) for x in (run_dir / records.EVALS_JSONL).read_text().splitlines()]


def test_slow_evaluation_does_not_count_as_training_time(tmp_path, make_submission, monkeypatch):
    real = LdpcWorkload.evaluate

    def slow(self, model, split):
        time.sleep(0.3)
        return {**real(self, model, split), "fer_upper95": 1.0}  # never meets the target

    monkeypatch.setattr(LdpcWorkload, "evaluate", slow)
    sub = make_submission("sleepy", SLEEPY)
    res = run_trial(_cfg(tmp_path, sub, budget_s=1.0, eval_every_s=0.25))
    run, rows = res.summary, _evals(res.run_dir)
    assert run["status"] == "budget_exhausted"
    assert len(rows) >= 3 and run["eval_time_s"] >= 0.3 * len(rows)
    # training time is the sum of the 20 ms steps, however long the evaluations took
    assert run["train_time_s"] == pytest.approx(0.02 * run["steps"], rel=0.25)
    assert run["wall_time_s"] > run["train_time_s"] + run["eval_time_s"]
    # evaluations every eval_every_s of training time, none once the budget is spent; at the
    # budget, the last snapshot within it closes the grid (tests/test_snapshots.py)
    grid = [r for r in rows if r["kind"] == "grid"]
    assert [r["kind"] for r in rows[len(grid) :]] == ["snapshot"]
    gaps = [b["train_time_s"] - a["train_time_s"] for a, b in zip(grid, grid[1:], strict=False)]
    assert all(0.25 <= g < 0.25 + 0.1 for g in gaps), gaps
    assert all(r["train_time_s"] < 1.0 for r in rows)
    assert run["train_time_s"] >= 1.0


def test_time_to_target_and_resolution(tmp_path, make_submission, monkeypatch):
    calls = {"n": 0}
    real = LdpcWorkload.evaluate

    def third_time_lucky(self, model, split):
        calls["n"] += 1
        m = real(self, model, split)
        return {**m, "fer_upper95": 0.0 if calls["n"] >= 3 else 1.0}

    monkeypatch.setattr(LdpcWorkload, "evaluate", third_time_lucky)
    res = run_trial(
        _cfg(tmp_path, make_submission("sleepy", SLEEPY), budget_s=5.0, eval_every_s=0.1)
    )
    rows = _evals(res.run_dir)
    assert res.status == "reached_target" and len(rows) == 3
    assert res.summary["time_to_target_s"] == rows[2]["train_time_s"]
    assert res.summary["prev_eval_train_time_s"] == rows[1]["train_time_s"]
    assert res.summary["steps_to_target"] == rows[2]["step"]


@pytest.mark.parametrize(
    "source,reason",
    [
        (
            GOOD_SUBMISSION.replace("loss.backward()", "raise ValueError('boom')"),
            "update raised at step 0: ValueError: boom",
        ),
        (
            GOOD_SUBMISSION.replace(
                'state["loss"] = loss.detach()', "state[\"loss\"] = loss.detach() * float('nan')"
            ),
            "non-finite loss",
        ),
        (
            GOOD_SUBMISSION.replace("def update(", "def not_update("),
            "missing required function(s) update",
        ),
        (GOOD_SUBMISSION.replace("return 16", "return 1 // 0"), "get_batch_size raised"),
        (GOOD_SUBMISSION + "\nraise ImportError('no such thing')\n", "failed to import"),
    ],
    ids=["update-raises", "nan-loss", "missing-function", "batch-size-raises", "import-error"],
)
def test_failures_are_recorded_with_a_reason(tmp_path, make_submission, capsys, source, reason):
    sub = make_submission("broken", source)
    code = cli.main(
        ["run", "ldpc", str(sub), "--variant", "smoke", "--runs", str(tmp_path / "runs")]
    )
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, "a failure must not dump a traceback on the terminal"
    if reason in ("missing required function(s) update", "failed to import"):
        # a submission that cannot load is bad input: refused before anything is written
        assert code == 2 and reason in err and not (tmp_path / "runs").exists()
        return
    assert code == 1
    run_dir = next((tmp_path / "runs").rglob(records.RUN_JSON)).parent
    run = json.loads((run_dir / records.RUN_JSON).read_text())
    assert run["status"] == "failed" and reason in run["reason"]
    assert reason in err


def test_kernel_failing_parity_is_refused(tmp_path, make_submission, capsys):
    sub = make_submission("badkernel", GOOD_SUBMISSION)
    (sub / "kernels").mkdir()
    (sub / "kernels" / "__init__.py").write_text(
        "from harness.api import Kernel\n"
        "from workloads.ldpc.decoder import check_node_update\n"
        "def off_by_a_bit(v2c, w):\n"
        "    return check_node_update(v2c, w) * 1.001\n"
        "KERNELS = [Kernel('off_by_a_bit', 'ldpc.check_node_update', off_by_a_bit)]\n"
    )
    res = run_trial(_cfg(tmp_path, sub))
    assert res.status == "failed" and "off_by_a_bit" in res.reason and "fails parity" in res.reason
    assert cli.main(["check", str(sub), "--no-step"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_finished_runs_are_never_overwritten(tmp_path, make_submission, capsys):
    sub = make_submission("good", GOOD_SUBMISSION)
    first = run_trial(_cfg(tmp_path, sub, trial=0))
    before = (first.run_dir / records.RUN_JSON).read_bytes()
    with pytest.raises(FileExistsError):
        run_trial(_cfg(tmp_path, sub, trial=0))
    assert (first.run_dir / records.RUN_JSON).read_bytes() == before
    code = cli.main(
        [
            "run",
            "ldpc",
            str(sub),
            "--variant",
            "smoke",
            "--trial",
            "0",
            "--runs",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 2 and "never overwritten" in capsys.readouterr().err
    second = run_trial(_cfg(tmp_path, sub))  # no --trial: the next free index
    assert second.run_dir.name == "trial_1"


def test_unknown_names_give_clear_errors(tmp_path, capsys):
    assert cli.main(["run", "nope", "nms_baseline", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown workload 'nope'; available: " in err
    assert all(w in err for w in ("ldpc", "snn", "certification"))
    assert cli.main(["run", "ldpc", "nope", "--runs", str(tmp_path)]) == 2
    assert "unknown submission 'nope'" in capsys.readouterr().err
    assert (
        cli.main(["run", "ldpc", "nms_baseline", "--variant", "huge", "--runs", str(tmp_path)]) == 2
    )
    assert "has no variant 'huge'" in capsys.readouterr().err
    assert (
        cli.main(["run", "ldpc", "nms_baseline", "--hparams", "lrr=1", "--runs", str(tmp_path)])
        == 2
    )
    assert "unknown hyperparameters ['lrr']" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_same_seed_same_record(tmp_path):
    def cfg(runs):  # bounded by steps: an evaluation after each of the first 4 steps
        return RunConfig("ldpc", "nms_baseline", variant="smoke", runs=runs, budget_s=600.0,
                         eval_every_s=0.0, max_steps=4, final_test_eval=False)  # fmt: skip

    # one records tree (one evaluation secret), so trials 0 and 1 share the evaluation seed
    a, b = run_trial(cfg(tmp_path / "runs")), run_trial(cfg(tmp_path / "runs"))
    ea, eb = _evals(a.run_dir), _evals(b.run_dir)
    assert [x["step"] for x in ea] == [x["step"] for x in eb] == [1, 2, 3, 4]
    # same seed: the same evaluation frames and the same weights, so the same metric
    assert all(x["fer"] == y["fer"] for x, y in zip(ea, eb, strict=True))
