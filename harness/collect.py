"""``ttr collect``: every run directory under ``runs/`` into one frame, with its problems.

Two frames come out. ``evals``: one row per evaluation of every readable run (identity, curve,
every metric, ``hp.<name>`` hyperparameters, provenance, status and ``ranked``), for curves and
analysis. ``trials``: one row per trial that may be ranked, from the run.json summaries, for
``harness.scoring``; every miss has ``time_to_target_s`` +inf, and a trial stopped at a cutoff
(status ``censored``) says so in ``censored`` and ``censored_at_s`` (``trial_outcome``). A run
directory that cannot be trusted is never dropped silently: it becomes a ``Problem(path,
reason)`` and stays out of ``trials`` (the benchmark's rule: reported, not ranked).

- run.json missing, not JSON, or without the identity keys: skipped.
- run.json whose identity disagrees with its directory (a moved or copied run): skipped.
- status "running": in progress; its evaluations so far are kept, unranked.
- evals.jsonl truncated or with bad lines, or fewer rows than run.json counts: the complete rows
  are kept, the trial is not ranked.
- a trial recorded ``contended`` (its machine was slower than its reference or shared its
  cores, ``harness.machine``): kept in ``evals``, not ranked, listed as ``contended: <reason>``.
- an ad-hoc run (``ttr run`` without ``--study``/``--trial``, under ``adhoc/``): part of no
  planned study, so in neither frame; listed in ``CollectResult.adhoc``.
- a finished record that contradicts its workload's spec or its own evaluations (see
  ``contradictions``): its evaluations are kept, unranked, and each contradiction is named.
- a failed attempt kept by ``ttr sweep --retry-failed`` (``trial_<t>/failed_attempts/<n>/``),
  or a record moved aside before its trial ran again (``trial_<t>.contended-<time>``,
  ``.corrupt-<time>``, ``.interrupted-<time>``: ``sweep.sort_jobs``): history of a trial that
  ran again, in neither frame and not a problem.

``write_csv`` writes both frames as CSV; ``export_tensorboard`` writes every run's steps.csv
and evaluations as TensorBoard scalars (the ``tensorboard`` extra).
"""

from __future__ import annotations

import csv
import datetime as _dt
import importlib.util
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness import discovery, records
from harness.api import ContractError, WorkloadSpec
from harness.records import (
    EVALS_JSONL,
    FAILED_ATTEMPTS,
    FINISHED,
    RUN_JSON,
    SCHEMA,
    UNFINISHED,
    _clean,
    atomic_write,
)

IDENTITY = ["hardware_class", "workload", "variant", "submission", "study", "trial", "seed"]
CURVE = ["eval", "step", "train_time_s", "wall_time_s", "eval_time_s", "split", "met_target"]
PROVENANCE = ["git_commit", "git_dirty", "torch", "cpu", "gpu"]
RUN = ["status", "reason", "ranked", "metric", "direction", "target", "cutoff_s", "censored_at_s"]
SUMMARY = [
    "time_to_target_s",
    "prev_eval_train_time_s",
    "steps_to_target",
    "steps",
    "s_per_step",
    "train_time_s",
    "wall_time_s",
    "eval_time_s",
    "device_s",
    "wasted_train_s",
    "budget_s",
    "evals",
    "cutoff_s",  # the trial's cutoff (RunConfig.cutoff_s); NaN: none
    "censored_at_s",  # a censored trial's stopping time (trial_outcome); NaN: not censored
]
REQUIRED = ("hardware_class", "workload", "variant", "submission", "study", "trial", "status")


