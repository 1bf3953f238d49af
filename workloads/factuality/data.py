"""Training documents, their stream, and packing into language-model batches.

The training stream carries structure, not just text (docs/workloads.md#factuality): every
``Document`` has its
topic entity, its kind ("bio", "qa" or "text"), its sentences as token ids, and per sentence a
*pivot*: the index of the first token of the attribute value (bioS; for a question-answer pair the
first token of the answer; for real text the middle word). Methods such as TopicPrefix and the
sentence-completion loss read these fields instead of parsing text.

``pack`` lays documents end to end into rows of ``length`` tokens (each document followed by
``<eos>``, a document never split across rows, the rest of a row padded), standard GPT packing.
A ``LMBatch``'s ``loss_mask`` is aligned with the *targets* (``tokens[:, 1:]``), not the inputs:
the released SC code shifts it by one (docs/methods.md#topic_prefix_sc).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch


class DataError(ValueError):
    pass


@dataclass(frozen=True)
class Document:
    topic: int
    kind: str  # "bio", "qa" or "text"
    sentences: tuple[tuple[int, ...], ...]
    pivots: tuple[int, ...]  # per sentence: index of its first post-pivot token

    def __post_init__(self):
        if len(self.pivots) != len(self.sentences):
            raise DataError("one pivot per sentence")
        for s, k in zip(self.sentences, self.pivots, strict=True):
            if not 0 <= k <= len(s):
                raise DataError(f"pivot {k} outside a sentence of {len(s)} tokens")


@dataclass
class LMBatch:
    tokens: torch.Tensor  # (B, L) int64
    loss_mask: torch.Tensor  # (B, L - 1) float: weight of predicting tokens[:, 1:]
    documents: int = 0

    @property
    def inputs(self) -> torch.Tensor:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> torch.Tensor:
        return self.tokens[:, 1:]

    def to(self, device) -> LMBatch:
        return LMBatch(self.tokens.to(device), self.loss_mask.to(device), self.documents)


Sequenced = tuple[list[int], list[float]]  # token ids, and per token the weight of predicting it


def plain(doc: Document, eos: int) -> Sequenced:
    """The default: the document's tokens then ``<eos>``, every token trained."""
    ids = [t for s in doc.sentences for t in s] + [eos]
    return ids, [1.0] * len(ids)


class DocumentStream:
    """Shuffled epochs over documents; ``push_back`` returns one for the next ``next``."""

    def __init__(self, docs: Sequence[Document], rng: torch.Generator):
        if not docs:
            raise DataError("the document stream is empty")
        self.docs, self._rng = docs, rng
        self._perm: list[int] = []
        self._pos = 0
        self._back: list[Document] = []
        self.epochs = 0

    def __iter__(self) -> Iterator[Document]:
        return self

    def __next__(self) -> Document:
        if self._back:
            return self._back.pop()
        if self._pos >= len(self._perm):
            self._perm = torch.randperm(len(self.docs), generator=self._rng).tolist()
            self._pos = 0
            self.epochs += 1
        doc = self.docs[self._perm[self._pos]]
        self._pos += 1
        return doc

    def push_back(self, doc: Document) -> None:
        self._back.append(doc)


def pack(
    stream: DocumentStream,
    rows: int,
    length: int,
    sequence: Callable[[Document], Sequenced],
    pad: int,
    device: torch.device | str = "cpu",
) -> LMBatch:
    """Fill ``rows`` rows of ``length`` tokens with whole documents from ``stream``."""
    if rows < 1:
        raise DataError(f"rows must be >= 1; got {rows}")
    tokens = torch.full((rows, length), pad, dtype=torch.long)
    weight = torch.zeros(rows, length)
    n_docs = 0
    for r in range(rows):
        pos = 0
        while True:
            doc = next(stream)
            ids, w = sequence(doc)
            if len(ids) > length:
                raise DataError(f"a document of {len(ids)} tokens does not fit a row of {length}")
            if pos + len(ids) > length:
                stream.push_back(doc)
                break
            tokens[r, pos : pos + len(ids)] = torch.tensor(ids)
            weight[r, pos : pos + len(ids)] = torch.tensor(w)
            pos += len(ids)
            n_docs += 1
    return LMBatch(tokens, weight[:, 1:], n_docs).to(device)


class PackedStream:
    """The default ``"train"`` stream: ``pack`` with the ``plain`` sequencing."""

    def __init__(self, docs: DocumentStream, rows: int, length: int, eos: int, pad: int, device):
        self.docs, self.rows, self.length = docs, rows, length
        self.eos, self.pad, self.device = eos, pad, device

    def __iter__(self) -> Iterator[LMBatch]:
        return self

    def __next__(self) -> LMBatch:
        return pack(
            self.docs, self.rows, self.length, lambda d: plain(d, self.eos), self.pad, self.device
        )
