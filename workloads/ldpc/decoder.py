"""The reference flooding neural min-sum decoder (docs/methods.md#neural-min-sum-decoder).

Layout: edges are stored check-major and padded, so a check-node update is a reduction over the
last axis of a (B, m, dc_max) tensor. Padding slots hold ``PAD`` (a positive magnitude larger
than any clipped message), so they never win a minimum and never flip a sign. Variable-node sums
are gathers (never scatters) through ``vn_slots``, which point into the flattened (m * dc_max)
slots plus one trailing zero slot.

Convention: LLR l = log P(c=0)/P(c=1), BPSK x = 1 - 2c, messages clipped to +-20.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LLR_CLIP = 20.0
PAD = 1.0e4  # magnitude of padded v->c slots: larger than any clipped message
WEIGHT_RANGE = (0.0, 2.0)


def check_node_update(v2c: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted min-sum check-node update: the op a submission kernel may replace.

    v2c:    (B, m, dc) variable-to-check messages; padding slots hold +PAD.
    weight: broadcastable to (B, m, 1); the per-check weight (SCN or UCN) of this iteration.
    returns (B, m, dc) check-to-variable messages
            clip_20(max(0, w * min_{v' != v} |v2c|)) * prod_{v' != v} sgn(v2c), sgn(0) = +1.
    Values at padding slots are unspecified; callers never read them.
    """
    mag = v2c.abs()
    neg = v2c < 0
    parity = neg.sum(dim=-1, keepdim=True) % 2  # (B, m, 1): odd number of negative inputs
    sign_ext = 1.0 - 2.0 * (parity.bool() ^ neg).to(v2c.dtype)  # sign of the others' product
    min1, idx1 = mag.min(dim=-1, keepdim=True)
    min2 = mag.scatter(-1, idx1, float("inf")).min(dim=-1, keepdim=True).values
    is_min = torch.arange(mag.shape[-1], device=mag.device) == idx1
    ext = torch.where(is_min, min2, min1)  # extrinsic minimum, (B, m, dc)
    return sign_ext * (weight * ext).clamp(0.0, LLR_CLIP)


def sum_in_slot_order(gathered: torch.Tensor) -> torch.Tensor:
    """(B, n, dv) -> (B, n): ((x_0 + x_1) + x_2) + ..., left to right in ascending check order.

    ``Tensor.sum(-1)`` would add in an order that depends on dv and the CPU's vector width (at
    dv = 6 torch 2.13 adds four interleaved partial sums); this fixed order makes the float32
    result reproducible, and lets the numba evaluation decoder (``fast_decoder``) match the
    reference bit for bit. Padding slots hold 0 and come last, so they change nothing.
    """
    out = gathered[..., 0]
    for j in range(1, gathered.shape[-1]):
        out = out + gathered[..., j]
    return out


@dataclass(frozen=True)
class TannerGraph:
    """Index tensors of a parity-check matrix in the padded check-major layout."""

    n: int
    m: int
    dc_max: int
    cn_vars: torch.Tensor  # (m, dc_max) long: variable node of each slot; padding -> n
    cn_mask: torch.Tensor  # (m, dc_max) bool: real slot
    vn_slots: torch.Tensor  # (n, dv_max) long: flat slots of each variable; padding -> m*dc_max
    slot_vars: torch.Tensor  # (m*dc_max,) long: variable node of each flat slot; padding -> n

    @property
    def edges(self) -> int:
        return int(self.cn_mask.sum())

    @classmethod
    def from_checks(cls, n: int, checks: list[list[int]]) -> TannerGraph:
        m, dc_max = len(checks), max(len(c) for c in checks)
        cn_vars = torch.full((m, dc_max), n, dtype=torch.long)
        for c, vs in enumerate(checks):
            cn_vars[c, : len(vs)] = torch.tensor(sorted(vs), dtype=torch.long)
        cn_mask = cn_vars < n
        slot_vars = cn_vars.reshape(-1)
        per_var: list[list[int]] = [[] for _ in range(n)]
        for s, v in enumerate(slot_vars.tolist()):
            if v < n:
                per_var[v].append(s)
        dv_max = max(len(s) for s in per_var)
        vn_slots = torch.full((n, dv_max), m * dc_max, dtype=torch.long)
        for v, ss in enumerate(per_var):
            vn_slots[v, : len(ss)] = torch.tensor(ss, dtype=torch.long)
        return cls(n, m, dc_max, cn_vars, cn_mask, vn_slots, slot_vars)

    def to(self, device: torch.device) -> TannerGraph:
        return TannerGraph(
            self.n,
            self.m,
            self.dc_max,
            *(t.to(device) for t in (self.cn_vars, self.cn_mask, self.vn_slots, self.slot_vars)),
        )

    def syndrome(self, hard: torch.Tensor) -> torch.Tensor:
        """(B, n) 0/1 hard decisions -> (B, m) bool, True where the check is unsatisfied."""
        padded = torch.nn.functional.pad(hard, (0, 1))  # column n is the padding variable (0)
        return (padded[:, self.cn_vars].sum(dim=-1) % 2).bool()


