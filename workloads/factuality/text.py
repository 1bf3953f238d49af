"""Text side of the workload: the closed word vocabulary, the mention trie, the metrics.

Factual precision (docs/workloads.md#factuality): attribute mentions in a generation are found by a
trie over
the closed vocabulary of attribute values (longest match, left to right, non-overlapping); a
mention is correct iff it equals the topic person's knowledge-base value for the attribute it can
express. Birth city and work city share one pool of cities, so a city mention is correct iff it is
either of the person's two cities. Distinct-n (Li et al. 2016, as FactualityPrompt reports it) is
the share of distinct n-grams among a generation's n-grams, averaged over generations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PAD, EOS = "<pad>", "<eos>"
NO_SPACE_BEFORE = {".", ",", "?", ":", "!", ";"}


class VocabError(ValueError):
    pass


class WordVocab:
    """A closed word-level vocabulary: ``<pad>`` = 0, ``<eos>`` = 1, then sorted words."""

    def __init__(self, tokens: Iterable[str]):
        words = sorted(set(tokens) - {PAD, EOS})
        self.itos = [PAD, EOS, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad, self.eos = 0, 1
        self.sentence_end = frozenset(self.stoi[w] for w in (".", "?", "!") if w in self.stoi)

    @property
    def size(self) -> int:
        return len(self.itos)

    def encode_words(self, ws: Sequence[str]) -> list[int]:
        try:
            return [self.stoi[w] for w in ws]
        except KeyError as e:
            raise VocabError(f"word {e.args[0]!r} is not in the closed vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        for i in ids:
            w = self.itos[i]
            if w in (PAD, EOS):
                continue
            if out and w not in NO_SPACE_BEFORE:
                out.append(" ")
            out.append(w)
        return "".join(out)


class MentionTrie:
    """Token sequences of attribute values -> the attributes each can express."""

    def __init__(self, values: Mapping[str, Iterable[Sequence[int]]]):
        self.root: dict = {}
        for attribute, seqs in values.items():
            for seq in seqs:
                node = self.root
                for tok in seq:
                    node = node.setdefault(tok, {})
                node.setdefault(None, set()).add(attribute)

    def mentions(self, ids: Sequence[int]) -> list[tuple[int, tuple[int, ...], frozenset[str]]]:
        """(start, value tokens, attributes) of every mention: longest match at each position,
        then the scan goes on after it."""
        out = []
        i, n = 0, len(ids)
        while i < n:
            node, best, j = self.root, None, i
            while j < n and ids[j] in node:
                node = node[ids[j]]
                j += 1
                if None in node:
                    best = j
            if best is None:
                i += 1
                continue
            end_node = self.root
            for tok in ids[i:best]:
                end_node = end_node[tok]
            out.append((i, tuple(ids[i:best]), frozenset(end_node[None])))
            i = best
        return out


@dataclass(frozen=True)
class FactScore:
    correct: int
    mentions: int

    @property
    def precision(self) -> float:
        return self.correct / self.mentions if self.mentions else 0.0


def fact_score(
    trie: MentionTrie, ids: Sequence[int], truth: Mapping[str, Sequence[int]]
) -> FactScore:
    """Mentions in ``ids`` and how many equal the person's value (``truth``: attribute -> value
    tokens) for an attribute the mention can express."""
    correct = total = 0
    for _, value, attributes in trie.mentions(ids):
        total += 1
        if any(tuple(truth[a]) == value for a in attributes if a in truth):
            correct += 1
    return FactScore(correct, total)


def distinct_n(seqs: Sequence[Sequence[int]], n: int = 2) -> float:
    """Mean over sequences of (distinct n-grams / n-grams); sequences shorter than n count 0."""
    if not seqs:
        return 0.0
    total = 0.0
    for s in seqs:
        grams = [tuple(s[i : i + n]) for i in range(len(s) - n + 1)]
        total += len(set(grams)) / len(grams) if grams else 0.0
    return total / len(seqs)
