"""GF(2) rank and the systematic encoder."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch

from workloads.ldpc.codes import available_codes, load_code
from workloads.ldpc.gf2 import SystematicEncoder, gf2_rank, rref

_ENCODERS: dict[str, SystematicEncoder] = {}


def encoder_for(name: str) -> SystematicEncoder:
    if name not in _ENCODERS:
        _ENCODERS[name] = SystematicEncoder(load_code(name).H())
    return _ENCODERS[name]


def syndrome(H: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(B, m) H c mod 2 for (B, n) codewords (exact float32 matmul)."""
    return torch.remainder(c.to(torch.float32) @ H.to(torch.float32).T, 2.0)


def random_bits(shape, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, shape, generator=g)


def slow_rank(a: np.ndarray) -> int:
    """Textbook GF(2) elimination, one element at a time."""
    a = a.copy() % 2
    r = 0
    for c in range(a.shape[1]):
        piv = next((i for i in range(r, a.shape[0]) if a[i, c]), None)
        if piv is None:
            continue
        a[[r, piv]] = a[[piv, r]]
        for i in range(a.shape[0]):
            if i != r and a[i, c]:
                a[i] ^= a[r]
        r += 1
    return r


@pytest.mark.parametrize("name", available_codes())
def test_encoder_on_every_code(name):
    code = load_code(name)
    H = code.H()
    enc = encoder_for(name)
    assert (enc.n, enc.k, enc.rank) == (code.n, code.k, code.n - code.k)
    assert enc.rank + enc.k == enc.n
    info, par = enc.info_positions, enc.parity_positions
    assert info.dtype == par.dtype == torch.long
    assert info.shape == (enc.k,) and par.shape == (enc.rank,)
    assert sorted(torch.cat([info, par]).tolist()) == list(range(enc.n))

    u = random_bits((64, enc.k), seed=1)
    c = enc.encode(u)
    assert c.shape == (64, enc.n) and c.dtype == u.dtype
    assert ((c == 0) | (c == 1)).all()
    assert not syndrome(H, c).any()  # H c = 0 in the original column order
    assert torch.equal(c[:, info], u)  # systematic
    assert c.sum(1).min() > 0  # not the all-zero word
    # Linearity: c(a xor b) = c(a) xor c(b).
    v = random_bits((64, enc.k), seed=2)
    assert torch.equal(enc.encode(u ^ v), enc.encode(u) ^ enc.encode(v))
    # The generator rows are independent codewords.
    G = enc.generator
    assert G.shape == (enc.k, enc.n) and not syndrome(H, G).any()
    assert gf2_rank(G) == enc.k


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool]
)
def test_encode_keeps_dtype(dtype):
    enc = encoder_for("mackay_96_48")
    u = random_bits((8, enc.k), seed=3)
    ref = enc.encode(u)
    c = enc.encode(u.to(dtype))
    assert c.dtype == dtype
    assert torch.equal(c.to(torch.int64), ref)


def test_encode_rejects_wrong_length():
    enc = encoder_for("mackay_96_48")
    with pytest.raises(ValueError, match="48"):
        enc.encode(torch.zeros(2, 47))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_encode_on_cuda():
    code = load_code("wimax_576_432")
    enc = encoder_for(code.name)
    u = random_bits((64, enc.k), seed=4)
    for dtype in (torch.float32, torch.int64):
        c = enc.encode(u.to("cuda", dtype))
        assert c.device.type == "cuda" and c.dtype == dtype
        assert torch.equal(c.cpu().to(torch.int64), enc.encode(u))


def test_hamming_7_4_exhaustive():
    H = np.array([[1, 0, 1, 0, 1, 0, 1], [0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]], np.uint8)
    assert gf2_rank(H) == 3
    enc = SystematicEncoder(H)  # numpy input
    assert (enc.n, enc.k, enc.rank) == (7, 4, 3)
    assert enc.parity_positions.tolist() == [0, 1, 3]  # pivot columns of rref(H)
    assert enc.info_positions.tolist() == [2, 4, 5, 6]
    msgs = torch.tensor(list(itertools.product([0, 1], repeat=4)), dtype=torch.float32)
    cws = {tuple(c) for c in enc.encode(msgs).to(torch.int64).tolist()}
    words = itertools.product([0, 1], repeat=7)
    nullspace = {w for w in words if not (H @ np.array(w) % 2).any()}
    assert len(cws) == 16 and cws == nullspace


def test_rank_tiny_examples():
    assert gf2_rank(torch.tensor([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=torch.uint8)) == 2
    assert gf2_rank(np.eye(5, dtype=np.uint8)) == 5
    assert gf2_rank(np.zeros((3, 4), dtype=np.uint8)) == 0
    assert gf2_rank([[1, 1], [1, 1]]) == 1
    with pytest.raises(ValueError):
        gf2_rank(np.array([[0, 2]]))


def test_rref_against_slow_elimination():
    rng = np.random.default_rng(0)
    for trial in range(40):
        m, n = rng.integers(1, 20, size=2)
        a = (rng.random((m, n)) < rng.choice([0.1, 0.3, 0.5])).astype(np.uint8)
        if trial % 4 == 0 and m > 2:
            a[-1] = a[0] ^ a[1]  # a dependent row
        R, piv = rref(a)
        assert R.shape == (len(piv), n) and len(piv) == slow_rank(a)
        assert (R[np.arange(len(piv)), piv]).all()
        assert (R[:, piv].sum(0) == 1).all()  # pivot columns are unit vectors
        assert all(not R[i, : piv[i]].any() for i in range(len(piv)))
        # Same row space: every row of H is a combination of R's rows, and rank is unchanged.
        assert slow_rank(np.vstack([R.astype(np.uint8), a])) == len(piv)


def test_rref_is_fast_on_the_largest_code():
    H = load_code("mackay_1008_504").H()
    t = time.perf_counter()
    SystematicEncoder(H)
    assert time.perf_counter() - t < 1.0