@dataclass
class DecoderState:
    """Messages carried between iterations, so a decoder can be run in segments."""

    c2v: torch.Tensor  # (B, m*dc_max + 1) flat check-to-variable messages, last slot 0
    vsum: torch.Tensor  # (B, n) sum of incoming c->v messages per variable
    app: torch.Tensor  # (B, n) a-posteriori LLR of the last iteration (o^{t-1})
    t: int  # iterations done


class NeuralMinSum(nn.Module):
    """Flooding neural min-sum with per-iteration check-node (SCN), unsatisfied-check-node
    (UCN) and channel weights (docs/methods.md#neural-min-sum-decoder; Kwak et al. 2023, sharing [3,
    3, 3]).

    A check c is unsatisfied at iteration t when the hard decision of o^{t-1} (for t = 1, of
    w_ch[0] * llr) has odd parity on c; its outgoing messages then use w_ucn[t] instead of
    w_cn[t]. With w_ucn == w_cn the decoder is plain neural min-sum; with all weights 1 it is
    min-sum. Weights live in [0, 2]: call ``project_()`` after every optimizer step.
    """

    def __init__(self, graph: TannerGraph, iterations: int):
        super().__init__()
        self.graph = graph
        self.iterations = iterations
        self.w_cn = nn.Parameter(torch.ones(iterations))
        self.w_ucn = nn.Parameter(torch.ones(iterations))
        self.w_ch = nn.Parameter(torch.ones(iterations))
        self.cn_update = check_node_update  # a submission may swap in a parity-checked kernel

    @torch.no_grad()
    def project_(self) -> None:
        for w in (self.w_cn, self.w_ucn, self.w_ch):
            w.clamp_(*WEIGHT_RANGE)

    def init_state(self, llr: torch.Tensor) -> DecoderState:
        g = self.graph
        c2v = llr.new_zeros(llr.shape[0], g.m * g.dc_max + 1)
        return DecoderState(c2v=c2v, vsum=torch.zeros_like(llr), app=self.w_ch[0] * llr, t=0)

    def forward(
        self, llr: torch.Tensor, state: DecoderState | None = None, until: int | None = None
    ) -> tuple[list[torch.Tensor], DecoderState]:
        """Run iterations state.t+1 .. until (default: all). Returns the APP LLR o^t of each
        iteration run, (B, n) each, and the state to continue from."""
        g = self.graph
        state = self.init_state(llr) if state is None else state
        until = self.iterations if until is None else until
        c2v, vsum, app = state.c2v, state.vsum, state.app
        B = llr.shape[0]
        pad_mask = ~g.cn_mask
        outs = []
        for t in range(state.t, until):
            ucn = g.syndrome((app < 0).to(llr.dtype))  # (B, m), from o^{t-1}
            weight = torch.where(ucn, self.w_ucn[t], self.w_cn[t]).unsqueeze(-1)  # (B, m, 1)
            vtot = torch.nn.functional.pad(self.w_ch[t] * llr + vsum, (0, 1))  # (B, n+1)
            v2c = (vtot[:, g.slot_vars] - c2v[:, :-1]).clamp(-LLR_CLIP, LLR_CLIP)
            v2c = v2c.view(B, g.m, g.dc_max).masked_fill(pad_mask, PAD)
            new = self.cn_update(v2c, weight).masked_fill(pad_mask, 0.0)
            c2v = torch.nn.functional.pad(new.reshape(B, -1), (0, 1))
            vsum = sum_in_slot_order(c2v[:, g.vn_slots])  # (B, n): gather, never scatter
            app = (llr + vsum).clamp(-LLR_CLIP, LLR_CLIP)
            outs.append(app)
        return outs, DecoderState(c2v=c2v, vsum=vsum, app=app, t=until)
