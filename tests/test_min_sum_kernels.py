"""Parity of the boosted_nms min-sum kernels with ``workloads.ldpc.decoder.check_node_update``.

Forward and gradients (w.r.t. v2c on real slots and w.r.t. the weight) on random padded inputs
that saturate at +-20, contain exact zeros and magnitude ties, and weights that hit both ends of
the clamp. The Triton kernel runs in a subprocess: under ``TRITON_INTERPRET=1`` on CPU, natively
on CUDA for the ``gpu`` test. Triton picks compile vs. interpret when ``@triton.jit`` runs, so a
fresh process is the only way to be sure which one a test gets inside a larger pytest run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workloads.ldpc.decoder import PAD, check_node_update  # noqa: E402

KERNELS_MODULE = "submissions.boosted_nms.kernels"
TOL = {"rtol": 1e-5, "atol": 1e-5}  # fp32
# (B, m, dc, weight shape, magnitude step): step > 0 quantizes |v2c| to force ties.
CASES = [
    (1, 12, 7, (1, 12, 1), 0.0),
    (37, 9, 7, (37, 9, 1), 0.0),
    (37, 6, 23, (1, 6, 1), 0.0),
    (1, 5, 23, (), 0.0),
    (37, 10, 6, (37, 10, 1), 0.5),
]


def make_inputs(B, m, dc, w_shape, step, seed):
    """v2c (B, m, dc) with 0..dc-2 padding slots at the end of each row (the decoder's layout),
    weight of ``w_shape`` and a mask of the real slots."""
    g = torch.Generator().manual_seed(seed)
    v2c = (torch.randn(B, m, dc, generator=g) * 10).clamp(-20.0, 20.0)  # many at +-20
    if step > 0:
        v2c = (v2c / step).round() * step  # ties between slots, exact zeros
    v2c[torch.rand(B, m, dc, generator=g) < 0.03] = 0.0
    real_len = torch.randint(2, dc + 1, (B, m, 1), generator=g)
    real = torch.arange(dc) < real_len
    v2c = v2c.masked_fill(~real, PAD)
    weight = torch.rand(w_shape, generator=g) * 2.0  # [0, 2]: w * |v2c| > 20 clamps
    if weight.numel() >= 4:  # both ends of [0, 2], plain min-sum, and the clamp at 0
        picks = torch.randperm(weight.numel(), generator=g)[:4]
        weight.view(-1)[picks] = torch.tensor([0.0, 1.0, 2.0, -0.25])
    return v2c, weight, real


def check_parity(fn, case, device, seed=0):
    """Raise AssertionError unless fn matches the reference in value and gradient."""
    v2c, weight, real = (t.to(device) for t in make_inputs(*case, seed=seed))
    grad_out = torch.randn(v2c.shape, generator=torch.Generator().manual_seed(seed + 1))
    grad_out = grad_out.to(device) * real  # callers mask padding outputs, so no gradient there
    results = []
    for f in (check_node_update, fn):
        v, w = v2c.clone().requires_grad_(), weight.clone().requires_grad_()
        out = f(v, w)
        out.backward(grad_out)
        results.append((out.detach(), v.grad, w.grad))
    (ref, ref_dv, ref_dw), (out, dv, dw) = results
    assert out.shape == ref.shape and torch.isfinite(out).all(), "non-finite output"
    torch.testing.assert_close(out[real], ref[real], **TOL, msg=lambda s: f"forward: {s}")
    torch.testing.assert_close(dv[real], ref_dv[real], **TOL, msg=lambda s: f"d v2c: {s}")
    assert dw.shape == weight.shape, f"weight grad shape {dw.shape} != {weight.shape}"
    torch.testing.assert_close(dw, ref_dw, **TOL, msg=lambda s: f"d weight: {s}")
    with torch.no_grad():  # the inference path (no row summary saved) gives the same values
        torch.testing.assert_close(fn(v2c, weight)[real], ref[real], **TOL)


def _kernel(name):
    return {k.name: k for k in importlib.import_module(KERNELS_MODULE).KERNELS}[name]


def _triton_main(device: str) -> None:
    """Subprocess entry point: every case through the Triton kernel on ``device``."""
    kernel = _kernel("fused_min_sum_triton")
    assert kernel.available(torch.device(device)), f"fused_min_sum_triton unavailable on {device}"
    for i, case in enumerate(CASES):
        check_parity(kernel.fn, case, device, seed=i)
        print("ok", case)


def _run_triton(device: str, interpret: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    code = f"import test_min_sum_kernels as t; t._triton_main({device!r})"
    paths = [str(ROOT / "tests"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"Triton parity failed on {device}:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.count("ok") == len(CASES), proc.stdout


needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed"
)


def test_kernels_registered():
    names = {k.name: k.replaces for k in importlib.import_module(KERNELS_MODULE).KERNELS}
    assert names == {
        "fused_min_sum_triton": "ldpc.check_node_update",
        "saved_min_sum": "ldpc.check_node_update",
        "compiled_min_sum": "ldpc.check_node_update",
    }


def test_saved_min_sum_parity():
    kernel = _kernel("saved_min_sum")
    assert kernel.available(torch.device("cpu"))
    for i, case in enumerate(CASES):
        check_parity(kernel.fn, case, "cpu", seed=i)


def test_saved_min_sum_gradcheck_float64():
    """Finite differences on a tiny input away from the kinks (distinct magnitudes, no clamp)."""
    from submissions.boosted_nms.kernels.min_sum_saved import saved_min_sum

    g = torch.Generator().manual_seed(0)
    mags = 0.5 + torch.randperm(2 * 3 * 5, generator=g).double().view(2, 3, 5) * 0.3
    signs = torch.where(torch.rand(2, 3, 5, generator=g) < 0.5, -1.0, 1.0).double()
    v2c = (mags * signs).requires_grad_()
    weight = (0.3 + 0.5 * torch.rand(2, 3, 1, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(saved_min_sum, (v2c, weight), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(check_node_update, (v2c, weight), eps=1e-6, atol=1e-7)


def test_eager_formulation_matches_reference():
    from submissions.boosted_nms.kernels.min_sum_compiled import min_sum_min1_min2

    for i, case in enumerate(CASES):
        check_parity(min_sum_min1_min2, case, "cpu", seed=i)


@needs_triton
def test_triton_interpreter_parity():
    _run_triton("cpu", interpret=True)


@pytest.mark.gpu
@needs_triton
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_triton_cuda_parity():
    _run_triton("cuda", interpret=False)


def test_compiled_parity():
    kernel = _kernel("compiled_min_sum")
    if not kernel.available(torch.device("cpu")):
        pytest.skip("torch.compile does not work on this CPU (no C++ compiler?)")
    for i, case in enumerate(CASES):
        check_parity(kernel.fn, case, "cpu", seed=i)


def test_gpu_benchmark_parity_and_refusal_without_cuda():
    """benchmarks/min_sum_gpu.py: its parity check finds the reference equal to itself and to
    ``saved_min_sum`` on CPU (ties included), and a CPU-only machine gets exit code 2."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import min_sum_gpu

    v2c, w = min_sum_gpu.make_inputs(4, torch.device("cpu"))
    grad = torch.randn_like(v2c)
    impls = min_sum_gpu.implementations()
    for name in ("reference", "saved"):
        diffs = min_sum_gpu.parity(impls[name], v2c, w, grad)
        assert diffs == {
            "fwd_max_abs_diff": 0.0,
            "grad_v2c_max_abs_diff": 0.0,
            "grad_w_max_rel_diff": 0.0,
        }, name
    # a wrong kernel is caught: scaling the output changes the forward
    wrong = min_sum_gpu.parity(lambda v, ww: 1.01 * check_node_update(v, ww), v2c, w, grad)
    assert wrong["fwd_max_abs_diff"] > 0
    if not torch.cuda.is_available():
        assert min_sum_gpu.main(["--out", "/nonexistent-never-written"]) == 2
