"""numba kernel of ``fast_decoder``: importing this module needs numba.

Layout: ``LANES`` frames are decoded together, one per SIMD lane (inter-frame SIMD, as in
AFF3CT's fixed-point decoders, here float32): every per-edge and per-variable array is
(rows, LANES), and every loop body ends in a ``for l in range(LANES)`` loop of a compile-time
trip count that LLVM vectorizes. Branches are written as min/max/selects, so all lanes take
the same path. Groups of frames are spread over numba's threads (``prange``).

Exactness: every arithmetic step is a float32 operation on float32 operands (numba keeps
float32 op float32 in float32; the constants are float32) and ``fastmath=False``, so LLVM
neither reassociates nor contracts a multiply-add into an FMA: each result is rounded where
torch's eager ops round it, and the per-variable sums add in the reference's order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LANES = 16  # frames per group: one 64-byte float32 vector (AVX-512), two AVX2 vectors
PAD = np.float32(1.0e4)  # workloads.ldpc.decoder.PAD: the min over a degree-1 check's others
ZERO = np.float32(0.0)
ONE = np.float32(1.0)
MINUS = np.float32(-1.0)


@njit(parallel=True, cache=True, fastmath=False)
def decode(
    llr, w_cn, w_ucn, w_ch, cn_ptr, cn_var, vn_ptr, vn_edge, clip, early_stop,
    hard_out, app_out, iters_out, lanes,
):  # fmt: skip
    """Frames (B, n) float32 -> hard_out (B, n) uint8, app_out (B, n) float32 (APP LLR of the
    last iteration run), iters_out (B,) iterations run. With ``early_stop`` a frame stops at the
    first iteration t >= 1 whose hard decision satisfies every check (its outputs are those of
    iteration t); without it every frame runs all L iterations, as the reference does.
    ``lanes`` frames are decoded together (a runtime value, so that LLVM's loop vectorizer, with
    its runtime alias checks, handles the lane loops)."""
    B, n = llr.shape
    m = cn_ptr.shape[0] - 1
    E = cn_var.shape[0]
    L = w_cn.shape[0]
    NL = lanes
    nclip = -clip
    groups = (B + NL - 1) // NL
    for g in prange(groups):
        b0 = g * NL
        nb = min(NL, B - b0)
        x = np.zeros((n, NL), dtype=np.float32)  # channel LLR, lanes past nb stay 0
        c2v = np.zeros((E, NL), dtype=np.float32)
        vtot = np.empty((n, NL), dtype=np.float32)
        vsum = np.zeros((n, NL), dtype=np.float32)
        app = np.empty((n, NL), dtype=np.float32)
        hs = np.empty((n, NL), dtype=np.float32)  # hard decision as a sign: -1 means bit 1
        unsat = np.empty((m, NL), dtype=np.float32)  # -1: odd parity (unsatisfied check)
        stopped = np.zeros(NL, dtype=np.uint8)
        st = np.empty((4, NL), dtype=np.float32)  # per-check lane state: min1, min2, sign, w
        for i in range(nb):
            for v in range(n):
                x[v, i] = llr[b0 + i, v]
        w0 = w_ch[0]
        for v in range(n):
            for l in range(NL):
                a = w0 * x[v, l]
                app[v, l] = a
                hs[v, l] = MINUS if a < ZERO else ONE
        for t in range(L + 1):
            # UCN flags from the hard decisions of o^{t-1}; a lane with none is a codeword
            for c in range(m):
                for l in range(NL):
                    st[2, l] = ONE
                for e in range(cn_ptr[c], cn_ptr[c + 1]):
                    v = cn_var[e]
                    for l in range(NL):
                        st[2, l] *= hs[v, l]
                for l in range(NL):
                    unsat[c, l] = st[2, l]
            if early_stop and t > 0:
                stop = True
                for i in range(nb):
                    if stopped[i] == 0:
                        ok = True
                        for c in range(m):
                            if unsat[c, i] < ZERO:
                                ok = False
                                break
                        if ok:
                            stopped[i] = 1
                            iters_out[b0 + i] = t
                            for v in range(n):
                                app_out[b0 + i, v] = app[v, i]
                                hard_out[b0 + i, v] = hs[v, i] < ZERO
                        else:
                            stop = False
                if stop:
                    break
            if t == L:
                break
            wc = w_cn[t]
            wu = w_ucn[t]
            wch = w_ch[t]
            for v in range(n):
                for l in range(NL):
                    vtot[v, l] = wch * x[v, l] + vsum[v, l]  # two float32 roundings, as torch
            for c in range(m):
                lo = cn_ptr[c]
                hi = cn_ptr[c + 1]
                for l in range(NL):
                    st[0, l] = PAD
                    st[1, l] = PAD
                    st[2, l] = ONE
                    st[3, l] = wu if unsat[c, l] < ZERO else wc
                for e in range(lo, hi):
                    v = cn_var[e]
                    for l in range(NL):
                        y = min(max(vtot[v, l] - c2v[e, l], nclip), clip)
                        a = abs(y)
                        st[2, l] *= MINUS if y < ZERO else ONE
                        st[1, l] = min(st[1, l], max(st[0, l], a))
                        st[0, l] = min(st[0, l], a)
                for e in range(lo, hi):
                    v = cn_var[e]
                    for l in range(NL):
                        y = min(max(vtot[v, l] - c2v[e, l], nclip), clip)  # v->c, recomputed
                        # the others' minimum: min2 at the minimum's slot (at a tie min2 = min1)
                        ext = st[1, l] if abs(y) == st[0, l] else st[0, l]
                        val = min(max(st[3, l] * ext, ZERO), clip)
                        sgn = -st[2, l] if y < ZERO else st[2, l]  # the others' sign product
                        c2v[e, l] = sgn * val
            for v in range(n):
                for l in range(NL):
                    st[0, l] = ZERO
                for j in range(vn_ptr[v], vn_ptr[v + 1]):
                    e = vn_edge[j]
                    for l in range(NL):
                        st[0, l] += c2v[e, l]  # ascending check order, as the reference's sum
                for l in range(NL):
                    vsum[v, l] = st[0, l]
                    a = min(max(x[v, l] + st[0, l], nclip), clip)
                    app[v, l] = a
                    hs[v, l] = MINUS if a < ZERO else ONE
        for i in range(nb):
            if not stopped[i]:  # ran all L iterations
                iters_out[b0 + i] = L
                for v in range(n):
                    app_out[b0 + i, v] = app[v, i]
                    hard_out[b0 + i, v] = hs[v, i] < ZERO
