"""``submissions._common``: the schedules and optimizer recipes the methods share, against hand
computations; and the harness keeps none of them."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

import harness.schedules
from harness.api import TrainingComplete
from submissions import _common as common


def test_warmup_cosine_by_hand():
    f = common.warmup_cosine(4, 20, end_factor=0.1)
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(4) == pytest.approx(1.0)  # the cosine starts at its top
    mid = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 8 / 16))  # step 12: halfway through 16
    assert f(12) == pytest.approx(mid) == pytest.approx(0.55)
    assert f(20) == pytest.approx(0.1) and f(1000) == pytest.approx(0.1)  # held, never rising


def test_warmup_linear_and_step_decay_by_hand():
    f = common.warmup_linear(2, 10, end_factor=0.2)
    assert [f(s) for s in (0, 1, 2, 7, 12, 50)] == pytest.approx([0.5, 1.0, 1.0, 0.6, 0.2, 0.2])
    g = common.step_decay([3, 6], 0.5)
    assert [g(s) for s in (0, 2, 3, 5, 6, 99)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_schedules_pickle_for_checkpoints():
    for f in (
        common.warmup_cosine(3, 30),
        common.warmup_linear(3, 30, 0.0),
        common.step_decay([5], 0.2),
    ):
        g = pickle.loads(pickle.dumps(f))
        assert [g(s) for s in range(40)] == [f(s) for s in range(40)]


@pytest.mark.parametrize(
    "make",
    [
        lambda: common.warmup_cosine(-1, 10),
        lambda: common.warmup_cosine(1, 0),
        lambda: common.warmup_linear(1, 10, 1.5),
        lambda: common.step_decay([-1], 0.5),
        lambda: common.step_decay([1], 0.0),
    ],
)
def test_bad_schedules_are_refused(make):
    with pytest.raises(ValueError, match="bad"):
        make()


def test_cosine_to_hint_and_its_end():
    w = torch.nn.Parameter(torch.zeros(1))
    hp = {"lr": 0.1, "one_minus_beta1": 0.1, "beta2": 0.99, "weight_decay": 0.0}
    opt = torch.optim.AdamW([w], **common.adam_args(hp))
    assert opt.defaults["betas"] == (0.9, 0.99) and opt.defaults["eps"] == 1e-8
    state = common.cosine_to_hint(opt, {**hp, "warmup_factor": 0.1}, 50)
    assert set(state) == {"opt", "sched", "loss"} and state["loss"] is None
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 1 / 5)  # warmup of 5 steps
    assert common.end_at_hint(state, 48, 50) is state
    with pytest.raises(TrainingComplete):
        common.end_at_hint(state, 49, 50)


def test_adam_step_decay_milestones():
    w = torch.nn.Parameter(torch.zeros(1))
    opt, sched, horizon = common.adam_step_decay([w], {"lr": 1.0, "horizon_factor": 2.0}, 400)
    assert horizon == 800
    lrs = []
    for _ in range(800):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[609] == 1.0 and lrs[610] == pytest.approx(0.2)  # int(0.7625 * 800) = 610
    assert lrs[709] == pytest.approx(0.2) and lrs[710] == pytest.approx(0.04)  # 0.8875 * 800


def test_the_harness_keeps_only_the_step_plumbing():
    public = {n for n in vars(harness.schedules) if not n.startswith("_")}
    assert not {"warmup_cosine", "adam_args", "cosine_to_hint", "end_at_hint"} & public
    assert {"optimizer_step", "finish_step", "TrainingComplete"} <= public
