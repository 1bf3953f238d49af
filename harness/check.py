"""``ttr check SUBMISSION``: contract, search space, kernel parity and one smoke step.

Prints one line per check and returns False when any fails, with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Callable

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
            rep.guard(f"one step on {w}/smoke", lambda w=w: _one_step(sub, w, device))
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


def _one_step(sub: discovery.Submission, workload: str, device: torch.device) -> str:
    """init and one update on the smoke variant, untimed: catches contract slips early."""
    from harness.runner import make_generator

    spec = discovery.get_spec(workload, "smoke")
    wl = discovery.build_workload(spec, device)
    model = wl.init_model(make_generator(0, "init", device))
    hp = SearchSpace.load(sub.search_space_path).defaults()
    rng = make_generator(0, "update", device)
    state = sub.fn("init")(wl, model, hp, rng)
    streams = wl.train_streams(sub.batch_size(wl), make_generator(0, "data", device))
    select = sub.fn("data_selection")
    batch = select(wl, streams, state, 0, rng) if select else next(streams["train"])
    extra = (
        {"train_state": {"train_time_s": 0.0, "budget_s": 1.0, "step": 0, "evals": ()}}
        if sub.update_takes_train_state()
        else {}
    )
    sub.fn("update")(wl, model, state, batch, hp, 0, rng, **extra)
    return "init and update ran"
