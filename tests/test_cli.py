"""The command line as scripts use it: JSON on stdout, usage errors with exit code 2, dry runs
that write nothing, ad-hoc runs outside the planned studies, and a quiet closed pipe."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOOD_SUBMISSION

from harness import checkpoint, cli, records
from harness.collect import collect
from harness.sweep import plan_jobs, split_pending


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_list_json_is_one_object(capsys):
    assert cli.main(["list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # nothing else on stdout
    assert out["hardware_class"] == records.hardware_class()
    names = {(w["workload"], w["variant"]) for w in out["workloads"]}
    assert ("ldpc", "smoke") in names and ("ldpc", "default") in names
    subs = {s["submission"]: s for s in out["submissions"]}
    assert subs["nms_baseline"]["workloads"] == ["ldpc"] and subs["adamw"]["workloads"] is None


def test_run_json_is_ad_hoc_and_leaves_the_planned_slots_free(tmp_path, make_submission, capsys):
    runs = tmp_path / "runs"
    sub = make_submission("good", GOOD_SUBMISSION)
    args = ["run", "ldpc", str(sub), "--variant", "smoke", "--runs", str(runs)]
    assert cli.main([*args, "--budget-s", "1.5", "--json", "-q"]) == 0  # -q after the command
    out, err = capsys.readouterr()
    run = json.loads(out)
    run_dir = Path(run["run_dir"])
    assert run["adhoc"] is True and run["study"] is None and run["trial"] == 0
    assert run_dir.parent.name == "adhoc" and run["status"] == "budget_exhausted"
    assert "run directory:" in err  # the human summary goes to stderr with --json
    assert (run_dir / "steps.csv").is_file()
    assert not checkpoint.path_for(run_dir).exists()  # finished: removed by default
    # a planned trial of a sweep over the same runs still has its slot
    jobs = plan_jobs(runs, ["ldpc"], [str(sub)], "smoke", studies=1, trials=1, save=False)
    todo, done = split_pending(jobs, dry_run=True)
    assert len(todo) == 1 and not done
    # collect keeps ad-hoc runs out of the ranked frames, and says so
    res = collect(runs)
    assert res.trials.empty and res.adhoc == [run_dir] and not res.problems
    # --study/--trial place a run by hand in a study, as before
    assert cli.main([*args, "--budget-s", "0.5", "--trial", "0", "-q", "--keep-checkpoints"]) == 0
    placed = records.trial_dir(runs, records.hardware_class(), "ldpc", "smoke", "good", 0, 0)
    assert records.read_run(placed)["study"] == 0
    assert len(collect(runs).trials) == 1


def test_status_json(tmp_path, capsys):
    runs = tmp_path / "runs"
    plan_jobs(runs, ["ldpc"], ["nms_baseline"], "smoke", studies=2, trials=1)
    assert cli.main(["status", "--runs", str(runs), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"] == {
        "done": 0,
        "censored": 0,
        "running": 0,
        "resumable": 0,
        "failed": 0,
        "pending": 2,
    }
    (row,) = out["rows"]
    assert (row["workload"], row["submission"], row["pending"]) == ("ldpc", "nms_baseline", 2)


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--workloads"],
        ["bench", "--submissions"],
        ["sweep", "--executor", "debug", "--workloads"],
        ["report", "--submissions"],
        ["run", "ldpc", "nms_baseline", "--hparams", "lr=1", "eta=0"],  # one value each
        ["status", "--submissions-dir", "/no/such/folder"],
    ],
    ids=["bench-workloads", "bench-submissions", "sweep", "report", "hparams", "subdir"],
)
def test_usage_errors_exit_2_before_anything_runs(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: ttr" in err and "Traceback" not in err
    if "eta=0" in argv:
        assert "--hparams eta=0" in err  # the fix, spelled out
    assert not (tmp_path / "runs").exists()


def test_hparams_never_swallow_the_positionals():
    args = cli.build_parser().parse_args(
        ["run", "--hparams", "lr=1e-3", "--hparams", "eta=0", "ldpc", "nms_baseline"]
    )
    assert (args.workload, args.submission) == ("ldpc", "nms_baseline")
    assert cli.parse_hparams(args.hparams) == {"lr": 1e-3, "eta": 0}


def test_submissions_dirs_are_checked_and_prepended(tmp_path, monkeypatch, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    monkeypatch.setenv("TTR_SUBMISSIONS", "/old")
    argv = ["--submissions-dir", str(a), "status", "--runs", str(tmp_path), "-q"]
    assert cli.main([*argv, "--submissions-dir", str(b)]) == 0
    assert os.environ["TTR_SUBMISSIONS"] == os.pathsep.join([str(a), str(b), "/old"])
    assert "no runs and no plans here" in capsys.readouterr().out


def test_version_and_help(capsys):
    import harness

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"ttr {harness.__version__}"
    parser = cli.build_parser()
    subs = parser._subparsers._group_actions[0].choices
    for name, p in subs.items():
        text = p.format_help()
        assert "exit codes:" in text and "2  bad usage" in text, name
    assert "(default: 3)" in subs["bench"].format_help()  # --studies
    assert "(default: 2.0)" in subs["bench"].format_help()  # --hours
    assert "(default: 5)" in subs["sweep"].format_help()  # --trials
    assert "(default: runs)" in subs["status"].format_help()


def test_bench_dry_run_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    argv = ["--workloads", "ldpc", "--submissions", "nms_baseline", "--variant", "smoke"]
    argv += ["--studies", "2"]
    assert cli.main(["bench", *argv, "--runs", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not runs.exists() and not (tmp_path / "leaderboards").exists()
    assert "self-tuning: each method at its defaults" in out and "looks of 2, 3, 5, 8, 12" in out
    assert "2 trials over 1 (workload, submission) pairs: 0 already done, 2 to run" in out
    # smoke: 2 x 4 s x 1.5 (self-tuning) of budget, and per trial an allowance of 30 s + 50% of
    # the budget
    assert "device time, at most: 1.3 min = 12 s of training budgets (cpu)" in out
    assert "+ 1.1 min: an allowance for setup and evaluation of ldpc" in out
    # with a saved plan and one finished trial: that trial is done, its overhead is measured
    jobs = plan_jobs(runs, ["ldpc"], ["nms_baseline"], "smoke", studies=2, trials=1,
                     self_tuning=True)  # fmt: skip
    d = jobs[0].run_dir(records.hardware_class())
    records.write_json(
        d / records.RUN_JSON,
        {"workload": "ldpc", "variant": "smoke", "status": "budget_exhausted",
         "wall_time_s": 10.0, "train_time_s": 4.0},
    )  # fmt: skip
    before = [(p, p.stat().st_mtime_ns) for p in _files(runs)]
    assert cli.main(["bench", *argv, "--runs", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 already done, 1 to run" in out
    assert "device time, at most: 12 s = 6 s of training budgets (cpu)" in out
    assert [(p, p.stat().st_mtime_ns) for p in _files(runs)] == before
    argv_sw = ["sweep", "--executor", "slurm", "--gpus", "1", "--studies", "2", "--self-tuning"]
    assert cli.main([*argv_sw, *argv[:-2], "--runs", str(runs), "--dry-run"]) == 0
    assert "of training budgets (gpu)" in capsys.readouterr().out
    assert [(p, p.stat().st_mtime_ns) for p in _files(runs)] == before


_REPORT_FILTERS = (
    "variant"
    in inspect.signature(
        __import__("harness.report", fromlist=["write_report"]).write_report
    ).parameters
)


@pytest.mark.slow  # the CI's slow step runs it; the default run stays under 15 min
@pytest.mark.skipif(
    not _REPORT_FILTERS, reason="harness.report.write_report has no variant/workloads filters yet"
)
def test_a_partial_bench_never_writes_leaderboards(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    argv = ["bench", "--workloads", "ldpc", "--submissions", "nms_baseline", "--variant", "smoke"]
    assert cli.main([*argv, "--studies", "2", "--max-studies", "2", "--runs", str(runs), "-q"]) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "leaderboards").exists()
    assert (runs / "leaderboard" / "README.md").is_file() and str(runs / "leaderboard") in out
    # a report that matches no finished run fails before writing anything
    code = cli.main(["report", "--runs", str(runs), "--workloads", "snn", "--out", "x"])
    assert code == 2 and not (tmp_path / "x").exists()


def test_a_closed_pipe_is_quiet(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "status", "--runs", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(cli.__file__).resolve().parents[1],
    )
    proc.stdout.close()  # the reader is gone before ttr writes (like `| head` after a line)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_progress_bars_draw_when_enabled(capsys):
    with cli.run_progress("ldpc/smoke x", disable=False) as update:
        update(10, 1.0, 4.0)
        update(20, 2.5, 4.0)
    with cli.sweep_progress(3, disable=False) as update:
        update(1, 3, 2)
        update(3, 3, 0)
    err = capsys.readouterr().err
    assert "ldpc/smoke x:  62%" in err and "2/4 s of training" in err and "step 20" in err
    assert "sweep: 100%" in err and "3/3" in err
    with cli.run_progress("quiet", disable=True) as update:
        update(1, 1.0, 2.0)
    assert capsys.readouterr().err == ""
