"""Start and stop a real single-node SLURM cluster for tests (helper module, not a test file).

It runs ``slurm/cluster_up.sh DIR`` / ``slurm/cluster_down.sh DIR``: munged, MariaDB, slurmdbd,
slurmctld and slurmd from Debian packages, every file under DIR, free ports picked at start, so a
cluster a user already runs in another directory is left alone. Needs root (daemons, apt-get).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLUSTER_UP = REPO / "slurm" / "cluster_up.sh"
CLUSTER_DOWN = REPO / "slurm" / "cluster_down.sh"
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge", "slurmdbd", "mariadb-server")
# installing the packages takes 13-25 s, the daemons start in about 5 s; room for a slow mirror
UP_TIMEOUT_S = 600
DOWN_TIMEOUT_S = 180
# socket paths (munge, slurmstepd) are limited to 108 bytes; cluster_up.sh refuses longer DIRs
MAX_DIR_LEN = 60


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be started here; ``reason`` says why (for ``pytest.skip``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _packages_installed() -> bool:
    return all(shutil.which(b) for b in ("slurmctld", "slurmd", "slurmdbd", "sinfo", "munged"))


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def start_cluster(dir: Path) -> dict[str, str]:
    """Bring the cluster in ``dir`` up (idempotent) and return the environment to add.

    Returns ``{"SLURM_CONF": "<dir>/slurm.conf"}``. Raises ``ClusterUnavailable`` when not root,
    when the packages are missing and apt-get is not there or fails, or when a daemon does not
    come up (the reason then ends with the last lines of that daemon's log).
    """
    dir = Path(dir).absolute()
    if len(str(dir)) > MAX_DIR_LEN:
        raise ClusterUnavailable(f"cluster directory {dir} is longer than {MAX_DIR_LEN} characters")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise ClusterUnavailable("starting SLURM daemons needs root (slurm/cluster_up.sh)")
    if not _packages_installed() and shutil.which("apt-get") is None:
        raise ClusterUnavailable(
            f"SLURM is not installed and apt-get is missing: install {' '.join(PACKAGES)}"
        )
    for tool in ("bash", "ss", "runuser"):
        if shutil.which(tool) is None:
            raise ClusterUnavailable(f"'{tool}' is missing (needed by slurm/cluster_up.sh)")
    try:
        proc = subprocess.run(
            ["bash", str(CLUSTER_UP), str(dir)],
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        stop_cluster(dir)
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise ClusterUnavailable(
            f"slurm/cluster_up.sh did not finish in {UP_TIMEOUT_S} s:\n{_tail(out)}"
        ) from e
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        what = {2: "cannot start here", 3: "packages not installable", 4: "a daemon failed"}
        stop_cluster(dir)  # leave nothing half up
        raise ClusterUnavailable(
            f"slurm/cluster_up.sh {dir} exited {proc.returncode} "
            f"({what.get(proc.returncode, 'error')}):\n{_tail(output)}"
        )
    env = {}
    for line in proc.stdout.splitlines():
        if line.startswith("export SLURM_CONF="):
            env["SLURM_CONF"] = line.split("=", 1)[1].strip()
    if not env:
        stop_cluster(dir)
        raise ClusterUnavailable(f"slurm/cluster_up.sh printed no SLURM_CONF:\n{_tail(output)}")
    return env


def stop_cluster(dir: Path) -> str:
    """Stop every daemon that ``start_cluster(dir)`` started; returns the script's output."""
    if not Path(dir).exists():
        return ""
    proc = subprocess.run(
        ["bash", str(CLUSTER_DOWN), str(dir)],
        capture_output=True,
        text=True,
        timeout=DOWN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout + proc.stderr
