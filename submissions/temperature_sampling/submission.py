"""Temperature sampling: every example's language is drawn i.i.d. from p_i ~ D_i^(1/T).

Arivazhagan et al. 2019 ("Massively multilingual neural machine translation in the wild", arXiv
1907.05019; docs/methods.md#temperature_sampling): T = 1 samples in proportion to the data, T = inf
uniformly; T is tuned. The model is trained with the workload's label-smoothed loss, AdamW with beta
= (0.9, 0.98) (Vaswani et al.; fairseq's translation recipe), linear warmup then cosine decay over
``horizon_factor x step_hint`` steps, gradient-norm clip 1.
"""

from __future__ import annotations

from harness.schedules import optimizer_step
from submissions._common import adamw_warmup_cosine
from workloads.translation.data import temperature_probs

GRAD_CLIP = 1.0


def init(workload, model, hparams, rng):
    opt, sched = adamw_warmup_cosine(
        model.parameters(), hparams, workload.spec.step_hint, beta2=0.98
    )
    probs = temperature_probs(workload.train_sizes, float(hparams["temperature"]))
    return {"opt": opt, "sched": sched, "probs": probs, "loss": None}


def data_selection(workload, streams, state, step, rng):
    return workload.mixture_batch(streams, state["probs"], workload.spec.batch_size_hint, rng)


def update(workload, model, state, batch, hparams, step, rng):
    per_sentence, tokens = workload.token_losses(model, batch, hparams["label_smoothing"])
    loss = per_sentence.sum() / tokens.sum().clamp_min(1)
    return optimizer_step(model, state, loss, GRAD_CLIP)
