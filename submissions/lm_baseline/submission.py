"""The language-model baseline: plain next-token training with AdamW.

Every token of every training document is trained (the workload's default ``"train"`` stream and
loss); AdamW with beta2 0.98, linear warmup, then cosine decay to 0 over ``horizon_factor x
step_hint`` steps, gradient-norm clip 1 (GPT-2 / nanoGPT-style recipe, docs/methods.md#lm_baseline).
"""

from __future__ import annotations

from harness.schedules import optimizer_step
from submissions._common import adamw_warmup_cosine

GRAD_CLIP = 1.0


def init(workload, model, hparams, rng):
    opt, sched = adamw_warmup_cosine(
        model.parameters(), hparams, workload.spec.step_hint, beta2=0.98
    )
    return {"opt": opt, "sched": sched, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    loss = workload.loss(model, batch)
    return optimizer_step(model, state, loss, GRAD_CLIP)
