"""``ttr``: the command line. Every command prints where it wrote."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

from harness import discovery
from harness.api import ContractError


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare string: lr=... must be a number, loss=fer may be a word


def parse_hparams(items: list[str]) -> dict[str, Any]:
    """``--hparams FILE.json`` and/or ``k=v`` pairs (later ones win)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" in item:
            key, _, value = item.partition("=")
            out[key.strip()] = _parse_value(value.strip())
        else:
            path = Path(item)
            if not path.is_file():
                raise ContractError(f"--hparams {item!r}: neither k=v nor an existing JSON file")
            loaded = json.loads(path.read_text())
            if not isinstance(loaded, dict):
                raise ContractError(f"--hparams {item}: the file must hold a JSON object")
            out.update(loaded)
    return out


class _FirstLine(logging.Formatter):
    """Console lines only: tracebacks go to the run's log.txt, never to the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage().splitlines()[0]


def _console_logging(verbose: bool) -> None:
    """One console handler on the ``ttr`` logger, bound to the current stderr."""
    root = logging.getLogger("ttr")
    for h in [h for h in root.handlers if getattr(h, "_ttr_console", False)]:
        root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(_FirstLine())
    h._ttr_console = True  # type: ignore[attr-defined]
    h.setLevel(logging.INFO if verbose else logging.WARNING)  # log.txt keeps INFO either way
    root.addHandler(h)


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def print_summary(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'workload':<10} {'submission':<16} {'status':<17} "
        f"{'time-to-target':>22} {'steps':>7} {'s/step':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ttt = r.get("time_to_target_s")
        ttt_s = "miss" if ttt is None else f"{ttt:.1f} s (prev {r['prev_eval_train_time_s']:.1f})"
        sps = r.get("s_per_step")
        print(
            f"{r.get('workload', '?'):<10} {r.get('submission', '?'):<16} "
            f"{r.get('status', '?'):<17} {ttt_s:>22} {r.get('steps_to_target') or '-':>7} "
            f"{'-' if sps is None else f'{sps * 1e3:.1f} ms':>9}"
        )


# -- commands ----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from harness.records import hardware_class

    print(f"hardware class: {hardware_class()}\n\nworkloads:")
    for name in discovery.workload_names():
        specs = discovery.load_workload_module(name).SPECS
        for v, s in specs.items():
            budget = ", ".join(f"{k} {b:g} s" for k, b in s.budget_s.items())
            print(
                f"  {name:<14} {v:<8} {s.metric} {'<=' if s.direction == 'min' else '>='} "
                f"{s.target:g}; budget {budget}"
            )
    print("\nsubmissions:")
    for name in discovery.submission_names():
        try:
            sub = discovery.load_submission(name)
            runs_on = "all workloads" if sub.workloads is None else ", ".join(sub.workloads)
            kernels = ", ".join(k.name for k in sub.kernels()) or "none"
            print(f"  {name:<18} runs on: {runs_on}; kernels: {kernels}")
        except ContractError as e:
            print(f"  {name:<18} BROKEN: {e}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import RunConfig, run_trial

    cfg = RunConfig(
        workload=args.workload,
        submission=args.submission,
        variant=args.variant,
        hparams=parse_hparams(args.hparams),
        seed=args.seed,
        runs=Path(args.runs),
        study=args.study,
        trial=args.trial,
        device=args.device,
        budget_s=args.budget_s,
    )
    res = run_trial(cfg)
    print_summary([res.summary])
    print(f"\nrun directory: {res.run_dir}")
    if res.status == "failed":
        print(f"FAILED: {res.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.check import check_submission

    ok = check_submission(args.submission, smoke_step=not args.no_step)
    return 0 if ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    """The main job: a small tuned comparison of every submission on every workload it
    supports, then the leaderboard. Re-running skips finished trials."""
    from harness.report import write_report
    from harness.sweep import plan_jobs, run_job, split_pending

    runs = Path(args.runs)
    jobs = plan_jobs(
        runs, args.workloads, args.submissions, args.variant, args.studies, args.trials, args.seed
    )
    todo, done = split_pending(jobs)
    print(
        f"{len(jobs)} trials ({args.studies} studies x {args.trials} trials per submission): "
        f"{len(done)} already done, {len(todo)} to run",
        flush=True,
    )
    rows = []
    for i, job in enumerate(todo, 1):
        print(f"\n[{i}/{len(todo)}] {job.label}  hparams {job.hparams}", flush=True)
        res = run_job(dataclasses.replace(job, final_test_eval=False))  # keep the main job short
        rows.append(res.summary)
        print(f"   -> {res.status}{': ' + res.reason if res.reason else ''}", flush=True)
    if rows:
        print()
        print_summary(rows)
    rep = write_report(runs, Path(args.out) if args.out else None)
    for p in rep.problems:
        print(f"left out: {p}", file=sys.stderr)
    print(f"\nrun records: {runs.resolve()}")
    print(f"leaderboard: {rep.readme.resolve()}")
    print(f"       html: {rep.html.resolve()}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Expand the plan, skip finished trials, submit the rest, wait with a deadline."""
    from harness.executors import SlurmOptions, submit, wait
    from harness.status import format_status, sweep_status
    from harness.sweep import plan_jobs, split_pending

    runs = Path(args.runs)
    opts = SlurmOptions.load(
        slurm_partition=args.partition,
        gpus_per_node=args.gpus,
        cpus_per_task=args.cpus,
        mem_gb=args.mem_gb,
        timeout_min=args.timeout_min,
        slurm_array_parallelism=args.parallelism,
        slurm_max_num_timeout=args.max_timeouts,
    )
    jobs = plan_jobs(
        runs,
        args.workloads,
        args.submissions,
        args.variant,
        args.studies,
        args.trials,
        args.seed,
        args.self_tuning,
    )
    todo, done = split_pending(jobs)
    if args.no_test_eval:
        todo = [dataclasses.replace(j, final_test_eval=False) for j in todo]
    print(
        f"{len(jobs)} trials: {len(done)} finished (skipped), {len(todo)} to run "
        f"with the {args.executor} executor",
        flush=True,
    )
    folder = Path(args.folder) if args.folder else runs / ".submitit"
    handles = submit(todo, args.executor, folder, opts)
    left = wait(handles, args.executor, folder, opts, args.deadline_min * 60, _progress)
    print(file=sys.stderr)
    print(format_status(sweep_status(runs)))
    if left:
        print(
            f"deadline reached: {len(left)} jobs still queued or running "
            f"(they go on; `ttr status --runs {runs}` follows them)"
        )
    print(f"run records: {runs.resolve()}")
    return 1 if left else 0


