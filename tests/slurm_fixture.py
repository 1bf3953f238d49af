"""pytest plugin: the session fixture ``slurm_cluster`` (a real single-node SLURM cluster).

Register it in tests/conftest.py with ``pytest_plugins = ["slurm_fixture"]``, or import it into one
test module with ``from slurm_fixture import slurm_cluster  # noqa: F401``. Both may be used in
one session: the cluster is started once and stopped after the last user is done.

The cluster lives under a short path, /tmp/ttr-slurm-<pid> (SLURM socket paths are limited), and
``SLURM_CONF`` is set in ``os.environ`` for the session, so ``sinfo``, ``sbatch`` and submitit's
``sacct`` calls from the tests reach it, and submitted jobs inherit it. Without root, without the
Debian packages and apt-get, or when a daemon fails to start, the tests that use it are skipped
with the reason. Set ``TTR_SLURM_CONF=/path/slurm.conf`` to run the tests on a cluster that is
already up (nothing is started or stopped then).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from slurm_cluster import CLUSTER_DOWN, ClusterUnavailable, start_cluster, stop_cluster

# one cluster per process, shared by every definition of the fixture (plugin and imports)
_STATE: dict = {"users": 0, "dir": None, "env_before": {}, "error": None}


def _use_existing(conf: str) -> Path:
    env = {**os.environ, "SLURM_CONF": conf}
    proc = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30, env=env
    )
    if proc.returncode != 0:
        raise ClusterUnavailable(f"TTR_SLURM_CONF={conf}: sinfo failed: {proc.stderr.strip()}")
    return Path(conf).parent


def _acquire(log_dir: Path) -> Path:
    if _STATE["error"] is not None:
        raise ClusterUnavailable(_STATE["error"])
    if _STATE["users"] == 0:
        existing = os.environ.get("TTR_SLURM_CONF")
        try:
            if existing:
                env = {"SLURM_CONF": existing}
                _STATE["dir"] = _use_existing(existing)
                _STATE["owned"] = False
            else:
                cluster_dir = Path(f"/tmp/ttr-slurm-{os.getpid()}")
                try:
                    env = start_cluster(cluster_dir)  # stops what it started if it fails
                except ClusterUnavailable:
                    _keep_logs_and_remove(cluster_dir, log_dir)
                    raise
                _start_reaper(cluster_dir)
                _STATE["dir"] = cluster_dir
                _STATE["owned"] = True
        except ClusterUnavailable as e:
            _STATE["error"] = e.reason  # do not retry for every module
            raise
        _STATE["env_before"] = {k: os.environ.get(k) for k in env}
        _STATE["log_dir"] = log_dir
        os.environ.update(env)
    _STATE["users"] += 1
    return _STATE["dir"]


def _start_reaper(cluster_dir: Path) -> None:
    """A detached watcher (its own session) that stops the cluster's daemons and removes its
    folder once this pytest process is gone, so a run that is killed (SIGKILL, a crash, a CI
    timeout) before its teardown leaves no munged, mariadbd, slurmdbd, slurmctld or slurmd
    behind. After a normal teardown it finds the folder gone and does nothing."""
    watch = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        f'if [ -d "{cluster_dir}" ]; then bash "{CLUSTER_DOWN}" "{cluster_dir}"; '
        f'rm -rf "{cluster_dir}"; fi'
    )
    subprocess.Popen(
        ["sh", "-c", watch],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _release() -> None:
    _STATE["users"] -= 1
    if _STATE["users"] > 0:
        return
    cluster_dir = _STATE["dir"]
    for key, value in _STATE["env_before"].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if _STATE.get("owned"):
        stop_cluster(cluster_dir)
        _keep_logs_and_remove(cluster_dir, _STATE["log_dir"])
    _STATE["dir"] = None


def _keep_logs_and_remove(cluster_dir: Path, log_dir: Path) -> None:
    """Copy the daemon logs to pytest's temporary files (for a post-mortem), remove the rest."""
    for logs in (cluster_dir / "log", cluster_dir / "munge"):
        if logs.is_dir():
            for f in logs.glob("*.log"):
                shutil.copy2(f, log_dir / f.name)
    shutil.rmtree(cluster_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM cluster for the session; yields its directory.

    ``os.environ["SLURM_CONF"]`` points at it while the session runs. Skips the test when the
    cluster cannot be started here (not root, no packages and no apt-get, a daemon failed).
    """
    try:
        cluster_dir = _acquire(tmp_path_factory.mktemp("slurm-logs", numbered=True))
    except ClusterUnavailable as e:
        pytest.skip(f"no SLURM cluster: {e.reason}")
    try:
        yield cluster_dir
    finally:
        _release()
