"""Pinned cores: a trial's referee and athlete on the CPU cores it was given.

``RunConfig.cores`` (a tuple of CPU numbers) pins the referee, every thread of it, for the
trial's duration (``Pinned``, restored after) and so the athlete it spawns, which inherits the
affinity and is pinned again by pid right after the spawn; both set torch's intra-op threads
and numba's threads to the number of cores (``set_threads``), and the athlete's environment
caps OpenMP, MKL and numba thread pools at it (``thread_env``). The referee reads the affinity
back (the athlete's own report and ``os.sched_getaffinity`` of its pid) into run.json, and at
every step boundary, while the athlete is stopped, checks that no thread of the athlete has
widened its affinity: a submission that does fails the trial (``widened``).

The trial's hardware class counts the pinned cores (``records.trial_fingerprint``): a trial
pinned to one core of a 2-core machine is a ``cpu-1core`` trial. Linux only.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from typing import Any

import torch

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def available() -> list[int]:
    """The CPUs this process may run on (its affinity), sorted."""
    return sorted(os.sched_getaffinity(0))


def check_cores(cores: Any, allowed: Iterable[int] | None = None) -> tuple[int, ...]:
    """``cores`` as a sorted tuple, or ``ValueError`` (one line) for an empty, repeated,
    non-integer core or one outside ``allowed`` (default: this process's affinity)."""
    if isinstance(cores, (str, bytes)) or not isinstance(cores, Iterable):
        raise ValueError(f"cores must be a tuple of CPU numbers, got {cores!r}")
    cores = tuple(cores)
    if not cores:
        raise ValueError("cores is empty: give at least one CPU, or None for no pinning")
    bad = [c for c in cores if isinstance(c, bool) or not isinstance(c, int)]
    if bad:
        raise ValueError(f"cores must be integers (CPU numbers), got {bad!r}")
    if len(set(cores)) != len(cores):
        raise ValueError(f"cores {list(cores)} names a CPU twice")
    allowed = sorted(available() if allowed is None else allowed)
    outside = sorted(set(cores) - set(allowed))
    if outside:
        raise ValueError(
            f"cores {outside} are not in this process's CPU affinity {allowed} "
            "(os.sched_getaffinity)"
        )
    return tuple(sorted(cores))


def _tasks(pid: int | str = "self") -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except (FileNotFoundError, ProcessLookupError):
        return []


def pin_process(cores: Iterable[int], pid: int | str = "self") -> None:
    """Set the affinity of every thread of a process (``os.sched_setaffinity`` of a pid sets
    only that thread's)."""
    cores = set(cores)
    tasks = _tasks(pid) or [0 if pid == "self" else int(pid)]
    for tid in tasks:
        try:
            os.sched_setaffinity(tid, cores)
        except ProcessLookupError:  # a thread that ended meanwhile
            pass


def thread_affinities(pid: int) -> dict[int, list[int]]:
    """Every thread of ``pid``: its affinity, sorted (threads that ended meanwhile left out)."""
    out = {}
    for tid in _tasks(pid):
        try:
            out[tid] = sorted(os.sched_getaffinity(tid))
        except (ProcessLookupError, PermissionError):
            pass
    return out


def widened(pid: int, cores: Iterable[int]) -> str | None:
    """Why a process's threads are not confined to ``cores`` (one of them is allowed a CPU
    outside them), or None."""
    cores = set(cores)
    for tid, affinity in sorted(thread_affinities(pid).items()):
        if not set(affinity) <= cores:
            pinned = sorted(cores)
            return f"thread {tid} may run on CPUs {affinity}, the trial is pinned to {pinned}"
    return None


def _numba() -> Any:
    """numba, imported if it is installed (it is optional), else None."""
    if "numba" in sys.modules:
        return sys.modules["numba"]
    if importlib.util.find_spec("numba") is None:
        return None
    import numba

    return numba


def threads() -> dict[str, int | None]:
    """torch's intra-op thread count and numba's (None where numba is not imported)."""
    numba = sys.modules.get("numba")
    return {
        "torch": torch.get_num_threads(),
        "numba": int(numba.get_num_threads()) if numba is not None else None,
    }


def set_threads(n: int) -> dict[str, int | None]:
    """torch's and numba's thread counts to ``n`` (numba's at most its pool's size,
    ``NUMBA_NUM_THREADS``); returns the counts read back."""
    torch.set_num_threads(n)
    numba = _numba()
    if numba is not None:
        numba.set_num_threads(max(1, min(n, int(numba.config.NUMBA_NUM_THREADS))))
    return threads()


def thread_env(n: int) -> dict[str, str]:
    """The environment that caps a child's OpenMP, MKL and numba pools at ``n`` threads."""
    return {k: str(n) for k in THREAD_ENV}


class Pinned:
    """This process (every thread) on ``cores``, torch's and numba's threads set to their
    number, for a ``with`` block; the affinity and thread counts are restored after it."""

    def __init__(self, cores: Iterable[int]):
        self.cores = tuple(sorted(cores))

    def __enter__(self) -> Pinned:
        # numba sizes its thread pool (NUMBA_NUM_THREADS) by the affinity it is imported
        # under, for the process's life: imported here before pinning, so a later trial with
        # more cores (or none pinned) still has them
        _numba()
        self.old_affinity = os.sched_getaffinity(0)
        self.old_threads = threads()
        pin_process(self.cores)
        self.threads = set_threads(len(self.cores))
        return self

    def __exit__(self, *exc: object) -> None:
        pin_process(self.old_affinity)
        torch.set_num_threads(self.old_threads["torch"])
        numba = sys.modules.get("numba")
        if numba is not None and self.old_threads["numba"] is not None:
            numba.set_num_threads(self.old_threads["numba"])
