"""numba kernel of ``fast_decoder``: importing this module needs numba.

Layout: ``LANES`` frames are decoded together, one per SIMD lane (inter-frame SIMD, as in
AFF3CT's fixed-point decoders, here float32): every per-edge and per-variable array is
(rows, LANES), and every loop body ends in a ``for l in range(LANES)`` loop that LLVM
vectorizes. Branches are written as min/max/selects, so all lanes take the same path. The frames
are cut into contiguous chunks, spread over numba's threads (``prange``); within a chunk a lane
that finishes its frame (all L iterations, or a codeword with ``early_stop``) is refilled with
the chunk's next frame at once, so the lanes stay dense while frames stop at different
iterations. Each lane carries its own iteration counter and that iteration's weights.

One iteration is two passes over the graph:
- check pass (check-major): v->c = clip_20(vtot - c->v) once per edge, kept in a small buffer
  for the outgoing pass; min1, min2, sign product, and the parity of the hard decisions
  o^{t-1} (the UCN syndrome, which selects w_ucn) in the same sweep over the check's edges;
- variable pass: vsum = incoming c->v added in ascending check order, o^t = clip_20(llr + vsum),
  hard decisions as signs.
With ``early_stop`` a lane whose syndrome of o^{t-1} is all-satisfied (t-1 >= 1) is harvested
right after the check pass, before the variable pass overwrites o^{t-1}.

Exactness: every arithmetic step is a float32 operation on float32 operands (numba keeps
float32 op float32 in float32; the constants are float32) and ``fastmath=False``, so LLVM
neither reassociates nor contracts a multiply-add into an FMA: each result is rounded where
torch's eager ops round it, and the per-variable sums add in the reference's order. Lanes never
mix, so refilling changes no frame's arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# frames per group, chosen by measurement (README): 64 lanes (four AVX-512 vectors) beat 8, 16,
# 32 and 128 on WiMAX (576,432); the loop overhead and LLVM's runtime alias checks of a lane
# loop are paid once per 64 frames
LANES = 64
PAD = np.float32(1.0e4)  # workloads.ldpc.decoder.PAD: the min over a degree-1 check's others
ZERO = np.float32(0.0)
ONE = np.float32(1.0)
MINUS = np.float32(-1.0)


@njit(cache=True, fastmath=False, inline="always")
def _load(llr, f, l, x, vsum, c2v, app, hs, w0):
    """Lane l starts frame f: channel LLR in, messages zero, o^0 = w_ch[0] * llr."""
    n = x.shape[0]
    for v in range(n):
        xv = llr[f, v]
        x[v, l] = xv
        vsum[v, l] = ZERO
        a = w0 * xv
        app[v, l] = a
        hs[v, l] = MINUS if a < ZERO else ONE
    for e in range(c2v.shape[0]):
        c2v[e, l] = ZERO


@njit(cache=True, fastmath=False, inline="always")
def _idle(l, x, vsum, c2v, app, hs):
    """Lane l has no frame left: all zeros, so it computes zeros (no NaN) until the chunk ends."""
    for v in range(x.shape[0]):
        x[v, l] = ZERO
        vsum[v, l] = ZERO
        app[v, l] = ZERO
        hs[v, l] = ONE
    for e in range(c2v.shape[0]):
        c2v[e, l] = ZERO


@njit(cache=True, fastmath=False, inline="always")
def _store(f, l, t, app, hs, hard_out, app_out, iters_out):
    n = app.shape[0]
    iters_out[f] = t
    for v in range(n):
        app_out[f, v] = app[v, l]
        hard_out[f, v] = hs[v, l] < ZERO


@njit(cache=True, fastmath=False)
def _decode_chunk(
    llr, f0, f1, w_cn, w_ucn, w_ch, cn_ptr, cn_var, vn_ptr, vn_edge, clip, early_stop,
    hard_out, app_out, iters_out, lanes, dc_max,
):  # fmt: skip
    """Decode frames f0 .. f1-1 with ``lanes`` lanes, refilling lanes as frames finish."""
    n = llr.shape[1]
    m = cn_ptr.shape[0] - 1
    E = cn_var.shape[0]
    L = w_cn.shape[0]
    NL = lanes
    nclip = -clip
    x = np.zeros((n, NL), dtype=np.float32)  # channel LLR; an idle lane holds 0
    c2v = np.zeros((E, NL), dtype=np.float32)
    vtot = np.empty((n, NL), dtype=np.float32)
    vsum = np.zeros((n, NL), dtype=np.float32)
    app = np.zeros((n, NL), dtype=np.float32)
    hs = np.ones((n, NL), dtype=np.float32)  # hard decision as a sign: -1 means bit 1
    # per-lane state in one array (fewer arrays, fewer runtime alias checks in the lane loops):
    # rows 0-1 min1, min2; 2 sign product; 3 parity of o^{t-1}; 4 the selected weight;
    # 5 +1 while every check so far is satisfied; 6-8 this iteration's w_cn, w_ucn, w_ch;
    # rows S.. the v->c messages of the current check
    S = 9
    st = np.empty((S + dc_max, NL), dtype=np.float32)
    frame = np.full(NL, -1, dtype=np.int64)  # the frame in each lane; -1: idle
    tl = np.zeros(NL, dtype=np.int64)  # iterations done in each lane
    done = np.zeros(NL, dtype=np.uint8)
    w0 = w_ch[0]
    nxt = f0
    active = 0
    for l in range(NL):
        if nxt < f1:
            _load(llr, nxt, l, x, vsum, c2v, app, hs, w0)
            frame[l] = nxt
            nxt += 1
            active += 1
    while active > 0:
        for l in range(NL):
            k = min(tl[l], L - 1)
            st[6, l] = w_cn[k]
            st[7, l] = w_ucn[k]
            st[8, l] = w_ch[k]
            st[5, l] = ONE
        for v in range(n):
            for l in range(NL):
                vtot[v, l] = st[8, l] * x[v, l] + vsum[v, l]  # two float32 roundings, as torch
        # check pass: v->c once per edge, min1/min2/sign, and the UCN parity of o^{t-1}
        for c in range(m):
            lo = cn_ptr[c]
            hi = cn_ptr[c + 1]
            for l in range(NL):
                st[0, l] = PAD
                st[1, l] = PAD
                st[2, l] = ONE
                st[3, l] = ONE
            for e in range(lo, hi):
                v = cn_var[e]
                k = e - lo
                for l in range(NL):
                    y = min(max(vtot[v, l] - c2v[e, l], nclip), clip)
                    st[S + k, l] = y
                    a = abs(y)
                    st[2, l] *= MINUS if y < ZERO else ONE
                    st[1, l] = min(st[1, l], max(st[0, l], a))
                    st[0, l] = min(st[0, l], a)
                    st[3, l] *= hs[v, l]
            for l in range(NL):
                st[4, l] = st[7, l] if st[3, l] < ZERO else st[6, l]
                st[5, l] = min(st[5, l], st[3, l])
            for e in range(lo, hi):
                k = e - lo
                for l in range(NL):
                    y = st[S + k, l]
                    # the others' minimum: min2 at the minimum's slot (at a tie min2 = min1)
                    ext = st[1, l] if abs(y) == st[0, l] else st[0, l]
                    val = min(max(st[4, l] * ext, ZERO), clip)
                    s = -st[2, l] if y < ZERO else st[2, l]  # the others' sign product
                    c2v[e, l] = s * val
        if early_stop:  # o^{t-1} satisfies every check: the lane's frame stops there
            for l in range(NL):
                if frame[l] >= 0 and tl[l] >= 1 and st[5, l] > ZERO:
                    _store(frame[l], l, tl[l], app, hs, hard_out, app_out, iters_out)
                    done[l] = 1
        # variable pass
        for v in range(n):
            for l in range(NL):
                st[0, l] = ZERO
            for j in range(vn_ptr[v], vn_ptr[v + 1]):
                e = vn_edge[j]
                for l in range(NL):
                    st[0, l] += c2v[e, l]  # ascending check order, as the reference's sum
            for l in range(NL):
                s = st[0, l]
                vsum[v, l] = s
                a = min(max(x[v, l] + s, nclip), clip)
                app[v, l] = a
                hs[v, l] = MINUS if a < ZERO else ONE
        for l in range(NL):
            if frame[l] < 0:
                continue
            if done[l] == 0:
                tl[l] += 1
                if tl[l] == L:
                    _store(frame[l], l, L, app, hs, hard_out, app_out, iters_out)
                    done[l] = 1
            if done[l]:
                done[l] = 0
                tl[l] = 0
                if nxt < f1:
                    _load(llr, nxt, l, x, vsum, c2v, app, hs, w0)
                    frame[l] = nxt
                    nxt += 1
                else:
                    frame[l] = -1
                    active -= 1
                    _idle(l, x, vsum, c2v, app, hs)


@njit(parallel=True, cache=True, fastmath=False)
def decode(
    llr, w_cn, w_ucn, w_ch, cn_ptr, cn_var, vn_ptr, vn_edge, clip, early_stop,
    hard_out, app_out, iters_out, lanes, dc_max, chunks,
):  # fmt: skip
    """Frames (B, n) float32 -> hard_out (B, n) uint8, app_out (B, n) float32 (APP LLR of the
    last iteration run), iters_out (B,) iterations run. With ``early_stop`` a frame stops at the
    first iteration t >= 1 whose hard decision satisfies every check (its outputs are those of
    iteration t); without it every frame runs all L iterations, as the reference does.
    ``chunks`` contiguous ranges of frames go to numba's threads; ``lanes`` frames are decoded
    together within a chunk (a runtime value, so that LLVM's loop vectorizer, with its runtime
    alias checks, handles the lane loops)."""
    B = llr.shape[0]
    for i in prange(chunks):
        f0 = B * i // chunks
        f1 = B * (i + 1) // chunks
        if f1 > f0:
            _decode_chunk(
                llr, f0, f1, w_cn, w_ucn, w_ch, cn_ptr, cn_var, vn_ptr, vn_edge, clip,
                early_stop, hard_out, app_out, iters_out, lanes, dc_max,
            )  # fmt: skip


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()
