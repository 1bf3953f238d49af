"""The workload's decoding: greedy answers, nucleus and factual-nucleus sampling
(docs/methods.md#nucleus-and-factual-nucleus-sampling).

Nucleus sampling (Holtzman et al., arXiv 1904.09751): sort the next-token probabilities, keep the
smallest prefix whose mass reaches p (the token that crosses p is kept, so at least one token
is), renormalize, sample. Factual-nucleus sampling (Lee et al., NeurIPS 2022) makes p decay within
a sentence: p_t = max(omega, p * lambda^(t - 1)), where t = 1 at the first sampled token of a
sentence and t is reset after a sentence-ending token ("." "?" "!"). The generation's first token
counts as a sentence start (the prompt is only the topic's name). With lambda = 1 and omega = 0 it
is plain nucleus sampling, which is how both settings share one code path.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Decoding:
    name: str
    p: float = 0.9
    decay: float = 1.0  # lambda
    floor: float = 0.0  # omega

    def __post_init__(self):
        if not (0.0 < self.p <= 1.0 and 0.0 < self.decay <= 1.0 and 0.0 <= self.floor <= self.p):
            raise ValueError(f"bad decoding setting {self}")


NUCLEUS = Decoding("nucleus", p=0.9)
FACTUAL_NUCLEUS = Decoding("factual", p=0.9, decay=0.9, floor=0.3)


class TopPSchedule:
    """p_t of every row of a batch, reset after sentence-ending tokens."""

    def __init__(self, setting: Decoding, rows: int, sentence_end: Collection[int], device=None):
        self.s = setting
        self.t = torch.ones(rows, dtype=torch.long, device=device)
        self.end = torch.tensor(sorted(sentence_end), dtype=torch.long, device=device)

    def current(self) -> torch.Tensor:
        p = self.s.p * self.s.decay ** (self.t - 1).double()
        return p.clamp_min(self.s.floor).float()

    def advance(self, tokens: torch.Tensor) -> None:
        ended = torch.isin(tokens, self.end)
        self.t = torch.where(ended, torch.ones_like(self.t), self.t + 1)


def nucleus_probs(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B, V) logits and (B,) top-p -> (B, V) renormalized nucleus distribution."""
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # mass strictly above each token
    keep_sorted = before < p.unsqueeze(-1)
    keep_sorted[:, 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    probs = probs * keep
    return probs / probs.sum(-1, keepdim=True)


@torch.inference_mode()
def sample(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    max_new: int,
    setting: Decoding,
    sentence_end: Collection[int],
    generator: torch.Generator,
) -> torch.Tensor:
    """(B, P) prompts of equal length -> (B, max_new) sampled continuations (no early stop: the
    caller cuts at end-of-sequence)."""
    ids = prompt
    sched = TopPSchedule(setting, len(prompt), sentence_end, prompt.device)
    ctx = model.arch.context
    for _ in range(max_new):
        logits = model(ids[:, -ctx:])[:, -1]
        probs = nucleus_probs(logits, sched.current())
        nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        sched.advance(nxt)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    return ids[:, prompt.shape[1] :]


@torch.inference_mode()
def greedy(model: torch.nn.Module, prompt: torch.Tensor, max_new: int) -> torch.Tensor:
    """(B, P) prompts of equal length -> (B, max_new) greedy continuations."""
    ids = prompt
    ctx = model.arch.context
    for _ in range(max_new):
        nxt = model(ids[:, -ctx:])[:, -1].argmax(-1)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    return ids[:, prompt.shape[1] :]


def group_by_length(seqs: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    """Indices of ``seqs`` grouped by length (prompts of one length batch without padding)."""
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        groups.setdefault(len(s), []).append(i)
    return groups
