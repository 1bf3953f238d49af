"""``ttr collect`` and ``ttr report`` on run directories written in the records format.

The fixture writes trials exactly as ``harness/records.py`` describes them (run.json keys, one
evals.jsonl row per evaluation, ``write_json`` / ``write_jsonl``), plus the broken cases a real
``runs/`` holds: a truncated evals.jsonl, a garbage run.json, a missing run.json, a run still in
progress and a run from another hardware class.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness import records
from harness.api import ContractError
from harness.collect import collect
from harness.report import fmt_interval, fmt_s, write_report

HW = "cpu-2core"
TARGET = 0.1  # err <= TARGET
BUDGET_S = 8.0


def write_trial(
    runs: Path,
    submission: str,
    study: int,
    trial: int,
    rate: float,  # err(t) = exp(-rate * t): the target is met at t = ln(10) / rate
    workload: str = "toy",
    hw: str = HW,
    status: str | None = None,
    s_per_step: float = 0.01,
) -> Path:
    """A finished (or ``status``) trial with evaluations every second of training time."""
    d = records.trial_dir(runs, hw, workload, "default", submission, study, trial)
    rows, ttt = [], None
    for i in range(int(BUDGET_S) + 1):
        t = float(i)
        err = math.exp(-rate * t)
        met = err <= TARGET
        rows.append(
            {
                "eval": i,
                "step": round(t / s_per_step),
                "train_time_s": t,
                "wall_time_s": 1.5 * t + 0.2,
                "eval_time_s": 0.1,
                "split": "validation",
                "met_target": met,
                "loss": 2 * err,
                "err": err,
                "acc": 1 - err,
            }
        )
        if met:
            ttt = t
            break
    last = rows[-1]
    status = status or ("reached_target" if ttt is not None else "budget_exhausted")
    run = {
        "schema": records.SCHEMA,
        "workload": workload,
        "variant": "default",
        "submission": submission,
        "study": study,
        "trial": trial,
        "seed": 1000 * study + trial,
        "hparams": {"lr": 0.01 * (trial + 1), "schedule": "cosine"},
        "spec": {"name": workload, "variant": "default", "metric": "err", "direction": "min"},
        "hardware_class": hw,
        "hardware": {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None, "torch": "2.13.0"},
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "versions": {"torch": "2.13.0"},
        "device": "cpu",
        "status": status,
        "reason": "non-finite loss" if status == "failed" else "",
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T00:00:20+00:00",
        "budget_s": BUDGET_S,
        "metric": "err",
        "direction": "min",
        "target": TARGET,
        "train_time_s": last["train_time_s"],
        "wall_time_s": last["wall_time_s"],
        "eval_time_s": 0.1 * len(rows),
        "steps": last["step"],
        "s_per_step": s_per_step,
        "time_to_target_s": ttt,
        "prev_eval_train_time_s": None if ttt is None else ttt - 1,
        "steps_to_target": None if ttt is None else last["step"],
        "evals": len(rows),
    }
    records.write_json(d / records.RUN_JSON, run)
    records.write_jsonl(d / records.EVALS_JSONL, rows)
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three submissions x two workloads x 3 studies x 2 trials, and one of each broken kind.

    "flaky" reaches the target on toy only; on toy2 it misses and one trial per study fails.
    """
    runs = tmp_path_factory.mktemp("runs")
    for workload, slow in (("toy", 1.0), ("toy2", 2.0)):
        for study in range(3):
            for trial in range(2):
                write_trial(runs, "fast", study, trial, (1.2 + 0.2 * study) / slow, workload)
                write_trial(runs, "slow", study, trial, (0.5 + 0.1 * trial) / slow, workload)
                failed = "failed" if workload == "toy2" and trial == 0 else None
                rate = 0.4 - 0.1 * study if workload == "toy" else 0.1
                write_trial(runs, "flaky", study, trial, rate, workload, status=failed)
    broken = {
        "truncated": write_trial(runs, "fast", 3, 0, 1.0),
        "garbage": write_trial(runs, "fast", 3, 1, 1.0),
        "missing": write_trial(runs, "slow", 3, 0, 1.0),
        "running": write_trial(runs, "slow", 3, 1, 1.0, status="running"),
        "other_hw": write_trial(runs, "fast", 0, 0, 5.0, hw="h100"),
    }
    evals = broken["truncated"] / records.EVALS_JSONL
    evals.write_text(evals.read_text()[:-25])  # cut the last row mid-object
    (broken["garbage"] / records.RUN_JSON).write_text('{"schema": 1, "workload": ')
    (broken["missing"] / records.RUN_JSON).unlink()
    return runs


