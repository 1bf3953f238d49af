"""The translation submissions' rules (docs/methods.md#translation): temperature sampling's
frequencies, CATS's primal-dual weight updates, pretrain-then-mix's two stages."""

from __future__ import annotations

import math
import types

import pytest
import torch

from harness.discovery import load_submission
from workloads.translation import SPECS, TranslationWorkload
from workloads.translation.data import temperature_probs

cats = load_submission("cats").module
ptm = load_submission("pretrain_then_mix").module
ts = load_submission("temperature_sampling").module


@pytest.fixture(scope="module")
def smoke():
    return TranslationWorkload(SPECS["smoke"], torch.device("cpu"))


def language_counts(workload, batches) -> dict[str, int]:
    counts = dict.fromkeys(workload.languages, 0)
    for b in batches:
        for k in b.lang.tolist():
            counts[workload.languages[k]] += 1
    return counts


def assert_frequencies(counts: dict[str, int], probs: dict[str, float]) -> None:
    """Each language's frequency within 3 standard errors of its probability."""
    n = sum(counts.values())
    for code, p in probs.items():
        se = math.sqrt(max(p * (1 - p), 1e-12) / n)
        assert abs(counts[code] / n - p) <= 3 * se + 1e-12, (code, counts[code] / n, p)


def test_temperature_sampling_draws_languages_with_the_tempered_frequencies(smoke):
    hp = {"temperature": 2.0}
    state = {"probs": temperature_probs(smoke.train_sizes, hp["temperature"])}
    streams = smoke.train_streams(smoke.spec.batch_size_hint, torch.Generator().manual_seed(0))
    rng = torch.Generator().manual_seed(1)
    batches = [ts.data_selection(smoke, streams, state, s, rng) for s in range(400)]
    assert_frequencies(language_counts(smoke, batches), state["probs"])


# -- CATS ---------------------------------------------------------------------------------------


def cats_state(n: int) -> dict:
    return {"a": torch.zeros(n, dtype=torch.float64), "lam": 0.0, "history": []}


