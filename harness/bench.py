"""``ttr bench``: the self-tuning protocol with adaptive replication (docs/scoring.md#the-bench).

Every submission runs on every workload it supports at its own defaults with
``SELF_TUNING_BUDGET_MULTIPLIER`` x the workload's budget, one trial per study; study s gives
every submission the same seed (``harness.tuning.study_seed``). Studies are added in **looks**
(default 3, 5, 8, 12 studies per cell): after each look every workload's verdict is taken
(``harness.scoring.verdict``), and only the cells whose comparison is still open get the next
look's studies:

- a workload whose fastest method is ``separated`` from its runner-up, or ``equivalent`` to it,
  is settled;
- otherwise its leader (lowest median time) and every method not yet separated from the leader
  go on; a method already separated from the leader stops;
- a workload on which no method reached the target in any study after the first look is
  settled ("no method reaches its target"); more studies of misses buy nothing;
- a paper pair (a submission's ``improves_on`` in its README front matter, against that method)
  whose own verdict is open keeps both of its methods going.

**Error control across looks.** A comparison is looked at up to ``len(looks)`` times, so each
look tests at ``1 - (1 - 0.95) / len(looks)`` (Bonferroni over the looks: 98.75% for 4 looks).
Whatever the look at which a verdict is reached, the chance that any of a comparison's looks
names the wrong method faster, or an interval misses the truth, is then at most 5%
(tests/test_bench_adaptive.py checks it by simulation).

**Time.** ``hours`` bounds the wall-clock time of the whole bench on this machine (resumed runs
add up, in ``<runs>/bench.json``): a trial starts only if its budget and the workload's
measured overhead fit in what is left. Trials run one per core, pinned, with one thread each,
on the workloads whose hardware-class reference says a trial keeps its speed with a neighbour
(``harness/hardware/<class>.json``, ``one_trial_per_core``, measured by
``benchmarks/per_core_throughput.py``); the others run alone on every core.

**Cost cuts.** A trial on a workload whose best cell already has studies stops once its training
time passes 4x that cell's slowest study time (``cutoff_s``): past it, the trial could only
count as a failure in the performance profile (ratio over ``TAU_MAX`` = 4). It is recorded
``censored`` (its time known to exceed the cutoff), not as a miss of a finished run.

The report is rewritten after every look, so a bench stopped early (Ctrl-C, ``--hours``)
leaves a valid board with the verdicts settled so far; running the same command again resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import discovery, records, scoring
from harness.sweep import (
    MAX_CONTENDED_RERUNS,
    Job,
    job_budget_s,
    measured_overhead_s,
    plan_jobs,
    sort_jobs,
)

FAMILY_LEVEL = scoring.LEVEL  # 0.95: the error rate the verdicts keep over all looks
FIRST_LOOK = 3
LAST_LOOK = 12
CUTOFF_RATIO = scoring.TAU_MAX  # a trial past 4x the best cell's time counts as a failure
STATE = "bench.json"  # <runs>/bench.json: the protocol, the looks and the time spent
LOGS = ".bench-logs"  # <runs>/.bench-logs/: each trial process's output
POLL_S = 0.5
UNMEASURED_OVERHEAD_S = 30.0  # setup + evaluations of a workload with no finished trial yet


def looks(first: int = FIRST_LOOK, last: int = LAST_LOOK) -> tuple[int, ...]:
    """Studies per cell at each look: ``first``, then x1.5 (rounded up) until ``last``."""
    if first < 2 or last < first:
        raise ValueError(f"looks need 2 <= first <= last, got first {first}, last {last}")
    out = [first]
    while out[-1] < last:
        out.append(min(last, max(out[-1] + 1, math.ceil(out[-1] * 1.5))))
    return tuple(out)


def look_level(n_looks: int, family: float = FAMILY_LEVEL) -> float:
    """The level each look tests at so that ``n_looks`` looks keep ``family`` (Bonferroni)."""
    return 1.0 - (1.0 - family) / max(1, n_looks)


# -- decisions ---------------------------------------------------------------------------------


@dataclass
class WorkloadState:
    """One workload after a look: its verdict and the methods that need more studies."""

    workload: str
    variant: str
    verdict: dict[str, Any]  # scoring.verdict at the look level
    open_cells: list[str]  # submissions to give the next look's studies
    studies: dict[str, int]  # studies run per submission
    why: str  # in words: why it is settled or open

    @property
    def settled(self) -> bool:
        return not self.open_cells


@dataclass(frozen=True)
class PaperPair:
    """A method and the one its paper improves on, on one workload."""

    workload: str
    method: str
    baseline: str


def paper_pairs(workload_cells: dict[str, list[str]]) -> list[PaperPair]:
    """Every submission's ``improves_on`` (README front matter) on the workloads both run."""
    out = []
    for w, subs in sorted(workload_cells.items()):
        for s in sorted(subs):
            try:
                base = discovery.improves_on(discovery.find_submission(s), w)
            except Exception:  # noqa: BLE001 -- a broken README is reported by ttr check
                base = None
            if base is not None and base in subs:
                out.append(PaperPair(w, Path(s).name, base))
    return out


