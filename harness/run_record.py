"""The typed run record: one object per trial attempt, written as ``run.json`` by the referee.

Field names are run.json's (docs/design.md#records; ``harness.records`` documents the
schema). The referee alone writes it: ``write`` at the start, at heartbeats and after every
evaluation, ``finish`` once, ``interrupt`` when the referee itself is stopped (Ctrl-C,
SIGTERM, a scheduler's preemption): the trial stays unfinished and resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import records

# Written only when set (absent, not null, otherwise: older readers test for the key).
_OPTIONAL = (
    "checkpoint_error",
    "test_metrics",
    "restarted",
    "contention",
    "contended",
    "contended_reason",
    "cutoff_s",
    "cutoff_reason",
    "censored_at_s",
)


@dataclass
class RunRecord:
    schema: int = records.SCHEMA
    workload: str = ""
    variant: str = ""
    submission: str = ""
    study: int | None = None
    trial: int = 0
    adhoc: bool = False
    seed: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    hardware_class: str = ""
    hardware: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    submission_git: dict[str, Any] | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    spec: dict[str, Any] | None = None
    budget_s: float | None = None
    metric: str | None = None
    direction: str | None = None
    target: float | None = None
    status: str = "running"
    reason: str | None = None
    started_at: str = ""
    ended_at: str | None = None
    attempt_started_unix: float = 0.0  # this attempt's process start, sub-second
    first_step_unix: float | None = None  # this attempt's first training step done
    host: str = ""
    pid: int = 0  # the referee's
    clock: str = "referee"  # who measured train_time_s: the referee, from its own side
    athlete: dict[str, Any] = field(default_factory=dict)  # pid, uid, exit code or signal
    train_time_s: float = 0.0
    wall_time_s: float = 0.0
    eval_time_s: float = 0.0
    checkpoint_s: float = 0.0
    steps: int = 0
    s_per_step: float | None = None
    evals: int = 0
    time_to_target_s: float | None = None
    prev_eval_train_time_s: float | None = None  # the last evaluated state before the met one
    steps_to_target: int | None = None
    # training seconds between the state that met the target and the state handed over before
    # it (a snapshot or an evaluation): how exact time_to_target_s is
    time_resolution_s: float | None = None
    snapshot_every_s: float | None = None  # the configured snapshot interval
    snapshots: int = 0  # model states kept between evaluations (this attempt)
    snapshot_evals: int = 0  # of them evaluated (after an evaluation met the target, at the budget)
    snapshot_handover_s: float = 0.0  # on the clock: the snapshots' boundaries, step end to receipt
    # the trial's cutoff (RunConfig.cutoff_s) and why; censored_at_s: the training time of the
    # state evaluated at the cutoff, when it missed the target there (status "censored")
    cutoff_s: float | None = None
    cutoff_reason: str | None = None
    censored_at_s: float | None = None
    # the athlete's CPU affinity as read back (sorted), whether RunConfig.cores pinned it, and
    # the thread counts: {"athlete": {"torch", "numba"}, "referee": {"torch", "numba"}}
    cores: list[int] | None = None
    pinned: bool = False
    threads: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    segments: list[dict[str, Any]] = field(default_factory=list)
    wasted_train_s: float = 0.0
    checkpoint_error: str | None = None
    test_metrics: dict[str, Any] | None = None
    restarted: str | None = None  # why an earlier attempt's checkpoint could not be used
    contention: dict[str, Any] | None = None
    contended: bool | None = None
    contended_reason: str | None = None

    @classmethod
    def start(cls, previous: dict[str, Any] | None = None, **fields: Any) -> RunRecord:
        """A new attempt's record; an unfinished ``previous`` record's history is kept."""
        rec = cls(
            started_at=records.utcnow(),
            attempt_started_unix=time.time(),
            host=socket.gethostname(),
            pid=os.getpid(),
            **fields,
        )
        if previous:
            rec.started_at = previous.get("started_at") or rec.started_at
            rec.attempts = int(previous.get("attempts") or 1) + 1
            rec.segments = list(previous.get("segments") or [])
            rec.wasted_train_s = float(previous.get("wasted_train_s") or 0.0)
        return rec

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in _OPTIONAL:
            if d[key] is None:
                del d[key]
        return d

    def write(self, run_dir: Path, *, train_s: float, wall_s: float) -> None:
        self.train_time_s = train_s
        self.wall_time_s = wall_s
        self.s_per_step = train_s / self.steps if self.steps else None
        records.write_json(Path(run_dir) / records.RUN_JSON, self.to_dict())

    def finish(
        self, run_dir: Path, status: str, reason: str | None, *, train_s: float, wall_s: float
    ) -> None:
        if self.segments:
            self.segments[-1]["end_train_s"] = train_s
        self.status, self.reason, self.ended_at = status, reason, records.utcnow()
        self.write(run_dir, train_s=train_s, wall_s=wall_s)

    def interrupt(
        self, run_dir: Path, reason: str, *, train_s: float, wall_s: float, status="interrupted"
    ) -> None:
        """Unfinished on purpose: a re-run resumes from the last checkpoint, and counts the
        training time after it (``train_s`` less the checkpoint's) as wasted."""
        self.status, self.reason = status, reason
        self.write(run_dir, train_s=train_s, wall_s=wall_s)

    def preempt(self, run_dir: Path, reason: str, *, train_s: float, wall_s: float) -> None:
        self.interrupt(run_dir, reason, train_s=train_s, wall_s=wall_s, status="preempted")
