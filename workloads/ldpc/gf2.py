"""Linear algebra over GF(2): rank, reduced row echelon form and a systematic encoder.

Elimination runs on bit-packed numpy rows (``np.packbits``, 8 columns per byte), so a row XOR
is one vectorized operation over n/8 bytes; the (504, 1008) MacKay matrix takes a few ms.

Encoding keeps the ORIGINAL column order of H: the message bits go to the free (non-pivot)
columns of the reduced row echelon form of H, the parity bits to the pivot columns, and
``H @ c == 0 (mod 2)`` holds for every codeword ``c`` as returned.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_bool_matrix(H) -> np.ndarray:
    """A 2-D 0/1 matrix (torch tensor, numpy array or nested lists) -> numpy bool (m, n)."""
    if isinstance(H, torch.Tensor):
        H = H.detach().to("cpu").numpy()
    a = np.asarray(H)
    if a.ndim != 2:
        raise ValueError(f"H must be a 2-D matrix, got shape {a.shape}")
    if a.dtype != np.bool_:
        if not np.all((a == 0) | (a == 1)):
            raise ValueError("H must contain only 0 and 1")
        a = a != 0
    return a


def rref(H) -> tuple[np.ndarray, np.ndarray]:
    """Reduced row echelon form of H over GF(2).

    Returns ``(R, pivots)``: R is a numpy bool (rank, n) matrix whose row i has its leading 1
    in column ``pivots[i]`` (increasing), and every pivot column of R is a unit vector. The
    row space of R equals that of H.
    """
    a = _as_bool_matrix(H)
    m, n = a.shape
    rows = np.packbits(a, axis=1)  # (m, ceil(n/8)) uint8, column j -> bit 7 - j%8 of byte j//8
    pivots: list[int] = []
    r = 0
    for col in range(n):
        if r == m:
            break
        byte, bit = col >> 3, np.uint8(1 << (7 - (col & 7)))
        has = (rows[:, byte] & bit) != 0
        below = np.flatnonzero(has[r:])
        if below.size == 0:
            continue
        p = r + int(below[0])
        if p != r:
            rows[[r, p]] = rows[[p, r]]
            has[[r, p]] = has[[p, r]]
        has[r] = False
        # Columns left of ``col`` are zero in the pivot row, so only bytes from ``byte`` on.
        rows[has, byte:] ^= rows[r, byte:]
        pivots.append(col)
        r += 1
    R = np.unpackbits(rows[:r], axis=1, count=n).astype(bool)
    return R, np.asarray(pivots, dtype=np.int64)


def gf2_rank(H) -> int:
    """Rank of the 0/1 matrix H over GF(2)."""
    return int(rref(H)[1].size)


class SystematicEncoder:
    """Systematic encoder of the code {c : H c = 0 (mod 2)}, without permuting H's columns.

    Attributes: ``n``, ``k`` (= n - rank), ``rank``, ``info_positions`` (LongTensor (k,), the
    free columns of rref(H), carrying the message) and ``parity_positions`` (LongTensor
    (rank,), the pivot columns). ``generator`` is the (k, n) uint8 generator matrix G with
    ``G[:, info_positions] = I`` so that a codeword is ``u G mod 2``.
    """

    def __init__(self, H):
        R, pivots = rref(H)
        n = R.shape[1]
        self.n = n
        self.rank = int(pivots.size)
        self.k = n - self.rank
        free = np.setdiff1d(np.arange(n), pivots)
        # Row i of R: c[pivots[i]] + sum_j R[i, free[j]] c[free[j]] = 0, so the parity bits
        # are P u with P = R[:, free] (rank, k).
        G = np.zeros((self.k, n), dtype=np.uint8)
        G[np.arange(self.k), free] = 1
        G[:, pivots] = R[:, free].T
        self.info_positions = torch.from_numpy(free.astype(np.int64))
        self.parity_positions = torch.from_numpy(pivots.astype(np.int64))
        self.generator = torch.from_numpy(G)
        self._G_cache: dict[torch.device, torch.Tensor] = {}

    def _G(self, device: torch.device) -> torch.Tensor:
        G = self._G_cache.get(device)
        if G is None:
            G = self.generator.to(device=device, dtype=torch.float32)
            self._G_cache[device] = G
        return G

    def encode(self, msgs: torch.Tensor) -> torch.Tensor:
        """(B, k) 0/1 messages (any float, integer or bool dtype, any device) -> (B, n)
        codewords of the same dtype and device; ``c[:, info_positions] == msgs``.

        A float32 matmul mod 2: the sums are integers <= k < 2**24, so it is exact.
        """
        if msgs.dim() < 1 or msgs.shape[-1] != self.k:
            raise ValueError(f"messages must have shape (B, {self.k}), got {tuple(msgs.shape)}")
        G = self._G(msgs.device)
        c = torch.remainder(msgs.to(torch.float32) @ G, 2.0)
        return c.to(msgs.dtype)

    def __repr__(self) -> str:
        return f"SystematicEncoder(n={self.n}, k={self.k}, rank={self.rank})"