def test_cats_with_the_dual_frozen_moves_weight_to_the_highest_loss_language():
    losses = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    grads = torch.randn(3, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = cats_state(3)
    hp = {"eta_a": 0.5, "eta_lam": 0.0, "eps": 0.5}
    w_before = torch.softmax(state["a"], 0)
    for _ in range(20):
        cats.meta_update(state, hp, losses, grads)
        assert state["lam"] == 0.0
    w = torch.softmax(state["a"], 0)
    assert int(w.argmax()) == 1 and w[1] > w_before[1]
    assert w[0] < w_before[0]  # the lowest-loss language loses weight
    assert torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert bool((w > 0).all())


def test_cats_dual_rises_while_the_curvature_exceeds_eps_and_stays_nonnegative():
    g = torch.Generator().manual_seed(1)
    losses = torch.tensor([1.0, 1.5, 0.5, 2.0], dtype=torch.float64)
    grads = torch.randn(4, 30, generator=g, dtype=torch.float64)
    grads[3] *= 10.0  # the highest-loss language also has the largest gradient
    state = cats_state(4)
    hp = {"eta_a": 0.3, "eta_lam": 0.5, "eps": 0.2}
    lams, cs = [], []
    for _ in range(60):
        cats.meta_update(state, hp, losses, grads)
        _, w, lam, c = state["history"][-1]
        lams.append(lam)
        cs.append(c)
        assert lam >= 0.0
        assert math.isclose(sum(w), 1.0, rel_tol=1e-12) and min(w) > 0.0
    for k in range(1, len(lams)):
        if cs[k] > hp["eps"]:
            assert lams[k] > lams[k - 1] or lams[k - 1] == 0.0 and lams[k] > 0.0
        else:
            assert lams[k] <= lams[k - 1]
    # the constraint pulls weight off the large-gradient language once the dual is active
    assert max(lams) > 0.0


def test_cats_weighted_loss_scales_each_languages_tokens_by_n_times_its_weight(smoke):
    streams = smoke.train_streams(8, torch.Generator().manual_seed(0))
    model = smoke.init_model(torch.Generator().manual_seed(0)).eval()  # no dropout
    batch = smoke.mixture_batch(streams, {"aa": 0.5, "bb": 0.5}, 8, torch.Generator())
    uniform = {"a": torch.zeros(4, dtype=torch.float64)}
    assert torch.isclose(
        cats.weighted_loss(smoke, model, batch, uniform, {}), smoke.loss(model, batch)
    )
    state = {"a": torch.tensor([1.0, 0.0, 0.0, -1.0], dtype=torch.float64)}
    w = torch.softmax(state["a"], 0)
    rows, tokens = smoke.token_losses(model, batch)
    expected = (4 * w.float()[batch.lang] * rows).sum() / tokens.sum()
    assert torch.isclose(cats.weighted_loss(smoke, model, batch, state, {}), expected, rtol=1e-5)


def test_cats_meta_step_computes_per_language_gradients_on_the_last_decoder_layer(smoke):
    model = smoke.init_model(torch.Generator().manual_seed(0))
    streams = smoke.train_streams(8, torch.Generator().manual_seed(0))
    state = {"meta_start": 0, "meta_every": 5}
    sel = cats.data_selection(smoke, streams, {**state, "probs": {"aa": 1.0}}, 0, torch.Generator())
    assert {"train", "meta"} <= set(sel) and len(sel["meta"]) == len(smoke.languages)
    for k, b in enumerate(sel["meta"]):
        assert set(b.lang.tolist()) == {k}
    plain = cats.data_selection(
        smoke, streams, {**state, "probs": {"aa": 1.0}}, 3, torch.Generator()
    )
    assert "meta" not in plain
    losses, grads = cats.language_gradients(smoke, model, sel["meta"])
    n_params = sum(p.numel() for p in model.decoder[-1].parameters())
    assert losses.shape == (len(smoke.languages),) and grads.shape == (4, n_params)
    assert all(p.grad is None for p in model.parameters())  # autograd.grad: no side effects


# -- pretrain-then-mix ----------------------------------------------------------------------------


def test_pretrain_then_mix_draws_no_low_resource_example_before_the_switch(smoke):
    hp = types.MappingProxyType(
        {
            "lr": 1e-3,
            "one_minus_beta1": 0.1,
            "weight_decay": 0.0,
            "horizon_factor": 1.0,
            "warmup_frac": 0.05,
            "switch_frac": 0.5,
            "temperature": 2.0,
            "rewarm": True,
        }
    )
    model = smoke.init_model(torch.Generator().manual_seed(0))
    state = ptm.init(smoke, model, hp, torch.Generator())
    switch = state["switch"]
    assert switch == int(0.5 * smoke.spec.step_hint)
    streams = smoke.train_streams(smoke.spec.batch_size_hint, torch.Generator().manual_seed(0))
    rng = torch.Generator().manual_seed(3)
    before = [ptm.data_selection(smoke, streams, state, s, rng) for s in range(switch)]
    counts = language_counts(smoke, before)
    assert all(counts[c] == 0 for c in smoke.low_resource)
    high = {c: smoke.train_sizes[c] for c in smoke.high_resource}
    assert_frequencies({c: counts[c] for c in high}, temperature_probs(high, 2.0))
    after = [ptm.data_selection(smoke, streams, state, switch + s, rng) for s in range(400)]
    assert_frequencies(language_counts(smoke, after), temperature_probs(smoke.train_sizes, 2.0))
    # re-warm: the learning rate drops at the switch and climbs back over the warmup
    sched = state["sched"].lr_lambdas[0]
    assert sched(switch) < sched(switch - 1) and sched(switch + 20) > sched(switch)


def test_cats_weights_keep_their_floor():
    state = {"a": torch.tensor([10.0, -10.0, 0.0], dtype=torch.float64), "floor": 0.5}
    w = cats.weights(state)
    assert torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert float(w.min()) >= 0.5 / 3 - 1e-12
