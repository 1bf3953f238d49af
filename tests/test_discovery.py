"""Discovery: submissions in the bundled folder and in folders named by ``TTR_SUBMISSIONS``,
workloads declared once in README front matter, the optional ``get_batch_size``, and the
submission's own git provenance in ``run.json``."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import GOOD_SUBMISSION, LDPC_README

from harness import discovery, records
from harness.api import ContractError
from harness.check import check_submission
from harness.runner import RunConfig, run_trial

ENV = discovery.SUBMISSIONS_ENV
BUNDLED = discovery.repo_root() / "submissions"


def _write(folder: Path, source: str = GOOD_SUBMISSION, readme: str = LDPC_README) -> Path:
    folder.mkdir(parents=True)
    (folder / "submission.py").write_text(textwrap.dedent(source))
    (folder / "search_space.json").write_text("{}")
    if readme is not None:
        (folder / "README.md").write_text(readme)
    return folder


@pytest.fixture
def env(monkeypatch):
    """Set TTR_SUBMISSIONS to the given folders (os.pathsep-joined)."""

    def set_(*entries) -> None:
        monkeypatch.setenv(ENV, os.pathsep.join(str(e) for e in entries))

    monkeypatch.delenv(ENV, raising=False)
    return set_


# -- TTR_SUBMISSIONS ---------------------------------------------------------------------------


def test_without_the_variable_only_the_bundled_folder_is_searched(env):
    assert discovery.submission_dirs() == [BUNDLED]
    names = discovery.submission_names()
    assert len(names) == 19 and "adamw" in names and "nms_baseline" in names
    assert not {"template", "template_generic", "_common"} & set(names)


def test_an_external_copy_of_adamw_is_discovered_loads_and_passes_check(tmp_path, env, capsys):
    """A method in a folder outside the repository, importing the bundled shared recipes."""
    methods = tmp_path / "methods"
    mine = methods / "my_adamw"
    shutil.copytree(BUNDLED / "adamw", mine, ignore=shutil.ignore_patterns("__pycache__"))
    assert discovery.repo_root() not in mine.resolve().parents
    # one workload keeps the smoke step short; the rest of the copy is adamw's own
    readme = (mine / "README.md").read_text()
    (mine / "README.md").write_text(readme.replace("workloads: all", "workloads: [ldpc]", 1))
    env(methods)
    assert discovery.submission_dirs() == [BUNDLED, methods.resolve()]
    assert "my_adamw" in discovery.submission_names()
    sub = discovery.load_submission("my_adamw")
    assert sub.path == mine.resolve() and sub.workloads == ("ldpc",)
    assert sub.fn("get_batch_size") is None  # the spec's batch_size_hint
    assert check_submission("my_adamw") is True
    out = capsys.readouterr().out
    assert "2 steps on ldpc/smoke: 2 steps through the referee" in out and "FAIL" not in out


def test_the_variable_is_read_at_call_time(tmp_path, env):
    _write(tmp_path / "late" / "late_method")
    assert "late_method" not in discovery.submission_names()
    env(tmp_path / "late")
    assert "late_method" in discovery.submission_names()


def test_an_entry_may_be_a_submission_folder_itself(tmp_path, env):
    folder = _write(tmp_path / "solo")
    _write(tmp_path / "many" / "one")
    _write(tmp_path / "many" / "two")
    _write(tmp_path / "many" / "_helpers")  # skipped, as in the bundled folder
    _write(tmp_path / "many" / "template")
    env(folder, tmp_path / "many")
    names = discovery.submission_names()
    assert {"solo", "one", "two"} <= set(names)
    assert "_helpers" not in names and "template" not in names
    assert discovery.load_submission("solo").path == folder.resolve()
    assert discovery.submission_dirs()[1:] == [folder.resolve(), (tmp_path / "many").resolve()]


def test_empty_entries_are_ignored_and_repeats_count_once(tmp_path, monkeypatch):
    _write(tmp_path / "subs" / "mine")
    subs, sep = tmp_path / "subs", os.pathsep
    monkeypatch.setenv(ENV, f"{sep}{subs}{sep}{sep} {sep}{subs}{sep}{BUNDLED}{sep}")
    assert discovery.submission_dirs() == [BUNDLED, (tmp_path / "subs").resolve()]
    assert discovery.submission_names().count("mine") == 1


def test_a_missing_folder_is_a_clear_error(tmp_path, env):
    env(tmp_path / "nowhere")
    with pytest.raises(ContractError, match=rf"{ENV} names .*nowhere.*which does not exist"):
        discovery.submission_dirs()
    with pytest.raises(ContractError, match="does not exist"):
        discovery.load_submission("adamw")
    (tmp_path / "a_file").write_text("")
    env(tmp_path / "a_file")
    with pytest.raises(ContractError, match="is not a folder"):
        discovery.submission_names()


def test_a_name_in_two_folders_is_an_error_naming_both(tmp_path, env):
    first = _write(tmp_path / "a" / "twin")
    second = _write(tmp_path / "b" / "twin")
    _write(tmp_path / "b" / "single")
    env(tmp_path / "a", tmp_path / "b")
    for call in (discovery.submission_names, lambda: discovery.load_submission("twin")):
        with pytest.raises(ContractError, match="'twin' is in more than one folder") as e:
            call()
        assert str(first.resolve()) in str(e.value) and str(second.resolve()) in str(e.value)
    assert discovery.load_submission("single").path == (tmp_path / "b" / "single").resolve()


def test_a_bundled_name_outside_is_ambiguous_too(tmp_path, env):
    shutil.copytree(BUNDLED / "nms_baseline", tmp_path / "subs" / "nms_baseline")
    env(tmp_path / "subs")
    with pytest.raises(ContractError, match="more than one folder") as e:
        discovery.load_submission("nms_baseline")
    assert str(BUNDLED / "nms_baseline") in str(e.value)


def test_an_unknown_name_lists_the_searched_folders(tmp_path, env):
    (tmp_path / "empty").mkdir()
    env(tmp_path / "empty")
    with pytest.raises(ContractError, match="unknown submission 'nope'") as e:
        discovery.load_submission("nope")
    assert str(BUNDLED) in str(e.value) and str((tmp_path / "empty").resolve()) in str(e.value)
    assert "adamw" in str(e.value)  # and what is available


def test_a_path_loads_that_folder_and_a_bad_path_says_so(tmp_path, env):
    folder = _write(tmp_path / "by_path")
    assert discovery.load_submission(str(folder)).name == "by_path"
    with pytest.raises(ContractError, match="not a submission folder: no submission.py"):
        discovery.load_submission(str(tmp_path / "missing"))


# -- workloads: README front matter, the one place ------------------------------------------


@pytest.mark.parametrize(
    "readme,expected",
    [
        ("---\nworkloads: all\n---\n# m\n", None),
        ("---\nworkloads: ldpc\n---\n", ("ldpc",)),
        ("---\nworkloads: [ldpc, snn]\n---\n", ("ldpc", "snn")),
        ("---\nworkloads:\n  - snn\n  - ldpc\nauthors: [A. Author]\n---\ntext\n", ("snn", "ldpc")),
        ("---\r\nworkloads: [ldpc]\r\n---\r\n", ("ldpc",)),
    ],
)
def test_front_matter_declares_the_workloads(tmp_path, readme, expected):
    folder = _write(tmp_path / "m", readme=readme)
    assert discovery.load_submission(str(folder)).workloads == expected


@pytest.mark.parametrize(
    "readme,message",
    [
        (None, r"README.md is missing; start README.md with ---"),
        ("# no front matter\n", "has no front matter"),
        ("---\nworkloads: [ldpc]\n# never closed\n", "never closed by a --- line"),
        ("---\nworkloads: [ldpc\n---\n", "front matter is not valid YAML"),
        ("---\n- ldpc\n---\n", "must be a YAML mapping .*got list"),
        ("---\nauthors: me\n---\n", "front matter has no workloads key"),
        ("---\nworkloads: 3\n---\n", "workloads must be all or a non-empty list.*got 3"),
        ("---\nworkloads: []\n---\n", "workloads must be all or a non-empty list"),
        ("---\nworkloads: [ldcp]\n---\n", "unknown workload.*ldcp; available: .*ldpc"),
        ("---\nworkloads: [ldpc, ldpc]\n---\n", "lists a workload twice"),
    ],
)
def test_malformed_front_matter_is_a_clear_error(tmp_path, readme, message):
    folder = _write(tmp_path / "m", readme=readme)
    with pytest.raises(ContractError, match=message):
        discovery.load_submission(str(folder))


def test_workloads_in_submission_py_is_an_error(tmp_path):
    folder = _write(tmp_path / "m", source='WORKLOADS = ("ldpc",)\n' + GOOD_SUBMISSION)
    with pytest.raises(ContractError, match="sets WORKLOADS; .*README front matter"):
        discovery.load_submission(str(folder))


def test_every_bundled_submission_declares_its_workloads_in_front_matter():
    for name in discovery.submission_names():
        sub = discovery.load_submission(name)
        meta = discovery.front_matter(sub.path / "README.md")
        assert meta["workloads"] == "all" or list(sub.workloads) == meta["workloads"], name


# -- get_batch_size is optional ----------------------------------------------------------------


def test_batch_size_defaults_to_the_spec_hint(tmp_path):
    without = _write(tmp_path / "without", source="def init(*a): return {}\ndef update(*a): pass\n")
    with_ = _write(tmp_path / "with", source=GOOD_SUBMISSION)  # get_batch_size -> 16
    wl = SimpleNamespace(spec=SimpleNamespace(batch_size_hint=96))
    assert discovery.load_submission(str(without)).batch_size(wl) == 96
    assert discovery.load_submission(str(with_)).batch_size(wl) == 16


def test_no_bundled_submission_repeats_the_batch_size_hint():
    """Every bundled batch-size table only repeated the spec's batch_size_hint: none is left."""
    for name in discovery.submission_names():
        assert discovery.load_submission(name).fn("get_batch_size") is None, name


