"""The factuality submissions' rules: TopicPrefix and the sentence-completion
loss (docs/methods.md#topic_prefix_sc), on the workload's real documents."""

from __future__ import annotations

import pytest
import torch

from harness.discovery import load_submission
from workloads.factuality import SPECS, FactualityWorkload

tp = load_submission("topic_prefix_sc").module


@pytest.fixture(scope="module")
def smoke():
    return FactualityWorkload(SPECS["smoke"], torch.device("cpu"), eval_seed=0)


def _split(ids, weights, eos):
    assert ids[-1] == eos and weights[-1] == 0.0  # the document-final EOD is masked
    return ids[:-1], weights[:-1]


def test_topic_prefix_starts_every_sentence_with_its_entity(smoke):
    sep = smoke.encode(":")
    for doc in smoke.documents[:200]:
        ids, w = _split(*tp.topic_prefix_sc(smoke, doc, sep, 1.0), smoke.eos)
        topic = smoke.topic_tokens(doc.topic)
        pos, rebuilt = 0, []
        for sentence in doc.sentences:
            if doc.kind == "bio":
                assert ids[pos : pos + len(topic)] == topic  # starts with the entity
                if list(sentence[: len(topic)]) != topic:
                    assert ids[pos + len(topic) : pos + len(topic) + len(sep)] == sep
                    pos += len(topic) + len(sep)
            rebuilt += ids[pos : pos + len(sentence)]
            assert ids[pos : pos + len(sentence)] == list(sentence)  # otherwise unchanged
            pos += len(sentence)
        assert pos == len(ids)
        assert w == [1.0] * len(ids)  # pre-pivot weight 1: plain LM loss on the new text


def test_sc_mask_counts_post_pivot_tokens(smoke):
    sep = smoke.encode(":")
    for doc in smoke.documents[:200]:
        for prefix in (True, False):
            ids, w = _split(*tp.topic_prefix_sc(smoke, doc, sep, 0.0, prefix), smoke.eos)
            post = sum(len(s) - k for s, k in zip(doc.sentences, doc.pivots, strict=True))
            assert sum(w) == post
            assert set(w) <= {0.0, 1.0}
            # the weighted tokens are exactly each sentence's tail after its pivot
            tails = [t for s, k in zip(doc.sentences, doc.pivots, strict=True) for t in s[k:]]
            assert [t for t, x in zip(ids, w, strict=True) if x == 1.0] == tails


def test_pack_aligns_weights_with_targets(smoke):
    sep = smoke.encode(":")
    streams = smoke.train_streams(4, torch.Generator().manual_seed(0))
    batch = smoke.pack(streams["documents"], 4, lambda d: tp.topic_prefix_sc(smoke, d, sep, 0.0))
    # a weighted target is never a pad, and every row's weights sit on real tokens
    targets, mask = batch.targets, batch.loss_mask
    assert (targets[mask > 0] != smoke.pad).all()
    assert batch.tokens.shape == (4, smoke.spec.context)
    assert mask.sum() > 0


def test_default_stream_trains_every_token(smoke):
    streams = smoke.train_streams(4, torch.Generator().manual_seed(0))
    batch = next(streams["train"])
    real = batch.targets != smoke.pad
    assert torch.equal(batch.loss_mask > 0, real)
    assert batch.documents > 4
