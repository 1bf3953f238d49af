"""Fault cases of claims, sweeps, records and input (issue 18, part R2), through real processes.

Claims: exclusive creation, live/stale judged by pid + process start time on one host and by the
filesystem's mtime across hosts, stale claims broken by exactly one of many racing processes.
Sweeps: two runs released together train a trial once; a sweep killed by SIGTERM leaves an orphan
that the re-run waits for and counts against --parallelism; --retry-failed keeps the failed
record; a garbage run.json is named, never fatal. Records: ``collect``/``report`` refuse records
that contradict their spec or their own evaluations. Input: bad names, hyperparameters and
--runs folders end with exit code 2 before anything is written.

Every trial here is bounded by steps (a submission that ends training at its first step, or one
that waits for a gate file the test opens), never by the machine's speed.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GOOD_SUBMISSION

from harness import cli, records
from harness.collect import collect
from harness.report import write_report
from harness.runner import RunConfig, run_trial

HW = records.hardware_class()
POLL_LIMIT_S = 180  # only a bound on waiting for another process; no assertion on speed

# Ends training at its first step: a finished trial (status "complete") after one evaluation.
QUICK = """
from harness.api import TrainingComplete

def init(workload, model, hparams, rng):
    return {}

def update(workload, model, state, batch, hparams, step, rng):
    raise TrainingComplete
"""

# Fails while FLAG exists, else ends at its first step.
FLAKY = """
import os
from harness.api import TrainingComplete

def init(workload, model, hparams, rng):
    return {{}}

def update(workload, model, state, batch, hparams, step, rng):
    if os.path.exists({flag!r}):
        raise RuntimeError("flaky: the flag is up")
    raise TrainingComplete
"""

# Blocks its first step until GATE exists, then ends: a trial that is live as long as the test
# wants it to be.
GATED = """
import os
import time
from harness.api import TrainingComplete

def init(workload, model, hparams, rng):
    return {{}}

def update(workload, model, state, batch, hparams, step, rng):
    while not os.path.exists({gate!r}):
        time.sleep(0.01)
    raise TrainingComplete
