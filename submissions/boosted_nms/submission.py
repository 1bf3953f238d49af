"""Boosted neural min-sum (Kwak, Yun, Kim, No; NeurIPS 2023, arXiv 2310.07194), adapted to the
workload's fixed L iterations (docs/methods.md#boosted_nms).

1. Base decoder, iterations 1..B (B = L - post_iters): SCN and channel weights, UCN tied to SCN
   (sharing [3, 0, 3]), BCE on iteration B, fresh frames over an Eb/N0 range.
2. Uncorrected (UC) words: freeze the base, decode frames at one Eb/N0 and keep those whose hard
   decision is wrong at every iteration 1..B (``uncor_flag``), with the base decoder's messages
   after B iterations, so the post decoder continues from them without re-running the base.
3. Post decoder, iterations B+1..L: SCN, UCN and channel weights, trained on UC words only with
   the FER surrogate (or BCE) on iteration L, in blocks of ``block_iters`` iterations; each block
   also retrains the ``retrain_iters`` before it (the block-wise schedule, Delta1/Delta2).
All of it happens inside ``update``, so collection time is on the clock.
"""

from __future__ import annotations

import torch

from workloads.ldpc.decoder import DecoderState

from .kernels import KERNELS

COLLECT_CHUNK = 512  # frames decoded per collection round
# Check-node op: "auto" (Triton on a GPU, the workload's op on a CPU), "reference", or a kernel
# name from kernels/. Not a hyperparameter: it changes speed, never the function computed.
KERNEL = "auto"


def fer_surrogate(app: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Mean frame-error indicator 1/2 (1 - sgn(min_v s_v o_v)), s_v = 1 - 2 c_v; the backward
    pass uses tanh(x / 2) for sgn(x) (straight through), so only each frame's worst bit learns."""
    x = ((1.0 - 2.0 * bits) * app).min(dim=1).values
    soft = torch.tanh(x / 2)
    return (0.5 * (1.0 - (soft + (torch.sign(x) - soft).detach()))).mean()


def pick_kernel(choice: str, device: torch.device):
    """ "auto": the fused Triton kernel on a GPU; on a CPU the workload's own op, since the
    compiled kernel measured only 1.1-1.3x on whole decodes there (benchmarks/results)."""
    if choice == "reference" or (choice == "auto" and device.type != "cuda"):
        return None
    name = "fused_min_sum_triton" if choice == "auto" else choice
    kernel = next(k for k in KERNELS if k.name == name)
    return kernel.fn if kernel.available(device) else None


def init(workload, model, hparams, rng):
    if (fn := pick_kernel(KERNEL, workload.device)) is not None:
        model.cn_update = fn  # parity-checked by the runner before the run starts
    L = model.iterations
    post = max(1, min(int(hparams["post_iters"]), L // 2))
    model.w_ucn.requires_grad_(False)
    state = {
        "hp": dict(hparams),
        "B": L - post,
        "phase": "base",
        "loss": None,
        "opt": torch.optim.Adam([model.w_cn, model.w_ch], lr=hparams["lr"]),
    }
    return state


def data_selection(workload, streams, state, step, rng):
    hp = state["hp"]
    if state["phase"] != "base":
        return None  # the post decoder trains on its UC pool
    lo = workload.spec.ebn0_db + hp["base_ebn0_offset_db"]
    return workload.sample(workload.spec.batch_size_hint, (lo, lo + 1.0), rng, zero_codeword=True)


def update(workload, model, state, batch, hparams, step, rng):
    if state["phase"] == "base":
        outs, _ = model(batch.llr, until=state["B"])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(-outs[-1], batch.bits)
        _step(state["opt"], loss, model)
        with torch.no_grad():
            model.w_ucn.copy_(model.w_cn)  # tied: no UCN in the base decoder
        if step + 1 >= hparams["base_steps"]:
            state["pool"] = collect_uc_words(workload, model, state, rng)
            _start_block(model, state, start=state["B"])
    else:
        loss = _post_step(workload, model, state, rng)
    state["loss"] = loss.detach()
    return state


def _step(opt, loss, model) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    model.project_()


@torch.no_grad()
def collect_uc_words(workload, model, state, rng) -> dict:
    """Frames the frozen base decoder gets wrong at every iteration 1..B, with its messages."""
    hp, B = state["hp"], state["B"]
    ebn0 = workload.spec.ebn0_db + hp["collect_ebn0_offset_db"]
    kept, frames = [], 0
    need = int(hp["uc_pool"])
    while sum(k[0].shape[0] for k in kept) < need and frames < 200 * need:
        batch = workload.sample(COLLECT_CHUNK, ebn0, rng, zero_codeword=True)
        outs, st = model(batch.llr, until=B)
        wrong = torch.stack([((o < 0).float() != batch.bits).any(dim=1) for o in outs]).all(dim=0)
        if wrong.any():
            kept.append(
                (batch.llr[wrong], batch.bits[wrong], st.c2v[wrong], st.vsum[wrong], st.app[wrong])
            )
        frames += COLLECT_CHUNK
    if not kept:
        raise RuntimeError(
            f"no uncorrected words in {frames} frames at {ebn0} dB: lower the collection Eb/N0"
        )
    llr, bits, c2v, vsum, app = (torch.cat(t) for t in zip(*kept, strict=True))
    return {"llr": llr, "bits": bits, "c2v": c2v, "vsum": vsum, "app": app, "frames": frames}


def _start_block(model, state, start: int) -> None:
    """Train iterations (start, start + block_iters] and retrain the retrain_iters before."""
    hp, L = state["hp"], model.iterations
    lo = max(start - int(hp["retrain_iters"]), state["B"])
    hi = min(start + int(hp["block_iters"]), L)
    state.update(phase="post", block=(lo, hi), block_step=0, trainable=(lo, hi))
    for w in (model.w_cn, model.w_ucn, model.w_ch):
        w.requires_grad_(True)
    state["opt"] = torch.optim.Adam(
        [model.w_cn, model.w_ucn, model.w_ch], lr=state["hp"]["lr_post"]
    )


def _post_step(workload, model, state, rng) -> torch.Tensor:
    pool, hp, B = state["pool"], state["hp"], state["B"]
    lo, hi = state["block"]
    idx = torch.randint(
        0,
        pool["llr"].shape[0],
        (workload.spec.batch_size_hint,),
        generator=rng,
        device=pool["llr"].device,
    )
    start = DecoderState(c2v=pool["c2v"][idx], vsum=pool["vsum"][idx], app=pool["app"][idx], t=B)
    frozen = {t for t in range(model.iterations) if not lo <= t < hi}
    before = {n: getattr(model, n).detach().clone() for n in ("w_cn", "w_ucn", "w_ch")}
    outs, _ = model(pool["llr"][idx], state=start, until=hi)
    bits = pool["bits"][idx]
    loss = (
        fer_surrogate(outs[-1], bits)
        if hp["post_loss"] == "fer"
        else torch.nn.functional.binary_cross_entropy_with_logits(-outs[-1], bits)
    )
    _step(state["opt"], loss, model)
    with torch.no_grad():  # iterations outside the block stay exactly as they were
        for n, old in before.items():
            w = getattr(model, n)
            w[list(frozen)] = old[list(frozen)]
    state["block_step"] += 1
    if state["block_step"] >= hp["block_steps"] and hi < model.iterations:
        _start_block(model, state, start=hi)
    return loss
