"""SGD with Nesterov momentum, linear warmup and linear decay: AlgoPerf's Nesterov baseline.

``torch.optim.SGD(nesterov=True)``: g <- g + wd theta (coupled L2); b <- mu b + g (b_1 = g);
theta <- theta - lr (g + mu b), mu = 1 - one_minus_beta1. The learning rate warms up linearly
over ``warmup_factor x step_hint`` steps, decays linearly to ``lr x end_factor`` over
``decay_steps_factor x (step_hint - warmup)`` steps, then stays there (AlgoPerf's
``create_lr_schedule_fn``). Workload objective and batch size as ``adamw``.
docs/methods.md#sgd_nesterov. A generic method.
"""

from __future__ import annotations

import torch

from harness.schedules import optimizer_step
from submissions._common import lambda_lr, warmup_linear


def init(workload, model, hparams, rng):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(
        params,
        lr=hparams["lr"],
        momentum=1.0 - hparams["one_minus_beta1"],
        weight_decay=hparams["weight_decay"],
        nesterov=True,
    )
    hint = workload.spec.step_hint
    warmup = int(hparams["warmup_factor"] * hint)
    decay = max(1, int(hparams["decay_steps_factor"] * (hint - warmup)))
    sched = lambda_lr(opt, warmup_linear(warmup, decay, hparams["end_factor"]))
    return {"opt": opt, "sched": sched, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    return optimizer_step(model, state, workload.training_loss(model, batch, step))
