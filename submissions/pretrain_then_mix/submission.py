"""Pretrain-then-mix (Choi et al., NeurIPS 2023, arXiv 2312.06134): train on the high-resource
languages only until s* = switch_frac x step_hint, then on all languages with temperature sampling
at ``temperature``; optionally re-warm the learning rate at s*.

Stage 1 samples the high-resource languages with the same temperature. The paper's exact switch step
and post-switch mixture are not available; they are tuned here (README.md;
docs/methods.md#pretrain_then_mix). Optimizer and loss as in ``temperature_sampling``: AdamW beta
(0.9, 0.98), warmup then cosine over ``horizon_factor x step_hint``, label-smoothed loss, clip 1.
"""

from __future__ import annotations

import functools

import torch

from harness.schedules import optimizer_step
from submissions._common import lambda_lr, warmup_cosine
from workloads.translation.data import temperature_probs

GRAD_CLIP = 1.0


def _rewarmed(step: int, base, switch: int, warmup: int) -> float:
    """``base`` schedule, times a linear re-warmup over ``warmup`` steps from ``switch`` on."""
    factor = base(step)
    if step >= switch:
        factor *= min(1.0, (step - switch + 1) / max(1, warmup))
    return factor


def init(workload, model, hparams, rng):
    hint = workload.spec.step_hint
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=hparams["lr"],
        betas=(1.0 - hparams["one_minus_beta1"], 0.98),
        weight_decay=hparams["weight_decay"],
    )
    horizon = max(1, int(hparams["horizon_factor"] * hint))
    warmup = int(hparams["warmup_frac"] * horizon)
    switch = int(hparams["switch_frac"] * hint)
    schedule = warmup_cosine(warmup, horizon)
    if hparams["rewarm"]:
        schedule = functools.partial(_rewarmed, base=schedule, switch=switch, warmup=warmup)
    temperature = float(hparams["temperature"])
    high = {c: workload.train_sizes[c] for c in workload.high_resource}
    return {
        "opt": opt,
        "sched": lambda_lr(opt, schedule),
        "switch": switch,
        "stage1": temperature_probs(high, temperature),
        "stage2": temperature_probs(workload.train_sizes, temperature),
        "loss": None,
    }


def data_selection(workload, streams, state, step, rng):
    probs = state["stage1"] if step < state["switch"] else state["stage2"]
    return workload.mixture_batch(streams, probs, workload.spec.batch_size_hint, rng)


def update(workload, model, state, batch, hparams, step, rng):
    loss = workload.loss(model, batch)
    return optimizer_step(model, state, loss, GRAD_CLIP)
