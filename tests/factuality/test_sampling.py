"""Nucleus and factual-nucleus sampling (docs/methods.md#nucleus-and-factual-nucleus-sampling)."""

from __future__ import annotations

import pytest
import torch

from workloads.factuality.sampling import (
    FACTUAL_NUCLEUS,
    NUCLEUS,
    Decoding,
    TopPSchedule,
    nucleus_probs,
)

DOT = 7


def test_factual_nucleus_decays_floors_and_resets_at_sentence_end():
    sched = TopPSchedule(FACTUAL_NUCLEUS, rows=1, sentence_end={DOT})
    seen = []
    stream = [3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, DOT, 3, 4, DOT, 5]
    for tok in stream:
        seen.append(float(sched.current()[0]))
        sched.advance(torch.tensor([tok]))
    expected = [max(0.3, 0.9 * 0.9**k) for k in range(13)] + [0.9, 0.81, 0.729, 0.9]
    assert seen == pytest.approx(expected, abs=1e-6)
    assert min(seen) == pytest.approx(0.3) and min(seen) >= 0.3 - 1e-7
    assert seen[13] == pytest.approx(0.9)  # reset after "."


def test_rows_reset_independently_and_nucleus_is_constant():
    sched = TopPSchedule(FACTUAL_NUCLEUS, rows=2, sentence_end={DOT})
    sched.advance(torch.tensor([DOT, 1]))
    assert sched.current().tolist() == pytest.approx([0.9, 0.81])
    plain = TopPSchedule(NUCLEUS, rows=1, sentence_end={DOT})
    for tok in (1, 2, 3, 4):
        assert float(plain.current()[0]) == pytest.approx(0.9)
        plain.advance(torch.tensor([tok]))


def test_nucleus_keeps_the_crossing_token_and_renormalizes():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    out = nucleus_probs(logits, torch.tensor([0.7]))  # 0.5 < 0.7, 0.8 crosses: keep two
    assert out[0].tolist() == pytest.approx([0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0], abs=1e-6)
    out = nucleus_probs(logits, torch.tensor([0.1]))  # always at least the top token
    assert out[0].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0])
    shuffled = logits[:, [2, 0, 3, 1]]
    out = nucleus_probs(shuffled, torch.tensor([0.9]))  # 0.5 + 0.3 + 0.15 crosses at 0.95
    assert out[0].tolist() == pytest.approx([0.15 / 0.95, 0.5 / 0.95, 0.0, 0.3 / 0.95], abs=1e-6)


def test_bad_setting_is_refused():
    with pytest.raises(ValueError, match="bad decoding"):
        Decoding("x", p=0.9, decay=0.9, floor=0.95)
