"""``ttr status``: done / running / failed / pending per workload and submission."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness import records


@dataclass
class Counts:
    done: int = 0
    running: int = 0
    failed: int = 0
    pending: int = 0
    reasons: list[str] = field(default_factory=list)


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
        try:
            run = records.read_run(d)
        except (OSError, ValueError) as e:
            c.failed += 1
            c.reasons.append(f"{d.parent.name}/{d.name}: unreadable run.json ({e})")
            continue
        status = run.get("status")
        if status == "failed":
            c.failed += 1
            c.reasons.append(f"{d.parent.name}/{d.name}: {run.get('reason')}")
        elif status in records.FINISHED:
            c.done += 1
        else:
            c.running += 1
    for plan in sorted(Path(runs).glob("*/*/*/*/plan.json")):
        hw, w, v, s = plan.parent.relative_to(runs).parts[:4]
        for study, trial in planned_trials(plan):
            if plan.parent / f"study_{study}" / f"trial_{trial}" not in seen:
                table[(hw, w, v, s)].pending += 1
    return dict(table)


def format_status(table: dict[tuple[str, str, str, str], Counts]) -> str:
    if not table:
        return "no runs and no plans here"
    lines = [
        f"{'hardware':<12} {'workload/variant':<18} {'submission':<18} "
        f"{'done':>5} {'running':>8} {'failed':>7} {'pending':>8}"
    ]
    for (hw, w, v, s), c in sorted(table.items()):
        lines.append(
            f"{hw:<12} {w + '/' + v:<18} {s:<18} {c.done:>5} {c.running:>8} "
            f"{c.failed:>7} {c.pending:>8}"
        )
        lines.extend(f"    failed: {r}" for r in c.reasons)
    return "\n".join(lines)
