"""The referee: runs one trial of a submission on a workload variant, owns the clock and the record.

Each trial is two processes (docs/design.md#the-clock). This process, the
referee, holds the spec, the evaluator and its data, the records and the clock; it never
imports the submission. The athlete (``harness.athlete``, a child in its own session and a
private working directory, an unprivileged user when the referee is root) runs the
submission's functions against a training facade of the workload.

    setup (off the clock): spec, search space, the referee's workload and reference network;
        the athlete imports the submission, builds its model and facade, reports its kernels;
        kernel parity (the athlete runs the kernel on the referee's inputs, the referee compares)
    segments: go (clock starts) -> the athlete runs init (first go only) and steps -> the
        referee asks for a pause at the next snapshot or evaluation time or the budget -> the
        athlete
        synchronizes, runs prepare_for_eval, sends its model state (and at evaluations its
        checkpoint) -> clock stops on receipt -> SIGSTOP: no athlete thread runs while the
        referee keeps a snapshot, or evaluates its own copy of the network, checkpoints and
        writes records -> SIGCONT
    time to target: an evaluation that meets the target makes the referee evaluate the
        snapshots kept since the last failing evaluation, in order; the first that meets it
        gives the time (``Snapshots``; docs/design.md#the-clock)
    cutoff (``RunConfig.cutoff_s``): a boundary at that training time; its state is evaluated
        (a met target there is resolved by the same scan), else the trial ends ``censored``
    pinned cores (``RunConfig.cores``): the referee and the athlete on those CPUs, torch and
        numba threads to match (``harness.pinning``); a widened affinity fails the trial
    finish: a test-split evaluation for analysis (not after a cutoff), run.json with status
        and summary

A submission's fault (an exception, an exit, a signal, a hang past the watchdog, a non-finite
loss or parameter, a contract slip) ends the trial ``failed`` with a reason. SIGINT, SIGTERM or a
scheduler's preemption of the referee leave it ``interrupted`` (or ``preempted``): unfinished,
resumed from its last checkpoint by a re-run, the training time since then counted as wasted.
"""

from __future__ import annotations

import functools
import grp
import hashlib
import io
import json
import logging
import math
import mmap
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from harness import checkpoint, evalseed, machine, pinning, records
from harness.api import ContractError
from harness.discovery import SubmissionMeta, build_workload, get_spec, repo_root, submission_meta
from harness.kernels import KernelParityError, parity_cache_key, parity_compare, parity_inputs
from harness.run_record import RunRecord
from harness.search_space import SearchSpace, SearchSpaceError

log = logging.getLogger("ttr.runner")
log.setLevel(logging.INFO)  # every run's log.txt gets the progress lines, quiet console or not

# Harness-made training generators are seeded below this, workload evaluation streams at or
# above it (and below 2^32: torch's CPU generator keeps only a seed's low 32 bits).
TRAIN_SEED_LIMIT = 2**31


@dataclass(frozen=True)
class RunConfig:
    """What to run and where; every field is saved in run.json."""

    workload: str
    submission: str
    variant: str = "default"
    hparams: Mapping[str, Any] = field(default_factory=dict)  # overrides of the defaults
    seed: int = 0
    runs: Path = Path("runs")  # root of the records tree
    study: int = 0
    trial: int | None = None  # None: the next free trial index of the study
    device: str | None = None  # None: "cuda" when available, else "cpu"
    budget_s: float | None = None  # None: the spec's budget for this device kind
    eval_every_s: float | None = None  # None: the spec's
    # training seconds between model snapshots (kept, evaluated only when an evaluation meets
    # the target, to find the first state that met it); None: SNAPSHOT_BUDGET_FRACTION x budget,
    # at most eval_every_s
    snapshot_every_s: float | None = None
    final_test_eval: bool = True  # evaluate the test split once at the end (analysis only)
    checkpoint: bool = True  # checkpoint at every evaluation, so a requeued job resumes
    keep_checkpoint: bool = False  # keep checkpoint.pt once the trial has finished
    adhoc: bool = False  # a run by hand: under adhoc/trial_<t>, never in a planned study's slot
    steps_every: int = 1  # one steps.csv row every this many steps
    # end the trial (status "complete", after one evaluation) once this many steps are done:
    # bounds ttr check and tests by steps, not by wall seconds
    max_steps: int | None = None
    # wall seconds the athlete may take to reach a step boundary once asked (and to get ready);
    # None: max(WATCHDOG_MIN_S, WATCHDOG_BUDGET_FRACTION x budget)
    watchdog_s: float | None = None
    # training seconds after which the trial stops unless it has met the target: the state at
    # the cutoff is evaluated once (so a target met at or before it is still timed exactly),
    # and if it misses, the trial ends "censored" (a miss, final; docs/design.md#the-clock)
    cutoff_s: float | None = None
    # why the cutoff, in words, for the record's reason "cutoff <why> at <t> s" (e.g. "past the
    # study's best time-to-target 12.3 s"); None: "past <cutoff_s> s of training"
    cutoff_reason: str | None = None
    # CPU cores the referee and the athlete are pinned to (os.sched_setaffinity), with torch's
    # and numba's thread counts set to their number; the trial's hardware class counts them.
    # None: the process's own affinity, threads as they are
    cores: tuple[int, ...] | None = None


@dataclass
class RunResult:
    run_dir: Path
    status: str
    reason: str | None
    summary: dict[str, Any]


class TrialFailed(Exception):
    """Ends a trial as failed with a reason meant for the author."""


