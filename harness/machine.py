"""The machine under a trial: its speed (``ttr calibrate``) and whether a trial had it to itself.

Two checks decide whether a trial's time can be trusted:

- **Probe.** A short fixed job (float32 matmuls, well under a second) runs before and after each
  trial, ``PROBE_ROUNDS`` times, and the best round counts, as the reference is the best of
  its rounds: a sustained slowdown slows every round, a blip of a few milliseconds only one
  (see ``probe``). A probe more than ``PROBE_SLOWDOWN`` (10%) slower than the hardware class's
  reference (``harness/hardware/<class>.json``, written by ``ttr calibrate --save``) means the
  machine ran slower than the one the budgets and the leaderboard were measured on. Without a
  reference file the probe's verdict is ``"unknown"``: recorded, never a reason by itself.
- **Load.** A daemon thread samples ``/proc/stat`` (the busy jiffies of the cores the trial may
  use, ``os.sched_getaffinity``) and ``/proc/<pid>/stat`` of the trial's own processes every
  ``SAMPLE_S``. Busy time on those cores not spent by the trial's processes is other processes'
  work; more than ``LOAD_CORES`` (0.25 core) of it on average over the trial means the trial
  shared its cores.

A trial failing either check is ``contended``: recorded (``record_contention``), left out of the
ranking by ``ttr collect``/``ttr report`` and re-run by ``ttr bench`` and sweeps. Linux only for
the load part (elsewhere the load verdict is ``"unknown"``).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

REFERENCE_DIR = Path(__file__).resolve().parent / "hardware"
PROBE_SLOWDOWN = 0.10  # a probe this much slower (in time) than the reference: contended
LOAD_CORES = 0.25  # other processes' average use of the trial's cores above this: contended
SAMPLE_S = 0.5  # seconds between load samples
PROBE_N = 384  # the probe's matmul size (n x n by n x n, float32)
PROBE_REPEATS = 100  # the probe's matmuls (median time; about 0.1 s on 2 CPU cores)
PROBE_ROUNDS = 3  # the probe's rounds; the best (fastest) counts
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- reference jobs ----------------------------------------------------------------------------


def cores() -> list[int]:
    """The CPUs this process may run on (its affinity), sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


class _Threads:
    """Run a block with torch's intra-op thread count set to ``n``; restore it after."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self) -> None:
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.old)


def _timed(fn: Callable[[], Any], repeats: int, warmup: int, sync: Callable[[], None]) -> list:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def _sync_for(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _figure(times: list[float], work: float, unit: str) -> dict[str, Any]:
    """A speed figure (work per second) from per-repeat times: median and the spread."""
    rates = sorted(work / t for t in times if t > 0)
    return {
        "value": statistics.median(rates),
        "min": rates[0],
        "max": rates[-1],
        "repeats": len(rates),
        "unit": unit,
    }


def matmul_job(
    n: int = PROBE_N, repeats: int = PROBE_REPEATS, threads: int | None = None, device=None
) -> dict[str, Any]:
    """GFLOP/s of an ``n x n`` float32 matmul (fixed inputs), median of ``repeats``."""
    device = torch.device(device or "cpu")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    out = torch.empty(n, n, device=device)
    with _Threads(threads or len(cores())):
        times = _timed(lambda: torch.mm(a, b, out=out), repeats, 3, _sync_for(device))
    return _figure(times, 2 * n**3 / 1e9, "GFLOP/s")


def copy_job(mib: int = 64, repeats: int = 10, threads: int | None = None) -> dict[str, Any]:
    """GB/s of copying a ``mib`` MiB float32 buffer into another (read + write counted)."""
    src = torch.ones(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    with _Threads(threads or len(cores())):
        times = _timed(lambda: dst.copy_(src), repeats, 2, lambda: None)
    return _figure(times, 2 * src.numel() * 4 / 1e9, "GB/s")


def mlp_step_job(repeats: int = 30, threads: int | None = None) -> dict[str, Any]:
    """Training steps/s of a fixed MLP (256-512-512-10, batch 128, SGD): forward, backward,
    update; fixed weights and data, so every machine does the same arithmetic."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(256, 512),
            torch.nn.ReLU(),
            torch.nn.Linear(512, 512),
            torch.nn.ReLU(),
            torch.nn.Linear(512, 10),
        )
        x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    with _Threads(threads or len(cores())):
        times = _timed(step, repeats, 3, lambda: None)
    return _figure(times, 1.0, "steps/s")


