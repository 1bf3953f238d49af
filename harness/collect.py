"""``ttr collect``: every run directory under ``runs/`` into one frame, with its problems.

Two frames come out. ``evals``: one row per evaluation of every readable run (identity, curve,
every metric, ``hp.<name>`` hyperparameters, provenance, status and ``ranked``), for curves and
analysis. ``trials``: one row per trial that may be ranked, from the run.json summaries, for
``harness.scoring``. A run directory that cannot be trusted is never dropped silently: it becomes a
``Problem(path, reason)`` and stays out of ``trials`` (the benchmark's rule: reported, not ranked).

- run.json missing, not JSON, or without the identity keys: skipped.
- run.json whose identity disagrees with its directory (a moved or copied run): skipped.
- status "running": in progress; its evaluations so far are kept, unranked.
- evals.jsonl truncated or with bad lines, or fewer rows than run.json counts: the complete rows
  are kept, the trial is not ranked.
- a trial recorded ``contended`` (its machine was slower than its reference or shared its
  cores, ``harness.machine``): kept in ``evals``, not ranked, listed as ``contended: <reason>``.
- an ad-hoc run (``ttr run`` without ``--study``/``--trial``, under ``adhoc/``): part of no
  planned study, so in neither frame; listed in ``CollectResult.adhoc``.

``write_csv`` writes both frames as CSV; ``export_tensorboard`` writes every run's steps.csv
and evaluations as TensorBoard scalars (the ``tensorboard`` extra).
"""

from __future__ import annotations

import csv
import datetime as _dt
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.records import EVALS_JSONL, FINISHED, RUN_JSON, SCHEMA, atomic_write

IDENTITY = ["hardware_class", "workload", "variant", "submission", "study", "trial", "seed"]
CURVE = ["eval", "step", "train_time_s", "wall_time_s", "eval_time_s", "split", "met_target"]
PROVENANCE = ["git_commit", "git_dirty", "torch", "cpu", "gpu"]
RUN = ["status", "reason", "ranked", "metric", "direction", "target"]
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
    return sorted(dirs)


def _load_run(d: Path) -> dict[str, Any] | str:
    """run.json as a dict, or the reason it cannot be used."""
    try:
        run = json.loads((d / RUN_JSON).read_text())
    except FileNotFoundError:
        return "no run.json (the run never started its record, or it was deleted)"
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
    if run["status"] not in ("running", *FINISHED):
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


def _trial_row(run: dict[str, Any], d: Path) -> dict[str, Any]:
    row = {k: run.get(k) for k in IDENTITY} | {"run_dir": str(d)}
    row |= {k: run.get(k) for k in ("status", "reason", "metric", "direction", "target")}
    row |= {k: run.get(k) for k in ("started_at", "ended_at")}  # the report's date line
    row |= {k: _num(run.get(k)) for k in SUMMARY}
    ttt = row["time_to_target_s"]
    row["time_to_target_s"] = ttt if np.isfinite(ttt) else np.inf  # a miss is explicit: +inf
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
    elif why is None and isinstance(run.get("evals"), int) and len(rows) < run["evals"]:
        why = f"evals.jsonl has {len(rows)} rows, run.json counts {run['evals']}"
    why = why or _contended(run)
    if why:
        problems.append(Problem(d, f"{why}; not ranked"))
    return (None if why else _trial_row(run, d)), _eval_rows(run, d, rows, ranked=not why)


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
