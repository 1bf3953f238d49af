"""The project's LDPC code files: sizes, ranks, agreement with the upstream codes/sources/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from workloads.ldpc import convert_codes
from workloads.ldpc.codes import (
    CODES_DIR,
    LdpcCode,
    available_codes,
    load_code,
    parse_alist,
    parse_basegraph,
)
from workloads.ldpc.gf2 import gf2_rank

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = convert_codes.DEFAULT_SRC  # the upstream files, committed verbatim

# name -> (n, m, k, edges); k is checked against an independently computed rank below.
FACTS = {
    "wimax_576_432": (576, 144, 432, 2112),
    "wifi_648_540": (648, 108, 540, 2376),
    "mackay_96_48": (96, 48, 48, 288),
    "ccsds_128_64": (128, 64, 64, 512),
    "mackay_1008_504": (1008, 504, 504, 3024),
}


def _rank_by_python_ints(code: LdpcCode) -> int:
    """GF(2) rank with rows as Python ints: an implementation independent of gf2.rref."""
    basis: dict[int, int] = {}  # leading bit -> row
    for vs in code.checks:
        row = sum(1 << v for v in vs)
        while row:
            lead = row.bit_length() - 1
            if lead not in basis:
                basis[lead] = row
                break
            row ^= basis[lead]
    return len(basis)


def test_available_codes_are_the_expected_ones():
    assert available_codes() == sorted(FACTS)
    assert CODES_DIR == Path(convert_codes.__file__).resolve().parent / "codes"


@pytest.mark.parametrize("name", sorted(FACTS))
def test_code_sizes_and_rank(name):
    code = load_code(name)
    assert code.name == name
    assert (code.n, code.m, code.k, code.edges) == FACTS[name]
    assert code.k == code.n - _rank_by_python_ints(code)
    H = code.H()
    assert H.dtype == torch.uint8 and H.shape == (code.m, code.n)
    assert int(H.sum()) == code.edges
    assert code.k == code.n - gf2_rank(H)
    assert code.rate == pytest.approx(code.k / code.n)
    assert min(H.sum(0).tolist()) >= 1  # every variable takes part in a check
    assert load_code(name) is code  # cached


def test_degree_profiles():
    h = load_code("mackay_1008_504").H()
    assert set(h.sum(0).tolist()) == {3} and set(h.sum(1).tolist()) == {6}
    h = load_code("mackay_96_48").H()
    assert set(h.sum(0).tolist()) == {3} and set(h.sum(1).tolist()) == {6}
    h = load_code("wifi_648_540").H()
    assert set(h.sum(1).tolist()) == {22}
    h = load_code("ccsds_128_64").H()
    assert set(h.sum(1).tolist()) == {8}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_json_file_layout(name):
    text = (CODES_DIR / f"{name}.json").read_text()
    d = json.loads(text)
    assert d["format_version"] == 1
    assert set(d) == {
        *("format_version", "name", "standard", "source"),
        *("n", "m", "k", "edges", "checks"),
    }
    assert d["name"] == name and d["standard"] and d["source"]
    assert all(c == sorted(set(c)) for c in d["checks"])
    assert text.count("\n") == len(d["checks"]) + 12  # one check per line


def test_json_files_equal_converter_output():
    codes = convert_codes.convert(UPSTREAM)
    assert sorted(codes) == available_codes()
    for name, code in codes.items():
        assert code == load_code(name)
        assert (CODES_DIR / f"{name}.json").read_text() == code.to_json()


def test_wifi_alist_and_basegraph_agree():
    bg = parse_basegraph((UPSTREAM / "802_11n_N648_R56_z27.basegraph.txt").read_text(), 27)
    al = parse_alist((UPSTREAM / "WIFI_540_648.alist").read_text())
    assert convert_codes.compare_matrices(bg, al) == "identical"
    assert bg == (648, [list(c) for c in load_code("wifi_648_540").checks])


def test_unknown_name_lists_available():
    with pytest.raises(KeyError) as e:
        load_code("no_such_code")
    msg = str(e.value)
    assert "no_such_code" in msg
    for name in available_codes():
        assert name in msg


def test_json_roundtrip():
    code = load_code("mackay_96_48")
    assert LdpcCode.from_dict(json.loads(code.to_json())) == code


# A tiny code: H = [[1 1 0 1 0 0], [0 1 1 0 1 0], [1 0 0 0 1 1], [0 0 1 1 0 1]] (rank 3).
TINY_CHECKS = [[0, 1, 3], [1, 2, 4], [0, 4, 5], [2, 3, 5]]

TINY_ALIST = """6 4
2 3
2 2 2 2 2 2
3 3 3 3
1 3
1 2
2 4
1 4
2 3
3 4
1 2 4
2 3 5
1 5 6
3 4 6
"""

# An irregular code: TINY_CHECKS plus the check {0, 1, 2, 3}, in the padded style (zeros up to
# the maximum degree), with a comment, CRLF line ends, unsorted lists and no final newline.
TINY_IRREGULAR_ALIST = (
    "# a comment\r\n6 5\r\n3 4\r\n3 3 3 3 2 2 \r\n3 3 3 3 4\r\n"
    "1 3 5\r\n5 1 2\r\n2 4 5\r\n1 4 5\r\n2 3 0\r\n3 4 0\r\n"
    "4 2 1 0\r\n2 3 5 0\r\n1 5 6 0\r\n3 4 6 0\r\n1 2 3 4"
)


def test_parse_alist_tiny():
    assert parse_alist(TINY_ALIST) == (6, TINY_CHECKS)
    assert parse_alist(TINY_ALIST.replace(" ", "\t")) == (6, TINY_CHECKS)
    assert parse_alist(TINY_IRREGULAR_ALIST) == (6, [*TINY_CHECKS, [0, 1, 2, 3]])


def test_parse_alist_rejects_inconsistent_sides():
    bad = TINY_ALIST.replace("1 2 4\n2 3 5", "1 2 5\n2 3 4")
    with pytest.raises(ValueError, match="disagree"):
        parse_alist(bad)


def test_parse_basegraph_tiny():
    # Z = 3; block (0, 0) shift 1, (0, 1) zero, (0, 2) shift 0; (1, 0) shift 2, (1, 1) shift 0.
    text = "1\t-1\t0\t\n2\t0\t-1"  # a trailing tab, no final newline
    n, checks = parse_basegraph(text, 3)
    assert n == 9
    H = np.zeros((6, 9), dtype=int)
    for c, vs in enumerate(checks):
        H[c, vs] = 1
    P1 = np.roll(np.eye(3, dtype=int), 1, axis=1)  # row r -> column (r + 1) mod 3
    P2 = np.roll(np.eye(3, dtype=int), 2, axis=1)
    Z0, I = np.zeros((3, 3), dtype=int), np.eye(3, dtype=int)
    assert (H == np.block([[P1, Z0, I], [P2, I, Z0]])).all()
    assert checks[0] == [1, 6]  # row 0: column (0 + 1) mod 3 of block 0, column 0 of block 2
    assert parse_basegraph("1 -1 0\r\n2 0 -1\r\n\r\n", 3) == (n, checks)
    with pytest.raises(ValueError, match="entries"):
        parse_basegraph("1 -1 0\n2 0\n", 3)


def test_parse_basegraph_z1_is_dense():
    assert parse_basegraph("0 -1 0\n-1 0 0\n", 1) == (3, [[0, 2], [1, 2]])
