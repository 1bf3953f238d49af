"""Trial checkpoints: what a requeued job needs to go on exactly where the last evaluation was.

One file per trial, ``checkpoint.pt``, replaced atomically at every evaluation and removed
once the trial has finished (unless the run keeps it: ``--keep-checkpoints``). Model and
submission state are pickled in one object, so references between them survive (an optimizer
keeps pointing at the model's own parameters after a resume). Generators are saved by state,
the clock by its accumulated seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness import records

CHECKPOINT = "checkpoint.pt"


def path_for(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def save(run_dir: Path, payload: dict[str, Any]) -> str | None:
    """Write the checkpoint atomically; returns None, or why it could not be written (e.g. a
    submission state holding something that cannot be pickled, such as a lambda)."""
    try:
        records.atomic_write(path_for(run_dir), lambda f: torch.save(payload, f), binary=True)
        return None
    except Exception as e:  # noqa: BLE001 - any pickling failure means "no checkpoint"
        return f"{type(e).__name__}: {e}"


def remove(run_dir: Path) -> bool:
    """Delete a finished trial's checkpoint; True if there was one. The caller makes sure the
    trial is finished: an unfinished one (preempted, requeued) resumes from this file."""
    try:
        path_for(run_dir).unlink()
        return True
    except FileNotFoundError:
        return False


def load(run_dir: Path, device: torch.device, weights_only: bool = True) -> dict[str, Any] | None:
    """The checkpoint, or None when there is none. The referee's container holds plain data
    and the athlete's state as opaque bytes: read with ``weights_only`` (nothing executes)."""
    target = path_for(run_dir)
    if not target.is_file():
        return None
    return torch.load(target, map_location=device, weights_only=weights_only)


def generator_states(gens: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    states = {name: g.get_state() for name, g in gens.items()}
    states["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_generators(gens: dict[str, torch.Generator], states: dict[str, Any]) -> None:
    for name, g in gens.items():
        g.set_state(states[name])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
