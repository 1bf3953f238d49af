"""AdamW with linear warmup and cosine decay: AlgoPerf's archived AdamW baseline.

Loshchilov & Hutter 2019 (arXiv 1711.05101) as ``torch.optim.AdamW`` (eps 1e-8, decoupled
decay theta <- theta (1 - lr wd), every parameter), on the workload's own objective
(``workload.training_loss``) and batch size (``spec.batch_size_hint``); the learning rate warms
up linearly over ``warmup_factor x step_hint`` steps, then follows a cosine to 0 at
``step_hint`` and stays there (AlgoPerf's PyTorch cosine would rise again). No gradient
clipping. After step ``step_hint - 1`` the learning rate is 0, so the run ends there
(``TrainingComplete``) instead of spending the rest of the budget on steps that change nothing.
docs/methods.md#adamw. A generic method: it reads no workload-specific field.
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
