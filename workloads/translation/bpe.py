"""A joint byte-level BPE vocabulary over all languages: the ``full`` variant's tokenizer.

Real text needs subwords: ``train_bpe`` trains one Hugging Face ``tokenizers`` BPE model on the
source and target sides of every language's training pairs, so related languages share pieces.
The ids start with fixed special tokens, ``<pad>`` = 0, ``<s>`` = 1 (bos), ``</s>`` = 2 (eos),
``<unk>`` = 3, then one target-language tag ``<2xx>`` per language in the given order (4, 5, ...),
then the learned pieces.

The model is byte-level (GPT-2's ByteLevel pre-tokenizer and decoder, every byte in the initial
alphabet) with no normalizer, so every string encodes without ``<unk>`` and
``decode(encode(text)) == text`` exactly, whitespace and accents included. ``encode`` reads its
text literally: a special token's spelling in the text (say ``<s>``) is split into ordinary
pieces, never mapped to the special id. Training is deterministic: the same texts, vocabulary
size and languages give the same vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")  # ids 0, 1, 2, 3
FORMAT = "ttr-bench translation bpe 1"  # written by save, checked by load


def tag_token(lang: str) -> str:
    """The target-language tag's token, e.g. "<2de>"."""
    return f"<2{lang}>"


class BpeVocab:
    """A trained tokenizer with the fixed special ids and one tag per target language."""

    def __init__(self, tokenizer: Tokenizer, languages: Sequence[str]) -> None:
        self.languages = _checked(languages)
        expected = [*SPECIALS, *map(tag_token, self.languages)]
        found = [tokenizer.id_to_token(i) for i in range(len(expected))]
        if found != expected:
            raise ValueError(
                f"tokenizer ids 0..{len(expected) - 1} are {found}; expected {expected}"
            )
        tokenizer.encode_special_tokens = True  # specials' spellings in text are plain text
        self._tokenizer = tokenizer
        self._tags = {lang: len(SPECIALS) + i for i, lang in enumerate(self.languages)}
        self.pad, self.bos, self.eos, self.unk = 0, 1, 2, 3  # unk: reserved, never produced

    @property
    def size(self) -> int:
        """Vocabulary size: ids are 0..size-1."""
        return self._tokenizer.get_vocab_size()

    def tag(self, lang: str) -> int:
        """The id of the tag token ``<2lang>``."""
        if lang not in self._tags:
            raise ValueError(f"no tag for language {lang!r}; the vocabulary has {list(self._tags)}")
        return self._tags[lang]

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text``, no special tokens added."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens (pad, bos, eos, unk, tags) skipped; it does not
        stop at eos (the caller truncates there)."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.size]
        if bad:
            raise ValueError(f"ids {bad[:5]} are outside the vocabulary 0..{self.size - 1}")
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        """One JSON file: the tokenizer's own JSON and the language list."""
        payload = {
            "format": FORMAT,
            "languages": list(self.languages),
            "tokenizer": json.loads(self._tokenizer.to_str()),
        }
        Path(path).write_text(json.dumps(payload, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> BpeVocab:
        from tokenizers import Tokenizer

        payload = json.loads(Path(path).read_text())
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a vocabulary written by BpeVocab.save")
        tokenizer = Tokenizer.from_str(json.dumps(payload["tokenizer"]))
        return cls(tokenizer, payload["languages"])


def train_bpe(texts: Iterable[str], vocab_size: int, languages: Sequence[str]) -> BpeVocab:
    """Train the joint vocabulary on ``texts`` (both sides of every language's training pairs).

    ``vocab_size`` counts the specials, the tags and the 256 byte pieces; the result is smaller
    when the texts allow fewer merges.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = [*SPECIALS, *map(tag_token, _checked(languages))]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(specials) + len(alphabet):
        raise ValueError(
            f"vocab_size {vocab_size} is too small: it must hold {len(specials)} special and tag "
            f"tokens and {len(alphabet)} byte pieces ({len(specials) + len(alphabet)}) plus merges"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return BpeVocab(tokenizer, languages)


def _checked(languages: Sequence[str]) -> tuple[str, ...]:
    languages = tuple(languages)
    repeated = sorted({lang for lang in languages if languages.count(lang) > 1})
    if repeated:
        raise ValueError(f"languages {repeated} are given more than once; list each once")
    return languages
