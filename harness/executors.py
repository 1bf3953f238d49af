"""Running sweep jobs through submitit: ``debug`` (in this process), ``local`` (one subprocess
per job, at most ``parallelism`` at a time) or ``slurm`` (one job array per distinct resource
request). The executor is always named explicitly: submitit's AutoExecutor would pick SLURM
whenever ``srun`` is on the PATH (docs/slurm.md#executors).

Every job is a ``TrialJob``: checkpointable, so a preempted or timed-out SLURM job is requeued
and the runner resumes it from its last checkpoint. A job that ends without finishing its
record (scancel, a node-side crash, too many timeouts) gets ``status: interrupted`` with the
reason, so the next sweep resumes it;
a finished record is never rewritten.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from harness import records
from harness.runner import note_preemption
from harness.sweep import Job, run_job

EXECUTORS = ("debug", "local", "slurm")
POLL_S = 2.0


DEFAULTS_FILE = Path(__file__).resolve().parent / "slurm_defaults.json"
DEFAULTS_ENV = "TTR_SLURM_DEFAULTS"


@dataclass
class SlurmOptions:
    """sbatch settings: the bundled ``harness/slurm_defaults.json``, then the keys of the file
    named by ``$TTR_SLURM_DEFAULTS`` (a cluster's own partition, account, ...), then flags."""

    slurm_partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 2.0
    timeout_min: int = 30
    slurm_signal_delay_s: int = 120  # USR2 this long before the limit: checkpoint, requeue
    slurm_array_parallelism: int = 2
    slurm_max_num_timeout: int = 3
    slurm_additional_parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> SlurmOptions:
        """Options from ``path`` (default: the bundled defaults, updated by the file named by
        ``$TTR_SLURM_DEFAULTS`` if set), then ``overrides`` that are not None. A missing or
        unreadable defaults file is an error, never a silent default."""
        files = [Path(path)] if path is not None else [DEFAULTS_FILE]
        if path is None and os.environ.get(DEFAULTS_ENV, "").strip():
            files.append(Path(os.environ[DEFAULTS_ENV]).expanduser())
        values: dict[str, Any] = {}
        for f in files:
            values.update({k: v for k, v in _read_defaults(f).items() if not k.startswith("_")})
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown SLURM options {sorted(unknown)}; valid: {sorted(known)}")
        return cls(**values)


def _read_defaults(path: Path) -> dict[str, Any]:
    if not path.is_file():
        hint = (
            "the installation is incomplete: reinstall ttr-bench"
            if path == DEFAULTS_FILE
            else f"check {DEFAULTS_ENV} or the path given"
        )
        raise FileNotFoundError(f"SLURM defaults {path} not found; {hint}")
    try:
        raw = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"SLURM defaults {path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"SLURM defaults {path} must be a JSON object, got {type(raw).__name__}")
    return raw


class TrialJob(Checkpointable):
    """One trial as a submitit job. It never raises: a failure is in the record."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self) -> dict[str, Any]:
        try:
            res = run_job(self.job)
            return {"status": res.status, "reason": res.reason, "run_dir": str(res.run_dir)}
        except records.ClaimHeld as e:  # another live process runs it: its record, not ours
            return {"status": "claimed", "reason": str(e)}
        except FileExistsError as e:  # finished meanwhile by another process: not ours either
            return {"status": "finished_elsewhere", "reason": str(e)}
        except Exception as e:  # report it, never open a debugger
            return {"status": "error", "reason": f"{type(e).__name__}: {e}"}

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """Called by submitit on preemption or timeout, just before the job is requeued."""
        note_preemption("preempted or timed out; requeued to resume from its checkpoint")
        return DelayedSubmission(TrialJob(self.job))


@dataclass
class Handle:
    job: Job
    sub: Any  # submitit.Job, or None while waiting for a local slot (or run elsewhere)
    result: dict[str, Any] | None = None
    elsewhere: bool = False  # claimed by a live process this sweep did not start

    @property
    def running(self) -> bool:
        return self.result is None and (self.elsewhere or self.sub is not None)


def make_executor(kind: str, folder: Path, opts: SlurmOptions) -> submitit.Executor:
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
    extra = {"slurm_max_num_timeout": opts.slurm_max_num_timeout} if kind == "slurm" else {}
    ex = submitit.AutoExecutor(folder=folder, cluster=kind, **extra)  # never auto-detected
    params: dict[str, Any] = {"timeout_min": opts.timeout_min}
    if kind == "slurm":
        params.update({k: v for k, v in asdict(opts).items() if v not in (None, {})})
        params.pop("slurm_max_num_timeout")
    ex.update_parameters(**params)
    return ex


def mark_failed(run_dir: Path, reason: str, status: str = "failed") -> bool:
    """Give an unfinished (or missing) record ``status`` (``failed``, or ``interrupted`` for a
    job that ended from outside: resumable by the next sweep); never touch a finished one, one
    that a live process holds (its own record), or one that is not a record (kept as it is:
    the evidence)."""
    if records.is_finished(run_dir) or records.claim_state(run_dir) == "live":
        return False
    try:
        run = records.read_run(run_dir)
    except FileNotFoundError:
        run = {"schema": records.SCHEMA}
    except (OSError, ValueError):
        return False
    run.update(status=status, reason=reason, ended_at=records.utcnow())
    records.write_json(Path(run_dir) / records.RUN_JSON, run)
    return True


def submit(
    jobs: list[Job],
    kind: str,
    folder: Path,
    opts: SlurmOptions,
    elsewhere: list[Job] | None = None,
) -> list[Handle]:
    """Submit every job; SLURM gets one array per distinct resource request. ``elsewhere``:
    this sweep's trials that live processes it did not start are running (a sweep killed
    earlier left them); they are waited for, count against the local executor's slots, and
    are started here if they end unfinished."""
    handles = [Handle(j, None, elsewhere=True) for j in elsewhere or ()]
    if kind == "local" or not jobs:  # the local executor has no queue: wait() throttles it
        return handles + [Handle(j, None) for j in jobs]
    ex = make_executor(kind, folder, opts)
    with ex.batch():
        for j in jobs:
            handles.append(Handle(j, ex.submit(TrialJob(j))))
    return handles


def wait(
    handles: list[Handle],
    kind: str,
    folder: Path,
    opts: SlurmOptions,
    deadline_s: float,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[Handle]:
    """Wait for every job, at most ``deadline_s`` (submitit has no deadline of its own); local
    jobs start as slots free up, a slot taken by a trial running elsewhere counting as taken.
    Returns the handles still unfinished at the deadline; local ones never started have
    ``sub`` None (``not_started``): they are not started after the deadline."""
    t_end = time.monotonic() + deadline_s
    ex = make_executor(kind, folder, opts) if kind == "local" else None
    slots = max(1, int(opts.slurm_array_parallelism))
    while True:
        for h in [h for h in handles if h.result is None and h.elsewhere]:
            _poll_elsewhere(h)
            if h.result is None and not h.elsewhere and kind != "local":  # ended unfinished
                ex = ex or make_executor(kind, folder, opts)
                h.sub = ex.submit(TrialJob(h.job))
        for h in handles:
            if h.sub is not None and h.result is None and h.sub.done():
                h.result = _collect(h)
                if h.result.get("status") == "claimed":  # a live process beat it to the trial
                    h.result, h.sub, h.elsewhere = None, None, True
        if kind == "local":
            assert ex is not None
            queued = [h for h in handles if h.result is None and not h.running]
            free = slots - sum(h.running for h in handles)
            for h in queued[: max(0, free)]:
                h.sub = ex.submit(TrialJob(h.job))
        left = [h for h in handles if h.result is None]
        if progress:
            progress(len(handles) - len(left), len(handles), sum(h.running for h in left))
        if not left or time.monotonic() > t_end:
            return left
        time.sleep(POLL_S)


def not_started(left: list[Handle]) -> list[Handle]:
    """Of the handles ``wait`` returned, those it never started (local ones still queued)."""
    return [h for h in left if h.sub is None and not h.elsewhere]


def _poll_elsewhere(h: Handle) -> None:
    """A trial another process runs: finished, still running, or ended unfinished (then it is
    this sweep's to run: ``elsewhere`` turns False)."""
    d = h.job.run_dir()
    if records.claim_state(d) == "live":
        return
    try:
        run = records.read_run(d)
    except (OSError, ValueError):
        run = {}
    if run.get("status") in records.FINISHED:
        h.result = {"status": run["status"], "reason": run.get("reason"), "run_dir": str(d)}
    else:
        h.elsewhere = False  # its process is gone: run it here (it resumes)


def _collect(h: Handle) -> dict[str, Any]:
    try:
        result = h.sub.result()
    except Exception as e:  # killed, crashed node-side, or out of timeouts
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # cancelled (scancel), a node crash, out of requeues: the trial was not at fault; its
        # record stays unfinished, so the next sweep resumes it from its checkpoint
        reason = (
            f"job {h.sub.job_id} ended without finishing: {type(e).__name__}: {first}; resumable"
        )
        d = h.job.run_dir()
        try:
            status = records.read_run(d).get("status")
        except (OSError, ValueError):
            status = None
        if status in (None, "running"):  # an interrupted or preempted one keeps its own why
            mark_failed(d, reason, status="interrupted")
        return {"status": "interrupted", "reason": reason}
    if result.get("status") == "error":
        mark_failed(h.job.run_dir(), result["reason"])
    return result
