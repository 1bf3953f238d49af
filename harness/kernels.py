"""Kernel parity: a submission's kernel must match the workload reference op it replaces.

For each kernel that is available on the device, for each dtype the reference op declares a
tolerance for, on a few seeded random inputs: outputs must agree (``torch.allclose`` with the
op's rtol/atol), and so must the gradients of every input that requires grad, under a random
upstream gradient. The runner refuses a submission whose kernel fails; ``ttr check`` reports it.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from harness import records
from harness.api import ContractError, Kernel, ReferenceOp
from harness.discovery import Submission, load_workload_module

PARITY_SEEDS = (0, 1, 2)


class KernelParityError(Exception):
    """A kernel disagrees with its reference op; the message gives the largest error."""


@dataclass
class ParityResult:
    kernel: str
    replaces: str
    dtype: str
    ok: bool
    max_abs_err: float
    detail: str = ""


def reference_op(replaces: str) -> ReferenceOp:
    workload, _, op = replaces.partition(".")
    ops = getattr(load_workload_module(workload), "REFERENCE_OPS", {})
    if op not in ops:
        raise ContractError(
            f"kernel replaces {replaces!r}, but workload {workload!r} has ops {sorted(ops)}"
        )
    return ops[op]


def _clone(args: tuple) -> tuple:
    return tuple(
        a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
        for a in args
    )


def _outputs_and_grads(fn, args: tuple, ref: ReferenceOp, upstream: torch.Tensor | None):
    out = fn(*args)
    sel = ref.compare(out, args) if ref.compare else out
    grads = []
    leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    if leaves:
        grads = torch.autograd.grad((sel * upstream).sum(), leaves, allow_unused=True)
        grads = [
            torch.zeros_like(a) if g is None else g for a, g in zip(leaves, grads, strict=True)
        ]
    return sel.detach(), [g.detach() for g in grads]


def _reference_cases(ref: ReferenceOp, device: torch.device):
    """For each dtype the reference op declares a tolerance for, and each parity seed: the
    seeded inputs, a random upstream gradient and the reference op's outputs and gradients, as
    (dtype, seed, rtol, atol, args, upstream, want), grouped by dtype."""
    for dtype, (rtol, atol) in ref.tolerances.items():
        for seed in PARITY_SEEDS:
            g = torch.Generator(device=device)
            g.manual_seed(seed)
            args = ref.make_inputs(g, dtype, device)
            ref_out = ref.fn(*_clone(args))
            up = torch.randn(
                (ref.compare(ref_out, args) if ref.compare else ref_out).shape,
                generator=g,
                dtype=dtype,
                device=device,
            )
            want = _outputs_and_grads(ref.fn, _clone(args), ref, up)
            yield dtype, seed, rtol, atol, args, up, want


def parity(kernel: Kernel, device: torch.device) -> list[ParityResult]:
    ref = reference_op(kernel.replaces)
    results = []
    for dtype, cases in itertools.groupby(_reference_cases(ref, device), key=lambda c: c[0]):
        worst, detail = 0.0, ""
        for _, seed, rtol, atol, args, up, want in cases:
            got = _outputs_and_grads(kernel.fn, _clone(args), ref, up)
            for what, a, b in [("output", want[0], got[0])] + [
                (f"grad[{i}]", x, y) for i, (x, y) in enumerate(zip(want[1], got[1], strict=True))
            ]:
                err = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
                if not torch.allclose(a, b, rtol=rtol, atol=atol) and not detail:
                    detail = (
                        f"{what} differs (seed {seed}, max abs error {err:.3g}, "
                        f"rtol {rtol}, atol {atol})"
                    )
                worst = max(worst, err)
        results.append(
            ParityResult(kernel.name, kernel.replaces, str(dtype), not detail, worst, detail)
        )
    return results


def _source_key(sub: Submission, kernel: Kernel, device: torch.device) -> str:
    """What a parity verdict depends on: kernel and reference sources, versions, device."""
    h = hashlib.sha256()
    for path in sorted((sub.path / "kernels").rglob("*.py")):
        h.update(path.read_bytes())
    h.update(Path(inspect.getsourcefile(reference_op(kernel.replaces).fn)).read_bytes())
    versions = records.package_versions()
    h.update(f"{kernel.name}|{device.type}|{versions['torch']}|{versions['triton']}".encode())
    return h.hexdigest()[:24]


def parity_cache_key(sub_dir: Path, workload: str, device: torch.device) -> str | None:
    """What the parity verdicts of a submission's kernels for ``workload`` depend on: every
    file of its ``kernels/`` folder (by content), the workload's reference ops' sources,
    versions and device kind. None when the submission has no kernels folder. The referee
    computes it before the athlete starts, from files, never from the submission's code."""
    kdir = Path(sub_dir) / "kernels"
    if not (kdir / "__init__.py").is_file():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in kdir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(kdir)).encode() + b"\0" + path.read_bytes() + b"\0")
    ops = getattr(load_workload_module(workload), "REFERENCE_OPS", {})
    for name in sorted(ops):
        h.update(name.encode() + Path(inspect.getsourcefile(ops[name].fn)).read_bytes())
    versions = records.package_versions()
    h.update(f"{workload}|{device.type}|{versions['torch']}|{versions['triton']}".encode())
    return h.hexdigest()[:24]


