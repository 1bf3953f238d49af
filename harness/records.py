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
steps, s_per_step, time_to_target_s, prev_eval_train_time_s, steps_to_target, evals; cutoff_s,
cutoff_reason and censored_at_s (a trial given a cutoff, ``RunConfig.cutoff_s``); cores, pinned
and threads (the athlete's CPU affinity as read back, whether ``RunConfig.cores`` pinned it, and
the torch and numba thread counts of athlete and referee).

status: "running" | "reached_target" | "budget_exhausted" | "complete" (the submission raised
TrainingComplete and the target was not met) | "censored" (stopped at ``cutoff_s`` of training
without meeting the target: a miss, final; reason "cutoff <why> at <t> s", ``censored_at_s`` the
training time of the state evaluated there) | "failed" (reason says why).

evals.jsonl rows: eval (index), step, train_time_s, wall_time_s (since the run started),
eval_time_s (this evaluation), split, met_target, loss (last training loss, if the submission
reports one), kind ("grid": on the evaluation grid; "snapshot": a kept state, scanned; "cutoff":
the state at ``cutoff_s``) and every metric of the workload's evaluator under its own name.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

import torch

SCHEMA = 1
RUN_JSON = "run.json"
EVALS_JSONL = "evals.jsonl"
LOG_TXT = "log.txt"
CLAIM_JSON = "claim.json"
FAILED_ATTEMPTS = "failed_attempts"  # trial_<t>/failed_attempts/<n>/: a failed run retried
# why a sweep moves a trial's record aside before running it again (trial_<t>.<why>-<time>)
MOVED_ASIDE_REASONS = ("contended", "corrupt", "interrupted")
_MOVED_ASIDE = re.compile(rf"^trial_\d+\.({'|'.join(MOVED_ASIDE_REASONS)})-")


def is_moved_aside(d: Path) -> bool:
    """A record moved aside before its trial ran again: history, not a trial of its own."""
    return bool(_MOVED_ASIDE.match(d.name))


FINISHED = ("reached_target", "budget_exhausted", "complete", "censored", "failed")
UNFINISHED = ("running", "preempted", "interrupted")  # resumable once no live claim holds it


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


class RecordError(ValueError):
    """A run.json that cannot be used; the message names the file."""


