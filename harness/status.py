"""``ttr status``: done / censored / running / resumable / failed / pending per workload and
submission.

A trial whose record is unfinished is ``running`` only while a live process holds its claim
(``records.claim_state``, on this host or another); otherwise it was interrupted (Ctrl-C,
SIGTERM, preemption, a crashed node) and is ``resumable``: the next sweep or bench goes on from
its checkpoint, or starts it over without one. A trial stopped at its cutoff (status
``censored``: a miss, final) is counted apart from done, with its reason. A run.json that is not
a record counts as failed with the file named.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness import checkpoint, records


@dataclass
class Counts:
    done: int = 0
    censored: int = 0  # stopped at a cutoff without meeting the target (final)
    running: int = 0
    resumable: int = 0
    failed: int = 0
    pending: int = 0
    reasons: list[str] = field(default_factory=list)  # failed trials, with their reasons
    resumable_reasons: list[str] = field(default_factory=list)  # interrupted, and by what
    censored_reasons: list[str] = field(default_factory=list)  # cut off, and why


def planned_trials(plan_path: Path) -> list[tuple[int, int]]:
    try:
        points = json.loads(plan_path.read_text())["points"]
        return [(int(p["study"]), int(p["trial"])) for p in points]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def sweep_status(runs: Path) -> dict[tuple[str, str, str, str], Counts]:
    """(hw, workload, variant, submission) -> counts, from plan.json files and run records."""
    table: dict[tuple[str, str, str, str], Counts] = defaultdict(Counts)
    seen: set[Path] = set()
    for run_json in sorted(Path(runs).glob(f"*/*/*/*/study_*/trial_*/{records.RUN_JSON}")):
        d = run_json.parent
        seen.add(d)
        hw, w, v, s = d.relative_to(runs).parts[:4]
        c = table[(hw, w, v, s)]
        where = f"{d.parent.name}/{d.name}"
        try:
            run = records.read_run(d)
        except (OSError, ValueError) as e:
            c.failed += 1
            c.reasons.append(f"{where}: unreadable run.json ({e})")
            continue
        status = run.get("status")
        if status == "failed":
            c.failed += 1
            c.reasons.append(f"{where}: {run.get('reason')}")
        elif status == "censored":
            c.censored += 1
            c.censored_reasons.append(f"{where}: {run.get('reason')}")
        elif status in records.FINISHED:
            c.done += 1
        elif records.claim_state(d) == "live":
            c.running += 1
        else:
            c.resumable += 1
            c.resumable_reasons.append(f"{where}: {_interrupted(d, run)}")
    for plan in sorted(Path(runs).glob("*/*/*/*/plan.json")):
        hw, w, v, s = plan.parent.relative_to(runs).parts[:4]
        for study, trial in planned_trials(plan):
            if plan.parent / f"study_{study}" / f"trial_{trial}" not in seen:
                table[(hw, w, v, s)].pending += 1
    return dict(table)


def _interrupted(d: Path, run: dict) -> str:
    """Why an unfinished trial is not running, and what a re-run does with it."""
    status = run.get("status")
    why = (
        f"{status} ({run.get('reason')})"
        if run.get("reason")
        else f"{status}, and its process is gone ({records.claim_holder(d)})"
    )
    if checkpoint.path_for(d).is_file():
        return f"{why}; resumes from its checkpoint"
    return f"{why}; no checkpoint: starts over"


def format_status(table: dict[tuple[str, str, str, str], Counts]) -> str:
    if not table:
        return "no runs and no plans here"
    lines = [
        f"{'hardware':<12} {'workload/variant':<18} {'submission':<18} "
        f"{'done':>5} {'censored':>9} {'running':>8} {'resumable':>10} {'failed':>7} "
        f"{'pending':>8}"
    ]
    for (hw, w, v, s), c in sorted(table.items()):
        lines.append(
            f"{hw:<12} {w + '/' + v:<18} {s:<18} {c.done:>5} {c.censored:>9} {c.running:>8} "
            f"{c.resumable:>10} {c.failed:>7} {c.pending:>8}"
        )
        lines.extend(f"    failed: {r}" for r in c.reasons)
        lines.extend(f"    resumable: {r}" for r in c.resumable_reasons)
        lines.extend(f"    censored: {r}" for r in c.censored_reasons)
    return "\n".join(lines)
