"""The ldpc evaluator: exact bounds, stopping rule, fixed seeds, and the default target."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from scipy.stats import binomtest

from harness.api import ContractError
from workloads.ldpc import SPECS, LdpcWorkload
from workloads.ldpc.evaluator import (
    EVAL_SEED_BASE,
    FrameCache,
    clopper_pearson,
    count_frame_errors,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize("k,n", [(0, 100), (1, 100), (100, 10_000), (37, 40), (100, 100)])
def test_clopper_pearson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)


def test_zero_errors_bound_by_hand():
    # P(0 errors | p) = (1 - p)^n = 0.025  =>  p = 1 - 0.025^(1/n)
    assert clopper_pearson(0, 100)[1] == pytest.approx(1 - 0.025 ** (1 / 100))


def _uncoded(snr_db: float, n: int = 32):
    """An uncoded BPSK 'decoder' (hard decisions): its frame error rate is known exactly."""

    def sample(b, g):
        bits = torch.randint(0, 2, (b, n), generator=g).float()
        y = 1 - 2 * bits + torch.randn(b, n, generator=g) * 10 ** (-snr_db / 20)
        return y, bits

    return (lambda y: (y < 0).float()), sample


def test_counting_stops_at_the_frame_error_threshold():
    _, sample = _uncoded(0.0)
    always_wrong = lambda y: (y >= 0).float()  # noqa: E731 - every frame is an error
    c = count_frame_errors(
        always_wrong,
        sample,
        "validation",
        chunk=40,
        min_frame_errors=100,
        frame_cap=10_000,
        device=CPU,
        eval_seed=0,
    )
    assert c.frame_errors == 120 and c.frames == 120  # three chunks of 40, not the cap


def test_counting_stops_at_the_frame_cap():
    decode, sample = _uncoded(30.0)  # no errors at all
    c = count_frame_errors(
        decode,
        sample,
        "validation",
        chunk=64,
        min_frame_errors=100,
        frame_cap=200,
        device=CPU,
        eval_seed=0,
    )
    assert c.frames == 200 and c.frame_errors == 0
    assert c.metrics()["fer_upper95"] == pytest.approx(1 - 0.025 ** (1 / 200))


def test_splits_use_different_fixed_frames():
    decode, sample = _uncoded(8.0)
    runs = [
        count_frame_errors(decode, sample, s, 100, 10**9, 2000, CPU, eval_seed=0)
        for s in ("validation", "validation", "test")
    ]
    assert runs[0] == runs[1]  # fixed seeds: the same frames every time
    assert runs[0] != runs[2]


def test_frame_cache_replays_the_same_chunks_within_its_byte_cap():
    decode, sample = _uncoded(4.0)
    drawn = []

    def counting_sample(b, g):
        drawn.append(b)
        return sample(b, g)

    args = ("validation", 100, 10**9, 1000, CPU)
    plain = count_frame_errors(decode, sample, *args, eval_seed=0)
    one_chunk = 100 * 32 * 4 + 100 * 32  # float32 LLR and uint8 bits of a 100-frame chunk
    cache = FrameCache(max_bytes=3 * one_chunk)
    first = count_frame_errors(decode, counting_sample, *args, eval_seed=0, cache=cache, key=(4,))
    again = count_frame_errors(decode, counting_sample, *args, eval_seed=0, cache=cache, key=(4,))
    assert plain == first == again
    assert len(drawn) == 10 + 7  # the second count drew only the 7 chunks past the cap
    assert cache.bytes == 3 * one_chunk and len(cache.chunks) == 3
    other = count_frame_errors(decode, counting_sample, *args, eval_seed=0, cache=cache, key=(5,))
    assert other == plain and len(drawn) == 17 + 10  # another key: nothing replayed
    test_args = ("test", 100, 10**9, 1000, CPU)
    test = count_frame_errors(decode, sample, *test_args, eval_seed=0, cache=cache, key=(4,))
    assert test == count_frame_errors(decode, sample, *test_args, eval_seed=0) != plain


def test_evaluation_keeps_its_frames_between_evaluations():
    w = LdpcWorkload(SPECS["smoke"], CPU, eval_seed=0)
    model = w.init_model(torch.Generator())
    first = w.evaluate(model, "validation")
    assert w.eval_frames.chunks  # kept
    assert w.evaluate(model, "validation") == first
    fresh = LdpcWorkload(SPECS["smoke"], CPU, eval_seed=0)
    fresh.eval_frames.max_bytes = 0  # keeps nothing: draws every chunk again
    assert fresh.evaluate(model, "validation") == first and not fresh.eval_frames.chunks


def test_training_sampler_refuses_evaluation_seeds():
    w = LdpcWorkload(SPECS["smoke"], CPU, eval_seed=0)
    with pytest.raises(ContractError, match="below the evaluation seeds"):
        w.sample(4, 3.0, torch.Generator().manual_seed(EVAL_SEED_BASE + 1))


def test_evaluation_is_deterministic():
    w = LdpcWorkload(SPECS["smoke"], CPU, eval_seed=0)
    model = w.init_model(torch.Generator())
    assert w.evaluate(model, "validation") == w.evaluate(model, "validation")


def test_evaluator_scores_clipped_weights_with_the_reference_decoder():
    w = LdpcWorkload(SPECS["smoke"], CPU, eval_seed=0)
    model = w.init_model(torch.Generator())
    model.cn_update = lambda v2c, weight: torch.zeros_like(v2c)  # a broken "kernel"
    with torch.no_grad():
        model.w_cn.fill_(5.0)  # outside [0, 2]: scored as 2
    clipped = w.init_model(torch.Generator())
    with torch.no_grad():
        clipped.w_cn.fill_(2.0)
    assert w.evaluate(model, "validation") == w.evaluate(clipped, "validation")


@pytest.mark.slow
def test_plain_min_sum_misses_the_default_target():
    spec = SPECS["default"]
    w = LdpcWorkload(spec, CPU, eval_seed=0)
    metrics = w.evaluate(w.init_model(torch.Generator()), "validation")
    assert not spec.meets_target(metrics), metrics
    assert metrics["fer_lower95"] > spec.target  # clearly, not by chance


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 20: default is still met by a constant factor (F = 0.65-0.9); no point measured "
    "on a CPU budget needs learned weights with boosted_nms ahead (workloads/ldpc/README.md)",
)
def test_no_constant_normalization_factor_meets_the_default_target():
    spec = SPECS["default"]
    w = LdpcWorkload(spec, CPU, eval_seed=0)
    met = []
    for i in range(11):  # F = 0.5, 0.55, ..., 1.0 on every check-node and UCN weight
        factor = 0.5 + 0.05 * i
        model = w.init_model(torch.Generator())
        with torch.no_grad():
            model.w_cn.fill_(factor)
            model.w_ucn.fill_(factor)
        if spec.meets_target(w.evaluate(model, "validation")):
            met.append(round(factor, 2))
    assert not met, f"constant factors that meet the target: {met}"


def test_default_spec_records_its_calibration():
    assert (
        SPECS["default"].calibration
        and dataclasses.asdict(SPECS["default"])["code"] == "wimax_576_432"
    )
