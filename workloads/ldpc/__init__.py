"""Workload ``ldpc``: train a neural min-sum decoder of a standard LDPC code.

Facts and sources: docs/workloads.md#ldpc, docs/methods.md#ldpc; this folder's README.md says
how the targets were calibrated. The model family (flooding neural min-sum, per-iteration SCN,
UCN and channel weights in [0, 2]) and the evaluator (reference decoder, frames seeded from the
harness's evaluation seed, Clopper-Pearson bound) are fixed here; methods choose training SNRs,
codewords, losses, schedules and which weights to train.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from harness.api import ContractError, ReferenceOp, Workload, WorkloadSpec
from workloads.ldpc.channel import bpsk_awgn_llr
from workloads.ldpc.codes import LdpcCode, load_code
from workloads.ldpc.decoder import PAD, WEIGHT_RANGE, NeuralMinSum, TannerGraph, check_node_update
from workloads.ldpc.evaluator import EVAL_SEED_BASE, FrameCache, count_frame_errors
from workloads.ldpc.fast_decoder import hard_decision_decoder
from workloads.ldpc.gf2 import SystematicEncoder

EVAL_CACHE_BYTES = 256 << 20  # evaluation frames kept between evaluations (about 90,000 of n=576)


@dataclass(frozen=True)
class LdpcSpec(WorkloadSpec):
    code: str = "wimax_576_432"
    iterations: int = 20  # L: decoder iterations, scored after the last one
    ebn0_db: float = 3.5  # evaluation Eb/N0
    train_ebn0_db: tuple[float, float] = (2.5, 3.5)  # the default training stream's range
    eval_chunk: int = 2000  # frames per fixed-seed evaluation chunk
    min_frame_errors: int = 100  # count until this many frame errors ...
    frame_cap: int = 20_000  # ... or this many frames


DEFAULT = LdpcSpec(
    name="ldpc",
    variant="default",
    metric="fer_upper95",  # upper end of the 95% Clopper-Pearson interval of the FER
    direction="min",
    target=1e-2,
    budget_s={"cpu": 100.0, "gpu": 60.0},  # gpu: provisional, not yet measured
    eval_every_s=10.0,
    step_hint=340,  # the steps the cpu budget allows at nms_baseline's speed (calibration)
    batch_size_hint=128,
    eval_samples=20_000,
    data="generated: IEEE 802.16e (576,432) codewords over BPSK-AWGN",
    code="wimax_576_432",
    iterations=20,
    ebn0_db=3.5,
    calibration=(
        "2026-11-23, cpu-2core: plain min-sum FER 1.85e-2 [1.52e-2, 2.22e-2] at 3.5 dB misses; "
        "tuned nms_baseline reached fer_upper95 <= 1e-2 at 40.4, 50.8, 40.7 s of training "
        "(seeds 0-2); budget = 4/3 x 50.8 s, rounded up. Re-checked 2026-12-02 with the "
        "other workloads (issue 9): nms_baseline reached it at 30.7, 20.6, 30.8 s (82-129 "
        "steps; seeds 0-2), adamw at its defaults missed; budget = 4/3 x 30.8 s on the 10 s "
        "evaluation grid = 50 s, step_hint = 130. Caveat (2026-12-05, issue 20): normalized "
        "min-sum with one constant factor in 0.65-0.9 meets this target (F = 0.75: "
        "fer_upper95 3.75e-3), so it does not need learned per-iteration weights; no point "
        "measured on a CPU budget needs them with boosted_nms ahead of nms_baseline "
        "(closest: L = 5 at 4.0 dB; at L = 10, 3.75 dB boosted_nms led by 11-15% on 3 seeds, "
        "too little to resolve within the evaluation's share). Details: workloads/ldpc/README.md."
        " Re-set 2026-12-05 under the bench's protocol (issue 19: 10 seeds at the defaults, 1.5x"
        " budget, one pinned core of cpu-2core, class cpu-1core): budget = the 9th of 10 times"
        " to target (68.2 s) / 0.75, rounded up to 10 s = 100 s; step_hint = the steps 100 s"
        " allows at nms_baseline's median speed = 340."
    ),
)

SPECS: dict[str, LdpcSpec] = {
    "default": DEFAULT,
    "smoke": dataclasses.replace(
        DEFAULT,
        variant="smoke",
        code="mackay_96_48",
        iterations=5,
        ebn0_db=4.0,
        train_ebn0_db=(3.0, 5.0),
        target=0.02,
        budget_s={"cpu": 4.0, "gpu": 4.0},
        eval_every_s=1.0,
        step_hint=20,
        batch_size_hint=64,
        eval_samples=2000,
        eval_chunk=500,
        frame_cap=2000,
        min_frame_errors=50,
        data="generated: MacKay (96,48) codewords over BPSK-AWGN",
        calibration="loose on purpose: exercises the code path in seconds, not a result",
    ),
    "full": dataclasses.replace(
        DEFAULT,
        variant="full",
        iterations=50,
        ebn0_db=5.0,
        train_ebn0_db=(2.0, 5.0),
        target=1e-5,
        budget_s={"cpu": 36_000.0, "gpu": 3600.0},
        eval_every_s=300.0,
        step_hint=20_000,
        batch_size_hint=512,
        eval_samples=100_000_000,
        eval_chunk=50_000,
        frame_cap=100_000_000,
        data="generated: IEEE 802.16e (576,432), error-floor regime, 50 iterations",
        calibration="provisional: the error-floor target of docs/workloads.md#ldpc (1e-5 on one "
        "GPU); budget not yet measured on a GPU",
    ),
}


@dataclass
class LdpcBatch:
    llr: torch.Tensor  # (B, n) channel LLR, log P(c=0)/P(c=1), clipped to +-20
    bits: torch.Tensor  # (B, n) transmitted codeword, 0/1 float
    ebn0_db: torch.Tensor  # (B,) the Eb/N0 each frame was drawn at


class LdpcWorkload(Workload):
    spec: LdpcSpec

    def __init__(self, spec: LdpcSpec, device: torch.device, eval_seed: int | None = None):
        super().__init__(spec, device, eval_seed)
        self.code: LdpcCode = load_code(spec.code)
        self.graph = TannerGraph.from_checks(self.code.n, [list(c) for c in self.code.checks]).to(
            device
        )
        self.encoder = SystematicEncoder(self.code.H())
        self.rate = self.code.k / self.code.n
        # the evaluation chunks, drawn once per process and decoded again at every evaluation
        self.eval_frames = FrameCache(EVAL_CACHE_BYTES)

    # -- model ---------------------------------------------------------------------------
    def init_model(self, rng: torch.Generator) -> NeuralMinSum:
        """All weights 1: plain min-sum, the starting point of every method."""
        return NeuralMinSum(self.graph, self.spec.iterations).to(self.device)

    # -- training data -------------------------------------------------------------------
    def sample(
        self,
        batch_size: int,
        ebn0_db: float | tuple[float, float] | torch.Tensor,
        rng: torch.Generator,
        zero_codeword: bool = False,
    ) -> LdpcBatch:
        """Noisy received words with their codewords.

        ebn0_db: one value, a (low, high) range drawn uniformly per frame, or (B,) values.
        zero_codeword: send the all-zero word (valid for sign-symmetric decoders).
        """
        if rng.initial_seed() % 2**32 >= EVAL_SEED_BASE:  # CPU generators use the low 32 bits
            raise ContractError("training generators must be seeded below the evaluation seeds")
        snr = self._snr(batch_size, ebn0_db, rng)
        if zero_codeword:
            bits = torch.zeros(batch_size, self.code.n, device=self.device)
        else:
            msgs = torch.randint(0, 2, (batch_size, self.code.k), generator=rng, device=self.device)
            bits = self.encoder.encode(msgs.float())
        return LdpcBatch(bpsk_awgn_llr(bits, snr, self.rate, rng), bits, snr)

    def _snr(self, b: int, ebn0_db, rng: torch.Generator) -> torch.Tensor:
        if isinstance(ebn0_db, torch.Tensor):
            return ebn0_db.to(self.device, torch.float32).expand(b)
        if isinstance(ebn0_db, (tuple, list)):
            lo, hi = ebn0_db
            return lo + (hi - lo) * torch.rand(b, generator=rng, device=self.device)
        return torch.full((b,), float(ebn0_db), device=self.device)

    def train_streams(self, batch_size: int, rng: torch.Generator) -> Mapping[str, Iterator]:
        def stream() -> Iterator[LdpcBatch]:
            while True:
                yield self.sample(batch_size, self.spec.train_ebn0_db, rng)

        return {"train": stream()}

    def loss(self, model: NeuralMinSum, batch: LdpcBatch) -> torch.Tensor:
        """BCE of the last iteration's APP LLR against the codeword
        (docs/methods.md#nms_baseline)."""
        outs, _ = model(batch.llr)
        return torch.nn.functional.binary_cross_entropy_with_logits(-outs[-1], batch.bits)

    # -- evaluation (harness only) -------------------------------------------------------
    def reference_decoder(self, model: torch.nn.Module) -> NeuralMinSum:
        """A fresh reference decoder with ``model``'s weights, clipped to [0, 2]: what scores."""
        ref = NeuralMinSum(self.graph, self.spec.iterations).to(self.device)
        for name in ("w_cn", "w_ucn", "w_ch"):
            w = getattr(model, name, None)
            if not isinstance(w, torch.Tensor) or w.shape != (self.spec.iterations,):
                raise ContractError(
                    f"the ldpc model must keep {name} of shape ({self.spec.iterations},); "
                    f"got {None if w is None else tuple(w.shape)}"
                )
            getattr(ref, name).data.copy_(w.detach().clamp(*WEIGHT_RANGE))
        return ref

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        """FER of the reference decoder with ``model``'s clipped weights, each frame stopped at
        its first codeword (``TTR_LDPC_EXACT=1``: all L iterations, bit-identical to the
        reference). It runs as the numba decoder of ``fast_decoder`` when numba imports, as the
        torch module otherwise or with ``TTR_LDPC_DECODER=reference`` (same decisions)."""
        seed = self.require_eval_seed(split)
        ref = self.reference_decoder(model)
        s = self.spec
        decode = hard_decision_decoder(self.graph, ref, s.iterations)

        def sample(b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            msgs = torch.randint(0, 2, (b, self.code.k), generator=g, device=self.device)
            bits = self.encoder.encode(msgs.float())
            return bpsk_awgn_llr(bits, s.ebn0_db, self.rate, g), bits

        with torch.inference_mode():
            count = count_frame_errors(
                decode,
                sample,
                split,
                s.eval_chunk,
                s.min_frame_errors,
                s.frame_cap,
                self.device,
                eval_seed=seed,
                cache=self.eval_frames,
                key=(s.code, s.ebn0_db),
            )
        return count.metrics()


WORKLOAD = LdpcWorkload


def _cnu_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    """Random check-node inputs with padded rows of degree 2..dc, some weights past the clamp."""
    B, m, dc = 8, 12, 9
    v2c = (torch.rand(B, m, dc, generator=g, dtype=dtype, device=device) * 2 - 1) * 20
    degree = torch.randint(2, dc + 1, (m, 1), generator=g, device=device)
    v2c = v2c.masked_fill(torch.arange(dc, device=device) >= degree, PAD)
    weight = torch.rand(B, m, 1, generator=g, dtype=dtype, device=device) * 2.5
    return v2c.requires_grad_(), weight.requires_grad_()


REFERENCE_OPS = {
    "check_node_update": ReferenceOp(
        fn=check_node_update,
        make_inputs=_cnu_inputs,
        tolerances={torch.float32: (1e-5, 1e-5)},
        compare=lambda out, args: out[args[0].detach().abs() < PAD / 2],
        description="weighted min-sum check-node update on padded (B, m, dc) messages",
    ),
}