def _reached_any(best: pd.DataFrame, sub: str) -> bool:
    return bool(np.isfinite(best.loc[best.submission == sub, "time_s"]).any())


def decide(
    trials: pd.DataFrame,
    workload_cells: dict[str, list[str]],
    variant: str,
    level: float,
    pairs: Sequence[PaperPair] = (),
    max_studies: int = LAST_LOOK,
) -> dict[str, WorkloadState]:
    """Each workload's state after a look, from the finished trials (one hardware class)."""
    out = {}
    for w, subs in workload_cells.items():
        names = [Path(s).name for s in subs]
        t = trials[(trials.workload == w) & (trials.variant == variant)] if len(trials) else trials
        counts = {s: 0 for s in names}
        if len(t):
            best = scoring.study_best(t)
            for s, n in best.groupby("submission").size().items():
                counts[s] = int(n)
        else:
            best = None
        empty = {"verdict": "undecided", "fastest": None, "runner_up": None}
        if best is None or min(counts.values()) == 0:
            out[w] = WorkloadState(w, variant, empty, names, counts, "not every method ran yet")
            continue
        vd = scoring.verdict(best, (w, variant), level)
        open_: set[str] = set()
        if vd["verdict"] in ("separated", "equivalent"):
            why = f"{vd['verdict']}: {vd['fastest']} against {vd['runner_up']}"
        elif vd["fastest"] is None:
            open_ = {s for s in names if _reached_any(best, s)}
            why = (
                "no median reached the target yet; methods that reached it in some study go on"
                if open_
                else "no method reached the target in any study"
            )
        else:
            leader = vd["fastest"]
            open_ = {leader}
            for s in names:
                if s != leader:
                    c = scoring.paired_comparison(best, leader, s, (w, variant), level)
                    if c["p_faster"] < level:
                        open_.add(s)
            why = f"undecided: {leader} against {sorted(open_ - {leader})}"
        for p in pairs:
            if p.workload != w or p.method not in counts or p.baseline not in counts:
                continue
            c = scoring.paired_comparison(best, p.method, p.baseline, (w, variant), level)
            rev = scoring.paired_comparison(best, p.baseline, p.method, (w, variant), level)
            settled = (
                max(c["p_faster"], rev["p_faster"]) >= level
                or scoring.verdict_of(c["lo"], c["hi"], c["p_faster"], level) == "equivalent"
            )
            if not settled and (_reached_any(best, p.method) or _reached_any(best, p.baseline)):
                open_ |= {p.method, p.baseline}
                why += f"; paper pair {p.method} vs {p.baseline} open"
        open_ = {s for s in open_ if counts[s] < max_studies}
        out[w] = WorkloadState(w, variant, vd, sorted(open_), counts, why)
    return out


