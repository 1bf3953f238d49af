"""Encoded corpora, batches, per-language training streams and temperature sampling.

A corpus is, per target language, three splits of (source ids, target ids, reference text).
Sources start with the target-language tag ``<2xx>`` and end with ``</s>``; targets end with
``</s>``. Everything is kept as padded ``LongTensor``s so a batch is a gather and a trim.

Training data reach a submission only as streams (``TranslationWorkload.train_streams``): one
per language, plus ``"train"``, which samples languages in proportion to their sizes. A
submission that chooses its own mixture draws examples from the language streams with
``mixture_batch``; ``temperature_probs`` gives p_i proportional to D_i^(1/T).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from workloads.translation.corpus import Pair, detokenize

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


class CorpusError(ValueError):
    """Bad corpus input: unknown languages, empty splits, impossible sizes."""


class WordVocab:
    """The closed vocabulary of the generated corpus: specials, language tags, then tokens."""

    def __init__(self, tokens: Sequence[str], languages: Sequence[str]):
        self.languages = tuple(languages)
        self.itos = [*SPECIALS, *(f"<2{c}>" for c in self.languages), *tokens]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise CorpusError("duplicate tokens in the vocabulary")
        self.pad, self.bos, self.eos, self.unk = PAD, BOS, EOS, UNK
        self._first_token = len(SPECIALS) + len(self.languages)

    @property
    def size(self) -> int:
        return len(self.itos)

    def tag(self, lang: str) -> int:
        try:
            return self.stoi[f"<2{lang}>"]
        except KeyError:
            raise CorpusError(f"unknown language {lang!r}; known: {list(self.languages)}") from None

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids: Sequence[int]) -> str:
        """Reference-style text of target ids (specials and tags dropped)."""
        return detokenize([self.itos[i] for i in ids if i >= self._first_token])


@dataclass
class Encoded:
    """One split of one language: padded ids and the reference strings."""

    src: torch.Tensor  # (N, S) long, PAD-padded: <2xx> tokens </s>
    tgt: torch.Tensor  # (N, T) long, PAD-padded: tokens </s>
    refs: list[str]

    def __len__(self) -> int:
        return len(self.refs)


def pad_rows(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def encode_split(
    pairs: Sequence[tuple[list[int], list[int], str]], tag: int, eos: int, max_len: int
) -> Encoded:
    """Rows of (source ids, target ids, reference) -> ``Encoded``; pairs with a side longer
    than ``max_len`` (tag and eos included) are dropped."""
    keep = [(s, t, r) for s, t, r in pairs if len(s) + 2 <= max_len and len(t) + 1 <= max_len]
    if not keep:
        raise CorpusError("a split is empty (after dropping pairs longer than max_len)")
    return Encoded(
        pad_rows([[tag, *s, eos] for s, _, _ in keep]),
        pad_rows([[*t, eos] for _, t, _ in keep]),
        [r for _, _, r in keep],
    )


def encode_generated(
    corpus: Mapping[str, Mapping[str, Sequence[Pair]]], vocab: WordVocab, max_len: int
) -> dict[str, dict[str, Encoded]]:
    return {
        lang: {
            split: encode_split(
                [(vocab.ids(p.source), vocab.ids(p.target), p.reference) for p in pairs],
                vocab.tag(lang),
                vocab.eos,
                max_len,
            )
            for split, pairs in splits.items()
        }
        for lang, splits in corpus.items()
    }


@dataclass
class TranslationBatch:
    src: torch.Tensor  # (B, S)
    tgt_in: torch.Tensor  # (B, T): <s> then the target shifted right
    tgt_out: torch.Tensor  # (B, T): the target and </s>, PAD-padded
    lang: torch.Tensor  # (B,) index into the workload's ``languages``

    @property
    def tokens(self) -> int:
        """Target tokens in the batch (what tokens/s counts)."""
        return int((self.tgt_out != PAD).sum())


def make_batch(
    data: Sequence[Encoded], parts: Sequence[tuple[int, torch.Tensor]], device: torch.device
) -> TranslationBatch:
    """Gather rows ``idx`` of language ``k``'s data for every (k, idx) in ``parts``."""
    srcs, tgts, langs = [], [], []
    for k, idx in parts:
        if len(idx) == 0:
            continue
        srcs.append(data[k].src[idx])
        tgts.append(data[k].tgt[idx])
        langs.append(torch.full((len(idx),), k, dtype=torch.long))
    s_len = max(int((s != PAD).sum(1).max()) for s in srcs)
    t_len = max(int((t != PAD).sum(1).max()) for t in tgts)
    src = torch.cat([torch.nn.functional.pad(s, (0, s_len - s.shape[1]))[:, :s_len] for s in srcs])
    tgt = torch.cat([torch.nn.functional.pad(t, (0, t_len - t.shape[1]))[:, :t_len] for t in tgts])
    tgt_in = torch.cat([torch.full((len(tgt), 1), BOS, dtype=torch.long), tgt[:, :-1]], 1)
    return TranslationBatch(
        src.to(device), tgt_in.to(device), tgt.to(device), torch.cat(langs).to(device)
    )


