"""The runner: trains one submission on one workload variant, owns the clock, writes the record.

One trial flows as

    setup (off the clock): spec, submission, hparams, kernel parity, workload, model, init
    loop:   clock starts -> data_selection / next batch -> update -> clock stops
            budget spent? stop, no evaluation
            every eval_every_s of training time: prepare_for_eval (on the clock), then
            evaluate (off the clock) -> evals.jsonl; target met (with guards)? stop
    finish: a test-split evaluation for analysis, run.json with status and summary

Failures (exceptions, non-finite loss or parameters, out of memory, kernel parity, contract
errors) end the trial as ``status: failed`` with a reason; the traceback goes to log.txt.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from harness import checkpoint, records
from harness.api import ContractError, TrainingComplete, Workload
from harness.clock import Clock
from harness.discovery import Submission, build_workload, get_spec, load_submission
from harness.kernels import KernelParityError, check_kernels
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
    final_test_eval: bool = True  # evaluate the test split once at the end (analysis only)
    checkpoint: bool = True  # checkpoint at every evaluation, so a requeued job resumes
    keep_checkpoint: bool = False  # keep checkpoint.pt once the trial has finished
    adhoc: bool = False  # a run by hand: under adhoc/trial_<t>, never in a planned study's slot
    steps_every: int = 1  # one steps.csv row every this many steps


@dataclass
class RunResult:
    run_dir: Path
    status: str
    reason: str | None
    summary: dict[str, Any]


class TrialFailed(Exception):
    """Ends a trial as failed with a reason meant for the author."""


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


HEARTBEAT_S = 10.0  # wall seconds between run.json updates inside the loop (off the clock)
PROGRESS_S = 0.25  # wall seconds between calls of a run's progress callback
ADHOC = "adhoc"  # the folder of ad-hoc runs, beside the study_<s> folders
STEPS_CSV = "steps.csv"
_ACTIVE: list[_Trial] = []  # the trial this process is running, for note_preemption()


def note_preemption(reason: str = "preempted") -> None:
    """Record that this process is being preempted (called from a job's signal handler): the
    training time since the last checkpoint is lost work, counted as wasted, not as training."""
    for trial in _ACTIVE:
        trial.record.update(status="preempted", reason=reason)
        trial._write_record(train_s=trial.clock.now_s() if hasattr(trial, "clock") else 0.0)


ProgressFn = Callable[[int, float, float], None]  # (steps, training seconds, budget seconds)


def run_trial(cfg: RunConfig, progress: ProgressFn | None = None) -> RunResult:
    """Run one trial to target, budget or failure; never raises for a submission's fault.

    A trial directory with an unfinished record resumes from its checkpoint (or starts over
    when it has none); a finished one is never touched. ``progress``, if given, is called
    from the training loop (off the clock) at most every ``PROGRESS_S`` wall seconds."""
    hw = records.hardware_class()
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
            previous = records.read_run(run_dir)
        return _Trial(cfg, run_dir, hw, trial, previous, progress).run()


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


class _Trial:
    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        hw: str,
        trial: int,
        previous=None,
        progress: ProgressFn | None = None,
    ):
        self.cfg, self.run_dir, self.hw, self.trial = cfg, run_dir, hw, trial
        self.progress = progress
        self.steps_log = StepLog(run_dir / STEPS_CSV, cfg.steps_every)
        self.previous: dict[str, Any] | None = previous  # an unfinished record to go on from
        self.wall_before_s = float((previous or {}).get("wall_time_s") or 0.0)
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.evals: list[dict[str, Any]] = []
        self.record: dict[str, Any] = {}
        self.step = 0
        self.eval_time_s = 0.0
        self.t_start = time.perf_counter()

    # -- orchestration -------------------------------------------------------------------
    def run(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handler = _file_handler(self.run_dir / records.LOG_TXT)
        log.addHandler(handler)
        _ACTIVE.append(self)
        try:
            self._write_start()
            status, reason = self._run_guarded()
            self._finish(status, reason)
            if not self.cfg.keep_checkpoint and checkpoint.remove(self.run_dir):
                log.info("checkpoint removed (the trial is finished; keep it: --keep-checkpoints)")
        finally:
            _ACTIVE.remove(self)
            log.removeHandler(handler)
            handler.close()
        return RunResult(self.run_dir, self.record["status"], self.record["reason"], self.record)

    def _run_guarded(self) -> tuple[str, str | None]:
        try:
            self._setup()
            return self._loop()
        except (TrialFailed, ContractError, SearchSpaceError, KernelParityError) as e:
            log.error("trial failed: %s", e)
            return "failed", str(e)
        except torch.OutOfMemoryError as e:
            log.error("out of memory:\n%s", traceback.format_exc())
            return "failed", f"out of memory at step {self.step}: {str(e).splitlines()[0]}"
        except KeyboardInterrupt:
            self._finish("failed", f"interrupted at step {self.step}")
            raise
        except Exception as e:  # the workload's or the harness's own fault: still a record
            log.error("internal error:\n%s", traceback.format_exc())
            return (
                "failed",
                f"internal error at step {self.step}: {type(e).__name__}: {e} (see log.txt)",
            )

    # -- setup (off the clock) -----------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        self.spec = get_spec(cfg.workload, cfg.variant)
        self.sub: Submission = load_submission(cfg.submission)
        if not self.sub.supports(cfg.workload):
            raise ContractError(
                f"submission {cfg.submission!r} supports {list(self.sub.workloads)}, "
                f"not {cfg.workload!r}"
            )
        self.hparams = MappingProxyType(
            SearchSpace.load(self.sub.search_space_path).resolve(cfg.hparams)
        )
        kind = "gpu" if self.device.type == "cuda" else "cpu"
        self.budget_s = cfg.budget_s if cfg.budget_s is not None else self.spec.budget_for(kind)
        self.eval_every_s = (
            cfg.eval_every_s if cfg.eval_every_s is not None else self.spec.eval_every_s
        )
        self.record.update(
            hparams=dict(self.hparams),
            budget_s=self.budget_s,
            spec=self.spec.to_dict(),
            submission_git=records.git_info(str(self.sub.path), scope=True),
        )
        self._write_record()
        check_kernels(
            self.sub, self.device, workload=cfg.workload, cache_dir=Path(cfg.runs) / ".parity"
        )  # raises KernelParityError
        torch.manual_seed(derive_seed(cfg.seed, "global"))
        self.workload: Workload = build_workload(self.spec, self.device)
        self.model = self.workload.init_model(make_generator(cfg.seed, "init", self.device))
        self.batch_size = (
            int(self._call("get_batch_size", self.workload))
            if self.sub.fn("get_batch_size") is not None
            else int(self.spec.batch_size_hint)
        )
        self.rng = make_generator(cfg.seed, "update", self.device)
        self.state = self._call("init", self.workload, self.model, self.hparams, self.rng)
        self.data_rng = make_generator(cfg.seed, "data", self.device)
        self.streams = self.workload.train_streams(self.batch_size, self.data_rng)
        self.clock = Clock(self.workload.synchronize)
        self.next_eval_at = 0.0
        self._resume()
        self.steps_log.start(self.step if self.step else None)
        self.train_state: dict[str, Any] = {
            "train_time_s": self.clock.elapsed_s,
            "budget_s": self.budget_s,
            "step": self.step,
            "evals": tuple(MappingProxyType(r) for r in self.evals),
        }
        log.info(
            "setup done: %s/%s %s on %s, budget %.0f s, hparams %s",
            cfg.workload,
            cfg.variant,
            cfg.submission,
            self.device,
            self.budget_s,
            dict(self.hparams),
        )

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fn = self.sub.fn(name)
        try:
            return fn(*args, **kwargs)
        except (TrainingComplete, KeyboardInterrupt, torch.OutOfMemoryError):
            raise
        except Exception as e:
            log.error("%s raised at step %d:\n%s", name, self.step, traceback.format_exc())
            raise TrialFailed(f"{name} raised at step {self.step}: {type(e).__name__}: {e}") from e

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> tuple[str, str | None]:
        select = self.sub.fn("data_selection")
        wants_ts = self.sub.update_takes_train_state()
        view = MappingProxyType(self.train_state)
        extra = {"train_state": view} if wants_ts else {}
        done = False
        train = self.streams["train"]
        beat = shown = time.perf_counter()
        steps_log, progress = self.steps_log, self.progress
        while True:
            self.clock.start()  # clock starts
            try:
                batch = (
                    self._call(
                        "data_selection",
                        self.workload,
                        self.streams,
                        self.state,
                        self.step,
                        self.rng,
                    )
                    if select
                    else next(train)
                )
                self.state = self._call(
                    "update",
                    self.workload,
                    self.model,
                    self.state,
                    batch,
                    self.hparams,
                    self.step,
                    self.rng,
                    **extra,
                )
            except TrainingComplete:
                done = True
            finally:
                self.clock.stop()  # clock stops
            self.step += 1
            if self.record["first_step_unix"] is None:
                self.record["first_step_unix"] = time.time()
            self.train_state.update(train_time_s=self.clock.elapsed_s, step=self.step)
            steps_log.add(self.step, self.clock.elapsed_s, self.state)
            if self.clock.elapsed_s >= self.budget_s:
                return "budget_exhausted", None  # no evaluation once the budget is spent
            if done or self.clock.elapsed_s >= self.next_eval_at:
                met = self._evaluate()
                if met:
                    return "reached_target", None
                if done:
                    return "complete", "the submission ended training before reaching the target"
                self.next_eval_at = self.clock.elapsed_s + self.eval_every_s
                self._checkpoint()
                continue
            now = time.perf_counter()
            if now - beat > HEARTBEAT_S:  # lets a preempted run's loss show
                self._write_record()
                beat = now
            if progress is not None and now - shown > PROGRESS_S:
                progress(self.step, self.clock.elapsed_s, self.budget_s)
                shown = now

    def _evaluate(self) -> bool:
        prepare = self.sub.fn("prepare_for_eval")
        model = self.model
        if prepare:
            self.clock.start()  # clock starts: preparing the model is the submission's work
            try:
                model = self._call("prepare_for_eval", self.workload, self.model, self.state)
            finally:
                self.clock.stop()  # clock stops
        self.eval_model = model
        t0 = time.perf_counter()
        loss = self._check_finite(model)
        with torch.no_grad():
            metrics = self.workload.evaluate(model, "validation")
        dt = time.perf_counter() - t0
        self.eval_time_s += dt
        met = self.spec.meets_target(metrics)
        row = {
            "eval": len(self.evals),
            "step": self.step,
            "train_time_s": self.clock.elapsed_s,
            "wall_time_s": time.perf_counter() - self.t_start,
            "eval_time_s": dt,
            "split": "validation",
            "met_target": met,
            "loss": loss,
            **metrics,
        }
        self.evals.append(row)
        self.train_state["evals"] = tuple(MappingProxyType(r) for r in self.evals)
        records.write_jsonl(self.run_dir / records.EVALS_JSONL, self.evals)
        self.steps_log.flush()
        if self.progress is not None:
            self.progress(self.step, self.clock.elapsed_s, self.budget_s)
        log.info(
            "eval %d: step %d, train %.1f s, %s = %.4g (target %.4g)%s",
            row["eval"],
            self.step,
            self.clock.elapsed_s,
            self.spec.metric,
            metrics.get(self.spec.metric, math.nan),
            self.spec.target,
            ", target met" if met else "",
        )
        if met:
            prev = self.evals[-2]["train_time_s"] if len(self.evals) > 1 else 0.0
            self.record.update(
                time_to_target_s=self.clock.elapsed_s,
                prev_eval_train_time_s=prev,
                steps_to_target=self.step,
            )
        self._write_record()
        return met

    def _generators(self) -> dict[str, torch.Generator]:
        return {"update": self.rng, "data": self.data_rng}

    def _resume(self) -> None:
        """Go on from the checkpoint of an earlier attempt; what it trained after that
        checkpoint is lost work, recorded as wasted training time, never as training time."""
        ckpt = checkpoint.load(self.run_dir, self.device) if self.previous else None
        resume_s = 0.0
        if ckpt is not None:
            self.model, self.state = ckpt["model"], ckpt["state"]
            checkpoint.restore_generators(self._generators(), ckpt["rng"])
            self.clock.elapsed_s, self.step = ckpt["train_time_s"], ckpt["step"]
            self.evals, self.eval_time_s = ckpt["evals"], ckpt["eval_time_s"]
            self.next_eval_at = ckpt["next_eval_at"]
            resume_s = self.clock.elapsed_s
            log.info(
                "resumed from the checkpoint at step %d, %.1f s of training", self.step, resume_s
            )
        elif self.previous:
            log.info("no checkpoint from the earlier attempt: starting over")
        if self.previous:
            lost = max(0.0, float(self.previous.get("train_time_s") or 0.0) - resume_s)
            self.record["wasted_train_s"] += lost
            if self.record["segments"]:
                self.record["segments"][-1]["lost_train_s"] = lost
        self.record["segments"].append(
            {
                "attempt": self.record["attempts"],
                "start_train_s": resume_s,
                "end_train_s": resume_s,
                "lost_train_s": 0.0,
                "started_unix": self.record["attempt_started_unix"],
            }
        )

    def _checkpoint(self) -> None:
        """Off the clock, after an evaluation: everything needed to go on from here."""
        if not self.cfg.checkpoint:
            return
        payload = {
            "model": self.model,
            "state": self.state,
            "step": self.step,
            "train_time_s": self.clock.elapsed_s,
            "next_eval_at": self.next_eval_at,
            "evals": self.evals,
            "eval_time_s": self.eval_time_s,
            "rng": checkpoint.generator_states(self._generators()),
        }
        t0 = time.perf_counter()
        error = checkpoint.save(self.run_dir, payload)
        self.record["checkpoint_s"] = (
            self.record.get("checkpoint_s", 0.0) + time.perf_counter() - t0
        )
        if error:
            self.record["checkpoint_error"] = error
            log.warning("checkpoint skipped (the run cannot resume): %s", error)
            return
        self.record["segments"][-1]["end_train_s"] = self.clock.elapsed_s
        self._write_record()

    def _check_finite(self, model: torch.nn.Module) -> float | None:
        """The submission's last loss (``state["loss"]``, if it reports one) and the parameters
        must be finite; checked at each evaluation so the hot loop never synchronizes."""
        raw = self.state.get("loss") if isinstance(self.state, Mapping) else None
        loss = float(raw) if raw is not None else None
        if loss is not None and not math.isfinite(loss):
            raise TrialFailed(f"non-finite loss ({loss}) by step {self.step}")
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise TrialFailed(f"non-finite parameter {name!r} by step {self.step}")
        return loss

    # -- records -------------------------------------------------------------------------
    def _write_start(self) -> None:
        cfg = self.cfg
        root = str(Path(__file__).resolve().parent.parent)
        self.record.update(
            schema=records.SCHEMA,
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
            hardware=records.hardware_fingerprint(),
            git=records.git_info(root),
            versions=records.package_versions(),
            device=str(self.device),
            status="running",
            reason=None,
            started_at=records.utcnow(),
            attempt_started_unix=time.time(),  # this attempt's process start, sub-second
            first_step_unix=None,  # this attempt's first training step done (setup overhead)
            host=socket.gethostname(),
            pid=os.getpid(),
            ended_at=None,
            time_to_target_s=None,
            prev_eval_train_time_s=None,
            steps_to_target=None,
            attempts=1,
            segments=[],
            wasted_train_s=0.0,
        )
        if self.previous:  # a requeued or restarted attempt: keep its history
            prev = self.previous
            self.record.update(
                started_at=prev.get("started_at", self.record["started_at"]),
                attempts=int(prev.get("attempts") or 1) + 1,
                segments=list(prev.get("segments") or []),
                wasted_train_s=float(prev.get("wasted_train_s") or 0.0),
            )
        self._write_record()

    def _write_record(self, train_s: float | None = None) -> None:
        clock = getattr(self, "clock", None)
        if train_s is None:
            train_s = clock.elapsed_s if clock else 0.0
        spec = getattr(self, "spec", None)
        self.record.update(
            metric=spec.metric if spec else None,
            direction=spec.direction if spec else None,
            target=spec.target if spec else None,
            train_time_s=train_s,
            wall_time_s=self.wall_before_s + time.perf_counter() - self.t_start,
            eval_time_s=self.eval_time_s,
            steps=self.step,
            s_per_step=train_s / self.step if self.step else None,
            evals=len(self.evals),
        )
        records.write_json(self.run_dir / records.RUN_JSON, self.record)

    def _finish(self, status: str, reason: str | None) -> None:
        try:
            self.steps_log.flush()
        except Exception:  # observability only: never fails a trial
            log.error("steps.csv not written:\n%s", traceback.format_exc())
        if status != "failed" and self.cfg.final_test_eval:
            try:
                with torch.no_grad():
                    model = getattr(self, "eval_model", self.model)
                    self.record["test_metrics"] = self.workload.evaluate(model, "test")
            except Exception as e:  # analysis only: never fails a finished trial
                log.error("test evaluation failed:\n%s", traceback.format_exc())
                self.record["test_metrics"] = {"error": f"{type(e).__name__}: {e}"}
        if self.record["segments"] and hasattr(self, "clock"):
            self.record["segments"][-1]["end_train_s"] = self.clock.elapsed_s
        self.record.update(status=status, reason=reason, ended_at=records.utcnow())
        self._write_record()
        log.info("finished: %s%s -> %s", status, f" ({reason})" if reason else "", self.run_dir)


def _file_handler(path: Path) -> logging.Handler:
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return h