@dataclass(frozen=True)
class Problem:
    """A run directory left out of the ranking (or suspicious), with the reason in words."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class CollectResult:
    evals: pd.DataFrame  # one row per evaluation
    trials: pd.DataFrame  # one row per rankable trial
    problems: list[Problem] = field(default_factory=list)
    parquet: Path | None = None  # where ``evals`` was written, if it was
    adhoc: list[Path] = field(default_factory=list)  # ad-hoc runs: in no frame, never ranked


def find_run_dirs(runs: Path) -> list[Path]:
    """Trial directories in the records layout, plus any other directory holding a run.json."""
    dirs = {p for p in runs.glob("*/*/*/*/study_*/trial_*") if p.is_dir()}
    dirs |= {p.parent for p in runs.rglob(RUN_JSON)}
    return sorted(
        d
        for d in dirs
        if FAILED_ATTEMPTS not in d.relative_to(runs).parts and not records.is_moved_aside(d)
    )


def _no_record_reason(d: Path) -> str:
    """Why a trial directory has no run.json, in the words a reader of "left out" needs."""
    moved = [p for p in d.parent.glob(f"{d.name}.*") if p.is_dir() and records.is_moved_aside(p)]
    if moved:
        last = max(moved).name  # trial_<t>.<why>-<time>: the latest move
        why = last[len(d.name) + 1 :].split("-", 1)[0]
        return (
            f"no run.json: its earlier attempt was moved aside ({why}, {last}) "
            "for a rerun that has not started yet; the next sweep or bench runs it"
        )
    return "no run.json (the run never started its record, or it was deleted)"


def _load_run(d: Path) -> dict[str, Any] | str:
    """run.json as a dict, or the reason it cannot be used."""
    try:
        run = json.loads((d / RUN_JSON).read_text())
    except FileNotFoundError:
        return _no_record_reason(d)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"corrupt run.json ({type(e).__name__}: {e})"
    if not isinstance(run, dict):
        return "corrupt run.json (not a JSON object)"
    adhoc = run.get("adhoc") is True  # an ad-hoc run belongs to no study
    missing = [k for k in REQUIRED if run.get(k) is None and not (adhoc and k == "study")]
    if missing:
        return f"run.json lacks {missing}"
    if not all(
        isinstance(run[k], int) and not isinstance(run[k], bool)
        for k in (("trial",) if adhoc else ("study", "trial"))
    ):
        return f"run.json study and trial must be integers, got {run['study']!r}, {run['trial']!r}"
    if run.get("schema", SCHEMA) != SCHEMA:
        return f"run.json schema {run.get('schema')!r}, this harness reads {SCHEMA}"
    if run["status"] not in (*UNFINISHED, *FINISHED):
        return f"unknown status {run['status']!r}"
    return run


def _identity_mismatch(run: dict[str, Any], d: Path, runs: Path) -> str | None:
    """Where the directory is in the records layout, it must name the same trial as run.json."""
    try:
        parts = d.relative_to(runs).parts
    except ValueError:
        return None
    if len(parts) != 6 or not parts[4].startswith("study_") or not parts[5].startswith("trial_"):
        return None
    keys = ("hardware_class", "workload", "variant", "submission", "study", "trial")
    said = (*(str(run[k]) for k in keys[:4]), f"study_{run['study']}", f"trial_{run['trial']}")
    if said != parts:
        return f"run.json names {'/'.join(said)}, but the directory is {'/'.join(parts)}"
    return None


def _read_evals(d: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The complete rows of evals.jsonl, and what was wrong with the rest (None if nothing)."""
    try:
        text = (d / EVALS_JSONL).read_text()
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError) as e:
        return [], f"unreadable evals.jsonl ({e})"
    rows, bad = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            rows.append(row)
        except ValueError:
            bad.append(i)
    if not bad:
        return rows, None
    if bad == [len(lines)] and not text.endswith("\n"):
        return rows, f"evals.jsonl truncated: line {len(lines)} is incomplete"
    return rows, f"evals.jsonl lines {bad} are not valid JSON"


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else np.nan


def _device_s(run: dict[str, Any]) -> float:
    """The trial's wall time; from its timestamps when the summary lacks it (a crashed run)."""
    wall = _num(run.get("wall_time_s"))
    if np.isfinite(wall):
        return wall
    try:
        start = _dt.datetime.fromisoformat(run["started_at"])
        return (_dt.datetime.fromisoformat(run["ended_at"]) - start).total_seconds()
    except (KeyError, TypeError, ValueError):
        return np.nan


def _contended(run: dict[str, Any]) -> str | None:
    """``contended: <reason>`` when the trial's machine was loaded or slow (harness.machine)."""
    from harness.machine import contended_reason

    return contended_reason(run)


