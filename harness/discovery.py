"""Workloads and submissions are found by folder; there is no registry to edit.

    workloads/<name>/__init__.py      SPECS, WORKLOAD, REFERENCE_OPS (see harness.api)
    <dir>/<name>/submission.py        plain functions; README.md (front matter); search_space.json;
                                      optional kernels/

Submissions are searched in the bundled ``submissions/`` folder, then in every folder named by
the environment variable ``TTR_SUBMISSIONS`` (``os.pathsep``-separated, like ``PYTHONPATH``;
read at every call, so ``--submissions-dir`` and child processes see the same list). An entry
is either a folder that contains submission folders or a submission folder itself (one holding
``submission.py``). Empty entries are ignored; an entry that is not a folder is an error. A
name found in two different folders is an error naming both: a benchmark never picks one.

Folders named ``template`` or ``template_generic``, or starting with ``_`` or ``.``, are
skipped (``submissions/_common/`` holds the recipes methods share).

A submission declares the workloads it runs on in its README's YAML front matter, and only
there::

    ---
    workloads: [ldpc]        # or: workloads: all  (a generic method)
    ---
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.api import ContractError, Kernel, Workload, WorkloadSpec

REQUIRED_FUNCTIONS = ("init", "update")
OPTIONAL_FUNCTIONS = ("get_batch_size", "data_selection", "prepare_for_eval")
SKIP = ("template", "template_generic")
SUBMISSIONS_ENV = "TTR_SUBMISSIONS"


def repo_root() -> Path:
    """The folder holding the bundled ``workloads/`` and ``submissions/``: the parent of this
    package (the repository in a checkout or an editable install, site-packages otherwise)."""
    return Path(__file__).resolve().parent.parent


def _folders(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(
        p
        for p in parent.iterdir()
        if p.is_dir() and p.name not in SKIP and not p.name.startswith(("_", "."))
    )


# -- workloads ---------------------------------------------------------------------------


def workload_names(root: Path | None = None) -> list[str]:
    root = root or repo_root()
    return [p.name for p in _folders(root / "workloads") if (p / "__init__.py").is_file()]


def load_workload_module(name: str, root: Path | None = None) -> types.ModuleType:
    names = workload_names(root)
    if name not in names:
        raise ContractError(f"unknown workload {name!r}; available: {', '.join(names) or 'none'}")
    module = importlib.import_module(f"workloads.{name}")
    for attr in ("SPECS", "WORKLOAD"):
        if not hasattr(module, attr):
            raise ContractError(f"workloads/{name}/__init__.py must define {attr}")
    return module


def get_spec(workload: str, variant: str, root: Path | None = None) -> WorkloadSpec:
    specs = load_workload_module(workload, root).SPECS
    if variant not in specs:
        raise ContractError(
            f"workload {workload!r} has no variant {variant!r}; it has {sorted(specs)}"
        )
    return specs[variant]


def build_workload(
    spec: WorkloadSpec, device: Any, root: Path | None = None, *, eval_seed: int | None = None
) -> Workload:
    """The workload instance; ``eval_seed`` None: training-only (no evaluation splits)."""
    return load_workload_module(spec.name, root).WORKLOAD(spec, device, eval_seed=eval_seed)


# -- submissions -------------------------------------------------------------------------


@dataclass
class Submission:
    """A loaded submission: its folder, module, functions and declared workloads."""

    name: str
    path: Path
    module: types.ModuleType
    workloads: tuple[str, ...] | None  # None: every workload (a generic method)

    def fn(self, name: str) -> Any:
        return getattr(self.module, name, None)

    @property
    def search_space_path(self) -> Path:
        return self.path / "search_space.json"

    def supports(self, workload: str) -> bool:
        return self.workloads is None or workload in self.workloads

    def batch_size(self, workload: Workload) -> int:
        """``get_batch_size(workload)`` when the submission defines it, else the spec's
        ``batch_size_hint`` (the batch size ``step_hint`` was measured at)."""
        fn = self.fn("get_batch_size")
        return int(fn(workload)) if fn is not None else int(workload.spec.batch_size_hint)

    def update_takes_train_state(self) -> bool:
        return "train_state" in inspect.signature(self.module.update).parameters

    def kernels(self) -> list[Kernel]:
        """The submission's ``kernels/`` package's KERNELS, imported on demand."""
        if not (self.path / "kernels" / "__init__.py").is_file():
            return []
        mod = importlib.import_module(f"{self.module.__package__}.kernels")
        kernels = getattr(mod, "KERNELS", None)
        if not isinstance(kernels, (list, tuple)) or not all(
            isinstance(k, Kernel) for k in kernels
        ):
            raise ContractError(
                f"{self.path}/kernels/__init__.py must define KERNELS: list[Kernel]"
            )
        return list(kernels)


def submission_dirs() -> list[Path]:
    """The folders searched for submissions, in order: the bundled ``submissions/``, then each
    entry of ``$TTR_SUBMISSIONS`` (read now, not at import). Empty entries are ignored; an entry
    that is not an existing folder is a ContractError."""
    dirs = [repo_root() / "submissions"]
    for entry in os.environ.get(SUBMISSIONS_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        folder = Path(entry).expanduser()
        if not folder.is_dir():
            what = "does not exist" if not folder.exists() else "is not a folder"
            raise ContractError(f"{SUBMISSIONS_ENV} names {entry!r}, which {what}")
        dirs.append(folder.resolve())
    seen: set[Path] = set()
    return [d for d in dirs if not (d in seen or seen.add(d))]


def _index() -> dict[str, list[Path]]:
    """Every submission name -> the folders that hold it (more than one: ambiguous)."""
    found: dict[str, list[Path]] = {}
    for d in submission_dirs():
        if (d / "submission.py").is_file():  # the entry is a submission folder itself
            candidates = [d]
        else:
            candidates = [p for p in _folders(d) if (p / "submission.py").is_file()]
        for folder in candidates:
            folder = folder.resolve()
            if folder not in found.setdefault(folder.name, []):
                found[folder.name].append(folder)
    return found


def _ambiguous(name: str, folders: list[Path]) -> ContractError:
    return ContractError(
        f"submission {name!r} is in more than one folder: {', '.join(map(str, folders))}; "
        f"rename one or take its folder out of {SUBMISSIONS_ENV}"
    )


def submission_names() -> list[str]:
    """Every submission's name, sorted; a name found in two folders is a ContractError."""
    index = _index()
    for name, folders in index.items():
        if len(folders) > 1:
            raise _ambiguous(name, folders)
    return sorted(index)


