"""Template for a generic method: copy this folder to a folder of your own and edit.

A generic method runs on every workload (``workloads: all`` in README.md's front matter) and
reads only the generic API, never a workload-specific field:

    workload.training_loss(model, batch, step)  the objective: the workload's default loss,
                                                or its own training objective (certification:
                                                IBP certified training with its eps ramp)
    workload.loss(model, batch)                 the plain loss
    workload.spec.step_hint                     steps a tuned baseline takes: the horizon
    workload.spec.batch_size_hint               the batch size step_hint was measured at (the
                                                default when get_batch_size is left out)
    workload.device, workload.synchronize()

The batches are the workload's ``"train"`` stream (no ``data_selection``). This template is
AdamW with a linear warmup over ``warmup_factor x step_hint`` steps and a cosine to 0 at
``step_hint``, built from the recipes in ``submissions._common``; it ends the run at
``step_hint`` (``end_at_hint``), where its learning rate reaches 0. Replace ``init`` and
``update`` with your method. ``harness.schedules.optimizer_step`` zeroes the gradients,
backpropagates, steps the optimizer and its scheduler, projects a constrained model (ldpc's
decoder weights live in [0, 2]) and keeps the detached loss in ``state["loss"]``.
"""

from __future__ import annotations

import torch

from harness.schedules import optimizer_step
from submissions._common import adam_args, cosine_to_hint, end_at_hint


def init(workload, model, hparams, rng):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, **adam_args(hparams))
    return cosine_to_hint(opt, hparams, workload.spec.step_hint)


def update(workload, model, state, batch, hparams, step, rng):
    state = optimizer_step(model, state, workload.training_loss(model, batch, step))
    return end_at_hint(state, step, workload.spec.step_hint)