def parity_inputs(replaces: str, device: torch.device) -> tuple[list, bytes]:
    """The referee's side of a parity check: for each dtype and seed, seeded inputs, an
    upstream gradient and the reference op's outputs and gradients. Returns (cases, the
    inputs and upstream gradients serialized for the athlete)."""
    import io

    ref = reference_op(replaces)
    cases, sent = [], []
    for dtype, seed, rtol, atol, args, up, want in _reference_cases(ref, device):
        cases.append((dtype, seed, rtol, atol, want))
        sent.append(([_cpu(a) for a in _clone(args)], up.cpu()))
    buf = io.BytesIO()
    torch.save(sent, buf)
    return cases, buf.getvalue()


def _cpu(a):
    return a.detach().cpu().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a


def parity_compare(
    name: str, replaces: str, cases: list, got: list, device: torch.device
) -> list[ParityResult]:
    """Compare the athlete's outputs and gradients (``got``, one per case) with the
    reference's; one result per dtype."""
    by_dtype: dict[str, list] = {}
    if not isinstance(got, list) or len(got) != len(cases):
        raise KernelParityError(f"kernel {name}: the athlete returned no parity outputs")
    for (dtype, seed, rtol, atol, want), (sel, grads) in zip(cases, got, strict=True):
        worst, detail = by_dtype.setdefault(str(dtype), [0.0, ""])
        pairs = [("output", want[0], sel.to(device))] + [
            (f"grad[{i}]", x, y.to(device))
            for i, (x, y) in enumerate(zip(want[1], grads, strict=False))
        ]
        if len(grads) != len(want[1]):
            detail = detail or f"{len(grads)} gradients, want {len(want[1])}"
        for what, a, b in pairs:
            if a.shape != b.shape:
                detail = detail or f"{what} has shape {tuple(b.shape)}, want {tuple(a.shape)}"
                continue
            err = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
            if not torch.allclose(a, b.to(a.dtype), rtol=rtol, atol=atol) and not detail:
                detail = (
                    f"{what} differs (seed {seed}, max abs error {err:.3g}, "
                    f"rtol {rtol}, atol {atol})"
                )
            worst = max(worst, err)
        by_dtype[str(dtype)] = [worst, detail]
    return [
        ParityResult(name, replaces, dt, not detail, worst, detail)
        for dt, (worst, detail) in by_dtype.items()
    ]


def check_kernels(
    sub: Submission,
    device: torch.device,
    workload: str | None = None,
    cache_dir: Path | None = None,
) -> list[ParityResult]:
    """Parity of every kernel of ``sub`` available on ``device`` (for one workload, if given).

    A pass is remembered in ``cache_dir`` (the runner uses ``<runs>/.parity``) under a key of
    the kernel and reference sources, versions and device kind, so a sweep checks each kernel
    once per machine, not once per trial. Raises KernelParityError on the first failing kernel.
    """
    results = []
    for k in sub.kernels():
        if workload is not None and not k.replaces.startswith(f"{workload}."):
            continue
        marker = cache_dir / f"{_source_key(sub, k, device)}.json" if cache_dir else None
        if marker is not None and marker.is_file():
            results.extend(ParityResult(**r) for r in json.loads(marker.read_text())["results"])
            continue
        if not k.available(device):
            continue
        checked = parity(k, device)
        results.extend(checked)
        for r in checked:
            if not r.ok:
                raise KernelParityError(
                    f"kernel {k.name} ({k.replaces}, {r.dtype}) fails parity: {r.detail}"
                )
        if marker is not None:
            records.write_json(marker, {"results": [asdict(r) for r in checked]})
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.kernels SUBMISSION``: parity of every kernel, one line each.

    ``ttr check`` runs this in a fresh process with TRITON_INTERPRET=1 on machines without a
    GPU: Triton picks the interpreter when it first decorates a kernel, so the mode must be
    set before anything imports one.
    """
    from harness.discovery import load_submission

    sub = load_submission((argv or sys.argv[1:])[0])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ok = True
    for k in sub.kernels():
        if not k.available(device):
            print(f"  [ok] kernel {k.name}: not available on {device}; parity not run")
            continue
        for r in parity(k, device):
            ok &= r.ok
            detail = r.detail or f"max abs error {r.max_abs_err:.2g}"
            print(
                f"  [{'ok' if r.ok else 'FAIL'}] kernel {k.name} parity vs {r.replaces} "
                f"({r.dtype}, {device}): {detail}",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