def find_submission(name_or_path: str) -> Path:
    """A submission's folder, by name (searched in ``submission_dirs()``) or by path (anything
    with a path separator, e.g. ``./my_method``)."""
    if os.sep in name_or_path or "/" in name_or_path:
        folder = Path(name_or_path).expanduser()
        if not (folder / "submission.py").is_file():
            raise ContractError(f"{name_or_path!r} is not a submission folder: no submission.py")
        return folder.resolve()
    index = _index()
    folders = index.get(name_or_path, [])
    if len(folders) > 1:
        raise _ambiguous(name_or_path, folders)
    if not folders:
        searched = ", ".join(map(str, submission_dirs()))
        raise ContractError(
            f"unknown submission {name_or_path!r}; searched {searched} "
            f"(add folders with {SUBMISSIONS_ENV} or --submissions-dir); "
            f"available: {', '.join(sorted(index)) or 'none'}"
        )
    return folders[0]


def _package_for(folder: Path) -> str:
    """Import a submission folder as a package, so ``from .kernels import ...`` works."""
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:8]  # two folders, one name
    pkg = "ttr_submission_" + re.sub(r"\W", "_", folder.name) + "_" + digest
    if pkg not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            pkg, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        module = importlib.util.module_from_spec(spec)
        module.__path__ = [str(folder)]
        sys.modules[pkg] = module
        if (folder / "__init__.py").is_file():
            spec.loader.exec_module(module)
    return pkg


FRONT_MATTER_HELP = "start README.md with ---, a line workloads: [ldpc] (or workloads: all), ---"


