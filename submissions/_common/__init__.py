"""Recipes the bundled methods share: learning-rate schedules and optimizer set-ups.

Everything here decides a method's numbers, so it lives with the methods, not in the harness
(which keeps only the contract plumbing: ``harness.schedules.optimizer_step`` and
``finish_step``). Any submission may import it, bundled or in a folder of its own named by
``TTR_SUBMISSIONS``: ``from submissions._common import warmup_cosine``.

Schedules are picklable multipliers for ``torch.optim.lr_scheduler.LambdaLR`` (checkpoints pickle
the optimizer state): each is a ``functools.partial`` of a module-level function. Formulas follow
AlgoPerf's baselines (docs/methods.md):

- ``warmup_cosine``: linear warmup from ~0 over ``warmup`` steps, then cosine to
  ``end_factor`` at ``horizon`` steps, held there after (PyTorch's own cosine would rise again).
- ``warmup_linear``: linear warmup, then linear decay to ``end_factor`` over ``decay`` steps,
  then constant (AlgoPerf's Nesterov baseline).
- ``step_decay``: multiply by ``factor`` at each milestone (MultiStepLR's rule).
"""

from __future__ import annotations

import functools
import math

import torch

from harness.api import TrainingComplete

__all__ = [
    "adam_args",
    "adam_step_decay",
    "adamw_warmup_cosine",
    "cosine_to_hint",
    "end_at_hint",
    "lambda_lr",
    "step_decay",
    "warmup_cosine",
    "warmup_linear",
]


def _warmup_cosine(step: int, warmup: int, horizon: int, end_factor: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, horizon - warmup)
    progress = min(1.0, (step - warmup) / span)
    return end_factor + (1.0 - end_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _warmup_linear(step: int, warmup: int, decay: int, end_factor: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, decay))
    return 1.0 + (end_factor - 1.0) * progress


def warmup_cosine(warmup: int, horizon: int, end_factor: float = 0.0):
    if warmup < 0 or horizon < 1 or not 0.0 <= end_factor <= 1.0:
        raise ValueError(f"bad schedule: warmup={warmup}, horizon={horizon}, end={end_factor}")
    return functools.partial(
        _warmup_cosine, warmup=max(1, warmup), horizon=horizon, end_factor=end_factor
    )


def warmup_linear(warmup: int, decay: int, end_factor: float):
    if warmup < 0 or decay < 1 or not 0.0 <= end_factor <= 1.0:
        raise ValueError(f"bad schedule: warmup={warmup}, decay={decay}, end={end_factor}")
    return functools.partial(
        _warmup_linear, warmup=max(1, warmup), decay=decay, end_factor=end_factor
    )


def lambda_lr(opt: torch.optim.Optimizer, schedule) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def adamw_warmup_cosine(params, hparams, step_hint: int, beta2: float = 0.999):
    """AdamW (``beta2``, eps 1e-8) with ``warmup_cosine``, the common recipe of submissions.

    Reads ``lr``, ``one_minus_beta1``, ``weight_decay``, ``warmup_frac`` and ``horizon_factor``
    (cosine length in units of the workload's ``step_hint``) from ``hparams``.
    """
    opt = torch.optim.AdamW(
        params,
        lr=hparams["lr"],
        betas=(1.0 - hparams["one_minus_beta1"], beta2),
        weight_decay=hparams["weight_decay"],
    )
    horizon = max(1, int(hparams["horizon_factor"] * step_hint))
    schedule = warmup_cosine(int(hparams["warmup_frac"] * horizon), horizon)
    return opt, lambda_lr(opt, schedule)


def adam_args(hparams) -> dict:
    """Keyword arguments of an Adam-family optimizer from AlgoPerf's generic search space:
    ``lr``, betas (1 - ``one_minus_beta1``, ``beta2``), eps 1e-8, ``weight_decay``."""
    return {
        "lr": hparams["lr"],
        "betas": (1.0 - hparams["one_minus_beta1"], hparams["beta2"]),
        "eps": 1e-8,
        "weight_decay": hparams["weight_decay"],
    }


def cosine_to_hint(opt: torch.optim.Optimizer, hparams, step_hint: int) -> dict:
    """A submission state ``{"opt", "sched", "loss"}`` whose learning rate warms up linearly over
    ``warmup_factor x step_hint`` steps, then follows a cosine to 0 at ``step_hint`` (the
    generic methods' schedule; end the run there with ``end_at_hint``)."""
    warmup = int(hparams["warmup_factor"] * step_hint)
    return {"opt": opt, "sched": lambda_lr(opt, warmup_cosine(warmup, step_hint)), "loss": None}


def end_at_hint(state: dict, step: int, step_hint: int) -> dict:
    """Returns ``state``, or raises ``TrainingComplete`` once step ``step_hint - 1`` is done: a
    ``cosine_to_hint`` learning rate is 0 from there on, so further steps would change nothing
    and only spend budget."""
    if step + 1 >= step_hint:
        raise TrainingComplete
    return state


def _step_decay(step: int, milestones: tuple[int, ...], factor: float) -> float:
    return factor ** sum(step >= m for m in milestones)


def step_decay(milestones, factor: float):
    """Multiply the learning rate by ``factor`` at each milestone step (MultiStepLR's rule)."""
    ms = tuple(int(m) for m in milestones)
    if any(m < 0 for m in ms) or not 0.0 < factor <= 1.0:
        raise ValueError(f"bad step decay: milestones={ms}, factor={factor}")
    return functools.partial(_step_decay, milestones=ms, factor=factor)


def adam_step_decay(params, hparams, step_hint: int, fractions=(0.7625, 0.8875), factor=0.2):
    """Adam with the certified-training recipe of Fast-IBP and TAPS: lr x0.2 at epochs 61 and
    71 of 80 (fractions 0.7625 and 0.8875 of the horizon). Reads ``lr`` and ``horizon_factor``
    (horizon in units of the workload's ``step_hint``) from ``hparams``. Returns
    (optimizer, scheduler, horizon in steps)."""
    opt = torch.optim.Adam(params, lr=hparams["lr"])
    horizon = max(1, int(hparams["horizon_factor"] * step_hint))
    sched = lambda_lr(opt, step_decay([int(f * horizon) for f in fractions], factor))
    return opt, sched, horizon
