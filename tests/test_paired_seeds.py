"""The paired design: study s gives every submission and trial the same initial weights, the
same data order and the same evaluation seed (docs/design.md#tuning).

Two hand-made submissions with different search spaces (so their trials run other
hyperparameters) are planned as a sweep plans them (``plan_jobs``) and run through the real
referee and athlete processes for two steps, on snn ``smoke`` (seeded initial weights,
shuffled epochs). Each keeps, in its state, the weights ``init`` received and the
first batch it trained on; the checkpoint written at the step-1 evaluation (kept) carries that
state out. Neither changes the weights, so the referee's evaluation of them differs only by the
evaluation data: equal metrics mean the same evaluation seed.
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
import torch

from harness import checkpoint, discovery, evalseed, records
from harness.runner import run_trial
from harness.search_space import SearchSpace
from harness.sweep import plan_jobs
from harness.tuning import PlanError, load_or_make_plan, make_plan, study_seed, trial_seed

RECORDER = """
import dataclasses
import torch

def _tensors(batch):
    if dataclasses.is_dataclass(batch):
        batch = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    elif not isinstance(batch, dict):
        batch = dict(enumerate(batch))
    return {str(k): v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}

def get_batch_size(workload):
    return 16

def init(workload, model, hparams, rng):
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"init": init}

def update(workload, model, state, batch, hparams, step, rng):
    if step == 0:
        state["first_batch"] = _tensors(batch)
    return state
"""

README = "---\nworkloads: [snn]\n---\n# test\n"
SPACES = {
    "rec_a": {"lr": {"min": 1e-4, "max": 1e-1, "scaling": "log"}},
    "rec_b": {"width": {"min": 1, "max": 64, "type": "int"}, "beta": {"min": 0.1, "max": 0.9}},
}


def _subs(make_submission):
    return [str(make_submission(n, RECORDER, json.dumps(s), README)) for n, s in SPACES.items()]


def _evals(run_dir):
    return [json.loads(x) for x in (run_dir / records.EVALS_JSONL).read_text().splitlines()]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_plans_give_every_submission_and_trial_of_a_study_one_seed(tmp_path, make_submission):
    runs = tmp_path / "runs"
    jobs = plan_jobs(runs, ["snn"], _subs(make_submission), "smoke", 3, 4, seed=7)
    assert len(jobs) == 2 * 3 * 4
    for study in range(3):
        mine = [j for j in jobs if j.study == study]
        assert {j.seed for j in mine} == {study_seed(7, study)}
        assert len({json.dumps(j.hparams, sort_keys=True) for j in mine}) == 8  # all differ
    assert len({study_seed(7, s) for s in range(3)}) == 3
    # the evaluation seed is the study's, whoever runs it (harness/evalseed.py)
    seeds = [evalseed.eval_seed(runs, "snn", "smoke", s) for s in range(3)]
    assert len(set(seeds)) == 3 and evalseed.eval_seed(runs, "snn", "smoke", 1) == seeds[1]


def test_a_plan_with_one_seed_per_trial_is_refused(tmp_path):
    space = SearchSpace.from_dict(SPACES["rec_a"])
    path = tmp_path / "plan.json"
    old = make_plan(space, studies=2, trials=3, seed=1).to_dict()
    old["points"] = [{**p, "seed": trial_seed(1, p["study"], p["trial"])} for p in old["points"]]
    path.write_text(json.dumps(old))
    with pytest.raises(PlanError, match="run seeds: saved one per trial"):
        load_or_make_plan(path, space, studies=2, trials=3, seed=1)
    # plans of one trial per study (self-tuning ones, the committed boards') keep their seeds
    one = make_plan(space, studies=2, trials=1, seed=1)
    assert [p.seed for p in one.points] == [trial_seed(1, s, 0) for s in range(2)]


@pytest.mark.slow  # the CI's slow step runs it; the default run stays under 15 min
def test_a_study_trains_and_evaluates_every_submission_alike(tmp_path, make_submission):
    runs = tmp_path / "runs"
    jobs = plan_jobs(runs, ["snn"], _subs(make_submission), "smoke", studies=2, trials=2)
    metric = discovery.get_spec("snn", "smoke").metric
    hw = records.hardware_class()
    seen: dict[int, list[dict]] = {0: [], 1: []}
    for job in jobs:
        if job.study == 1 and job.trial == 1:
            continue  # one trial of each submission in study 1 shows that studies differ
        # two steps: the first evaluation (at step 1) checkpoints the state this test reads
        cfg = dataclasses.replace(
            job.config(), max_steps=2, final_test_eval=False, keep_checkpoint=True
        )
        res = run_trial(cfg)
        assert res.status == "complete", res.reason
        ckpt = checkpoint.load(job.run_dir(hw), torch.device("cpu"), weights_only=True)
        state = torch.load(io.BytesIO(ckpt["athlete"]), weights_only=False)["state"]
        rows = _evals(res.run_dir)
        seen[job.study].append({"state": state, "metric": [r[metric] for r in rows], "job": job})
    for got in seen.values():
        first = got[0]
        hps = {json.dumps(g["job"].hparams, sort_keys=True) for g in got}
        assert len(hps) == len(got) and len({g["job"].submission for g in got}) == 2
        for other in got[1:]:
            assert _same(other["state"]["init"], first["state"]["init"])
            assert _same(other["state"]["first_batch"], first["state"]["first_batch"])
            # untouched weights on the same evaluation data: the same metric, bit for bit
            assert other["metric"] == first["metric"]
    a, b = seen[0][0]["state"], seen[1][0]["state"]
    assert not _same(a["init"], b["init"]) and not _same(a["first_batch"], b["first_batch"])