def trial_outcome(run: Mapping[str, Any]) -> dict[str, Any]:
    """A finished record's outcome as scoring reads it: ``time_to_target_s`` (+inf for every
    miss: the budget spent, training ended, a failure, a cutoff), ``censored`` (stopped at a
    cutoff, status "censored") and ``censored_at_s`` (the training time of the state evaluated
    at the cutoff, which missed the target: the time up to which the trial is known to have
    missed; NaN for a trial that was not censored). Every trial row carries these columns."""
    ttt = _num(run.get("time_to_target_s"))
    censored = run.get("status") == "censored"
    at = _num(run.get("censored_at_s")) if censored else np.nan
    if censored and not np.isfinite(at):  # an older record: where it stopped
        at = _num(run.get("train_time_s"))
    return {
        "time_to_target_s": ttt if np.isfinite(ttt) and not censored else np.inf,
        "censored": censored,
        "censored_at_s": at,
    }


def _trial_row(run: dict[str, Any], d: Path) -> dict[str, Any]:
    row = {k: run.get(k) for k in IDENTITY} | {"run_dir": str(d)}
    row |= {k: run.get(k) for k in ("status", "reason", "metric", "direction", "target")}
    row |= {k: run.get(k) for k in ("started_at", "ended_at")}  # the report's date line
    row |= {k: _num(run.get(k)) for k in SUMMARY}
    row |= trial_outcome(run)  # a miss is explicit: +inf; a censored one says where it stopped
    row["device_s"] = _device_s(run)
    row |= _provenance(run)
    row |= {f"hp.{k}": v for k, v in (run.get("hparams") or {}).items()}
    return row


def _provenance(run: dict[str, Any]) -> dict[str, Any]:
    git, hw = run.get("git") or {}, run.get("hardware") or {}
    versions = run.get("versions") or {}
    return {
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "torch": versions.get("torch") or hw.get("torch"),
        "cpu": hw.get("cpu"),
        "gpu": hw.get("gpu"),
    }


def _eval_rows(run: dict[str, Any], d: Path, rows: list[dict], ranked: bool) -> list[dict]:
    ident = {k: run.get(k) for k in IDENTITY} | {"run_dir": str(d)}
    hp = {f"hp.{k}": v for k, v in (run.get("hparams") or {}).items()}
    tail = _provenance(run) | {k: run.get(k) for k in RUN if k != "ranked"} | {"ranked": ranked}
    return [{**r, **ident, **hp, **tail} for r in rows]


def _collect_one(
    d: Path, runs: Path, problems: list[Problem], adhoc: list[Path]
) -> tuple[dict | None, list[dict]]:
    """One run directory: its trial row (None if it may not be ranked) and its eval rows."""
    run = _load_run(d)
    if isinstance(run, str):
        problems.append(Problem(d, run))
        return None, []
    if run.get("adhoc") is True:
        adhoc.append(d)
        return None, []
    if why := _identity_mismatch(run, d, runs):
        problems.append(Problem(d, why))
        return None, []
    rows, why = _read_evals(d)
    if run["status"] == "running":
        why = "in progress (status running)"
    elif run["status"] in UNFINISHED:
        why = f"interrupted (status {run['status']}: {run.get('reason')}); resumable"
    elif why is None and isinstance(run.get("evals"), int) and len(rows) < run["evals"]:
        why = f"evals.jsonl has {len(rows)} rows, run.json counts {run['evals']}"
    if why is None and (bad := contradictions(run, rows, d)):
        why = "the record contradicts " + "; ".join(bad)
    why = why or _contended(run)
    if why:
        problems.append(Problem(d, f"{why}; not ranked"))
    return (None if why else _trial_row(run, d)), _eval_rows(run, d, rows, ranked=not why)


# -- a record checked against its spec and its own evaluations -----------------------------

_TIMES = ("train_time_s", "wall_time_s", "eval_time_s", "time_to_target_s")
_TIMES += ("prev_eval_train_time_s", "s_per_step", "budget_s", "time_resolution_s")
_TIMES += ("cutoff_s", "censored_at_s")
KINDS = ("grid", "snapshot", "cutoff")  # evals.jsonl's kinds of evaluation (harness.records)
_ROW_TIMES = ("train_time_s", "wall_time_s", "eval_time_s")