# -- the submission's own git ------------------------------------------------------------------

# No get_batch_size: the runner's stream batches are the spec's batch_size_hint (64 on smoke).
WITHOUT_BATCH_SIZE = GOOD_SUBMISSION.replace(
    "def get_batch_size(workload):\n    return 16\n", ""
).replace(
    "    outs, _ = model(batch.llr)",
    "    assert batch.llr.shape[0] == workload.spec.batch_size_hint == 64\n"
    "    outs, _ = model(batch.llr)",
)


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _run(folder: Path, tmp_path: Path) -> dict:
    res = run_trial(
        RunConfig(
            "ldpc",
            str(folder),
            variant="smoke",
            runs=tmp_path / "runs",
            budget_s=0.3,
            eval_every_s=1e9,
            final_test_eval=False,
        )
    )
    assert res.status != "failed", res.reason
    return records.read_run(res.run_dir)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_run_records_the_submission_folders_own_commit_and_dirty_flag(tmp_path):
    repo = tmp_path / "methods"
    folder = _write(repo / "mine", source=WITHOUT_BATCH_SIZE)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "mine")
    head = _git(repo, "rev-parse", "HEAD")
    (folder / "__pycache__").mkdir()  # what importing it writes, unless bytecode is off
    (folder / "__pycache__" / "submission.cpython-311.pyc").write_bytes(b"")
    run = _run(folder, tmp_path)
    assert run["submission_git"] == {"commit": head, "dirty": False, "reason": None}
    assert run["git"]["commit"] != head  # the harness's, next to it
    records.git_info.cache_clear()
    (folder / "notes.txt").write_text("untracked, still a change to the method's folder")
    assert records.git_info(str(folder), scope=True)["dirty"] is True