"""


def _wait_for(cond, what: str) -> None:
    deadline = time.monotonic() + POLL_LIMIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- claims ---------------------------------------------------------------------------------


def _dead_pid() -> tuple[int, int | None]:
    """The pid and start time of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = records._proc_start(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, started


def _write_claim(run_dir: Path, age_s: float = 0.0, **content) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / records.CLAIM_JSON
    base = {"host": socket.gethostname(), "pid": 1, "nonce": "theirs", "refresh_s": 10.0}
    path.write_text(json.dumps(base | content))
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_a_claim_is_exclusive_refreshed_and_released(tmp_path):
    d = tmp_path / "trial_0"
    assert records.claim_state(d) == "none"
    with records.claim_trial(d, refresh_s=0.05) as claim:
        held = json.loads((d / records.CLAIM_JSON).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert held["start_time"] == records._proc_start(os.getpid())
        assert records.claim_state(d) == "live"
        with pytest.raises(records.ClaimHeld, match=f"pid {os.getpid()}"):
            records.claim_trial(d)
        _wait_for(
            lambda: (
                json.loads((d / records.CLAIM_JSON).read_text() or "{}").get("heartbeat_unix", 0)
                > held["heartbeat_unix"]
            ),
            "the claim's heartbeat",
        )
        assert not claim.lost
    assert records.claim_state(d) == "none" and list(d.iterdir()) == []


def test_claim_states_on_this_host_and_another(tmp_path):
    pid, started = _dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_start = records._proc_start(sleeper.pid)
        cases = {
            "dead pid": ({"pid": pid, "start_time": started}, 0, "stale"),
            "live pid": ({"pid": sleeper.pid, "start_time": live_start}, 0, "live"),
            "reused pid": ({"pid": sleeper.pid, "start_time": (live_start or 0) + 1}, 0, "stale"),
            "other host, fresh": ({"host": "login-node-7", "pid": 2}, 0, "live"),
            "other host, old": ({"host": "login-node-7", "pid": 2}, 3600, "stale"),
        }
        for name, (content, age, expected) in cases.items():
            d = tmp_path / name.replace(" ", "_").replace(",", "")
            _write_claim(d, age, **content)
            assert records.claim_state(d) == expected, name
            assert records.writer_alive(d) == (expected == "live"), name
            if expected == "live":
                with pytest.raises(records.ClaimHeld):
                    records.claim_trial(d)
            else:
                with records.claim_trial(d):
                    assert json.loads((d / records.CLAIM_JSON).read_text())["pid"] == os.getpid()
        torn = tmp_path / "torn"  # a claim being written: empty, judged by its mtime
        torn.mkdir()
        (torn / records.CLAIM_JSON).write_text("")
        assert records.claim_state(torn) == "live"
        os.utime(torn / records.CLAIM_JSON, (time.time() - 3600,) * 2)
        assert records.claim_state(torn) == "stale"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_requeued_slurm_job_breaks_its_own_earlier_claim(tmp_path, monkeypatch):
    d = tmp_path / "trial_0"
    _write_claim(d, host="node-1", pid=77, slurm_job_id="4242")  # fresh: live for others
    assert records.claim_state(d) == "live"
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    assert records.claim_state(d) == "live"  # another job's claim
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # the same job, requeued on another node
    assert records.claim_state(d) == "stale"
    with records.claim_trial(d):
        assert json.loads((d / records.CLAIM_JSON).read_text())["slurm_job_id"] == "4242"


def test_a_claim_taken_over_is_never_overwritten_or_removed(tmp_path):
    d = tmp_path / "trial_0"
    claim = records.claim_trial(d, refresh_s=3600)
    theirs = _write_claim(d, host="compute-3", nonce="theirs")  # as a breaker would leave it
    before = theirs.read_bytes()
    assert claim.refresh() is False
    claim.release()
    assert theirs.read_bytes() == before


def _race(run_dir: str, barrier, results, hold) -> None:
    barrier.wait()
    try:
        claim = records.claim_trial(Path(run_dir), refresh_s=0.05)
    except records.ClaimHeld:
        results.put("held")
        return
    results.put("won")
    hold.wait(POLL_LIMIT_S)  # hold it until every racer has answered
    claim.release()


@pytest.mark.parametrize("before", ["no claim", "dead pid", "other host, old"])
def test_of_racing_processes_exactly_one_claims(tmp_path, before):
    d = tmp_path / "trial_0"
    if before == "dead pid":
        pid, started = _dead_pid()
        _write_claim(d, pid=pid, start_time=started)
    elif before == "other host, old":
        _write_claim(d, age_s=3600, host="login-node-7")
    n = 6
    ctx = mp.get_context("fork")
    barrier, results, hold = ctx.Barrier(n), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_race, args=(str(d), barrier, results, hold)) for _ in range(n)]
    for p in procs:
        p.start()
    answers = [results.get(timeout=POLL_LIMIT_S) for _ in range(n)]
    hold.set()
    for p in procs:
        p.join(POLL_LIMIT_S)
    assert sorted(answers) == ["held"] * (n - 1) + ["won"]
    assert records.claim_state(d) == "none"  # released by the winner
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no debris


def _run_cli(argv: list[str], barrier, codes) -> None:
    barrier.wait()
    codes.put(cli.main(argv))


def test_two_runs_released_together_train_a_trial_once(tmp_path, make_submission):
    sub = make_submission("quick", QUICK)
    runs = tmp_path / "runs"
    argv = ["run", "ldpc", str(sub), "--variant", "smoke", "--runs", str(runs), "-q"]
    argv += ["--study", "0", "--trial", "0"]
    ctx = mp.get_context("spawn")  # two fresh interpreters, as two `ttr run`s would be
    barrier, codes = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_run_cli, args=(argv, barrier, codes)) for _ in range(2)]
    for p in procs:
        p.start()
    got = sorted(codes.get(timeout=POLL_LIMIT_S) for _ in range(2))
    for p in procs:
        p.join(POLL_LIMIT_S)
    assert got == [0, 2]  # one trained it; the other found it claimed (or finished)
    d = records.trial_dir(runs, HW, "ldpc", "smoke", "quick", 0, 0)
    run = records.read_run(d)
    assert run["status"] == "complete" and run["attempts"] == 1
    finished = _tree(runs)
    assert cli.main(argv) == 2  # a third: the finished record is never touched
    assert _tree(runs) == finished


# -- sweeps ---------------------------------------------------------------------------------


def _sweep_args(runs: Path, sub: Path, *extra: str, executor: str = "debug") -> list[str]:
    return [
        "sweep",
        "--executor",
        executor,
        "--workloads",
        "ldpc",
        "--submissions",
        str(sub),
        "--variant",
        "smoke",
        "--studies",
        "1",
        "--no-test-eval",
        "--runs",
        str(runs),
        "-q",
        *extra,
    ]