def _spec(workload: Any, variant: Any) -> WorkloadSpec | None:
    """The workload's own spec of that variant; None for a workload this harness lacks."""
    try:
        return discovery.get_spec(str(workload), str(variant))
    except ContractError:
        return None


def _budget_multiplier(d: Path, run: Mapping[str, Any] | None = None) -> float:
    """The saved plan's budget multiplier (``SELF_TUNING_BUDGET_MULTIPLIER`` for a self-tuning
    plan, as saved), 1 without a readable plan. A pinned trial (``RunConfig.cores``) is filed
    under a class that counts its cores, while its plan was saved under the machine's class
    (``sweep.plan_jobs``): without a plan of its own, the machine's is read."""
    hardware = (run or {}).get("hardware") or {}
    places = [d.parents[1]] if len(d.parents) > 1 else []
    if hardware.get("machine_cpu_cores") and len(d.parents) > 5:
        machine = records.hardware_class({**hardware, "cpu_cores": hardware["machine_cpu_cores"]})
        below = d.parents[1].relative_to(d.parents[5]).parts[1:]  # workload/variant/submission
        places.append(d.parents[5].joinpath(machine, *below))
    for place in places:
        try:
            plan = json.loads((place / "plan.json").read_text())
            return float(plan.get("budget_multiplier", 1.0))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError, AttributeError):
            return 1.0
    return 1.0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _met(run: dict[str, Any], spec: WorkloadSpec | None, row: dict[str, Any]) -> bool:
    """Does this evaluation meet the target? Recomputed from the metric (the row's own
    met_target is not trusted): by the workload's spec (its guards included), or for a workload
    this harness lacks, by the record's metric, direction and target."""
    if spec is not None:
        return spec.meets_target({k: v for k, v in row.items() if isinstance(v, (int, float))})
    x, target = _num(row.get(run.get("metric"))), _num(run.get("target"))
    if not (np.isfinite(x) and np.isfinite(target)):
        return False
    return bool(x <= target if run.get("direction") == "min" else x >= target)


