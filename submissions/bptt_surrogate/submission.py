"""Backpropagation through time with the workload's sigmoid surrogate
(docs/methods.md#bptt_surrogate).

Autograd through the whole unrolled network: the membrane u[t-1] -> u[t], the recurrent
spikes R s[t-1], the leaky readout and the soft reset; loss = the workload's cross-entropy of
the time-averaged readout. Memory grows linearly in T. AdamW with linear warmup and cosine decay.

Feedforward networks (``smoke``'s MLP, ``full``'s VGG-11) run layer by layer over all T, and the
neuron loop there is a fused multi-step kernel from ``kernels/`` (parity-checked by the runner
against ``snn.lif_multistep``): Triton on a GPU, the fused torch path on a CPU.
"""

from __future__ import annotations

from harness.schedules import optimizer_step
from submissions._common import adamw_warmup_cosine

from .kernels import KERNELS

# "auto": Triton on a GPU, the fused torch path on a CPU; "reference" or a kernel name.
# Not a hyperparameter: it changes speed and memory, never the function computed.
KERNEL = "auto"


def pick_kernel(choice: str, device):
    if choice == "reference":
        return None
    if choice == "auto":
        choice = "fused_lif_triton" if device.type == "cuda" else "fused_lif_torch"
    kernel = next((k for k in KERNELS if k.name == choice), None)
    return kernel.fn if kernel is not None and kernel.available(device) else None


def init(workload, model, hparams, rng):
    if (fn := pick_kernel(KERNEL, workload.device)) is not None:
        model.lif = fn
    opt, sched = adamw_warmup_cosine(model.parameters(), hparams, workload.spec.step_hint)
    return {"opt": opt, "sched": sched, "loss": None}


def update(workload, model, state, batch, hparams, step, rng):
    loss = workload.loss(model, batch)
    return optimizer_step(model, state, loss)