def probe(device: torch.device | str | None = None, rounds: int = PROBE_ROUNDS) -> dict[str, Any]:
    """The short probe run before and after every trial: the matmul job on all the process's
    cores (and on ``device`` too when it is a GPU), ``rounds`` times; the best round counts.

    Best of rounds, because the reference (``calibrate``) is the best of its rounds, and
    because one round is a fraction of a second: on the 2-vCPU class, single rounds before and
    after 185 pinned trials of one bench ran 10% or more under the reference in 37 of 370
    probes, mostly while the other core's trial ran undisturbed, and the trials they flagged ran
    only 6% slower per step (median of 20) than their reruns, some faster. A slowdown that lasts
    (another tenant, a throttled core) slows every round and is still caught; ``cpu_gflops_rounds``
    keeps every round."""
    t0, rounds = time.perf_counter(), max(1, rounds)
    cpu = [matmul_job()["value"] for _ in range(rounds)]
    out: dict[str, Any] = {"cpu_gflops": max(cpu), "cpu_gflops_rounds": cpu, "cores": len(cores())}
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        gpu = [matmul_job(n=2048, repeats=20, device=device)["value"] for _ in range(rounds)]
        out["gpu_gflops"], out["gpu_gflops_rounds"] = max(gpu), gpu
    out["probe_s"] = time.perf_counter() - t0
    return out


def calibrate(rounds: int = 3, device: torch.device | str | None = None) -> dict[str, Any]:
    """The machine's speed figures, each the best (least-loaded) of ``rounds`` rounds' medians;
    a figure's ``min``/``max`` are the spread of the repeats in its best round, ``rounds`` all
    the rounds' medians."""
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "matmul_1t": lambda: matmul_job(n=512, repeats=20, threads=1),
        "matmul_all": lambda: matmul_job(n=512, repeats=20),
        "copy_1t": lambda: copy_job(threads=1),
        "copy_all": lambda: copy_job(),
        "mlp_step_1t": lambda: mlp_step_job(threads=1),
        "mlp_step_all": lambda: mlp_step_job(),
        "probe_cpu": lambda: matmul_job(),
        "probe_cpu_1t": lambda: matmul_job(threads=1),  # a trial pinned to one core
    }
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        jobs["probe_gpu"] = lambda: matmul_job(n=2048, repeats=20, device=device)
    figures: dict[str, Any] = {}
    for name, job in jobs.items():
        results = [job() for _ in range(rounds)]
        best = max(results, key=lambda r: r["value"])
        figures[name] = {**best, "rounds": [r["value"] for r in results]}
    return {
        "threads": len(cores()),
        "rounds": rounds,
        "figures": figures,
        "probe": {
            "cpu_gflops": figures["probe_cpu"]["value"],
            "cpu_gflops_by_cores": {
                "1": figures["probe_cpu_1t"]["value"],
                str(len(cores())): figures["probe_cpu"]["value"],
            },
            **({"gpu_gflops": figures["probe_gpu"]["value"]} if "probe_gpu" in figures else {}),
        },
    }


def reference_path(hardware_class: str) -> Path:
    return REFERENCE_DIR / f"{hardware_class}.json"


def load_reference(hardware_class: str) -> dict[str, Any] | None:
    """The hardware class's saved reference, or None when there is none (or it is unreadable)."""
    try:
        ref = json.loads(reference_path(hardware_class).read_text())
    except (OSError, ValueError):
        return None
    return ref if isinstance(ref, dict) and isinstance(ref.get("probe"), dict) else None


