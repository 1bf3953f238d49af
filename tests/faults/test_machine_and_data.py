"""Timing integrity under load (harness.machine) and evaluation data out of a submission's reach
(harness.evalseed, the workloads' ``eval_seed``). No test asserts a machine's speed."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import stat

import pytest
import torch

from harness import collect, evalseed, machine, records, sweep
from harness.api import ContractError
from harness.discovery import build_workload, get_spec

CPU = torch.device("cpu")

# -- the verdict on synthetic figures ------------------------------------------------------------

REF = {"probe": {"cpu_gflops": 100.0}}
FAST = {"cpu_gflops": 99.0}
IDLE = {"verdict": "ok", "other_cores_mean": 0.05, "cores": 2}


def test_verdict_flags_a_probe_more_than_ten_percent_slower():
    v = machine.verdict("cpu-2core", REF, FAST, {"cpu_gflops": 80.0}, IDLE)  # 25% slower
    assert v["contended"] and v["probe_verdict"] == "slow"
    assert "probe after the trial ran 25% slower than the cpu-2core reference" in v["reason"]
    ok = machine.verdict("cpu-2core", REF, FAST, {"cpu_gflops": 95.0}, IDLE)  # 5% slower
    assert not ok["contended"] and ok["reason"] is None and ok["probe_verdict"] == "ok"


def test_a_pinned_probe_is_compared_with_and_quotes_the_references_per_core_figure():
    ref = {"threads": 2, "probe": {"cpu_gflops": 200.0, "cpu_gflops_by_cores": {"1": 100.0}}}
    v = machine.verdict("cpu-2core", ref, {"cpu_gflops": 99.0, "cores": 1},
                        {"cpu_gflops": 80.0, "cores": 1}, IDLE)  # fmt: skip
    assert v["contended"]
    assert v["reason"] == ("the probe after the trial ran 25% slower than the cpu-2core "
                           "reference (80.0 vs 100.0 GFLOP/s, 1 core)")  # fmt: skip
    # the same probe on both cores is compared with the two-core figure
    ok = machine.verdict("cpu-2core", ref, {"cpu_gflops": 195.0, "cores": 2},
                         {"cpu_gflops": 190.0, "cores": 2}, IDLE)  # fmt: skip
    assert not ok["contended"]
    # pinned to a core count the reference never measured: nothing to compare with
    assert machine.probe_slowdown(ref, {"cpu_gflops": 1.0, "cores": 3}) == {}


def test_the_probe_counts_its_best_round_and_keeps_every_round(monkeypatch):
    """A blip in one round of the probe does not flag a trial; a slowdown in every round does
    (the reference is itself the best of its rounds)."""
    rounds = iter([70.0, 99.0, 96.0, 80.0, 82.0, 79.0])
    monkeypatch.setattr(machine, "matmul_job", lambda **kw: {"value": next(rounds)})
    blip, slow = machine.probe(rounds=3), machine.probe(rounds=3)
    assert blip["cpu_gflops"] == 99.0 and blip["cpu_gflops_rounds"] == [70.0, 99.0, 96.0]
    assert slow["cpu_gflops"] == 82.0
    ref = {"threads": blip["cores"], "probe": {"cpu_gflops": 100.0}}  # this many cores
    assert not machine.verdict("cpu-2core", ref, blip, blip, IDLE)["contended"]
    v = machine.verdict("cpu-2core", ref, blip, slow, IDLE)
    assert v["contended"] and "probe after the trial ran 22% slower" in v["reason"]


def test_the_real_probe_runs_its_rounds():
    p = machine.probe(rounds=2)
    assert len(p["cpu_gflops_rounds"]) == 2 and p["cpu_gflops"] == max(p["cpu_gflops_rounds"]) > 0
    assert p["cores"] >= 1 and p["probe_s"] > 0


def test_verdict_without_a_reference_is_unknown_and_the_load_still_counts():
    v = machine.verdict("no-such-class", None, FAST, {"cpu_gflops": 1.0}, IDLE)
    assert not v["contended"] and v["probe_verdict"] == "unknown"
    busy = {"verdict": "ok", "other_cores_mean": 1.3, "cores": 2}
    v = machine.verdict("no-such-class", None, FAST, FAST, busy)
    assert v["contended"] and v["load_verdict"] == "shared"
    assert v["reason"].startswith("other processes used 1.30 of the trial's 2 cores")


PROC_STAT = "cpu  {a} 0 {b} 900 5 0 0 0 0 0\ncpu0 {a0} 0 {b0} 450 5 0 0 0 0 0\n"
PROC_STAT += "cpu1 {a1} 0 {b1} 450 0 0 0 0 0 0\nintr 1 2 3\n"


def _stat(cpu0: int, cpu1: int) -> str:
    return PROC_STAT.format(a=cpu0 + cpu1, b=0, a0=cpu0, b0=0, a1=cpu1, b1=0)


def test_proc_parsers_on_synthetic_samples():
    assert machine.parse_proc_stat(_stat(100, 40), [0]) == (100, 555)
    assert machine.parse_proc_stat(_stat(100, 40), [0, 1])[0] == 140
    assert machine.parse_proc_stat(_stat(100, 40), None)[0] == 140  # the "cpu" total line
    pid = "1234 (a (weird) name) S 1 1 1 0 -1 0 0 0 0 0 70 30 5 5 20 0 1 0 0 0 0"
    assert machine.parse_pid_stat(pid) == (1, 110)


def test_load_summary_on_synthetic_samples():
    tick = machine.CLK_TCK
    # 2 s; the cores were busy 3 core-seconds, the trial's two processes used 1.5 of them
    a = machine.LoadSample(0.0, 0, {10: 0, 11: 0})
    b = machine.LoadSample(2.0, 3 * tick, {10: tick, 11: tick // 2, 12: 0})
    load = machine.summarize_load([a, b], ncores=2)
    assert load["other_cores_mean"] == pytest.approx(0.75, abs=0.01)
    assert machine.verdict("x", None, FAST, FAST, load)["contended"]
    # a process first seen at the second sample started in between: all its time is the trial's
    c = machine.LoadSample(2.0, 2 * tick, {10: tick, 12: tick})
    assert machine.summarize_load([a, c], ncores=2)["other_cores_mean"] == pytest.approx(0.0)
    assert machine.summarize_load([a], ncores=2)["verdict"] == "unknown"


# -- an induced load -----------------------------------------------------------------------------


def _spin(stop, deadline_s: float) -> None:
    import time

    end = time.monotonic() + deadline_s
    x = 0
    while not stop.is_set() and time.monotonic() < end:
        for _ in range(10_000):
            x += 1


def _fixed_work() -> None:
    """The monitored 'trial': a fixed amount of arithmetic (bounded by work, not time)."""
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    with machine._Threads(1):
        for _ in range(400):
            a = torch.tanh(a @ a * 1e-2)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_an_induced_load_is_flagged_contended_and_the_trials_own_processes_are_not_load():
    """One busy process per core runs beside a monitored fixed amount of work. Counted as other
    processes, they make the trial contended; counted as the trial's own (its process tree),
    the same interval measures less other load. Other work on the machine (a shared CI host)
    adds to both alike, so nothing here asserts an idle machine."""
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    spinners = [ctx.Process(target=_spin, args=(stop, 60.0)) for _ in machine.cores()]
    try:
        for p in spinners:
            p.start()
        as_own = machine.LoadMonitor(machine.own_process_tree, interval_s=0.1)
        monitor = machine.TrialMonitor(
            "test-no-reference", exclude_pids=lambda: {os.getpid()}, interval_s=0.1
        )
        as_own.start()
        monitor.start()
        _fixed_work()
        loaded = monitor.finish()
        own = as_own.stop()
    finally:
        stop.set()
        for p in spinners:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    assert loaded["contended"], loaded
    assert "other processes used" in loaded["reason"]
    assert loaded["probe_verdict"] == "unknown"  # no reference file for this class
    assert loaded["load"]["other_cores_mean"] > machine.LOAD_CORES
    assert own["other_cores_mean"] < loaded["load"]["other_cores_mean"]


# -- recording, ranking, re-running --------------------------------------------------------------


def _finished_trial(runs, contended: bool) -> sweep.Job:
    job = sweep.Job("ldpc", "smoke", "nms_baseline", 0, 0, 0, runs=runs)
    d = job.run_dir(records.hardware_class())
    d.mkdir(parents=True)
    run = {
        "schema": records.SCHEMA,
        "hardware_class": records.hardware_class(),
        "workload": "ldpc",
        "variant": "smoke",
        "submission": "nms_baseline",
        "study": 0,
        "trial": 0,
        "seed": 0,
        "status": "budget_exhausted",
        "reason": None,
        "evals": 0,
        "train_time_s": 4.0,
    }
    spec = get_spec("ldpc", "smoke")  # an honest record otherwise: it agrees with its spec
    run.update(
        spec=spec.to_dict(),
        metric=spec.metric,
        direction=spec.direction,
        target=spec.target,
        budget_s=spec.budget_for("cpu"),
    )
    busy = {"verdict": "ok", "other_cores_mean": 1.2, "cores": 2}
    machine.record_contention(run, machine.verdict("x", None, FAST, FAST, busy))
    assert run["contended"] is True and run["contention"]["load"]["other_cores_mean"] == 1.2
    if not contended:
        machine.record_contention(run, machine.verdict("x", None, FAST, FAST, IDLE))
        assert run["contended"] is False and run["contended_reason"] is None
    (d / records.RUN_JSON).write_text(json.dumps(run))
    return job


def test_a_contended_trial_is_listed_not_ranked_and_rerun(tmp_path):
    job = _finished_trial(tmp_path, contended=True)
    result = collect.collect(tmp_path)
    assert result.trials.empty
    [problem] = result.problems
    assert problem.reason.startswith("contended: other processes used 1.20")
    todo, done = sweep.split_pending([job], dry_run=True)
    assert todo == [job] and not done and job.run_dir(records.hardware_class()).exists()
    todo, done = sweep.split_pending([job])
    assert todo == [job]
    d = job.run_dir(records.hardware_class())
    assert not (d / records.RUN_JSON).exists()  # moved aside under the trial's claim
    [aside] = d.parent.glob("trial_0.contended-*")
    assert json.loads((aside / records.RUN_JSON).read_text())["contended"] is True


def test_an_uncontended_trial_is_ranked_and_done(tmp_path):
    job = _finished_trial(tmp_path, contended=False)
    assert len(collect.collect(tmp_path).trials) == 1
    assert sweep.split_pending([job]) == ([], [job])


# -- evaluation data ---------------------------------------------------------------------------


def test_the_secret_is_private_and_the_seed_is_shared_within_a_study(tmp_path):
    a = evalseed.eval_seed(tmp_path, "ldpc", "smoke", 0)
    path = evalseed.secret_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # every submission and trial of a study: one seed (paired evaluation noise)
    assert evalseed.eval_seed(tmp_path, "ldpc", "smoke", 0) == a
    assert evalseed.eval_seed(tmp_path, "ldpc", "smoke", 1) != a
    assert evalseed.eval_seed(tmp_path, "ldpc", "default", 0) != a
    assert evalseed.eval_seed(tmp_path / "other", "ldpc", "smoke", 0) != a  # another secret
    os.chmod(path, 0o644)  # loosened by hand: made private again on the next use
    evalseed.eval_seed(tmp_path, "ldpc", "smoke", 0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("not hex\n")
    with pytest.raises(ValueError, match="not an evaluation secret"):
        evalseed.eval_seed(tmp_path, "ldpc", "smoke", 0)


@pytest.mark.parametrize("name", ["ldpc", "snn", "certification", "factuality", "translation"])
def test_a_training_only_instance_refuses_evaluation(name):
    wl = build_workload(get_spec(name, "smoke"), CPU)
    model = wl.init_model(torch.Generator().manual_seed(0))
    for split in ("validation", "test"):
        with pytest.raises(ContractError, match="training-only instance"):
            wl.evaluate(model, split)


def _batches(wl, n=3):
    stream = wl.train_streams(16, torch.Generator().manual_seed(1))["train"]
    return [next(stream) for _ in range(n)]


def _same_batches(a, b) -> bool:
    return all(
        torch.equal(getattr(x, f), getattr(y, f))
        for x, y in zip(a, b, strict=True)
        for f in vars(x)
        if isinstance(getattr(x, f), torch.Tensor)
    )


def test_two_eval_seeds_give_other_validation_data_and_the_same_training_stream():
    for name in ("snn", "certification"):
        spec = get_spec(name, "smoke")
        a, b = build_workload(spec, CPU, eval_seed=1), build_workload(spec, CPU, eval_seed=2)
        xa, ya = a.evaluation_split("validation")
        xb, _ = b.evaluation_split("validation")
        assert len(xa) == len(xb) and not torch.equal(xa, xb), name
        assert torch.equal(xa, a.evaluation_split("validation")[0])  # one seed: one split
        xt, _ = a.evaluation_split("test")  # validation and test stay disjoint
        assert not {tuple(r.flatten().tolist()) for r in xa} & {
            tuple(r.flatten().tolist()) for r in xt
        }
        assert _same_batches(_batches(a), _batches(b)), name
    spec = get_spec("translation", "smoke")
    a, b = build_workload(spec, CPU, eval_seed=1), build_workload(spec, CPU, eval_seed=2)
    va, vb = a.evaluation_data("validation"), b.evaluation_data("validation")
    assert all(va[c].refs != vb[c].refs for c in a.languages)
    assert _same_batches(_batches(a), _batches(b))
    spec = get_spec("factuality", "smoke")
    a, b = build_workload(spec, CPU, eval_seed=1), build_workload(spec, CPU, eval_seed=2)
    assert a._eval_people["validation"] != b._eval_people["validation"]
    assert a.documents == b.documents


def test_ldpc_evaluation_frames_follow_the_eval_seed():
    spec = get_spec("ldpc", "smoke")
    a, b = build_workload(spec, CPU, eval_seed=1), build_workload(spec, CPU, eval_seed=2)
    model = a.init_model(torch.Generator())
    ma, mb = a.evaluate(model, "validation"), b.evaluate(model, "validation")
    assert ma == a.evaluate(model, "validation")  # one seed: the same frames
    assert (ma["frame_errors"], ma["frames"]) != (mb["frame_errors"], mb["frames"]) or ma[
        "ber"
    ] != mb["ber"]
    assert _same_batches(_batches(a), _batches(b))


# -- a whole trial under an induced load -----------------------------------------------------------

SPIN = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_a_trial_run_under_an_induced_load_is_recorded_contended(tmp_path, monkeypatch):
    """A real trial (referee and athlete) while one busy process per core runs beside it. The
    busy processes are orphans (started by a shell that exits at once), so they are not in the
    trial's process tree: to the trial they are other work on its cores, as another user's job
    would be. The record says contended, with the reason, and collect does not rank it."""
    import signal
    import subprocess
    import sys

    from harness.runner import RunConfig, run_trial

    monkeypatch.setenv(machine.CONTENTION_ENV, "on")
    script = tmp_path / "spin.py"
    script.write_text(SPIN.format(s=90))  # a hard end, whatever happens to this test
    pids = tmp_path / "pids"
    launch = f'"{sys.executable}" "{script}" & echo $! >> "{pids}"; '
    subprocess.run(["sh", "-c", launch * len(machine.cores())], check=True, timeout=30)
    try:
        res = run_trial(
            RunConfig(
                "ldpc",
                "nms_baseline",
                variant="smoke",
                runs=tmp_path / "runs",
                final_test_eval=False,
                max_steps=6,
            )
        )
    finally:
        for pid in pids.read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    run = json.loads((res.run_dir / records.RUN_JSON).read_text())
    assert res.status in ("complete", "budget_exhausted", "reached_target"), res.reason
    assert run["contended"] is True, run.get("contention")
    assert "other processes used" in run["contended_reason"]
    assert run["contention"]["load"]["other_cores_mean"] > machine.LOAD_CORES
    col = collect.collect(tmp_path / "runs")
    assert col.trials.empty
    assert any(
        "contended:" in p.reason and "other processes used" in p.reason for p in col.problems
    ), col.problems