def contradictions(run: dict[str, Any], rows: list[dict[str, Any]], d: Path) -> list[str]:
    """What a finished record says that its workload's spec or its own evaluations deny, in
    words (empty: nothing). The referee wrote the record; these catch one edited afterwards.

    - metric, direction, target (and the record's copy of the spec) differ from the spec of
      the variant (``discovery.get_spec``; a workload this harness lacks: from the record's
      own spec), or the budget exceeds the spec's (times the plan's budget multiplier);
    - a negative or non-numeric time; ``s_per_step`` that is not ``train_time_s / steps``;
    - a training time over the budget by more than one step (the record's own s_per_step)
      plus 1% of the budget (the step and the boundary that cross it);
    - ``reached_target`` without an evaluation whose metric meets the target, or
      ``time_to_target_s`` / ``prev_eval_train_time_s`` other than the training time of the
      first evaluation that met it / of the one before, in training-time order, grid and
      snapshot evaluations alike (docs/design.md#the-clock); a ``time_resolution_s`` outside
      [0, time to target - that previous evaluation's time]; an evaluation that says it met
      the target when its metric does not; an evaluation of an unknown ``kind``; another
      status with a time to target, or (missed statuses) with an evaluation that met it;
    - a cutoff (``cutoff_s``) that is not a positive number, a ``cutoff`` evaluation before it
      or without one; ``censored`` without a cutoff, without ``censored_at_s`` at or past the
      cutoff and equal to the training time, without a (failing) evaluation of the state
      there, with an evaluation after it, or with a reason that does not name the cutoff;
      ``censored_at_s`` on a trial that was not censored."""
    bad: list[str] = []
    name = f"{run.get('workload')}/{run.get('variant')}"
    spec = _spec(run.get("workload"), run.get("variant"))
    saved = run.get("spec") if isinstance(run.get("spec"), dict) else {}
    expected = spec.to_dict() if spec is not None else saved
    for key in ("metric", "direction", "target"):
        if key in expected and not _same(run.get(key), expected[key]):
            bad.append(f"{key} {run.get(key)!r}: the spec of {name} says {expected[key]!r}")
    if spec is not None:
        for key in ("metric", "direction", "target", "budget_s", "guards", "eval_every_s"):
            ref = _clean(expected.get(key))
            if key in saved and not _same(saved[key], ref):
                bad.append(f"spec.{key} {saved[key]!r}: the spec of {name} says {ref!r}")
    for key in _TIMES:
        x = run.get(key)
        if x is None:
            continue
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            bad.append(f"{key} {x!r} is not a number")
        elif x < 0:
            bad.append(f"negative {key} ({x})")
    for i, row in enumerate(rows):
        for key in _ROW_TIMES:
            x = row.get(key)
            if isinstance(x, (int, float)) and not isinstance(x, bool) and x < 0:
                bad.append(f"evaluation {i}: negative {key} ({x})")
    budget, train = _num(run.get("budget_s")), _num(run.get("train_time_s"))
    if spec is not None and np.isfinite(budget):
        kind = "gpu" if str(run.get("device", "")).startswith("cuda") else "cpu"
        try:
            allowed = spec.budget_for(kind) * _budget_multiplier(d, run)
        except ContractError:
            allowed = math.inf
        if budget > allowed * (1 + 1e-9):
            bad.append(f"budget_s {budget:g} exceeds the {kind} budget of {name} ({allowed:g})")
    steps, per = _num(run.get("steps")), _num(run.get("s_per_step"))
    if np.isfinite(per) and np.isfinite(train) and np.isfinite(steps) and steps > 0:
        if not math.isclose(per, train / steps, rel_tol=1e-6, abs_tol=1e-12):
            bad.append(f"s_per_step {per:g} is not train_time_s / steps ({train / steps:g})")
    if np.isfinite(budget):
        # the step in progress when the budget passed ends past it: one step, which on a
        # loaded machine can take a few times the mean (seen: 0.25 s against 0.15 s)
        tol = 3.0 * (per if np.isfinite(per) and per > 0 else 0.0) + 0.01 * budget
        over = [("train_time_s", train), ("time_to_target_s", _num(run.get("time_to_target_s")))]
        for i, r in enumerate(rows):
            over.append((f"evaluation {i}'s train_time_s", _num(r.get("train_time_s"))))
        for what, t in over:
            if np.isfinite(t) and t > budget + tol:
                bad.append(f"{what} {t:g} s is over the budget {budget:g} s (tolerance {tol:g} s)")
    for i, r in enumerate(rows):
        if r.get("kind", "grid") not in KINDS:
            bad.append(f"evaluation {i}: kind {r.get('kind')!r} is not one of {list(KINDS)}")
    bad += _cutoff_contradictions(run, rows)
    validation = sorted(  # training-time order (stable): snapshots scanned after the fact
        ((i, r) for i, r in enumerate(rows) if r.get("split", "validation") == "validation"),
        key=lambda ir: np.nan_to_num(_num(ir[1].get("train_time_s")), nan=math.inf),
    )
    met = [(i, r) for i, r in validation if _met(run, spec, r)]
    for i, r in validation:
        if r.get("met_target") is True and (i, r) not in met:
            bad.append(f"evaluation {i} says met_target, but its {run.get('metric')} does not")
    ttt = _num(run.get("time_to_target_s"))
    status = run.get("status")
    if status == "reached_target":
        if not met:
            bad.append(f"reached_target, but no evaluation's {run.get('metric')} meets the target")
        else:
            i, first = met[0]
            t = _num(first.get("train_time_s"))
            if not (np.isfinite(ttt) and math.isclose(ttt, t, rel_tol=1e-9, abs_tol=1e-9)):
                bad.append(
                    f"time_to_target_s {run.get('time_to_target_s')!r} is not the training time "
                    f"of the first evaluation that met the target (evaluation {i}: {t:g} s)"
                )
            k = validation.index((i, first))
            prev_t = _num(validation[k - 1][1].get("train_time_s")) if k else 0.0
            prev = _num(run.get("prev_eval_train_time_s"))
            if np.isfinite(prev) and not math.isclose(prev, prev_t, rel_tol=1e-9, abs_tol=1e-9):
                bad.append(
                    f"prev_eval_train_time_s {prev:g} is not the training time of the evaluation "
                    f"before the first that met the target ({prev_t:g} s)"
                )
            res = _num(run.get("time_resolution_s"))
            if np.isfinite(res) and np.isfinite(t) and res > t - prev_t + 1e-9:
                bad.append(
                    f"time_resolution_s {res:g} is more than the training time between the "
                    f"evaluation before the first that met the target and it ({t - prev_t:g} s)"
                )
    elif status in FINISHED:
        if np.isfinite(ttt):
            bad.append(f"status {status}, but time_to_target_s is {ttt:g}")
        if status in ("budget_exhausted", "complete", "censored") and met:
            bad.append(f"status {status}, but evaluation {met[0][0]} met the target")
    return bad


