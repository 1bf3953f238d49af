"""Per-step overhead of the runner: a submission whose step does nothing.

Runs the real runner (clock with synchronize, train_state view, budget and evaluation checks)
on ldpc/smoke with a no-op ``data_selection`` and ``update`` for ``--budget-s`` seconds of
"training", ``--reps`` times, and reports the time per step: what the harness adds to every
step of every submission. Writes benchmarks/results/harness_overhead-<hw>.json.

    python benchmarks/harness_overhead.py --budget-s 2 --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
from pathlib import Path

from harness import records
from harness.runner import RunConfig, run_trial

NOOP = textwrap.dedent(
    """
    def get_batch_size(workload):
        return 1
    def init(workload, model, hparams, rng):
        return {}
    def data_selection(workload, streams, state, step, rng):
        return None
    def update(workload, model, state, batch, hparams, step, rng, train_state):
        return state
    """
)
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget-s", type=float, default=2.0)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    per_step_us = []
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "noop"
        sub.mkdir()
        (sub / "submission.py").write_text(NOOP)
        (sub / "search_space.json").write_text("{}")
        (sub / "README.md").write_text("---\nworkloads: [ldpc]\n---\n# noop\n")
        for _ in range(args.reps):
            res = run_trial(
                RunConfig(
                    "ldpc",
                    str(sub),
                    variant="smoke",
                    runs=Path(tmp) / "runs",
                    budget_s=args.budget_s,
                    eval_every_s=1e9,
                    final_test_eval=False,
                )
            )
            per_step_us.append(1e6 * res.summary["train_time_s"] / res.summary["steps"])
    med = statistics.median(per_step_us)
    print(
        f"runner overhead per step: median {med:.2f} us [min {min(per_step_us):.2f}, "
        f"max {max(per_step_us):.2f}] over {args.reps} runs of {args.budget_s:g} s "
        f"({records.hardware_class()}, {records.cpu_model()})"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"harness_overhead-{records.hardware_class()}.json"
    records.write_json(
        out,
        {
            "date": records.utcnow(),
            "hardware": records.hardware_fingerprint(),
            "budget_s": args.budget_s,
            "per_step_us": per_step_us,
            "median_us": med,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
