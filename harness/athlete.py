"""The athlete: the child process that runs a submission's functions for the referee.

Started by the referee (``harness.runner``) as ``python -m harness.athlete CONN_FD STEPS_FD``
in a private temporary working directory, in its own session, as an unprivileged user when
the referee is root. It never sees the records tree, the evaluation splits or the evaluator.

Protocol (messages are a JSON header, ``send_bytes``, then the raw byte payloads it names; the
referee never unpickles anything the athlete sends: model states are read with
``torch.load(weights_only=True)``, checkpoints are stored as opaque bytes):

    referee -> athlete   setup {...} [+ checkpoint bytes]
    athlete -> referee   ready {kernels, affinity, threads} | failed {reason}
    referee -> athlete   parity {kernel, n} + inputs bytes      (zero or more)
    athlete -> referee   parity {} + outputs bytes | failed
    referee -> athlete   go {train_time_s, evals, until_step}    (the clock starts)
    athlete:             init (first go of a fresh trial), then steps; after every step a
                         non-blocking poll for a pause; the step count goes to shared memory
    referee -> athlete   pause {checkpoint}
    athlete -> referee   boundary {step, done, loss, rows} + model bytes [+ checkpoint bytes]
                         (the referee stops the clock on receipt, then SIGSTOPs the athlete)
    referee -> athlete   go ... | stop
"""

from __future__ import annotations

import ctypes
import importlib
import inspect
import io
import json
import mmap
import signal
import sys
import time
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from types import MappingProxyType
from typing import Any

_now = time.perf_counter  # bound before any submission code runs: a patch cannot reach it

import torch  # noqa: E402

from harness import checkpoint, discovery, pinning  # noqa: E402
from harness.api import ContractError, TrainingComplete  # noqa: E402
from harness.facade import TrainingFacade  # noqa: E402


class Failed(Exception):
    """The submission's fault; the message is the record's reason."""


def _die_with_parent() -> None:
    """SIGKILL this process when the referee dies (even while stopped by SIGSTOP)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _warm_up() -> None:
    """torch's own lazy imports (the first optimizer pulls in torch._dynamo: about a second),
    paid off the clock as the in-process runner's warm process did: a cold process must not
    charge a submission for the harness's start-up."""
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()


def send(conn: Connection, header: dict[str, Any], *payloads: bytes) -> None:
    conn.send_bytes(json.dumps({**header, "payloads": len(payloads)}).encode())
    for p in payloads:
        conn.send_bytes(p)


def recv(conn: Connection) -> tuple[dict[str, Any], list[bytes]]:
    header = json.loads(conn.recv_bytes())
    return header, [conn.recv_bytes() for _ in range(int(header.get("payloads", 0)))]


