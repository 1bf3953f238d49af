"""Sweeps: workloads x submissions x studies x trials, expanded from saved trial plans.

A sweep is re-runnable: a trial whose record is finished is skipped, never rerun or rewritten
(``--retry-failed``: a failed one is moved into ``trial_<t>/failed_attempts/<n>/`` and run
again). A trial claimed by a live process, on this host or another, is left to it. A trial left
unfinished by a process that died resumes from its checkpoint; without one it is moved aside
(kept as evidence, ``trial_<t>.interrupted-<time>``) and run again.
A finished trial recorded ``contended`` (its machine was slow or shared, ``harness.machine``) is
moved aside as ``trial_<t>.contended-<time>`` and run again, at most ``MAX_CONTENDED_RERUNS``
times; after that it stays, listed and unranked.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import checkpoint, discovery, records
from harness.api import ContractError
from harness.runner import ProgressFn, RunConfig, RunResult, run_trial
from harness.search_space import SearchSpace, SearchSpaceError
from harness.tuning import Plan, load_or_make_plan

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
    # training seconds after which a trial that has not met the target ends "censored", and
    # why (RunConfig.cutoff_s, cutoff_reason); None: no cutoff
    cutoff_s: float | None = None
    cutoff_reason: str | None = None
    # CPUs to pin the trial to (RunConfig.cores); its hardware class counts them. None: none
    cores: tuple[int, ...] | None = None

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
            cutoff_s=self.cutoff_s,
            cutoff_reason=self.cutoff_reason,
            cores=self.cores,
        )

    def hardware_class(self) -> str:
        """The hardware class the trial runs under here: the machine's, or where it is pinned,
        one that counts its cores (``records.trial_fingerprint``)."""
        return records.hardware_class(records.trial_fingerprint(self.cores))

    def run_dir(self, hw: str | None = None) -> Path:
        """The trial's directory under hardware class ``hw`` (None: ``hardware_class()``)."""
        hw = self.hardware_class() if hw is None else hw
        name = Path(self.submission).name
        return records.trial_dir(
            self.runs, hw, self.workload, self.variant, name, self.study, self.trial
        )

    @property
    def label(self) -> str:
        where = f"{self.workload}/{self.variant} {Path(self.submission).name}"
        return f"{where} study {self.study} trial {self.trial}"


def check_names(
    workloads: Iterable[str] | None, submissions: Iterable[str] | None, variant: str
) -> None:
    """Unknown workload, variant or submission names: ``ContractError`` before anything is
    written. A submission that exists but is broken is not an error here (see ``plan_jobs``)."""
    for w in workloads or discovery.workload_names():
        discovery.get_spec(w, variant)
    for s in submissions or ():
        discovery.find_submission(s)


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
    problems: list[str] | None = None,
    grow: bool = False,
) -> list[Job]:
    """Every trial of the sweep; each (workload, submission) plan is saved before any runs.

    ``save=False`` (a dry run) writes nothing: a saved plan is still read and checked against
    the request, a missing one is drawn in memory only (the same points a real run saves).
    With ``problems`` given, a broken submission (its folder, README or search space) leaves
    out only its own pairs, with the reason appended there; without it, it raises."""
    if studies < 1 or trials < 1:
        raise ValueError(f"studies and trials must be at least 1, got {studies} and {trials}")
    workloads = list(workloads or discovery.workload_names())
    check_names(workloads, submissions, variant)
    hw = records.hardware_class()
    jobs = []
    for w in workloads:
        spec = discovery.get_spec(w, variant)
        for s in submissions or discovery.submission_names():
            try:
                sub = discovery.load_submission(s)
                if not sub.supports(w):
                    continue
                space = SearchSpace.load(sub.search_space_path)
            except (ContractError, SearchSpaceError) as e:
                if problems is None:
                    raise
                problems.append(f"{w} x {Path(s).name}: not planned: {e}")
                log.warning("%s x %s: not planned: %s", w, Path(s).name, e)
                continue
            plan_path = (
                records.trial_dir(runs, hw, w, variant, sub.name, 0, 0).parents[1] / "plan.json"
            )
            # load_or_make_plan writes only a missing plan (or a longer one, with grow), and
            # nothing without save
            plan: Plan = load_or_make_plan(
                plan_path, space, studies, trials, seed, self_tuning, grow, save
            )
            budget = None
            if plan.budget_multiplier != 1.0:
                budget = spec.budget_for(records.device_kind(hw)) * plan.budget_multiplier
            for p in plan.points:
                if p.study >= studies:  # a grown plan's later studies: not asked for here
                    continue
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


@dataclass
class Split:
    """A plan's trials sorted by what their records and claims say."""

    todo: list[Job] = field(default_factory=list)  # to run (fresh, resumed or retried)
    finished: list[Job] = field(default_factory=list)  # a finished record: skipped
    live: list[Job] = field(default_factory=list)  # claimed by a live process: running elsewhere
    retried: list[Job] = field(default_factory=list)  # failed, moved aside, in todo again
    problems: list[str] = field(default_factory=list)  # records that were unusable, in words
    unplanned: list[str] = field(default_factory=list)  # pairs left out of the plan, and why