class LanguageStream:
    """Shuffled epochs of one language's training pairs.

    ``next(stream)`` is a batch of ``batch_size`` pairs of this language; ``take(n)`` returns the
    next ``n`` example indices (for mixing languages in one batch with ``mixture_batch``).
    """

    def __init__(
        self,
        index: int,
        size: int,
        batch_size: int,
        rng: torch.Generator,
        make: Callable[[Sequence[tuple[int, torch.Tensor]]], TranslationBatch],
    ):
        self.index, self.size, self.batch_size = index, size, batch_size
        self._rng, self._make = rng, make
        self._perm = torch.empty(0, dtype=torch.long)
        self._pos = 0
        self.drawn = 0  # examples handed out so far

    def take(self, n: int) -> torch.Tensor:
        parts = []
        while n > 0:
            if self._pos >= len(self._perm):
                self._perm = torch.randperm(self.size, generator=self._rng, device="cpu")
                self._pos = 0
            chunk = self._perm[self._pos : self._pos + n]
            self._pos += len(chunk)
            n -= len(chunk)
            parts.append(chunk)
        idx = torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)
        self.drawn += len(idx)
        return idx

    def __iter__(self) -> Iterator[TranslationBatch]:
        return self

    def __next__(self) -> TranslationBatch:
        return self._make([(self.index, self.take(self.batch_size))])


class MixtureStream:
    """Batches whose examples draw their language i.i.d. from ``probs`` (the ``"train"``
    stream uses temperature sampling at the spec's ``train_temperature``)."""

    def __init__(self, streams: Sequence[LanguageStream], probs: Sequence[float], rng, make):
        self.streams, self.rng, self._make = list(streams), rng, make
        self.probs = torch.tensor(list(probs), dtype=torch.float64)

    def __iter__(self) -> Iterator[TranslationBatch]:
        return self

    def __next__(self) -> TranslationBatch:
        return mixture_batch(self.streams, self.probs, self.streams[0].batch_size, self.rng)


def temperature_probs(sizes: Mapping[str, int], temperature: float) -> dict[str, float]:
    """p_i = D_i^(1/T) / sum_j D_j^(1/T) (Arivazhagan et al. 2019): T = 1 proportional,
    T = inf uniform."""
    if not sizes:
        raise CorpusError("no languages to sample from")
    if not (temperature > 0) or math.isnan(temperature):
        raise CorpusError(f"temperature must be > 0 (inf for uniform); got {temperature}")
    if any(int(d) < 1 for d in sizes.values()):
        raise CorpusError(f"every language needs at least one pair; got {dict(sizes)}")
    inv = 0.0 if math.isinf(temperature) else 1.0 / temperature
    w = {k: float(d) ** inv for k, d in sizes.items()}
    z = sum(w.values())
    return {k: v / z for k, v in w.items()}


def mixture_counts(probs: torch.Tensor, n: int, rng: torch.Generator) -> torch.Tensor:
    """How many of ``n`` examples come from each language: each example's language drawn
    i.i.d. from ``probs`` (a multinomial draw)."""
    p = probs.to(torch.float64)
    if p.ndim != 1 or bool((p < 0).any()) or not math.isclose(float(p.sum()), 1.0, abs_tol=1e-6):
        raise CorpusError(f"sampling probabilities must be >= 0 and sum to 1; got {p.tolist()}")
    draws = torch.multinomial(p.float().to(rng.device), n, replacement=True, generator=rng)
    return torch.bincount(draws.cpu(), minlength=len(p))


def mixture_batch(
    streams: Sequence[LanguageStream], probs, batch_size: int, rng: torch.Generator
) -> TranslationBatch:
    """One batch of ``batch_size`` examples, languages drawn i.i.d. from ``probs`` (a sequence
    aligned with ``streams``)."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    if len(p) != len(streams):
        raise CorpusError(f"{len(p)} probabilities for {len(streams)} streams")
    counts = mixture_counts(p, batch_size, rng)
    parts = [
        (s.index, s.take(int(c))) for s, c in zip(streams, counts.tolist(), strict=True) if c > 0
    ]
    return streams[0]._make(parts)