def _problem(problems: list, path: Path) -> str:
    found = [p.reason for p in problems if Path(p.path) == path]
    assert len(found) == 1, f"{path} reported {len(found)} times: {problems}"
    return found[0]


def _broken(runs: Path, name: str) -> Path:
    where = {
        "truncated": ("fast", 3, 0),
        "garbage": ("fast", 3, 1),
        "missing": ("slow", 3, 0),
        "running": ("slow", 3, 1),
    }[name]
    return records.trial_dir(runs, HW, "toy", "default", *where)


def test_collect_frames_and_problems(runs: Path, tmp_path: Path) -> None:
    res = collect(runs, tmp_path / "all.parquet")
    ranked = res.trials
    assert len(ranked) == 3 * 2 * 3 * 2 + 1  # the intact grid plus the other-class run
    assert set(ranked.hardware_class) == {HW, "h100"}
    assert math.isinf(ranked.time_to_target_s.max())  # misses are explicit +inf
    for col in (
        "hardware_class",
        "workload",
        "variant",
        "submission",
        "study",
        "trial",
        "seed",
        "run_dir",
        "eval",
        "step",
        "train_time_s",
        "wall_time_s",
        "eval_time_s",
        "met_target",
        "err",
        "acc",
        "loss",
        "hp.lr",
        "hp.schedule",
        "git_commit",
        "git_dirty",
        "torch",
        "cpu",
        "gpu",
        "status",
        "ranked",
    ):
        assert col in res.evals, col
    assert "truncated: line" in _problem(res.problems, _broken(runs, "truncated"))
    assert "corrupt run.json" in _problem(res.problems, _broken(runs, "garbage"))
    assert "no run.json" in _problem(res.problems, _broken(runs, "missing"))
    assert "in progress" in _problem(res.problems, _broken(runs, "running"))
    truncated = res.evals[res.evals.run_dir == str(_broken(runs, "truncated"))]
    assert len(truncated) == 3 and not truncated.ranked.any()  # 4 rows written, 3 complete
    back = pd.read_parquet(res.parquet)
    assert len(back) == len(res.evals) and list(back.columns) == list(res.evals.columns)


def test_collect_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no runs directory"):
        collect(tmp_path / "nope")


def test_collect_reports_a_moved_run(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "fast", 0, 0, 1.0)
    moved = d.parent.parent / "study_7" / "trial_0"
    moved.parent.mkdir()
    d.rename(moved)
    res = collect(tmp_path)
    assert res.trials.empty
    assert "but the directory is" in _problem(res.problems, moved)


def test_records_moved_aside_for_a_rerun_are_history_not_problems(tmp_path: Path) -> None:
    """sort_jobs moves a contended, corrupt or interrupted record aside before the trial runs
    again: kept, in neither frame, and not listed as a problem on every board after."""
    d = write_trial(tmp_path, "fast", 0, 0, 1.0)
    for why in ("contended", "corrupt", "interrupted"):
        shutil.copytree(d, d.with_name(f"{d.name}.{why}-20261206T012618"))
    res = collect(tmp_path)
    assert len(res.trials) == 1 and not res.problems
    # a directory that only looks like one is still checked
    odd = d.with_name("trial_0.contended")
    shutil.copytree(d, odd)
    assert "but the directory is" in _problem(collect(tmp_path).problems, odd)


def test_a_rerun_not_yet_started_says_so(tmp_path: Path) -> None:
    """A contended record moved aside, its rerun planned but not started (the bench ran out of
    time): "left out" names the move, not a run that "never started its record"."""
    d = write_trial(tmp_path, "fast", 0, 0, 1.0)
    d.rename(d.with_name(f"{d.name}.contended-20261206T072549"))
    d.mkdir()  # the rerun's directory, before its record
    why = _problem(collect(tmp_path).problems, d)
    assert "moved aside (contended, trial_0.contended-20261206T072549)" in why
    assert "never started" not in why