def test_a_submission_outside_git_records_no_commit_with_the_reason(tmp_path):
    folder = _write(tmp_path / "loose", source=WITHOUT_BATCH_SIZE)
    if (
        shutil.which("git")
        and subprocess.run(["git", "rev-parse"], cwd=folder, capture_output=True).returncode == 0
    ):
        pytest.skip(f"{tmp_path} is inside a git repository")
    run = _run(folder, tmp_path)
    git = run["submission_git"]
    assert git["commit"] is None and git["dirty"] is None and git["reason"]


# -- the templates ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["template", "template_generic"])
def test_the_templates_are_skipped_by_name_but_load_and_step(name, env):
    import torch

    from harness.check import _smoke_steps

    assert name not in discovery.submission_names()
    with pytest.raises(ContractError, match="unknown submission"):
        discovery.load_submission(name)
    sub = discovery.load_submission(str(BUNDLED / name))
    assert sub.fn("get_batch_size") is None
    assert sub.workloads == (("ldpc",) if name == "template" else None)
    assert _smoke_steps(sub, "ldpc", torch.device("cpu")).startswith("2 steps through the referee")


def test_the_generic_template_reads_only_the_generic_api():
    from test_generic_optimizers import (
        GENERIC_SPEC_FIELDS,
        GENERIC_WORKLOAD_API,
        _workload_attributes,
    )

    source = (BUNDLED / "template_generic" / "submission.py").read_text()
    on_workload, on_spec = _workload_attributes(source)
    assert on_workload <= GENERIC_WORKLOAD_API and on_spec <= GENERIC_SPEC_FIELDS
    assert on_spec == {"step_hint"}