def save_reference(hardware_class: str, measured: Mapping[str, Any], note: str = "") -> Path:
    from harness import records

    path = reference_path(hardware_class)
    kept = {}  # measured by benchmarks, not by calibrate: kept across re-calibrations
    old = load_reference(hardware_class) or {}
    if "one_trial_per_core" in old:
        kept["one_trial_per_core"] = old["one_trial_per_core"]
    data = {
        "hardware_class": hardware_class,
        "measured_at": records.utcnow(),
        "cpu": records.cpu_model(),
        "torch": torch.__version__,
        "note": note,
        **measured,
        **kept,
    }
    records.write_json(path, data)
    return path


def save_per_core(hardware_class: str, table: Mapping[str, Any]) -> Path:
    """Write ``one_trial_per_core`` (workload -> {"ok", "slowdown", ...}, measured by
    benchmarks/per_core_throughput.py) into the hardware class's reference, which must exist
    (``ttr calibrate --save`` first)."""
    from harness import records

    ref = load_reference(hardware_class)
    if ref is None:
        raise FileNotFoundError(
            f"no {hardware_class} reference at {reference_path(hardware_class)}: run "
            "`ttr calibrate --save` first"
        )
    ref["one_trial_per_core"] = dict(table)
    records.write_json(reference_path(hardware_class), ref)
    return reference_path(hardware_class)


# -- load sampling -----------------------------------------------------------------------------


def parse_proc_stat(text: str, cpus: list[int] | None) -> tuple[int, int]:
    """(busy, total) jiffies of ``cpus`` (all CPUs when None) from ``/proc/stat``'s text. Busy is
    user + nice + system + irq + softirq + steal (guest time is inside user already); idle and
    iowait are not busy."""
    busy = total = 0
    want = None if cpus is None else {f"cpu{c}" for c in cpus}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *fields = line.split()
        if (want is None and name != "cpu") or (want is not None and name not in want):
            continue
        v = [int(x) for x in fields[:8]] + [0] * max(0, 8 - len(fields))
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        busy += user + nice + system + irq + softirq + steal
        total += user + nice + system + idle + iowait + irq + softirq + steal
    return busy, total


