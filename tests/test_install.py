"""What a non-editable install carries (the bundled workloads and submissions with their data,
the SLURM defaults), how the SLURM defaults load, and the container recipes (built where
docker or apptainer can build them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import discovery
from harness.executors import DEFAULTS_ENV, DEFAULTS_FILE, SlurmOptions

REPO = discovery.repo_root()
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "harness", "workloads", "submissions")

PROBE = """
import json, sys
import harness
from harness import discovery
from harness.executors import SlurmOptions
names = discovery.submission_names()
loaded = {n: list(discovery.load_submission(n).workloads or ["all"]) for n in names}
print(json.dumps({
    "harness": harness.__file__,
    "version": harness.__version__,
    "root": str(discovery.repo_root()),
    "submissions": loaded,
    "workloads": discovery.workload_names(),
    "partition": SlurmOptions.load().slurm_partition,
    "codes": sorted(p.name for p in (discovery.repo_root() / "workloads/ldpc/codes").iterdir()),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """ttr-bench built as a wheel from a clean copy of its sources and installed (no deps) into
    a folder of its own: what `pip install .` puts in site-packages."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("ttr_bench-*.whl")
    site = tmp / "site"
    inst = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    return site


def test_a_wheel_install_finds_every_bundled_submission_and_its_data(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # not the repository: nothing found through the cwd
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != discovery.SUBMISSIONS_ENV}
    env["PYTHONPATH"] = str(installed)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    got = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(got["harness"]).is_relative_to(installed)
    assert Path(got["root"]) == installed.resolve()
    assert sorted(got["submissions"]) == discovery.submission_names()  # all 19, as in the repo
    assert len(got["submissions"]) == 19
    assert got["submissions"]["nms_baseline"] == ["ldpc"] and got["submissions"]["adamw"] == ["all"]
    assert got["workloads"] == discovery.workload_names()
    assert got["partition"] == "debug"  # the bundled SLURM defaults, not a silent None
    assert "wimax_576_432.json" in got["codes"]
    for name in discovery.submission_names():
        folder = installed / "submissions" / name
        assert (folder / "search_space.json").is_file() and (folder / "README.md").is_file()
    for kernels in ("boosted_nms", "bptt_surrogate"):
        assert (installed / "submissions" / kernels / "kernels" / "__init__.py").is_file()
    assert (installed / "submissions" / "_common" / "__init__.py").is_file()


# -- SLURM defaults --------------------------------------------------------------------------


def test_the_bundled_slurm_defaults_load(monkeypatch):
    monkeypatch.delenv(DEFAULTS_ENV, raising=False)
    raw = json.loads(DEFAULTS_FILE.read_text())
    opts = SlurmOptions.load()
    assert opts.slurm_partition == raw["slurm_partition"] == "debug"
    assert opts.timeout_min == raw["timeout_min"]
    assert SlurmOptions.load(slurm_partition="gpu", timeout_min=None).slurm_partition == "gpu"


def test_missing_slurm_defaults_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(DEFAULTS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"SLURM defaults .*nope\.json not found"):
        SlurmOptions.load(tmp_path / "nope.json")
    monkeypatch.setattr("harness.executors.DEFAULTS_FILE", tmp_path / "gone.json")
    with pytest.raises(FileNotFoundError, match="installation is incomplete: reinstall"):
        SlurmOptions.load()


def test_a_cluster_file_named_by_the_environment_overrides_the_defaults(tmp_path, monkeypatch):
    mine = tmp_path / "cluster.json"
    mine.write_text(json.dumps({"slurm_partition": "gpu", "_note": "x", "gpus_per_node": 1}))
    monkeypatch.setenv(DEFAULTS_ENV, str(mine))
    opts = SlurmOptions.load(gpus_per_node=2)
    assert (opts.slurm_partition, opts.gpus_per_node, opts.timeout_min) == ("gpu", 2, 30)
    monkeypatch.setenv(DEFAULTS_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match=f"check {DEFAULTS_ENV}"):
        SlurmOptions.load()
    mine.write_text("{not json")
    monkeypatch.setenv(DEFAULTS_ENV, str(mine))
    with pytest.raises(ValueError, match="is not valid JSON"):
        SlurmOptions.load()
    mine.write_text(json.dumps({"partition": "gpu"}))
    with pytest.raises(ValueError, match=r"unknown SLURM options \['partition'\]"):
        SlurmOptions.load()


# -- containers ------------------------------------------------------------------------------


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"the docker daemon is not running: {last}"
    return None


@pytest.mark.slow
def test_the_docker_image_builds_and_lists_the_submissions():
    reason = _docker_unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"ttr-bench-test:{os.getpid()}"
    build = subprocess.run(
        ["docker", "build", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=3600
    )
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        out = subprocess.run(
            ["docker", "run", "--rm", tag, "list"], capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "nms_baseline" in out.stdout and "adamw" in out.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.mark.slow
def test_the_apptainer_image_builds_and_lists_the_submissions(tmp_path):
    tool = shutil.which("apptainer") or shutil.which("singularity")
    if tool is None:
        pytest.skip("neither apptainer nor singularity is installed")
    sif = tmp_path / "ttr-bench.sif"
    fakeroot = [] if os.geteuid() == 0 else ["--fakeroot"]
    build = subprocess.run(
        [tool, "build", *fakeroot, str(sif), "slurm/ttr-bench.def"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    out = subprocess.run([tool, "run", str(sif), "list"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "nms_baseline" in out.stdout and "adamw" in out.stdout
