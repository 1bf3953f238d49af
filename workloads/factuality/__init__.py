"""Workload ``factuality``: factual text generation, scored exactly against a knowledge base.

Facts and sources: docs/workloads.md#factuality, docs/methods.md#factuality; this folder's README.md
says how
the target was calibrated. ``default`` and ``smoke`` train a small decoder-only GPT (``model.py``)
from scratch on the biographies and question-answer pairs of a seeded synthetic knowledge base
(``kb.py``, the bioS recipe). The evaluator asks the *minority* people's questions, which are never
trained on (primary metric: exact match), and samples open-ended biographies from their names
under nucleus and factual-nucleus sampling (``sampling.py``), scored by factual precision with a
distinctness guard (``text.py``). ``full`` adapts the FactualityPrompts set when the user supplies
it (``full.py``).

Methods choose the data (``data_selection`` over the ``"documents"`` stream, packed with
``pack``), the loss mask, the optimizer and the schedule. Decoding is fixed here.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch.nn import functional as F

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
from workloads.factuality import kb as kbmod
from workloads.factuality.data import (
    DataError,
    Document,
    DocumentStream,
    LMBatch,
    PackedStream,
    Sequenced,
    pack,
    plain,
)
from workloads.factuality.model import GPT, GPTArch
from workloads.factuality.sampling import (
    FACTUAL_NUCLEUS,
    NUCLEUS,
    Decoding,
    greedy,
    group_by_length,
    sample,
)
from workloads.factuality.text import MentionTrie, WordVocab, distinct_n, fact_score

SETTINGS: tuple[Decoding, ...] = (NUCLEUS, FACTUAL_NUCLEUS)


@dataclass(frozen=True)
class FactualitySpec(WorkloadSpec):
    dataset: str = "generated"  # "generated", or "factuality_prompts" (full)
    n_majority: int = 60  # well-covered people: ``multi`` shuffled biographies and their QA
    n_minority: int = 100  # one biography each; their QA is held out (half validation)
    multi: int = 5
    data_seed: int = 0
    context: int = 128  # tokens per packed row
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    ffn: int = 512
    gen_people: int = 50  # open-ended generations per decoding setting per evaluation
    gen_tokens: int = 48
    eval_seed: int = 20221  # the evaluator's sampling generator
    prompts_path: str = ""  # full: FactualityPrompts jsonl (file or folder)
    documents_path: str = ""  # full: the topics' Wikipedia pages (title, text)
    bpe_vocab: int = 16_000  # full


DEFAULT = FactualitySpec(
    name="factuality",
    variant="default",
    metric="qa_em",
    direction="max",
    target=0.25,
    guards=(Guard("distinct2_nucleus", ">=", 0.5),),
    budget_s={"cpu": 280.0, "gpu": 60.0},  # gpu: provisional, not yet measured
    eval_every_s=20.0,
    step_hint=750,  # the steps the cpu budget allows at lm_baseline's speed
    batch_size_hint=32,
    eval_samples=50,
    data="generated: 60 majority people (5 shuffled biographies and 6 QA pairs each) and 100 "
    "minority people (one biography each; QA held out, 50 validation and 50 test people), "
    "knowledge base seed 0 (factuality/kb.py)",
    calibration=(
        "2026-11-23, cpu-2core: lm_baseline (lr 3e-3 from exploratory runs, not scanned), "
        "3 seeds x 700 steps, validation every 50 steps: best qa_em 0.280, 0.283, 0.260 "
        "(median 0.28); target = median less 0.03 (one standard error of an exact-match rate "
        "near 0.27 over 300 questions) = 0.25, first reached at 88.6, 106.6 and 110.4 s of "
        "training; budget = 4/3 x 110.4 s, rounded up to 150 s; guard distinct2_nucleus >= "
        "0.5 (the baseline's is 0.88-0.92). Re-checked 2026-12-02 with the other workloads "
        "(issue 9): lm_baseline reached it at 80.5 and 120.8 s and missed seed 2 (best 0.237; "
        "seeds 0-2), adamw at its defaults peaked at 0.077; target and budget kept (its learning "
        "rate is 0 after step 700, about 120 s). Details: workloads/factuality/README.md."
        " Re-set 2026-12-05 under the bench's protocol (issue 19: 10 seeds at the defaults, 1.5x"
        " budget, one pinned core of cpu-2core, class cpu-1core): budget = the 9th of 10 times"
        " to target (207.5 s) / 0.75, rounded up to 10 s = 280 s; step_hint = the steps 280 s"
        " allows at lm_baseline's median speed = 750 (methods' horizon_factor rescaled so their"
        " schedules keep their steps)."
    ),
)

SPECS: dict[str, FactualitySpec] = {
    "default": DEFAULT,
    "smoke": dataclasses.replace(
        DEFAULT,
        variant="smoke",
        n_majority=40,
        n_minority=20,
        multi=2,
        d_model=64,
        heads=2,
        layers=2,
        ffn=128,
        metric="qa_loss",  # exact match needs minutes; the loss on the answers moves in seconds
        direction="min",
        target=4.0,
        guards=(),
        budget_s={"cpu": 8.0, "gpu": 8.0},
        eval_every_s=2.0,
        step_hint=300,
        batch_size_hint=16,
        eval_samples=10,
        gen_people=10,
        gen_tokens=24,
        data="generated: 40 majority and 20 minority people, 2 biographies per majority person",
        calibration="loose on purpose: exercises the code path in seconds, not a result "
        "(qa_loss starts near 6.3 and was below 4.0 at the first evaluation, 2 s, on cpu-2core)",
    ),
    "full": dataclasses.replace(
        DEFAULT,
        variant="full",
        dataset="factuality_prompts",
        metric="ne_error_factual",
        direction="min",
        target=0.3,
        guards=(Guard("distinct2_factual", ">=", 0.5),),
        context=512,
        d_model=768,
        heads=12,
        layers=12,
        ffn=3072,
        gen_tokens=64,
        eval_samples=500,
        budget_s={"cpu": 3_600_000.0, "gpu": 43_200.0},
        eval_every_s=1800.0,
        step_hint=100_000,
        batch_size_hint=64,
        data="FactualityPrompts (fever_factual_final.jsonl, fever_nonfactual_final.jsonl) and "
        "the prompts' Wikipedia pages, supplied by the user (prompts_path, documents_path); "
        "a GPT-2-small-sized model trained from scratch on the pages",
        calibration="provisional: never run (no data or GPU here); target and budget are "
        "placeholders to be calibrated like the default's",
    ),
}


class FactualityWorkload(Workload):
    spec: FactualitySpec

    def __init__(self, spec: FactualitySpec, device: torch.device, eval_seed: int | None = None):
        super().__init__(spec, device, eval_seed)
        if spec.dataset == "generated":
            self._build_generated(spec)
        elif spec.dataset == "factuality_prompts":
            self._build_full(spec)
        else:
            raise ContractError(
                f"unknown factuality dataset {spec.dataset!r}; "
                "known: 'generated', 'factuality_prompts'"
            )
        self.arch = GPTArch(
            vocab=self.vocab_size,
            context=spec.context,
            d_model=spec.d_model,
            heads=spec.heads,
            layers=spec.layers,
            ffn=spec.ffn,
        )

    # -- data --------------------------------------------------------------------------------
    def _build_generated(self, spec: FactualitySpec) -> None:
        try:
            kb = kbmod.generate_kb(spec.n_majority, spec.n_minority, spec.data_seed)
            bios = kbmod.biographies(kb, spec.multi)
        except kbmod.KnowledgeBaseError as e:
            raise ContractError(str(e)) from None
        self._kb = kb
        self.vocab = WordVocab(vocabulary(kb))
        self.vocab_size, self.pad, self.eos = self.vocab.size, self.vocab.pad, self.vocab.eos
        self.sentence_end = self.vocab.sentence_end
        enc = self.vocab.encode_words
        self._names = [enc(kbmod.words(p.name)) for p in kb.people]
        docs: list[Document] = []
        for person, sentences in bios:
            toks = [tuple(enc(kbmod.words(s.text))) for s in sentences]
            pivots = [len(kbmod.words(s.text[: s.value_start])) for s in sentences]
            docs.append(Document(person.index, "bio", tuple(toks), tuple(pivots)))
        for person in kb.majority:
            for attribute in kbmod.ATTRIBUTES:
                prompt, answer = kbmod.question(person, attribute)
                q = enc(kbmod.words(prompt))
                a = enc([*kbmod.words(answer), "."])
                docs.append(Document(person.index, "qa", (tuple(q + a),), (len(q),)))
        self.documents = tuple(docs)
        self._minority = list(kb.minority)
        self._truth = {
            p.index: {a: tuple(enc(kbmod.words(v))) for a, v in p.attributes.items()}
            for p in kb.people
        }
        self._trie = MentionTrie(
            {a: [enc(kbmod.words(v)) for v in vs] for a, vs in kb.values.items()}
        )

    def _build_full(self, spec: FactualitySpec) -> None:
        from workloads.factuality import full

        if not spec.prompts_path or not spec.documents_path:
            raise ContractError(
                "factuality/full needs the FactualityPrompts files and their Wikipedia pages: "
                "set prompts_path and documents_path (nothing is downloaded)"
            )
        try:
            corpus = full.build_full(
                spec.prompts_path,
                spec.documents_path,
                spec.bpe_vocab,
                spec.data_seed,
                max_sentence_tokens=spec.context // 2,
            )
        except full.FactualityDataError as e:
            raise ContractError(str(e)) from None
        self._corpus = corpus
        self.vocab = corpus.tokenizer
        self.vocab_size, self.pad, self.eos = corpus.tokenizer.size, 0, corpus.eos
        self.sentence_end = corpus.sentence_end
        self._names = [corpus.topic_tokens(i) for i in range(len(corpus.topics))]
        self.documents = tuple(corpus.documents)

    @property
    def _eval_people(self) -> dict[str, list]:
        """The minority people split into validation and test by the harness's evaluation seed
        (the minority itself is public by design: see docs/reliability.md#evaluation-data)."""
        seed = self.require_eval_seed("validation")
        minority = list(self._minority)
        random.Random(f"factuality-split-{split_seed(seed, 'factuality')}").shuffle(minority)
        half = len(minority) // 2
        return {"validation": minority[:half], "test": minority[half:]}

    def topic_tokens(self, topic: int) -> list[int]:
        """The token ids of a document's topic entity (a person's full name, a page title)."""
        return list(self._names[topic])

    # -- model -------------------------------------------------------------------------------
    def init_model(self, rng: torch.Generator) -> GPT:
        return seeded_build(lambda: GPT(self.arch), rng, self.device)

    # -- training data -----------------------------------------------------------------------
    def train_streams(self, batch_size: int, rng: torch.Generator) -> Mapping[str, Iterator]:
        """``"documents"``: shuffled epochs of training ``Document``s (for ``pack``);
        ``"train"``: the same documents packed plainly, ``batch_size`` rows per batch."""
        if batch_size < 1:
            raise ContractError(f"batch size must be >= 1; got {batch_size}")
        seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device))
        docs = DocumentStream(self.documents, torch.Generator().manual_seed(seed))
        mine = DocumentStream(self.documents, torch.Generator().manual_seed(seed))
        return {
            "documents": docs,
            "train": PackedStream(
                mine, batch_size, self.spec.context, self.eos, self.pad, self.device
            ),  # fmt: skip
        }

    def pack(
        self, stream: DocumentStream, rows: int, sequence: Callable[[Document], Sequenced] | None
    ) -> LMBatch:
        """``rows`` rows of whole documents from ``stream``, each turned into (tokens, weights)
        by ``sequence`` (default: every token, weight 1) and followed by nothing else: a
        ``sequence`` must end its document with ``workload.eos`` itself."""
        seq = sequence or (lambda d: plain(d, self.eos))
        try:
            return pack(stream, rows, self.spec.context, seq, self.pad, self.device)
        except DataError as e:
            raise ContractError(str(e)) from None

    def token_losses(self, model: GPT, batch: LMBatch) -> torch.Tensor:
        """(B, L - 1) cross-entropy of every target token (0 where nothing is predicted)."""
        logits = model(batch.inputs)
        ce = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            batch.targets.reshape(-1),
            reduction="none",
        )
        return ce.view_as(batch.loss_mask)

    def loss(self, model: GPT, batch: LMBatch) -> torch.Tensor:
        """The default loss: cross-entropy averaged over the batch's weighted target tokens."""
        ce = self.token_losses(model, batch)
        return (ce * batch.loss_mask).sum() / batch.loss_mask.sum().clamp_min(1.0)

    # -- evaluation (harness only) -----------------------------------------------------------
    def reference_network(self, model: torch.nn.Module) -> GPT:
        return reference_copy(GPT(self.arch).to(self.device), model, "factuality")

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        ref = self.reference_network(model)
        if self.spec.dataset != "generated":
            from workloads.factuality.full import evaluate_full

            return evaluate_full(
                ref,
                self._corpus,
                split,
                self.spec.eval_samples,
                self.spec.gen_tokens,
                self.spec.eval_seed,
                self.device,
            )
        self.require_eval_seed(split)
        if split not in self._eval_people:
            raise ContractError(f"unknown split {split!r}; known: validation, test")
        people = self._eval_people[split]
        metrics = self.answer_questions(ref, people[: self.spec.eval_samples])
        if split == "validation" and not self._primary_met(metrics):
            # The generations (85% of an evaluation's time) feed only the guard and analysis
            # metrics, and the guard decides nothing while the primary metric misses the
            # target: validation computes them where it does (workloads/factuality/README.md).
            return metrics
        gen = torch.Generator(device=self.device).manual_seed(self.spec.eval_seed)
        for setting in SETTINGS:
            metrics.update(self.generate_biographies(ref, people[: self.spec.gen_people],
                                                     setting, gen))  # fmt: skip
        return metrics

    def _primary_met(self, metrics: dict[str, float]) -> bool:
        value = metrics[self.spec.metric]
        return (
            value >= self.spec.target if self.spec.direction == "max" else value <= self.spec.target
        )

    def answer_questions(self, model: GPT, people) -> dict[str, float]:
        """Greedy answers to every attribute question of ``people``: exact match overall and
        per attribute, and the teacher-forced loss per answer token."""
        enc = self.vocab.encode_words
        prompts, answers, attrs = [], [], []
        for p in people:
            for a in kbmod.ATTRIBUTES:
                q, v = kbmod.question(p, a)
                prompts.append(enc(kbmod.words(q)))
                answers.append(enc([*kbmod.words(v), "."]))
                attrs.append(a)
        hits = [False] * len(prompts)
        nll, n_tok = 0.0, 0
        stop = self.sentence_end | {self.eos}
        for length, idx in group_by_length(prompts).items():
            longest = max(len(answers[i]) for i in idx)
            out = greedy(model, self._tensor([prompts[i] for i in idx]), longest).tolist()
            for i, row in zip(idx, out, strict=True):
                cut = next((k for k, t in enumerate(row) if t in stop), len(row))
                hits[i] = row[:cut] == answers[i][:-1]
            for alen in sorted({len(answers[i]) for i in idx}):
                sub = [i for i in idx if len(answers[i]) == alen]
                full = self._tensor([prompts[i] + answers[i] for i in sub])
                with torch.inference_mode():
                    logits = model(full[:, :-1])[:, length - 1 :]
                    ce = F.cross_entropy(
                        logits.float().reshape(-1, logits.shape[-1]),
                        full[:, length:].reshape(-1),
                        reduction="sum",
                    )
                nll += float(ce)
                n_tok += alen * len(sub)
        metrics = {"qa_em": sum(hits) / max(1, len(hits)), "qa_loss": nll / max(1, n_tok)}
        for a in kbmod.ATTRIBUTES:
            mine = [h for h, x in zip(hits, attrs, strict=True) if x == a]
            metrics[f"qa_em_{a}"] = sum(mine) / max(1, len(mine))
        return metrics

    def generate_biographies(
        self, model: GPT, people, setting: Decoding, gen: torch.Generator
    ) -> dict[str, float]:
        """Open-ended generations from each person's name: factual precision of their attribute
        mentions, mentions per generation, distinct-2."""
        if not people:
            return {}
        prompt = self._tensor([self._names[p.index] for p in people])
        out = sample(model, prompt, self.spec.gen_tokens, setting, self.sentence_end, gen)
        correct = mentions = 0
        seqs = []
        for p, row in zip(people, out.tolist(), strict=True):
            if self.eos in row:
                row = row[: row.index(self.eos)]
            seqs.append(row)
            score = fact_score(self._trie, row, self._truth[p.index])
            correct += score.correct
            mentions += score.mentions
        name = setting.name
        return {
            f"fact_precision_{name}": correct / mentions if mentions else 0.0,
            f"mentions_{name}": mentions / len(people),
            f"distinct2_{name}": distinct_n(seqs, 2),
        }

    def _tensor(self, rows) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    # -- text ------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` in the workload's vocabulary (generated: the closed word
        vocabulary, an unknown word raises ``ContractError``; full: the BPE)."""
        if self.spec.dataset != "generated":
            return list(self.vocab.encode(text))
        try:
            return self.vocab.encode_words(kbmod.words(text))
        except ValueError as e:
            raise ContractError(str(e)) from None

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)


WORKLOAD = FactualityWorkload


def vocabulary(kb: kbmod.KnowledgeBase) -> set[str]:
    """Every word the generated corpus and its questions can contain."""
    out: set[str] = {"Question", "Answer", ":", "."}
    for templates in kbmod.TEMPLATES.values():
        for t in templates:
            stripped = t.replace("{s}", " ").replace("{o}", " ").replace("{v}", " ")
            ws = kbmod.words(stripped)
            out.update(ws)
            out.update(w.capitalize() for w in ws[:1])
    for q in kbmod.QUESTIONS.values():
        out.update(kbmod.words(q.replace("{s}", " ")))
    for forms in kbmod.SUBJECT.values():
        out.update(forms)
    out.update(kbmod.OBJECT.values())
    for p in kb.people:
        out.update(kbmod.words(p.name))
    for values in kb.values.values():
        for v in values:
            out.update(kbmod.words(v))
    return out


def _causal_inputs(g: torch.Generator, dtype: torch.dtype, device: torch.device) -> tuple:
    q, k, v = (
        torch.randn(2, 4, 13, 16, generator=g, dtype=dtype).to(device).requires_grad_()
        for _ in range(3)
    )
    return q, k, v


def causal_attention(q, k, v) -> torch.Tensor:
    """Causal scaled dot-product attention, as the GPT's blocks use it."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


REFERENCE_OPS = {
    "causal_attention": ReferenceOp(
        fn=causal_attention,
        make_inputs=_causal_inputs,
        tolerances={torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10)},
        description="softmax(q k^T / sqrt(d) + causal mask) v: (B, h, T, d) x3 -> (B, h, T, d), "
        "with gradients",
    ),
    # integer-quantized arithmetic, for kernels that train the linear layers on integers
    **INT_ARITH_OPS,
}
