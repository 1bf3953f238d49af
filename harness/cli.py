"""``ttr``: the command line. Every command prints where it wrote.

Output contract: results on stdout (one JSON object with ``--json``), logs and progress bars on
stderr (bars only on a terminal). Exit codes: 0 ok, 1 a trial or check failed, 2 bad usage or
input (also a report with no matching run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import discovery
from harness.api import ContractError

EXIT_CODES = """exit codes:
  0  done (for run, bench and sweep: every trial ran; a trial that missed its target is done)
  1  a trial or check failed, a sweep's deadline passed, or stdout closed early (| head)
  2  bad usage or input: unknown names, bad values, a finished run in the way, a saved plan
     that differs, a report with no matching run
"""


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


def print_summary(rows: list[dict[str, Any]], file: Any = None) -> None:
    head = (
        f"{'workload':<10} {'submission':<16} {'status':<17} "
        f"{'time-to-target':>22} {'steps':>7} {'s/step':>9}"
    )
    file = file or sys.stdout
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in rows:
        ttt = r.get("time_to_target_s")
        ttt_s = "miss" if ttt is None else f"{ttt:.1f} s (prev {r['prev_eval_train_time_s']:.1f})"
        if r.get("status") == "censored" and r.get("censored_at_s") is not None:
            ttt_s = f"miss (cut at {r['censored_at_s']:.1f} s)"
        sps = r.get("s_per_step")
        print(
            f"{r.get('workload', '?'):<10} {r.get('submission', '?'):<16} "
            f"{r.get('status', '?'):<17} {ttt_s:>22} {r.get('steps_to_target') or '-':>7} "
            f"{'-' if sps is None else f'{sps * 1e3:.1f} ms':>9}",
            file=file,
        )


def fmt_duration(s: float) -> str:
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def emit_json(obj: Any) -> None:
    """The one JSON object of a ``--json`` command, on stdout."""
    print(json.dumps(obj, indent=2, allow_nan=False, default=str))


# -- progress bars (stderr, and only on a terminal) ----------------------------------------


def _bar_disable(args: argparse.Namespace) -> bool | None:
    """tqdm's ``disable``: None draws only when stderr is a terminal (not in SLURM logs)."""
    return True if args.quiet else None


@contextmanager
def run_progress(
    label: str, disable: bool | None, position: int = 0
) -> Iterator[Callable[[int, float, float], None]]:
    """A bar of training seconds against the budget, fed by the runner's progress callback
    (at most a few times a second). Its ETA is to the end of the budget: an upper bound."""
    from tqdm import tqdm

    bar: list[Any] = []

    def update(step: int, train_s: float, budget_s: float) -> None:
        if not bar:
            bar.append(
                tqdm(
                    total=round(budget_s, 1),
                    desc=label,
                    unit="s",
                    file=sys.stderr,
                    disable=disable,
                    leave=position == 0,
                    position=position,
                    dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of "
                    "training [{elapsed}<{remaining}{postfix}]",
                )
            )
        b = bar[0]
        b.n = min(round(train_s, 1), b.total)
        b.set_postfix_str(f"step {step}", refresh=False)
        b.refresh()

    try:
        yield update
    finally:
        if bar:
            bar[0].close()


def _say(text: str, file: Any = None) -> None:
    """print() that does not tear a progress bar drawn on the terminal."""
    from tqdm import tqdm

    tqdm.write(text, file=file or sys.stdout)


