"""Convert the upstream LDPC matrices (``codes/sources/``) into the project's JSON files, checked.

    python -m workloads.ldpc.convert_codes [--src DIR] [--out DIR]  # default: codes/sources

Every code is checked against its published size (n, m, k, edges); k is n - rank_GF2(H). The
WiFi (648, 540) code is read from the boosting repo's base matrix and cross-checked against
AFF3CT's alist of the same code: the two give the same H, rows and columns in the same order
(the check also accepts a row permutation, and reports it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workloads.ldpc.codes import CODES_DIR, LdpcCode, parse_alist, parse_basegraph
from workloads.ldpc.gf2 import gf2_rank

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SRC = Path(__file__).resolve().parent / "codes" / "sources"  # the upstream files, verbatim

_BOOSTING = (
    "BaseGraph/ of the NeurIPS 2023 'Boosting Learning for LDPC Codes to Improve the "
    "Error-Floor Performance' repository, github.com/ghy1228/LDPC_Error_Floor (MIT)"
)
_AFF3CT = "dec/LDPC/ of the AFF3CT configuration_files repository (MIT)"


@dataclass(frozen=True)
class Source:
    name: str
    file: str
    z: int | None  # lifting size of a QC base matrix; None for an alist
    standard: str
    origin: str
    n: int
    m: int
    k: int
    edges: int
    crosscheck: str | None = None  # an alist of the same code, compared with the base matrix


SOURCES: tuple[Source, ...] = (
    Source(
        "wimax_576_432",
        "wman_N0576_R34_z24.basegraph.txt",
        24,
        "IEEE 802.16e (WiMAX) rate 3/4, Z=24",
        _BOOSTING,
        576,
        144,
        432,
        2112,
    ),
    Source(
        "wifi_648_540",
        "802_11n_N648_R56_z27.basegraph.txt",
        27,
        "IEEE 802.11n (WiFi) rate 5/6, Z=27",
        _BOOSTING,
        648,
        108,
        540,
        2376,
        crosscheck="WIFI_540_648.alist",
    ),
    Source(
        "mackay_96_48",
        "MACKAY_N96_K48.basegraph.txt",
        1,
        "MacKay (96,48) regular (3,6) code",
        _BOOSTING,
        96,
        48,
        48,
        288,
    ),
    Source(
        "ccsds_128_64",
        "CCSDS_64_128.alist",
        None,
        "CCSDS (128,64) rate 1/2 short-block code",
        _AFF3CT,
        128,
        64,
        64,
        512,
    ),
    Source(
        "mackay_1008_504",
        "MACKAY_504_1008.alist",
        None,
        "MacKay (1008,504) regular (3,6) code",
        _AFF3CT,
        1008,
        504,
        504,
        3024,
    ),
)


def _parse(src: Path, file: str, z: int | None) -> tuple[int, list[list[int]]]:
    text = (src / file).read_text()
    return parse_alist(text) if z is None else parse_basegraph(text, z)


def _dense(n: int, checks: list[list[int]]) -> np.ndarray:
    H = np.zeros((len(checks), n), dtype=np.uint8)
    for c, vs in enumerate(checks):
        H[c, vs] = 1
    return H


def compare_matrices(a: tuple[int, list[list[int]]], b: tuple[int, list[list[int]]]) -> str:
    """'identical', 'row permutation' (same set of rows) or raise ValueError.

    Column permutations are not searched: a code whose columns are reordered is a different
    (equivalent) code for a benchmark with fixed positions, so it is reported as a mismatch.
    """
    (na, ca), (nb, cb) = a, b
    if na != nb or len(ca) != len(cb):
        raise ValueError(f"sizes differ: ({len(ca)}, {na}) vs ({len(cb)}, {nb})")
    if ca == cb:
        return "identical"
    if sorted(map(tuple, ca)) == sorted(map(tuple, cb)):
        return "row permutation"
    raise ValueError("the matrices differ (not a row permutation of each other)")


def convert(src: Path, log=None) -> dict[str, LdpcCode]:
    """Parse and verify every code in ``SOURCES`` from the folder ``src``."""
    codes: dict[str, LdpcCode] = {}
    for s in SOURCES:
        n, checks = _parse(src, s.file, s.z)
        rank = gf2_rank(_dense(n, checks))
        source = f"{s.file} from {s.origin}"
        if s.crosscheck is not None:
            how = compare_matrices((n, checks), _parse(src, s.crosscheck, None))
            rel = "identical to" if how == "identical" else "a row permutation of"
            source += f"; H is {rel} the H of {s.crosscheck} from {_AFF3CT}"
            if log:
                log(f"{s.name}: {s.file} vs {s.crosscheck}: {how}")
        code = LdpcCode(
            name=s.name,
            n=n,
            m=len(checks),
            k=n - rank,
            checks=tuple(tuple(c) for c in checks),
            standard=s.standard,
            source=source,
        )
        code.validate()
        got = (code.n, code.m, code.k, code.edges)
        want = (s.n, s.m, s.k, s.edges)
        if got != want:
            raise ValueError(f"{s.name}: (n, m, k, edges) = {got}, expected {want}")
        if log:
            log(
                f"{s.name}: n={code.n} m={code.m} rank={rank} k={code.k} edges={code.edges} "
                f"rate={code.rate:.4f}"
            )
        codes[s.name] = code
    return codes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help=f"default: {DEFAULT_SRC}")
    p.add_argument("--out", type=Path, default=CODES_DIR, help=f"default: {CODES_DIR}")
    args = p.parse_args(argv)
    if not args.src.is_dir():
        print(f"error: source folder {args.src} does not exist", file=sys.stderr)
        return 2
    codes = convert(args.src, log=print)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, code in codes.items():
        path = args.out / f"{name}.json"
        path.write_text(code.to_json())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
