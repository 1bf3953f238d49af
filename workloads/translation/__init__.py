"""Workload ``translation``: one-to-many multilingual translation with imbalanced data.

Facts and sources: docs/workloads.md#translation, docs/methods.md#translation; this folder's
README.md says how
the target was calibrated. Fixed here: the corpus (``corpus.py`` generates the default one; ``full``
loads real pairs through ``hf_pairs.py`` and a joint BPE from ``bpe.py``), the pre-LN Transformer
(``model.py``), the default loss (label-smoothed cross-entropy in fairseq's form) and the
evaluator: greedy decoding of the first ``eval_samples`` validation pairs of every language,
BLEU by sacrebleu (13a, mixed case, exp smoothing); the primary metric is the mean BLEU over the
low-resource languages, guarded by the mean over the high-resource ones.

Methods choose the data order (``data_selection`` over the per-language streams), the loss
weighting, the optimizer and the schedule.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.api import (
    ContractError,
    Guard,
    ReferenceOp,
    Workload,
    WorkloadSpec,
    reference_copy,
    seeded_build,
    split_seed,
)
from workloads._common.int_arith import INT_ARITH_OPS
from workloads.translation import corpus as gen
from workloads.translation.bleu import corpus_bleu
from workloads.translation.data import (
    PAD,
    CorpusError,
    Encoded,
    LanguageStream,
    MixtureStream,
    TranslationBatch,
    WordVocab,
    encode_generated,
    encode_split,
    make_batch,
    mixture_batch,
    temperature_probs,
)
from workloads.translation.model import Arch, Seq2Seq

log = logging.getLogger("ttr.translation")


@dataclass(frozen=True)
class TranslationSpec(WorkloadSpec):
    dataset: str = "generated"  # "generated" or a datasets name such as "Helsinki-NLP/opus-100"
    languages: tuple[str, ...] = ("aa", "ab", "ac", "ba", "bb", "bc")  # target languages
    low_resource: tuple[str, ...] = ("ac", "bb", "bc")  # the primary metric's languages
    train_sizes: tuple[tuple[str, int], ...] = ()  # generated: sizes; full: caps on real pairs
    held_out: int = 500  # generated: validation and test pairs per language
    data_seed: int = 0
    data_path: str = ""  # full: a local copy of the dataset; "" loads from the hub
    bpe_vocab: int = 32_000  # full: joint BPE vocabulary size
    d_model: int = 128
    heads: int = 4
    ffn: int = 256
    encoder_layers: int = 2
    decoder_layers: int = 2
    dropout: float = 0.1
    max_len: int = 32  # tokens per side, tag and </s> included; longer pairs are dropped
    label_smoothing: float = 0.1
    # the ``"train"`` stream's mixture, p_i ~ D_i^(1/T): the common T = 5 of Arivazhagan et al.
    # 2019 (docs/methods.md#temperature_sampling), so a method that keeps the default data order is
    # not starved of
    # the low-resource languages (T = 1, proportional, gives `bc` 0.6% of the examples)
    train_temperature: float = 5.0
    eval_batch: int = 500


DEFAULT = TranslationSpec(
    name="translation",
    variant="default",
    metric="bleu_low",
    direction="max",
    target=75.0,
    guards=(Guard("bleu_high", ">=", 80.0),),
    budget_s={"cpu": 170.0, "gpu": 60.0},  # gpu: provisional, not yet measured
    eval_every_s=15.0,
    step_hint=1600,  # the steps the cpu budget allows at temperature_sampling's speed
    batch_size_hint=64,
    eval_samples=100,
    data="generated: 6 target languages in two families (translation/corpus.py, seed 0), "
    "train 24k/8k/600 (family A) and 16k/600/300 (family B) pairs, 500 validation and 500 test "
    "pairs per language; 100 validation pairs per language per evaluation",
    calibration=(
        "2026-11-23, cpu-2core: temperature_sampling tuned over lr (1e-3, 2e-3, 4e-3 at T = 5; "
        "best 74.7, 79.1, 55.9 low-resource BLEU, lr 2e-3 best), then 3 seeds x 1,500 steps: "
        "best bleu_low 76.7, 78.1, 77.9 (median 77.9); target = median rounded down to 1, less "
        "2 for evaluation noise (a rerun of seed 0 differed by 2.4) = 75, first reached at "
        "step 1,200 in every seed (106.6, 98.4, 107.0 s of training); budget = 4/3 x 107 s, "
        "rounded up to 150 s; guard = the baseline's median high-resource BLEU at that "
        "evaluation (83.9) less 0.5, rounded down = 83. Re-checked 2026-12-02 with the other "
        "workloads (issue 9): temperature_sampling reached it at 75.2, 75.2, 90.4 s (seeds "
        "0-2), adamw at its defaults stayed at 0.5 BLEU; budget = 4/3 x 90.4 s = 120 s. "
        "Details: workloads/translation/README.md."
        " Re-set 2026-12-05 under the bench's protocol (issue 19: 10 seeds at the defaults, 1.5x"
        " budget, one pinned core of cpu-2core, class cpu-1core): budget = the 9th of 10 times"
        " to target (120.8 s) / 0.75, rounded up to 10 s = 170 s; step_hint = the steps 170 s"
        " allows at temperature_sampling's median speed = 1,600; guard re-set to bleu_high >= 80"
        " (median 83.2 at the target over the 10 seeds, less 3)."
    ),
)

SPECS: dict[str, TranslationSpec] = {
    "default": DEFAULT,
    "smoke": dataclasses.replace(
        DEFAULT,
        variant="smoke",
        languages=("aa", "ac", "ba", "bb"),
        low_resource=("ac", "bb"),
        train_sizes=(("aa", 2000), ("ac", 200), ("ba", 1500), ("bb", 200)),
        held_out=60,
        d_model=64,
        heads=2,
        ffn=128,
        encoder_layers=1,
        decoder_layers=1,
        target=0.2,
        guards=(),
        budget_s={"cpu": 8.0, "gpu": 8.0},
        eval_every_s=2.0,
        step_hint=600,
        batch_size_hint=32,
        eval_samples=60,
        data="generated: 4 languages, 2,000/200/1,500/200 training pairs, 60 held out each",
        calibration="loose on purpose: exercises the code path in seconds, not a result",
    ),
    "full": dataclasses.replace(
        DEFAULT,
        variant="full",
        dataset="Helsinki-NLP/opus-100",
        languages=("de", "nl", "af", "fr", "it", "gl"),
        low_resource=("af", "it", "gl"),
        train_sizes=(("nl", 300_000), ("af", 10_000), ("it", 30_000), ("gl", 5_000)),
        held_out=2000,
        d_model=512,
        heads=8,
        ffn=2048,
        encoder_layers=6,
        decoder_layers=6,
        dropout=0.3,
        max_len=128,
        target=20.0,
        guards=(),
        budget_s={"cpu": 3_600_000.0, "gpu": 43_200.0},
        eval_every_s=1800.0,
        step_hint=100_000,
        batch_size_hint=128,
        eval_samples=500,
        eval_batch=100,
        data="OPUS-100 en->xx through datasets (Helsinki-NLP/opus-100 or a local copy): de and "
        "fr in full (1M pairs), nl capped at 300k, and af, it, gl made low-resource by seeded "
        "caps of 10k, 30k and 5k pairs; joint BPE of 32k",
        calibration="provisional: never run (no GPU lent); target and budget are placeholders "
        "to be calibrated like the default's",
    ),
}


class TranslationWorkload(Workload):
    spec: TranslationSpec

    def __init__(self, spec: TranslationSpec, device: torch.device, eval_seed: int | None = None):
        super().__init__(spec, device, eval_seed)
        self.languages = tuple(spec.languages)
        if len(set(self.languages)) != len(self.languages) or not self.languages:
            raise ContractError(f"translation/{spec.variant}: bad language list {spec.languages}")
        missing = [c for c in spec.low_resource if c not in self.languages]
        if missing:
            raise ContractError(f"low-resource languages {missing} are not in {self.languages}")
        self.low_resource = tuple(spec.low_resource)
        self.high_resource = tuple(c for c in self.languages if c not in self.low_resource)
        self.vocab, self.data = load_corpus(spec)
        self.train_sizes = {c: len(self.data[c]["train"]) for c in self.languages}
        self.arch = Arch(
            vocab=self.vocab.size,
            d_model=spec.d_model,
            heads=spec.heads,
            ffn=spec.ffn,
            encoder_layers=spec.encoder_layers,
            decoder_layers=spec.decoder_layers,
            dropout=spec.dropout,
            max_len=spec.max_len,
            pad=PAD,
        )
        self._train = [self.data[c]["train"] for c in self.languages]

    def language_index(self, code: str) -> int:
        try:
            return self.languages.index(code)
        except ValueError:
            raise ContractError(
                f"unknown language {code!r}; this workload has {self.languages}"
            ) from None

    # -- model ---------------------------------------------------------------------------
    def init_model(self, rng: torch.Generator) -> Seq2Seq:
        return seeded_build(lambda: Seq2Seq(self.arch), rng, self.device)

    # -- training data -------------------------------------------------------------------
    def make_batch(self, parts) -> TranslationBatch:
        return make_batch(self._train, parts, self.device)

    def train_streams(self, batch_size: int, rng: torch.Generator) -> Mapping[str, Iterator]:
        """One stream per language code (batches of that language only; ``take(n)`` gives
        example indices for ``mixture_batch``), and ``"train"``: every example's language drawn
        by temperature sampling at ``spec.train_temperature``."""
        if batch_size < 1:
            raise ContractError(f"batch size must be >= 1; got {batch_size}")
        seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device))
        streams = {}
        for k, code in enumerate(self.languages):
            g = torch.Generator().manual_seed((seed + 7919 * (k + 1)) % 2**62)
            streams[code] = LanguageStream(
                k, self.train_sizes[code], batch_size, g, self.make_batch
            )
        mix_rng = torch.Generator().manual_seed(seed % 2**62)
        probs = temperature_probs(self.train_sizes, self.spec.train_temperature)
        streams["train"] = MixtureStream(
            [streams[c] for c in self.languages],
            [probs[c] for c in self.languages],
            mix_rng,
            self.make_batch,
        )
        return streams

    def mixture_batch(
        self, streams: Mapping[str, Iterator], probs: Mapping[str, float], batch_size: int, rng
    ) -> TranslationBatch:
        """A batch whose examples draw their language i.i.d. from ``probs`` (code -> p; codes
        left out get 0)."""
        unknown = [c for c in probs if c not in self.languages]
        if unknown:
            raise ContractError(
                f"unknown language(s) {unknown}; this workload has {self.languages}"
            )
        order = [streams[c] for c in self.languages]
        return mixture_batch(order, [probs.get(c, 0.0) for c in self.languages], batch_size, rng)

    def token_losses(
        self, model: Seq2Seq, batch: TranslationBatch, label_smoothing: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sentence: the summed label-smoothed loss over its target tokens, and the count of
        those tokens. fairseq's form: (1 - e - e/(V-1)) NLL + e/(V-1) sum_k(-log p_k)."""
        eps = self.spec.label_smoothing if label_smoothing is None else label_smoothing
        logits = model(batch.src, batch.tgt_in)
        return smoothed_losses(logits, batch.tgt_out, eps)

    def loss(self, model: Seq2Seq, batch: TranslationBatch) -> torch.Tensor:
        """Mean label-smoothed loss per target token (the default training loss)."""
        per_sentence, tokens = self.token_losses(model, batch)
        return per_sentence.sum() / tokens.sum().clamp_min(1)

    def language_losses(self, model: Seq2Seq, batch: TranslationBatch) -> torch.Tensor:
        """(number of languages,) mean loss per target token of each language in the batch;
        0 (with no gradient) for a language absent from it."""
        per_sentence, tokens = self.token_losses(model, batch)
        n = len(self.languages)
        loss_sum = torch.zeros(n, device=per_sentence.device).index_add(0, batch.lang, per_sentence)
        tok_sum = torch.zeros(n, device=per_sentence.device).index_add(0, batch.lang, tokens)
        return loss_sum / tok_sum.clamp_min(1)

    # -- evaluation (harness only) -------------------------------------------------------
    def reference_network(self, model: torch.nn.Module) -> Seq2Seq:
        return reference_copy(Seq2Seq(self.arch).to(self.device), model, "translation")

    def translate(self, model: Seq2Seq, src: torch.Tensor) -> list[str]:
        """Greedy translations (reference-style text) of padded sources, up to 1.5 x the source
        length + 10 tokens (capped by the model's max_len)."""
        out: list[str] = []
        for i in range(0, len(src), self.spec.eval_batch):
            s = src[i : i + self.spec.eval_batch].to(self.device)
            s = s[:, : int((s != PAD).sum(1).max())]
            max_len = min(self.arch.max_len, int(1.5 * s.shape[1]) + 10)
            ids = model.greedy(s, self.vocab.bos, self.vocab.eos, max_len).cpu()
            for row in ids.tolist():
                if self.vocab.eos in row:
                    row = row[: row.index(self.vocab.eos)]
                out.append(self.vocab.decode(row))
        return out

    def evaluation_data(self, split: str) -> dict[str, Encoded]:
        """Per language, the encoded ``split``. Generated corpus: held-out sentences drawn from
        the harness's evaluation seed (the training split is the public seed's, unchanged); a
        real corpus: the loader's held-out split (docs/reliability.md#evaluation-data)."""
        seed = self.require_eval_seed(split)
        if split not in ("validation", "test"):
            raise ContractError(f"unknown split {split!r}; known: validation, test")
        if self.spec.dataset != "generated":
            return {c: self.data[c][split] for c in self.languages}
        if not hasattr(self, "_held"):
            spec = self.spec
            pairs = gen.generate(
                spec.languages,
                dict(spec.train_sizes),
                spec.held_out,
                spec.data_seed,
                eval_seed=split_seed(seed, "translation", bits=62),
            )
            held = {c: {k: v for k, v in p.items() if k != "train"} for c, p in pairs.items()}
            self._held = encode_generated(held, self.vocab, spec.max_len)
        return {c: self._held[c][split] for c in self.languages}

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        ref = self.reference_network(model)
        metrics: dict[str, float] = {}
        loss_sum, tok_sum = 0.0, 0.0
        with torch.inference_mode():
            held = self.evaluation_data(split)
            for code in self.languages:
                enc = held[code]
                n = min(len(enc), self.spec.eval_samples)
                hyps = self.translate(ref, enc.src[:n])
                metrics[f"bleu_{code}"] = corpus_bleu(hyps, enc.refs[:n])
                for i in range(0, n, self.spec.eval_batch):
                    j = min(n, i + self.spec.eval_batch)
                    b = make_batch([enc], [(0, torch.arange(i, j))], self.device)
                    nll, toks = smoothed_losses(ref(b.src, b.tgt_in), b.tgt_out, 0.0)
                    loss_sum += float(nll.sum())
                    tok_sum += float(toks.sum())
        metrics["bleu_low"] = _mean(metrics[f"bleu_{c}"] for c in self.low_resource)
        metrics["bleu_high"] = _mean(metrics[f"bleu_{c}"] for c in self.high_resource)
        metrics["loss"] = loss_sum / max(tok_sum, 1.0)
        return metrics


