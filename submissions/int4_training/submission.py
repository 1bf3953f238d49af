"""INT4 training (Xi, Chen, Zhu, NeurIPS 2023, arXiv 2306.11987) on top of each workload's
baseline recipe: every ``nn.Linear`` of the model runs forward and both backward products
through the paper's quantizers (``kernels/linear.py``: Hadamard quantizer forward, bit splitting
and leverage-score sampling backward, LSQ step sizes), INT4 values carried in INT8 products.

Everything else is the baseline's own code at its own search-space defaults:
``temperature_sampling`` on ``translation`` (temperature sampling, label smoothing, AdamW
beta2 0.98, warmup + cosine, clip 1) and ``lm_baseline`` on ``factuality``. The one hyperparameter
here, ``lr_factor``, multiplies the baseline's default learning rate (1 at the default, so a
self-tuning run differs from the baseline only in the arithmetic). The learned step sizes join
the baseline's AdamW as a second parameter group, without weight decay, on the same schedule.

The linear layers are swapped only inside ``update`` (instance ``forward`` attributes, removed on
exit): the model's class, parameters and state dict stay the workload's, so checkpoints and the
evaluator, which scores the float32 reference network with these weights, see a plain model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from harness.api import ContractError
from harness.search_space import SearchSpace
from submissions.lm_baseline import submission as lm_baseline
from submissions.temperature_sampling import submission as temperature_sampling

from .kernels import Int4Config, int4_linear
from .kernels.quant import best_group, block_hadamard, lsq_init_scale

BASES = {"translation": temperature_sampling, "factuality": lm_baseline}
CONFIG = Int4Config(lss_input=True, lss_weight=True)


@dataclass
class LayerQuant:
    """One linear layer's quantizer state: LSQ step sizes (learned), Hadamard block size
    (searched at the first call)."""

    s_x: torch.Tensor = field(default_factory=lambda: torch.tensor(1.0, requires_grad=True))
    s_w: torch.Tensor = field(default_factory=lambda: torch.tensor(1.0, requires_grad=True))
    group: int = 0  # 0: not yet searched


def _base(workload):
    name = workload.spec.name
    if name not in BASES:
        raise ContractError(f"int4_training runs on {sorted(BASES)}; got workload {name!r}")
    return BASES[name]


def base_hparams(workload, hparams) -> dict:
    """The baseline's search-space defaults, with lr scaled by ``lr_factor``."""
    base = _base(workload)
    hp = SearchSpace.load(Path(base.__file__).parent / "search_space.json").defaults()
    factor = float(hparams.get("lr_factor", 1.0))
    if not factor > 0:
        raise ContractError(f"lr_factor must be positive; got {factor}")
    hp["lr"] = float(hp["lr"]) * factor
    return hp


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def init(workload, model, hparams, rng):
    hp = base_hparams(workload, hparams)
    state = _base(workload).init(workload, model, hp, rng)
    device = next(model.parameters()).device
    layers = {
        name: LayerQuant(
            torch.tensor(1.0, device=device, requires_grad=True),
            torch.tensor(1.0, device=device, requires_grad=True),
        )
        for name in linear_layers(model)
    }
    if not layers:
        raise ContractError("int4_training found no nn.Linear in the model")
    opt = state["opt"]
    scales = [t for lq in layers.values() for t in (lq.s_x, lq.s_w)]
    opt.add_param_group(
        {"params": scales, "weight_decay": 0.0, "lr": opt.param_groups[0]["initial_lr"]}
    )
    # the baseline's schedule, rebuilt so that it drives both groups
    state["sched"] = torch.optim.lr_scheduler.LambdaLR(opt, state["sched"].lr_lambdas[0])
    # quantizer noise from its own stream, seeded per step: the data draws stay the baseline's
    seed = int.from_bytes(hashlib.sha256(f"int4:{rng.initial_seed()}".encode()).digest()[:7])
    state.update(int4=layers, hp=hp, noise_seed=seed)
    return state


def _forward(mod: nn.Linear, lq: LayerQuant, gen: torch.Generator, x: torch.Tensor):
    if lq.group == 0:  # first call: the authors' block-size search and LSQ initialization
        with torch.no_grad():
            x2 = x.detach().reshape(-1, x.shape[-1])
            lq.group = best_group(x2, mod.weight.detach())
            lq.s_x.copy_(lsq_init_scale(block_hadamard(x2, lq.group)))
            lq.s_w.copy_(lsq_init_scale(block_hadamard(mod.weight.detach(), lq.group)))
    else:
        with torch.no_grad():  # the authors keep the step sizes positive: s <- |s|
            lq.s_x.abs_()
            lq.s_w.abs_()
    return int4_linear(x, mod.weight, mod.bias, lq.s_x, lq.s_w, lq.group, gen, CONFIG)


@contextlib.contextmanager
def int4_layers(model: nn.Module, layers: dict[str, LayerQuant], gen: torch.Generator):
    """Within the block, every nn.Linear of ``model`` runs ``int4_linear``."""
    mods = linear_layers(model)
    if set(mods) != set(layers):
        raise ContractError("the model's linear layers changed since init")
    try:
        for name, mod in mods.items():
            mod.forward = functools.partial(_forward, mod, layers[name], gen)
        yield
    finally:
        for mod in mods.values():
            mod.__dict__.pop("forward", None)


def data_selection(workload, streams, state, step, rng):
    select = getattr(_base(workload), "data_selection", None)
    return select(workload, streams, state, step, rng) if select else next(streams["train"])


def update(workload, model, state, batch, hparams, step, rng):
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed((state["noise_seed"] + step) % 2**63)
    with int4_layers(model, state["int4"], gen):
        return _base(workload).update(workload, model, state, batch, state["hp"], step, rng)
