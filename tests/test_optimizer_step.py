"""``harness.schedules.optimizer_step``: the shared end of a submission's ``update``."""

from __future__ import annotations

import pytest
import torch

from harness.schedules import optimizer_step
from submissions._common import lambda_lr, warmup_cosine


def _state(param, sched=True):
    opt = torch.optim.SGD([param], lr=1.0)
    return {"opt": opt, "sched": lambda_lr(opt, warmup_cosine(0, 10)) if sched else None}


def test_clips_the_gradient_norm_then_steps_and_schedules():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    model = torch.nn.Module()
    model.w = w
    state = _state(w)
    loss = 0.5 * (w**2).sum() * 2  # gradient 2w = (6, 8), norm 10
    out = optimizer_step(model, state, loss, clip=1.0)
    assert out is state
    assert w.detach().tolist() == pytest.approx([3.0 - 0.6, 4.0 - 0.8])  # lr 1, clipped to norm 1
    assert float(state["loss"]) == pytest.approx(25.0) and not state["loss"].requires_grad
    assert state["sched"].last_epoch == 1  # the scheduler stepped once


def test_without_clip_or_scheduler():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    model = torch.nn.Module()
    model.w = w
    state = _state(w, sched=False)
    optimizer_step(model, state, (w**2).sum())
    assert w.detach().tolist() == pytest.approx([3.0 - 6.0, 4.0 - 8.0])
    w.grad = torch.ones(2)  # a stale gradient is cleared before backward
    optimizer_step(model, state, w.sum())
    assert w.detach().tolist() == pytest.approx([-4.0, -5.0])


def test_projects_a_constrained_model_after_the_step():
    """A model with ``project_()`` (the ldpc decoder's weights live in [0, 2]) is projected
    after every step, so no submission can forget it."""

    class Clamped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([0.5, 1.5]))

        @torch.no_grad()
        def project_(self):
            self.w.clamp_(0.0, 2.0)

    model = Clamped()
    state = _state(model.w, sched=False)
    optimizer_step(model, state, (model.w * torch.tensor([1.0, -1.0])).sum())  # step (-1, +1)
    assert model.w.detach().tolist() == [0.0, 2.0]  # (-0.5, 2.5) projected
