"""The generic optimizer submissions (adamw, nadamw, sgd_nesterov, adamp, sam): each update
matches a hand computation of its rule (docs/methods.md#generic-optimizers) on a tiny quadratic, run
through the submission's own ``init`` and ``update``; and a generic submission reads nothing of a
workload beyond the generic API."""

from __future__ import annotations

import ast
import copy
import dataclasses
import math
from types import MappingProxyType, SimpleNamespace

import pytest
import torch

from harness import discovery
from harness.api import Workload, WorkloadSpec
from harness.search_space import SearchSpace

GENERIC = ("adamw", "nadamw", "sgd_nesterov", "adamp", "sam")
A = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64)  # curvatures of the quadratic


class Quadratic(Workload):
    """L(theta) = 1/2 sum_i a_i theta_i^2 on one 3-parameter tensor: gradient a * theta."""

    def __init__(self, step_hint: int = 100):
        self.spec = SimpleNamespace(step_hint=step_hint, batch_size_hint=4)

    def loss(self, model, batch):
        return 0.5 * (A * model.theta**2).sum()


class Vector(torch.nn.Module):
    def __init__(self, values):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))


def _run(name: str, hparams: dict, values, steps: int, workload=None):
    sub = discovery.load_submission(name)
    hp = MappingProxyType(SearchSpace.load(sub.search_space_path).resolve(hparams))
    wl = workload or Quadratic()
    model = Vector(values)
    state = sub.fn("init")(wl, model, hp, torch.Generator())
    for step in range(steps):
        state = sub.fn("update")(wl, model, state, None, hp, step, torch.Generator())
    return model.theta.detach(), hp, state


def _lr(hp, step: int, hint: int = 100) -> float:
    """The warmup phase of warmup_cosine: (step + 1) / warmup."""
    return hp["lr"] * (step + 1) / int(hp["warmup_factor"] * hint)


def test_adamw_two_steps_by_hand():
    theta, hp, _ = _run("adamw", {"lr": 1e-2, "weight_decay": 0.5}, [1.0, -2.0, 3.0], 2)
    b1, b2 = 1 - hp["one_minus_beta1"], hp["beta2"]
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    m = v = torch.zeros(3, dtype=torch.float64)
    for t in (1, 2):
        g, lr = A * x, _lr(hp, t - 1)
        x = x * (1 - lr * hp["weight_decay"])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        x = x - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + 1e-8)
    assert torch.allclose(theta, x, rtol=0, atol=1e-12)


def test_nadamw_two_steps_by_hand():
    """The Nesterov look-ahead b1 m_t + (1 - b1) g_t is the numerator (AlgoPerf's nadamw)."""
    theta, hp, _ = _run("nadamw", {"lr": 1e-2, "one_minus_beta1": 0.05}, [1.0, -2.0, 3.0], 2)
    b1, b2, wd = 1 - hp["one_minus_beta1"], hp["beta2"], hp["weight_decay"]
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    m = v = torch.zeros(3, dtype=torch.float64)
    for t in (1, 2):
        g, lr = A * x, _lr(hp, t - 1)
        x = x * (1 - lr * wd)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        x = x - lr * ((b1 * m + (1 - b1) * g) / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + 1e-8)
    assert torch.allclose(theta, x, rtol=0, atol=1e-12)
    adamw, _, _ = _run("adamw", dict(hp), [1.0, -2.0, 3.0], 2)  # (within adamw's space too)
    assert not torch.allclose(theta, adamw)  # and the look-ahead does change the step


def test_sgd_nesterov_two_steps_by_hand():
    theta, hp, _ = _run("sgd_nesterov", {"lr": 0.1, "weight_decay": 5e-5}, [1.0, -2.0, 3.0], 2)
    mu, wd = 1 - hp["one_minus_beta1"], hp["weight_decay"]
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    b = None
    for t in (1, 2):
        g = A * x + wd * x  # coupled L2
        b = g if b is None else mu * b + g
        x = x - _lr(hp, t - 1) * (g + mu * b)
    assert torch.allclose(theta, x, rtol=0, atol=1e-12)


def test_sgd_nesterov_schedule_decays_linearly_to_the_end_factor():
    _, hp, state = _run("sgd_nesterov", {"end_factor": 1e-3}, [1.0, 1.0, 1.0], 0)
    f = state["sched"].lr_lambdas[0]
    warmup = 5  # 0.05 x 100
    decay = int(0.9 * (100 - warmup))
    assert f(warmup) == pytest.approx(1.0)
    assert f(warmup + decay // 2) == pytest.approx(1 + (1e-3 - 1) * (decay // 2) / decay)
    assert f(warmup + decay) == f(10_000) == pytest.approx(1e-3)


class Matrix(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))


