"""Workloads and submissions are found by folder; there is no registry to edit.

    workloads/<name>/__init__.py      SPECS, WORKLOAD, REFERENCE_OPS (see harness.api)
    submissions/<name>/submission.py  plain functions; search_space.json; README.md; kernels/

Folders named ``template`` or starting with ``_`` or ``.`` are skipped.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import ContractError, Kernel, Workload, WorkloadSpec

REQUIRED_FUNCTIONS = ("get_batch_size", "init", "update")
OPTIONAL_FUNCTIONS = ("data_selection", "prepare_for_eval")
SKIP = ("template",)


def repo_root() -> Path:
    """The folder holding ``workloads/`` and ``submissions/``: the parent of this package."""
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


def build_workload(spec: WorkloadSpec, device: Any, root: Path | None = None) -> Workload:
    return load_workload_module(spec.name, root).WORKLOAD(spec, device)


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


def submission_names(root: Path | None = None) -> list[str]:
    root = root or repo_root()
    return [p.name for p in _folders(root / "submissions") if (p / "submission.py").is_file()]


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


def _declared_workloads(module: types.ModuleType, folder: Path) -> tuple[str, ...] | None:
    """WORKLOADS = ("ldpc",) in submission.py, or ``workloads: [ldpc]`` in README front matter."""
    declared = getattr(module, "WORKLOADS", None)
    if declared is None:
        readme = folder / "README.md"
        text = readme.read_text() if readme.is_file() else ""
        m = re.match(r"---\n(.*?)\n---", text, re.S)
        if m:
            for line in m.group(1).splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "workloads":
                    declared = [w.strip(" '\"") for w in value.strip().strip("[]").split(",")]
    if declared in (None, "all", ["all"]):
        return None
    return tuple(declared)


def load_submission(name_or_path: str, root: Path | None = None) -> Submission:
    """Load ``submissions/<name>/submission.py`` (or a folder path) and check its functions."""
    root = root or repo_root()
    folder = Path(name_or_path)
    if not (folder / "submission.py").is_file():
        folder = root / "submissions" / name_or_path
    if not (folder / "submission.py").is_file():
        names = submission_names(root)
        raise ContractError(
            f"unknown submission {name_or_path!r}; available: {', '.join(names) or 'none'}"
        )
    folder = folder.resolve()
    pkg = _package_for(folder)
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
    return Submission(folder.name, folder, module, _declared_workloads(module, folder))
