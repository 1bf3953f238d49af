"""Online training through time, OTTT_A (Xiao et al., NeurIPS 2022; docs/methods.md#ottt).

No backpropagation through time. At each step t the network runs with every temporal route cut
(membrane, recurrent spikes, readout state detached), the per-step loss
[(1 - g) CE(o[t], y) + g MSE(o[t], onehot y)] / T is backpropagated at once, and each synapse's
weight gradient uses its presynaptic trace a[t] = lam a[t-1] + z[t] instead of z[t]
(``workloads.snn.online.PresynapticTraces``): grad W += delta[t] a[t]^T. Gradients accumulate
over t; one optimizer step per minibatch (OTTT_A). Memory is constant in T.

Recurrent weights get the trace of s[t-1] and the leaky readout the trace with the readout's
decay: our construction for layers the paper does not have (docs/methods.md#ottt, tagged [U]).
"""

from __future__ import annotations

from submissions._common import adamw_warmup_cosine
from workloads.snn.online import PresynapticTraces, online_backward


def init(workload, model, hparams, rng):
    opt, sched = adamw_warmup_cosine(model.parameters(), hparams, workload.spec.step_hint)
    return {"opt": opt, "sched": sched, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    state["opt"].zero_grad(set_to_none=True)
    traces = PresynapticTraces(readout_lam=model.readout_lam)
    state["loss"] = online_backward(model, batch.x, batch.y, traces, hparams["mse_weight"])
    state["opt"].step()
    state["sched"].step()
    return state