def test_sigterm_to_a_sweep_then_the_rerun_waits_for_the_orphan(tmp_path, make_submission, capsys):
    """The killed sweep's local trial goes on (submitit's local jobs outlive it); the re-run
    counts it as running elsewhere, not finished, and with --parallelism 1 starts nothing else
    while it runs; once it ends, a re-run finishes the plan and nothing was trained twice."""
    gate = tmp_path / "gate"
    sub = make_submission("gated", GATED.format(gate=str(gate)))
    runs = tmp_path / "runs"
    args = _sweep_args(runs, sub, "--trials", "2", "--parallelism", "1", executor="local")
    sweep = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trial = [records.trial_dir(runs, HW, "ldpc", "smoke", "gated", 0, t) for t in (0, 1)]
    try:
        _wait_for(  # claimed and recorded: status reads the record, under load it lags
            lambda: (
                records.claim_state(trial[0]) == "live" and (trial[0] / records.RUN_JSON).is_file()
            ),
            "the first trial's claim and record",
        )
        sweep.send_signal(signal.SIGTERM)
        sweep.wait(POLL_LIMIT_S)
        assert records.claim_state(trial[0]) == "live"  # the orphan runs on, blocked at step 0
        assert cli.main(["status", "--runs", str(runs), "--json"]) == 0
        totals = json.loads(capsys.readouterr().out)["totals"]
        assert totals == {
            "done": 0,
            "censored": 0,
            "running": 1,
            "resumable": 0,
            "failed": 0,
            "pending": 1,
        }
        code = cli.main([*args, "--deadline-min", "0.01"])
        out = capsys.readouterr().out
        assert code == 1
        assert "0 finished (skipped), 1 running elsewhere (waited for), 1 to run" in out
        assert "1 never started" in out and "not started: ldpc/smoke gated study 0 trial 1" in out
        assert not trial[1].exists()  # the one slot was the orphan's
    finally:
        gate.write_text("open")
    _wait_for(lambda: records.claim_state(trial[0]) == "none", "the orphan to finish")
    assert cli.main(_sweep_args(runs, sub, "--trials", "2")) == 0
    assert "1 finished (skipped), 0 running elsewhere (waited for), 1 to run" in (
        capsys.readouterr().out
    )
    for d in trial:
        run = records.read_run(d)
        assert run["status"] == "complete" and run["attempts"] == 1, run


def test_retry_failed_keeps_the_failed_record(tmp_path, make_submission, capsys):
    flag = tmp_path / "flag"
    flag.write_text("up")
    sub = make_submission("flaky", FLAKY.format(flag=str(flag)))
    runs = tmp_path / "runs"
    args = _sweep_args(runs, sub, "--trials", "1")
    assert cli.main(args) == 0  # a failed trial is done: a sweep finishes
    d = records.trial_dir(runs, HW, "ldpc", "smoke", "flaky", 0, 0)
    failed = records.read_run(d)
    assert failed["status"] == "failed" and "flag is up" in failed["reason"]
    failed_bytes = (d / records.RUN_JSON).read_bytes()
    flag.unlink()
    assert cli.main(args) == 0  # without --retry-failed: skipped, untouched
    assert (d / records.RUN_JSON).read_bytes() == failed_bytes
    capsys.readouterr()
    assert cli.main([*args, "--retry-failed"]) == 0
    assert "(1 failed ones again)" in capsys.readouterr().out
    assert records.read_run(d)["status"] == "complete"
    kept = d / records.FAILED_ATTEMPTS / "0"
    assert (kept / records.RUN_JSON).read_bytes() == failed_bytes and (kept / "log.txt").is_file()
    res = collect(runs)  # the history is in no frame and no problem; the retry is ranked
    assert len(res.trials) == 1 and not res.problems


@pytest.mark.parametrize("garbage", ['{"schema": 1, "workl', "[1, 2, 3]", "\xff\xfe"])
def test_garbage_in_a_run_json_is_named_never_fatal(tmp_path, make_submission, capsys, garbage):
    sub = make_submission("quick", QUICK)
    runs = tmp_path / "runs"
    args = _sweep_args(runs, sub, "--trials", "2")
    assert cli.main(args) == 0
    bad = records.trial_dir(runs, HW, "ldpc", "smoke", "quick", 0, 1) / records.RUN_JSON
    bad.write_bytes(garbage.encode("latin-1"))
    capsys.readouterr()
    assert cli.main(["status", "--runs", str(runs)]) == 0
    assert f"trial_1: unreadable run.json ({bad}" in capsys.readouterr().out
    assert cli.main(["collect", "--runs", str(runs), "--out", str(tmp_path / "r.parquet")]) == 0
    assert f"skipped: {bad.parent}: corrupt run.json" in capsys.readouterr().err
    assert cli.main([*args, "--dry-run"]) == 0
    assert cli.main(args) == 0  # the garbage is moved aside (kept) and the trial rerun
    err = capsys.readouterr().err
    assert f"problem: {bad}: not" in err and "moved aside" in err
    assert records.read_run(bad.parent)["status"] == "complete"
    (aside,) = bad.parent.parent.glob("trial_1.corrupt-*")
    assert (aside / records.RUN_JSON).read_bytes() == garbage.encode("latin-1")