def to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class Athlete:
    def __init__(self, conn: Connection, steps_fd: int | None):
        self.conn = conn
        self.step = 0
        self.counter = None
        if steps_fd is not None:
            self._mm = mmap.mmap(steps_fd, 8)
            self.counter = memoryview(self._mm).cast("q")

    # -- setup (off the clock) -----------------------------------------------------------
    def prepare(self, setup: dict[str, Any], resume: bytes | None) -> None:
        from harness.runner import derive_seed, make_generator

        self.setup = setup
        cores = setup.get("cores")
        if cores:  # pinned by the referee already (inherited, and by pid): threads to match
            pinning.set_threads(len(cores))
        self.device = device = torch.device(setup["device"])
        seed = int(setup["seed"])
        torch.manual_seed(derive_seed(seed, "global"))
        spec = discovery.get_spec(setup["workload"], setup["variant"])
        self.workload = discovery.build_workload(spec, device)
        self.facade = TrainingFacade(self.workload)
        self.model = self.workload.init_model(make_generator(seed, "init", device))
        self.hparams = MappingProxyType(dict(setup["hparams"]))
        self.rng = make_generator(seed, "update", device)
        self.data_rng = make_generator(seed, "data", device)
        _warm_up()
        self.module = discovery.import_submission_module(
            Path(setup["submission_dir"]), Path(setup["submission_origin"])
        )
        self.kernels = self._kernels(Path(setup["submission_dir"]))
        self.state: Any = None
        self.resumed = resume is not None
        if resume is not None:
            ckpt = torch.load(io.BytesIO(resume), map_location=device, weights_only=False)
            self.model, self.state, self.step = ckpt["model"], ckpt["state"], ckpt["step"]
            checkpoint.restore_generators(self._generators(), ckpt["rng"])

    def _kernels(self, folder: Path) -> list:
        if not (folder / "kernels" / "__init__.py").is_file():
            return []
        mod = importlib.import_module(f"{self.module.__package__}.kernels")
        from harness.api import Kernel

        kernels = getattr(mod, "KERNELS", None)
        if not isinstance(kernels, (list, tuple)) or not all(
            isinstance(k, Kernel) for k in kernels
        ):
            raise ContractError(f"{folder}/kernels/__init__.py must define KERNELS: list[Kernel]")
        return list(kernels)

    def kernel_list(self) -> list[dict[str, Any]]:
        return [
            {"name": k.name, "replaces": k.replaces, "available": bool(k.available(self.device))}
            for k in self.kernels
        ]

    def parity(self, name: str, inputs: bytes) -> bytes:
        """The kernel's outputs and input gradients on the referee's inputs."""
        from harness.kernels import _outputs_and_grads, reference_op

        kernel = next(k for k in self.kernels if k.name == name)
        ref = reference_op(kernel.replaces)
        out = []
        for args, upstream in torch.load(io.BytesIO(inputs), weights_only=True):
            args = tuple(args)
            try:
                sel, grads = _outputs_and_grads(kernel.fn, args, ref, upstream)
            except Exception as e:
                raise Failed(f"kernel {name} raised in parity: {type(e).__name__}: {e}") from e
            out.append((sel.cpu(), [g.cpu() for g in grads]))
        return to_bytes(out)

    def _generators(self) -> dict[str, torch.Generator]:
        return {"update": self.rng, "data": self.data_rng}

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.module, name)(*args, **kwargs)
        except (TrainingComplete, torch.OutOfMemoryError):
            raise
        except Exception as e:
            traceback.print_exc()
            raise Failed(f"{name} raised at step {self.step}: {type(e).__name__}: {e}") from e

    # -- training (on the clock whenever the referee has not stopped this process) ----------
    def train(self, go: dict[str, Any]) -> None:
        mod, facade, conn = self.module, self.facade, self.conn
        if hasattr(mod, "get_batch_size"):
            raw = self._call("get_batch_size", facade)
            try:
                batch_size = int(raw)
                ok = batch_size > 0 and batch_size == raw
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise Failed(f"get_batch_size returned {raw!r}; it must return a positive integer")
        else:
            batch_size = int(self.workload.spec.batch_size_hint)
        if not self.resumed:
            self.state = self._call("init", facade, self.model, self.hparams, self.rng)
        streams = self.workload.train_streams(batch_size, self.data_rng)
        train = streams["train"]
        select = getattr(mod, "data_selection", None)
        update = mod.update
        wants_ts = "train_state" in inspect.signature(update).parameters
        every = int(self.setup["steps_every"])
        train_state: dict[str, Any] = {"budget_s": float(self.setup["budget_s"])}
        extra = {"train_state": MappingProxyType(train_state)} if wants_ts else {}
        counter, model, hp, rng = self.counter, self.model, self.hparams, self.rng
        while True:  # one segment per go
            base, t_go = float(go["train_time_s"]), _now()
            until = go.get("until_step")
            train_state.update(
                train_time_s=base,
                step=self.step,
                evals=tuple(MappingProxyType(r) for r in go.get("evals", ())),
            )
            rows: list[tuple[int, float, Any, Any]] = []
            done, pause = False, None
            while True:
                step = self.step
                phase = "data_selection"
                try:
                    batch = (
                        select(facade, streams, self.state, step, rng) if select else next(train)
                    )
                    phase = "update"
                    new = update(facade, model, self.state, batch, hp, step, rng, **extra)
                except TrainingComplete:
                    done, new = True, self.state
                except torch.OutOfMemoryError as e:
                    traceback.print_exc()
                    raise Failed(f"out of memory at step {step}: {str(e).splitlines()[0]}") from e
                except Exception as e:
                    traceback.print_exc()
                    raise Failed(f"{phase} raised at step {step}: {type(e).__name__}: {e}") from e
                if new is None and self.state is not None:
                    raise Failed(
                        f"update returned None at step {step} instead of the state (the state "
                        f"was a {type(self.state).__name__}): does update end with `return state`?"
                    )
                self.state = new
                self.step = step = step + 1
                if counter is not None:
                    counter[0] = step
                t = base + (_now() - t_go)
                train_state["train_time_s"], train_state["step"] = t, step
                if step % every == 0:
                    if isinstance(new, Mapping):
                        loss = new.get("loss")
                        if isinstance(loss, torch.Tensor) and loss.requires_grad:
                            loss = loss.detach()
                        rows.append((step, t - base, loss, new.get("lr")))
                    else:
                        rows.append((step, t - base, None, None))
                if conn.poll():
                    pause, _ = recv(conn)
                    if pause.get("type") == "stop":
                        return
                if pause is not None or done or (until is not None and step >= until):
                    break
            self.boundary(rows, done, bool(pause and pause.get("checkpoint")))
            go, _ = recv(conn)
            if go.get("type") != "go":
                return

    def boundary(self, rows: list, done: bool, want_checkpoint: bool) -> None:
        from harness.runner import _floats

        self.workload.synchronize()
        model = self.model
        if hasattr(self.module, "prepare_for_eval"):
            model = self._call("prepare_for_eval", self.facade, self.model, self.state)
            self.workload.synchronize()
        raw = self.state.get("loss") if isinstance(self.state, Mapping) else None
        try:
            loss = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            loss = None
        losses, lrs = _floats([r[2] for r in rows]), _floats([r[3] for r in rows])
        out_rows = [
            [r[0], r[1], a, b] for r, a, b in zip(rows, losses, lrs, strict=True)
        ]  # step, seconds since go (this process's view: steps.csv only), loss, lr
        try:
            sd = {k: v.detach() for k, v in model.state_dict().items()}
        except Exception as e:
            raise Failed(f"prepare_for_eval returned no model: {type(e).__name__}: {e}") from e
        payloads = [to_bytes(sd)]
        header: dict[str, Any] = {
            "type": "boundary",
            "step": self.step,
            "done": done,
            "loss": loss if loss is None or loss == loss else "nan",
            "rows": out_rows,
            "checkpoint_error": None,
        }
        if want_checkpoint:
            try:
                payloads.append(
                    to_bytes(
                        {
                            "model": self.model,
                            "state": self.state,
                            "step": self.step,
                            "rng": checkpoint.generator_states(self._generators()),
                        }
                    )
                )
            except Exception as e:  # e.g. a lambda in the state: no checkpoint, trial goes on
                header["checkpoint_error"] = f"{type(e).__name__}: {e}"
        send(self.conn, header, *payloads)


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    argv = sys.argv[1:] if argv is None else argv
    conn = Connection(int(argv[0]))
    athlete = Athlete(conn, int(argv[1]) if len(argv) > 1 else None)
    try:
        setup, payloads = recv(conn)
        try:
            athlete.prepare(setup, payloads[0] if payloads else None)
            kernels = athlete.kernel_list()
        except (ContractError, Failed) as e:
            send(conn, {"type": "failed", "reason": str(e), "step": athlete.step})
            return 1
        except Exception as e:
            traceback.print_exc()
            reason = f"setup failed: {type(e).__name__}: {e}"
            send(conn, {"type": "failed", "reason": reason, "step": athlete.step})
            return 1
        ready = {"type": "ready", "kernels": kernels, "step": athlete.step}
        # what this process runs on, read back after the submission's import (the referee
        # checks it against the cores it pinned)
        ready |= {"affinity": pinning.available(), "threads": pinning.threads()}
        send(conn, ready)
        while True:
            msg, payloads = recv(conn)
            if msg["type"] == "parity":
                send(conn, {"type": "parity"}, athlete.parity(msg["kernel"], payloads[0]))
            elif msg["type"] == "go":
                athlete.train(msg)
                return 0
            else:
                return 0
    except Failed as e:
        send(conn, {"type": "failed", "reason": str(e), "step": athlete.step})
        return 1
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return 0  # the referee has gone: nothing to report to


if __name__ == "__main__":
    sys.exit(main())