@pytest.fixture(scope="module")
def report(runs: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("board")
    return write_report(runs, out, baseline="slow", n_resamples=500)


def test_report_ranks_one_class_and_lists_problems(runs: Path, report) -> None:
    assert report.hardware_class == HW  # the class with the most trials
    text = report.readme.read_text()
    assert f"hardware class `{HW}`" in text
    assert "3 x 2" in text  # studies x trials behind each number
    assert "| Best metric |" in text and "how close a miss came" in text
    assert (
        "This sweep: 3 studies x 2 trials for each of 6 (workload, submission) pairs on the "
        "`default` variant (36 trials, 3 failed)"
    ) in text  # the choice behind the numbers, at the top
    assert "fewer than 3 studies" not in text
    fastest = text.split("## Fastest per workload", 1)[1].split("##", 1)[0]
    rows = [r for r in fastest.splitlines() if r.startswith("| toy")]
    assert len(rows) == 2 and all("| fast | " in r for r in rows), rows  # one per workload
    assert all(0.5 <= float(r.split("|")[6]) <= 1.0 for r in rows), rows  # P(fastest < 2nd)
    assert all(r.split("|")[7].strip().startswith("fast: ") for r in rows), rows  # closest
    assert "95% interval of the median time (t interval on log study times" in text
    assert "| 1 | fast | 1.000 [" in text  # fast is the best on both workloads
    assert "Speed-up vs slow" in text
    problems = text.split("## Problems", 1)[1]
    for name in ("truncated", "garbage", "missing", "running"):
        assert str(_broken(runs, name)) in problems, name
    assert "hardware class h100, not cpu-2core" in problems
    assert set(report.board.trials.hardware_class) == {HW}


def test_report_files(report) -> None:
    names = sorted(p.name for p in report.figures)
    per = ["curves", "hparams", "p_faster", "time_to_target"]
    assert names == sorted(
        ["cost_ledger.svg", "performance_profile.svg"]
        + [f"{k}_{w}_default.svg" for k in per for w in ("toy", "toy2")]
    )
    for p in report.figures:
        assert (
            p.read_bytes().lstrip().startswith(b"<?xml") and p.parent == report.out_dir / "figures"
        )
        assert f"](figures/{p.name})" in report.readme.read_text()
    page = report.html.read_text()
    # verdicts, overall, fastest per workload, workloads, P(faster), ledger
    assert page.count("<table>") == 1 + 1 + 1 + 2 + 2 + 1
    assert page.count('src="data:image/svg+xml;base64,') == len(report.figures)
    assert len(pd.read_parquet(report.parquet)) > 0


def test_report_default_dir_and_class(runs: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = write_report(runs, hardware_class="h100", n_resamples=50)
    assert res.out_dir == Path("leaderboards") / "h100" and res.readme.is_file()
    assert sum("not ranked here" in p.reason for p in res.problems) == 3 * 2 * 3 * 2
    with pytest.raises(ContractError, match="have"):
        write_report(runs, hardware_class="a100", n_resamples=50)


def test_report_refuses_only_broken_runs_before_writing(tmp_path: Path) -> None:
    d = write_trial(tmp_path / "runs", "fast", 0, 0, 1.0)
    (d / records.RUN_JSON).write_text("garbage")
    with pytest.raises(ContractError, match="no finished, intact runs in"):
        write_report(tmp_path / "runs", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_number_formats() -> None:
    assert fmt_interval(12.34, 10.1, 15.0) == "12.3 s [10.1, 15.0]"
    assert fmt_interval(5.0, 4.0, math.inf) == "5.00 s [4.00, miss]"
    assert fmt_interval(math.inf, math.inf, math.inf) == "miss"
    assert fmt_s(math.nan) == "not run" and fmt_s(1234.5) == "1234 s"


# -- the page in a real browser ------------------------------------------------------------

PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const probe = document.createElement('div');
  probe.id = 'probe';
  const tables = document.querySelectorAll('table').length;
  probe.textContent = `images=${imgs.length} loaded=${ok} tables=${tables}`;
  document.body.appendChild(probe);
});
</script>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium",) if Path(p).is_file()), None
    )


