"""Smoke tests of the real single-node SLURM cluster (slurm/cluster_up.sh) with submitit.

Run: ``python -m pytest tests/test_slurm_cluster.py -q -m slurm`` (as root; the session fixture
installs the Debian packages if needed and starts the daemons, about 5 s once installed).
Every wait has a test-side deadline, so a broken cluster fails a test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit
from slurm_fixture import slurm_cluster  # noqa: F401
from submitit.core.utils import UncompletedJobError

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = REPO / "harness" / "slurm_defaults.json"

# The jobs below unpickle this module's functions and classes; tests/ is not on the job's
# sys.path, so pickle them by value instead of by reference.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def add(a: int, b: int) -> tuple[int, int]:
    return a + b, os.getpid()


class TwoAttempts(submitit.helpers.Checkpointable):
    """Writes attempt_<n> in ``folder`` on each start; waits to be requeued on the first."""

    def __call__(self, folder: str, wait_s: float) -> int:
        folder_path = Path(folder)
        n = len(list(folder_path.glob("attempt_*"))) + 1
        (folder_path / f"attempt_{n}").write_text(os.environ.get("SLURM_RESTART_COUNT", "0"))
        if n == 1:
            time.sleep(wait_s)  # interrupted: submitit checkpoints and requeues
            return -1
        return n


def _sinfo_state() -> str:
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30
    )
    return out.stdout.strip() or out.stderr.strip()


def _wait(predicate, deadline_s: float, what: str, job=None, poll_s: float = 0.5):
    """Poll ``predicate`` until it is true; past the deadline, fail with the job's logs."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    details = ""
    if job is not None:
        state = job.get_info().get("State")
        details = f"\nstate={state}\nstdout:\n{job.stdout()}\nstderr:\n{job.stderr()}"
        job.cancel(check=False)
    pytest.fail(f"{what}: not within {deadline_s} s{details}")


def _executor(folder: Path) -> submitit.AutoExecutor:
    """An executor built from harness/slurm_defaults.json, the way `ttr sweep` builds it."""
    params = {k: v for k, v in json.loads(DEFAULTS.read_text()).items() if not k.startswith("_")}
    max_num_timeout = params.pop("slurm_max_num_timeout")
    executor = submitit.AutoExecutor(
        folder=folder, cluster="slurm", slurm_max_num_timeout=max_num_timeout
    )
    executor.update_parameters(**params)
    return executor


def test_node_is_idle(slurm_cluster):  # noqa: F811
    assert os.environ["SLURM_CONF"] == str(slurm_cluster / "slurm.conf")
    _wait(lambda: _sinfo_state() == "idle", 30, "sinfo shows the node idle")
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P %a %l"], capture_output=True, text=True, timeout=30
    ).stdout.split()
    assert out == ["debug*", "up", "infinite"]


def test_submitit_job_returns(slurm_cluster, tmp_path):  # noqa: F811
    executor = _executor(tmp_path / "jobs")
    assert executor.cluster == "slurm"
    start = time.monotonic()
    job = executor.submit(add, 2, 3)
    _wait(lambda: job.done(force_check=True), 60, "the job finished", job=job)
    total, pid = job.result()
    assert total == 5 and pid != os.getpid()
    assert job.get_info(mode="force")["State"] == "COMPLETED"
    assert time.monotonic() - start < 30


def test_job_array_runs(slurm_cluster, tmp_path):  # noqa: F811
    executor = _executor(tmp_path / "jobs")
    jobs = executor.map_array(add, [1, 2, 3], [10, 20, 30])
    _wait(lambda: all(j.done(force_check=True) for j in jobs), 60, "the array finished", jobs[0])
    assert [j.result()[0] for j in jobs] == [11, 22, 33]


def test_cancelled_job_is_reported_failed(slurm_cluster, tmp_path):  # noqa: F811
    """Accounting (sacct via slurmdbd) is what lets submitit notice a job that died."""
    executor = _executor(tmp_path / "jobs")
    job = executor.submit(time.sleep, 600)
    _wait(lambda: job.get_info().get("State") == "RUNNING", 30, "the job started", job=job)
    start = time.monotonic()
    subprocess.run(["scancel", job.job_id], check=True, timeout=30)
    _wait(lambda: job.done(force_check=True), 60, "submitit saw the cancelled job end", job=job)
    assert job.state.startswith("CANCELLED")
    # no result file: result() waits submitit's 15 s grace for one, then raises
    with pytest.raises(UncompletedJobError, match="has not produced any output"):
        job.result()
    assert time.monotonic() - start < 60


def test_checkpointable_job_is_requeued(slurm_cluster, tmp_path):  # noqa: F811
    """USR2 (as on preemption or before the time limit): submitit checkpoints and requeues.

    With timeout_min <= 10 submitit counts the signal as a timeout (one of max_num_timeout).
    With AuthInfo=cred_expire=10 the requeued job starts again about 20 s later.
    """
    executor = _executor(tmp_path / "jobs")
    executor.update_parameters(timeout_min=5)
    marks = tmp_path / "marks"
    marks.mkdir()
    job = executor.submit(TwoAttempts(), str(marks), 300.0)
    start = time.monotonic()
    _wait(lambda: (marks / "attempt_1").exists(), 30, "the first attempt started", job=job)
    time.sleep(1)  # let submitit's signal handlers be installed (they are, before the call)
    job._interrupt()  # scancel --signal TERM, then USR2: what SLURM sends on preemption
    _wait(lambda: job.done(force_check=True), 90, "the requeued job finished", job=job)
    assert job.result() == 2
    assert sorted(p.name for p in marks.iterdir()) == ["attempt_1", "attempt_2"]
    assert (marks / "attempt_2").read_text() == "1"  # SLURM_RESTART_COUNT of the second run
    assert "Requeued job" in job.stderr() or "Requeued job" in (job.stdout() or "")
    assert time.monotonic() - start < 90


@pytest.mark.slow
def test_checkpointable_job_requeues_on_time_limit(slurm_cluster, tmp_path):  # noqa: F811
    """The real thing: SLURM's pre-timeout USR2 makes submitit checkpoint and requeue.

    SLURM may send --signal up to 60 s earlier than asked, so a 1-minute limit can signal the job
    before Python has installed submitit's handler (the job then dies). 2 minutes with a 30 s
    delay puts the signal 30-90 s after the start; with the ~20 s requeue wait this takes ~1-2 min.
    """
    executor = _executor(tmp_path / "jobs")
    executor.update_parameters(timeout_min=2, slurm_signal_delay_s=30)
    marks = tmp_path / "marks"
    marks.mkdir()
    job = executor.submit(TwoAttempts(), str(marks), 600.0)
    _wait(lambda: job.done(force_check=True), 200, "the timed-out job was requeued", job=job)
    assert job.result() == 2
    assert sorted(p.name for p in marks.iterdir()) == ["attempt_1", "attempt_2"]
    assert "this job is timed-out" in job.stderr()