_last_progress: list[tuple[int, int, int]] = []


def _progress(done: int, total: int, running: int) -> None:
    """A one-line progress bar on stderr, redrawn only when the counts change."""
    if _last_progress and _last_progress[-1] == (done, total, running):
        return
    _last_progress[:] = [(done, total, running)]
    width = 30
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "." * (width - filled)
    print(f"\r[{bar}] {done}/{total} done, {running} running", end="", file=sys.stderr, flush=True)


def cmd_status(args: argparse.Namespace) -> int:
    from harness.status import format_status, sweep_status

    print(format_status(sweep_status(Path(args.runs))))
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from harness.collect import collect

    out = Path(args.out)
    res = collect(Path(args.runs), out)
    for p in res.problems:
        print(f"skipped: {p}", file=sys.stderr)
    print(f"{len(res.evals)} evaluations from {len(res.trials)} trials -> {out.resolve()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    res = write_report(
        Path(args.runs),
        Path(args.out) if args.out else None,
        hardware_class=args.hardware_class,
        baseline=args.baseline,
    )
    for p in res.problems:
        print(f"left out: {p}", file=sys.stderr)
    print(f"leaderboard ({res.hardware_class}): {res.readme.resolve()}")
    print(f"             html: {res.html.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttr", description="Benchmark training methods by time-to-result."
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="workloads, variants, submissions").set_defaults(fn=cmd_list)

    r = sub.add_parser("run", help="train one submission on one workload")
    r.add_argument("workload")
    r.add_argument("submission")
    r.add_argument("--variant", default="default")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--hparams", nargs="*", default=[], metavar="FILE|k=v")
    r.add_argument("--runs", default="runs", help="records root (default ./runs)")
    r.add_argument("--study", type=int, default=0)
    r.add_argument("--trial", type=int, default=None, help="default: the next free index")
    r.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    r.add_argument("--budget-s", type=float, default=None, help="override the spec's budget")
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("check", help="contract, search space, kernel parity; exit 1 with reasons")
    c.add_argument("submission")
    c.add_argument("--no-step", action="store_true", help="skip the one-step smoke call")
    c.set_defaults(fn=cmd_check)

    sw = sub.add_parser("sweep", help="workloads x submissions x studies x trials via submitit")
    sw.add_argument("--executor", required=True, choices=["local", "debug", "slurm"])
    sw.add_argument("--workloads", nargs="*", default=None, help="default: all")
    sw.add_argument("--submissions", nargs="*", default=None, help="default: all")
    sw.add_argument("--variant", default="default")
    sw.add_argument("--studies", type=int, default=3)
    sw.add_argument("--trials", type=int, default=5)
    sw.add_argument("--seed", type=int, default=0, help="seed of the trial plans")
    sw.add_argument("--self-tuning", action="store_true", help="defaults only, 3x budget")
    sw.add_argument(
        "--no-test-eval",
        action="store_true",
        help="skip each trial's final test-split evaluation (analysis only; not in the scores)",
    )
    sw.add_argument("--runs", default="runs")
    sw.add_argument("--folder", default=None, help="submitit logs (default <runs>/.submitit)")
    sw.add_argument("--deadline-min", type=float, default=24 * 60, help="stop waiting after")
    sl = sw.add_argument_group("SLURM (defaults: slurm/defaults.json)")
    sl.add_argument("--partition", default=None)
    sl.add_argument("--gpus", type=int, default=None, help="GPUs per node")
    sl.add_argument("--cpus", type=int, default=None, help="CPUs per task")
    sl.add_argument("--mem-gb", type=float, default=None)
    sl.add_argument("--timeout-min", type=int, default=None, help="time limit per job")
    sl.add_argument("--parallelism", type=int, default=None, help="array parallelism cap")
    sl.add_argument("--max-timeouts", type=int, default=None, help="requeues on timeout")
    sw.set_defaults(fn=cmd_sweep)

    st = sub.add_parser("status", help="done / running / failed / pending, with reasons")
    st.add_argument("--runs", default="runs")
    st.set_defaults(fn=cmd_status)

    co = sub.add_parser("collect", help="gather every run into one parquet file")
    co.add_argument("--runs", default="runs")
    co.add_argument("--out", default="results.parquet")
    co.set_defaults(fn=cmd_collect)

    rp = sub.add_parser("report", help="write leaderboards/<hardware class>/")
    rp.add_argument("--runs", default="runs")
    rp.add_argument("--out", default=None, help="default: leaderboards/<hardware class>/")
    rp.add_argument("--hardware-class", default=None, help="default: the class with most trials")
    rp.add_argument("--baseline", default=None, help="submission for the speed-up column")
    rp.set_defaults(fn=cmd_report)

    b = sub.add_parser("bench", help="the main job: a small tuned comparison, then the leaderboard")
    b.add_argument("--workloads", nargs="*", default=None, help="default: all")
    b.add_argument("--submissions", nargs="*", default=None, help="default: all")
    b.add_argument("--variant", default="default")
    b.add_argument("--studies", type=int, default=2)
    b.add_argument("--trials", type=int, default=1)
    b.add_argument("--seed", type=int, default=0, help="seed of the trial plans")
    b.add_argument("--runs", default="runs")
    b.add_argument("--out", default=None, help="default: leaderboards/<hardware class>/")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _console_logging(verbose=not args.quiet)
    try:
        return args.fn(args)
    except (ContractError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"ttr {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
