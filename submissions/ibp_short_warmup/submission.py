"""IBP with short warmup (Shi et al., NeurIPS 2021, "Fast certified robust training with short
warmup", arXiv 2103.17268; code ``shizhouxing/Fast-Certified-Robust-Training``).

Three changes to plain IBP (docs/methods.md#ibp_short_warmup), from the authors' code:
1. IBP initialization: conv/linear weights except the last ~ N(0, 2 pi / fan_in^2)
   (``regularizers.ibp_init``);
2. batch norm after every layer: the workload's networks already have it;
3. warmup regularizers for bound tightness and ReLU balance, weighted
   lambda (1 - eps_t / eps_max), active while eps ramps (``regularizers.warmup_regularizer``).
While eps = 0 the loss is natural CE + L_reg with bounds computed at eps = 1e-6; during the ramp
it is the IBP robust loss + L_reg; after the ramp the robust loss alone. eps follows auto_LiRPA's
``SmoothedScheduler`` over a short ramp. Adam with lr x0.2 at 76% and 89% of the horizon
(epochs 61 and 71 of 80), gradient-norm clip 10.
"""

from __future__ import annotations

import torch

from harness.schedules import optimizer_step
from submissions._common import adam_step_decay
from workloads.certification.regularizers import fast_ibp_loss, ibp_init
from workloads.certification.schedules import smoothed_eps

GRAD_CLIP = 10.0


def init(workload, model, hparams, rng):
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
    ibp_init(model, generator=torch.Generator().manual_seed(seed))
    opt, sched, horizon = adam_step_decay(model.parameters(), hparams, workload.spec.step_hint)
    start = int(hparams["ramp_start"] * horizon)
    length = max(1, int(hparams["ramp_length"] * horizon))
    return {"opt": opt, "sched": sched, "start": start, "length": length, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    eps = smoothed_eps(step, state["start"], state["length"], workload.eps)
    in_ramp = step < state["start"] + state["length"]
    loss = fast_ibp_loss(model, batch.x, batch.y, eps, workload.eps, in_ramp, hparams["reg_lambda"])
    return optimizer_step(model, state, loss, GRAD_CLIP)
