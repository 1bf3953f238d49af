"""Neural min-sum trained end to end (Nachmani et al. 2016/2018; Lugosch & Gross 2017).

Adam on the per-iteration check-node and channel weights of the workload's decoder, UCN weights
tied to the check-node weights (sharing [3, 0, 3] of Kwak et al. 2023), BCE on the last
iteration (or Nachmani's multi-loss with eta > 0), random codewords over a range of Eb/N0 drawn
per frame. Weights are projected to [0, 2] after every step (docs/methods.md#nms_baseline).
"""

from __future__ import annotations

import torch


def multi_loss(outs: list[torch.Tensor], bits: torch.Tensor, eta: float) -> torch.Tensor:
    """sum_t eta^(L-t) BCE(o^t) / sum_t eta^(L-t); eta = 0 is the last iteration only."""
    L = len(outs)
    if eta == 0.0:
        return torch.nn.functional.binary_cross_entropy_with_logits(-outs[-1], bits)
    w = torch.tensor([eta ** (L - 1 - t) for t in range(L)])
    per_t = torch.stack(
        [torch.nn.functional.binary_cross_entropy_with_logits(-o, bits) for o in outs]
    )
    return (w.to(per_t) * per_t).sum() / w.sum()


def init(workload, model, hparams, rng):
    model.w_ucn.requires_grad_(False)  # tied to w_cn: no UCN in the baseline
    params = [model.w_cn, model.w_ch]
    opt = torch.optim.Adam(
        params, lr=hparams["lr"], betas=(1.0 - hparams["one_minus_beta1"], 0.999)
    )
    return {"opt": opt, "hp": dict(hparams), "loss": None}


def data_selection(workload, streams, state, step, rng):
    hp = state["hp"]
    return workload.sample(
        workload.spec.batch_size_hint,
        (hp["ebn0_low_db"], hp["ebn0_low_db"] + hp["ebn0_span_db"]),
        rng,
    )


def update(workload, model, state, batch, hparams, step, rng):
    outs, _ = model(batch.llr)
    loss = multi_loss(outs, batch.bits, hparams["eta"])
    state["opt"].zero_grad(set_to_none=True)
    loss.backward()
    state["opt"].step()
    model.project_()
    with torch.no_grad():
        model.w_ucn.copy_(model.w_cn)
    state["loss"] = loss.detach()
    return state