WORKLOAD = TranslationWorkload


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def smoothed_losses(
    logits: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: summed label-smoothed cross-entropy over non-pad positions, and their count."""
    lprobs = torch.log_softmax(logits.float(), dim=-1)
    mask = target != PAD
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    if eps > 0:
        v = lprobs.shape[-1]
        eps_i = eps / (v - 1)
        loss = (1.0 - eps - eps_i) * nll + eps_i * (-lprobs.sum(-1))
    else:
        loss = nll
    loss = loss.masked_fill(~mask, 0.0)
    return loss.sum(1), mask.sum(1).to(loss.dtype)


def load_corpus(spec: TranslationSpec) -> tuple[object, dict[str, dict[str, Encoded]]]:
    """The vocabulary and the encoded splits of every language."""
    if spec.dataset == "generated":
        unknown = [c for c in spec.languages if c not in gen.BY_CODE]
        if unknown:
            raise ContractError(
                f"unknown language code(s) {unknown} for the generated corpus; "
                f"known: {sorted(gen.BY_CODE)}"
            )
        vocab = WordVocab(gen.vocabulary(spec.data_seed), spec.languages)
        return vocab, _generated_encoded(spec, vocab)
    return load_real(spec)


def _generated_encoded(spec: TranslationSpec, vocab: WordVocab) -> dict[str, dict[str, Encoded]]:
    """The generated corpus, encoded: from the data cache (``harness/datacache.py``) when an
    earlier trial made it from the same spec fields and the same generator code."""
    from harness.datacache import cached

    def make() -> dict:
        try:
            pairs = gen.generate(
                spec.languages, dict(spec.train_sizes), spec.held_out, spec.data_seed
            )
        except ValueError as e:
            raise ContractError(str(e)) from None
        enc = encode_generated(pairs, vocab, spec.max_len)
        return {
            lang: {k: {"src": e.src, "tgt": e.tgt, "refs": e.refs} for k, e in splits.items()}
            for lang, splits in enc.items()
        }

    inputs = {
        "languages": list(spec.languages),
        "train_sizes": {k: int(v) for k, v in dict(spec.train_sizes).items()},
        "held_out": spec.held_out,
        "data_seed": spec.data_seed,
        "max_len": spec.max_len,
    }
    here = Path(__file__).parent
    d = cached("translation.generated", inputs, make, [here / "corpus.py", here / "data.py"])
    return {
        lang: {k: Encoded(e["src"], e["tgt"], e["refs"]) for k, e in splits.items()}
        for lang, splits in d.items()
    }


def load_real(spec: TranslationSpec):
    from workloads.translation.bpe import train_bpe
    from workloads.translation.hf_pairs import load_pairs

    raw = load_pairs(
        spec.dataset,
        spec.languages,
        path=spec.data_path or None,
        caps=dict(spec.train_sizes),
        seed=spec.data_seed,
        val_size=spec.held_out,
        test_size=spec.held_out,
    )
    texts = (t for c in spec.languages for pair in raw[c]["train"] for t in pair)
    vocab = train_bpe(texts, spec.bpe_vocab, spec.languages)
    data = {}
    for code in spec.languages:
        data[code] = {}
        for split, pairs in raw[code].items():
            rows = [(vocab.encode(s), vocab.encode(t), t) for s, t in pairs]
            try:
                data[code][split] = encode_split(rows, vocab.tag(code), vocab.eos, spec.max_len)
            except CorpusError as e:
                raise ContractError(f"{code}/{split}: {e}") from None
        log.info("%s: %d training pairs", code, len(data[code]["train"]))
    return vocab, data


def _attention_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    q = torch.randn(3, 4, 9, 16, generator=g, dtype=dtype).to(device).requires_grad_()
    k = torch.randn(3, 4, 11, 16, generator=g, dtype=dtype).to(device).requires_grad_()
    v = torch.randn(3, 4, 11, 16, generator=g, dtype=dtype).to(device).requires_grad_()
    lengths = torch.tensor([11, 7, 3])
    mask = (torch.arange(11)[None, :] < lengths[:, None])[:, None, None, :].to(device)
    return q, k, v, mask


def padded_attention(q, k, v, mask) -> torch.Tensor:
    """Scaled dot-product attention with a key-padding mask (True: attend), as the model's
    cross-attention and encoder self-attention use it."""
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


REFERENCE_OPS = {
    "padded_attention": ReferenceOp(
        fn=padded_attention,
        make_inputs=_attention_inputs,
        tolerances={torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10)},
        description="softmax(q k^T / sqrt(d) masked by key padding) v: (B, h, L, d) x3 and a "
        "(B, 1, 1, S) boolean mask -> (B, h, L, d), with gradients",
    ),
    # integer-quantized arithmetic, for kernels that train the linear layers on integers
    **INT_ARITH_OPS,
}
