"""Sweeps: workloads x submissions x studies x trials, expanded from saved trial plans.

A sweep is re-runnable: a trial whose record is finished is skipped, never rerun or rewritten.
A trial left ``running`` by a process that died is moved aside (kept as evidence, renamed
``trial_<t>.interrupted-<time>``) and run again. A finished trial recorded ``contended`` (its
machine was slow or shared, ``harness.machine``) is moved aside as ``trial_<t>.contended-<time>``
and run again.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import checkpoint, discovery, records
from harness.runner import ProgressFn, RunConfig, RunResult, run_trial
from harness.search_space import SearchSpace
from harness.tuning import Plan, load_or_make_plan, make_plan

log = logging.getLogger("ttr.sweep")


@dataclass(frozen=True)
class Job:
    """One trial of a sweep: everything ``run_trial`` needs, picklable for executors."""

    workload: str
    variant: str
    submission: str  # a name under submissions/, or a folder path
    study: int
    trial: int
    seed: int
    hparams: dict[str, Any] = field(default_factory=dict)
    budget_s: float | None = None  # None: the spec's (self-tuning plans multiply it)
    runs: Path = Path("runs")
    final_test_eval: bool = True  # the analysis-only test evaluation at the end
    keep_checkpoint: bool = False  # keep checkpoint.pt once the trial has finished

    def config(self) -> RunConfig:
        return RunConfig(
            workload=self.workload,
            submission=self.submission,
            variant=self.variant,
            hparams=self.hparams,
            seed=self.seed,
            runs=self.runs,
            study=self.study,
            trial=self.trial,
            budget_s=self.budget_s,
            final_test_eval=self.final_test_eval,
            keep_checkpoint=self.keep_checkpoint,
        )

    def run_dir(self, hw: str) -> Path:
        name = Path(self.submission).name
        return records.trial_dir(
            self.runs, hw, self.workload, self.variant, name, self.study, self.trial
        )

    @property
    def label(self) -> str:
        where = f"{self.workload}/{self.variant} {Path(self.submission).name}"
        return f"{where} study {self.study} trial {self.trial}"


def plan_jobs(
    runs: Path,
    workloads: Iterable[str] | None = None,
    submissions: Iterable[str] | None = None,
    variant: str = "default",
    studies: int = 3,
    trials: int = 5,
    seed: int = 0,
    self_tuning: bool = False,
    save: bool = True,
) -> list[Job]:
    """Every trial of the sweep; each (workload, submission) plan is saved before any runs.

    ``save=False`` (a dry run) writes nothing: a saved plan is still read and checked against
    the request, a missing one is drawn in memory only (the same points a real run saves)."""
    hw = records.hardware_class()
    jobs = []
    for w in workloads or discovery.workload_names():
        spec = discovery.get_spec(w, variant)
        for s in submissions or discovery.submission_names():
            sub = discovery.load_submission(s)
            if not sub.supports(w):
                continue
            space = SearchSpace.load(sub.search_space_path)
            plan_path = (
                records.trial_dir(runs, hw, w, variant, sub.name, 0, 0).parents[1] / "plan.json"
            )
            if save or plan_path.exists():  # load_or_make_plan writes only a missing plan
                plan: Plan = load_or_make_plan(plan_path, space, studies, trials, seed, self_tuning)
            else:
                plan = make_plan(space, studies, trials, seed, self_tuning)
            budget = None
            if plan.budget_multiplier != 1.0:
                budget = spec.budget_for(records.device_kind(hw)) * plan.budget_multiplier
            for p in plan.points:
                jobs.append(
                    Job(
                        w,
                        variant,
                        s,
                        p.study,
                        p.trial,
                        p.seed,
                        dict(p.hparams),
                        budget,
                        Path(runs),
                    )
                )
    return jobs


def split_pending(jobs: list[Job], dry_run: bool = False) -> tuple[list[Job], list[Job]]:
    """(to run, finished or running elsewhere). A trial left unfinished by a dead process
    resumes from its checkpoint, or, without one, is moved aside and rerun; one whose process
    is still alive on this host is left alone. ``dry_run``: split only, move nothing."""
    hw = records.hardware_class()
    todo, done = [], []
    for job in jobs:
        d = job.run_dir(hw)
        if _rerun_contended(job, d, dry_run):
            todo.append(job)
            continue
        if records.is_finished(d) or records.writer_alive(d):
            done.append(job)
            continue
        if not dry_run and d.exists() and not checkpoint.path_for(d).is_file():
            stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
            aside = d.with_name(f"{d.name}.interrupted-{stamp}")
            d.rename(aside)
            log.warning("%s: unfinished record moved aside to %s", job.label, aside)
        todo.append(job)
    return todo, done


def _rerun_contended(job: Job, d: Path, dry_run: bool) -> bool:
    """A finished trial recorded ``contended`` (harness.machine) is pending: its record is moved
    aside (``trial_<t>.contended-<time>``, kept as evidence, never deleted) and it runs again."""
    try:
        run = records.read_run(d)
    except (OSError, ValueError):
        return False
    if run.get("status") not in records.FINISHED or run.get("contended") is not True:
        return False
    if not dry_run:
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        aside = d.with_name(f"{d.name}.contended-{stamp}")
        d.rename(aside)
        log.warning("%s: contended record moved aside to %s; re-running", job.label, aside)
    return True


def run_job(job: Job, progress: ProgressFn | None = None) -> RunResult:
    """Run one job in this process (the body of every executor)."""
    return run_trial(job.config(), progress)


def job_budget_s(job: Job, kind: str) -> float:
    """The training budget this job runs under on a device of ``kind`` ("cpu" or "gpu")."""
    if job.budget_s is not None:
        return float(job.budget_s)
    return float(discovery.get_spec(job.workload, job.variant).budget_for(kind))


_BOARD_COLUMNS = (
    "hardware_class",
    "workload",
    "variant",
    "run_dir",
    "eval",
    "wall_time_s",
    "train_time_s",
)


def measured_overhead_s(
    runs: Path, hw: str, board: Path | None = None
) -> dict[tuple[str, str], float]:
    """(workload, variant) -> the largest wall time beyond training (setup, evaluations,
    checkpoints, the final test evaluation) of any finished, not failed, trial under ``runs``
    on hardware class ``hw``: the per-trial overhead a plan's device-time bound adds. A
    leaderboard's ``results.parquet`` (``board``) adds its trials, up to their last evaluation
    (it holds no final test evaluation)."""
    out: dict[tuple[str, str], float] = {}
    if board is not None and board.is_file():
        import pandas as pd

        try:
            df = pd.read_parquet(board, columns=[*_BOARD_COLUMNS])
        except (OSError, ValueError, KeyError):
            df = None
        if df is not None and not df.empty:
            df = df[df.hardware_class == hw].sort_values("eval").groupby("run_dir").tail(1)
            extra = (df.wall_time_s - df.train_time_s).groupby([df.workload, df.variant]).max()
            out.update({(str(w), str(v)): float(x) for (w, v), x in extra.items()})
    for run_json in Path(runs).glob(f"{hw}/*/*/*/*/trial_*/{records.RUN_JSON}"):
        try:
            run = records.read_run(run_json.parent)
            if run.get("status") not in records.FINISHED or run["status"] == "failed":
                continue
            extra = float(run["wall_time_s"]) - float(run["train_time_s"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        key = (str(run.get("workload")), str(run.get("variant")))
        out[key] = max(out.get(key, 0.0), extra)
    return out
