"""The evaluation's fast decoder: the reference flooding neural min-sum, compiled with numba.

It computes what ``NeuralMinSum`` computes with the same weights, frame by frame on a CPU:
frames are spread over numba's threads, each frame decoded by scalar float32 loops over the
edges of its Tanner graph (check-major CSR for the check-node update, variable-major lists for
the variable-node sums), with the reference's operations in the reference's order:

- the UCN syndrome of iteration t from the hard decisions of o^{t-1} (of w_ch[0] * llr at t = 1);
- v->c = clip_20(w_ch[t] * llr + vsum - c->v), each step rounded to float32 as torch rounds it;
- c->v = sgn * clip(w * min_{others} |v->c|, 0, 20), w = w_ucn[t] on an unsatisfied check;
- vsum = the c->v messages of a variable added one by one in ascending check order (the
  reference's gather-then-sum order; ``tests/ldpc/test_fast_decoder.py`` checks the APP LLRs
  bit for bit), o^t = clip_20(llr + vsum).

So at a fixed iteration count (``early_stop=False``, the exact path) the hard decisions, and
the APP LLRs, are bit-identical to the reference's. ``early_stop=True`` stops a frame at the
first iteration t >= 1 whose hard decision satisfies every check and returns that word (and the
APP LLRs of iteration t); ``reference_early_stop`` does the same with the torch module, bit for
bit. **The evaluation uses early stopping** (``TTR_LDPC_EXACT=1`` restores the exact path): it
runs 4-5 instead of 20 iterations on an average frame at the ldpc ``default`` point. It decides
differently from the exact path only on a frame that reaches a codeword at some t < L and is not
at that codeword after L iterations (min-sum can leave a codeword: it is no fixed point of the
message updates); such a frame counts as an error in one path and maybe not in the other. On
the fixed-seed frames of ``tests/ldpc/test_fast_decoder.py`` the two FERs are equal within each
other's 95% Clopper-Pearson interval at two Eb/N0 points, and every frame the exact path decodes
correctly and that reaches a codeword early is decoded to the same word (README, measured).

Backend choice: numba when it imports, else the reference torch decoder; set
``TTR_LDPC_DECODER=reference`` to force the reference (checks, timings), ``=numba`` to require
numba (an ImportError if it is missing). numba compiles on the first call of a process and
caches the machine code next to this file (``cache=True``): the first call of a fresh checkout
takes seconds, later processes load the cache in well under a second (README, measurements).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from workloads.ldpc.decoder import LLR_CLIP, NeuralMinSum, TannerGraph

ENV = "TTR_LDPC_DECODER"
EXACT_ENV = "TTR_LDPC_EXACT"
BACKENDS = ("auto", "numba", "reference")


def backend() -> str:
    """The decoder the evaluator uses: "numba" or "reference" (``TTR_LDPC_DECODER``)."""
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"{ENV}={choice!r}; valid: {', '.join(BACKENDS)}")
    if choice == "reference":
        return "reference"
    if _kernels() is None:
        if choice == "numba":
            raise ImportError(f"{ENV}=numba but numba does not import (pip install numba)")
        return "reference"
    return "numba"


@functools.cache
def _kernels():
    """The compiled kernels, or None without numba (imported lazily: numba is optional)."""
    try:
        from workloads.ldpc import _numba_min_sum
    except ImportError:
        return None
    return _numba_min_sum


@dataclass(frozen=True)
class CsrGraph:
    """A Tanner graph as int32 arrays: edges check-major (ascending variables within a check,
    the reference's slot order) and, per variable, its edges in ascending check order."""

    n: int
    m: int
    cn_ptr: np.ndarray  # (m + 1,) edges of check c: cn_ptr[c] .. cn_ptr[c + 1]
    cn_var: np.ndarray  # (E,) variable of each edge
    vn_ptr: np.ndarray  # (n + 1,) ... of variable v: vn_edge[vn_ptr[v] .. vn_ptr[v + 1]]
    vn_edge: np.ndarray  # (E,) edge ids, ascending (= ascending check) per variable

    @property
    def dc_max(self) -> int:
        return int(np.diff(self.cn_ptr).max()) if self.m else 0

    @classmethod
    def from_graph(cls, g: TannerGraph) -> CsrGraph:
        mask = g.cn_mask.cpu().numpy()
        cn_vars = g.cn_vars.cpu().numpy()
        deg = mask.sum(axis=1)
        cn_ptr = np.zeros(g.m + 1, dtype=np.int32)
        np.cumsum(deg, out=cn_ptr[1:])
        cn_var = cn_vars[mask].astype(np.int32)  # row-major: check-major, slot order
        order = np.argsort(cn_var, kind="stable")  # per variable, ascending edge id
        vn_ptr = np.zeros(g.n + 1, dtype=np.int32)
        np.cumsum(np.bincount(cn_var, minlength=g.n), out=vn_ptr[1:])
        return cls(g.n, g.m, cn_ptr, cn_var, vn_ptr, order.astype(np.int32))


def _chunks(frames: int, lanes: int) -> int:
    """Contiguous chunks of frames, one per numba thread (fewer when there are fewer lane
    groups): within a chunk finished lanes are refilled, so larger chunks keep the lanes dense
    longer; a chunk's tail (its lanes idle while its last frames finish, up to L iterations) is
    paid once per chunk (measured: 4 chunks per thread of a 2,000-frame call lost up to 40%)."""
    threads = _kernels().numba_threads()
    return max(1, min(threads, -(-frames // lanes)))


def _weights(model: torch.nn.Module, iterations: int) -> tuple[np.ndarray, ...]:
    out = []
    for name in ("w_cn", "w_ucn", "w_ch"):
        w = getattr(model, name).detach().to("cpu", torch.float32).contiguous().numpy()
        if w.shape != (iterations,):
            raise ValueError(f"{name} must have shape ({iterations},), got {w.shape}")
        out.append(w)
    return tuple(out)


def check_llr(llr: torch.Tensor, n: int, finite: bool = True) -> None:
    """One-line errors for inputs no decoder should see (``finite=False``: the caller checks
    finiteness itself)."""
    if not isinstance(llr, torch.Tensor) or llr.dim() != 2 or llr.shape[1] != n:
        shape = tuple(llr.shape) if isinstance(llr, torch.Tensor) else type(llr).__name__
        raise ValueError(f"llr must be a (B, {n}) tensor, got {shape}")
    if not llr.is_floating_point():
        raise ValueError(f"llr must be floating point, got {llr.dtype}")
    if finite and not bool(torch.isfinite(llr).all()):
        raise ValueError(NOT_FINITE)


NOT_FINITE = "llr holds NaN or infinite values"
NUMPY_FLOATS = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


class FastMinSum:
    """Decode with the weights of a ``NeuralMinSum`` (any module with w_cn, w_ucn, w_ch of
    shape (L,)); returns hard decisions, and optionally the APP LLRs and iterations run."""

    def __init__(
        self,
        graph: TannerGraph,
        model: torch.nn.Module,
        iterations: int,
        lanes: int | None = None,
    ):
        self.kernels = _kernels()
        if self.kernels is None:
            raise ImportError("FastMinSum needs numba (pip install numba)")
        self.lanes = self.kernels.LANES if lanes is None else int(lanes)
        if self.lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.csr = CsrGraph.from_graph(graph)
        self.iterations = iterations
        self.w_cn, self.w_ucn, self.w_ch = _weights(model, iterations)

    def decode(
        self, llr: torch.Tensor, early_stop: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, n) channel LLR -> hard decisions (B, n) uint8, APP LLR (B, n) float32 of the
        last iteration run, iterations run (B,) int32. Computed in float32 on the CPU."""
        c = self.csr
        check_llr(llr, c.n, finite=False)
        x = llr.detach().to("cpu", torch.float32).contiguous().numpy()
        # numpy, one thread: torch's isfinite on a (2000, 576) tensor is an intra-op parallel
        # op that waits tens of ms for a second thread when another process holds that core
        if not np.isfinite(x).all():
            raise ValueError(NOT_FINITE)
        B = x.shape[0]
        hard = np.empty((B, c.n), dtype=np.uint8)
        app = np.empty((B, c.n), dtype=np.float32)
        iters = np.empty(B, dtype=np.int32)
        if B:
            self.kernels.decode(
                x,
                self.w_cn,
                self.w_ucn,
                self.w_ch,
                c.cn_ptr,
                c.cn_var,
                c.vn_ptr,
                c.vn_edge,
                np.float32(LLR_CLIP),
                bool(early_stop),
                hard,
                app,
                iters,
                self.lanes,
                c.dc_max,
                _chunks(B, self.lanes),
            )
        return torch.from_numpy(hard), torch.from_numpy(app), torch.from_numpy(iters)


def early_stop() -> bool:
    """Whether the evaluation stops a frame at its first codeword: yes unless
    ``TTR_LDPC_EXACT=1`` (then every frame runs all L iterations, as the reference)."""
    choice = os.environ.get(EXACT_ENV, "0").strip()
    if choice not in ("0", "1", ""):
        raise ValueError(f"{EXACT_ENV}={choice!r}; valid: 0, 1")
    return choice != "1"


@torch.no_grad()
def reference_early_stop(model: NeuralMinSum, llr: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The torch reference with early stopping: per frame the hard decision of the first
    iteration t >= 1 that satisfies every check (of the last iteration if none does), and t.
    Runs the reference module iteration by iteration (its state carries over), so its decisions
    are the reference's; what ``FastMinSum.decode(early_stop=True)`` returns, bit for bit."""
    graph = model.graph
    B = llr.shape[0]
    hard = torch.zeros(B, graph.n, dtype=torch.bool, device=llr.device)
    iters = torch.full((B,), model.iterations, dtype=torch.int32, device=llr.device)
    running = torch.ones(B, dtype=torch.bool, device=llr.device)
    state = None
    for t in range(1, model.iterations + 1):
        outs, state = model(llr, state, until=t)
        h = outs[-1] < 0
        stop = running & ~graph.syndrome(h.to(llr.dtype)).any(1)
        if t == model.iterations:
            stop = running
        hard[stop] = h[stop]
        iters[stop] = t
        running &= ~stop
        if not bool(running.any()):
            break
    return hard, iters


def hard_decision_decoder(
    graph: TannerGraph, model: NeuralMinSum, iterations: int, stop_early: bool | None = None
):
    """The evaluator's decode function, (B, n) LLR -> (B, n) 0/1 in the LLR's dtype/device:
    the numba decoder when ``backend()`` says so, the reference module otherwise; both stop a
    frame at its first codeword when ``stop_early`` (default: ``early_stop()``), and give the
    same decisions either way."""
    stop_early = early_stop() if stop_early is None else stop_early
    if backend() == "numba":
        fast = FastMinSum(graph, model, iterations)

        def decode(llr: torch.Tensor) -> torch.Tensor:
            hard = fast.decode(llr, early_stop=stop_early)[0]
            if llr.dtype in NUMPY_FLOATS:  # numpy converts on one thread (see decode)
                return torch.from_numpy(hard.numpy().astype(NUMPY_FLOATS[llr.dtype])).to(llr.device)
            return hard.to(llr.device, llr.dtype)

        return decode

    def decode_reference(llr: torch.Tensor) -> torch.Tensor:
        check_llr(llr, graph.n)
        if stop_early:
            return reference_early_stop(model, llr)[0].to(llr.dtype)
        outs, _ = model(llr)
        return (outs[-1] < 0).to(llr.dtype)

    return decode_reference


__all__ = [
    "ENV",
    "EXACT_ENV",
    "CsrGraph",
    "FastMinSum",
    "backend",
    "check_llr",
    "early_stop",
    "hard_decision_decoder",
    "reference_early_stop",
]