# -- commands ----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from harness.records import hardware_class

    workloads, subs = [], []
    for name in discovery.workload_names():
        specs = discovery.load_workload_module(name).SPECS
        for v, s in specs.items():
            workloads.append(
                {
                    "workload": name,
                    "variant": v,
                    "metric": s.metric,
                    "direction": s.direction,
                    "target": s.target,
                    "budget_s": dict(s.budget_s),
                    "eval_every_s": s.eval_every_s,
                }
            )
    for name in discovery.submission_names():
        try:
            sub = discovery.load_submission(name)
            subs.append(
                {
                    "submission": name,
                    "workloads": None if sub.workloads is None else list(sub.workloads),
                    "kernels": [k.name for k in sub.kernels()],
                    "error": None,
                }
            )
        except ContractError as e:
            subs.append({"submission": name, "workloads": None, "kernels": [], "error": str(e)})
    hw = hardware_class()
    if args.json:
        emit_json({"hardware_class": hw, "workloads": workloads, "submissions": subs})
        return 0
    print(f"hardware class: {hw}\n\nworkloads:")
    for w in workloads:
        budget = ", ".join(f"{k} {b:g} s" for k, b in w["budget_s"].items())
        print(
            f"  {w['workload']:<14} {w['variant']:<8} {w['metric']} "
            f"{'<=' if w['direction'] == 'min' else '>='} {w['target']:g}; budget {budget}"
        )
    print("\nsubmissions:")
    for s in subs:
        if s["error"]:
            print(f"  {s['submission']:<18} BROKEN: {s['error']}")
            continue
        runs_on = "all workloads" if s["workloads"] is None else ", ".join(s["workloads"])
        kernels = ", ".join(s["kernels"]) or "none"
        print(f"  {s['submission']:<18} runs on: {runs_on}; kernels: {kernels}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness import records
    from harness.runner import RunConfig, TrialInterrupted, run_trial

    adhoc = args.study is None and args.trial is None  # by hand: never a planned trial's slot
    hparams = check_run_args(args)  # everything checked before a directory is made
    cfg = RunConfig(
        workload=args.workload,
        submission=args.submission,
        variant=args.variant,
        hparams=hparams,
        seed=args.seed,
        runs=Path(args.runs),
        study=args.study if args.study is not None else 0,
        trial=args.trial,
        device=args.device,
        budget_s=args.budget_s,
        keep_checkpoint=args.keep_checkpoints,
        adhoc=adhoc,
    )
    label = f"{args.workload}/{args.variant} {Path(args.submission).name}"
    try:
        with run_progress(label, _bar_disable(args)) as progress:
            res = run_trial(cfg, progress)
    except (KeyboardInterrupt, TrialInterrupted) as e:  # recorded interrupted: a re-run resumes
        print(f"interrupted: {e or 'SIGINT'}; run it again to resume", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)
    out = sys.stderr if args.json else sys.stdout
    print_summary([res.summary], file=out)
    print(f"\nrun directory: {res.run_dir}", file=out)
    if args.json:
        emit_json({**records.read_run(res.run_dir), "run_dir": str(res.run_dir.resolve())})
    if res.status == "failed":
        print(f"FAILED: {res.reason}", file=sys.stderr)
        return 1
    return 0


def check_run_args(args: argparse.Namespace) -> dict[str, Any]:
    """``ttr run``'s input, checked before anything is written: the workload, its variant, the
    submission (found, loadable, declaring the workload), the hyperparameters (known names,
    values in the search space), the budget, study and trial. Returns the hyperparameters."""
    from harness.search_space import SearchSpace

    discovery.get_spec(args.workload, args.variant)
    sub = discovery.load_submission(args.submission)
    if not sub.supports(args.workload):
        raise ContractError(
            f"submission {args.submission!r} supports {list(sub.workloads or ())}, "
            f"not {args.workload!r}"
        )
    hparams = parse_hparams(args.hparams)
    SearchSpace.load(sub.search_space_path).resolve(hparams)
    if args.budget_s is not None and not (args.budget_s > 0 and args.budget_s < float("inf")):
        raise ValueError(f"--budget-s must be a positive number of seconds, got {args.budget_s}")
    for name in ("study", "trial"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ValueError(f"--{name} must be 0 or more, got {value}")
    return hparams


def cmd_check(args: argparse.Namespace) -> int:
    from harness.check import check_submission

    ok = check_submission(args.submission, smoke_step=not args.no_step)
    return 0 if ok else 1


def _plan(args: argparse.Namespace, self_tuning: bool = False):
    """(all jobs, the split, plan problems) of the requested plan; a dry run writes and moves
    nothing. Unknown names and bad counts fail before anything is written; a broken submission
    leaves out only its own pairs (named in the plan problems)."""
    from harness.sweep import plan_jobs, sort_jobs

    problems: list[str] = []
    jobs = plan_jobs(
        Path(args.runs),
        args.workloads,
        args.submissions,
        args.variant,
        args.studies,
        args.trials,
        args.seed,
        self_tuning,
        save=not args.dry_run,
        problems=problems,
        grow=self_tuning,
    )
    split = sort_jobs(jobs, dry_run=args.dry_run, retry_failed=getattr(args, "retry_failed", False))
    if args.keep_checkpoints:
        split.todo = [dataclasses.replace(j, keep_checkpoint=True) for j in split.todo]
    split.unplanned = problems
    return jobs, split


# A dry run's allowance for the setup and evaluation time of a workload with no finished trial
# to measure it from (generous: the measured share is 5-40% of the budget on cpu-2core).
UNMEASURED_FIXED_S = 30.0
UNMEASURED_SHARE = 0.5


def print_plan(jobs: list, todo: list, done: list, runs: Path, kind: str) -> None:
    """The dry run's plan, counts and an upper bound of its device time; writes nothing."""
    from harness import records
    from harness.sweep import job_budget_s, measured_overhead_s

    pending = {id(j) for j in todo}
    print(
        f"{'workload':<14} {'variant':<8} {'submission':<22} {'study':>5} {'trial':>5} "
        f"{'budget':>8}  {'state':<8} hparams"
    )
    for j in jobs:
        state = "pending" if id(j) in pending else "done"
        hp = json.dumps(j.hparams, sort_keys=True)
        print(
            f"{j.workload:<14} {j.variant:<8} {Path(j.submission).name:<22} {j.study:>5} "
            f"{j.trial:>5} {job_budget_s(j, kind):>6.0f} s  {state:<8} {hp}"
        )
    pairs = {(j.workload, j.variant, Path(j.submission).name) for j in jobs}
    print(
        f"\n{len(jobs)} trials over {len(pairs)} (workload, submission) pairs: "
        f"{len(done)} already done, {len(todo)} to run"
    )
    hw = records.hardware_class() if kind == records.device_kind(records.hardware_class()) else ""
    board = discovery.repo_root() / "leaderboards" / hw / "results.parquet"
    overhead = measured_overhead_s(runs, hw, board) if hw else {}
    budgets = sum(job_budget_s(j, kind) for j in todo)
    extra = sum(overhead.get((j.workload, j.variant), 0.0) for j in todo)
    unmeasured = sorted({j.workload for j in todo if (j.workload, j.variant) not in overhead})
    allowance = sum(
        UNMEASURED_FIXED_S + UNMEASURED_SHARE * job_budget_s(j, kind)
        for j in todo
        if (j.workload, j.variant) not in overhead
    )
    print(
        f"device time, at most: {fmt_duration(budgets + extra + allowance)} = "
        f"{fmt_duration(budgets)} of "
        f"training budgets ({kind}) for the {len(todo)} trials to run"
        + (
            f" + {fmt_duration(extra)} of setup and evaluation (per trial of a workload, the "
            f"largest measured on {hw} in {runs} or leaderboards/{hw}/)"
            if extra
            else ""
        )
    )
    if unmeasured and todo:
        print(
            f"  + {fmt_duration(allowance)}: an allowance for setup and evaluation of "
            + ", ".join(unmeasured)
            + f" (no finished trial here to measure it from: {UNMEASURED_FIXED_S:.0f} s + "
            f"{UNMEASURED_SHARE:.0%} of the budget per trial)"
        )
    if todo:
        print("  a bound: a trial that reaches its target stops before its budget")
    print("dry run: nothing written (no plan files, no records)")


def _partial(args: argparse.Namespace) -> bool:
    return bool(args.workloads or args.submissions) or args.variant != "default"


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Time the fixed reference jobs and print the machine's speed figures (``--save``: as this
    hardware class's reference, which every trial's probe is compared with)."""
    from harness import machine, records

    if args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
    hw = records.hardware_class()
    device = "cuda" if records.device_kind(hw) == "gpu" else "cpu"
    measured = machine.calibrate(rounds=args.rounds, device=device)
    print(f"{hw}: {records.cpu_model()}, {measured['threads']} threads")
    print(machine.format_figures(measured))
    if args.save:
        path = machine.save_reference(hw, measured, note=args.note)
        print(f"saved as the {hw} reference: {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """The main job: the self-tuning protocol with adaptive replication (harness/bench.py),
    then the leaderboard, rewritten after every look. Re-running resumes."""
    from tqdm import tqdm

    from harness import bench
    from harness.report import write_report

    runs = Path(args.runs)
    schedule = bench.looks(args.studies, max(args.studies, args.max_studies))
    if args.hours <= 0:
        raise ValueError(f"--hours must be more than 0, got {args.hours}")
    level = bench.look_level(len(schedule))
    protocol = (
        f"self-tuning: each method at its defaults, one trial per study; studies added in looks "
        f"of {', '.join(map(str, schedule))} where a verdict is open (each look at "
        f"{level:.2%}, so {bench.FAMILY_LEVEL:.0%} over all looks); at most {args.hours:g} h"
    )
    if args.dry_run:
        args.trials = 1
        jobs, split = _plan(args, self_tuning=True)
        print(protocol)
        print("the first look:")
        print_plan(jobs, split.todo, split.finished + split.live, runs, _kind())
        _print_problems(split.unplanned + split.problems)
        return 0
    out = Path(args.out) if args.out else None
    if out is None and _partial(args):
        out = runs / "leaderboard"  # a part never overwrites the committed leaderboards/<hw>/
        print(
            f"a partial bench (--workloads/--submissions/--variant): the leaderboard goes to "
            f"{out}, not leaderboards/ (give --out to choose)"
        )
    print(protocol, flush=True)
    subs = [Path(s).name for s in args.submissions] if args.submissions else None
    written: list[Any] = []

    def report(outcome: bench.BenchOutcome) -> None:
        try:
            rep = write_report(
                runs,
                out,
                hardware_class=outcome.hardware_class,
                variant=args.variant,
                workloads=args.workloads,
                submissions=subs,
            )
        except ContractError as e:  # nothing finished to rank yet
            _say(f"no leaderboard yet: {e}")
            return
        written[:] = [rep]
        _say(f"leaderboard rewritten: {rep.readme}")
        for st in outcome.states.values():
            _say(f"   {st.workload}: {st.why}")

    cfg = bench.BenchConfig(
        runs=runs,
        workloads=args.workloads,
        submissions=args.submissions,
        variant=args.variant,
        seed=args.seed,
        hours=args.hours,
        first=schedule[0],
        last=schedule[-1],
        parallel=args.parallel == "auto",
        keep_checkpoints=args.keep_checkpoints,
        retry_failed=args.retry_failed,
    )
    with tqdm(
        total=0,
        desc="look",
        unit="trial",
        file=sys.stderr,
        disable=_bar_disable(args),
        dynamic_ncols=True,
    ) as bar:
        outcome = bench.run_bench(cfg, report, say=_say, bar=bar)
    _print_problems(outcome.problems)
    if not written:
        report(outcome)
    print("\nverdicts:")
    for st in outcome.states.values():
        vd = st.verdict
        print(
            f"  {st.workload:<14} {vd.get('verdict', 'undecided'):<11} "
            f"fastest {vd.get('fastest') or '-'}, runner-up {vd.get('runner_up') or '-'}; "
            f"{st.why}"
        )
    print(f"device time of this bench: {bench.fmt_hours(outcome.spent_s)} (all its runs)")
    print(f"\nrun records: {runs.resolve()}")
    if written:
        rep = written[0]
        for p in rep.problems:
            print(f"left out: {p}", file=sys.stderr)
        print(f"leaderboard: {rep.readme.resolve()}")
        print(f"       html: {rep.html.resolve()}")
    if outcome.interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 1 if outcome.failed or outcome.problems else 0


def _kind() -> str:
    from harness import records

    return records.device_kind(records.hardware_class())


def _print_problems(problems: list[str]) -> None:
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Expand the plan, skip finished trials, submit the rest, wait with a deadline."""
    from harness import records
    from harness.executors import SlurmOptions, not_started, submit, wait
    from harness.status import format_status, sweep_status

    runs = Path(args.runs)
    if args.deadline_min <= 0:
        raise ValueError(f"--deadline-min must be positive, got {args.deadline_min:g}")
    if args.parallelism is not None and args.parallelism < 1:
        raise ValueError(f"--parallelism must be at least 1, got {args.parallelism}")
    opts = SlurmOptions.load(
        slurm_partition=args.partition,
        gpus_per_node=args.gpus,
        cpus_per_task=args.cpus,
        mem_gb=args.mem_gb,
        timeout_min=args.timeout_min,
        slurm_array_parallelism=args.parallelism,
        slurm_max_num_timeout=args.max_timeouts,
    )
    jobs, split = _plan(args, args.self_tuning)
    todo = split.todo
    if args.no_test_eval:
        todo = [dataclasses.replace(j, final_test_eval=False) for j in todo]
    if args.dry_run:
        here = records.device_kind(records.hardware_class())
        kind = "gpu" if args.executor == "slurm" and (opts.gpus_per_node or 0) > 0 else here
        print_plan(jobs, todo, split.finished + split.live, runs, kind)
        _print_problems(split.unplanned + split.problems)
        return 0
    retried = f" ({len(split.retried)} failed ones again)" if split.retried else ""
    print(
        f"{len(jobs)} trials: {len(split.finished)} finished (skipped), {len(split.live)} "
        f"running elsewhere (waited for), {len(todo)} to run{retried} "
        f"with the {args.executor} executor",
        flush=True,
    )
    _print_problems(split.unplanned + split.problems)
    folder = Path(args.folder) if args.folder else runs / ".submitit"
    handles = submit(todo, args.executor, folder, opts, elsewhere=split.live)
    with sweep_progress(len(handles), _bar_disable(args)) as progress:
        left = wait(handles, args.executor, folder, opts, args.deadline_min * 60, progress)
    print(format_status(sweep_status(runs)))
    if left:
        queued = not_started(left)
        print(
            f"deadline reached: {len(left) - len(queued)} trials still running (they go on; "
            f"`ttr status --runs {runs}` follows them), {len(queued)} never started"
            + (" (not started now; `ttr sweep` again starts them):" if queued else "")
        )
        for h in queued:
            print(f"  not started: {h.job.label}")
    print(f"run records: {runs.resolve()}")
    return 1 if left or split.unplanned else 0


@contextmanager
def sweep_progress(total: int, disable: bool | None) -> Iterator[Callable[[int, int, int], None]]:
    """The sweep's bar: jobs done of all, how many run now, and tqdm's ETA."""
    from tqdm import tqdm

    with tqdm(total=total, desc="sweep", unit="trial", file=sys.stderr, disable=disable) as bar:

        def update(done: int, total: int, running: int) -> None:
            if done != bar.n:
                bar.update(done - bar.n)
            bar.set_postfix_str(f"{running} running")

        yield update


def cmd_status(args: argparse.Namespace) -> int:
    from harness.status import format_status, sweep_status

    table = sweep_status(runs_dir(args.runs))
    if args.json:
        keys = ("hardware_class", "workload", "variant", "submission")
        rows = [
            {**dict(zip(keys, key, strict=True)), **dataclasses.asdict(c)}
            for key, c in sorted(table.items())
        ]
        totals = {
            k: sum(r[k] for r in rows)
            for k in ("done", "censored", "running", "resumable", "failed", "pending")
        }
        emit_json({"runs": str(Path(args.runs).resolve()), "totals": totals, "rows": rows})
        return 0
    print(format_status(table))
    return 0


def runs_dir(text: str) -> Path:
    """The ``--runs`` folder of a command that reads records: it must be a directory."""
    runs = Path(text)
    if runs.is_file():
        raise NotADirectoryError(f"--runs {text}: a file, not a records folder")
    if not runs.is_dir():
        raise FileNotFoundError(f"--runs {text}: no such folder (nothing has run there yet?)")
    return runs


def cmd_collect(args: argparse.Namespace) -> int:
    from harness.collect import MissingExtra, collect, export_tensorboard, write_csv

    out = Path(args.out)
    runs = runs_dir(args.runs)
    res = collect(runs, out)
    for p in res.problems:
        print(f"skipped: {p}", file=sys.stderr)
    print(f"{len(res.evals)} evaluations from {len(res.trials)} trials -> {out.resolve()}")
    if res.adhoc:
        print(f"{len(res.adhoc)} ad-hoc runs (ttr run, under adhoc/) left out: in no study")
    if args.csv:
        evals_csv, trials_csv = write_csv(res, out.with_suffix(".csv"))
        print(f"csv: {evals_csv.resolve()} (evaluations), {trials_csv.resolve()} (trials)")
    if args.tensorboard:
        try:
            n = export_tensorboard(runs, Path(args.tensorboard))
        except MissingExtra as e:
            print(f"ttr collect: error: {e}", file=sys.stderr)
            return 2
        print(f"tensorboard: {n} runs -> {Path(args.tensorboard).resolve()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    runs = Path(args.runs)
    if not (runs.is_file() and runs.suffix == ".parquet"):  # a board's results.parquet, or
        runs = runs_dir(args.runs)  # a records folder
    res = write_report(
        runs,
        Path(args.out) if args.out else None,
        hardware_class=args.hardware_class,
        baseline=args.baseline,
        variant=args.variant,
        workloads=args.workloads,
        submissions=args.submissions,
    )
    for p in res.problems:
        print(f"left out: {p}", file=sys.stderr)
    print(f"leaderboard ({res.hardware_class}): {res.readme.resolve()}")
    print(f"             html: {res.html.resolve()}")
    return 0


# -- the parser --------------------------------------------------------------------------


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default after its help (unless the help says it, or there is none to
    show: a flag, an empty list); the epilog keeps its line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d == [] or d == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def _version() -> str:
    import harness

    version = getattr(harness, "__version__", None)
    if version is None:
        from importlib import metadata

        try:
            version = metadata.version("ttr-bench")
        except metadata.PackageNotFoundError:
            version = "unknown"
    return f"ttr {version}"


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-q and --submissions-dir, accepted before and after the subcommand (a subcommand's own
    copy has its own dest, merged in main, so it never hides the top-level one)."""
    sfx = "" if top else "_sub"
    p.add_argument(
        "-q",
        "--quiet",
        dest=f"quiet{sfx}",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="only warnings and results: no progress lines or bars",
    )
    p.add_argument(
        "--submissions-dir",
        dest=f"submissions_dir{sfx}",
        action="append",
        metavar="DIR",
        default=[] if top else argparse.SUPPRESS,
        help="also find submissions in DIR (repeatable; searched before TTR_SUBMISSIONS and "
        "submissions/)",
    )


def _sub(sub: Any, name: str, help: str, fn: Callable[[argparse.Namespace], int], **kw: Any):
    description = textwrap.fill(kw.pop("description", help), 88)
    p = sub.add_parser(
        name, help=help, description=description, formatter_class=_Help, epilog=EXIT_CODES, **kw
    )
    _common(p)
    p.set_defaults(fn=fn)
    return p


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workloads", nargs="+", default=None, metavar="W", help="workloads to run (default: all)"
    )
    p.add_argument(
        "--submissions",
        nargs="+",
        default=None,
        metavar="S",
        help="submissions to run, names or folders (default: all)",
    )
    p.add_argument("--variant", default="default", help="workload variant")


def _add_rerun_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the commands that run a plan's trials (sweep, bench)."""
    p.add_argument(
        "--keep-checkpoints", action="store_true", help="keep checkpoint.pt of finished trials"
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="run failed trials again; each failed record is kept in "
        "trial_<t>/failed_attempts/<n>/",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttr",
        description="Benchmark training methods by time-to-result.",
        formatter_class=_Help,
        epilog=EXIT_CODES,
    )
    p.add_argument("--version", action="version", version=_version())
    _common(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ls = _sub(sub, "list", "workloads, variants, targets, budgets, submissions", cmd_list)
    ls.add_argument("--json", action="store_true", help="one JSON object on stdout")

    r = _sub(
        sub,
        "run",
        "train one submission on one workload",
        cmd_run,
        description="Train one submission on one workload. Without --study and --trial the "
        "run is ad hoc: recorded under <runs>/<hw>/<workload>/<variant>/<submission>/adhoc/, "
        "never in a planned study's slot, and never ranked.",
    )
    r.add_argument("workload", help="a workload name (ttr list)")
    r.add_argument("submission", help="a submission name or folder")
    r.add_argument("--variant", default="default", help="workload variant")
    r.add_argument("--seed", type=int, default=0, help="seed of the run")
    r.add_argument(
        "--hparams",
        action="append",
        default=[],
        metavar="FILE|k=v",
        help="a JSON file or one k=v override; repeat for more (--hparams lr=1e-3 --hparams "
        "b.json); later ones win",
    )
    r.add_argument("--runs", default="runs", help="records root")
    r.add_argument(
        "--study", type=int, default=None, help="place the run in this study (not ad hoc)"
    )
    r.add_argument(
        "--trial", type=int, default=None, help="trial index (default: the next free one)"
    )
    r.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    r.add_argument("--budget-s", type=float, default=None, help="override the spec's budget")
    r.add_argument(
        "--keep-checkpoints", action="store_true", help="keep checkpoint.pt once finished"
    )
    r.add_argument(
        "--json", action="store_true", help="the run's record as one JSON object on stdout"
    )

    c = _sub(sub, "check", "contract, search space, kernel parity; exit 1 with reasons", cmd_check)
    c.add_argument("submission", help="a submission name or folder")
    c.add_argument(
        "--no-step",
        action="store_true",
        help="skip the smoke steps (two, through the referee and an athlete)",
    )

    sw = _sub(sub, "sweep", "workloads x submissions x studies x trials via submitit", cmd_sweep)
    sw.add_argument("--executor", required=True, choices=["local", "debug", "slurm"])
    _selection(sw)
    sw.add_argument("--studies", type=int, default=3, help="studies per (workload, submission)")
    sw.add_argument("--trials", type=int, default=5, help="trials per study")
    sw.add_argument("--seed", type=int, default=0, help="seed of the trial plans")
    sw.add_argument("--self-tuning", action="store_true", help="defaults only, 1.5x budget")
    sw.add_argument(
        "--no-test-eval",
        action="store_true",
        help="skip each trial's final test-split evaluation (analysis only; not in the scores)",
    )
    sw.add_argument("--runs", default="runs", help="records root")
    sw.add_argument("--folder", default=None, help="submitit logs (default <runs>/.submitit)")
    sw.add_argument(
        "--deadline-min", type=float, default=24 * 60, help="stop waiting after this long"
    )
    _add_rerun_flags(sw)
    sw.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and a bound of its device time; write nothing",
    )
    sl = sw.add_argument_group(
        "SLURM (defaults: harness/slurm_defaults.json, then the file named by TTR_SLURM_DEFAULTS)"
    )
    sl.add_argument("--partition", default=None, help="SLURM partition")
    sl.add_argument("--gpus", type=int, default=None, help="GPUs per node")
    sl.add_argument("--cpus", type=int, default=None, help="CPUs per task")
    sl.add_argument("--mem-gb", type=float, default=None, help="memory per job")
    sl.add_argument("--timeout-min", type=int, default=None, help="time limit per job")
    sl.add_argument("--parallelism", type=int, default=None, help="array parallelism cap")
    sl.add_argument("--max-timeouts", type=int, default=None, help="requeues on timeout")

    st = _sub(sub, "status", "done / running / failed / pending, with reasons", cmd_status)
    st.add_argument("--runs", default="runs", help="records root")
    st.add_argument("--json", action="store_true", help="one JSON object on stdout")

    co = _sub(sub, "collect", "gather every run into one parquet file", cmd_collect)
    co.add_argument("--runs", default="runs", help="records root")
    co.add_argument("--out", default="results.parquet", help="the evaluations, as parquet")
    co.add_argument(
        "--csv",
        action="store_true",
        help="also write the evaluations as CSV beside --out (same name, .csv) and the trials "
        "as <name>_trials.csv; the parquet file is written either way",
    )
    co.add_argument(
        "--tensorboard",
        default=None,
        metavar="DIR",
        help="also write every run's steps.csv and evaluations as TensorBoard scalars under "
        "DIR (needs: pip install 'ttr-bench[tensorboard]')",
    )

    rp = _sub(sub, "report", "write leaderboards/<hardware class>/", cmd_report)
    rp.add_argument("--runs", default="runs", help="records root")
    rp.add_argument("--out", default=None, help="default: leaderboards/<hardware class>/")
    rp.add_argument("--hardware-class", default=None, help="default: the class with most trials")
    rp.add_argument("--baseline", default=None, help="submission for the speed-up column")
    _selection(rp)
    for a in rp._actions:
        if a.dest in ("workloads", "submissions"):
            a.help = f"rank only these {a.dest} (default: all)"

    b = _sub(
        sub,
        "bench",
        "the main job: verdicts by adaptive replication, then the leaderboard",
        cmd_bench,
        description="The main job: every submission on every workload it supports, at its "
        "defaults (the self-tuning ruleset, 1.5x budget), with studies added in looks where a "
        "verdict is still open, until every workload is settled or --hours is spent; the "
        "leaderboard in leaderboards/<hardware class>/ is rewritten after every look. Ctrl-C "
        "stops it; the same command resumes. A part (--workloads, --submissions or another "
        "--variant) writes its leaderboard to <runs>/leaderboard/ unless --out is given. "
        "docs/scoring.md#the-bench has the rules.",
    )
    _selection(b)
    b.add_argument(
        "--hours",
        type=float,
        default=2.0,
        help="the bench's wall-clock time on this machine, all its runs together (resumed "
        "runs add up); a trial starts only if it fits",
    )
    b.add_argument(
        "--studies", type=int, default=3, help="studies per (workload, submission), first look"
    )
    b.add_argument("--max-studies", type=int, default=12, help="studies per cell at the last look")
    b.add_argument(
        "--parallel",
        choices=("auto", "off"),
        default="auto",
        help="auto: one trial per core (pinned, one thread) on the workloads this hardware "
        "class's reference allows it; off: one trial at a time on every core",
    )
    b.add_argument("--seed", type=int, default=0, help="seed of the trial plans")
    b.add_argument("--runs", default="runs", help="records root")
    b.add_argument(
        "--out",
        default=None,
        help="default: leaderboards/<hardware class>/ for the whole bench, <runs>/leaderboard/ "
        "for a part",
    )
    _add_rerun_flags(b)
    b.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and a bound of its device time; write nothing",
    )
    cal = _sub(
        sub,
        "calibrate",
        "time fixed reference jobs: this machine's speed figures",
        cmd_calibrate,
        description="Time fixed reference jobs (float32 matmul, memory copy, a small MLP training "
        "step; one thread and all threads) and print each figure as the best of --rounds "
        "rounds' medians, with the spread. --save writes them as this hardware class's "
        "reference (harness/hardware/<class>.json): a trial whose probe runs more than 10%% "
        "slower than it is recorded contended. Measure on an otherwise idle machine.",
    )
    cal.add_argument("--rounds", type=int, default=5, help="rounds per figure (the best counts)")
    cal.add_argument("--save", action="store_true", help="save as this hardware class's reference")
    cal.add_argument("--note", default="", help="a note saved with the reference (--save)")
    return p


def _hint(extras: list[str]) -> str:
    """Why argparse found arguments left over, with the fix for --hparams a=1 b=2."""
    pairs = [x for x in extras if "=" in x and not x.startswith("-")]
    if pairs:
        again = " ".join(f"--hparams {x}" for x in pairs)
        return f"unrecognized arguments: {' '.join(extras)} (one value per --hparams: {again})"
    return f"unrecognized arguments: {' '.join(extras)}"


def add_submissions_dirs(dirs: list[str]) -> None:
    """Prepend the folders to ``TTR_SUBMISSIONS`` (colon-separated, first wins), which
    submission discovery reads, here and in every job this process starts."""
    if not dirs:
        return
    paths = [str(Path(d).resolve()) for d in dirs]
    old = os.environ.get("TTR_SUBMISSIONS", "")
    os.environ["TTR_SUBMISSIONS"] = os.pathsep.join(paths + ([old] if old else []))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        sub = parser._subparsers._group_actions[0].choices[args.command]  # type: ignore[union-attr]
        sub.error(_hint(extras))
    args.quiet = args.quiet or getattr(args, "quiet_sub", False)
    dirs = [*args.submissions_dir, *getattr(args, "submissions_dir_sub", [])]
    for d in dirs:
        if not Path(d).is_dir():
            parser.error(f"--submissions-dir {d}: no such directory")
    add_submissions_dirs(dirs)
    _console_logging(verbose=not args.quiet)
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader (| head) left: nothing more to say; keep the exit flush from failing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (
        ContractError,
        FileExistsError,
        FileNotFoundError,
        NotADirectoryError,
        ValueError,
    ) as e:
        print(f"ttr {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
