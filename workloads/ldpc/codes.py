"""LDPC parity-check matrices: parsers for the published formats and the project's own files.

The project keeps one JSON file per code in ``workloads/ldpc/codes/<name>.json`` (written by
``python -m workloads.ldpc.convert_codes``), with keys ``format_version`` (1), ``name``,
``standard``, ``source``, ``n``, ``m``, ``k``, ``edges`` and ``checks``: ``checks[c]`` is the
sorted, 0-indexed list of the variable nodes of check c. ``k = n - rank_GF2(H)``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

FORMAT_VERSION = 1
CODES_DIR = Path(__file__).resolve().parent / "codes"


def _ints(line: str) -> list[int]:
    return [int(t) for t in line.split()]


def parse_alist(text: str) -> tuple[int, list[list[int]]]:
    """Parse an alist file -> ``(n, checks)``, checks[c] the sorted 0-indexed variables of c.

    Layout: ``n m``; ``max_dv max_dc``; the n variable degrees; the m check degrees; then the
    check lists of the n variables and the variable lists of the m checks, 1-indexed, with 0 as
    padding. Lines starting with ``#`` are comments; the lists are read as one token stream
    (so both padded and unpadded files, and any line wrapping, parse). The variable-side lists
    must describe the same graph as the check-side lists.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    tokens = [int(t) for ln in lines for t in ln.split()]
    pos = 0

    def take(count: int) -> list[int]:
        nonlocal pos
        if pos + count > len(tokens):
            raise ValueError("alist: unexpected end of file")
        out = tokens[pos : pos + count]
        pos += count
        return out

    def take_list(degree: int) -> list[int]:
        """``degree`` nonzero entries, skipping zero padding before them."""
        nonlocal pos
        out: list[int] = []
        while len(out) < degree:
            if pos >= len(tokens):
                raise ValueError("alist: unexpected end of file")
            t = tokens[pos]
            pos += 1
            if t != 0:
                out.append(t)
        return out

    n, m = take(2)
    max_dv, max_dc = take(2)
    dv = take(n)
    dc = take(m)
    if max(dv, default=0) != max_dv or max(dc, default=0) != max_dc:
        raise ValueError("alist: maximum degrees do not match the degree lists")
    if sum(dv) != sum(dc):
        raise ValueError(f"alist: variable degrees sum to {sum(dv)}, check degrees to {sum(dc)}")
    var_lists = [take_list(d) for d in dv]
    chk_lists = [take_list(d) for d in dc]
    if any(t != 0 for t in tokens[pos:]):
        raise ValueError("alist: unexpected nonzero entries after the check lists")

    checks: list[list[int]] = []
    for c, vs in enumerate(chk_lists):
        if any(not 1 <= v <= n for v in vs):
            raise ValueError(f"alist: check {c + 1} lists a variable outside 1..{n}")
        if len(set(vs)) != len(vs):
            raise ValueError(f"alist: check {c + 1} lists a variable twice")
        checks.append(sorted(v - 1 for v in vs))
    from_vars: list[list[int]] = [[] for _ in range(m)]
    for v, cs in enumerate(var_lists):
        if any(not 1 <= c <= m for c in cs):
            raise ValueError(f"alist: variable {v + 1} lists a check outside 1..{m}")
        for c in cs:
            from_vars[c - 1].append(v)
    if [sorted(vs) for vs in from_vars] != checks:
        raise ValueError("alist: the variable-node and check-node lists disagree")
    return n, checks