def front_matter(readme: Path) -> dict[str, Any]:
    """The YAML front matter of a README: the mapping between a first line ``---`` and the next
    line ``---``. A missing README, missing or unterminated front matter, invalid YAML or a
    non-mapping is a ContractError."""
    if not readme.is_file():
        raise ContractError(f"{readme} is missing; {FRONT_MATTER_HELP}")
    lines = readme.read_text(encoding="utf-8-sig").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ContractError(f"{readme} has no front matter; {FRONT_MATTER_HELP}")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ContractError(
            f"{readme}: front matter opened by --- on line 1 is never closed by a --- line"
        ) from None
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as e:
        detail = " ".join(str(e).split())
        raise ContractError(f"{readme}: front matter is not valid YAML: {detail}") from None
    if not isinstance(data, dict):
        raise ContractError(
            f"{readme}: front matter must be a YAML mapping (key: value lines), "
            f"got {type(data).__name__}"
        )
    return data


def declared_workloads(folder: Path) -> tuple[str, ...] | None:
    """The ``workloads`` of a submission's README front matter: a tuple of workload names, or
    None for ``all`` (a generic method). Anything else is a ContractError."""
    readme = folder / "README.md"
    meta = front_matter(readme)
    if "workloads" not in meta:
        raise ContractError(f"{readme}: front matter has no workloads key; {FRONT_MATTER_HELP}")
    value = meta["workloads"]
    if value == "all":
        return None
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(w, str) and w.strip() for w in value)
    ):
        raise ContractError(
            f"{readme}: workloads must be all or a non-empty list of workload names "
            f"(e.g. [ldpc]), got {value!r}"
        )
    known = workload_names()
    unknown = [w for w in value if w not in known]
    if unknown:
        raise ContractError(
            f"{readme}: unknown workload(s) {', '.join(unknown)}; available: {', '.join(known)}"
        )
    if len(set(value)) != len(value):
        raise ContractError(f"{readme}: workloads lists a workload twice: {value}")
    return tuple(value)


def improves_on(folder: Path, workload: str) -> str | None:
    """The method a submission's paper improves on, on ``workload``: the README front matter's
    ``improves_on``, a submission name (every workload it runs) or a mapping workload -> name.
    The board gives each such paper pair its own verdict. None where none is declared."""
    readme = Path(folder) / "README.md"
    value = front_matter(readme).get("improves_on")
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get(workload)
        if value is None:
            return None
    if not isinstance(value, str) or not value.strip():
        raise ContractError(
            f"{readme}: improves_on must be a submission name or a mapping workload: name, "
            f"got {value!r}"
        )
    return value.strip()


@dataclass(frozen=True)
class SubmissionMeta:
    """What the referee needs of a submission without importing it."""

    name: str
    path: Path
    workloads: tuple[str, ...] | None  # None: every workload (a generic method)

    @property
    def search_space_path(self) -> Path:
        return self.path / "search_space.json"

    def supports(self, workload: str) -> bool:
        return self.workloads is None or workload in self.workloads


def submission_meta(name_or_path: str) -> SubmissionMeta:
    """A submission's folder and declared workloads, found without importing its code."""
    folder = find_submission(name_or_path)
    return SubmissionMeta(folder.name, folder, declared_workloads(folder))


def import_submission_module(folder: Path, shown: Path | None = None) -> types.ModuleType:
    """Import ``folder/submission.py`` as a package module and check its functions; messages
    name ``shown`` (the original folder of a copy), else ``folder``."""
    pkg = _package_for(Path(folder))
    folder = Path(shown or folder)
    try:
        module = importlib.import_module(f"{pkg}.submission")
    except Exception as e:  # a broken submission is the author's to fix: say so plainly
        raise ContractError(
            f"{folder}/submission.py failed to import: {type(e).__name__}: {e}"
        ) from e
    missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise ContractError(
            f"{folder}/submission.py is missing required function(s) {', '.join(missing)}; "
            f"a submission defines {', '.join(REQUIRED_FUNCTIONS)} "
            f"(optional: {', '.join(OPTIONAL_FUNCTIONS)}); see submissions/template/"
        )
    if hasattr(module, "WORKLOADS"):
        raise ContractError(
            f"{folder}/submission.py sets WORKLOADS; a submission declares its workloads in one "
            f"place, its README front matter (workloads: [ldpc] or workloads: all)"
        )
    return module


def load_submission(name_or_path: str) -> Submission:
    """Load a submission by name (see ``find_submission``) or folder path and check its
    functions and its declared workloads."""
    folder = find_submission(name_or_path)
    module = import_submission_module(folder)
    return Submission(folder.name, folder, module, declared_workloads(folder))