def _cutoff_contradictions(run: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """What a record says about its cutoff that does not hold (``contradictions``). How far
    past the cutoff a trial stopped is not checked: the first step boundary after the referee's
    pause, so it depends on the machine's load, and a time past it changes no score."""
    bad: list[str] = []
    status, cutoff = run.get("status"), _num(run.get("cutoff_s"))
    train, at = _num(run.get("train_time_s")), _num(run.get("censored_at_s"))
    if run.get("cutoff_s") is not None and not (np.isfinite(cutoff) and cutoff > 0):
        bad.append(f"cutoff_s {run.get('cutoff_s')!r} is not a positive number of seconds")
        return bad
    has_cutoff = np.isfinite(cutoff)
    for i, r in enumerate(rows):
        t = _num(r.get("train_time_s"))
        if r.get("kind") == "cutoff" and not (has_cutoff and t >= cutoff - 1e-9):
            where = f"the cutoff {cutoff:g} s" if has_cutoff else "a cutoff_s"
            bad.append(f"evaluation {i} of kind cutoff at {t:g} s, but the record has not {where}")
    if status != "censored":
        if np.isfinite(at):
            bad.append(f"status {status}, but censored_at_s is {at:g}")
        return bad
    if not has_cutoff:
        bad.append("status censored without a cutoff_s")
        return bad
    if not np.isfinite(at):
        bad.append("status censored without censored_at_s")
        return bad
    if at < cutoff - 1e-9:
        bad.append(f"censored_at_s {at:g} is before the cutoff {cutoff:g} s")
    if np.isfinite(train) and not math.isclose(at, train, rel_tol=1e-9, abs_tol=1e-9):
        bad.append(f"censored_at_s {at:g} is not the training time at which it stopped ({train:g})")
    if not str(run.get("reason") or "").startswith("cutoff "):
        bad.append(f"status censored, but the reason {run.get('reason')!r} names no cutoff")
    validation = [r for r in rows if r.get("split", "validation") == "validation"]
    times = [_num(r.get("train_time_s")) for r in validation]
    if not any(math.isclose(t, at, rel_tol=1e-9, abs_tol=1e-9) for t in times):
        bad.append(f"status censored, but the state at censored_at_s {at:g} s was not evaluated")
    later = [t for t in times if t > at + 1e-9]
    if later:
        bad.append(f"an evaluation at {max(later):g} s, after the trial was censored at {at:g} s")
    return bad


def _ordered(rows: list[dict], first: list[str], last: list[str]) -> pd.DataFrame:
    """A frame with ``first`` columns, then the others sorted (metrics, hp.*), then ``last``."""
    df = pd.DataFrame(rows)
    for c in first + last:
        if c not in df:
            df[c] = pd.Series(dtype=object)
    middle = sorted(c for c in df.columns if c not in first + last)
    metrics = [c for c in middle if not c.startswith("hp.")]
    return df[first + metrics + [c for c in middle if c.startswith("hp.")] + last]


def collect(runs: Path, out: Path | None = None) -> CollectResult:
    """Gather every run directory under ``runs``; write the per-evaluation frame to ``out``."""
    runs = Path(runs)
    if not runs.is_dir():
        raise FileNotFoundError(f"no runs directory at {runs}")
    problems: list[Problem] = []
    adhoc: list[Path] = []
    trial_rows, eval_rows = [], []
    for d in find_run_dirs(runs):
        trial, evals = _collect_one(d, runs, problems, adhoc)
        if trial is not None:
            trial_rows.append(trial)
        eval_rows.extend(evals)
    result = CollectResult(
        evals=_ordered(eval_rows, [*IDENTITY, "run_dir", *CURVE], [*PROVENANCE, *RUN]),
        trials=_ordered(
            trial_rows, [*IDENTITY, "run_dir", "status", "reason", *SUMMARY], PROVENANCE
        ),
        problems=problems,
        adhoc=adhoc,
    )
    if out is not None:
        write_parquet(result.evals, Path(out))
        result.parquet = Path(out)
    return result


def _arrow_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns that mix Python types (``hp.x``: a float in one submission, a string in another)
    become strings (JSON for lists and dicts), since a parquet column has one type."""
    out = df.copy()
    for c in [c for c in out.columns if pd.api.types.is_object_dtype(out[c])]:
        kinds = {type(v) for v in out[c] if v is not None and v == v}
        if len(kinds) > 1 or kinds & {list, dict}:
            out[c] = out[c].map(
                lambda v: (
                    None if v is None or v != v else v if isinstance(v, str) else json.dumps(v)
                )
            )
    return out


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Atomically (write, fsync, rename), like every record the harness writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(_arrow_safe(df), preserve_index=False)
    atomic_write(path, lambda f: pq.write_table(table, f), binary=True)


def write_csv(result: CollectResult, evals_path: Path) -> tuple[Path, Path]:
    """Both frames as CSV: ``evals_path`` (one row per evaluation, the parquet's columns) and
    ``<stem>_trials.csv`` beside it (one row per rankable trial). Returns the two paths."""
    evals_path = Path(evals_path)
    trials_path = evals_path.with_name(f"{evals_path.stem}_trials.csv")
    for df, path in ((result.evals, evals_path), (result.trials, trials_path)):
        atomic_write(path, lambda f, df=df: _arrow_safe(df).to_csv(f, index=False))
    return evals_path, trials_path


TENSORBOARD_EXTRA = "pip install 'ttr-bench[tensorboard]'"


class MissingExtra(RuntimeError):
    """An optional feature whose package is not installed; the message names the extra."""


def _steps_rows(d: Path) -> list[dict[str, float]]:
    """steps.csv as rows of floats (blank cells left out); [] when there is none."""
    try:
        with open(d / "steps.csv", newline="") as f:
            return [
                {k: float(v) for k, v in row.items() if k and v not in (None, "")}
                for row in csv.DictReader(f)
            ]
    except (OSError, ValueError):
        return []


def export_tensorboard(runs: Path, log_dir: Path) -> int:
    """Every run under ``runs`` (ad-hoc ones included) as TensorBoard scalars under
    ``log_dir/<the run's path below runs>``: ``train/loss``, ``train/lr``, ``train/step_s``
    from steps.csv and ``validation/<metric>`` from evals.jsonl, against the step. Returns
    how many runs were written; raises ``MissingExtra`` without tensorboard."""
    if importlib.util.find_spec("tensorboard") is None:
        raise MissingExtra(f"--tensorboard needs the tensorboard package: {TENSORBOARD_EXTRA}")
    from torch.utils.tensorboard import SummaryWriter

    runs = Path(runs)
    if not runs.is_dir():
        raise FileNotFoundError(f"no runs directory at {runs}")
    n = 0
    for d in find_run_dirs(runs):
        run = _load_run(d)
        if isinstance(run, str):
            continue
        evals, _ = _read_evals(d)
        steps = _steps_rows(d)
        if not evals and not steps:
            continue
        writer = SummaryWriter(log_dir=str(Path(log_dir) / d.relative_to(runs)))
        try:
            for row in steps:
                step = int(row["step"])
                for key in ("loss", "lr", "step_s"):
                    if key in row and math.isfinite(row[key]):
                        writer.add_scalar(f"train/{key}", row[key], step)
            for row in evals:
                split = row.get("split", "validation")
                for key, value in row.items():
                    if key in ("eval", "step", "split", "met_target") or isinstance(value, bool):
                        continue
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        writer.add_scalar(f"{split}/{key}", value, int(row.get("step") or 0))
        finally:
            writer.close()
        n += 1
    return n
