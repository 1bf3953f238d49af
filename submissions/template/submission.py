"""Template: copy this folder to a folder of your own and edit.

The harness calls these plain functions (optional ones are found by name or signature):

    init(workload, model, hparams, rng) -> state                        untimed
    update(workload, model, state, batch, hparams, step, rng) -> state  one step; timed
    get_batch_size(workload) -> int                                     optional; untimed
    data_selection(workload, streams, state, step, rng) -> batch        optional; timed
    prepare_for_eval(workload, model, state) -> model                   optional; timed

Without ``get_batch_size`` the batch size is ``workload.spec.batch_size_hint``, the one the
workload's ``step_hint`` was measured at; define it only to train at another size. The
workloads this method runs on are declared in README.md's front matter, and only there.
``hparams`` is a read-only mapping resolved from ``search_space.json``; ``rng`` is a
``torch.Generator`` on the workload's device. Add a keyword ``train_state`` to ``update`` to get a
read-only mapping (train_time_s, budget_s, step, evals) for time-based schedules. Put the last
loss in ``state["loss"]`` (a dict state) so the runner can stop a run whose loss is not finite.
Raise ``harness.api.TrainingComplete`` to end training early. The state is checkpointed
(pickled with the model) at every evaluation so a preempted job can resume: keep lambdas out of
it. Models with constrained parameters (the ldpc decoder's weights live in [0, 2]) have
``project_()``: call it after each optimizer step (``harness.schedules.optimizer_step`` does the
step, the scheduler, the projection and ``state["loss"]`` for you). Picklable schedules and
optimizer recipes the bundled methods share are in ``submissions._common``. You never see
validation or test data, and the clock is not yours to touch.

This template is plain Adam on the workload's default loss, with a linear warmup.
"""

from __future__ import annotations

import functools

import torch


def warmup_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup)


def init(workload, model, hparams, rng):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=hparams["lr"])
    warmup = max(1, int(hparams["warmup_frac"] * workload.spec.step_hint))
    # a module-level function, not a lambda: the state must pickle for checkpoints
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(warmup_factor, warmup=warmup))
    return {"opt": opt, "sched": sched, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    loss = workload.loss(model, batch)
    state["opt"].zero_grad(set_to_none=True)
    loss.backward()
    state["opt"].step()
    state["sched"].step()
    if hasattr(model, "project_"):
        model.project_()
    state["loss"] = loss.detach()  # read by the runner at evaluations, never synchronized here
    return state