class Linear(Workload):
    """L(W) = sum(G * W): a fixed gradient G whatever W is."""

    def __init__(self, g):
        self.spec = SimpleNamespace(step_hint=100, batch_size_hint=4)
        self.g = torch.tensor(g, dtype=torch.float64)

    def loss(self, model, batch):
        return (self.g * model.w).sum()


def _one_step(name, w, g, hparams):
    sub = discovery.load_submission(name)
    hp = MappingProxyType(SearchSpace.load(sub.search_space_path).resolve(hparams))
    wl, model = Linear(g), Matrix(w)
    state = sub.fn("init")(wl, model, hp, torch.Generator())
    sub.fn("update")(wl, model, state, None, hp, 0, torch.Generator())
    return model.w.detach(), hp


def test_adamp_projects_an_orthogonal_gradient_and_scales_the_decay():
    w = [[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]
    g = [[-4.0, 3.0, 1.0], [1.0, -1.0, 0.0]]  # each row orthogonal to w's row: cos = 0
    new, hp = _one_step("adamp", w, g, {"lr": 1e-2, "weight_decay": 0.5})
    W, G = torch.tensor(w, dtype=torch.float64), torch.tensor(g, dtype=torch.float64)
    lr = _lr(hp, 0)
    q = G / (G.abs() + 1e-8)  # t = 1: m_hat = g, v_hat = g^2
    w_hat = W / (W.norm(dim=1, keepdim=True) + 1e-8)
    q = q - w_hat * (w_hat * q).sum(1, keepdim=True)  # the channel view passes first
    expected = W * (1 - lr * 0.5 * hp["wd_ratio"]) - lr * q
    assert torch.allclose(new, expected, rtol=0, atol=1e-12)


def test_adamp_is_adamw_when_the_gradient_is_along_the_weight():
    w = [[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]
    g = [[0.3, 0.4, 0.0], [0.0, 0.0, -1.0]]  # parallel: |cos| = 1, never projected
    adamp, hp = _one_step("adamp", w, g, {"lr": 1e-2, "weight_decay": 0.5})
    adamw, _ = _one_step(
        "adamw", w, g, {k: hp[k] for k in ("lr", "one_minus_beta1", "weight_decay")}
    )
    assert torch.allclose(adamp, adamw, rtol=0, atol=1e-12)


def test_sam_step_uses_the_gradient_at_the_perturbed_point():
    x0 = [1.0, -2.0, 3.0]
    theta, hp, state = _run("sam", {"lr": 1e-2, "rho": 0.05}, x0, 1)
    x = torch.tensor(x0, dtype=torch.float64)
    g = A * x
    g_sam = A * (x + hp["rho"] * g / (g.norm() + 1e-12))
    ref = Vector(x0)
    opt = torch.optim.AdamW(
        [ref.theta],
        lr=_lr(hp, 0),
        betas=(1 - hp["one_minus_beta1"], hp["beta2"]),
        weight_decay=hp["weight_decay"],
    )
    ref.theta.grad = g_sam
    opt.step()
    assert torch.allclose(theta, ref.theta.detach(), rtol=0, atol=1e-12)
    assert float(state["loss"]) == pytest.approx(float(0.5 * (A * x**2).sum()))  # at theta


class Normed(Workload):
    def __init__(self):
        self.spec = SimpleNamespace(step_hint=100, batch_size_hint=8)

    def loss(self, model, batch):
        return model(batch).pow(2).mean()


def test_sam_second_pass_leaves_batch_norm_statistics_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    batch = torch.randn(8, 3)
    reference = copy.deepcopy(model)
    reference(batch)  # one training-mode forward at theta: the statistics SAM must end with
    sub = discovery.load_submission("sam")
    hp = MappingProxyType(SearchSpace.load(sub.search_space_path).defaults())
    state = sub.fn("init")(Normed(), model, hp, torch.Generator())
    sub.fn("update")(Normed(), model, state, batch, hp, 0, torch.Generator())
    assert torch.allclose(model[1].running_mean, reference[1].running_mean)
    assert torch.allclose(model[1].running_var, reference[1].running_var)
    assert model[1].momentum == 0.1  # restored after the second pass


@pytest.mark.parametrize("name", GENERIC)
def test_generic_submissions_project_constrained_models(name):
    """ldpc's decoder weights live in [0, 2]: a generic step must leave them there."""

    class Constrained(Vector):
        @torch.no_grad()
        def project_(self):
            self.theta.clamp_(0.0, 2.0)

    class Push(Quadratic):
        def loss(self, model, batch):
            return (model.theta * torch.tensor([1e3, -1e3, 0.0], dtype=torch.float64)).sum()

    sub = discovery.load_submission(name)
    hp = MappingProxyType(SearchSpace.load(sub.search_space_path).defaults())
    model = Constrained.__new__(Constrained)
    Vector.__init__(model, [0.0, 2.0, 1.0])
    state = sub.fn("init")(Push(), model, hp, torch.Generator())
    for step in range(3):
        sub.fn("update")(Push(), model, state, None, hp, step, torch.Generator())
    theta = model.theta.detach()
    assert float(theta.min()) >= 0.0 and float(theta.max()) <= 2.0


# -- generic means generic ------------------------------------------------------------------

GENERIC_WORKLOAD_API = {"spec", "training_loss", "loss", "device", "synchronize"}
GENERIC_SPEC_FIELDS = {f.name for f in dataclasses.fields(WorkloadSpec)}


def _workload_attributes(source: str) -> tuple[set[str], set[str]]:
    """Attributes read off ``workload`` and off ``workload.spec`` in a submission's source."""
    on_workload, on_spec = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "workload":
                on_workload.add(node.attr)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "spec"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "workload"
        ):
            on_spec.add(node.attr)
    return on_workload, on_spec


def test_the_generic_submissions_are_discovered_as_generic():
    for name in GENERIC:
        assert discovery.load_submission(name).workloads is None, name


ALL_GENERIC = [
    s for s in discovery.submission_names() if discovery.load_submission(s).workloads is None
]


@pytest.mark.parametrize("name", ALL_GENERIC)
def test_a_generic_submission_reads_only_the_generic_api(name):
    sub = discovery.load_submission(name)
    source = (sub.path / "submission.py").read_text()
    on_workload, on_spec = _workload_attributes(source)
    assert on_workload <= GENERIC_WORKLOAD_API, (
        f"{name} runs on every workload, so it may use only {sorted(GENERIC_WORKLOAD_API)} of "
        f"the workload; it reads {sorted(on_workload - GENERIC_WORKLOAD_API)}"
    )
    assert on_spec <= GENERIC_SPEC_FIELDS, f"{name} reads {sorted(on_spec - GENERIC_SPEC_FIELDS)}"
    named = [w for w in discovery.workload_names() if f'"{w}"' in source or f"'{w}'" in source]
    assert not named, f"{name} names workload(s) {named}: no special cases in a generic method"


def test_training_loss_defaults_to_the_loss():
    wl, model = Quadratic(), Vector([1.0, 2.0, 3.0])
    assert torch.equal(wl.training_loss(model, None, 7), wl.loss(model, None))
    assert math.isclose(float(wl.loss(model, None).detach()), 0.5 * (1 + 16 + 2.25))


@pytest.mark.parametrize("name", ["adamw", "nadamw", "adamp", "sam"])
def test_cosine_methods_end_the_run_when_their_learning_rate_reaches_zero(name):
    """The cosine reaches 0 at step_hint: the last step is step_hint - 1, then
    TrainingComplete (one final evaluation), instead of spending budget that changes nothing."""
    from harness.api import TrainingComplete

    sub = discovery.load_submission(name)
    hp = MappingProxyType(SearchSpace.load(sub.search_space_path).defaults())
    wl, model = Quadratic(step_hint=40), Vector([1.0, -2.0, 3.0])
    state = sub.fn("init")(wl, model, hp, torch.Generator())
    for step in range(39):
        state = sub.fn("update")(wl, model, state, None, hp, step, torch.Generator())
    assert state["sched"].get_last_lr()[0] < 1e-2 * hp["lr"]  # nearly at the end of the cosine
    before = model.theta.detach().clone()
    with pytest.raises(TrainingComplete):
        sub.fn("update")(wl, model, state, None, hp, 39, torch.Generator())
    assert not torch.equal(model.theta.detach(), before)  # that last step was still taken
    assert state["sched"].get_last_lr()[0] == 0.0
