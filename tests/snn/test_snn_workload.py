"""The snn workload: neuron, networks, gradient estimators, data, evaluator and bad input.

Gradient checks are exact comparisons with independent hand-written computations on tiny
networks (docs/methods.md#snn); the memory property is checked with the exact saved-tensor
meter, not with timings.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.api import ContractError
from harness.discovery import build_workload, load_submission
from harness.memory import SavedTensorMeter
from harness.runner import make_generator
from harness.search_space import SearchSpace
from workloads.snn import SPECS, SnnWorkload, neuron
from workloads.snn import data as snn_data
from workloads.snn.model import Arch, SpikingNet, mean_readout, plain_synapse
from workloads.snn.neuron import ALPHA, LAM, THETA, lif_multistep, lif_step
from workloads.snn.online import PresynapticTraces, online_backward

CPU = torch.device("cpu")


def tiny(kind="mlp", hidden=(3,), T=4, readout_lam=0.5, in_features=2, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    net = SpikingNet(Arch(kind, in_features, hidden, 2, T, readout_lam)).to(dtype)
    with torch.no_grad():  # weights large enough that neurons fire and sit near threshold
        for p in net.parameters():
            p.mul_(3.0)
    return net


def grads(net):
    return {k: p.grad.detach().clone() for k, p in net.named_parameters() if p.grad is not None}


def zero(net):
    for p in net.parameters():
        p.grad = None


# -- neuron ------------------------------------------------------------------------------------


def test_lif_step_equations_and_surrogate():
    u_prev = torch.tensor([0.0, 0.4, 1.2, -0.3], dtype=torch.float64)
    current = torch.tensor([0.5, 0.8, 0.4, 1.15], dtype=torch.float64, requires_grad=True)
    u_next, s = lif_step(u_prev, current)
    u = LAM * u_prev + current.detach()
    assert s.tolist() == (u >= THETA).double().tolist() == [0.0, 1.0, 1.0, 0.0]
    assert torch.equal(u_next.detach(), u - THETA * s.detach())
    s.sum().backward()
    sg = torch.sigmoid(ALPHA * (u - THETA))
    torch.testing.assert_close(current.grad, ALPHA * sg * (1 - sg))
    # H(0) = 1: exactly at threshold the neuron fires
    assert lif_step(torch.zeros(1), torch.ones(1))[1].item() == 1.0


def test_lif_multistep_is_the_step_loop_and_rejects_scalars():
    cur = torch.randn(6, 3, 4, dtype=torch.float64) + 0.5
    u = torch.zeros(3, 4, dtype=torch.float64)
    ref = []
    for t in range(6):
        u, s = lif_step(u, cur[t])
        ref.append(s)
    assert torch.equal(lif_multistep(cur), torch.stack(ref))
    with pytest.raises(ValueError, match="shape"):
        lif_multistep(torch.ones(3))


# -- networks ----------------------------------------------------------------------------------


def test_multistep_forward_equals_step_loop_for_feedforward_nets():
    net = tiny("mlp", hidden=(5, 4), T=6, in_features=3)
    x = torch.rand(7, 3, dtype=torch.float64)
    fast = net.forward_multistep(x)
    state, outs = {}, []
    for t in range(6):
        o, state = net.step(net.input_at(x, t), state)
        outs.append(o)
    torch.testing.assert_close(fast, torch.stack(outs))


def unrolled_reference(net: SpikingNet, x: torch.Tensor) -> torch.Tensor:
    """The recurrent network written out from the equations, independent of ``SpikingNet``."""
    B = x.shape[0]
    u = [torch.zeros(B, layer.synapse.out_features, dtype=x.dtype) for layer in net.layers]
    s = [None] * len(net.layers)
    o, outs = None, []
    for t in range(net.time_steps):
        z = x[:, t : t + 1]
        for i, layer in enumerate(net.layers):
            current = z @ layer.synapse.weight.T + layer.synapse.bias
            if s[i] is not None:
                current = current + s[i] @ layer.recurrent.weight.T
            v = LAM * u[i] + current
            s[i] = neuron.spike(v - THETA)
            u[i] = v - THETA * s[i]
            z = s[i]
        drive = z @ net.readout.weight.T + net.readout.bias
        o = drive if o is None else drive + net.readout_lam * o
        outs.append(o)
    return torch.stack(outs)


def test_bptt_gradient_matches_autograd_through_the_unrolled_network():
    net = tiny("rsnn", hidden=(4, 3), T=5, in_features=1)
    x = torch.randn(6, 5, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (6,))
    F.cross_entropy(mean_readout(net(x)), y).backward()
    got = grads(net)
    zero(net)
    F.cross_entropy(unrolled_reference(net, x).mean(0), y).backward()
    want = grads(net)
    assert got.keys() == want.keys() and len(got) == 8
    for k in want:
        torch.testing.assert_close(got[k], want[k], msg=k)
    assert any(g.abs().sum() > 0 for k, g in got.items() if "recurrent" in k)


def test_bptt_gradient_matches_finite_differences_with_a_smooth_spike(monkeypatch):
    """docs/methods.md#bptt_surrogate: with the surrogate replaced by the true sigmoid the network
    is smooth, and BPTT must equal finite differences (3 neurons, T = 4)."""
    monkeypatch.setattr(neuron, "spike", lambda x, alpha=ALPHA: torch.sigmoid(alpha * x))
    net = tiny("rsnn", hidden=(3,), T=4, in_features=1)
    x = torch.randn(2, 4, dtype=torch.float64)
    y = torch.tensor([0, 1])
    names = [k for k, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in net.parameters())

    def loss(*ps):
        out = torch.func.functional_call(net, dict(zip(names, ps, strict=True)), (x,))
        return F.cross_entropy(out.mean(0), y)

    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-7)


# -- OTTT / SLTT ---------------------------------------------------------------------------------


def test_ottt_weight_gradient_is_the_trace_weighted_per_step_error_by_hand():
    """One LIF layer (2 -> 3) and a leaky readout (3 -> 2), T = 3, loss sum_t CE(o[t], y)/T:
    grad W = sum_t delta_I[t] a_in[t]^T and grad W_o = sum_t delta_o[t] a_s[t]^T, with the
    errors from spatial backprop within each step and the traces a[t] = lam a[t-1] + z[t]."""
    T, lam_o = 3, 0.5
    net = tiny("mlp", hidden=(3,), T=T, readout_lam=lam_o, in_features=2, seed=3)
    x = torch.rand(4, 2, dtype=torch.float64) * 1.5
    y = torch.tensor([0, 1, 1, 0])
    online_backward(net, x, y, PresynapticTraces(readout_lam=lam_o), mse_weight=0.0)
    got = grads(net)

    W, b = net.layers[0].synapse.weight.detach(), net.layers[0].synapse.bias.detach()
    Wo, bo = net.readout.weight.detach(), net.readout.bias.detach()
    u = torch.zeros(4, 3, dtype=torch.float64)
    o = torch.zeros(4, 2, dtype=torch.float64)
    a_in, a_s = torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 3, dtype=torch.float64)
    gW, gb, gWo, gbo = (torch.zeros_like(t) for t in (W, b, Wo, bo))
    onehot = F.one_hot(y, 2).double()
    for _t in range(T):
        v = LAM * u + x @ W.T + b
        s = (v >= THETA).double()
        u = v - THETA * s
        o = lam_o * o + s @ Wo.T + bo
        a_in = LAM * a_in + x
        a_s = lam_o * a_s + s
        delta_o = (torch.softmax(o, 1) - onehot) / (T * 4)  # d[CE(o[t])/T]/do[t], batch mean
        sg = torch.sigmoid(ALPHA * (v - THETA))
        delta_i = (delta_o @ Wo) * ALPHA * sg * (1 - sg)  # spatial backprop within step t
        gWo += delta_o.T @ a_s
        gbo += delta_o.sum(0)
        gW += delta_i.T @ a_in
        gb += delta_i.sum(0)
    torch.testing.assert_close(got["readout.weight"], gWo)
    torch.testing.assert_close(got["readout.bias"], gbo)
    torch.testing.assert_close(got["layers.0.synapse.weight"], gW)
    torch.testing.assert_close(got["layers.0.synapse.bias"], gb)


def test_ottt_with_zero_trace_decay_is_sltt_and_at_t1_is_bptt():
    net = tiny("rsnn", hidden=(4, 3), T=5, in_features=1, seed=1)
    x = torch.randn(6, 5, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (6,))
    online_backward(net, x, y, PresynapticTraces(readout_lam=0.0, lam=0.0), 0.05)
    ottt0 = grads(net)
    zero(net)
    online_backward(net, x, y, plain_synapse, 0.05)
    sltt = grads(net)
    for k in sltt:
        torch.testing.assert_close(ottt0[k], sltt[k], msg=k)
    zero(net)
    online_backward(net, x, y, PresynapticTraces(readout_lam=0.5), 0.05)
    assert any(not torch.allclose(grads(net)[k], sltt[k]) for k in sltt)  # traces matter

    one = tiny("mlp", hidden=(4,), T=1, in_features=2, seed=2)
    xs = torch.rand(5, 2, dtype=torch.float64) * 2
    ys = torch.randint(0, 2, (5,))
    online_backward(one, xs, ys, PresynapticTraces(readout_lam=0.5), 0.0)
    ottt1 = grads(one)
    zero(one)
    F.cross_entropy(mean_readout(one(xs)), ys).backward()
    for k, g in grads(one).items():
        torch.testing.assert_close(ottt1[k], g, msg=k)


def test_sltt_k_equal_to_t_is_sltt_and_draws_vary():
    sltt = load_submission("sltt").module
    g = torch.Generator().manual_seed(0)
    assert sltt.sampled_steps(8, 1.0, g) is None
    draws = [sltt.sampled_steps(8, 0.25, g) for _ in range(6)]
    assert all(len(d) == 2 and d <= set(range(8)) for d in draws)
    assert len({tuple(sorted(d)) for d in draws}) > 1
    net = tiny("rsnn", hidden=(3,), T=4, in_features=1)
    x, y = torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, 1, 0])
    online_backward(net, x, y, plain_synapse, 0.05, steps={0, 1, 2, 3})
    all_k = grads(net)
    zero(net)
    online_backward(net, x, y, plain_synapse, 0.05, steps=None)
    for k, v in grads(net).items():
        torch.testing.assert_close(all_k[k], v)


@pytest.mark.parametrize("method", ["ottt", "sltt", "bptt"])
def test_activation_memory_flat_in_t_for_online_methods_and_linear_for_bptt(method):
    """Peak bytes saved for backward over one training step (exact meter): constant in T for
    OTTT and SLTT, up to the input sequence itself (a step's input is a view of the (B, T)
    batch, and the meter counts whole storages); proportional to T for BPTT."""
    peaks = []
    for T in (5, 10, 20):
        net = tiny("rsnn", hidden=(16, 16), T=T, in_features=1, dtype=torch.float32)
        x, y = torch.randn(8, T), torch.randint(0, 2, (8,))
        with SavedTensorMeter() as meter:
            if method == "bptt":
                F.cross_entropy(mean_readout(net(x)), y).backward()
            else:
                syn = PresynapticTraces(0.5) if method == "ottt" else plain_synapse
                online_backward(net, x, y, syn, 0.05)
        peaks.append(meter.peak_bytes)
    if method == "bptt":
        d1, d2 = peaks[1] - peaks[0], peaks[2] - peaks[1]  # T: 5 -> 10 -> 20
        assert d1 > 0 and d2 == pytest.approx(2 * d1, rel=0.05)
    else:
        assert peaks[0] > 0 and max(peaks) - min(peaks) <= 8 * 20 * 4  # the (8, 20) input


# -- data, workload, evaluator ----------------------------------------------------------------


def test_mnist1d_is_generated_deterministically_and_leaves_global_rngs_alone():
    random.seed(123)
    np.random.seed(123)
    before = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    snn_data.mnist1d.cache_clear()
    a = snn_data.mnist1d(1000, 7, 0.1, 0.1)
    assert (random.random(), np.random.rand()) == before
    snn_data.mnist1d.cache_clear()
    b = snn_data.mnist1d(1000, 7, 0.1, 0.1)
    assert {k: len(v) for k, v in a.y.items()} == {"train": 800, "validation": 100, "test": 100}
    for k in a.x:
        assert torch.equal(a.x[k], b.x[k]) and torch.equal(a.y[k], b.y[k])
        assert a.x[k].shape[1:] == (40,) and a.x[k].dtype == torch.float32
    assert not torch.equal(a.x["train"][:100], snn_data.mnist1d(1000, 8, 0.1, 0.1).x["train"][:100])


def test_training_is_deterministic_under_a_seed():
    def train(seed):
        spec = SPECS["smoke"]
        wl = build_workload(spec, CPU)
        finals = {}
        for name in ("bptt_surrogate", "ottt", "sltt"):
            sub = load_submission(name)
            model = wl.init_model(make_generator(seed, "init", CPU))
            hp = SearchSpace.load(sub.search_space_path).resolve(
                {"k_fraction": 0.5} if name == "sltt" else {}
            )
            rng = make_generator(seed, "update", CPU)
            state = sub.fn("init")(wl, model, hp, rng)
            stream = wl.train_streams(16, make_generator(seed, "data", CPU))["train"]
            for step in range(5):
                state = sub.fn("update")(wl, model, state, next(stream), hp, step, rng)
            finals[name] = [p.detach().clone() for p in model.parameters()]
        return finals

    a, b, c = train(0), train(0), train(1)
    for name in a:
        assert all(torch.equal(p, q) for p, q in zip(a[name], b[name], strict=True)), name
        assert not all(torch.equal(p, q) for p, q in zip(a[name], c[name], strict=True)), name


def test_evaluator_scores_the_reference_network_and_rejects_other_architectures():
    wl = build_workload(SPECS["smoke"], CPU, eval_seed=0)
    model = wl.init_model(torch.Generator().manual_seed(0))
    m = wl.evaluate(model, "validation")
    assert set(m) >= {"accuracy", "loss"} and 0.0 <= m["accuracy"] <= 1.0 and m["examples"] == 300
    x, y = wl.evaluation_split("validation")
    with torch.no_grad():
        expect = (mean_readout(model(x)).argmax(1) == y).double().mean().item()
    assert m["accuracy"] == pytest.approx(expect)
    model.lif = lambda current: torch.ones_like(current)  # a submission's fast path is not scored
    assert wl.evaluate(model, "validation")["accuracy"] == pytest.approx(expect)
    wider = SpikingNet(dataclasses.replace(wl.arch, hidden=(64,)))
    with pytest.raises(ContractError, match="architecture"):
        wl.evaluate(wider, "validation")


def test_a_time_step_count_the_network_cannot_take_is_a_clear_error():
    with pytest.raises(ContractError, match="T must be 40"):
        SnnWorkload(dataclasses.replace(SPECS["default"], time_steps=20, num_samples=200), CPU)
    with pytest.raises(ContractError, match=">= 1"):
        SnnWorkload(dataclasses.replace(SPECS["smoke"], time_steps=0), CPU)
    net = tiny("rsnn", hidden=(3,), T=4, in_features=1)
    with pytest.raises(ValueError, match="T == its length"):
        net(torch.randn(2, 6, dtype=torch.float64))
    with pytest.raises(ContractError, match="unknown snn dataset"):
        SnnWorkload(dataclasses.replace(SPECS["smoke"], dataset="mnist"), CPU)


def test_train_stream_epochs_cover_the_training_set_without_repeats():
    wl = build_workload(SPECS["smoke"], CPU)
    n, bs = wl.num_train, 100
    stream = wl.train_streams(bs, torch.Generator().manual_seed(0))["train"]
    epoch = [next(stream) for _ in range(n // bs)]
    seen = torch.bincount(torch.cat([b.y for b in epoch]), minlength=10)
    full = torch.bincount(wl.splits.y["train"], minlength=10)
    assert int(seen.sum()) == (n // bs) * bs and bool((seen <= full).all())  # each once at most
    rows = torch.cat([b.x for b in epoch])
    assert len(torch.unique(rows, dim=0)) == len(torch.unique(wl.splits.x["train"], dim=0)) - sum(
        1 for r in torch.unique(wl.splits.x["train"], dim=0) if not (rows == r).all(1).any()
    )
