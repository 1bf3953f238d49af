"""The numba evaluation decoder against the reference decoder (workloads/ldpc/fast_decoder.py)."""

from __future__ import annotations

import pytest
import torch

from workloads.ldpc import SPECS, LdpcWorkload
from workloads.ldpc.channel import bpsk_awgn_llr
from workloads.ldpc.codes import load_code
from workloads.ldpc.decoder import NeuralMinSum, TannerGraph
from workloads.ldpc.evaluator import clopper_pearson
from workloads.ldpc.fast_decoder import (
    ENV,
    EXACT_ENV,
    backend,
    early_stop,
    hard_decision_decoder,
    reference_early_stop,
)
from workloads.ldpc.gf2 import SystematicEncoder

pytest.importorskip("numba")
from workloads.ldpc.fast_decoder import FastMinSum  # noqa: E402

CPU = torch.device("cpu")


def setup(name: str, iterations: int, frames: int, ebn0: float, seed: int = 0):
    """Graph, an all-ones model, and (llr, codewords) of random codewords over BPSK/AWGN."""
    code = load_code(name)
    graph = TannerGraph.from_checks(code.n, [list(c) for c in code.checks])
    g = torch.Generator().manual_seed(seed)
    bits = SystematicEncoder(code.H()).encode(torch.randint(0, 2, (frames, code.k), generator=g))
    llr = bpsk_awgn_llr(bits.float(), ebn0, code.rate, g)
    return graph, NeuralMinSum(graph, iterations), llr


def random_weights(model: NeuralMinSum, seed: int, lo: float = 0.0, hi: float = 2.0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (model.w_cn, model.w_ucn, model.w_ch):
            p.copy_(lo + (hi - lo) * torch.rand(p.shape, generator=g))


@pytest.mark.parametrize(
    "name,iterations,ebn0,weights",
    [
        ("mackay_96_48", 5, 2.0, "ones"),
        ("mackay_96_48", 7, 4.0, "random"),
        ("wimax_576_432", 4, 3.5, "ones"),
        ("wimax_576_432", 6, 2.5, "random"),
        ("ccsds_128_64", 5, 3.0, "random"),
    ],
)
def test_bit_identical_to_the_reference(name, iterations, ebn0, weights):
    graph, model, llr = setup(name, iterations, 37, ebn0)  # 37: a partial SIMD group
    if weights == "random":
        random_weights(model, seed=iterations)
    with torch.no_grad():
        ref = model(llr)[0][-1]
    hard, app, iters = FastMinSum(graph, model, iterations).decode(llr)
    assert torch.equal(app, ref)  # APP LLRs bit for bit, so the decisions too
    assert torch.equal(hard.bool(), ref < 0)
    assert (iters == iterations).all()


@pytest.mark.parametrize("lanes", [1, 4, 8, 32])
@pytest.mark.parametrize("stop", [False, True])
def test_lane_count_and_refilling_change_nothing(lanes, stop):
    """300 frames in several chunks, lanes refilled as frames finish: the same decisions, APP
    LLRs and iteration counts as the 16-lane decoder, and (exact path) as the reference."""
    iterations = 6
    graph, model, llr = setup("wimax_576_432", iterations, 300, 3.0, seed=5)
    random_weights(model, seed=11, lo=0.6, hi=1.2)
    base = FastMinSum(graph, model, iterations).decode(llr, early_stop=stop)
    out = FastMinSum(graph, model, iterations, lanes=lanes).decode(llr, early_stop=stop)
    for a, b in zip(out, base, strict=True):
        assert torch.equal(a, b)
    if not stop:
        with torch.no_grad():
            assert torch.equal(base[1], model(llr)[0][-1])


def test_reference_early_stop_matches_the_numba_early_stop():
    iterations = 10
    graph, model, llr = setup("wimax_576_432", iterations, 200, 3.0, seed=2)
    random_weights(model, seed=4, lo=0.5, hi=1.3)
    hard, _, iters = FastMinSum(graph, model, iterations).decode(llr, early_stop=True)
    ref_hard, ref_iters = reference_early_stop(model, llr)
    assert torch.equal(hard.bool(), ref_hard)
    assert torch.equal(iters, ref_iters)
    assert (iters < iterations).any() and (iters == iterations).any()


@pytest.mark.parametrize("ebn0", [3.0, 3.5])
def test_early_stop_fer_equals_the_exact_fer_within_the_interval(ebn0):
    """The evaluation's early stop against the exact path (= the reference, bit for bit) on
    4,000 fixed-seed frames of the ldpc default code and iterations: each FER lies in the
    other's 95% Clopper-Pearson interval, and a frame that the exact path decodes correctly
    and that reaches a codeword early is decoded to that same codeword."""
    iterations, frames = 20, 4000
    graph, model, llr = setup("wimax_576_432", iterations, frames, ebn0, seed=7)
    g = torch.Generator().manual_seed(7)
    bits = SystematicEncoder(load_code("wimax_576_432").H()).encode(
        torch.randint(0, 2, (frames, 432), generator=g)
    )
    fast = FastMinSum(graph, model, iterations)
    exact, _, _ = fast.decode(llr)
    es, _, iters = fast.decode(llr, early_stop=True)
    wrong_exact = (exact != bits.to(torch.uint8)).any(1)
    wrong_es = (es != bits.to(torch.uint8)).any(1)
    e_exact, e_es = int(wrong_exact.sum()), int(wrong_es.sum())
    assert e_exact >= 10, "too few errors for the comparison to mean anything"
    lo, hi = clopper_pearson(e_exact, frames)
    assert lo <= e_es / frames <= hi
    lo, hi = clopper_pearson(e_es, frames)
    assert lo <= e_exact / frames <= hi
    early_ok = ~wrong_exact & (iters < iterations)
    assert early_ok.sum() > frames // 2
    assert torch.equal(es[early_ok], exact[early_ok])
    assert float(iters.float().mean()) < iterations / 2


def test_early_stop_returns_the_first_codeword():
    iterations = 8
    graph, model, llr = setup("wimax_576_432", iterations, 64, 3.0)
    with torch.no_grad():
        outs = model(llr)[0]
    hard_t = torch.stack([(o < 0) for o in outs])  # (L, B, n)
    valid = ~torch.stack([graph.syndrome(h.float()).any(1) for h in hard_t])  # (L, B)
    hard, _, iters = FastMinSum(graph, model, iterations).decode(llr, early_stop=True)
    for b in range(llr.shape[0]):
        if valid[:, b].any():  # stops after the first iteration whose word is a codeword
            t = int(valid[:, b].nonzero()[0])
            assert iters[b] == t + 1
            assert torch.equal(hard[b].bool(), hard_t[t, b])
        else:
            assert iters[b] == iterations and torch.equal(hard[b].bool(), hard_t[-1, b])
    assert (iters < iterations).any() and (iters == iterations).any()  # both cases occur


def test_each_iterations_weight_is_honoured():
    iterations = 5
    graph, model, llr = setup("mackay_96_48", iterations, 16, 2.0)
    base = FastMinSum(graph, model, iterations).decode(llr)[1]
    for name in ("w_cn", "w_ucn", "w_ch"):
        for t in range(iterations):
            with torch.no_grad():
                getattr(model, name)[t] = 0.3
            changed = FastMinSum(graph, model, iterations).decode(llr)[1]
            with torch.no_grad():
                getattr(model, name)[t] = 1.0
                ref = model(llr)[0][-1]
            assert not torch.equal(changed, base), f"{name}[{t}] had no effect"
            assert torch.equal(FastMinSum(graph, model, iterations).decode(llr)[1], ref)


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.zeros(4, 95), r"\(B, 96\)"),
        (torch.zeros(96), r"\(B, 96\)"),
        (torch.zeros(4, 96, dtype=torch.long), "floating point"),
        (torch.full((4, 96), float("nan")), "NaN"),
        (torch.full((4, 96), float("inf")), "NaN or infinite"),
    ],
)
def test_bad_input_is_refused(bad, match, monkeypatch):
    graph, model, _ = setup("mackay_96_48", 3, 1, 3.0)
    with pytest.raises(ValueError, match=match):
        FastMinSum(graph, model, 3).decode(bad)
    for choice in ("numba", "reference"):  # the evaluator's decode, either backend
        monkeypatch.setenv(ENV, choice)
        with pytest.raises(ValueError, match=match):
            hard_decision_decoder(graph, model, 3)(bad)


