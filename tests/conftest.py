"""Shared fixtures: tests build their paths from code, never from the working directory."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import pytest

from harness.discovery import repo_root

pytest_plugins = ["slurm_fixture"]  # the session fixture `slurm_cluster`: a real SLURM cluster

# Tests share their machine by design (a CI runner, another job): trials check their machine
# for contention only in the tests of that check (they set TTR_CONTENTION=on themselves). The
# generated-data cache goes to a folder of this test session, not the user's ~/.cache.
os.environ["TTR_CONTENTION"] = "off"
os.environ.setdefault("TTR_CACHE_DIR", tempfile.mkdtemp(prefix="ttr-test-cache-"))


@pytest.fixture
def root() -> Path:
    return repo_root()


# A submission declares its workloads in its README's front matter.
LDPC_README = "---\nworkloads: [ldpc]\n---\n# test\n"


@pytest.fixture
def make_submission(tmp_path):
    """Write a submission folder from source text; returns its path."""

    def make(name: str, source: str, space: str = "{}", readme: str = LDPC_README) -> Path:
        folder = tmp_path / "subs" / name
        folder.mkdir(parents=True)
        (folder / "submission.py").write_text(textwrap.dedent(source))
        (folder / "search_space.json").write_text(space)
        (folder / "README.md").write_text(readme)
        return folder

    return make


# A minimal correct ldpc submission, reused by the failure tests (each breaks one thing).
GOOD_SUBMISSION = """
import time
import torch

def get_batch_size(workload):
    return 16

def init(workload, model, hparams, rng):
    return {"opt": torch.optim.Adam([model.w_cn, model.w_ch], lr=1e-2), "loss": None}

def update(workload, model, state, batch, hparams, step, rng):
    outs, _ = model(batch.llr)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(-outs[-1], batch.bits)
    state["opt"].zero_grad()
    loss.backward()
    state["opt"].step()
    model.project_()
    state["loss"] = loss.detach()
    return state
"""