class TrialInterrupted(BaseException):
    """The referee was told to stop (SIGTERM); the trial is recorded ``interrupted``."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def derive_seed(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % TRAIN_SEED_LIMIT


def make_generator(seed: int, purpose: str, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, purpose))
    return g


def next_free_trial(study_dir: Path) -> int:
    taken = {
        int(p.name.split("_", 1)[1]) for p in study_dir.glob("trial_*") if p.name[6:].isdigit()
    }
    return next(i for i in range(len(taken) + 1) if i not in taken)


HEARTBEAT_S = 10.0  # wall seconds between run.json updates while the athlete trains
PROGRESS_S = 0.25  # wall seconds between calls of a run's progress callback
WATCHDOG_MIN_S = 30.0
WATCHDOG_BUDGET_FRACTION = 0.5
SETUP_LIMIT_S = 300.0  # wall seconds for the athlete's setup (imports, model, parity), at least
ADHOC = "adhoc"  # the folder of ad-hoc runs, beside the study_<s> folders
STEPS_CSV = "steps.csv"
ATHLETE_LOG_MAX = 1 << 20  # bytes of the athlete's stdout/stderr copied into log.txt
UNPRIVILEGED = ("nobody", "nogroup")  # the athlete's user and group when the referee is root
CHECKPOINT_FORMAT = 2  # the referee's container: the athlete's state as opaque bytes
SNAPSHOT_BUDGET_FRACTION = 0.02  # the default snapshot interval: 2% of the budget
SNAPSHOT_MEMORY_CAP = 512 << 20  # bytes of snapshots held in memory; beyond: spilled to files

_PREEMPT: dict[str, str] = {}  # a reason noted by a scheduler's signal handler, read once


def note_preemption(reason: str = "preempted") -> None:
    """Record that this process is being preempted (called from a job's signal handler, e.g.
    submitit's checkpoint before a requeue): the trial running here ends ``preempted`` with
    ``reason`` when the job's exit reaches it, and resumes from its checkpoint."""
    _PREEMPT["reason"] = reason


ProgressFn = Callable[[int, float, float], None]  # (steps, training seconds, budget seconds)


def check_config(cfg: RunConfig) -> None:
    """A config's own input errors (those that need no workload spec): ``ValueError`` in one
    line, raised by ``run_trial`` before anything is written."""
    cut = cfg.cutoff_s
    if cut is not None:
        if isinstance(cut, bool) or not isinstance(cut, (int, float)) or not 0 < cut < math.inf:
            raise ValueError(f"cutoff_s must be a positive number of training seconds, got {cut!r}")
    elif cfg.cutoff_reason is not None:
        raise ValueError("cutoff_reason is given without a cutoff_s")
    if cfg.cores is not None:
        pinning.check_cores(cfg.cores)


def run_trial(cfg: RunConfig, progress: ProgressFn | None = None) -> RunResult:
    """Run one trial to target, budget or failure; never raises for a submission's fault.

    A trial directory with an unfinished record resumes from its checkpoint (or starts over
    when it has none or it is unreadable); a finished one is never touched. ``progress``, if
    given, is called at most every ``PROGRESS_S`` wall seconds while the athlete trains.
    SIGINT (KeyboardInterrupt) and SIGTERM (``TrialInterrupted``) record the trial
    ``interrupted`` and are raised again. A config with bad input (``check_config``) raises
    ``ValueError`` before anything is written."""
    check_config(cfg)
    fp = records.trial_fingerprint(None if cfg.cores is None else pinning.check_cores(cfg.cores))
    hw = records.hardware_class(fp)
    name = Path(cfg.submission).name  # a submission may be given as a folder path
    study_dir = records.trial_dir(
        cfg.runs, hw, cfg.workload, cfg.variant, name, cfg.study, 0
    ).parent
    if cfg.adhoc:
        study_dir = study_dir.with_name(ADHOC)
    while True:  # the claim first (records.claim_trial): one process per trial, on any host
        trial = cfg.trial if cfg.trial is not None else next_free_trial(study_dir)
        run_dir = study_dir / f"trial_{trial}"
        try:
            claim = records.claim_trial(run_dir)  # raises ClaimHeld while another runs it
            break
        except records.ClaimHeld:
            if cfg.trial is not None:  # the given index is taken; a free one taken: the next
                raise
    with claim:
        previous = None
        if (run_dir / records.RUN_JSON).exists():
            if records.is_finished(run_dir):
                raise FileExistsError(
                    f"{run_dir} already holds a finished run; finished results are never "
                    "overwritten"
                )
            try:
                previous = records.read_run(run_dir)
            except ValueError:
                previous = {"reason": "unreadable run.json"}
        return _Referee(cfg, run_dir, hw, trial, previous, progress, fp).run()


class StepLog:
    """``steps.csv``: step, training seconds, seconds per step, and the loss and learning rate
    the submission reports (``state["loss"]``, ``state["lr"]`` of a dict state; blank if not).

    The loop only appends a tuple per row: losses stay tensors (no device synchronization)
    until ``flush``, which converts them together and appends the rows to the file; the runner
    flushes at evaluations and the end, and every ``FLUSH_ROWS`` rows (off the clock: the
    clock has synchronized the device at the end of each step already)."""

    COLUMNS = ("step", "train_time_s", "step_s", "loss", "lr")
    FLUSH_ROWS = 10_000

    def __init__(self, path: Path, every: int = 1):
        if every < 1:
            raise ValueError(f"steps_every must be >= 1, got {every}")
        self.path, self.every = Path(path), every
        self.rows: list[tuple[int, float, Any, Any]] = []
        self.last: tuple[int, float] = (0, 0.0)  # the last row written: (step, train seconds)

    def start(self, resume_step: int | None) -> None:
        """A fresh file, or the rows up to the checkpoint's step when resuming from one."""
        kept = []
        if resume_step is not None and self.path.is_file():
            for line in self.path.read_text().splitlines()[1:]:
                cells = line.split(",")
                try:
                    if int(cells[0]) <= resume_step:
                        kept.append(line)
                        self.last = (int(cells[0]), float(cells[1]))
                except (ValueError, IndexError):
                    break  # a torn last line
        text = ",".join(self.COLUMNS) + "\n" + "".join(k + "\n" for k in kept)
        records.atomic_write_text(self.path, text)

    def add(self, step: int, train_s: float, state: Any) -> None:
        if step % self.every:
            return
        if isinstance(state, Mapping):
            loss = state.get("loss")
            if isinstance(loss, torch.Tensor) and loss.requires_grad:
                loss = loss.detach()  # never keep a step's graph alive in the buffer
            self.rows.append((step, train_s, loss, state.get("lr")))
        else:
            self.rows.append((step, train_s, None, None))
        if len(self.rows) >= self.FLUSH_ROWS:  # bounded memory between evaluations
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        losses, lrs = _floats([r[2] for r in self.rows]), _floats([r[3] for r in self.rows])
        lines = []
        step0, t0 = self.last
        for (step, t, _, _), loss, lr in zip(self.rows, losses, lrs, strict=True):
            per = (t - t0) / (step - step0) if step > step0 else math.nan
            lines.append(f"{step},{t:.6f},{per:.6g},{_cell(loss)},{_cell(lr)}\n")
            step0, t0 = step, t
        self.last = (step0, t0)
        self.rows.clear()
        with open(self.path, "a", buffering=1 << 16) as f:
            f.write("".join(lines))


def _cell(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def _floats(values: list[Any]) -> list[float | None]:
    """Numbers or scalar tensors to floats, the tensors of one device in one transfer."""
    out: list[float | None] = [None] * len(values)
    tensors: dict[Any, list[int]] = {}
    for i, v in enumerate(values):
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            tensors.setdefault(v.device, []).append(i)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = float(v)
    for device, idx in tensors.items():
        if device.type == "cpu":  # no transfer to save: .item() is the cheapest
            for i in idx:
                out[i] = float(values[i].item())
            continue
        try:  # one transfer for the device's tensors
            stacked = torch.stack([values[i] for i in idx])
        except RuntimeError:  # mixed shapes, () and (1,)
            stacked = torch.stack([values[i].reshape(()) for i in idx])
        for i, x in zip(idx, stacked.double().cpu().flatten().tolist(), strict=True):
            out[i] = x
    return out


class AthleteGone(Exception):
    """The athlete's process ended or hung: the message is the reason; ``signum`` the signal
    that ended it, if one did."""

    def __init__(self, reason: str, signum: int | None = None):
        super().__init__(reason)
        self.signum = signum


class _Athlete:
    """The referee's handle on its athlete: the process, the channel, the step counter."""

    def __init__(
        self,
        setup: dict[str, Any],
        resume: bytes | None,
        sub_dir: Path,
        cores: tuple[int, ...] | None = None,
    ):
        self.home = Path(tempfile.mkdtemp(prefix="ttr-athlete-"))
        work = self.home / "submission"
        shutil.copytree(sub_dir, work, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        self.uid, gid, self.not_dropped = _athlete_ids()
        if self.uid is not None:
            for p in [self.home, *self.home.rglob("*")]:
                os.chown(p, self.uid, gid, follow_symlinks=False)
        steps_fd = os.memfd_create("ttr-steps")
        os.ftruncate(steps_fd, 8)
        self._mm = mmap.mmap(steps_fd, 8)
        self.counter = memoryview(self._mm).cast("q")
        ours, theirs = socket.socketpair()
        env = {
            **os.environ,
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "PYTHONPATH": os.pathsep.join(
                [str(repo_root()), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **(pinning.thread_env(len(cores)) if cores else {}),
        }
        self.log_path = self.home / "athlete.log"
        with open(self.log_path, "wb") as out:
            if self.uid is not None:
                os.chown(self.log_path, self.uid, gid)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harness.athlete", str(theirs.fileno()), str(steps_fd)],
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(), steps_fd),
                start_new_session=True,  # a terminal's Ctrl-C reaches the referee only
                **({"user": self.uid, "group": gid, "extra_groups": []} if self.uid else {}),
            )
        theirs.close()
        os.close(steps_fd)
        if cores:  # inherited from the pinned referee already; by pid too, before it imports
            pinning.pin_process(cores, self.proc.pid)
        self.conn = Connection(ours.detach())
        self.stopped = False
        self.send(dict(setup, type="setup"), *([resume] if resume is not None else []))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def steps(self) -> int:
        return int(self.counter[0])

    def send(self, header: dict[str, Any], *payloads: bytes) -> None:
        try:
            self.conn.send_bytes(json.dumps({**header, "payloads": len(payloads)}).encode())
            for p in payloads:
                self.conn.send_bytes(p)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # it has gone: the next receive says how

    def receive(self, deadline: float | None, tick: Callable[[], None] | None = None) -> dict:
        """The next message (with its ``payloads``) by ``deadline`` (perf_counter seconds);
        None past it. ``tick`` runs about every PROGRESS_S while waiting."""
        while True:
            now = time.perf_counter()
            wait = PROGRESS_S if deadline is None else min(PROGRESS_S, deadline - now)
            if wait <= 0:
                return None
            if self.conn.poll(wait):
                try:
                    header = json.loads(self.conn.recv_bytes())
                    header["payloads"] = [
                        self.conn.recv_bytes() for _ in range(int(header.get("payloads", 0)))
                    ]
                    return header
                except (EOFError, OSError, ValueError):
                    raise AthleteGone(self.exit_reason(), self.exit_signal()) from None
            if self.proc.poll() is not None:
                raise AthleteGone(self.exit_reason(), self.exit_signal())
            if tick is not None:
                tick()

    def exit_signal(self) -> int | None:
        code = self.proc.returncode
        return -code if code is not None and code < 0 else None

    def exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        step = self.steps
        if code < 0:
            return f"killed by signal {-code} ({signal.Signals(-code).name}) at step {step}"
        return f"exited with code {code} at step {step}"

    def stop(self) -> None:
        """SIGSTOP the athlete's whole process group: no thread of it runs until ``resume``."""
        self._signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.stopped = False

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def close(self) -> dict[str, Any]:
        """Kill, reap, clean up; returns pid, uid and how it ended."""
        if self.proc.poll() is None:
            self.kill()
        code = self.proc.wait()
        self.conn.close()
        self.counter.release()
        self._mm.close()
        return {
            "pid": self.proc.pid,
            "uid": os.getuid() if self.uid is None else self.uid,
            "exit_code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
        }

    def log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, self.log_path.stat().st_size - ATHLETE_LOG_MAX))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


@functools.cache
def _athlete_ids() -> tuple[int | None, int | None, str | None]:
    """(uid, gid, why not) to run the athlete as: when we are root, an unprivileged user
    (``UNPRIVILEGED``) if it exists and can run this Python and import the harness (probed
    once per process); else ours (uid None), with the reason when we are root."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        uid = pwd.getpwnam(UNPRIVILEGED[0]).pw_uid
    except KeyError:
        return None, None, f"no user {UNPRIVILEGED[0]!r} on this system"
    try:
        gid = grp.getgrnam(UNPRIVILEGED[1]).gr_gid
    except KeyError:
        gid = pwd.getpwnam(UNPRIVILEGED[0]).pw_gid
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "HOME": "/tmp"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import harness.athlete"],
            cwd="/",
            env=env,
            user=uid,
            group=gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=120,
        )
        why = None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]
    except (OSError, subprocess.SubprocessError) as e:
        why = f"{type(e).__name__}: {e}"
    if why is not None:
        why = f"user {UNPRIVILEGED[0]!r} cannot run {sys.executable} with the harness ({why})"
        log.warning("the athlete runs as root: %s", why)
        return None, None, why
    return uid, gid, None


def _load_state(data: bytes, device: torch.device) -> dict[str, torch.Tensor]:
    """An athlete's model state: tensors only (``weights_only``: nothing of it executes)."""
    sd = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ContractError("the model state handed over is not a mapping of tensors")
    return sd


@dataclass
class Snapshot:
    """A model state the athlete handed over between evaluations, with its training time."""

    step: int
    train_time_s: float
    prev_train_time_s: float  # the boundary before it: the resolution of its time
    loss: float | str | None
    data: bytes | None  # in memory, or
    path: Path | None  # spilled to the store's private folder


class Snapshots:
    """The model states kept since the last evaluation that did not meet the target.

    Held as the bytes the athlete sent (never unpickled until evaluated, and then with
    ``weights_only``); past ``cap`` bytes in memory, further ones are written to a private
    temporary folder of the referee's (mode 0700), removed by ``close``."""

    def __init__(self, cap: int | None = None):
        self.cap = SNAPSHOT_MEMORY_CAP if cap is None else cap
        self.items: list[Snapshot] = []
        self.in_memory = 0
        self.folder: Path | None = None
        self.taken = self.spilled = 0

    def add(self, step: int, train_s: float, prev_s: float, loss: Any, data: bytes) -> None:
        snap = Snapshot(step, train_s, prev_s, loss, data, None)
        if self.in_memory + len(data) > self.cap:
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix="ttr-snapshots-"))
            snap.path = self.folder / f"step_{step}.pt"
            snap.path.write_bytes(data)
            snap.data = None
            self.spilled += 1
        else:
            self.in_memory += len(data)
        self.items.append(snap)
        self.taken += 1

    @staticmethod
    def read(snap: Snapshot) -> bytes:
        return snap.data if snap.data is not None else snap.path.read_bytes()

    def clear(self) -> None:
        for snap in self.items:
            if snap.path is not None:
                snap.path.unlink(missing_ok=True)
        self.items, self.in_memory = [], 0

    def close(self) -> None:
        self.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class _Referee:
    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        hw: str,
        trial: int,
        previous: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
        fingerprint: dict[str, Any] | None = None,
    ):
        self.cfg, self.run_dir, self.hw, self.trial = cfg, run_dir, hw, trial
        self.fingerprint = fingerprint or records.trial_fingerprint()
        self.cores = None if cfg.cores is None else pinning.check_cores(cfg.cores)
        self.cutoff_s = math.inf if cfg.cutoff_s is None else float(cfg.cutoff_s)
        self.progress = progress
        self.steps_log = StepLog(run_dir / STEPS_CSV, cfg.steps_every)
        self.previous = previous  # an unfinished record to go on from
        self.wall_before_s = float((previous or {}).get("wall_time_s") or 0.0)
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.evals: list[dict[str, Any]] = []
        self.step = 0
        self.elapsed_s = 0.0  # training time: the sum of the referee's go -> boundary spans
        self.t_go: float | None = None  # when the running segment's go was sent
        self.eval_time_s = 0.0
        self.next_eval_at = 0.0
        self.snaps = Snapshots()
        self.ckpt_asked = False  # whether the pause of the running segment asked a checkpoint
        self.boundary_s = 0.0  # training time of the last step boundary (snapshot or evaluation)
        self.ckpt_train_s = 0.0  # training time of the last checkpoint written
        self.t_start = time.perf_counter()
        self.athlete: _Athlete | None = None
        self.monitor: machine.TrialMonitor | None = None  # the contention check (harness.machine)
        self.eval_state: dict[str, torch.Tensor] | None = None
        self.last_state: dict[str, torch.Tensor] | None = None
        self.spec = None
        self.rec = RunRecord.start(previous, **self._identity())

    def _identity(self) -> dict[str, Any]:
        cfg = self.cfg
        return dict(
            workload=cfg.workload,
            variant=cfg.variant,
            submission=Path(cfg.submission).name,
            study=None if cfg.adhoc else cfg.study,
            trial=self.trial,
            adhoc=cfg.adhoc,
            seed=cfg.seed,
            hparams=dict(cfg.hparams),
            config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            hardware_class=self.hw,
            hardware=self.fingerprint,
            git=records.git_info(str(repo_root())),
            versions=records.package_versions(),
            device=str(self.device),
            cutoff_s=cfg.cutoff_s,
            cutoff_reason=cfg.cutoff_reason,
            pinned=cfg.cores is not None,
        )

    # -- the clock -------------------------------------------------------------------------
    def train_now_s(self) -> float:
        """Training time including a running segment (exact: the referee's own clock)."""
        return self.elapsed_s + (time.perf_counter() - self.t_go if self.t_go else 0.0)

    def wall_s(self) -> float:
        return self.wall_before_s + time.perf_counter() - self.t_start

    def write(self, train_s: float | None = None) -> None:
        self.rec.steps, self.rec.evals, self.rec.eval_time_s = (
            self.step,
            len(self.evals),
            (self.eval_time_s),
        )
        self.rec.write(
            self.run_dir,
            train_s=self.elapsed_s if train_s is None else train_s,
            wall_s=self.wall_s(),
        )

    # -- orchestration -------------------------------------------------------------------
    def run(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handler = _file_handler(self.run_dir / records.LOG_TXT)
        log.addHandler(handler)
        old_term = _install_sigterm()
        _PREEMPT.clear()
        pinned = None
        try:
            if self.cores is not None:  # this process, every thread; the athlete inherits it
                pinned = pinning.Pinned(self.cores).__enter__()
            self.rec.threads["referee"] = pinned.threads if pinned else pinning.threads()
            self.write()
            try:
                status, reason = self._run_guarded()
            except BaseException as e:  # SIGINT, SIGTERM, a scheduler's exit: not a failure
                self._interrupted(e)
                raise
            self._finish(status, reason)
            if not self.cfg.keep_checkpoint and checkpoint.remove(self.run_dir):
                log.info("checkpoint removed (the trial is finished; keep it: --keep-checkpoints)")
        finally:
            self._close_athlete()
            self.snaps.close()
            if pinned is not None:
                pinned.__exit__(None, None, None)
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            log.removeHandler(handler)
            handler.close()
        return RunResult(self.run_dir, self.rec.status, self.rec.reason, self.rec.to_dict())

    def _run_guarded(self) -> tuple[str, str | None]:
        try:
            self._setup()
            return self._loop()
        except (TrialFailed, ContractError, SearchSpaceError, KernelParityError) as e:
            log.error("trial failed: %s", e)
            return "failed", str(e)
        except AthleteGone as e:
            if e.signum in OUTSIDE_SIGNALS and _signalled_from_outside(self.t_start):
                # scancel or a shutdown signalled the referee and its athlete alike: an
                # interruption of a healthy trial (resumable), not the submission's failure
                raise TrialInterrupted(signal.SIGTERM) from e
            log.error("athlete: %s", e)
            return "failed", str(e)
        except Exception as e:  # the workload's or the harness's own fault: still a record
            log.error("internal error:\n%s", traceback.format_exc())
            return (
                "failed",
                f"internal error at step {self.step}: {type(e).__name__}: {e} (see log.txt)",
            )

    def _interrupted(self, e: BaseException) -> None:
        train_s = self.train_now_s()
        self.t_go = None
        if self.athlete is not None:
            self.athlete.kill()
        self.step = max(self.step, self.athlete.steps if self.athlete else 0)
        preempted = _PREEMPT.pop("reason", None)
        if isinstance(e, TrialInterrupted):
            cause = str(e)
        elif isinstance(e, KeyboardInterrupt):
            cause = "interrupted by SIGINT (Ctrl-C)"
        else:
            cause = f"interrupted: {type(e).__name__}: {e}"
        where = (
            f"at step {self.step}, {train_s:.1f} s of training; "
            f"{train_s - self.ckpt_train_s:.1f} s since the last checkpoint are lost"
        )
        try:
            if preempted:
                self.rec.preempt(
                    self.run_dir, f"{preempted} {where}", train_s=train_s, wall_s=self.wall_s()
                )
            else:
                self.rec.steps = self.step
                self.rec.interrupt(
                    self.run_dir, f"{cause} {where}", train_s=train_s, wall_s=self.wall_s()
                )
            log.warning("%s %s", preempted or cause, where)
        except Exception:  # never mask the interruption itself
            log.error("record not written:\n%s", traceback.format_exc())

    # -- setup (off the clock) -----------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        self.spec = spec = get_spec(cfg.workload, cfg.variant)
        self.rec.metric, self.rec.direction, self.rec.target = (
            spec.metric,
            spec.direction,
            spec.target,
        )
        self.sub: SubmissionMeta = submission_meta(cfg.submission)
        if not self.sub.supports(cfg.workload):
            raise ContractError(
                f"submission {cfg.submission!r} supports {list(self.sub.workloads)}, "
                f"not {cfg.workload!r}"
            )
        self.hparams = SearchSpace.load(self.sub.search_space_path).resolve(cfg.hparams)
        kind = "gpu" if self.device.type == "cuda" else "cpu"
        self.budget_s = cfg.budget_s if cfg.budget_s is not None else spec.budget_for(kind)
        self.eval_every_s = cfg.eval_every_s if cfg.eval_every_s is not None else spec.eval_every_s
        self.snapshot_every_s = (
            cfg.snapshot_every_s
            if cfg.snapshot_every_s is not None
            else min(self.eval_every_s, SNAPSHOT_BUDGET_FRACTION * self.budget_s)
        )
        if cfg.snapshot_every_s is not None and not (
            cfg.snapshot_every_s > 0 and math.isfinite(cfg.snapshot_every_s)
        ):
            raise ContractError(
                f"snapshot_every_s must be a positive number of seconds, got {cfg.snapshot_every_s}"
            )
        self.rec.snapshot_every_s = self.snapshot_every_s
        self.watchdog_s = (
            cfg.watchdog_s
            if cfg.watchdog_s is not None
            else max(WATCHDOG_MIN_S, WATCHDOG_BUDGET_FRACTION * self.budget_s)
        )
        self.rec.hparams, self.rec.budget_s, self.rec.spec = (
            dict(self.hparams),
            self.budget_s,
            spec.to_dict(),
        )
        self.rec.submission_git = records.git_info(str(self.sub.path), scope=True)
        self.write()
        torch.manual_seed(derive_seed(cfg.seed, "global"))
        # the referee's instance: it alone builds evaluation splits, from a seed the referee
        # holds (runs/.eval_secret), the same for every submission of a study (paired)
        seed = evalseed.eval_seed(
            Path(cfg.runs), cfg.workload, cfg.variant, None if cfg.adhoc else cfg.study
        )
        self.workload = build_workload(spec, self.device, eval_seed=seed)
        self.ref_model = self.workload.init_model(make_generator(cfg.seed, "init", self.device))
        resume = self._resume()
        self.boundary_s = self.elapsed_s
        self.next_snap_at = self._next_snapshot()
        self.steps_log.start(self.step if self.step else None)
        if machine.contention_checks_enabled():  # probe now, sample the load while it runs
            me = os.getpid()
            # the machine's reference (a pinned trial's class counts only its cores; the
            # reference's probe has a figure per core count: machine.probe_slowdown)
            self.monitor = machine.TrialMonitor(
                records.hardware_class(),
                exclude_pids=lambda: machine.process_tree(me),
                device=self.device,
            )
            self.monitor.start()
        marker, cached = self._parity_cached()
        self.athlete = _Athlete(
            {
                "workload": cfg.workload,
                "variant": cfg.variant,
                "hparams": dict(self.hparams),
                "seed": cfg.seed,
                "device": str(self.device),
                "steps_every": cfg.steps_every,
                "budget_s": self.budget_s,
                "cores": self.cores,
            }
            | {"submission_dir": "submission", "submission_origin": str(self.sub.path)},
            resume,
            self.sub.path,
            self.cores,
        )
        self.rec.athlete = {"pid": self.athlete.pid, "uid": self.athlete.uid or os.getuid()}
        if self.athlete.not_dropped:
            self.rec.athlete["privileges_kept"] = self.athlete.not_dropped
        limit = max(self.watchdog_s, SETUP_LIMIT_S)  # imports, a cold disk, a loaded machine
        ready = self._expect(time.perf_counter() + limit, "get ready", limit)
        self._affinity(ready)
        self._parity(ready.get("kernels") or [], marker, cached)
        log.info(
            "setup done: %s/%s %s on %s, budget %.0f s, hparams %s; athlete pid %d",
            cfg.workload,
            cfg.variant,
            cfg.submission,
            self.device,
            self.budget_s,
            dict(self.hparams),
            self.athlete.pid,
        )

    def _affinity(self, ready: dict[str, Any]) -> None:
        """The athlete's CPU affinity once it is set up, read by the referee from its pid (the
        record's ``cores``), and its thread counts as it reports them; pinned, its own reading
        and the referee's must both be the cores asked."""
        said = sorted(int(c) for c in ready.get("affinity") or ())
        self.rec.cores = sorted(os.sched_getaffinity(self.athlete.pid))
        self.rec.threads["athlete"] = ready.get("threads") or {}
        if self.cores is not None and not (said == self.rec.cores == list(self.cores)):
            raise TrialFailed(
                f"the athlete runs on CPUs {self.rec.cores} (by its own reading: {said}), not "
                f"on the cores it was pinned to {list(self.cores)}"
            )
        self._check_pinned()

    def _check_pinned(self) -> None:
        """Pinned: every thread of the athlete still on the trial's cores (checked at every
        boundary, the athlete stopped); a submission that widened its affinity fails."""
        if self.cores is None or self.athlete is None:
            return
        why = pinning.widened(self.athlete.pid, self.cores)
        if why is not None:
            raise TrialFailed(f"the submission changed its CPU affinity: {why}")

    def _expect(self, deadline: float, what: str, limit: float) -> dict[str, Any]:
        msg = self.athlete.receive(deadline)
        if msg is None:
            self.athlete.kill()
            raise AthleteGone(f"the athlete did not {what} within {limit:.0f} s")
        if msg["type"] == "failed":
            raise TrialFailed(msg["reason"])
        return msg

    def _parity_cached(self) -> tuple[Path | None, bool]:
        """(the cache marker of this submission's kernels here, whether it holds a pass).
        Looked up before the athlete starts: nothing the submission's code writes during
        this trial can answer for it."""
        key = parity_cache_key(self.sub.path, self.cfg.workload, self.device)
        if key is None:
            return None, True
        marker = Path(self.cfg.runs) / ".parity" / f"{key}.json"
        try:
            return marker, json.loads(marker.read_text()).get("key") == key
        except (OSError, ValueError, AttributeError):
            return marker, False

    def _parity(self, kernels: list[dict[str, Any]], marker: Path | None, cached: bool) -> None:
        """Each of the submission's kernels for this workload, available on this device, is
        run by the athlete on the referee's seeded inputs and compared here with the reference
        op. A pass is cached under ``<runs>/.parity``, keyed by the content of the
        submission's kernels folder, the reference ops' sources, versions and device; only the
        referee writes there (the athlete works elsewhere, unprivileged when we are root)."""
        if cached or marker is None:
            return
        results = []
        for k in kernels:
            if not k["replaces"].startswith(f"{self.cfg.workload}.") or not k["available"]:
                continue
            cases, payload = parity_inputs(k["replaces"], self.device)
            self.athlete.send({"type": "parity", "kernel": k["name"]}, payload)
            limit = max(self.watchdog_s, SETUP_LIMIT_S)
            reply = self._expect(time.perf_counter() + limit, "answer a parity check", limit)
            got = torch.load(io.BytesIO(reply["payloads"][0]), weights_only=True)
            checked = parity_compare(k["name"], k["replaces"], cases, got, self.device)
            for r in checked:
                if not r.ok:
                    raise KernelParityError(
                        f"kernel {k['name']} ({k['replaces']}, {r.dtype}) fails parity: {r.detail}"
                    )
            results.extend(checked)
        records.write_json(marker, {"key": marker.stem, "results": [asdict(r) for r in results]})

    def _resume(self) -> bytes | None:
        """The athlete's state from the checkpoint of an earlier attempt, or None (start over:
        none, or unreadable). What the earlier attempt trained after that checkpoint is lost
        work, recorded as wasted training time, never as training time."""
        resume, resume_s = None, 0.0
        if self.previous:
            try:
                ckpt = checkpoint.load(self.run_dir, torch.device("cpu"), weights_only=True)
                if ckpt is not None and ckpt.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError(f"checkpoint format {ckpt.get('format')!r}")
            except Exception as e:  # truncated, corrupt, an older format: start over
                ckpt = None
                self.rec.restarted = (
                    f"checkpoint unreadable ({type(e).__name__}: {e}); started over"
                )
                log.warning("%s", self.rec.restarted)
            if ckpt is not None:
                resume = ckpt["athlete"]
                self.elapsed_s, self.step = ckpt["train_time_s"], ckpt["step"]
                self.evals, self.eval_time_s = list(ckpt["evals"]), ckpt["eval_time_s"]
                self.next_eval_at = ckpt["next_eval_at"]
                self.ckpt_train_s = resume_s = self.elapsed_s
                log.info("resumed from the checkpoint at step %d, %.1f s of training",
                         self.step, resume_s)  # fmt: skip
            elif not self.rec.restarted:
                log.info("no checkpoint from the earlier attempt: starting over")
            lost = max(0.0, float(self.previous.get("train_time_s") or 0.0) - resume_s)
            self.rec.wasted_train_s += lost
            if self.rec.segments:
                self.rec.segments[-1]["lost_train_s"] = lost
        self.rec.segments.append(
            {
                "attempt": self.rec.attempts,
                "start_train_s": resume_s,
                "end_train_s": resume_s,
                "lost_train_s": 0.0,
                "started_unix": self.rec.attempt_started_unix,
            }
        )
        return resume

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> tuple[str, str | None]:
        ath, cfg = self.athlete, self.cfg
        beat = [time.perf_counter()]

        def tick() -> None:  # while the athlete trains: progress and heartbeat, off its clock
            now = time.perf_counter()
            if self.progress is not None:
                self.progress(ath.steps, self.train_now_s(), self.budget_s)
            if now - beat[0] > HEARTBEAT_S:
                self.step = ath.steps
                self.write(self.train_now_s())
                beat[0] = now

        while True:
            stop_at = min(self.next_eval_at, self.next_snap_at, self.budget_s, self.cutoff_s)
            # a checkpoint with the evaluations only (a snapshot's hand-over is the model's),
            # none where the trial ends (the budget, the cutoff)
            wants_ckpt = (
                cfg.checkpoint
                and self.next_eval_at < min(self.budget_s, self.cutoff_s)
                and self.next_eval_at <= self.next_snap_at
            )
            if ath.stopped:
                ath.resume()
            ath.send(
                {
                    "type": "go",
                    "train_time_s": self.elapsed_s,
                    "evals": self.evals,
                    "until_step": cfg.max_steps,
                }
            )
            seg_start = self.elapsed_s
            self.ckpt_asked = wants_ckpt
            self.t_go = t0 = time.perf_counter()  # clock starts
            msg = ath.receive(t0 + max(0.0, stop_at - self.elapsed_s), tick)
            if msg is None:  # time for a boundary: ask, and wait at most the watchdog
                ath.send({"type": "pause", "checkpoint": wants_ckpt})
                msg = ath.receive(time.perf_counter() + self.watchdog_s, tick)
                if msg is None:
                    self.elapsed_s = self.train_now_s()
                    self.t_go = None
                    self.step = ath.steps
                    ath.kill()
                    return "failed", (
                        f"no step boundary within {self.watchdog_s:.0f} s at step {self.step} "
                        "(killed by the watchdog)"
                    )
            t1 = time.perf_counter()  # clock stops: the boundary is in
            ath.stop()
            self.elapsed_s += t1 - t0
            self.t_go = None
            if msg["type"] == "failed":
                self.step = max(self.step, int(msg.get("step") or 0))
                return "failed", msg["reason"]
            outcome = self._boundary(msg, seg_start)
            if outcome is not None:
                return outcome

    def _boundary(self, msg: dict[str, Any], seg_start: float) -> tuple[str, str | None] | None:
        """Off the clock, with the athlete stopped: steps.csv rows, finiteness, evaluation,
        checkpoint. Returns the trial's end, or None to go on."""
        self.step = int(msg["step"])
        self._check_pinned()
        if self.rec.first_step_unix is None:
            self.rec.first_step_unix = time.time()
        rows = msg.get("rows") or []
        for i, (step, since_go, loss, lr) in enumerate(rows):
            t = self.elapsed_s if i == len(rows) - 1 and step == self.step else None
            if t is None:
                t = min(seg_start + float(since_go), self.elapsed_s)
            self.steps_log.add(int(step), t, {"loss": loss, "lr": lr})
        prev_boundary_s, self.boundary_s = self.boundary_s, self.elapsed_s
        if self.elapsed_s >= self.budget_s:  # the state past the budget is never evaluated
            return self._at_budget()
        done = bool(msg.get("done"))
        max_hit = self.cfg.max_steps is not None and self.step >= self.cfg.max_steps
        on_grid = done or max_hit or self.elapsed_s >= self.next_eval_at - 1e-9
        # the cutoff: the state handed over there is evaluated once (off the grid, unless it
        # is on it), so a target met at or before the cutoff is still found and timed exactly
        at_cutoff = self.elapsed_s >= self.cutoff_s - 1e-9
        if on_grid or at_cutoff:
            row, met = self._evaluate(
                msg["payloads"][0],
                self.step,
                self.elapsed_s,
                msg.get("loss"),
                "grid" if on_grid else "cutoff",
            )
            if met:
                self._reached(row, prev_boundary_s)
                return "reached_target", None
            self.snaps.clear()  # a failing evaluation: the states before it cannot count
            if done:
                return "complete", "the submission ended training before reaching the target"
            if max_hit:
                return "complete", f"stopped after max_steps={self.cfg.max_steps} steps"
            if at_cutoff:
                return self._censored()
            self.next_eval_at = self.elapsed_s + self.eval_every_s
            self.next_snap_at = self._next_snapshot()
            if self.ckpt_asked:  # asked at the pause for this evaluation (not for a snapshot)
                self._checkpoint(msg)
            return None
        # a snapshot: kept (off the clock), evaluated only if a later evaluation meets the target
        self.snaps.add(
            self.step, self.elapsed_s, prev_boundary_s, msg.get("loss"), msg["payloads"][0]
        )
        self.next_snap_at = self._next_snapshot()
        self.rec.snapshots += 1
        if rows and int(rows[-1][0]) == self.step:  # last step's end to receipt: the hand-over
            self.rec.snapshot_handover_s += max(
                0.0, self.elapsed_s - seg_start - float(rows[-1][1])
            )
        if self.progress is not None:
            self.progress(self.step, self.elapsed_s, self.budget_s)
        return None

    def _next_snapshot(self) -> float:
        """The training time of the next snapshot; none (inf) where the evaluation grid is as
        fine (an interval of 0 or one not below ``eval_every_s``)."""
        every = self.snapshot_every_s
        if not (0 < every < self.eval_every_s):
            return math.inf
        return self.elapsed_s + every

    def _censored(self) -> tuple[str, str]:
        """The cutoff passed and the state there missed the target: the trial ends censored,
        a miss that is final (not resumed, not retried)."""
        self.rec.censored_at_s = self.elapsed_s
        why = self.cfg.cutoff_reason or f"past {self.cutoff_s:g} s of training"
        reason = f"cutoff {why} at {self.elapsed_s:.2f} s"
        log.info("censored: %s (step %d)", reason, self.step)
        return "censored", reason

    def _at_budget(self) -> tuple[str, str | None]:
        """The budget is spent: the last snapshot within it is evaluated (the closing point of
        the evaluation grid); if it meets the target, so may an earlier one."""
        if not self.snaps.items:
            return "budget_exhausted", None
        last = self.snaps.items[-1]
        row, met = self._evaluate(
            Snapshots.read(last), last.step, last.train_time_s, last.loss, "snapshot"
        )
        if not met:
            return "budget_exhausted", None
        self.snaps.items.pop()
        self._reached(row, last.prev_train_time_s)
        return "reached_target", None

    def _reached(self, row: dict[str, Any], prev_boundary_s: float) -> None:
        """An evaluation met the target: the snapshots kept since the last failing one are
        evaluated in order, and the first that meets it (or else ``row``) gives the time to
        target, with its resolution: the training time since the state handed over before it."""
        met_state = self.eval_state
        for snap in self.snaps.items:
            got, met = self._evaluate(
                Snapshots.read(snap), snap.step, snap.train_time_s, snap.loss, "snapshot"
            )
            if met:
                row, prev_boundary_s, met_state = got, snap.prev_train_time_s, self.eval_state
                break
        self.snaps.clear()
        self.eval_state = met_state
        i = next(j for j, r in enumerate(self.evals) if r is row)
        self.rec.time_to_target_s = row["train_time_s"]
        self.rec.prev_eval_train_time_s = self.evals[i - 1]["train_time_s"] if i else 0.0
        self.rec.steps_to_target = row["step"]
        self.rec.time_resolution_s = row["train_time_s"] - prev_boundary_s
        log.info(
            "time to target %.3f s (step %d, %s evaluation; resolution %.3f s)",
            row["train_time_s"],
            row["step"],
            row["kind"],
            self.rec.time_resolution_s,
        )
        self.write()

    def _evaluate(
        self, data: bytes, step: int, train_s: float, loss: Any, kind: str
    ) -> tuple[dict[str, Any], bool]:
        """Off the clock: the referee's copy of the network with a handed-over state, on the
        validation split. The row goes into evals.jsonl, which is kept in training-time order."""
        t0 = time.perf_counter()
        loss = float(loss) if loss is not None else None
        if loss is not None and not math.isfinite(loss):
            raise TrialFailed(f"non-finite loss ({loss}) by step {step}")
        state = _load_state(data, self.device)
        try:
            self.ref_model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ContractError(
                f"the {self.cfg.workload} model must keep the workload's architecture and "
                f"parameter names: {e}"
            ) from None
        for name, p in self.ref_model.named_parameters():
            if not torch.isfinite(p).all():
                raise TrialFailed(f"non-finite parameter {name!r} by step {step}")
        self.eval_state = state
        self.ref_model.eval()
        with torch.no_grad():
            metrics = self.workload.evaluate(self.ref_model, "validation")
        dt = time.perf_counter() - t0
        self.eval_time_s += dt
        self.rec.snapshot_evals += kind == "snapshot"
        met = self.spec.meets_target(metrics)
        row = {
            "eval": len(self.evals),
            # "grid": on the evaluation grid; "snapshot": a kept state, scanned; "cutoff": the
            # state at the cutoff (RunConfig.cutoff_s)
            "kind": kind,
            "step": step,
            "train_time_s": train_s,
            "wall_time_s": time.perf_counter() - self.t_start,
            "eval_time_s": dt,
            "split": "validation",
            "met_target": met,
            "loss": loss,
            **metrics,
        }
        self.evals.append(row)
        self.evals.sort(key=lambda r: (r["train_time_s"], r["step"]))  # training-time order
        for i, r in enumerate(self.evals):
            r["eval"] = i
        records.write_jsonl(self.run_dir / records.EVALS_JSONL, self.evals)
        self.steps_log.flush()
        if self.progress is not None:
            self.progress(self.step, self.elapsed_s, self.budget_s)
        log.info(
            "eval (%s): step %d, train %.1f s, %s = %.4g (target %.4g)%s",
            kind,
            step,
            train_s,
            self.spec.metric,
            metrics.get(self.spec.metric, math.nan),
            self.spec.target,
            ", target met" if met else "",
        )
        self.write()
        return row, met

    def _checkpoint(self, msg: dict[str, Any]) -> None:
        """Off the clock, after an evaluation: the athlete's state (opaque bytes) and the
        referee's own, written atomically."""
        if not self.cfg.checkpoint:
            return
        error = msg.get("checkpoint_error")
        if error is None and len(msg["payloads"]) < 2:
            error = "the athlete sent no checkpoint"
        if error is None:
            payload = {
                "format": CHECKPOINT_FORMAT,
                "athlete": msg["payloads"][1],
                "step": self.step,
                "train_time_s": self.elapsed_s,
                "next_eval_at": self.next_eval_at,
                "evals": self.evals,
                "eval_time_s": self.eval_time_s,
            }
            t0 = time.perf_counter()
            error = checkpoint.save(self.run_dir, payload)
            self.rec.checkpoint_s += time.perf_counter() - t0
        if error:
            self.rec.checkpoint_error = error
            log.warning("checkpoint skipped (the run cannot resume): %s", error)
            return
        self.ckpt_train_s = self.elapsed_s
        self.rec.segments[-1]["end_train_s"] = self.elapsed_s
        self.write()

    def _close_athlete(self) -> None:
        if self.athlete is None:
            return
        info = self.athlete.close()
        self.rec.athlete.update(info)
        tail = self.athlete.log_tail().strip()
        if tail:
            log.info("athlete output (pid %d):\n%s", info["pid"], tail)
        self.athlete.remove()
        self.athlete = None

    def _finish(self, status: str, reason: str | None) -> None:
        self.t_go = None
        try:
            self.steps_log.flush()
        except Exception:  # observability only: never fails a trial
            log.error("steps.csv not written:\n%s", traceback.format_exc())
        self._close_athlete()
        # a censored trial's test metrics would cost an evaluation that no score reads
        tested = status not in ("failed", "censored") and self.cfg.final_test_eval
        if tested and self.eval_state is not None:
            try:
                self.ref_model.load_state_dict(self.eval_state, strict=True)
                with torch.no_grad():
                    self.rec.test_metrics = self.workload.evaluate(self.ref_model.eval(), "test")
            except Exception as e:  # analysis only: never fails a finished trial
                log.error("test evaluation failed:\n%s", traceback.format_exc())
                self.rec.test_metrics = {"error": f"{type(e).__name__}: {e}"}
        self.rec.steps, self.rec.evals, self.rec.eval_time_s = (
            self.step,
            len(self.evals),
            self.eval_time_s,
        )
        if self.monitor is not None:
            try:
                result = self.monitor.finish()
                self.rec.contention = dict(result)
                self.rec.contended = bool(result.get("contended"))
                self.rec.contended_reason = result.get("reason") if self.rec.contended else None
            except Exception:  # the verdict is evidence, never a reason to lose the record
                log.error("contention check failed:\n%s", traceback.format_exc())
            self.monitor = None
        self.rec.finish(self.run_dir, status, reason, train_s=self.elapsed_s, wall_s=self.wall_s())
        log.info("finished: %s%s -> %s", status, f" ({reason})" if reason else "", self.run_dir)


_TERM_SEEN: list[float] = []  # when this process last received SIGTERM (perf_counter)
OUTSIDE_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
OUTSIDE_GRACE_S = 2.0  # how long the referee waits for its own SIGTERM after its athlete's


def _install_sigterm():
    """Note every SIGTERM this process receives (``_TERM_SEEN``: a scheduler's ``scancel`` or a
    shutdown signals the referee and its athlete alike), then: raise TrialInterrupted in the
    main thread where nobody handled SIGTERM yet (the default would end the process with no
    record), or call the handler already there (e.g. submitit's, which bypasses SIGTERM or
    checkpoints and requeues). Returns the handler to restore, or None."""
    try:
        previous = signal.getsignal(signal.SIGTERM)

        def handler(signum, frame):
            _TERM_SEEN.append(time.perf_counter())
            if previous in (signal.SIG_DFL, None):
                raise TrialInterrupted(signum)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, handler)
        return previous if previous is not None else signal.SIG_DFL
    except ValueError:  # not the main thread: the caller's own handling stands
        return None


def _signalled_from_outside(since: float) -> bool:
    """Whether this process received SIGTERM after ``since``, waiting briefly for it: the
    athlete's death by the same signal can reach the referee before its own signal does."""
    deadline = time.perf_counter() + OUTSIDE_GRACE_S
    while True:
        if any(t >= since for t in _TERM_SEEN):
            return True
        if time.perf_counter() >= deadline:
            return False
        time.sleep(0.05)


def _file_handler(path: Path) -> logging.Handler:
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return h