def read_run(path: Path) -> dict[str, Any]:
    """The run.json of a trial directory as a dict; ``RecordError`` (a ``ValueError``) naming the
    file when it is not JSON or not an object, ``FileNotFoundError`` when there is none."""
    f = Path(path) / RUN_JSON
    try:
        run = json.loads(f.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        raise RecordError(f"{f}: not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(run, dict):
        raise RecordError(f"{f}: not a JSON object (a {type(run).__name__})")
    return run


def writer_alive(path: Path) -> bool:
    """Is a live process (on this host or another) running this trial? Its claim says."""
    return claim_state(path) == "live"


def is_finished(path: Path) -> bool:
    try:
        return read_run(path).get("status") in FINISHED
    except (OSError, ValueError):
        return False


# -- claims ------------------------------------------------------------------------------
#
# A trial is run only by the process that holds its claim: ``claim.json`` in the trial
# directory, created with O_CREAT|O_EXCL (atomic on local filesystems and on NFSv3+), holding
# who holds it, refreshed by a daemon thread while the holder lives. Another process tells a
# live claim from a stale one without trusting any clock but the filesystem's own:
#
# - same host (and same boot): live iff the pid runs and has the claim's process start time
#   (a reused pid is another process);
# - another host: live iff the file's mtime is within STALE_REFRESHES refreshes of the
#   filesystem's "now" (the mtime of a file written there at once), so clock skew between a
#   login node and a compute node does not matter;
# - a claim of this process's own SLURM job id by another process: stale (a requeued job's
#   earlier run; SLURM runs one at a time), so a requeue resumes at once.
#
# A stale claim is broken under a short break lock (``claim.json.break``, O_EXCL too): the
# breaker re-reads the claim, moves it aside only if it is still the stale one it judged
# (same nonce), and then competes for the claim by O_EXCL like everyone else, so of N
# processes racing for one trial exactly one wins.

STALE_REFRESHES = 3  # a claim unrefreshed for this many refresh periods is stale
BREAK_LOCK_STALE_S = 60.0  # a break lock older than this was left by a dead breaker
ClaimStateName = Literal["none", "live", "stale"]


class ClaimHeld(FileExistsError):
    """The trial is claimed by a live process; the message says which."""


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fs_now(directory: Path) -> float:
    """The filesystem's own "now": the mtime of a file just written in ``directory`` (the
    local clock where it cannot be written)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".now.", suffix=".tmp")
    except OSError:
        return time.time()
    try:
        os.write(fd, b"0")
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)


def _read_claim(path: Path) -> tuple[dict[str, Any] | None, float | None]:
    """(content or None if unreadable or torn, mtime or None if there is no file)."""
    try:
        with open(path, "rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            raw = f.read()
    except FileNotFoundError:
        return None, None
    except OSError:
        return None, time.time()
    try:
        content = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None, mtime
    return (content if isinstance(content, dict) else None), mtime


def _judge(content: dict[str, Any] | None, mtime: float, directory: Path) -> ClaimStateName:
    job = os.environ.get("SLURM_JOB_ID")
    if (
        content is not None
        and job
        and content.get("slurm_job_id") == job
        and (content.get("host"), content.get("pid")) != (socket.gethostname(), os.getpid())
    ):
        return "stale"  # an earlier run of this very SLURM job (requeued): SLURM ran it once
    if content is not None and content.get("host") == socket.gethostname():
        boot = content.get("boot_id")
        if boot and _boot_id() and boot != _boot_id():
            return "stale"  # the host rebooted since
        try:
            pid = int(content["pid"])
        except (KeyError, TypeError, ValueError):
            pid = 0
        if pid > 0:
            if pid == os.getpid():
                return "live"
            if not _pid_alive(pid):
                return "stale"
            started = content.get("start_time")
            now_started = _proc_start(pid)
            if started is not None and now_started is not None and started != now_started:
                return "stale"  # the pid was reused by another process
            return "live"
    # another host, or a claim being written (torn): the mtime against the filesystem's now
    refresh = 10.0
    if content is not None:
        try:
            refresh = float(content.get("refresh_s") or refresh)
        except (TypeError, ValueError):
            pass
    return "live" if _fs_now(directory) - mtime <= STALE_REFRESHES * refresh else "stale"


def claim_state(run_dir: Path) -> ClaimStateName:
    """The trial's claim: none, live (held by a running process) or stale (holder gone)."""
    path = Path(run_dir) / CLAIM_JSON
    content, mtime = _read_claim(path)
    if mtime is None:
        return "none"
    return _judge(content, mtime, Path(run_dir))


def claim_holder(run_dir: Path) -> str:
    """Who holds (or held) the trial's claim, in words."""
    content, mtime = _read_claim(Path(run_dir) / CLAIM_JSON)
    if mtime is None:
        return "nobody"
    if content is None:
        return "an unreadable claim"
    words = f"host {content.get('host')} pid {content.get('pid')}"
    job = content.get("slurm_job_id")
    if job:
        words += f" (SLURM job {job})"
    return words


def _claim_content(nonce: str, refresh_s: float) -> dict[str, Any]:
    env = os.environ
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "boot_id": _boot_id(),
        "start_time": _proc_start(os.getpid()),
        "slurm_job_id": env.get("SLURM_JOB_ID"),
        "slurm_array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "slurm_array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "nonce": nonce,
        "refresh_s": refresh_s,
        "created_unix": now,
        "heartbeat_unix": now,
    }


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` only if it does not exist; False if it does."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~current_umask())
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _move_aside_if(path: Path, nonce: str | None, why: str) -> bool:
    """Rename ``path`` to a unique name; keep it there only if it still holds ``nonce`` (None:
    an unreadable claim), else put it back. True if the expected claim is gone from ``path``."""
    aside = path.with_name(f".{path.name}.{why}-{secrets.token_hex(6)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # already gone
    content, _ = _read_claim(aside)
    if (content or {}).get("nonce") == nonce:
        aside.unlink(missing_ok=True)
        return True
    try:  # not the one we judged: give it back (link fails if a new claim took the place)
        os.link(aside, path)
    except FileExistsError:
        pass
    aside.unlink(missing_ok=True)
    return False


def _break_stale(run_dir: Path, judged: dict[str, Any] | None) -> None:
    """Remove the claim judged stale, if it is still that claim, under the break lock."""
    path = run_dir / CLAIM_JSON
    lock = run_dir / (CLAIM_JSON + ".break")
    me = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
    if not _create_exclusive(lock, me):
        try:  # a breaker that died holding the lock: remove its lock, then try again later
            if _fs_now(run_dir) - lock.stat().st_mtime > BREAK_LOCK_STALE_S:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return
    try:
        content, mtime = _read_claim(path)
        if mtime is None:
            return
        same = (content or {}).get("nonce") == (judged or {}).get("nonce")
        if same and _judge(content, mtime, run_dir) == "stale":
            _move_aside_if(path, (content or {}).get("nonce"), "stale")
    finally:
        lock.unlink(missing_ok=True)


class Claim:
    """The claim of one trial, held from ``claim_trial`` until ``release`` (or the end of a
    ``with`` block). A daemon thread refreshes it every ``refresh_s``; ``lost`` turns True if
    another process took it over (which happens only if this one looked dead: no refresh
    for ``STALE_REFRESHES * refresh_s``)."""

    def __init__(self, run_dir: Path, nonce: str, refresh_s: float):
        self.run_dir, self.path = Path(run_dir), Path(run_dir) / CLAIM_JSON
        self.nonce, self.refresh_s = nonce, refresh_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="ttr-claim", daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            if not self.refresh():
                self.lost = True
                return

    def refresh(self) -> bool:
        """Rewrite the heartbeat in place (through the file we hold, so a claim that replaced
        ours is never overwritten) and touch the mtime. False if the claim is no longer ours."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            with os.fdopen(fd, "r+b", closefd=False) as f:
                try:
                    content = json.loads(f.read())
                except (UnicodeDecodeError, ValueError):
                    return False
                if not isinstance(content, dict) or content.get("nonce") != self.nonce:
                    return False
                content["heartbeat_unix"] = time.time()
                f.seek(0)
                f.truncate()
                f.write(json.dumps(content).encode())
                f.flush()
                os.fsync(fd)
            os.utime(fd)
        finally:
            os.close(fd)
        return True

    def release(self) -> None:
        """Stop refreshing and remove the claim if it is still ours."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        content, mtime = _read_claim(self.path)
        if mtime is not None and (content or {}).get("nonce") == self.nonce:
            _move_aside_if(self.path, self.nonce, "released")

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim_trial(run_dir: Path, *, refresh_s: float = 10.0) -> Claim:
    """Claim a trial directory (made if missing) for this process; ``ClaimHeld`` if a live
    process holds it. A stale claim (its holder is dead) is broken, race-safely."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM_JSON
    nonce = secrets.token_hex(16)
    data = json.dumps(_claim_content(nonce, refresh_s)).encode()
    for attempt in range(8):
        if attempt:
            time.sleep(0.02 * attempt)  # let a breaker that holds the break lock finish
        if _create_exclusive(path, data):
            return Claim(run_dir, nonce, refresh_s)
        content, mtime = _read_claim(path)
        if mtime is None:
            continue  # released meanwhile: try again
        if _judge(content, mtime, run_dir) == "live":
            raise ClaimHeld(f"{run_dir} is being run by {claim_holder(run_dir)} (a live claim)")
        _break_stale(run_dir, content)
    raise ClaimHeld(f"{run_dir}: could not claim it (other processes are competing for it)")


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


def trial_fingerprint(cores: Iterable[int] | None = None) -> dict[str, Any]:
    """The fingerprint a trial records: the machine's (``hardware_fingerprint``), and where the
    trial is pinned (``RunConfig.cores``) the pinned CPUs as ``cores`` and their number as
    ``cpu_cores`` (the machine's own count kept as ``machine_cpu_cores``), so its hardware
    class says what it ran on: one core of a 2-core machine is ``cpu-1core``."""
    fp = dict(hardware_fingerprint())
    if cores is not None:
        fp["machine_cpu_cores"] = fp["cpu_cores"]
        fp["cores"] = sorted(cores)
        fp["cpu_cores"] = len(fp["cores"])
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
