"""CATS, curvature-aware task scaling (Li & Gong, NeurIPS 2021, arXiv 2104.07639), as the
consolidated rule of docs/methods.md#cats (the paper's Algorithm 1 could not be retrieved; see
README.md for what is ours).

Per-language weights w = softmax(a) scale the per-language losses: the model is trained on the
mean token loss with language n's tokens scaled by N w_n (1 at uniform w). Every ``meta_every``
steps from ``meta_start`` on, one batch per language gives L_n and its gradient g_n restricted
to the last decoder layer; with the curvature proxy c(w) = ||sum_n w_n g_n||^2 / ||mean_n g_n||^2
(relative to uniform weights at the same step, so the budget eps is scale-free and stationary):

    a      <- a + eta_a * grad_a [ sum_n w_n L_n - lam * c(w) ]   (ascent on the loss:
                                  weight moves to the languages with the highest loss,
                                  held back where the combined gradient is large)
    lam    <- max(0, lam + eta_lam * (c(w) - eps))                  (dual ascent)

Training batches are drawn with temperature sampling at ``temperature``. The weights keep a
floor: w = (1 - floor) softmax(a) + floor / N, so no language is switched off.
"""

from __future__ import annotations

import torch

from harness.schedules import optimizer_step
from submissions._common import adamw_warmup_cosine
from workloads.translation.data import temperature_probs

META_BATCH = {"smoke": 16, "default": 32, "full": 64}
GRAD_CLIP = 1.0


def init(workload, model, hparams, rng):
    opt, sched = adamw_warmup_cosine(
        model.parameters(), hparams, workload.spec.step_hint, beta2=0.98
    )
    n = len(workload.languages)
    return {
        "opt": opt,
        "sched": sched,
        "probs": temperature_probs(workload.train_sizes, float(hparams["temperature"])),
        "a": torch.zeros(n, dtype=torch.float64),
        "lam": 0.0,
        "floor": float(hparams["floor"]),
        "meta_start": int(hparams["meta_start"] * workload.spec.step_hint),
        "meta_every": int(hparams["meta_every"]),
        "history": [],  # (step, w, lam, c) at every meta step, for analysis
        "loss": None,
    }


def is_meta_step(state, step: int) -> bool:
    return step >= state["meta_start"] and (step - state["meta_start"]) % state["meta_every"] == 0


def data_selection(workload, streams, state, step, rng):
    batch = workload.mixture_batch(streams, state["probs"], workload.spec.batch_size_hint, rng)
    if not is_meta_step(state, step):
        return {"train": batch}
    size = META_BATCH.get(workload.spec.variant, 32)
    meta = [workload.mixture_batch(streams, {c: 1.0}, size, rng) for c in workload.languages]
    return {"train": batch, "meta": meta}


def shared_params(model) -> list[torch.nn.Parameter]:
    """Where the per-language gradients are taken: the last decoder layer."""
    return [p for p in model.decoder[-1].parameters() if p.requires_grad]


def language_gradients(workload, model, meta_batches) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, G): per-language mean token loss (N,) and flattened gradients (N, P) on ``params``."""
    params = shared_params(model)
    losses, grads = [], []
    for batch in meta_batches:
        loss = workload.loss(model, batch)
        g = torch.autograd.grad(loss, params)
        losses.append(loss.detach())
        grads.append(torch.cat([x.reshape(-1) for x in g]))
    return torch.stack(losses).double(), torch.stack(grads).double()


def weights(state, a: torch.Tensor | None = None) -> torch.Tensor:
    """w = (1 - floor) softmax(a) + floor / N."""
    a = state["a"] if a is None else a
    floor = state.get("floor", 0.0)
    return (1.0 - floor) * torch.softmax(a, 0) + floor / len(a)


def meta_update(state, hparams, losses: torch.Tensor, grads: torch.Tensor) -> None:
    """One primal step on the logits ``a`` and one projected dual step on ``lam``."""
    gram = (grads @ grads.t()).cpu()  # ||sum_n w_n g_n||^2 = w^T (G G^T) w
    u = torch.full((len(losses),), 1.0 / len(losses), dtype=torch.float64)
    c_uniform = max(float(u @ gram @ u), 1e-30)
    a = state["a"].clone().requires_grad_(True)
    w = weights(state, a)
    c = (w @ gram @ w) / c_uniform
    objective = (w * losses.cpu()).sum() - state["lam"] * c
    (grad_a,) = torch.autograd.grad(objective, a)
    state["a"] = (state["a"] + hparams["eta_a"] * grad_a).detach()
    c = float(c.detach())
    state["lam"] = max(0.0, state["lam"] + hparams["eta_lam"] * (c - hparams["eps"]))
    state["history"].append((len(state["history"]), w.detach().tolist(), state["lam"], c))


def weighted_loss(workload, model, batch, state, hparams) -> torch.Tensor:
    """Mean token loss with language n's tokens scaled by N w_n (all scales 1 at uniform w, so
    CATS starts as the plain loss of its sampling mixture, as implementation A's alpha = 1)."""
    per_sentence, tokens = workload.token_losses(model, batch)
    scale = len(workload.languages) * weights(state)
    scale = scale.to(per_sentence)[batch.lang]
    return (scale * per_sentence).sum() / tokens.sum().clamp_min(1)


def update(workload, model, state, batch, hparams, step, rng):
    if "meta" in batch:
        losses, grads = language_gradients(workload, model, batch["meta"])
        meta_update(state, hparams, losses, grads)
    loss = weighted_loss(workload, model, batch["train"], state, hparams)
    return optimizer_step(model, state, loss, GRAD_CLIP)
