"""BLEU as the workload scores it: sacrebleu's corpus BLEU, 13a tokenizer, mixed case, exp
smoothing (sacrebleu's defaults, written out so a default change upstream cannot move scores).

The signature string (``SIGNATURE``) is what a paper reports next to a sacrebleu score.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sacrebleu.metrics import BLEU

SETTINGS = {"tokenize": "13a", "lowercase": False, "smooth_method": "exp"}


@lru_cache(maxsize=1)
def _metric() -> BLEU:
    return BLEU(**SETTINGS)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses`` against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        raise ValueError("BLEU of an empty corpus is undefined")
    return float(_metric().corpus_score(list(hypotheses), [list(references)]).score)


def signature() -> str:
    """sacrebleu's signature, e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:..``."""
    metric = _metric()
    metric.corpus_score(["x"], [["x"]])  # the signature needs the number of references
    return str(metric.get_signature())