def _move_aside(d: Path, why: str) -> Path:
    """Move a trial's record to ``trial_<t>.<why>-<time>`` (kept as evidence) and return it."""
    assert why in records.MOVED_ASIDE_REASONS, why
    aside = d.with_name(f"{d.name}.{why}-{_stamp()}")
    _move_contents(d, aside)
    return aside


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%dT%H%M%S")


def _move_contents(src: Path, dest: Path) -> None:
    """Move a trial directory's files into ``dest`` (made), leaving its claim and earlier
    failed attempts where they are."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.name in (records.CLAIM_JSON, records.FAILED_ATTEMPTS) or p == dest:
            continue
        p.rename(dest / p.name)


def move_failed_aside(run_dir: Path) -> Path:
    """A failed record into ``trial_<t>/failed_attempts/<n>/`` (kept, never deleted), so the
    trial can run again in its own slot. The caller holds the trial's claim."""
    attempts = run_dir / records.FAILED_ATTEMPTS
    taken = [int(p.name) for p in attempts.glob("*") if p.name.isdigit()]
    dest = attempts / str(max(taken, default=-1) + 1)
    _move_contents(run_dir, dest)
    return dest


def _status(d: Path) -> str | None:
    try:
        status = records.read_run(d).get("status")
        return status if isinstance(status, str) else "unreadable"
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "unreadable"


def sort_jobs(jobs: list[Job], dry_run: bool = False, retry_failed: bool = False) -> Split:
    """Sort a plan's trials. A trial claimed by a live process (on any host) is left alone. A
    trial left unfinished by a dead process resumes from its checkpoint, or, without one, is
    moved aside and rerun; a run.json that is not a record is moved aside (kept, named in
    ``problems``) and the trial rerun; with ``retry_failed`` a failed trial is moved into
    ``failed_attempts/<n>/`` and rerun. Every move happens under the trial's claim.
    ``dry_run``: sort only, move nothing."""
    out = Split()
    for job in jobs:
        d = job.run_dir()  # under the class the trial runs under (its pinned cores count)
        try:
            run: dict[str, Any] | None = records.read_run(d)
        except FileNotFoundError:
            run = None
        except (OSError, ValueError) as e:
            run = {"status": "unreadable", "reason": str(e)}
        if run is not None and not isinstance(run.get("status"), str):
            run["status"] = "unreadable"
            run.setdefault("reason", f"{d / records.RUN_JSON}: no status")
        status = (run or {}).get("status")
        contended = status in records.FINISHED and _contended_rerun_due(run, d)
        if status in records.FINISHED and not (status == "failed" and retry_failed or contended):
            out.finished.append(job)
            continue
        if records.claim_state(d) == "live":
            out.live.append(job)
            continue
        if run is None or dry_run:
            out.todo.append(job)
            continue
        try:
            with records.claim_trial(d):
                now = _status(d)
                if now != status:  # another sweep moved or finished it since we looked
                    (out.finished if now in records.FINISHED else out.todo).append(job)
                    continue
                if contended:
                    aside = _move_aside(d, "contended")
                    log.warning("%s: contended record moved aside to %s; rerun", job.label, aside)
                elif status == "failed":
                    aside = move_failed_aside(d)
                    out.retried.append(job)
                    log.warning("%s: failed record moved to %s; running it again", job.label, aside)
                elif status == "unreadable":
                    aside = _move_aside(d, "corrupt")
                    out.problems.append(f"{run['reason']}: moved aside to {aside}; rerun")
                    log.warning("%s: %s; moved aside to %s", job.label, run["reason"], aside)
                elif not checkpoint.path_for(d).is_file():
                    aside = _move_aside(d, "interrupted")
                    log.warning("%s: unfinished record moved aside to %s", job.label, aside)
        except records.ClaimHeld:  # claimed by another process since we looked
            out.live.append(job)
            continue
        out.todo.append(job)
    return out


def split_pending(jobs: list[Job], dry_run: bool = False) -> tuple[list[Job], list[Job]]:
    """(to run, finished or running elsewhere): ``sort_jobs`` in two lists."""
    split = sort_jobs(jobs, dry_run)
    return split.todo, split.finished + split.live


MAX_CONTENDED_RERUNS = 2  # a trial on a machine that stays contended is not rerun forever


def _contended_rerun_due(run: dict[str, Any] | None, d: Path) -> bool:
    """A finished trial recorded ``contended`` (harness.machine) runs again, its record moved
    aside as ``trial_<t>.contended-<time>`` (kept, never deleted), while it has been rerun
    fewer than ``MAX_CONTENDED_RERUNS`` times."""
    if not run or run.get("contended") is not True:
        return False
    return len(list(d.parent.glob(f"{d.name}.contended-*"))) < MAX_CONTENDED_RERUNS


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