def parse_pid_stat(text: str) -> tuple[int, int]:
    """(ppid, jiffies) from ``/proc/<pid>/stat``: utime + stime + cutime + cstime (children's
    time counts once they are reaped, so a trial's finished helpers stay the trial's)."""
    rest = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and ')'
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, utime + stime + cutime + cstime


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        text = _read(f"/proc/{entry.name}/stat")
        if text is None:
            continue
        try:
            ppid, _ = parse_pid_stat(text)
        except (ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def own_process_tree() -> set[int]:
    return process_tree(os.getpid())


class LoadSample:
    """One reading: the wall time, busy jiffies of the trial's cores, and per-pid jiffies."""

    def __init__(self, t: float, busy: int, pids: dict[int, int]):
        self.t, self.busy, self.pids = t, busy, pids


def other_jiffies(a: LoadSample, b: LoadSample) -> int:
    """Busy jiffies from ``a`` to ``b`` not spent by the trial's processes. A process first seen
    at ``b`` counts all its time as the trial's (it started in between); one gone at ``b`` is
    lost (its reaped time shows in its parent's)."""
    own = sum(j - a.pids.get(pid, 0) for pid, j in b.pids.items())
    return max(0, (b.busy - a.busy) - own)


def summarize_load(samples: list[LoadSample], ncores: int) -> dict[str, Any]:
    """Other processes' use of the trial's cores: the average over the run, in cores, and the
    largest over one sampling interval."""
    if len(samples) < 2 or samples[-1].t <= samples[0].t:
        return {"verdict": "unknown", "other_cores_mean": None, "cores": ncores, "samples": 0}
    per = []
    total = 0
    for a, b in zip(samples, samples[1:], strict=False):
        j = other_jiffies(a, b)
        total += j
        if b.t > a.t:
            per.append(j / CLK_TCK / (b.t - a.t))
    span = samples[-1].t - samples[0].t
    mean = total / CLK_TCK / span
    return {
        "verdict": "ok",
        "other_cores_mean": mean,
        "other_cores_max": max(per) if per else mean,
        "cores": ncores,
        "samples": len(samples),
        "span_s": span,
    }


class LoadMonitor:
    """Samples the machine's load in a daemon thread until ``stop``."""

    def __init__(
        self,
        exclude_pids: Callable[[], set[int]],
        interval_s: float = SAMPLE_S,
        cpus: list[int] | None = None,
    ):
        self.exclude_pids, self.interval_s = exclude_pids, interval_s
        self.cpus = cpus if cpus is not None else cores()
        self.samples: list[LoadSample] = []
        self.available = Path("/proc/stat").is_file()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def sample(self) -> LoadSample | None:
        stat = _read("/proc/stat")
        if stat is None:
            return None
        busy, _ = parse_proc_stat(stat, self.cpus)
        pids = {}
        for pid in self.exclude_pids():
            text = _read(f"/proc/{pid}/stat")
            if text is not None:
                try:
                    pids[pid] = parse_pid_stat(text)[1]
                except (ValueError, IndexError):
                    pass
        return LoadSample(time.perf_counter(), busy, pids)

    def _take(self) -> None:
        try:
            s = self.sample()
        except Exception as e:  # never let monitoring break a trial
            self.error = f"{type(e).__name__}: {e}"
            return
        if s is not None:
            self.samples.append(s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def start(self) -> None:
        if not self.available:
            return
        self._take()
        self._thread = threading.Thread(target=self._run, name="ttr-load-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        if not self.available:
            return {"verdict": "unknown", "reason": "no /proc/stat on this system"}
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._take()
        out = summarize_load(self.samples, len(self.cpus))
        if self.error:
            out["error"] = self.error
        return out


# -- the verdict -------------------------------------------------------------------------------


def _reference_figure(
    reference: Mapping[str, Any] | None, measured: Mapping[str, Any], key: str
) -> Any:
    """The reference figure a probe is compared with: the reference's own, or for a CPU probe
    pinned to fewer cores than the reference used, the reference's figure for that many cores
    (None when it has none)."""
    ref = (reference or {}).get("probe") or {}
    n = measured.get("cores")
    if key == "cpu_gflops" and n is not None and n != (reference or {}).get("threads"):
        return (ref.get("cpu_gflops_by_cores") or {}).get(str(n))
    return ref.get(key)


def probe_slowdown(reference: Mapping[str, Any] | None, measured: Mapping[str, Any]) -> dict:
    """Each probe figure's slowdown against the reference: time ratio - 1 (0.2: 20% slower)."""
    out = {}
    for key in ("cpu_gflops", "gpu_gflops"):
        r, m = _reference_figure(reference, measured, key), measured.get(key)
        if isinstance(r, (int, float)) and isinstance(m, (int, float)) and r > 0 and m > 0:
            out[key] = r / m - 1.0
    return out


def verdict(
    hardware_class: str,
    reference: Mapping[str, Any] | None,
    probe_before: Mapping[str, Any],
    probe_after: Mapping[str, Any],
    load: Mapping[str, Any],
    *,
    slowdown_limit: float = PROBE_SLOWDOWN,
    load_limit: float = LOAD_CORES,
) -> dict[str, Any]:
    """Contended or not, with every reason in words. Pure: testable on synthetic figures."""
    reasons = []
    if reference is None:
        probe_verdict = "unknown"
    else:
        probe_verdict = "ok"
        for when, measured in (("before", probe_before), ("after", probe_after)):
            for key, slow in probe_slowdown(reference, measured).items():
                if slow > slowdown_limit:
                    probe_verdict = "slow"
                    cores = measured.get("cores")
                    per = (f", {cores} core{'s' if cores != 1 else ''}"
                           if key == "cpu_gflops" and cores is not None else "")  # fmt: skip
                    reasons.append(
                        f"the probe {when} the trial ran {slow:.0%} slower than the "
                        f"{hardware_class} reference ({measured[key]:.1f} vs "
                        f"{_reference_figure(reference, measured, key):.1f} GFLOP/s"
                        f"{', GPU' if 'gpu' in key else per})"
                    )
    other = load.get("other_cores_mean")
    if isinstance(other, (int, float)) and other > load_limit:
        reasons.append(
            f"other processes used {other:.2f} of the trial's {load.get('cores')} cores on "
            f"average (limit {load_limit:.2f})"
        )
    return {
        "contended": bool(reasons),
        "reason": "; ".join(reasons) if reasons else None,
        "probe_verdict": probe_verdict,
        "load_verdict": load.get("verdict", "unknown")
        if not isinstance(other, (int, float))
        else ("shared" if other > load_limit else "ok"),
        "hardware_class": hardware_class,
        "reference_probe": dict((reference or {}).get("probe") or {}) or None,
        "probe_before": dict(probe_before),
        "probe_after": dict(probe_after),
        "load": dict(load),
        "limits": {"probe_slowdown": slowdown_limit, "load_cores": load_limit},
    }


CONTENTION_ENV = "TTR_CONTENTION"  # "off": trials run no probe and sample no load


def contention_checks_enabled() -> bool:
    """Whether trials check their machine (on unless ``TTR_CONTENTION=off``; the test suite
    turns it off, since tests share their machine by design, and turns it on where it tests
    it)."""
    return os.environ.get(CONTENTION_ENV, "on").strip().lower() not in ("off", "0", "no")


class TrialMonitor:
    """Probe before, load sampling during, probe after one trial; ``finish`` gives the verdict.

    ``exclude_pids`` returns the trial's own processes (the referee, the athlete and their
    children), called at every sample; the default is this process's tree."""

    def __init__(
        self,
        hardware_class: str,
        *,
        exclude_pids: Callable[[], set[int]] = own_process_tree,
        device: torch.device | str | None = None,
        interval_s: float = SAMPLE_S,
        reference: Mapping[str, Any] | None | bool = True,
    ):
        self.hardware_class = hardware_class
        self.device = torch.device(device or "cpu")
        # True: read harness/hardware/<class>.json; a mapping or None: use that (tests)
        self.reference = load_reference(hardware_class) if reference is True else reference
        self.load = LoadMonitor(exclude_pids, interval_s)
        self.probe_before: dict[str, Any] = {}

    def start(self) -> None:
        self.probe_before = probe(self.device)
        self.load.start()

    def finish(self) -> dict[str, Any]:
        load = self.load.stop()
        after = probe(self.device)
        return verdict(self.hardware_class, self.reference, self.probe_before, after, load)


def record_contention(record: dict[str, Any], result: Mapping[str, Any]) -> None:
    """Put a ``TrialMonitor.finish()`` result into a run record: ``contention`` always;
    ``contended: true`` and ``contended_reason`` when it was contended (the trial then stays
    out of the ranking and is re-run by ``ttr bench`` and sweeps)."""
    record["contention"] = dict(result)
    record["contended"] = bool(result.get("contended"))
    record["contended_reason"] = result.get("reason") if record["contended"] else None


def contended_reason(run: Mapping[str, Any]) -> str | None:
    """``"contended: <reason>"`` for a record marked contended, else None."""
    if run.get("contended") is not True:
        return None
    return f"contended: {run.get('contended_reason') or 'reason not recorded'}"


def format_figures(measured: Mapping[str, Any]) -> str:
    """The figures as a table: best round's median, its repeats' spread, every round's median."""
    lines = [f"{'figure':<14} {'best round':>19}  {'spread (repeats)':<18} rounds' medians"]
    for name, f in measured["figures"].items():
        spread = f"[{f['min']:.3g}, {f['max']:.3g}]"
        rounds = ", ".join(f"{x:.3g}" for x in f["rounds"])
        lines.append(f"{name:<14} {f['value']:>10.3g} {f['unit']:<8}  {spread:<18} {rounds}")
    return "\n".join(lines)
