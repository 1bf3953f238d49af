"""Spatial learning through time, SLTT and SLTT-K (Meng et al., ICCV 2023; docs/methods.md#sltt).

Like OTTT, every temporal route is cut and the per-step loss is backpropagated at each step,
but the weight gradient uses the actual input z[t] through ordinary autograd (no trace):
grad W += delta[t] z[t]^T. One optimizer step per minibatch. SLTT-K backpropagates only K of
the T steps, drawn without replacement each iteration (``torch.randperm(T)[:K]``); the other
steps run without a graph, and the loss at the K steps is still divided by T, as in the
authors' ``train_SLTTK.py``. ``k_fraction`` = 1 is plain SLTT.
"""

from __future__ import annotations

import torch

from submissions._common import adamw_warmup_cosine
from workloads.snn.model import plain_synapse
from workloads.snn.online import online_backward


def init(workload, model, hparams, rng):
    opt, sched = adamw_warmup_cosine(model.parameters(), hparams, workload.spec.step_hint)
    return {"opt": opt, "sched": sched, "loss": None}


def sampled_steps(T: int, k_fraction: float, rng) -> set[int] | None:
    """SLTT-K's K = max(1, round(k_fraction T)) steps, or None (all T) when K = T."""
    k = max(1, round(k_fraction * T))
    if k >= T:
        return None
    return set(torch.randperm(T, generator=rng, device=rng.device)[:k].tolist())


def update(workload, model, state, batch, hparams, step, rng):
    state["opt"].zero_grad(set_to_none=True)
    steps = sampled_steps(model.time_steps, hparams["k_fraction"], rng)
    state["loss"] = online_backward(
        model, batch.x, batch.y, plain_synapse, hparams["mse_weight"], steps
    )
    state["opt"].step()
    state["sched"].step()
    return state