def test_weights_of_the_wrong_shape_are_refused():
    graph, model, _ = setup("mackay_96_48", 3, 1, 3.0)
    with pytest.raises(ValueError, match=r"w_cn must have shape \(4,\)"):
        FastMinSum(graph, model, 4)


def test_backend_switch(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert backend() == "numba"
    monkeypatch.setenv(ENV, "reference")
    assert backend() == "reference"
    monkeypatch.setenv(ENV, "cuda")
    with pytest.raises(ValueError, match="TTR_LDPC_DECODER='cuda'"):
        backend()


def test_exact_switch(monkeypatch):
    monkeypatch.delenv(EXACT_ENV, raising=False)
    assert early_stop()
    monkeypatch.setenv(EXACT_ENV, "1")
    assert not early_stop()
    monkeypatch.setenv(EXACT_ENV, "yes")
    with pytest.raises(ValueError, match="TTR_LDPC_EXACT='yes'"):
        early_stop()


@pytest.mark.parametrize("exact", ["0", "1"])
def test_reference_fallback_gives_the_same_evaluation(monkeypatch, exact):
    monkeypatch.setenv(EXACT_ENV, exact)
    w = LdpcWorkload(SPECS["smoke"], CPU, eval_seed=0)
    model = w.init_model(torch.Generator())
    random_weights(model, seed=3, lo=0.5, hi=1.5)
    monkeypatch.setenv(ENV, "numba")
    fast = w.evaluate(model, "validation")
    monkeypatch.setenv(ENV, "reference")
    assert w.evaluate(model, "validation") == fast


def test_throughput_benchmark_reports_the_evaluation_decoder():
    """benchmarks/ldpc_throughput.py's JSON contract on a few frames (no timing asserted)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import ldpc_throughput

    args = ldpc_throughput.parse_args(["--quick", "--json", "--iterations", "5"])
    args.frames, args.torch_frames, args.pyldpc_frames = 192, 64, 2
    args.reps, args.train_batch, args.train_reps = 1, 4, 1
    r = ldpc_throughput.bench(args)
    d = r["decoders"]
    assert {"evaluation", "evaluation_exact", "reference", "boosted_nms"} <= d.keys()
    assert d["evaluation"]["early_stop"] is early_stop()
    assert d["evaluation_exact"]["bit_identical_to_reference"] is True
    assert d["evaluation_exact"]["avg_iterations"] == 5
    for name in ("evaluation", "evaluation_exact", "reference"):
        assert d[name]["frames_per_s"] > 0 and d[name]["mbps_coded"] > 0
        lo, hi = d[name]["fer_ci"]
        assert lo <= d[name]["fer"] <= hi
    assert d["evaluation"]["fer_within_exact_ci"] is True
