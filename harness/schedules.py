"""The end of a submission's ``update``: contract plumbing every method may share.

``optimizer_step`` and ``finish_step`` do what the contract asks of every step whatever the
method: step the optimizer and its scheduler, project a constrained model (``project_()``), and
leave the detached loss in ``state["loss"]`` for the runner's finiteness check. They decide none
of a method's numbers: schedules, optimizer arguments and when to stop live with the methods, in
``submissions._common`` (docs/how-it-works.md).
"""

from __future__ import annotations

import torch

from harness.api import TrainingComplete

__all__ = ["TrainingComplete", "finish_step", "optimizer_step"]


def optimizer_step(model, state: dict, loss: torch.Tensor, clip: float | None = None) -> dict:
    """The usual end of a submission's ``update``: ``state["opt"]`` zero-grad, ``loss``
    backward, optional gradient-norm clipping of ``model``'s parameters at ``clip``, then
    ``finish_step``. Returns ``state``."""
    state["opt"].zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    return finish_step(model, state, loss)


def finish_step(model, state: dict, loss: torch.Tensor) -> dict:
    """Optimizer step on the gradients already in place, ``state["sched"]`` step (when there
    is one), the model's ``project_()`` (when it has one: constrained parameters, e.g. the ldpc
    decoder's weights in [0, 2]), and ``state["loss"]`` = the detached ``loss``."""
    state["opt"].step()
    if state.get("sched") is not None:
        state["sched"].step()
    if hasattr(model, "project_"):
        model.project_()
    state["loss"] = loss.detach()
    return state