# -- records are the referee's: collect and report refuse contradictions ------------------


@pytest.fixture(scope="module")
def real_trial(tmp_path_factory) -> Path:
    """One real finished record of ldpc/smoke (status complete, one evaluation)."""
    tmp = tmp_path_factory.mktemp("real")
    folder = tmp / "subs" / "quick"
    folder.mkdir(parents=True)
    (folder / "submission.py").write_text(QUICK)
    (folder / "search_space.json").write_text("{}")
    (folder / "README.md").write_text("---\nworkloads: [ldpc]\n---\n# quick\n")
    res = run_trial(RunConfig("ldpc", str(folder), variant="smoke", runs=tmp / "runs", trial=0))
    assert res.status == "complete", res.reason
    return res.run_dir


def _forge(real: Path, runs: Path, trial: int, edit) -> Path:
    """A copy of the real record as trial ``trial``, changed by ``edit(run, rows)``."""
    d = records.trial_dir(runs, HW, "ldpc", "smoke", "quick", 0, trial)
    shutil.copytree(real, d)
    run = records.read_run(d)
    rows = [json.loads(x) for x in (d / records.EVALS_JSONL).read_text().splitlines()]
    run["trial"] = trial
    edit(run, rows)
    records.write_json(d / records.RUN_JSON, run)
    records.write_jsonl(d / records.EVALS_JSONL, rows)
    return d


def _set(**kv):
    return lambda run, rows: run.update(kv)


def _cheat_0001(run, rows):  # the issue's: reached_target at 0.001 s, evaluations unchanged
    run.update(status="reached_target", time_to_target_s=0.001, prev_eval_train_time_s=0.0)


def _met_row_wrong_time(run, rows):  # the evaluation really meets it, but not at 0.001 s
    rows[0]["fer_upper95"] = 0.0
    _cheat_0001(run, rows)


def _row_claims_met(run, rows):
    rows[0]["met_target"] = True
    run.update(status="reached_target", time_to_target_s=rows[0]["train_time_s"])


def _spec_target(run, rows):
    run["spec"]["target"] = 0.5


FORGERIES = {
    "target": (_set(target=0.5), "target 0.5: the spec of ldpc/smoke says 0.02"),
    "direction": (_set(direction="max"), "direction 'max': the spec of ldpc/smoke says 'min'"),
    "metric": (_set(metric="ber"), "metric 'ber': the spec of ldpc/smoke says 'fer_upper95'"),
    "spec.target": (_spec_target, "spec.target 0.5: the spec of ldpc/smoke says 0.02"),
    "budget": (_set(budget_s=400.0), "budget_s 400 exceeds the cpu budget of ldpc/smoke (4)"),
    "over budget": (_set(train_time_s=30.0, steps=10, s_per_step=3.0), "is over the budget 4 s"),
    "negative": (_set(wall_time_s=-1.0), "negative wall_time_s (-1.0)"),
    "reached 0.001 s": (_cheat_0001, "reached_target, but no evaluation's fer_upper95 meets"),
    "not the first met": (_met_row_wrong_time, "time_to_target_s 0.001 is not the training"),
    "row says met": (_row_claims_met, "evaluation 0 says met_target, but its fer_upper95"),
}


def test_collect_and_report_refuse_contradicting_records(real_trial, tmp_path):
    runs = tmp_path / "runs"
    honest = _forge(real_trial, runs, 0, lambda run, rows: None)
    forged = {name: _forge(real_trial, runs, i + 1, e) for i, (name, (e, _)) in
              enumerate(FORGERIES.items())}  # fmt: skip
    res = collect(runs)
    assert list(res.trials.run_dir) == [str(honest)]  # only the honest record is ranked
    by_dir = {Path(p.path): p.reason for p in res.problems}
    assert set(by_dir) == set(forged.values())
    for name, d in forged.items():
        assert FORGERIES[name][1] in by_dir[d], (name, by_dir[d])
        assert by_dir[d].endswith("not ranked")
    rep = write_report(runs, tmp_path / "board", variant="smoke", n_resamples=50)
    problems = rep.readme.read_text().split("## Problems", 1)[1]
    for d in forged.values():
        assert str(d) in problems
    assert list(rep.board.trials.run_dir) == [str(honest)]


