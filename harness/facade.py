"""The workload as the athlete sees it: what training may use, and nothing else.

A ``TrainingFacade`` offers a copy of the spec, the training streams, ``loss``,
``training_loss``, ``init_model``, ``synchronize``, ``device`` and the workload's own building
blocks (e.g. ldpc's ``sample``, translation's ``mixture_batch``). It has no ``evaluate``, no
evaluation splits and no path to the records: the referee, in another process, holds those.

The facade is not a sandbox in itself (Python can reach a wrapped object); what makes the
design hold is that the athlete is another process: nothing it computes is recorded except the
model state it hands over at a boundary, which the referee loads into its own copy of the
workload's network and scores with its own evaluator.
"""

from __future__ import annotations

import copy
from typing import Any

from harness.api import Workload

# Names a training method never needs: the evaluator, the evaluation data and its builders.
BLOCKED_PREFIXES = ("eval", "valid", "test", "reference_decoder", "splits", "_")
ALLOWED_PRIVATE = ()


class TrainingFacade:
    """Forwards attribute reads to the workload, except evaluation and private names."""

    __slots__ = ("_TrainingFacade__wl", "spec")

    def __init__(self, workload: Workload):
        object.__setattr__(self, "_TrainingFacade__wl", workload)
        object.__setattr__(self, "spec", copy.deepcopy(workload.spec))

    def __getattr__(self, name: str) -> Any:
        if name.startswith(BLOCKED_PREFIXES) and name not in ALLOWED_PRIVATE:
            raise AttributeError(
                f"the workload facade has no {name!r}: training never sees evaluation, its "
                f"data or the workload's internals (the referee evaluates, off the clock)"
            )
        return getattr(self.__wl, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the workload facade is read-only (tried to set {name!r})")

    def __dir__(self) -> list[str]:
        names = set(dir(self.__wl)) | {"spec"}
        return sorted(n for n in names if not n.startswith(BLOCKED_PREFIXES))

    def __repr__(self) -> str:
        return f"TrainingFacade({self.spec.name}/{self.spec.variant})"
