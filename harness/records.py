"""Run records: one directory per trial, written atomically.

    runs/<hw>/<workload>/<variant>/<submission>/study_<s>/trial_<t>/
        run.json     resolved config, hparams, seed, provenance, status, summary (schema below)
        evals.jsonl  one flat JSON object per evaluation (schema below)
        log.txt      the run's log, tracebacks included

run.json keys (schema 1): schema, workload, variant, submission, study, trial, seed, hparams,
spec (the resolved WorkloadSpec), hardware_class, hardware (fingerprint), git {commit, dirty,
reason} (the harness's), submission_git {commit, dirty, reason} (the submission folder's own;
its dirty counts untracked files), versions, device, status, reason, started_at, ended_at
(ISO 8601 UTC), budget_s, metric, direction, target, train_time_s, wall_time_s, eval_time_s,
steps, s_per_step, time_to_target_s, prev_eval_train_time_s, steps_to_target, evals.

status: "running" | "reached_target" | "budget_exhausted" | "complete" (the submission raised
TrainingComplete and the target was not met) | "failed" (reason says why).

evals.jsonl rows: eval (index), step, train_time_s, wall_time_s (since the run started),
eval_time_s (this evaluation), split, met_target, loss (last training loss, if the submission
reports one) and every metric of the workload's evaluator under its own name.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import torch

SCHEMA = 1
RUN_JSON = "run.json"
EVALS_JSONL = "evals.jsonl"
LOG_TXT = "log.txt"
FINISHED = ("reached_target", "budget_exhausted", "complete", "failed")


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def current_umask() -> int:
    """The process's umask, read without changing it where the kernel says it (Linux 4.7+);
    elsewhere set and restored at once (``os.umask`` has no read-only form)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split(":", 1)[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO], Any], binary: bool = False) -> None:
    """Write, fsync, rename: readers see the old file or the new one, never a torn one.

    ``write`` fills the open temporary file; on any error the temporary file is removed and
    the old file stays as it was. The file gets the permissions ``open`` would give it
    (0o666 less the umask), not ``mkstemp``'s private 0o600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and x != x:
        return None  # NaN -> null: strict JSON
    if isinstance(x, (torch.dtype, torch.device, Path)):
        return str(x)
    return x


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_jsonable, allow_nan=False, sort_keys=False)


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(_clean(obj), indent=2) + "\n")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(_clean(r)) + "\n" for r in rows))


def _clean(obj: Any) -> Any:
    """Replace non-finite floats by None and non-JSON leaves by strings, recursively."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def trial_dir(
    runs: Path, hw: str, workload: str, variant: str, submission: str, study: int, trial: int
) -> Path:
    return Path(runs) / hw / workload / variant / submission / f"study_{study}" / f"trial_{trial}"


def read_run(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / RUN_JSON).read_text())


def writer_alive(path: Path) -> bool:
    """Is the process that wrote this (unfinished) record still running on this host?"""
    try:
        run = read_run(path)
    except (OSError, ValueError):
        return False
    if (
        run.get("host") != socket.gethostname()
        or not run.get("pid")
        or int(run["pid"]) == os.getpid()
    ):
        return False
    try:
        os.kill(int(run["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_finished(path: Path) -> bool:
    try:
        return read_run(path).get("status") in FINISHED
    except (OSError, ValueError):
        return False


# -- provenance --------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@functools.cache
def hardware_fingerprint() -> dict[str, Any]:
    fp: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_cores": cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": None,
        "gpu_count": 0,
    }
    if torch.cuda.is_available():
        fp["gpu"] = torch.cuda.get_device_name(0)
        fp["gpu_count"] = torch.cuda.device_count()
    try:
        fp["triton"] = metadata.version("triton")
    except metadata.PackageNotFoundError:
        fp["triton"] = None
    return fp


def hardware_class(fp: Mapping[str, Any] | None = None) -> str:
    """``cpu-<n>core`` on CPU, else a short GPU name with its count (``h100``, ``a100x8``)."""
    fp = fp or hardware_fingerprint()
    if fp.get("gpu"):
        name = str(fp["gpu"]).lower()
        for key in ("h200", "h100", "a100", "l40s", "l4", "a10", "v100", "t4", "rtx 4090"):
            if key in name:
                short = key.replace(" ", "")
                break
        else:
            short = "".join(ch for ch in name if ch.isalnum())[:16]
        count = int(fp.get("gpu_count") or 1)
        return short if count == 1 else f"{short}x{count}"
    return f"cpu-{fp['cpu_cores']}core"


def device_kind(hw_class: str) -> str:
    return "cpu" if hw_class.startswith("cpu-") else "gpu"


@functools.cache
def git_info(root: str, scope: bool = False) -> dict[str, Any]:
    """The commit of the git repository holding ``root`` and whether it is dirty: changed
    tracked files anywhere in it, or with ``scope``, any change under ``root`` itself,
    untracked files included but bytecode caches not (a submission's folder: a new method need
    not be committed to run). Outside a repository, or without git, commit and dirty are None
    and ``reason`` says why; otherwise ``reason`` is None."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or "").strip().splitlines()
        return {"commit": None, "dirty": None, "reason": lines[0] if lines else str(e)}
    except (OSError, subprocess.SubprocessError) as e:
        return {"commit": None, "dirty": None, "reason": f"git unavailable: {e}"}
    try:
        if scope:  # Python's own bytecode caches (importing the method writes them) don't count
            changes = [
                line
                for line in git("status", "--porcelain", "--", ".").splitlines()
                if "__pycache__/" not in line and not line.endswith((".pyc", ".pyo"))
            ]
        else:
            changes = git("status", "--porcelain", "--untracked-files=no").splitlines()
        dirty = bool(changes)
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"commit": commit, "dirty": dirty, "reason": None}


@functools.cache
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("ttr-bench", "torch", "numpy", "scipy", "pandas", "triton", "submitit"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
