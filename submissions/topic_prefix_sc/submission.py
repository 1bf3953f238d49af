"""TopicPrefix with the sentence-completion loss (Lee et al., NeurIPS 2022, arXiv 2206.04624).

Rules: docs/methods.md#topic_prefix_sc.

Data (TopicPrefix): every sentence of a biography is prefixed with its document's topic entity
and a colon, "Name Name Name : He grew up in Boston.", unless it already starts with the entity;
question-answer documents are left as they are (their question names the person).

Loss (sentence completion): within every sentence the tokens up to the pivot get weight
``pre_pivot_weight`` and the tokens after it weight 1; the pivot is the workload's
(bioS: the first token of the attribute value; QA: the first answer token); the document-final
end-of-document token gets weight 0. The weights are aligned with the targets (the workload's
``LMBatch`` does this), not the inputs as in the released Megatron code. ``pre_pivot_weight = 0``
is the paper's pure SC loss; the model here is trained from scratch rather than continued from a
pretrained LM, so a small weight keeps it able to write the template text (our choice, tuned).

Optimizer: as ``lm_baseline`` (AdamW, beta2 0.98, warmup-cosine, clip 1).
"""

from __future__ import annotations

from harness.schedules import optimizer_step
from submissions._common import adamw_warmup_cosine

GRAD_CLIP = 1.0


def topic_prefix_sc(workload, doc, separator, pre_pivot_weight: float, prefix: bool = True):
    """(tokens, weights) of one document under TopicPrefix and the SC loss."""
    topic = workload.topic_tokens(doc.topic)
    head = topic + separator
    ids: list[int] = []
    weights: list[float] = []
    for sentence, pivot in zip(doc.sentences, doc.pivots, strict=True):
        sentence = list(sentence)
        pre: list[int] = []
        if prefix and doc.kind != "qa" and sentence[: len(topic)] != topic:
            pre = head
        ids += pre + sentence
        weights += [pre_pivot_weight] * (len(pre) + pivot) + [1.0] * (len(sentence) - pivot)
    return ids + [workload.eos], weights + [0.0]


def init(workload, model, hparams, rng):
    opt, sched = adamw_warmup_cosine(
        model.parameters(), hparams, workload.spec.step_hint, beta2=0.98
    )
    separator = workload.encode(":")
    return {
        "opt": opt,
        "sched": sched,
        "loss": None,
        "separator": separator,
        "pre_pivot_weight": float(hparams["pre_pivot_weight"]),
        "topic_prefix": bool(hparams["topic_prefix"]),
    }


def data_selection(workload, streams, state, step, rng):
    return workload.pack(
        streams["documents"],
        workload.spec.batch_size_hint,
        lambda d: topic_prefix_sc(
            workload,
            d,
            state["separator"],
            float(state["pre_pivot_weight"]),
            bool(state["topic_prefix"]),
        ),
    )


def update(workload, model, state, batch, hparams, step, rng):
    loss = workload.loss(model, batch)
    return optimizer_step(model, state, loss, GRAD_CLIP)
