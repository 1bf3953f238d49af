"""IBP certified training with a linear eps ramp and natural/robust loss mixing.

Gowal et al. 2018 ("On the effectiveness of interval bound propagation", arXiv 1810.12715) as
implemented by CROWN-IBP's code with beta = 0 (docs/methods.md#ibp): standard PyTorch
initialization; natural cross-entropy while eps = 0; then eps ramps linearly (auto_LiRPA's
``LinearScheduler``) to the workload's eps and the loss is
kappa CE(z, y) + (1 - kappa) L_rob, kappa = 1 - (1 - kappa_final) eps_t / eps_max, with L_rob the
IBP margin loss. Adam with lr x0.2 at 76% and 89% of the horizon, gradient-norm clip 10.
"""

from __future__ import annotations

from harness.schedules import optimizer_step
from submissions._common import adam_step_decay
from workloads.certification.bounds import mixed_loss
from workloads.certification.schedules import linear_eps

GRAD_CLIP = 10.0


def init(workload, model, hparams, rng):
    opt, sched, horizon = adam_step_decay(model.parameters(), hparams, workload.spec.step_hint)
    start = int(hparams["ramp_start"] * horizon)
    length = max(1, int(hparams["ramp_length"] * horizon))
    return {"opt": opt, "sched": sched, "start": start, "length": length, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    eps = linear_eps(step, state["start"], state["length"], workload.eps)
    loss = mixed_loss(model, batch.x, batch.y, eps, workload.eps, hparams["kappa_final"])
    return optimizer_step(model, state, loss, GRAD_CLIP)