# -- bad input: refused before anything is written ------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "ldpcc", "nms_baseline"], "unknown workload 'ldpcc'"),
        (["run", "ldpc", "nms_baselin"], "unknown submission 'nms_baselin'"),
        (["run", "ldpc", "nms_baseline", "--variant", "smok"], "has no variant 'smok'"),
        (["run", "ldpc", "nms_baseline", "--hparams", "lrr=0.1"], "unknown hyperparameters"),
        (["run", "ldpc", "nms_baseline", "--hparams", "lr=abc"], "'abc' is not a number"),
        (["run", "ldpc", "nms_baseline", "--hparams", "lr=100"], "is outside"),
        (["run", "ldpc", "nms_baseline", "--budget-s", "-1"], "--budget-s must be a positive"),
        (["run", "ldpc", "nms_baseline", "--trial", "-1"], "--trial must be 0 or more"),
        (["sweep", "--executor", "debug", "--workloads", "ldpcc"], "unknown workload"),
        (["sweep", "--executor", "debug", "--submissions", "nope"], "unknown submission"),
        (["sweep", "--executor", "debug", "--variant", "smok"], "has no variant"),
        (["bench", "--workloads", "ldpc", "--submissions", "nope"], "unknown submission"),
        (["sweep", "--executor", "local", "--parallelism", "0"], "--parallelism must be"),
        (["bench", "--studies", "1"], "looks need 2 <= first <= last"),
        (["bench", "--hours", "0"], "--hours must be more than 0"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, capsys, argv, message):
    runs = tmp_path / "runs"
    assert cli.main([*argv, "--runs", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not runs.exists()


def test_hyperparameters_outside_the_space_use_up_no_trial(tmp_path, make_submission, capsys):
    space = {
        "lr": {"min": 1e-3, "max": 1e-1, "scaling": "log", "default": 1e-2},
        "batch": {"min": 16, "max": 64, "type": "int"},
        "loss": ["bce", "fer"],
    }
    sub = make_submission("good", GOOD_SUBMISSION, space=json.dumps(space))
    runs = tmp_path / "runs"
    base = ["run", "ldpc", str(sub), "--variant", "smoke", "--runs", str(runs)]
    for hp, message in [
        ("batch=32.5", "32.5 is not an integer"),
        ("batch=true", "True is not a number"),
        ("loss=mse", "'mse' is not one of ['bce', 'fer']"),
        ("lr=nan", "is not a"),
        ("momentum=0.9", "unknown hyperparameters ['momentum']"),
    ]:
        assert cli.main([*base, "--hparams", hp]) == 2, hp
        assert message in capsys.readouterr().err, hp
    (tmp_path / "hp.json").write_text("[1]")
    assert cli.main([*base, "--hparams", str(tmp_path / "hp.json")]) == 2
    assert not runs.exists()


@pytest.mark.parametrize("command", ["status", "collect", "report"])
def test_a_missing_or_file_runs_folder_is_refused(tmp_path, capsys, command):
    assert cli.main([command, "--runs", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert cli.main([command, "--runs", str(tmp_path / "afile")]) == 2
    assert "a file, not a records folder" in capsys.readouterr().err


def test_a_broken_submission_fails_only_its_own_pairs(tmp_path, make_submission, capsys):
    good = make_submission("quick", QUICK)
    broken_space = make_submission("badspace", QUICK, space='{"n": {"min": 1.5, "max": 4, '
                                   '"type": "int"}}')  # fmt: skip
    broken_import = make_submission("badimport", "import no_such_module_anywhere\n")
    runs = tmp_path / "runs"
    argv = _sweep_args(runs, good, "--trials", "1")
    i = argv.index("--submissions")
    argv[i + 1 : i + 2] = [str(good), str(broken_space), str(broken_import)]
    assert cli.main(argv) == 1  # the plan had problems: said, and the exit code says it
    err = capsys.readouterr().err
    assert "problem: ldpc x badspace: not planned:" in err and "type is int, but min is 1.5" in err
    assert "problem: ldpc x badimport: not planned:" in err and "failed to import" in err
    (ran,) = runs.glob("*/ldpc/smoke/*/study_0/trial_0/run.json")
    assert ran.parts[-4] == "quick" and records.read_run(ran.parent)["status"] == "complete"
