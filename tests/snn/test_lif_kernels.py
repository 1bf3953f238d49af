"""Parity of the bptt_surrogate LIF kernels with ``workloads.snn.neuron.lif_multistep``.

Spikes must match exactly (they are 0/1), the gradient of the currents under a random upstream
gradient to 1e-5 (fp32) or 1e-10 (fp64), on currents around the threshold (many spikes, many
surrogate gradients), T = 1 (no recurrence), T = 7 and 9 (the Triton loop is unrolled by 4:
tails), several trailing shapes and non-contiguous inputs. The Triton kernels run in a
subprocess: under ``TRITON_INTERPRET=1`` on CPU, natively on CUDA for the ``gpu`` test. Triton
picks compile vs. interpret when ``@triton.jit`` runs, so a fresh process is the only way to be
sure which one a test gets inside a larger pytest run.
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

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workloads.snn.neuron import lif_multistep  # noqa: E402

KERNELS_MODULE = "submissions.bptt_surrogate.kernels"
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
# (shape, non-contiguous, detach_reset)
CASES = [
    ((1, 5, 33), False, False),
    ((7, 5, 33), False, False),
    ((7, 2, 3, 4, 5), False, False),
    ((9, 4, 6), True, False),
    ((7, 5, 33), True, True),
]
TRITON_CASES = CASES + [((5, 3, 3000), False, False)]  # > one interpreter block of neurons


def make_current(shape, noncontig, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    if noncontig:  # a transposed view of a (B, T, ...) tensor, then every other neuron
        full = torch.randn(shape[1], shape[0], *shape[2:-1], 2 * shape[-1], generator=g)
        x = full.transpose(0, 1)[..., ::2]
    else:
        x = torch.randn(shape, generator=g)
    x = (x * 0.8 + 0.6).to(dtype)
    assert x.shape == shape and x.is_contiguous() != noncontig
    return x.to(device)


def check_parity(fn, case, dtype, device, seed=0):
    """Raise AssertionError unless fn matches the reference in value and gradient."""
    shape, noncontig, detach = case
    current = make_current(shape, noncontig, dtype, device, seed)
    up = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    up = up.to(device)
    results = []
    for f in (lif_multistep, fn):
        x = current.clone() if not noncontig else current.detach()  # keep the strides
        x = x.detach().requires_grad_()
        s = f(x, detach_reset=detach)
        (s * up).sum().backward()
        results.append((s.detach(), x.grad))
    (ref, ref_g), (out, g) = results
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert torch.equal(out, ref), f"spikes differ at {int((out != ref).sum())} places"
    assert 0 < float(ref.mean()) < 1, "test inputs should spike sometimes, not always"
    tol = TOL[dtype]
    torch.testing.assert_close(g, ref_g, rtol=tol, atol=tol, msg=lambda m: f"dL/dI: {m}")
    with torch.no_grad():  # the inference path (no membrane saved) gives the same spikes
        assert torch.equal(fn(current, detach_reset=detach), ref)


def _kernel(name):
    return {k.name: k for k in importlib.import_module(KERNELS_MODULE).KERNELS}[name]


def _triton_main(device: str) -> None:
    """Subprocess entry point: every case through the Triton kernel on ``device``, then the
    harness's parity check of the whole submission there."""
    kernel = _kernel("fused_lif_triton")
    assert kernel.available(torch.device(device)), f"fused_lif_triton unavailable on {device}"
    from submissions.bptt_surrogate.kernels import lif_triton

    assert lif_triton.INTERPRETED == (device == "cpu")
    for i, case in enumerate(TRITON_CASES):
        for dtype in (torch.float32, torch.float64):
            check_parity(kernel.fn, case, dtype, device, seed=i)
            print("ok", case, dtype)
    results = _check_submission(torch.device(device))
    assert {r.kernel for r in results} == {"fused_lif_triton", "fused_lif_torch"}, results
    print("ok check_kernels")


def _check_submission(device: torch.device):
    from harness.discovery import load_submission
    from harness.kernels import check_kernels

    results = check_kernels(load_submission("bptt_surrogate"), device, workload="snn")
    assert results and all(r.ok for r in results), results
    assert {r.dtype for r in results} == {"torch.float32", "torch.float64"}
    return results


def _run_triton(device: str, interpret: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    code = f"import test_lif_kernels as t; t._triton_main({device!r})"
    paths = [str(Path(__file__).parent), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"Triton parity failed on {device}:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.count("ok") == 2 * len(TRITON_CASES) + 1, proc.stdout


needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed"
)


def test_kernels_registered():
    names = {k.name: k.replaces for k in importlib.import_module(KERNELS_MODULE).KERNELS}
    assert names == dict.fromkeys(["fused_lif_triton", "fused_lif_torch"], "snn.lif_multistep")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-nc{int(c[1])}-dr{int(c[2])}" for c in CASES])
def test_torch_parity(case, dtype):
    check_parity(_kernel("fused_lif_torch").fn, case, dtype, "cpu")


def test_torch_other_dtypes_and_params():
    """Other floating dtypes and neuron constants (lam not a power of two) follow the reference."""
    fn = _kernel("fused_lif_torch").fn
    x = make_current((6, 4, 9), False, torch.float32, "cpu", 3)
    kw = {"lam": 0.9, "theta": 0.7, "alpha": 2.5}
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref, out = lif_multistep(a, **kw), fn(b, **kw)
    assert torch.equal(out, ref)
    ref.sum().backward()
    out.sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-5)
    xb = x.to(torch.bfloat16)
    assert torch.equal(fn(xb), lif_multistep(xb))


def test_network_with_torch_kernel_matches_reference():
    """The smoke MLP with ``model.lif`` swapped (what the submission's init does): same
    readouts, same parameter gradients."""
    from workloads.snn.model import Arch, SpikingNet

    torch.manual_seed(0)
    ref = SpikingNet(Arch("mlp", 64, (48,), 10, 8, 0.5))
    net = SpikingNet(ref.arch)
    net.load_state_dict(ref.state_dict())
    net.lif = _kernel("fused_lif_torch").fn
    x = torch.rand(16, 64) * 4
    grads = []
    for model in (ref, net):
        out = model(x)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad for p in model.parameters()]))
    (o_ref, g_ref), (o, g) = grads
    torch.testing.assert_close(o, o_ref, rtol=1e-6, atol=1e-6)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_submission_picks_torch_kernel_on_cpu():
    from harness.discovery import load_submission

    sub = load_submission("bptt_surrogate")
    fns = {k.name: k.fn for k in sub.kernels()}  # the package as the harness imports it
    assert sub.module.pick_kernel("auto", torch.device("cpu")) is fns["fused_lif_torch"]


def test_check_kernels_cpu():
    """The harness's parity check of the submission on CPU (fused_lif_torch; the Triton kernel
    too if this process runs under the interpreter)."""
    results = _check_submission(torch.device("cpu"))
    assert "fused_lif_torch" in {r.kernel for r in results}


@needs_triton
def test_triton_interpreter_parity():
    _run_triton("cpu", interpret=True)


@pytest.mark.gpu
@needs_triton
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_triton_cuda_parity():
    _run_triton("cuda", interpret=False)
