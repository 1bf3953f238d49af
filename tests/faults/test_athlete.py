"""Faults and cheats on the athlete's side, each a small submission run through the real
referee and athlete processes (no mocks), bounded by steps: the recorded status and reason, and
no other record touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import checkpoint, records
from harness.discovery import repo_root
from harness.runner import STEPS_CSV, RunConfig, _athlete_ids, run_trial
from workloads.ldpc import SPECS, LdpcWorkload

# A quick step: no data, no gradient; the faults below replace one line of it.
QUICK = """
import os, signal, sys, time, threading
import torch

def get_batch_size(workload):
    return 4

def init(workload, model, hparams, rng):
    return {"n": 0}

def data_selection(workload, streams, state, step, rng):
    return None

def update(workload, model, state, batch, hparams, step, rng):
    # FAULT
    state["n"] += 1
    return state
"""


def quick(fault: str = "", init: str = "") -> str:
    src = QUICK.replace("    # FAULT\n", "".join(f"    {line}\n" for line in fault.splitlines()))
    if init:
        src = src.replace('    return {"n": 0}', "".join(f"    {ln}\n" for ln in init.splitlines()))
    return src


def _cfg(tmp_path: Path, sub: Path, **kw) -> RunConfig:
    base = dict(budget_s=600.0, eval_every_s=1000.0, final_test_eval=False, max_steps=4)
    return RunConfig("ldpc", str(sub), variant="smoke", runs=tmp_path / "runs", **{**base, **kw})


@pytest.fixture
def bystander(tmp_path):
    """A finished record of another trial in the same tree: no fault may change it."""
    d = records.trial_dir(
        tmp_path / "runs", records.hardware_class(), "ldpc", "smoke", "other", 0, 0
    )
    records.write_json(d / records.RUN_JSON, {"status": "reached_target", "train_time_s": 1.0})
    before = {p: p.read_bytes() for p in d.rglob("*")}
    yield d
    assert {p: p.read_bytes() for p in d.rglob("*")} == before, "another record changed"


def _run(tmp_path, make_submission, source, name="fault", **kw):
    return run_trial(_cfg(tmp_path, make_submission(name, source), **kw))


@pytest.mark.parametrize(
    "fault,reason",
    [
        ("if step == 1:\n    sys.exit(3)", "exited with code 3 at step 1"),
        ("if step == 1:\n    os._exit(0)", "exited with code 0 at step 1"),
        ("if step == 1:\n    os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9"),
        ("if step == 1:\n    return None", "update returned None at step 1"),
        ("if step == 1:\n    workload.evaluate(model, 'validation')", "has no 'evaluate'"),
        ("if step == 1:\n    workload.splits", "has no 'splits'"),
    ],
    ids=["sys-exit-3", "os-exit-0", "sigkill-self", "update-returns-none", "evaluate", "splits"],
)
def test_a_fault_in_update_fails_the_trial_with_its_reason(
    tmp_path, make_submission, bystander, fault, reason
):
    res = _run(tmp_path, make_submission, quick(fault))
    assert res.status == "failed" and reason in res.reason, res.reason
    run = records.read_run(res.run_dir)
    assert run["status"] == "failed" and run["athlete"]["pid"] and run["clock"] == "referee"
    assert len((res.run_dir / records.EVALS_JSONL).read_text().splitlines()) == 1  # at step 1


def test_a_hang_in_update_is_ended_by_the_watchdog(tmp_path, make_submission, bystander):
    res = _run(tmp_path, make_submission, quick("if step == 1:\n    time.sleep(3600)"),
               watchdog_s=2.0, eval_every_s=0.0)  # fmt: skip
    assert res.status == "failed", res.reason
    assert res.reason.startswith("no step boundary within 2 s at step 1"), res.reason
    assert res.summary["athlete"]["signal"] == signal.SIGKILL


def test_get_batch_size_zero_is_the_submissions_failure(tmp_path, make_submission, bystander):
    res = _run(tmp_path, make_submission, quick().replace("return 4", "return 0"))
    assert res.status == "failed"
    assert res.reason == "get_batch_size returned 0; it must return a positive integer"


def test_a_patched_clock_in_the_athlete_changes_nothing_recorded(
    tmp_path, make_submission, bystander
):
    patch = "time.perf_counter = lambda: 0.0\ntime.perf_counter_ns = lambda: 0\nreturn {'n': 0}"
    res = _run(tmp_path, make_submission, quick("time.sleep(0.05)", init=patch), watchdog_s=60.0)
    assert res.status == "complete", res.reason
    assert res.summary["train_time_s"] >= 4 * 0.05  # four 50 ms steps, whatever the athlete says
    rows = (res.run_dir / STEPS_CSV).read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]


def test_training_in_init_is_on_the_clock(tmp_path, make_submission, bystander):
    res = _run(tmp_path, make_submission, quick(init="time.sleep(1.0)\nreturn {'n': 0}"),
               max_steps=2)  # fmt: skip
    assert res.status == "complete", res.reason
    assert res.summary["train_time_s"] >= 1.0
    first = (res.run_dir / STEPS_CSV).read_text().splitlines()[1].split(",")
    assert float(first[1]) >= 1.0  # charged to the first step


# A thread that keeps counting (in w_ch[0]) while nothing else runs; update notes the count at
# the start of each step in w_cn[step] (smoke: 5 iterations, so 5 steps fit).
COUNTING = quick(
    "model.w_cn.data[step] = model.w_ch.data[0].item()\ntime.sleep(0.05)",
    init=(
        "def count():\n"
        "    while True:\n"
        "        model.w_ch.data[0] += 1\n"
        "        time.sleep(0.001)\n"
        "threading.Thread(target=count, daemon=True).start()\n"
        "return {'n': 0}"
    ),
)


def test_no_athlete_thread_runs_during_an_evaluation(
    tmp_path, make_submission, bystander, monkeypatch
):
    seen = []
    real = LdpcWorkload.evaluate

    def slow(self, model, split):  # the referee's evaluation, with the athlete stopped
        seen.append((float(model.w_ch[0]), model.w_cn.detach().clone()))
        time.sleep(1.0)  # a free second: a running thread would count about 1000 here
        return real(self, model, split)

    monkeypatch.setattr(LdpcWorkload, "evaluate", slow)
    res = _run(tmp_path, make_submission, COUNTING, eval_every_s=0.0, max_steps=5)
    rows = [json.loads(x) for x in (res.run_dir / records.EVALS_JSONL).read_text().splitlines()]
    assert res.status == "complete" and len(seen) == len(rows) >= 2, res.reason
    assert seen[-1][0] > seen[0][0] + 1, "the thread never ran"
    # from a boundary (the count handed over) to the start of the next step (noted by update
    # in w_cn[step]): the second stopped for the evaluation adds nothing
    final = seen[-1][1]
    pairs = zip(rows[:-1], seen[:-1], strict=True)
    gaps = [float(final[row["step"]]) - count for row, (count, _) in pairs]
    assert gaps and all(g < 50 for g in gaps), gaps


def test_the_facades_spec_is_a_copy(tmp_path, make_submission, bystander):
    cheat = quick(init="object.__setattr__(workload.spec, 'target', 1.0)\nreturn {'n': 0}")
    res = _run(tmp_path, make_submission, cheat, max_steps=2)
    assert res.status == "complete", res.reason  # the real target (0.02) was not met
    run = records.read_run(res.run_dir)
    assert run["target"] == SPECS["smoke"].target and run["spec"]["target"] == 0.02


def test_a_kernels_module_cannot_forge_a_parity_pass(tmp_path, make_submission, bystander):
    runs = tmp_path / "runs"
    sub = make_submission("forger", quick())
    (sub / "kernels").mkdir()
    (sub / "kernels" / "__init__.py").write_text(
        "import json, pathlib, torch\n"
        "from harness.api import Kernel\n"
        "from harness.kernels import parity_cache_key\n"
        "from workloads.ldpc.decoder import check_node_update\n"
        "def off(v2c, w):\n"
        "    return check_node_update(v2c, w) * 1.01\n"
        "KERNELS = [Kernel('off', 'ldpc.check_node_update', off)]\n"
        "key = parity_cache_key(pathlib.Path(__file__).parent.parent, 'ldpc',\n"
        "                       torch.device('cpu'))\n"
        f"cache = pathlib.Path({str(runs)!r}) / '.parity'\n"
        "try:\n"
        "    cache.mkdir(parents=True, exist_ok=True)\n"
        "    (cache / f'{key}.json').write_text(json.dumps({'key': key, 'results': []}))\n"
        "    WROTE = True\n"
        "except OSError:\n"
        "    WROTE = False\n"
    )
    res = run_trial(_cfg(tmp_path, sub))
    assert res.status == "failed" and "kernel off" in res.reason and "fails parity" in res.reason
    if _athlete_ids()[0] is not None:  # an unprivileged athlete cannot even write there
        assert not (runs / ".parity").exists() or not any((runs / ".parity").iterdir())


READS_RECORDS = quick(
    init=(
        "import pathlib\n"
        "runs = pathlib.Path(RUNS)\n"
        "try:\n"
        "    (runs / 'planted.txt').write_text('x')\n"
        "    wrote = 'wrote'\n"
        "except OSError as e:\n"
        "    wrote = type(e).__name__\n"
        "raise RuntimeError(f'cwd={os.getcwd()} write={wrote}')"
    )
)


def test_the_athlete_works_outside_the_records_tree(tmp_path, make_submission, bystander):
    runs = tmp_path / "runs"
    src = READS_RECORDS.replace("RUNS", repr(str(runs)))
    res = _run(tmp_path, make_submission, src)
    assert res.status == "failed" and "init raised at step 0: RuntimeError: cwd=" in res.reason
    cwd = Path(res.reason.split("cwd=")[1].split(" write=")[0])
    assert runs not in cwd.parents and cwd != runs and not cwd.exists()  # private, removed
    if _athlete_ids()[0] is not None:  # root, athlete unprivileged: no write into the tree
        assert res.reason.endswith("write=PermissionError") and not (runs / "planted.txt").exists()


# -- the referee interrupted: a real `ttr run` process and a real SIGINT -----------------------

INTERRUPTIBLE = quick(
    "if step == 2 and os.environ.get('TTR_TEST_HANG'):\n"
    "    time.sleep(3600)\n"
    "if step == 4:\n"
    "    from harness.api import TrainingComplete\n"
    "    raise TrainingComplete"
)


def test_sigint_to_the_referee_leaves_a_resumable_trial(tmp_path, make_submission, bystander):
    sub = make_submission("interruptible", INTERRUPTIBLE)
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "harness.cli", "run", "ldpc", str(sub), "--variant", "smoke",
            "--study", "0", "--trial", "0", "--budget-s", "600", "--runs", str(runs)]  # fmt: skip
    env = {**os.environ, "TTR_TEST_HANG": "1", "PYTHONPATH": str(repo_root())}
    # SIGINT as a terminal's Ctrl-C delivers it: a test run started as a background job (`&` in
    # a script) ignores SIGINT, and a child inherits that, so the child gets the default back
    sigint_default = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT, preexec_fn=sigint_default)  # fmt: skip
    run_dir = records.trial_dir(runs, records.hardware_class(), "ldpc", "smoke", sub.name, 0, 0)
    deadline = time.monotonic() + 240
    while not checkpoint.path_for(run_dir).is_file():  # the checkpoint at the first evaluation
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.1)
    time.sleep(1.0)  # the athlete is hanging at its third step now
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    run = records.read_run(run_dir)
    assert run["status"] == "interrupted" and "SIGINT" in run["reason"], run["reason"]
    assert run["train_time_s"] >= 1.0  # the hang was training time, lost since the checkpoint
    assert not records.is_finished(run_dir) and checkpoint.path_for(run_dir).is_file()

    env.pop("TTR_TEST_HANG")
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    run = records.read_run(run_dir)
    assert run["status"] == "complete" and run["attempts"] == 2, run["reason"]
    assert run["wasted_train_s"] >= 1.0 and run["train_time_s"] < run["wasted_train_s"] + 60
    rows = (run_dir / STEPS_CSV).read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5]
    assert json.loads((run_dir / records.RUN_JSON).read_text())["athlete"]["pid"] != proc.pid


def test_ttr_check_catches_an_update_that_forgets_its_return(make_submission, capsys):
    from harness.check import check_submission

    sub = make_submission("no_return", quick().replace("    return state\n", "    state\n"))
    assert not check_submission(str(sub))
    out = capsys.readouterr().out
    assert "[FAIL] 2 steps on ldpc/smoke: update returned None at step 0" in out, out


def test_a_truncated_checkpoint_restarts_the_trial(tmp_path, make_submission, bystander):
    sub = make_submission("restarted", quick())
    cfg = _cfg(tmp_path, sub, study=0, trial=0)
    run_dir = records.trial_dir(cfg.runs, records.hardware_class(), "ldpc", "smoke", sub.name, 0, 0)
    records.write_json(run_dir / records.RUN_JSON, {"status": "interrupted", "train_time_s": 2.5,
                                                    "attempts": 1, "segments": []})  # fmt: skip
    checkpoint.path_for(run_dir).write_bytes(b"PK\x03\x04 truncated")
    res = run_trial(cfg)
    assert res.status == "complete", res.reason
    run = records.read_run(run_dir)
    assert run["restarted"].startswith("checkpoint unreadable") and run["attempts"] == 2
    assert run["wasted_train_s"] == 2.5 and run["steps"] == 4


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state  # a zombie waiting for its new parent to reap it


def test_sigkill_of_the_referee_takes_its_athlete_and_the_trial_resumes(
    tmp_path, make_submission, bystander
):
    sub = make_submission("killed", INTERRUPTIBLE)
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "harness.cli", "run", "ldpc", str(sub), "--variant", "smoke",
            "--study", "0", "--trial", "0", "--budget-s", "600", "--runs", str(runs)]  # fmt: skip
    env = {**os.environ, "TTR_TEST_HANG": "1", "PYTHONPATH": str(repo_root())}
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    run_dir = records.trial_dir(runs, records.hardware_class(), "ldpc", "smoke", sub.name, 0, 0)
    deadline = time.monotonic() + 240
    while not checkpoint.path_for(run_dir).is_file():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    athlete = records.read_run(run_dir)["athlete"]["pid"]
    proc.kill()  # kill -9 of the trial's referee: no handler runs
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not _gone(athlete):  # the athlete dies with its referee (PR_SET_PDEATHSIG)
        assert time.monotonic() < deadline, "the athlete outlived its referee"
        time.sleep(0.1)
    assert records.read_run(run_dir)["status"] == "running"  # unfinished: never failed
    env.pop("TTR_TEST_HANG")
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    run = records.read_run(run_dir)
    assert run["status"] == "complete" and run["attempts"] == 2, run["reason"]
