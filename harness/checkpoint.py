"""Trial checkpoints: what a requeued job needs to go on exactly where the last evaluation was.

One file per trial, ``checkpoint.pt``, replaced atomically at every evaluation. Model and
submission state are pickled in one object, so references between them survive (an optimizer
keeps pointing at the model's own parameters after a resume). Generators are saved by state,
the clock by its accumulated seconds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def path_for(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def save(run_dir: Path, payload: dict[str, Any]) -> str | None:
    """Write the checkpoint atomically; returns None, or why it could not be written (e.g. a
    submission state holding something that cannot be pickled, such as a lambda)."""
    target = path_for(run_dir)
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{CHECKPOINT}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return None
    except Exception as e:  # noqa: BLE001 - any pickling failure means "no checkpoint"
        Path(tmp).unlink(missing_ok=True)
        return f"{type(e).__name__}: {e}"


def load(run_dir: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint, or None when there is none. Our own file: full unpickling is intended."""
    target = path_for(run_dir)
    if not target.is_file():
        return None
    return torch.load(target, map_location=device, weights_only=False)


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