def test_html_in_headless_chromium(report, tmp_path: Path) -> None:
    """The page opened in Debian's chromium shows the tables and loads every figure."""
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "chromium not found on PATH or at /usr/bin/chromium; "
            "install Debian's package (apt-get install chromium) to run this test"
        )
    page = tmp_path / "index.html"  # a copy with a probe script; the real page has no scripts
    page.write_text(report.html.read_text().replace("</body>", PROBE + "</body>"))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    out = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60
    )
    probe = re.search(r'<div id="probe">images=(\d+) loaded=(\d+) tables=(\d+)</div>', out.stdout)
    assert probe, f"no probe in chromium's DOM (rc {out.returncode}): {out.stderr[-2000:]}"
    images, loaded, tables = map(int, probe.groups())
    assert images == len(report.figures) and loaded == images, probe.group(0)
    assert tables == 8, probe.group(0)  # the verdicts table first
    assert "fast" in out.stdout and "Cost ledger" in out.stdout


def test_report_with_workload_specific_submissions(tmp_path: Path) -> None:
    """A method that runs one of two workloads: the overall table says so, and the other
    workload's P(faster) table leaves it out instead of showing coin flips."""
    runs = tmp_path / "runs"
    for study in range(2):
        for workload in ("toy", "toy2"):
            write_trial(runs, "generic", study, 0, 1.0, workload)
        write_trial(runs, "special", study, 0, 2.0, "toy")
    rep = write_report(runs, tmp_path / "out")
    text = rep.readme.read_text()
    assert "| special | " in text and "1/2 (runs 1)" in text
    assert "at most k/2" in text
    toy2 = text.split("## P(faster): toy2 (default)", 1)[1].split("##", 1)[0]
    toy = text.split("## P(faster): toy (default)", 1)[1].split("##", 1)[0]
    assert "special" not in toy2 and "generic" in toy2
    assert "| special | 1.00 | – |" in toy  # faster than generic on toy in every resample
    assert "This sweep: 2 studies x 1 trial for each of 3 (workload, submission) pairs" in text
    assert "with 2 a median is a miss as soon as one study missed" in text


def test_best_metric_is_the_median_over_studies_of_each_study_best() -> None:
    from harness.report import best_metric

    key = {"workload": "toy", "variant": "default", "submission": "a"}
    trials = pd.DataFrame(
        [{**key, "study": s, "trial": t, "metric": "err", "direction": "min"} for s in (0, 1)
         for t in (0, 1)] + [{**key, "submission": "b", "study": 0, "trial": 0, "metric": "err",
                              "direction": "min"}]
    )  # fmt: skip
    errs = {(0, 0): [0.9, 0.5], (0, 1): [0.8, 0.3], (1, 0): [0.7, 0.6], (1, 1): [0.95, 0.65]}
    rows = [
        {**key, "study": s, "trial": t, "split": "validation", "err": e}
        for (s, t), es in errs.items()
        for e in es
    ]
    rows.append({**key, "study": 0, "trial": 0, "split": "test", "err": 0.0})  # not validation
    rows.append({**key, "study": 2, "trial": 0, "split": "validation", "err": 0.0})  # not ranked
    rows.append({**key, "submission": "b", "study": 0, "trial": 0, "split": "validation",
                 "err": 0.4})  # fmt: skip
    best = best_metric(trials, pd.DataFrame(rows))
    assert best[("toy", "default", "a")] == pytest.approx((0.3 + 0.6) / 2)  # studies: 0.3, 0.6
    assert best[("toy", "default", "b")] == pytest.approx(0.4)
    maxed = best_metric(trials.assign(direction="max"), pd.DataFrame(rows))
    assert maxed[("toy", "default", "a")] == pytest.approx((0.9 + 0.95) / 2)


def test_fastest_table_names_the_closest_miss_when_nobody_reached(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for study in range(2):
        write_trial(runs, "slow", study, 0, 0.01)
        write_trial(runs, "slower", study, 0, 0.005)
    text = write_report(runs, tmp_path / "out").readme.read_text()
    fastest = text.split("## Fastest per workload", 1)[1].split("##", 1)[0]
    (row,) = [r for r in fastest.splitlines() if r.startswith("| toy")]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2] == "none reached"
    assert cells[6] == f"slow: {math.exp(-0.01 * BUDGET_S):.4g}"  # the lowest err reached