def parse_basegraph(text: str, z: int) -> tuple[int, list[list[int]]]:
    """Parse a QC base matrix (whitespace-separated shifts, -1 = zero block) lifted by ``z``.

    Entry s >= 0 at block (i, j) places the z x z identity cyclically shifted by s: row r of
    the block has its 1 in column (r + s) mod z. Returns ``(n, checks)`` with n = columns * z
    and check ``i * z + r`` for row r of block row i.
    """
    if z < 1:
        raise ValueError(f"lifting size must be >= 1, got {z}")
    base = [_ints(ln) for ln in text.splitlines() if ln.strip()]
    if not base:
        raise ValueError("base matrix: no rows")
    cols = len(base[0])
    for i, row in enumerate(base):
        if len(row) != cols:
            raise ValueError(f"base matrix: row {i} has {len(row)} entries, row 0 has {cols}")
        if any(s < -1 for s in row):
            raise ValueError(f"base matrix: row {i} has an entry below -1")
    checks: list[list[int]] = []
    for row in base:
        for r in range(z):
            checks.append(sorted(j * z + (r + s) % z for j, s in enumerate(row) if s >= 0))
    return cols * z, checks


@dataclass(frozen=True)
class LdpcCode:
    """A binary LDPC code given by the check lists of its parity-check matrix H (m, n)."""

    name: str
    n: int
    m: int
    k: int
    checks: tuple[tuple[int, ...], ...]
    standard: str
    source: str

    @property
    def rate(self) -> float:
        return self.k / self.n

    @property
    def edges(self) -> int:
        """Number of ones in H (edges of the Tanner graph)."""
        return sum(len(c) for c in self.checks)

    def H(self) -> torch.Tensor:
        """Dense parity-check matrix, (m, n) uint8."""
        H = torch.zeros(self.m, self.n, dtype=torch.uint8)
        rows = [c for c, vs in enumerate(self.checks) for _ in vs]
        cols = [v for vs in self.checks for v in vs]
        H[rows, cols] = 1
        return H

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "standard": self.standard,
            "source": self.source,
            "n": self.n,
            "m": self.m,
            "k": self.k,
            "edges": self.edges,
            "checks": [list(c) for c in self.checks],
        }

    def to_json(self) -> str:
        """The project's file format: JSON with one check per line."""
        d = self.to_dict()
        checks = d.pop("checks")
        head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items())
        body = ",\n".join("    " + json.dumps(c, separators=(", ", ": ")) for c in checks)
        return f'{{\n{head},\n  "checks": [\n{body}\n  ]\n}}\n'

    @classmethod
    def from_dict(cls, d: dict) -> LdpcCode:
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported code format_version {d.get('format_version')!r}")
        code = cls(
            name=str(d["name"]),
            n=int(d["n"]),
            m=int(d["m"]),
            k=int(d["k"]),
            checks=tuple(tuple(int(v) for v in c) for c in d["checks"]),
            standard=str(d["standard"]),
            source=str(d["source"]),
        )
        code.validate()
        if code.edges != int(d["edges"]):
            raise ValueError(f"{code.name}: 'edges' is {d['edges']}, the checks have {code.edges}")
        return code

    def validate(self) -> None:
        """Structural checks (not the rank): sizes, sorted in-range unique variables."""
        if len(self.checks) != self.m:
            raise ValueError(f"{self.name}: m = {self.m} but {len(self.checks)} checks")
        if not 0 <= self.k <= self.n or self.n - self.k > self.m:
            raise ValueError(f"{self.name}: k = {self.k} impossible for (m, n) = {self.m, self.n}")
        for c, vs in enumerate(self.checks):
            if list(vs) != sorted(set(vs)) or (vs and not 0 <= vs[0] <= vs[-1] < self.n):
                raise ValueError(f"{self.name}: check {c} is not a sorted set of 0..{self.n - 1}")


def available_codes() -> list[str]:
    """Names of the codes in ``CODES_DIR``, sorted."""
    return sorted(p.stem for p in CODES_DIR.glob("*.json"))


@functools.cache
def load_code(name: str) -> LdpcCode:
    """Load ``CODES_DIR/<name>.json``; an unknown name raises KeyError listing the known ones."""
    names = available_codes()
    if name not in names:
        raise KeyError(f"unknown LDPC code {name!r}; available: {', '.join(names) or '(none)'}")
    d = json.loads((CODES_DIR / f"{name}.json").read_text())
    code = LdpcCode.from_dict(d)
    if code.name != name:
        raise ValueError(f"{CODES_DIR / name}.json holds code {code.name!r}")
    return code
