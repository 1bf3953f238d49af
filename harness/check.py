"""``ttr check SUBMISSION``: contract, search space, kernel parity and two smoke steps through
the same referee and athlete as every trial (``harness.runner``).

Prints one line per check and returns False when any fails, with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from harness import discovery
from harness.api import ContractError
from harness.kernels import KernelParityError, parity
from harness.search_space import SearchSpace, SearchSpaceError


class _Report:
    def __init__(self) -> None:
        self.ok = True

    def line(self, ok: bool, what: str, detail: str = "") -> None:
        self.ok &= ok
        print(f"  [{'ok' if ok else 'FAIL'}] {what}{': ' + detail if detail else ''}", flush=True)

    def guard(self, what: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn()
        except (ContractError, SearchSpaceError, KernelParityError) as e:
            self.line(False, what, str(e))
            return False
        except Exception as e:
            self.line(False, what, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
            return False
        self.line(True, what, detail or "")
        return True


def check_submission(name: str, smoke_step: bool = True) -> bool:
    """Run every check. Without a GPU, kernel parity runs in a fresh process with
    TRITON_INTERPRET=1 (Triton's CPU interpreter), chosen before any kernel is imported."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rep = _Report()
    print(f"ttr check {name}")
    holder: dict = {}

    def load() -> str:
        holder["sub"] = sub = discovery.load_submission(name)
        return f"{sub.path} ({', '.join(discovery.REQUIRED_FUNCTIONS)} found)"

    if not rep.guard("contract: submission.py loads with the required functions", load):
        return False
    sub = holder["sub"]
    rep.guard(
        "README.md present",
        lambda: (
            None
            if (sub.path / "README.md").is_file()
            else _raise(
                f"{sub.path}/README.md is missing: say what the method is and cite its paper"
            )
        ),
    )
    rep.guard("search_space.json valid", lambda: _space(sub.search_space_path))
    known = discovery.workload_names()
    targets = [w for w in known if sub.supports(w)]
    unknown = sorted(set(sub.workloads or ()) - set(known))
    rep.line(
        not unknown,
        "declared workloads exist",
        f"unknown {unknown}; known {known}" if unknown else ", ".join(targets),
    )
    if _kernels(rep, sub):
        if device.type == "cuda":
            _parity_here(rep, sub, device)
        else:
            _parity_interpreted(rep, sub)
    if smoke_step:
        for w in targets:
            rep.guard(f"{SMOKE_STEPS} steps on {w}/smoke", lambda w=w: _smoke_steps(sub, w, device))
    print("ttr check: " + ("passed" if rep.ok else "FAILED"))
    return rep.ok


def _raise(msg: str) -> None:
    raise ContractError(msg)


def _space(path) -> str:
    space = SearchSpace.load(path)
    return f"{space.dim} hyperparameters; defaults {space.defaults()}"


def _kernels(rep: _Report, sub: discovery.Submission) -> list:
    holder: dict = {"k": []}

    def load() -> str:
        holder["k"] = sub.kernels()
        return ", ".join(f"{k.name} -> {k.replaces}" for k in holder["k"]) or "none"

    rep.guard("kernels/ declares its kernels", load)
    return holder["k"]


def _parity_here(rep: _Report, sub: discovery.Submission, device: torch.device) -> None:
    for k in sub.kernels():
        if not k.available(device):
            rep.line(True, f"kernel {k.name}", f"not available on {device}; parity not run")
            continue
        for r in parity(k, device):
            detail = r.detail or f"max abs error {r.max_abs_err:.2g}"
            rep.line(r.ok, f"kernel {k.name} parity vs {r.replaces} ({r.dtype}, {device})", detail)


def _parity_interpreted(rep: _Report, sub: discovery.Submission) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    cmd = [sys.executable, "-m", "harness.kernels", str(sub.path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=discovery.repo_root())
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    for ln in lines:
        print(ln, flush=True)
    if done.returncode != 0:
        rep.ok = False
        if not lines:  # it died before reporting: show why, briefly
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            rep.line(False, "kernel parity (interpreted)", tail[0])


SMOKE_STEPS = 2  # at least two: an update that forgets `return state` fails at the first
SMOKE_WATCHDOG_S = 120.0  # a step that hangs ends the check, not the terminal session


def _smoke_steps(sub: discovery.Submission, workload: str, device: torch.device) -> str:
    """SMOKE_STEPS steps of the smoke variant through the real protocol (a referee here, the
    submission in an athlete process), bounded by steps, not seconds; records in a temporary
    folder, removed after."""
    from harness.runner import RunConfig, run_trial

    with tempfile.TemporaryDirectory(prefix="ttr-check-") as runs:
        cfg = RunConfig(
            workload=workload,
            submission=str(sub.path),
            variant="smoke",
            runs=Path(runs),
            device=str(device),
            budget_s=1e9,
            eval_every_s=1e9,
            final_test_eval=False,
            checkpoint=False,
            adhoc=True,
            max_steps=SMOKE_STEPS,
            watchdog_s=SMOKE_WATCHDOG_S,
        )
        res = run_trial(cfg)
    if res.status == "failed":
        raise ContractError(res.reason)
    return f"{res.summary['steps']} steps through the referee and an athlete, then an evaluation"