def next_target(state: WorkloadState, schedule: Sequence[int]) -> int | None:
    """Studies the open cells of a workload get next: the first look above what the most
    advanced open cell has (or the look an interrupted round left unfinished); None at the
    end of the schedule."""
    if state.settled:
        return None
    have = [state.studies[s] for s in state.open_cells]
    done = min(have)
    for n in schedule:
        if n > done:
            return n
    return None


# -- pinning and cost cuts ---------------------------------------------------------------------


def one_trial_per_core(hardware_class: str) -> dict[str, bool]:
    """workload -> whether a trial keeps its speed next to another one (reference file)."""
    from harness.machine import load_reference

    ref = load_reference(hardware_class) or {}
    table = ref.get("one_trial_per_core") or {}
    return {str(w): bool(v.get("ok") if isinstance(v, dict) else v) for w, v in table.items()}


def cutoffs(trials: pd.DataFrame, workload: str, variant: str) -> tuple[float, str] | None:
    """(cutoff_s, reason) for the next trials of a workload: 4x the slowest study of its best
    cell (lowest median), or None while no cell has a finite median."""
    t = (
        trials[(trials.workload == workload) & (trials.variant == variant)]
        if len(trials)
        else trials
    )
    if not len(t):
        return None
    best = scoring.study_best(t)
    med = best.groupby("submission")["time_s"].median()
    med = med[np.isfinite(med)]
    if med.empty:
        return None
    leader = sorted(med.index, key=lambda s: (med[s], s))[0]
    slowest = best.loc[best.submission == leader, "time_s"]
    slowest = float(slowest[np.isfinite(slowest)].max())
    cut = CUTOFF_RATIO * slowest
    return cut, f"past {CUTOFF_RATIO:g}x the slowest study of {leader} ({slowest:.1f} s)"


# -- running trials ----------------------------------------------------------------------------


def _job_to_json(job: Job) -> str:
    d = dataclasses.asdict(job)
    return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()})


def job_from_json(text: str) -> Job:
    d = json.loads(text)
    d["runs"] = Path(d["runs"])
    for k in ("cores",):
        if d.get(k) is not None:
            d[k] = tuple(d[k])
    return Job(**d)


@dataclass
class Running:
    job: Job
    proc: subprocess.Popen
    cores: tuple[int, ...] | None
    started: float
    log: Path


@dataclass
class RoundResult:
    finished: list[tuple[Job, int]] = field(default_factory=list)  # (job, exit code)
    skipped: list[Job] = field(default_factory=list)  # did not fit in the time left
    remaining: list[Job] = field(default_factory=list)  # not started when ``until`` held
    interrupted: bool = False


class Scheduler:
    """Runs jobs as ``python -m harness.bench _trial JOB`` processes: one per core (pinned)
    for workloads that allow it, alone on every core for the others."""

    def __init__(
        self,
        runs: Path,
        cores: Sequence[int],
        parallel_ok: dict[str, bool],
        estimate_s: Callable[[Job], float],
        deadline: float,
        on_done: Callable[[Job, int, float], None] | None = None,
    ):
        self.runs, self.cores = Path(runs), list(cores)
        self.parallel_ok, self.estimate_s = parallel_ok, estimate_s
        self.deadline, self.on_done = deadline, on_done
        self.running: list[Running] = []

    def _free_cores(self) -> list[int]:
        used = {c for r in self.running for c in (r.cores or self.cores)}
        return [c for c in self.cores if c not in used]

    def _start(self, job: Job, cores: tuple[int, ...] | None) -> None:
        job = dataclasses.replace(job, cores=cores)
        logs = self.runs / LOGS
        logs.mkdir(parents=True, exist_ok=True)
        name = f"{job.workload}.{Path(job.submission).name}.s{job.study}.t{job.trial}.log"
        log = logs / name
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.bench", "_trial", _job_to_json(job)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches the bench, which stops them
            )
        self.running.append(Running(job, proc, cores, time.time(), log))

    def _reap(self) -> None:
        for r in list(self.running):
            rc = r.proc.poll()
            if rc is not None:
                self.running.remove(r)
                if self.on_done is not None:
                    self.on_done(r.job, rc, time.time() - r.started)

    def stop(self, grace_s: float = 60.0) -> None:
        """SIGTERM every trial (each records itself ``interrupted``, resumable), then wait."""
        for r in self.running:
            try:
                os.killpg(r.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.time() + grace_s
        while self.running and time.time() < end:
            self._reap()
            time.sleep(0.2)
        for r in self.running:
            try:
                os.killpg(r.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.running.clear()

    def run(
        self, jobs: Iterable[Job], until: Callable[[list[Job]], bool] | None = None
    ) -> RoundResult:
        """Runs ``jobs`` in order (those that no longer fit before the deadline are skipped).
        With ``until``: after any trial ends, ``until(queue)`` (the jobs not started yet) may
        return True to hand the queue back (``remaining``) with the running trials still
        running; the next ``run`` call goes on with them."""
        res = RoundResult()
        done_cb = self.on_done

        def on_done(job: Job, rc: int, wall: float) -> None:
            res.finished.append((job, rc))
            if done_cb is not None:
                done_cb(job, rc, wall)

        self.on_done = on_done
        queue = list(jobs)
        try:
            while queue or self.running:
                n = len(res.finished)
                self._reap()
                if until is not None and len(res.finished) > n and until(queue):
                    res.remaining = queue
                    break
                while queue:
                    job = queue[0]
                    if time.time() + self.estimate_s(job) > self.deadline:
                        res.skipped.append(queue.pop(0))
                        continue
                    if self.parallel_ok.get(job.workload, False) and len(self.cores) > 1:
                        free = self._free_cores()
                        if not free or any(r.cores is None for r in self.running):
                            break
                        self._start(queue.pop(0), (free[0],))
                    else:
                        if self.running:
                            break
                        self._start(queue.pop(0), None)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            res.interrupted = True
            self.stop()
        finally:
            self.on_done = done_cb
        return res


def order_jobs(jobs: list[Job], parallel_ok: dict[str, bool]) -> list[Job]:
    """Study by study (a round cut short leaves balanced cells), trials that share the machine
    first, then those that run alone, each group by workload and submission."""
    return sorted(
        jobs,
        key=lambda j: (j.study, not parallel_ok.get(j.workload, False), j.workload, j.submission),
    )


# -- the state file ----------------------------------------------------------------------------


def load_state(runs: Path) -> dict[str, Any]:
    p = Path(runs) / STATE
    if not p.is_file():
        return {"spent_s": 0.0, "looks": []}
    try:
        state = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{p} is not a readable bench state ({e}); move it away to start over"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{p} is not a bench state (a JSON object); move it away to start over")
    return state


def save_state(runs: Path, state: dict[str, Any]) -> None:
    records.write_json(Path(runs) / STATE, state)


def protocol(schedule: Sequence[int], hours: float, parallel_ok: dict[str, bool]) -> dict:
    from harness.tuning import SELF_TUNING_BUDGET_MULTIPLIER

    return {
        "ruleset": "self-tuning",
        "budget_multiplier": SELF_TUNING_BUDGET_MULTIPLIER,
        "looks": list(schedule),
        "family_level": FAMILY_LEVEL,
        "look_level": look_level(len(schedule)),
        "hours": hours,
        "cutoff_ratio": CUTOFF_RATIO,
        "one_trial_per_core": parallel_ok,
    }


# -- the worker --------------------------------------------------------------------------------


def _trial_main(text: str) -> int:
    """The body of one trial process: run the job in this process (referee; the athlete is
    its child). Exit 0 when a record was written, 1 when the trial could not start."""
    from harness.sweep import run_job

    job = job_from_json(text)
    try:
        res = run_job(job)
    except FileExistsError as e:  # claimed or finished by another process meanwhile
        print(f"skipped: {e}", flush=True)
        return 0
    print(f"{job.label}: {res.status}{': ' + res.reason if res.reason else ''}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "_trial":
        return _trial_main(argv[1])
    print("usage: python -m harness.bench _trial JOB_JSON (internal; use `ttr bench`)")
    return 2


def estimate_fn(runs: Path, hw: str, board: Path | None) -> Callable[[Job], float]:
    """A job's wall-time bound: its budget plus the largest measured overhead of its workload
    (setup, evaluations), or an allowance where nothing was measured yet."""
    over = measured_overhead_s(runs, hw, board)
    kind = records.device_kind(hw)

    def est(job: Job) -> float:
        budget = job_budget_s(job, kind)
        return budget + over.get((job.workload, job.variant), UNMEASURED_OVERHEAD_S + budget / 2)

    return est


def look_jobs(
    runs: Path,
    workload_cells: dict[str, list[str]],
    states: dict[str, WorkloadState],
    schedule: Sequence[int],
    variant: str,
    seed: int,
    save: bool = True,
) -> list[Job]:
    """The jobs of the next look: each open cell's studies up to its workload's next target."""
    out: list[Job] = []
    for w, st in states.items():
        n = next_target(st, schedule)
        if n is None:
            continue
        subs = [s for s in workload_cells[w] if Path(s).name in st.open_cells]
        jobs = plan_jobs(runs, [w], subs, variant, n, 1, seed, True, save=save, grow=True)
        out.extend(jobs)
    return out


@dataclass
class BenchConfig:
    runs: Path
    workloads: list[str] | None = None
    submissions: list[str] | None = None
    variant: str = "default"
    seed: int = 0
    hours: float = 2.0
    first: int = FIRST_LOOK
    last: int = LAST_LOOK
    parallel: bool = True  # one trial per core where the reference allows it
    keep_checkpoints: bool = False
    retry_failed: bool = False


@dataclass
class BenchOutcome:
    states: dict[str, WorkloadState]
    problems: list[str]
    hardware_class: str | None = None  # the trials' class (pinned trials count their cores)
    failed: int = 0
    interrupted: bool = False
    out_of_time: bool = False
    spent_s: float = 0.0


def finished_trials(runs: Path, hw: str, variant: str) -> pd.DataFrame:
    """The rankable trials of one hardware class and variant under ``runs`` (may be empty)."""
    from harness.collect import collect

    if not Path(runs).is_dir():
        return pd.DataFrame(columns=["workload", "variant", "submission", "hardware_class"])
    t = collect(Path(runs)).trials
    if t.empty:
        return t
    return t[(t.hardware_class == hw) & (t.variant == variant)].reset_index(drop=True)


def cells_of(jobs: Iterable[Job]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for j in jobs:
        out.setdefault(j.workload, set()).add(j.submission)
    return {w: sorted(s) for w, s in sorted(out.items())}


def run_bench(
    cfg: BenchConfig,
    after_look: Callable[[BenchOutcome], None],
    say: Callable[[str], None] = print,
    bar: Any = None,
) -> BenchOutcome:
    """The adaptive bench (module docstring): looks until every workload is settled, the
    schedule ends or ``cfg.hours`` is spent; ``after_look`` runs after every look (the report).
    ``bar`` (a tqdm) counts finished trials."""
    from harness.machine import cores as machine_cores

    runs = Path(cfg.runs)
    machine_hw = records.hardware_class()
    schedule = looks(cfg.first, cfg.last)
    level = look_level(len(schedule))
    problems: list[str] = []
    first = plan_jobs(
        runs, cfg.workloads, cfg.submissions, cfg.variant, schedule[0], 1, cfg.seed, True,
        save=True, problems=problems, grow=True,
    )  # fmt: skip
    workload_cells = cells_of(first)
    pairs = paper_pairs(workload_cells)
    # One way of running for the whole bench, so that its trials share one hardware class (a
    # pinned trial's class counts its cores: records.trial_fingerprint) and one board: one
    # trial per core only if every planned workload keeps its speed that way.
    table = one_trial_per_core(machine_hw) if cfg.parallel else {}
    cpus = machine_cores()
    parallel = len(cpus) > 1 and bool(workload_cells) and all(table.get(w) for w in workload_cells)
    parallel_ok = {w: parallel for w in workload_cells}
    pin = (cpus[0],) if parallel else None  # any one core: the class is the same for all
    hw = records.hardware_class(records.trial_fingerprint(pin)) if parallel else machine_hw
    outcome_hw = hw
    state = load_state(runs)
    state["protocol"] = protocol(schedule, cfg.hours, parallel_ok) | {
        "trial_hardware_class": hw,
        "machine_hardware_class": machine_hw,
    }
    spent0 = float(state.get("spent_s", 0.0))
    start = time.time()
    deadline = start + cfg.hours * 3600.0 - spent0
    board = Path("leaderboards") / hw / "results.parquet"
    # runs of each trial in this call: sort_jobs reruns a contended one (MAX_CONTENDED_RERUNS
    # times at most); the count bounds the retries of one that keeps ending without a record
    attempted: dict[str, int] = {}
    outcome = BenchOutcome({}, problems, hardware_class=outcome_hw)
    kind = records.device_kind(hw)
    rank = workload_order(workload_cells, cfg.variant, kind)
    sched = Scheduler(runs, cpus, parallel_ok, estimate_fn(runs, hw, board), deadline, None)
    queue: list[Job] = []
    skipped: set[str] = set()

    def busy(q: list[Job]) -> set[str]:  # workloads with a trial queued or running
        return {j.workload for j in q} | {r.job.workload for r in sched.running}

    def done(job: Job, rc: int, wall: float) -> None:
        outcome.failed += rc != 0
        attempted[job.label] = attempted.get(job.label, 0) + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{fmt_hours(deadline - time.time())} left")
        say(f"   {job.label}: {'done' if rc == 0 else f'exit {rc}'} in {wall:.0f} s")

    sched.on_done = done

    def look_over(q: list[Job]) -> bool:  # a workload's look has no trial left
        return bool(running_w - busy(q))

    running_w: set[str] = set()  # workloads with a look in progress
    while True:
        trials = finished_trials(runs, hw, cfg.variant)
        idle = {w: c for w, c in workload_cells.items() if w not in busy(queue)}
        # a workload is decided only between its looks, never on a look half run
        outcome.states.update(decide(trials, idle, cfg.variant, level, pairs, schedule[-1]))
        if look_over(queue):  # a look ended: the board is rewritten, trials running beside
            try:
                run_niced(after_look, outcome)
            except KeyboardInterrupt:
                sched.stop()
                outcome.interrupted = True
                return outcome
        running_w &= busy(queue)
        new: list[Job] = []
        for w in idle:
            jobs = look_jobs(runs, {w: idle[w]}, {w: outcome.states[w]}, schedule, cfg.variant,
                             cfg.seed)  # fmt: skip
            jobs = [dataclasses.replace(j, cores=pin) for j in jobs]  # their records' class
            split = sort_jobs(jobs, retry_failed=cfg.retry_failed)
            problems.extend(p for p in split.problems if p not in problems)
            for j in split.todo:
                if attempted.get(j.label, 0) > MAX_CONTENDED_RERUNS or j.label in skipped:
                    continue
                cut = cutoffs(trials, j.workload, cfg.variant)
                j = dataclasses.replace(
                    j, final_test_eval=False, keep_checkpoint=cfg.keep_checkpoints
                )
                if cut is not None and cut[0] < job_budget_s(j, kind):
                    j = dataclasses.replace(j, cutoff_s=cut[0], cutoff_reason=cut[1])
                new.append(j)
        if new:
            look_w = sorted({j.workload for j in new}, key=lambda w: rank[w])
            running_w |= set(look_w)
            say(
                f"look: {len(new)} trials on {', '.join(look_w)} "
                f"({fmt_hours(deadline - time.time())} left)"
            )
            if bar is not None:
                bar.total = (bar.total or 0) + len(new)
                bar.refresh()
        if not new and not queue and not sched.running:
            break
        queue = sorted(queue + new, key=lambda j: job_priority(j, rank, schedule, parallel_ok))
        res = sched.run(queue, until=look_over)
        queue = res.remaining
        skipped |= {j.label for j in res.skipped}
        outcome.spent_s = spent0 + time.time() - start
        state["spent_s"] = outcome.spent_s
        if res.finished:
            state.setdefault("looks", []).append(
                {"trials": len(res.finished), "skipped": len(res.skipped),
                 "workloads": sorted({j.workload for j, _ in res.finished}),
                 "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            )  # fmt: skip
        save_state(runs, state)
        if res.interrupted:
            outcome.interrupted = True
            after_look(outcome)
            return outcome
        if res.skipped and not outcome.out_of_time:
            outcome.out_of_time = True
            say(f"time is short: {len(res.skipped)} planned trials did not fit in --hours")
    if skipped:
        outcome.out_of_time = True
    outcome.spent_s = spent0 + time.time() - start
    state["spent_s"] = outcome.spent_s
    save_state(runs, state)
    return outcome


def run_niced(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a thread at the lowest CPU priority (Linux: a thread's own nice value),
    the caller waiting: the report, written while pinned trials run, then takes only what they
    leave instead of showing up in their contention check (docs/reliability.md, "Timing
    under load")."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):  # not Linux, or not allowed: normal priority
                pass
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller
            out["error"] = e

    t = threading.Thread(target=target, name="ttr-report", daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.2)  # a Ctrl-C reaches the caller here
    if "error" in out:
        raise out["error"]
    return out.get("value")


def workload_order(workload_cells: dict[str, list[str]], variant: str, kind: str) -> dict[str, int]:
    """workload -> rank, cheapest first (its training budget, then its name): a bench short of
    time settles the workloads it can afford rather than leaving every one half run."""

    def budget(w: str) -> float:
        try:
            return discovery.get_spec(w, variant).budget_for(kind)
        except Exception:  # noqa: BLE001 -- an odd spec sorts last; plan_jobs reported it
            return math.inf

    return {w: i for i, w in enumerate(sorted(workload_cells, key=lambda w: (budget(w), w)))}


def job_priority(
    job: Job, rank: dict[str, int], schedule: Sequence[int], parallel_ok: dict[str, bool]
) -> tuple:
    """Order of the queue: first the first look of every workload, cheapest workload first;
    then the later looks as a staircase over (look, workload): look k of the workload ranked r
    goes at step k + r, so the cheapest workload's next look runs beside the next one's, and no
    workload waits for every other one to be settled. Within a step, cheaper workloads first,
    then study by study (a look cut short leaves balanced cells).

    The first looks go first because they buy the most: they put every workload and every
    paper pair on the board, and most large differences separate there (4 of the 5 paper pairs
    the first 2 h board settled were settled at their first look, while certification's nine
    later looks settled nothing and left translation and factuality unrun)."""
    look = next((i for i, n in enumerate(schedule) if job.study < n), len(schedule))
    r = rank.get(job.workload, len(rank))
    step = (0, r) if look == 0 else (1, look + r)
    return (*step, r, job.study, not parallel_ok.get(job.workload, False), job.submission)


def fmt_hours(s: float) -> str:
    s = max(0.0, s)
    return f"{s / 60:.0f} min" if s < 3600 else f"{s / 3600:.2f} h"


__all__ = [
    "FAMILY_LEVEL",
    "PaperPair",
    "Scheduler",
    "WorkloadState",
    "cutoffs",
    "decide",
    "look_jobs",
    "look_level",
    "looks",
    "next_target",
    "one_trial_per_core",
    "order_jobs",
    "paper_pairs",
    "sort_jobs",
]


if __name__ == "__main__":
    sys.exit(main())
